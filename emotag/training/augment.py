"""Waveform augmentation for the audio branch: break RAVDESS's shortcuts and widen its studio sound.

RAVDESS is two sentences, 24 actors, one quiet studio and about a second of silence around each clip. A
model trained on it as is learns clip length, silence and channel. Each training example therefore goes
through a random chain (:func:`augment`) of:

* random crop (1 s to the whole clip; the whole clip half the time) and random leading/trailing silence
  with a low noise floor, so neither length nor position carries the label;
* speed perturbation by resampling (0.88-1.12: pitch and tempo together, Kaldi-style) and a separate pitch
  shift (resample, then restore the length with an overlap-add time stretch);
* gain ±12 dB (the features are loudness-normalised anyway; this also moves the noise floor);
* synthetic reverb: exponentially decaying noise impulse responses, RT60 0.15-0.9 s;
* additive noise at 5-30 dB SNR: white, pink (1/f by FFT shaping) or babble (a sum of other clips);
* a cheap codec simulation: FFT low-pass at 3.4-7.5 kHz plus 8-bit mu-law quantisation. Real codecs
  through ffmpeg cost ~40 ms per call (measured), i.e. a minute per epoch on this CPU, so training uses
  the simulation and the *evaluation* uses real mp3/opus round trips the model never saw
  (:func:`degrade_real`).

All functions take and return float32 mono at 16 kHz and draw from an explicit ``numpy`` Generator, so a
seed reproduces an epoch exactly.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

SR = 16000
F32 = np.float32


def _f32(a: object) -> npt.NDArray[np.float32]:
    return np.asarray(a, dtype=np.float32)


def _rms(x: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


def gain(
    x: npt.NDArray[np.float32], rng: np.random.Generator, max_db: float = 12.0
) -> npt.NDArray[np.float32]:
    """Scale by a random gain in ±``max_db`` dB (clipped to [-1, 1])."""
    g = 10 ** (rng.uniform(-max_db, max_db) / 20)
    return _f32(np.clip(x * g, -1.0, 1.0))


def pink_noise(n: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Unit-RMS 1/f noise by shaping white noise in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / np.sqrt(f), n)
    return _f32(y / (np.std(y) + 1e-12))


def add_noise(
    x: npt.NDArray[np.float32],
    rng: np.random.Generator,
    snr_db: tuple[float, float] = (5.0, 30.0),
    pool: Sequence[npt.NDArray[np.float32]] = (),
) -> npt.NDArray[np.float32]:
    """Add white, pink or babble noise (3-5 random clips of ``pool`` summed) at a random SNR."""
    n = x.shape[0]
    kind = rng.integers(0, 3 if len(pool) >= 3 else 2)
    if kind == 0:
        noise = _f32(rng.standard_normal(n))
    elif kind == 1:
        noise = pink_noise(n, rng)
    else:
        noise = np.zeros(n, F32)
        for _ in range(int(rng.integers(3, 6))):
            c = pool[int(rng.integers(0, len(pool)))]
            if c.shape[0] < n:
                c = np.tile(c, n // max(1, c.shape[0]) + 1)
            off = int(rng.integers(0, c.shape[0] - n + 1))
            seg = c[off : off + n]
            noise += seg / (_rms(seg) + 1e-6)
    return mix_at_snr(x, noise, rng.uniform(*snr_db))


def mix_at_snr(
    x: npt.NDArray[np.float32], noise: npt.NDArray[np.float32], snr_db: float
) -> npt.NDArray[np.float32]:
    """``x`` plus ``noise`` (same length) scaled to lie ``snr_db`` dB under it (RMS)."""
    return _f32(x + noise * (_rms(x) / (_rms(noise) + 1e-12) / 10 ** (snr_db / 20)))


def reverb(
    x: npt.NDArray[np.float32], rng: np.random.Generator, rt60: tuple[float, float] = (0.15, 0.9)
) -> npt.NDArray[np.float32]:
    """Convolve with an exponentially decaying noise impulse response (random RT60 and wet/dry mix)."""
    from scipy.signal import fftconvolve

    t60 = rng.uniform(*rt60)
    n = int(min(t60, 1.0) * SR)
    t = np.arange(n) / SR
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / t60)
    ir[0] = 1.0
    ir /= np.sqrt(np.sum(ir**2))
    wet = fftconvolve(x, ir)[: x.shape[0]]
    mix = rng.uniform(0.3, 1.0)
    y = (1 - mix) * x + mix * wet
    return _f32(y * (_rms(x) / (_rms(y) + 1e-12)))


def resample(x: npt.NDArray[np.float32], factor: float) -> npt.NDArray[np.float32]:
    """Play ``factor`` times faster (pitch and tempo scale together) by linear-phase polyphase resampling."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    fr = Fraction(factor).limit_denominator(40)
    if fr == 1:
        return x
    return _f32(resample_poly(x, fr.denominator, fr.numerator))


