"""Audio features on speech made at test time (espeak-ng), tones, noise and silence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emotag.audiofeatures import (
    EVIDENCE_BATCH,
    N_MELS,
    N_PROSODY,
    PROSODY_NAMES,
    _cosine_lags,
    compute_features,
    pad_batch,
    prosody_and_evidence,
    speech_evidence,
    trim_silence,
)
from tests import mediagen

pytestmark = pytest.mark.skipif(not mediagen.have_tools(), reason="needs ffmpeg and espeak-ng")

SR = 16000
LINE = "I cannot believe you did that again, this is wonderful news."


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    d = tmp_path_factory.mktemp("voices")
    return {
        "high": mediagen.read_wav(mediagen.speak(LINE, d / "hi.wav", pitch=85)),
        "low": mediagen.read_wav(mediagen.speak(LINE, d / "lo.wav", pitch=15)),
        "fast": mediagen.read_wav(mediagen.speak(LINE, d / "fast.wav", speed=260)),
        "slow": mediagen.read_wav(mediagen.speak(LINE, d / "slow.wav", speed=110)),
    }


def _p(feats: np.ndarray, name: str) -> np.ndarray:
    return feats[:, PROSODY_NAMES.index(name)]


def test_f0_follows_espeak_pitch(voices: dict[str, np.ndarray]) -> None:
    f = compute_features([voices["high"], voices["low"]])
    f0 = _p(f.prosody.numpy(), "f0_mean_st")
    assert f0[0] > f0[1] + 4.0, f0  # -p 85 vs -p 15: several semitones apart
    assert (_p(f.prosody.numpy(), "voiced_ratio") > 0.4).all()


def test_speaking_rate_proxy_orders_fast_and_slow(voices: dict[str, np.ndarray]) -> None:
    f = compute_features([voices["fast"], voices["slow"]])
    rate = _p(f.prosody.numpy(), "rate_peaks_per_s")
    assert rate[0] > rate[1], rate


def test_loudness_does_not_change_features(voices: dict[str, np.ndarray]) -> None:
    x = voices["high"]
    f = compute_features([x, x * 0.08, np.clip(x * 2.5, -1, 1)])
    mel = f.mel.numpy()
    assert np.abs(mel[0] - mel[1]).max() < 0.05
    pros = f.prosody.numpy()
    for name in ("f0_mean_st", "energy_std_db", "centroid_khz", "voiced_ratio"):
        i = PROSODY_NAMES.index(name)
        assert abs(pros[0, i] - pros[1, i]) <= 0.05 * abs(pros[0, i]) + 0.05, name


def test_evidence_speech_vs_silence_tone_noise(voices: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    waves = [
        voices["high"],
        np.zeros(2 * SR, np.float32),
        (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
        (0.1 * rng.standard_normal(3 * SR)).astype(np.float32),
        (1e-5 * rng.standard_normal(2 * SR)).astype(np.float32),
        np.zeros(3, np.float32),
    ]
    ev = speech_evidence(waves)
    assert ev[0] > 0.8, ev
    assert (ev[1:] < 0.1).all(), ev
    # many cues (a long media file): scored in length-sorted batches, in input order, as if one by one
    many = [waves[k % len(waves)] for k in range(3 * EVIDENCE_BATCH + 5)]
    assert np.allclose(speech_evidence(many), [ev[k % len(waves)] for k in range(len(many))], atol=1e-4)
    assert speech_evidence([]).shape == (0,)


def test_evidence_falls_as_noise_drowns_the_speech(voices: dict[str, np.ndarray]) -> None:
    """Speech under rising white or pink noise: evidence near 1 while the words are clear, falling with the
    signal-to-noise ratio, near 0 once the noise is louder than the voice (the flatness gate at work)."""
    rng = np.random.default_rng(3)
    for name in ("high", "low"):
        v = voices[name]
        rms = float(np.sqrt(np.mean(v.astype(np.float64) ** 2)))
        for colour in ("white", "pink"):
            waves = []
            for snr_db in (40, 20, 10, 5, 0, -10):
                noise = rng.standard_normal(v.size)
                if colour == "pink":
                    spec = np.fft.rfft(noise)
                    spec[1:] /= np.sqrt(np.arange(1, spec.size))
                    noise = np.fft.irfft(spec, v.size)
                noise *= rms / 10 ** (snr_db / 20) / np.sqrt(np.mean(noise**2))
                waves.append((v + noise).astype(np.float32))
            ev = speech_evidence(waves)
            assert ev[0] > 0.9 and ev[1] > 0.9 and ev[-1] < 0.1, (name, colour, ev)
            assert (np.diff(ev) <= 1e-3).all(), (name, colour, ev)


def test_evidence_tells_melodies_and_drums_from_speech_over_them(voices: dict[str, np.ndarray]) -> None:
    """Music with pitched notes is voiced and comes and goes like syllables, so only its pitch tells it from a
    voice: a note holds its pitch, speech glides (the glide gate). Melodies, drums and brown noise carry no
    speech; the same speech over either, 10 dB louder, keeps its evidence."""
    rng = np.random.default_rng(2)
    brown = np.cumsum(rng.standard_normal(5 * SR))
    brown = (0.1 * (brown - brown.mean()) / brown.std()).astype(np.float32)
    music = [mediagen.melody(0), mediagen.melody(1), mediagen.melody(2), mediagen.drum_loop(), brown]
    assert (speech_evidence(music) < 0.05).all(), speech_evidence(music)
    v = voices["high"]
    rms = float(np.sqrt(np.mean(v.astype(np.float64) ** 2)))
    mixed = []
    for m in music[:4]:
        level = float(np.sqrt(np.mean(m.astype(np.float64) ** 2)))
        bed = np.resize(m, v.size) * rms / 10 ** (10 / 20) / level
        mixed.append((v + bed).astype(np.float32))
    alone = speech_evidence([v])[0]
    assert alone > 0.9
    assert (speech_evidence(mixed) > 0.9).all(), speech_evidence(mixed)


def test_the_evidence_only_pass_gives_the_same_evidence(voices: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(2 * SR) / SR
    waves = [
        *voices.values(),
        np.zeros(SR, np.float32),
        (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32),
        (0.05 * rng.standard_normal(2 * SR)).astype(np.float32),
    ]
    batch, lengths = pad_batch(waves)
    pros, ev = prosody_and_evidence(batch, lengths)
    none, ev_only = prosody_and_evidence(batch, lengths, evidence_only=True)
    assert np.array_equal(ev.numpy(), ev_only.numpy())
    assert ev[0] > 0.8 and (ev[len(voices) :] < 0.1).all()
    assert none.shape == pros.shape and not none.numpy().any() and pros.numpy().any()
    assert np.array_equal(speech_evidence(waves), ev.numpy())


def test_evidence_of_the_speech_span_equals_that_of_the_whole_cue(voices: dict[str, np.ndarray]) -> None:
    """``speech_evidence`` reads only each cue's speech span but keeps the voiced share of the whole cue."""
    rng = np.random.default_rng(2)
    v = voices["high"]

    def room(n: int) -> np.ndarray:
        return (1e-4 * rng.standard_normal(n)).astype(np.float32)

    word = v[4000:12000]  # half a second of speech
    waves = [
        np.concatenate([room(16_037), v, room(23_011)]),  # padded at offsets off the 20 ms grid
        np.concatenate([np.zeros(5 * SR, np.float32), word, np.zeros(7, np.float32)]),  # a word late in a cue
        np.concatenate([room(3 * SR), word, room(3 * SR)]),  # little speech: a low voiced share
        np.concatenate([room(SR), v[:2000], room(SR)]),  # a click-short sound: the 0.5 s shortest span
        v,
        np.zeros(2 * SR, np.float32),
        np.full(SR, np.nan, np.float32),
        np.zeros(5, np.float32),
    ]
    whole = speech_evidence(waves, trim=False)
    assert np.allclose(speech_evidence(waves), whole, atol=1e-6), (speech_evidence(waves), whole)
    assert np.allclose(speech_evidence(waves[::-1])[::-1], whole, atol=1e-6)  # whatever it is batched with
    assert whole[0] > 0.8 and 0.0 < whole[2] < whole[0] and whole[5] == 0.0
    assert trim_silence(waves[0]).size < 0.7 * waves[0].size  # the spans really are shorter
    assert trim_silence(waves[1]).size < 0.2 * waves[1].size


