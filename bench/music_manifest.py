"""Write an ``emotag eval`` manifest of text lines over music, to check that fusion reads the words there.

Each distinct line of ``pairs_same.csv`` (written by ``make_manifests.py``) is paired with a 5 s clip of
synthetic music of one of seven kinds, in turn. The label stays the line's: the music carries no voice, so
the fused emotion should be the words'. The kinds are built *unlike* the sounds the speech detector trains on
(``emotag.training.nonspeech``: decaying sine partials, sine pads, noise-burst drums), so the check measures
music of other families: a plucked-string melody (Karplus-Strong), organ chords with a rotary-speaker
wobble, a sawtooth lead that glides between notes with vibrato (pitch that moves, as a voice's does),
frequency-modulated bells, a square-wave arpeggio, pitched toms with hi-hats and claps, and the pluck,
organ and percussion together.

Usage::

    python bench/make_manifests.py --data ../shared/data --out runs/manifests
    python bench/music_manifest.py --pairs runs/manifests/pairs_same.csv --out runs/manifests/music
    emotag eval runs/manifests/music/music_text.csv [--predictions rows.csv]

The ``kind`` column names each clip's music (``emotag eval`` ignores it; join it to ``--predictions``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emotag import atomicfile  # noqa: E402

SR = 16000
SCALE = (0, 2, 4, 7, 9, 12, 14)  # a pentatonic run over two octaves


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _notes(
    r: np.random.Generator, sec: float, lengths: tuple[float, ...]
) -> list[tuple[float, float, float]]:
    """``(start, seconds, frequency)`` of a random line of notes filling ``sec``."""
    out, t, root = [], 0.0, 57 + int(r.integers(0, 7))
    while t < sec:
        d = float(r.choice(lengths))
        out.append((t, d, _hz(root + int(r.choice(SCALE)))))
        t += d
    return out


def pluck(seed: int, sec: float) -> np.ndarray:
    """Karplus-Strong plucked strings: a noise burst through a damped, averaging delay line per note."""
    r, out = np.random.default_rng(seed), np.zeros(int(sec * SR))
    for start, d, f in _notes(r, sec, (0.25, 0.25, 0.5)):
        period = max(2, int(SR / f))
        burst = np.zeros(int(min(d + 0.4, sec - start + 0.01) * SR))
        burst[:period] = r.uniform(-1, 1, period)
        feedback = np.zeros(period + 2)
        feedback[0], feedback[period], feedback[period + 1] = 1.0, -0.498, -0.498
        y = lfilter([1.0], feedback, burst)
        s = int(start * SR)
        out[s : s + y.size] += y[: out.size - s]
    return out


def organ(seed: int, sec: float) -> np.ndarray:
    """Held drawbar chords (no decay) through a rotary-speaker pitch and level wobble."""
    r, out = np.random.default_rng(seed), np.zeros(int(sec * SR))
    t = np.arange(out.size) / SR
    wobble = 1 + 0.003 * np.sin(2 * np.pi * 6.5 * t)
    start = 0.0
    while start < sec:
        d, root = float(r.uniform(0.5, 1.0)), 48 + int(r.choice((0, 5, 7, 9)))
        m = (t >= start) & (t < start + d)
        for i in (0, 4, 7):
            for h, a in ((1, 1.0), (2, 0.6), (3, 0.4), (4, 0.3), (8, 0.2)):
                out[m] += a * np.sin(2 * np.pi * _hz(root + i) * h * t[m] * wobble[m])
        start += d
    return out * (1 + 0.2 * np.sin(2 * np.pi * 0.8 * t))


def glide_lead(seed: int, sec: float) -> np.ndarray:
    """A sawtooth lead with portamento between notes and vibrato: pitch that moves like a voice's."""
    r = np.random.default_rng(seed)
    n = int(sec * SR)
    target = np.zeros(n)
    for start, d, f in _notes(r, sec, (0.25, 0.5, 0.75)):
        target[int(start * SR) : int((start + d) * SR)] = f
    alpha = 1 - np.exp(-1 / (0.06 * SR))  # a 60 ms glide: one-pole smoothing of the note frequencies
    freq = lfilter([alpha], [1.0, alpha - 1.0], target, zi=[(1 - alpha) * target[0]])[0]
    freq *= 1 + 0.01 * np.sin(2 * np.pi * 5.5 * np.arange(n) / SR)
    phase = np.cumsum(freq) / SR
    return 2 * (phase % 1.0) - 1