def time_stretch(x: npt.NDArray[np.float32], rate: float, win: int = 640) -> npt.NDArray[np.float32]:
    """Change tempo by ``rate`` without changing pitch (plain overlap-add of Hann frames; WSOLA-lite)."""
    hop_out = win // 2
    hop_in = int(round(hop_out * rate))
    if x.shape[0] < win + hop_in or hop_in <= 0:
        return x
    w = np.hanning(win).astype(F32)
    n_frames = (x.shape[0] - win) // hop_in + 1
    out = np.zeros(n_frames * hop_out + win, F32)
    norm = np.zeros_like(out)
    prev = None
    for i in range(n_frames):
        a = i * hop_in
        frame = x[a : a + win]
        if prev is not None:
            # Align to the previous frame's tail within ±hop/4 samples (keeps periodic structure).
            best, best_off = -np.inf, 0
            lim = hop_out // 4
            for off in range(-lim, lim + 1, 4):
                s = a + off
                if s < 0 or s + win > x.shape[0]:
                    continue
                c = float(np.dot(x[s : s + hop_out], prev))
                if c > best:
                    best, best_off = c, off
            frame = x[a + best_off : a + best_off + win]
        o = i * hop_out
        out[o : o + win] += frame * w
        norm[o : o + win] += w
        prev = frame[hop_out:] if frame.shape[0] == win else None
    return _f32(out / np.maximum(norm, 1e-3))


def pitch_shift(x: npt.NDArray[np.float32], semitones: float) -> npt.NDArray[np.float32]:
    """Shift pitch by ``semitones`` keeping the duration (resample, then time-stretch back)."""
    f = 2 ** (semitones / 12)
    y = resample(x, f)
    return time_stretch(y, 1.0 / f)