def test_the_autocorrelation_at_chosen_lags_equals_the_inverse_fft() -> None:
    import torch

    rng = np.random.default_rng(0)
    power = torch.from_numpy((rng.random((3, 40, 257)) ** 4).astype(np.float32))  # power spectra, 512-point
    lags = (0, 1, 15, 77, 135, 255, 256)
    full = torch.fft.irfft(power, n=512)
    got = torch.matmul(power, _cosine_lags(512, lags))
    assert got.shape == (3, 40, len(lags))
    assert torch.allclose(got, full[..., list(lags)], rtol=0, atol=1e-5 * float(full[..., 0].min()))
    small = torch.from_numpy(rng.random((2, 9)).astype(np.float32))  # a 16-point spectrum: other n too
    assert torch.allclose(
        torch.matmul(small, _cosine_lags(16, (0, 3, 8))),
        torch.fft.irfft(small, n=16)[:, [0, 3, 8]],
        atol=1e-6,
    )


def test_shapes_masks_and_padding_invariance(voices: dict[str, np.ndarray]) -> None:
    short = voices["high"][:SR]
    alone = compute_features([short])
    batched = compute_features([voices["slow"], short])
    assert batched.mel.shape[1] == N_MELS and batched.prosody.shape == (2, N_PROSODY)
    t = int(alone.mask[0].sum())
    assert int(batched.mask[1].sum()) == t
    assert np.allclose(batched.mel[1, :, :t].numpy(), alone.mel[0, :, :t].numpy(), atol=1e-4)
    assert np.allclose(batched.prosody[1].numpy(), alone.prosody[0].numpy(), atol=1e-3)
    assert (batched.mel[1, :, t:] == 0).all()


