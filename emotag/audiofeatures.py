"""Audio features for the voice branch: normalised log-mel spectrograms, prosody, and a speech-evidence score.

Why hand-written: torchaudio is not a dependency (it pins its own torch) and librosa would add numba and a
slow import for three functions, so the STFT is ``torch.stft`` and the mel filterbank is
``transformers.audio_utils.mel_filter_bank`` (Slaney scale, 64 bands, 50 Hz to 8 kHz). Everything is batched
in torch over a padded ``(B, N)`` tensor with per-item lengths, so the whole feature pass for 32 five-second
cues costs a few milliseconds on 2 CPU threads (measured: see ``emotag/models/audio.py``).

Loudness does not matter by construction: the log-mel is z-scored per utterance over its active frames, and
every energy feature of the prosody vector is relative to the utterance's loudest frame. Channel and codec
robustness comes from training-time augmentation (:mod:`emotag.training.augment`), not from here.

Prosody (:data:`PROSODY_NAMES`) is computed per utterance on 40 ms frames with a 20 ms hop: F0 by the
normalised autocorrelation of a Hann-windowed frame divided by the window's own autocorrelation (Boersma
1993), taking the shortest-lag local peak within 85 % of the best one to avoid octave errors; jitter,
shimmer and HNR are frame-level approximations (Praat's are period-level), good enough as model inputs.
The vector ends with a spectral profile (16 bands of 4 mel bands, mean log energy over active frames, minus
the bands' mean): loudness-free, and, once the audio branch normalises it per file, a measure of how much
brighter or darker a line is than the speaker's usual voice (tense anger and joy brighten it, sadness
darkens it).

Speech evidence (:func:`speech_evidence` inside :func:`prosody_and_evidence`) is 0 for digital silence, steady
tones and broadband noise, close to 1 for speech: the product of a level gate, the share of voiced frames, the
spread of frame energy (syllables come and go; a held tone does not), low spectral flatness and gliding pitch
(:func:`_gliding_frames`: speech pitch moves all the time, a played note holds it and jumps to the next). The
glide gate is what tells a melody from a voice: synthetic piano-like melodies measured 0.77-1.0 without it and
0 with it, a drum loop 0.43 -> 0, brown noise 0.12-0.47 -> 0, while all 1,440 RAVDESS clips, espeak-ng lines
and RAVDESS speech over those melodies, strummed chords or drums 10 or 20 dB under the voice kept their
evidence to 0.001 (as loud as the voice: 2 of 120 cues moved, by up to 0.06; 2026-11-27). Not caught:
overlapping sustained notes whose beating makes the pitch estimate wander, and a chord amplitude-modulated at
syllable rate; telling those from a voice needs more than pitch and energy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

#: Sample rate every feature assumes (the pipeline decodes at 16 kHz).
SAMPLE_RATE = 16000
#: Log-mel parameters: 25 ms Hann window, 10 ms hop, 512-point FFT, 64 Slaney mel bands.
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_MELS = 64
F_MIN = 50.0
F_MAX = 8000.0
#: Prosody frame analysis: 40 ms frames, 20 ms hop, F0 searched between 60 and 500 Hz.
PROSODY_WIN = 640
PROSODY_HOP = 320
PROSODY_FFT = 1024
F0_MIN = 60.0
F0_MAX = 500.0
#: Top of the band whose spectral flatness gates the speech evidence (the F0 pass's 8 kHz spectrum).
EVIDENCE_FLAT_MAX_HZ = 4000.0
#: Music gate of the speech evidence: a voiced 20 ms frame "glides" when it lies in a run of at least
#: :data:`GLIDE_RUN` consecutive voiced frame pairs whose pitch moves by :data:`GLIDE_MIN_ST` semitones or
#: more (speech pitch moves all the time; a note holds it and jumps to the next). The gate is full when the
#: gliding frames are at least :data:`GLIDE_SHARE` of the voiced frames the voiced-share gate asks for.
GLIDE_MIN_ST = 0.05
GLIDE_RUN = 3
GLIDE_SHARE = 0.5
#: Share of a cue's frames that must be voiced for the voiced-share gate to be full.
VOICED_SHARE = 0.15
#: Frames more than this many dB under the utterance's loudest frame count as pauses.
ACTIVE_RANGE_DB = 35.0
#: Frames quieter than this (dBFS of a full-scale float waveform) are never active.
ABS_FLOOR_DB = -80.0

#: The prosody vector, in order. ``st`` = semitones re 100 Hz; energies are dB re the loudest frame.
PROSODY_NAMES: tuple[str, ...] = (
    "f0_mean_st",
    "f0_std_st",
    "f0_range_st",
    "f0_slope_st_per_s",
    "voiced_ratio",
    "energy_mean_db",
    "energy_std_db",
    "energy_range_db",
    "energy_delta_db",
    "rate_peaks_per_s",
    "centroid_khz",
    "tilt_db",
    "flatness",
    "jitter_st",
    "shimmer_db",
    "hnr_db",
    *(f"profile_{i:02d}_db" for i in range(16)),
)
N_PROSODY = len(PROSODY_NAMES)
#: The first 16 entries are prosody proper; models trained before the spectral profile read only those.
N_PROSODY_CORE = 16
#: The spectral profile: mean log energy of 16 bands (4 adjacent mel bands each) over active frames, minus
#: their average. Loudness-free; per-file normalisation turns it into "brighter/darker than this speaker".
N_PROFILE = N_PROSODY - N_PROSODY_CORE


@dataclass(frozen=True, slots=True)
class Features:
    """Batched features of ``B`` waveforms.

    Attributes:
        mel: ``(B, N_MELS, T)`` float32 log-mel, z-scored per utterance, zero in padding.
        mask: ``(B, T)`` bool, True on frames inside each waveform.
        prosody: ``(B, N_PROSODY)`` float32 raw prosody (see :data:`PROSODY_NAMES`).
        evidence: ``(B,)`` float32 speech presence in [0, 1].
    """

    mel: torch.Tensor
    mask: torch.Tensor
    prosody: torch.Tensor
    evidence: torch.Tensor


@functools.lru_cache(maxsize=1)
def _mel_matrix() -> npt.NDArray[np.float32]:
    from transformers.audio_utils import mel_filter_bank

    m = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=N_MELS,
        min_frequency=F_MIN,
        max_frequency=F_MAX,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return np.ascontiguousarray(m, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def _cosine_lags(n: int, lags: tuple[int, ...]) -> torch.Tensor:
    """``(n // 2 + 1, len(lags))`` float32 matrix taking a power spectrum to the autocorrelation at ``lags``:
    ``irfft(power, n)[lags]``, the lags wanted and no others.

    The F0 pass reads 121 of the 512 lags an inverse FFT gives; this product costs a third of that FFT
    (0.25 against 0.8 CPU-ms per 5 s cue on one thread, ``runs/s18/evlp.py``, 2026-11-27), and agrees
    with it to float rounding (tested).
    """
    import torch

    k = np.arange(n // 2 + 1)[:, None]
    weight = np.where((k == 0) | (k == n // 2), 1.0, 2.0) / n  # the bins a real inverse FFT counts twice
    cos = weight * np.cos(2.0 * np.pi * k * np.asarray(lags)[None, :] / n)
    return torch.from_numpy(cos.astype(np.float32))


def pad_batch(
    waveforms: Sequence[npt.NDArray[np.float32]], min_samples: int = PROSODY_WIN
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D waveforms into a zero-padded ``(B, N)`` tensor plus their lengths.

    Args:
        waveforms: float mono waveforms at 16 kHz (any length, even empty).
        min_samples: pad every batch to at least this many samples so that one frame exists.

    Returns:
        ``(batch, lengths)``: float32 ``(B, N)`` and int64 ``(B,)`` (lengths at least 1).
    """
    import torch

    lens = [int(np.asarray(w).reshape(-1).shape[0]) for w in waveforms]
    # Always leave silent frames after the longest item, so that frame statistics that look at
    # neighbours (the energy envelope's peaks) see the same thing alone as inside a longer batch.
    n = max([min_samples, *lens]) + PROSODY_WIN + 2 * PROSODY_HOP
    out = torch.zeros((len(waveforms), n), dtype=torch.float32)
    for i, w in enumerate(waveforms):
        arr = np.asarray(w, dtype=np.float32).reshape(-1)
        if arr.size:
            out[i, : arr.size] = torch.from_numpy(arr)
    out.nan_to_num_()  # here, not on the inputs: a float32 waveform would be the caller's own array
    return out, torch.tensor([max(1, x) for x in lens], dtype=torch.int64)


def log_mel(batch: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-utterance normalised log-mel spectrogram.

    The log-mel is floored 80 dB under the utterance's loudest bin, then z-scored over the bins of frames
    within 50 dB of the loudest frame, so that gain and the amount of surrounding silence do not change it.

    Args:
        batch: ``(B, N)`` float32 waveforms at 16 kHz, zero-padded.
        lengths: ``(B,)`` valid samples per row.

    Returns:
        ``(mel, mask)``: ``(B, N_MELS, T)`` float32 (0 in padding) and ``(B, T)`` bool.
    """
    return log_mel_from_power(stft_power(batch), lengths)


def stft_power(batch: torch.Tensor) -> torch.Tensor:
    """``(B, N_FFT // 2 + 1, T)`` power spectrogram (25 ms Hann, 10 ms hop, centred, zero-padded)."""
    import torch

    window = torch.hann_window(WIN_LENGTH)
    spec = torch.stft(
        batch, N_FFT, HOP_LENGTH, WIN_LENGTH, window, center=True, pad_mode="constant", return_complex=True
    )
    return spec.real.square() + spec.imag.square()


def log_mel_from_power(power: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`log_mel` from a :func:`stft_power` spectrogram."""
    import torch

    mel = torch.matmul(power.transpose(1, 2), torch.from_numpy(_mel_matrix())).transpose(1, 2)
    logm = torch.log(mel + 1e-10)
    t = logm.shape[-1]
    frame_idx = torch.arange(t)
    mask = (frame_idx[None, :] * HOP_LENGTH) < lengths[:, None]
    neg = torch.finfo(logm.dtype).min
    masked = logm.masked_fill(~mask[:, None, :], neg)
    top = masked.amax(dim=(1, 2), keepdim=True)
    logm = torch.maximum(logm, top - 80.0 * math.log(10.0) / 10.0)
    frame_level = masked.amax(dim=1)  # (B, T) loudest bin per frame
    active = mask & (frame_level > top[:, 0, :] - 50.0 * math.log(10.0) / 10.0)
    w = active[:, None, :].to(logm.dtype).expand_as(logm)
    count = w.sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
    mu = (logm * w).sum(dim=(1, 2), keepdim=True) / count
    var = ((logm - mu).square() * w).sum(dim=(1, 2), keepdim=True) / count
    out = (logm - mu) / var.sqrt().clamp_min(1e-3)
    out = out.masked_fill(~mask[:, None, :], 0.0)
    return out.contiguous(), mask


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    mf = m.to(x.dtype)
    return (x * mf).sum(-1) / mf.sum(-1).clamp_min(1.0)


def _masked_std(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    mu = _masked_mean(x, m)
    return _masked_mean((x - mu[:, None]).square(), m).sqrt()


def _masked_quantile(x: torch.Tensor, m: torch.Tensor, q: float) -> torch.Tensor:
    import torch

    big = torch.where(m, x, torch.full_like(x, float("inf")))
    srt, _ = big.sort(dim=-1)
    n = m.sum(-1)
    idx = ((n - 1).clamp_min(0).to(x.dtype) * q).round().long()
    val = srt.gather(-1, idx[:, None])[:, 0]
    return torch.where(n > 0, val, torch.zeros_like(val))


def _pair_mask(m: torch.Tensor) -> torch.Tensor:
    return m[:, 1:] & m[:, :-1]


def prosody_and_evidence(
    batch: torch.Tensor,
    lengths: torch.Tensor,
    power: torch.Tensor | None = None,
    *,
    evidence_only: bool = False,
    frame_counts: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prosody vector and speech evidence per utterance.

    F0 runs on the waveform decimated to 8 kHz (40 ms frames, 20 ms hop, 512-point FFT: half the cost of
    16 kHz, same F0 range); spectral centroid, tilt and flatness reuse the log-mel's STFT. The evidence's
    flatness gate reads the F0 pass's own 8 kHz spectrum (50 Hz to :data:`EVIDENCE_FLAT_MAX_HZ`, over the
    active 20 ms frames), so the evidence needs no 16 kHz STFT: the evidence-only pass costs 1.8-1.9
    instead of 3.1 CPU-ms per 5 s speech cue on one thread (2026-11-27). Against the 16 kHz flatness
    (50-7000 Hz, 10 ms frames) it reads the same on clean speech, noise, tones and music (correlation
    0.975 over RAVDESS clips, noisy copies and synthetic signals; ``old = 1.05 new - 0.02``, so the gate's
    thresholds stayed), and a little differently on noisy speech: mean evidence in pink noise at 10 dB SNR
    0.970 -> 0.884, in white noise at 20 dB 0.454 -> 0.572.
    The glide gate (see the module docstring) reads the F0 track before its octave-error filter: music in a
    speech pause can set the median an octave from the voice.

    Args:
        batch: ``(B, N)`` float32 waveforms at 16 kHz, zero-padded to at least :data:`PROSODY_WIN`.
        lengths: ``(B,)`` valid samples per row.
        power: the batch's :func:`stft_power`, if already computed.
        evidence_only: compute only what the evidence needs (no 16 kHz STFT); the prosody returned is
            then zeros. The evidence is the same either way.
        frame_counts: ``(B,)`` prosody frames of each *whole* cue when ``batch`` holds only the speech part
            of it (:func:`speech_evidence` with ``trim``): the voiced share is of the whole cue.

    Returns:
        ``(prosody, evidence)``: ``(B, N_PROSODY)`` float32 and ``(B,)`` float32 in [0, 1].
    """
    import torch

    b = batch.shape[0]
    sr8 = SAMPLE_RATE // 2
    n2 = batch.shape[1] // 2 * 2
    dec = 0.5 * (batch[:, 0:n2:2] + batch[:, 1:n2:2])
    win_n, hop_n, fft_n = PROSODY_WIN // 2, PROSODY_HOP // 2, PROSODY_FFT // 2
    frames = dec.unfold(-1, win_n, hop_n)  # (B, F, W)
    nf = frames.shape[1]
    starts = torch.arange(nf) * PROSODY_HOP
    valid = (starts[None, :] + PROSODY_WIN // 2) < lengths[:, None]
    valid[:, 0] = True
    frames = frames - frames.mean(-1, keepdim=True)
    edb = 10.0 * torch.log10(frames.square().mean(-1) + 1e-10)
    maxdb = edb.masked_fill(~valid, -200.0).amax(-1)
    active = valid & (edb > (maxdb[:, None] - ACTIVE_RANGE_DB)) & (edb > ABS_FLOOR_DB)

    win = torch.hann_window(win_n, periodic=False)
    spec = torch.fft.rfft(frames * win, n=fft_n)
    p8 = spec.real.square() + spec.imag.square()  # (B, F, fft_n // 2 + 1) power at 8 kHz
    lo = int(sr8 / F0_MAX)
    hi = int(sr8 / F0_MIN)
    lags = (0, *range(lo - 1, hi + 2))  # lag 0 (the frame's energy) and the F0 range with a lag either side
    ac = torch.matmul(p8, _cosine_lags(fft_n, lags))  # (B, F, 1 + lags): the autocorrelation at those lags
    wspec = torch.fft.rfft(win, n=fft_n)
    wac = torch.fft.irfft(wspec.real.square() + wspec.imag.square(), n=fft_n)
    nacf = ac[..., 1:] / ac[..., :1].clamp_min(1e-12) / (wac[lo - 1 : hi + 2] / wac[0])
    mid = nacf[..., 1:-1]
    is_peak = (mid > nacf[..., :-2]) & (mid >= nacf[..., 2:])
    best = mid.masked_fill(~is_peak, -1.0).amax(-1)
    cand = is_peak & (mid >= 0.85 * best[..., None])
    nl = mid.shape[-1]
    first = (cand.to(torch.int64) * (nl - torch.arange(nl))).argmax(-1)  # smallest qualifying lag
    idx = first + 1
    y0 = nacf.gather(-1, (idx - 1)[..., None])[..., 0]
    y1 = nacf.gather(-1, idx[..., None])[..., 0]
    y2 = nacf.gather(-1, (idx + 1)[..., None])[..., 0]
    den = y0 - 2 * y1 + y2
    shift = torch.where(den.abs() > 1e-9, 0.5 * (y0 - y2) / den, torch.zeros_like(den)).clamp(-0.5, 0.5)
    lag = (first + lo).to(batch.dtype) + shift
    r = y1.clamp(0.0, 0.999)
    st = 12.0 * torch.log2(sr8 / lag / 100.0)
    voiced = active & (best > 0.5)
    glides = _gliding_frames(st, voiced)
    # Octave errors: drop voiced frames more than an octave away from the utterance's median F0.
    med = _masked_quantile(st, voiced, 0.5)
    voiced = voiced & ((st - med[:, None]).abs() < 12.0)
    vcount = voiced.sum(-1)
    rel = edb - maxdb[:, None]
    e_mean = _masked_mean(rel, active)
    e_std = _masked_std(rel, active)

    # Spectral flatness for the evidence, from the F0 pass's own 8 kHz spectrum over the active frames (the
    # 10 ms 16 kHz STFT below is the prosody's, and costs as much again as everything else here).
    band8 = p8[..., _bins(torch.fft.rfftfreq(fft_n, 1.0 / sr8), 50, EVIDENCE_FLAT_MAX_HZ)] + 1e-12
    ev_flatness = _masked_mean(torch.exp(torch.log(band8).mean(-1)) / band8.mean(-1), active)

    # Evidence: level gate x voiced share of the whole cue x energy modulation x low flatness x gliding pitch.
    counts = (valid.sum(-1) if frame_counts is None else frame_counts).to(batch.dtype).clamp_min(1.0)
    vshare = vcount.to(batch.dtype) / counts
    g_level = ((maxdb + 60.0) / 10.0).clamp(0.0, 1.0)
    g_voiced = (vshare / VOICED_SHARE).clamp(0.0, 1.0)
    g_mod = ((e_std - 1.5) / 3.0).clamp(0.0, 1.0)
    g_flat = ((0.45 - ev_flatness) / 0.25).clamp(0.0, 1.0)
    wanted = GLIDE_SHARE * torch.minimum(vcount.to(batch.dtype), VOICED_SHARE * counts).clamp_min(1.0)
    g_glide = (glides.sum(-1).to(batch.dtype) / wanted).clamp(0.0, 1.0)
    evidence = (g_level * g_voiced * g_mod * g_flat * g_glide).to(torch.float32)
    if evidence_only:
        return torch.zeros((b, N_PROSODY), dtype=torch.float32), evidence

    if power is None:
        power = stft_power(batch)
    # Spectral shape from the 10 ms STFT, over frames within ACTIVE_RANGE_DB of the loudest one. The bands
    # are slices: the bin frequencies rise with the index.
    pw = power.transpose(1, 2)  # (B, T, K)
    tn = pw.shape[1]
    sdb = 10.0 * torch.log10(pw.sum(-1) + 1e-10)
    smask = (torch.arange(tn)[None, :] * HOP_LENGTH) < lengths[:, None]
    smax = sdb.masked_fill(~smask, -200.0).amax(-1)
    sact = smask & (sdb > smax[:, None] - ACTIVE_RANGE_DB) & (sdb > smax[:, None].clamp_max(0.0) - 200.0)
    freqs = torch.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    band = pw[..., _bins(freqs, 50, 7000)] + 1e-12
    flatness = _masked_mean(torch.exp(torch.log(band).mean(-1)) / band.mean(-1), sact)

    tsec = starts.to(batch.dtype) / SAMPLE_RATE
    f0_mean = _masked_mean(st, voiced)
    f0_std = _masked_std(st, voiced)
    f0_range = _masked_quantile(st, voiced, 0.9) - _masked_quantile(st, voiced, 0.1)
    tmean = _masked_mean(tsec.expand(b, nf), voiced)
    tc = tsec[None, :] - tmean[:, None]
    vf = voiced.to(batch.dtype)
    slope = (tc * (st - f0_mean[:, None]) * vf).sum(-1) / ((tc.square() * vf).sum(-1) + 1e-3)
    acount = active.sum(-1).to(batch.dtype).clamp_min(1.0)
    voiced_ratio = vcount.to(batch.dtype) / acount

    e_range = _masked_quantile(rel, active, 0.9) - _masked_quantile(rel, active, 0.1)
    e_delta = _masked_mean((rel[:, 1:] - rel[:, :-1]).abs(), _pair_mask(active))

    # Speaking-rate proxy: peaks of the 100 ms-smoothed energy envelope per second of active speech.
    env = torch.nn.functional.avg_pool1d(rel[:, None, :], 5, stride=1, padding=2, count_include_pad=False)[
        :, 0
    ]
    pk = (env[:, 1:-1] > env[:, :-2]) & (env[:, 1:-1] >= env[:, 2:]) & active[:, 1:-1]
    pk = pk & (env[:, 1:-1] > e_mean[:, None] - 3.0)
    rate = pk.sum(-1).to(batch.dtype) / (acount * PROSODY_HOP / SAMPLE_RATE)

    tot = pw.sum(-1).clamp_min(1e-12)
    centroid = _masked_mean((pw * freqs).sum(-1) / tot / 1000.0, sact)
    low = pw[..., _bins(freqs, 50, 1000)].sum(-1).clamp_min(1e-12)
    midb = pw[..., _bins(freqs, 1000, 4000)].sum(-1).clamp_min(1e-12)
    tilt = _masked_mean(10.0 * torch.log10(midb / low), sact)

    pv = _pair_mask(voiced)
    jitter = _masked_mean((st[:, 1:] - st[:, :-1]).abs(), pv)
    shimmer = _masked_mean((edb[:, 1:] - edb[:, :-1]).abs(), pv)
    hnr = _masked_mean(10.0 * torch.log10(r / (1.0 - r) + 1e-6), voiced)

    melp = torch.matmul(pw, torch.from_numpy(_mel_matrix()))  # (B, T, 64)
    bands = 10.0 * torch.log10(melp.reshape(b, tn, N_PROFILE, -1).sum(-1) + 1e-10)  # (B, T, 16)
    sf = sact.to(bands.dtype)[..., None]
    prof = (bands * sf).sum(1) / sf.sum(1).clamp_min(1.0)
    prof = prof - prof.mean(-1, keepdim=True)

    pros = torch.stack(
        [
            f0_mean,
            f0_std,
            f0_range,
            slope,
            voiced_ratio,
            e_mean,
            e_std,
            e_range,
            e_delta,
            rate,
            centroid,
            tilt,
            flatness,
            jitter,
            shimmer,
            hnr,
        ],
        dim=-1,
    )
    pros = torch.cat([pros, prof.to(pros.dtype)], dim=-1)
    pros = torch.nan_to_num(pros, nan=0.0, posinf=0.0, neginf=0.0)
    return pros.to(torch.float32), evidence


def _gliding_frames(st: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
    """``(B, F)`` bool: voiced frames inside a run of :data:`GLIDE_RUN` or more consecutive voiced frame pairs
    whose pitch (``st``, semitones) moves by at least :data:`GLIDE_MIN_ST` from one frame to the next."""
    import torch

    moving = voiced[:, 1:] & voiced[:, :-1] & ((st[:, 1:] - st[:, :-1]).abs() >= GLIDE_MIN_ST)
    if moving.shape[1] < GLIDE_RUN:
        return torch.zeros_like(voiced)
    runs = moving[:, : moving.shape[1] - GLIDE_RUN + 1].clone()  # run of GLIDE_RUN pairs starting here
    for k in range(1, GLIDE_RUN):
        runs &= moving[:, k : moving.shape[1] - GLIDE_RUN + 1 + k]
    # frame j glides when a run starts at one of the pairs j - GLIDE_RUN .. j (it covers frames k .. k + RUN)
    pad = torch.nn.functional.pad(runs.to(torch.float32)[:, None, :], (GLIDE_RUN, GLIDE_RUN))
    covered = torch.nn.functional.max_pool1d(pad, GLIDE_RUN + 1, stride=1)[:, 0, :]
    return covered > 0


def _bins(freqs: torch.Tensor, lo_hz: float, hi_hz: float) -> slice:
    """The slice of ascending bin frequencies ``freqs`` in ``[lo_hz, hi_hz)``."""
    import torch

    return slice(int(torch.searchsorted(freqs, lo_hz).item()), int(torch.searchsorted(freqs, hi_hz).item()))


def compute_features(waveforms: Sequence[npt.NDArray[np.float32]]) -> Features:
    """All features of a batch of 16 kHz mono waveforms (see :class:`Features`)."""
    batch, lengths = pad_batch(waveforms)
    return features_from_batch(batch, lengths)


def features_from_batch(batch: torch.Tensor, lengths: torch.Tensor, *, with_prosody: bool = True) -> Features:
    """:func:`compute_features` on an already padded ``(B, N)`` batch.

    ``with_prosody=False`` skips the prosody pass (the caller already has it): prosody and evidence are
    then zeros.
    """
    import torch

    with torch.no_grad():
        power = stft_power(batch)
        mel, mask = log_mel_from_power(power, lengths)
        if with_prosody:
            pros, ev = prosody_and_evidence(batch, lengths, power)
        else:
            pros, ev = torch.zeros((batch.shape[0], N_PROSODY)), torch.zeros((batch.shape[0],))
    return Features(mel=mel, mask=mask, prosody=pros, evidence=ev)


#: :func:`trim_silence`: frame length (20 ms), silence kept on each side of the speech, shortest result.
TRIM_FRAME = PROSODY_HOP
TRIM_MARGIN_S = 0.1
TRIM_MIN_S = 0.5


def trim_silence(wave: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``wave`` (16 kHz) without its leading and trailing silence.

    Speech is every 20 ms frame within :data:`ACTIVE_RANGE_DB` of the loudest frame and above
    :data:`ABS_FLOOR_DB` (the prosody pass's "active" rule); :data:`TRIM_MARGIN_S` is kept on each side and
    at least :data:`TRIM_MIN_S` returned. Pauses inside the speech stay, and so does noise within the
    range of the speech (a noisy cue is not trimmed). Why: subtitle timing decides how much silence a cue
    carries, and a voice branch that pools over time must not read that as emotion (RAVDESS clips, for
    one, start with about a second of studio silence).
    """
    x = np.asarray(wave, dtype=np.float32).reshape(-1)
    lo, hi = speech_span(x)
    return x[lo:hi]


def speech_span(x: npt.NDArray[np.float32]) -> tuple[int, int]:
    """``(start, end)`` sample indices of the part of 1-D ``x`` that :func:`trim_silence` keeps."""
    n = x.size // TRIM_FRAME
    if n < 3:
        return 0, x.size
    frames = x[: n * TRIM_FRAME].reshape(n, TRIM_FRAME)
    frames = frames - frames.mean(1, keepdims=True)
    edb = 10.0 * np.log10(np.square(frames).mean(1) + 1e-10)
    active = np.flatnonzero((edb > edb.max() - ACTIVE_RANGE_DB) & (edb > ABS_FLOOR_DB))
    if active.size == 0:
        return 0, x.size
    margin, shortest = int(TRIM_MARGIN_S * SAMPLE_RATE), int(TRIM_MIN_S * SAMPLE_RATE)
    lo = max(0, int(active[0]) * TRIM_FRAME - margin)
    hi = min(x.size, (int(active[-1]) + 1) * TRIM_FRAME + margin)
    if hi - lo < shortest:
        lo = max(0, lo - (shortest - (hi - lo)) // 2)
        hi = min(x.size, lo + shortest)
    return lo, hi


def _prosody_frames(length: int) -> int:
    """Valid prosody frames of a cue of ``length`` samples (see :func:`prosody_and_evidence`).

    Frame ``k`` counts when ``k * hop + win / 2 < length``, and the first always; :func:`pad_batch` leaves
    room for all of them.
    """
    return max(1, -(-(max(1, length) - PROSODY_WIN // 2) // PROSODY_HOP))


#: Waveforms per :func:`speech_evidence` pass (sorted by length, so little padding is computed).
EVIDENCE_BATCH = 32


def speech_evidence(
    waveforms: Sequence[npt.NDArray[np.float32]], *, trim: bool = True
) -> npt.NDArray[np.float32]:
    """Speech presence in [0, 1] per waveform (0 for silence, steady tones, noise).

    Computed in batches of :data:`EVIDENCE_BATCH` waveforms of similar length, so memory stays bounded
    however many cues a media file has (one padded batch of 1,440 clips peaked at 6 GB).

    With ``trim`` only each cue's speech span (:func:`speech_span`, started on the 20 ms frame grid) is
    analysed, while the voiced share stays that of the whole cue: the frames cut away are quieter than
    the cue's "active" range, so they add nothing but their count, which is passed along. Same evidence
    up to the odd edge frame (the test compares both), for the cost of the speech alone: a 5 s cue with
    2 s of speech costs about half.
    """
    import torch

    waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waveforms]
    counts = None  # frames of each whole cue, when only its span is analysed
    if trim:
        counts = torch.tensor([_prosody_frames(w.size) for w in waves], dtype=torch.int64)
        spans = [speech_span(w) for w in waves]  # NaN anywhere: the whole cue
        waves = [w[lo - lo % PROSODY_HOP : hi] for w, (lo, hi) in zip(waves, spans, strict=True)]
    out = np.zeros(len(waves), np.float32)
    order = np.argsort([w.shape[0] for w in waves], kind="stable")
    for s in range(0, len(waves), EVIDENCE_BATCH):
        idx = order[s : s + EVIDENCE_BATCH]
        batch, lengths = pad_batch([waves[i] for i in idx])
        frame_counts = counts[torch.from_numpy(idx)] if counts is not None else None
        _, ev = prosody_and_evidence(batch, lengths, evidence_only=True, frame_counts=frame_counts)
        out[idx] = ev.numpy()
    return out