def codec_sim(x: npt.NDArray[np.float32], rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Low-pass at a random 3.4-7.5 kHz cutoff, then (half the time) 8-bit mu-law quantisation."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.shape[0], 1 / SR)
    cut = rng.uniform(3400, 7500)
    spec[freqs > cut] = 0
    y = np.fft.irfft(spec, x.shape[0]).astype(F32)
    if rng.random() < 0.5:
        peak = float(np.max(np.abs(y))) + 1e-9
        z = np.clip(y / peak, -1, 1)
        mu = 255.0
        c = np.sign(z) * np.log1p(mu * np.abs(z)) / np.log1p(mu)
        c = np.round(c * 127) / 127
        y = (np.sign(c) * ((1 + mu) ** np.abs(c) - 1) / mu * peak).astype(F32)
    return y


def crop_and_pad(
    x: npt.NDArray[np.float32],
    rng: np.random.Generator,
    min_s: float = 1.0,
    max_s: float = 6.0,
    max_pad_s: float = 0.6,
) -> npt.NDArray[np.float32]:
    """Random crop (``min_s`` .. whole clip) plus random leading/trailing silence with a faint noise floor."""
    n = x.shape[0]
    lo = min(n, int(min_s * SR))
    hi = min(n, int(max_s * SR))
    length = int(rng.integers(lo, hi + 1)) if hi > lo else hi
    if rng.random() < 0.5:
        length = hi  # keep the whole (trimmed) utterance fairly often
    start = int(rng.integers(0, n - length + 1))
    y = x[start : start + length]
    pre = int(rng.uniform(0, max_pad_s) * SR)
    post = int(rng.uniform(0, max_pad_s) * SR)
    floor = _rms(y) * 10 ** (rng.uniform(-70, -40) / 20)
    out = rng.standard_normal(pre + length + post).astype(F32) * floor
    out[pre : pre + length] += y
    return _f32(out)


def augment(
    x: npt.NDArray[np.float32],
    rng: np.random.Generator,
    pool: Sequence[npt.NDArray[np.float32]] = (),
    strength: float = 1.0,
) -> npt.NDArray[np.float32]:
    """The full random training chain (each step applied with a probability scaled by ``strength``)."""
    p = strength
    if rng.random() < 0.5 * p:
        x = resample(x, rng.uniform(0.88, 1.12))
    if rng.random() < 0.25 * p:
        x = pitch_shift(x, rng.uniform(-2.5, 2.5))
    x = crop_and_pad(x, rng)
    if rng.random() < 0.35 * p:
        x = reverb(x, rng)
    if rng.random() < 0.5 * p:
        x = add_noise(x, rng, pool=pool)
    if rng.random() < 0.3 * p:
        x = codec_sim(x, rng)
    x = gain(x, rng)
    return x


def degrade_real(
    x: npt.NDArray[np.float32], rng: np.random.Generator, codec: str = "mp3"
) -> npt.NDArray[np.float32]:
    """A held-out degradation the training chain never uses, for robustness checks.

    Telephone-band resampling (8 kHz and back), a real ffmpeg codec round trip (``mp3`` at 32 kbit/s or
    ``opus`` at 16 kbit/s), a reverb with a longer tail than training (RT60 0.9-1.3 s) and babble-free
    brown noise at 10-20 dB SNR.
    """
    y = resample(x, 2.0)
    y = resample(y, 0.5)[: x.shape[0]]
    y = reverb(y, rng, rt60=(0.9, 1.3))
    brown = np.cumsum(rng.standard_normal(y.shape[0])).astype(F32)
    brown -= np.linspace(brown[0], brown[-1], brown.shape[0]).astype(F32)
    return ffmpeg_roundtrip(mix_at_snr(y, brown, rng.uniform(10, 20)), codec)


def ffmpeg_roundtrip(x: npt.NDArray[np.float32], codec: str = "mp3") -> npt.NDArray[np.float32]:
    """Encode with ffmpeg (``mp3`` 32 kbit/s or ``opus`` 16 kbit/s) and decode back to 16 kHz float32."""
    args = {
        "mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"],
        "opus": ["-c:a", "libopus", "-b:a", "16k", "-f", "ogg"],
    }[codec]
    with tempfile.TemporaryDirectory() as td:
        src = os.path.join(td, "in.f32")
        np.clip(x, -1, 1).astype("<f4").tofile(src)
        enc = os.path.join(td, "enc")
        base = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
        subprocess.run(
            [*base, "-f", "f32le", "-ar", str(SR), "-ac", "1", "-i", src, *args, enc],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [*base, "-i", enc, "-ac", "1", "-ar", str(SR), "-f", "f32le", "pipe:1"],
            check=True,
            capture_output=True,
        ).stdout
    y = np.frombuffer(out, dtype="<f4").astype(F32)
    if y.shape[0] >= x.shape[0]:
        return y[: x.shape[0]]
    return np.pad(y, (0, x.shape[0] - y.shape[0]))