def test_empty_and_odd_inputs_do_not_crash() -> None:
    nan = np.full(10, np.nan, np.float32)
    b, lens = pad_batch([np.zeros(0, np.float32), nan])
    assert b.shape[0] == 2 and (lens >= 1).all() and not b.isnan().any()
    assert np.isnan(nan).all()  # the caller's waveform is left as it was
    f = compute_features([np.zeros(0, np.float32), np.ones(5, np.float32)])
    assert np.isfinite(f.prosody.numpy()).all() and np.isfinite(f.mel.numpy()).all()
    assert (f.evidence.numpy() == 0).all()


def test_trim_silence_keeps_the_speech_and_drops_the_silence_around_it(voices: dict[str, np.ndarray]) -> None:
    v = voices["high"]
    core = trim_silence(v)
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(SR) * 1e-4).astype(np.float32)  # a quiet room, 1 s, about 60 dB down
    padded = np.concatenate([hiss, v, hiss, hiss])
    cut = trim_silence(padded)
    assert abs(cut.size - core.size) <= 2 * int(0.1 * SR) + 2 * 320  # margins and framing only
    assert cut.size < padded.size - 2.5 * SR
    assert np.abs(cut).max() == np.abs(v).max()  # the loudest sample is kept
    # noise as loud as the speech is not silence: nothing to trim
    loud = np.concatenate([np.full(SR, 0.3, np.float32) * rng.standard_normal(SR).astype(np.float32), v])
    assert trim_silence(loud).size >= loud.size - 320
    # short, empty and all-zero inputs come back usable
    assert trim_silence(np.zeros(0, np.float32)).size == 0
    assert trim_silence(np.zeros(SR, np.float32)).size == SR
    click = np.zeros(2 * SR, np.float32)
    click[SR : SR + 160] = 0.5
    assert trim_silence(click).size == int(0.5 * SR)  # the shortest result


def test_file_wav_roundtrip(tmp_path: Path) -> None:
    p = mediagen.speak("Hello there, how are you?", tmp_path / "a.wav")
    assert speech_evidence([mediagen.read_wav(p)])[0] > 0.5


def test_spectral_profile_follows_the_spectral_shape_not_the_level(voices: dict[str, np.ndarray]) -> None:
    from scipy.signal import butter, sosfilt

    from emotag.audiofeatures import N_PROSODY_CORE

    x = voices["high"]
    dark = sosfilt(butter(4, 1500, fs=SR, output="sos"), x).astype(np.float32)
    prof = compute_features([x, 0.05 * x, dark]).prosody.numpy()[:, N_PROSODY_CORE:]
    assert prof.shape == (3, 16)
    assert np.allclose(prof.sum(1), 0.0, atol=1e-3)  # shape only: the bands' mean is removed
    assert np.abs(prof[0] - prof[1]).max() < 0.5  # level does not change it
    assert prof[2, -4:].mean() < prof[0, -4:].mean() - 10.0  # low-passed: the top bands drop
    assert prof[2, :4].mean() > prof[0, :4].mean()  # and the low bands gain relative weight
