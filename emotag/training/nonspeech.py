"""Synthetic non-speech audio for training: what a voice branch must hear as *no* speech.

Fusion pairs emotional lines with it (the voice then carries no evidence and fusion must lean on the words),
and the Whisper branch's speech detector learns speech against it
(:func:`emotag.training.whisper_audio.train_speech_detector`). No corpus of real music or noise ships with
the data here, so these are generated: silence, white / pink / brown noise, tones, mains hum, chords,
and music-like sounds (:data:`MUSIC_KINDS`: a beat of decaying notes, a melody, notes held under a sustain
pedal, a detuned synth pad, strummed chords, a drum loop, a chord pulsing at syllable rate). Deterministic
for a seed. Written by hand: no library generates these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from emotag.audiofeatures import SAMPLE_RATE

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: What :func:`nonspeech_audio` makes by default (fusion training's kinds).
BASIC_KINDS = ("silence", "white", "pink", "brown", "tone", "chord", "music", "hum")


def _note(f0: float, seconds: float, decay: float, partials: int = 8, attack: float = 0.01) -> F64:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    env = np.minimum(t / attack, 1.0) * np.exp(-decay * t)
    out: F64 = env * np.sum([np.sin(2 * np.pi * f0 * k * t) / k**1.2 for k in range(1, partials + 1)], axis=0)
    return out


def _midi(m: float) -> float:
    return float(440.0 * 2 ** ((m - 69) / 12))


def _place(out: F64, x: F64, start: float) -> None:
    a = int(start * SAMPLE_RATE)
    if a < out.size:
        out[a : a + x.size] += x[: out.size - a]


def _melody(rng: np.random.Generator, dur: float) -> F64:
    """Notes of 1/8 to 1/2 s on a major scale, each decaying (a piano line)."""
    out, t = np.zeros(int(dur * SAMPLE_RATE)), 0.0
    root = 55 + int(rng.integers(0, 10))
    while t < dur:
        d = float(rng.choice([0.125, 0.25, 0.25, 0.5]))
        _place(out, _note(_midi(root + int(rng.choice([0, 2, 4, 5, 7, 9, 11, 12]))), d, 4.0), t)
        t += d
    return out


def _sustained(rng: np.random.Generator, dur: float) -> F64:
    """A melody whose notes ring on under each other (sustain pedal): overlapping, beating partials."""
    out, t = np.zeros(int(dur * SAMPLE_RATE)), 0.0
    while t < dur:
        m = 48 + int(rng.choice([0, 2, 4, 5, 7, 9, 11, 12])) + 12 * int(rng.integers(0, 2))
        _place(out, _note(_midi(m), min(3.0, dur - t + 0.01), 0.7), t)
        t += float(rng.choice([0.125, 0.25, 0.5]))
    return out


def _pad(rng: np.random.Generator, dur: float) -> F64:
    """Sustained chords with slow attack and release, three detuned voices per note (strings, synth pad)."""
    out, t = np.zeros(int(dur * SAMPLE_RATE)), 0.0
    while t < dur:
        root, d = 45 + int(rng.choice([0, 3, 5, 7, 8, 10])), float(rng.uniform(0.8, 2.0))
        tt = np.arange(int((d + 1.0) * SAMPLE_RATE)) / SAMPLE_RATE
        env = np.minimum(tt / 0.3, 1.0) * np.where(tt < d, 1.0, np.exp(-(tt - d) * 3.0))
        voices = [
            np.sin(2 * np.pi * _midi(root + i) * (1 + det) * tt + rng.uniform(0, 2 * np.pi)) / (1 + k)
            for i in (0, 4, 7, 12)
            for k, det in enumerate((0.0, 0.003, -0.003))
        ]
        _place(out, env * np.sum(voices, axis=0), t)
        t += d
    return out


def _strum(rng: np.random.Generator, dur: float) -> F64:
    """Six-string chords strummed on eighth notes at 120 bpm."""
    out, t = np.zeros(int(dur * SAMPLE_RATE)), 0.0
    while t < dur:
        root = 40 + int(rng.choice([0, 5, 7, 9]))
        for j, i in enumerate((0, 7, 12, 16, 19, 24)):
            _place(out, _note(_midi(root + i), 0.5, 5.0, partials=12), t + 0.015 * j)
        t += 0.25
    return out


def _drums(rng: np.random.Generator, dur: float) -> F64:
    """Kick and snare on eighth notes (90-150 bpm), hi-hat on sixteenths."""
    out = np.zeros(int(dur * SAMPLE_RATE))
    step = 30.0 / float(rng.uniform(90, 150))
    t = np.arange(3000) / SAMPLE_RATE
    for k in range(int(dur / step * 2) + 1):
        if k % 2 == 0:
            hit = (
                np.sin(2 * np.pi * (55 + 80 * np.exp(-30 * t)) * t) * np.exp(-15 * t)
                if k % 4 == 0
                else 0.5 * rng.standard_normal(t.size) * np.exp(-25 * t)
            )
            _place(out, hit, k * step / 2)
        _place(out, 0.1 * rng.standard_normal(600) * np.exp(-np.arange(600) / 80), k * step / 2)
    return out


def _pulse(rng: np.random.Generator, dur: float) -> F64:
    """A chord whose loudness pulses at 2-6 Hz, the rate of syllables."""
    t = np.arange(int(dur * SAMPLE_RATE)) / SAMPLE_RATE
    root, rate = float(rng.uniform(150, 300)), float(rng.uniform(2, 6))
    chord = np.sum([np.sin(2 * np.pi * root * q * t) for q in (1.0, 1.26, 1.5)], axis=0)
    out: F64 = chord * (0.5 + 0.5 * np.sin(2 * np.pi * rate * t))
    return out


_MUSIC: dict[str, Callable[[np.random.Generator, float], F64]] = {
    "melody": _melody,
    "sustained": _sustained,
    "pad": _pad,
    "strum": _strum,
    "drums": _drums,
    "pulse": _pulse,
}
#: Music-like kinds beyond :data:`BASIC_KINDS`.
MUSIC_KINDS = tuple(_MUSIC)
ALL_KINDS = BASIC_KINDS + MUSIC_KINDS


def nonspeech_audio(n: int, seed: int, kinds: Sequence[str] = BASIC_KINDS) -> list[F32]:
    """``n`` synthetic non-speech waveforms of 1-5 s at 16 kHz, cycling through ``kinds`` (see the module
    docstring), each scaled to a random peak level between -50 and -10 dBFS ("silence" too, which makes it
    faint white noise rather than digital silence)."""
    unknown = set(kinds) - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown non-speech kinds: {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    out: list[F32] = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        dur = float(rng.uniform(1.0, 5.0))
        m = int(dur * SAMPLE_RATE)
        t = np.arange(m) / SAMPLE_RATE
        level = float(10 ** rng.uniform(-2.5, -0.5))
        if kind == "silence":
            x = rng.normal(0, 1e-4, m)
        elif kind == "white":
            x = rng.normal(0, 1, m)
        elif kind in ("pink", "brown"):
            spec = np.fft.rfft(rng.normal(0, 1, m))
            f = np.maximum(np.fft.rfftfreq(m, 1 / SAMPLE_RATE), 1.0)
            spec /= np.sqrt(f) if kind == "pink" else f
            x = np.fft.irfft(spec, m)
        elif kind == "tone":
            x = np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
        elif kind == "hum":
            f0 = rng.choice([50.0, 60.0])
            x = np.sum([np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)], axis=0)
        elif kind == "chord":
            root = rng.uniform(110, 440)
            x = np.sum([np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5, 2.0)], axis=0)
        elif kind == "music":  # notes with harmonics and decay on a beat, plus a kick
            bpm = rng.uniform(80, 160)
            beat = 60.0 / bpm
            x = np.zeros(m)
            for k, start in enumerate(np.arange(0, dur, beat / 2)):
                a = int(start * SAMPLE_RATE)
                seg = t[: m - a]
                f = rng.uniform(150, 900)
                note = sum(np.sin(2 * np.pi * f * h * seg) / h for h in (1, 2, 3)) * np.exp(-seg * 6)
                x[a:] += note
                if k % 2 == 0:
                    x[a:] += np.sin(2 * np.pi * 60 * seg) * np.exp(-seg * 30) * 2
        else:
            x = _MUSIC[kind](rng, dur)
        x = np.asarray(x, dtype=np.float64)
        x = x / (np.abs(x).max() + 1e-9) * level
        out.append(x.astype(np.float32))
    return out