def bells(seed: int, sec: float) -> np.ndarray:
    """Frequency-modulated bells (inharmonic partials, ratio 1.4), each ringing on."""
    r, out = np.random.default_rng(seed), np.zeros(int(sec * SR))
    for start, _d, f in _notes(r, sec, (0.5, 0.75, 1.0)):
        t = np.arange(int(min(2.0, sec - start + 0.01) * SR)) / SR
        env = np.exp(-2.5 * t)
        y = env * np.sin(2 * np.pi * f * t + 3 * env * np.sin(2 * np.pi * 1.4 * f * t))
        s = int(start * SR)
        out[s : s + y.size] += y[: out.size - s]
    return out


def square_arp(seed: int, sec: float) -> np.ndarray:
    """A square-wave arpeggio on sixteenth notes at 110 bpm."""
    r = np.random.default_rng(seed)
    step, out = 60 / 110 / 4, np.zeros(int(sec * SR))
    chord = [_hz(50 + int(r.integers(0, 7)) + i) for i in (0, 4, 7, 12)]
    for k in range(int(sec / step) + 1):
        t = np.arange(int(step * SR)) / SR
        y = np.sign(np.sin(2 * np.pi * chord[k % 4] * t)) * np.exp(-6 * t)
        s = int(k * step * SR)
        out[s : s + y.size] += y[: out.size - s]
    return out


def percussion(seed: int, sec: float) -> np.ndarray:
    """Pitched toms (falling pitch), closed hi-hats (high-passed noise) and claps (three quick bursts)."""
    r, out = np.random.default_rng(seed), np.zeros(int(sec * SR))
    step = 60 / 100 / 4
    for k in range(int(sec / step) + 1):
        t = np.arange(int(0.25 * SR)) / SR
        s = int(k * step * SR)
        if k % 4 == 0:
            y = np.sin(2 * np.pi * np.cumsum(90 + 60 * np.exp(-20 * t)) / SR) * np.exp(-12 * t)
        elif k % 8 == 6:
            env = np.exp(-40 * t)
            bursts = [np.roll(r.normal(0, 0.4, t.size) * env, int(j * 0.01 * SR)) for j in range(3)]
            y = np.sum(bursts, 0)
        else:
            n = r.normal(0, 0.2, t.size)
            y = np.diff(n, prepend=0.0) * np.exp(-60 * t)
        out[s : s + y.size] += y[: out.size - s]
    return out


def ensemble(seed: int, sec: float) -> np.ndarray:
    return 0.6 * pluck(seed, sec) + 0.3 * organ(seed + 1, sec) / 3 + 0.8 * percussion(seed + 2, sec)


KINDS: dict[str, Callable[[int, float], np.ndarray]] = {
    "pluck": pluck,
    "organ": organ,
    "glide_lead": glide_lead,
    "bells": bells,
    "square_arp": square_arp,
    "percussion": percussion,
    "ensemble": ensemble,
}


def _at_level(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``db`` dBFS."""
    out: np.ndarray = (x / (np.sqrt(np.mean(x**2)) + 1e-9) * 10 ** (db / 20)).astype(np.float32)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, default=Path("runs/manifests/pairs_same.csv"))
    ap.add_argument("--out", type=Path, default=Path("runs/manifests/music"))
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    with args.pairs.open(newline="", encoding="utf-8") as f:
        lines: dict[str, str] = {}
        for row in csv.DictReader(f):
            lines.setdefault(row["text"], row["label"])
    args.out.mkdir(parents=True, exist_ok=True)
    names = list(KINDS)
    rows = []
    for i, (text, label) in enumerate(lines.items()):
        kind = names[i % len(names)]
        wav = args.out / f"{kind}_{i:03d}.wav"
        music = KINDS[kind](i + 1000, args.seconds)[: int(args.seconds * SR)]
        wavfile.write(wav, SR, _at_level(music, -20.0 - 3.0 * (i % 5)))  # -20 to -32 dBFS
        rows.append({"audio": wav.name, "start": "", "end": "", "text": text, "label": label, "kind": kind})
    path = args.out / "music_text.csv"
    with atomicfile.replacing(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["audio", "start", "end", "text", "label", "kind"])
        w.writeheader()
        w.writerows(rows)
    print(f"{path}: {len(rows)} lines over {len(names)} kinds of music")


if __name__ == "__main__":
    main()
