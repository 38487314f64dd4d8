"""The Whisper-encoder audio branch: the packaged tiny.en encoder (offline), heads, files, training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from emotag.errors import ModelError
from emotag.models.audio import load_audio_branch
from emotag.timeline import LABELS
from tests import mediagen
from tests.packaged import skip_unless_packaged_whisper

skip_unless_packaged_whisper()

from emotag.models.audio import ProsodyStats  # noqa: E402
from emotag.models.whisper_audio import (  # noqa: E402
    CENTRED,
    HIDDEN,
    POOLED_DIM,
    SpeechDetector,
    Standardiser,
    WhisperAudioBranch,
    WhisperEncoder,
    build_head,
    pool,
)

SR = 16000


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    d = tmp_path_factory.mktemp("voices")
    lines = ["I can't believe you did this", "what a lovely morning", "where are my keys", "no", "fine then"]
    return [
        mediagen.read_wav(mediagen.speak(t, d / f"{i}.wav", pitch=30 + 10 * i)) for i, t in enumerate(lines)
    ]


@pytest.fixture(scope="module")
def branch() -> WhisperAudioBranch:
    import torch

    torch.manual_seed(0)
    std = Standardiser(np.zeros(POOLED_DIM, np.float32), np.ones(POOLED_DIM, np.float32))
    return WhisperAudioBranch(
        None, {"global": build_head(), "file": build_head()}, std, {"global": 1.0, "file": 1.2}
    )


def test_pool_percentile_is_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(0)
    for frames in (1, 2, 3, 10, 11, 12, 99, 250, 251, 1500):  # interpolation weights below and above 0.5
        states = (rng.standard_normal((frames, 384)) * rng.uniform(0.1, 20)).astype(np.float32)
        states[: frames // 3, :7] = 1.5  # ties
        got = pool(states)
        want = np.concatenate(
            [states.mean(0), states.std(0), states.max(0), np.percentile(states, 10, axis=0)]
        ).astype(np.float32)
        assert got.dtype == np.float32 and got.shape == (POOLED_DIM,)
        assert np.array_equal(got, want), frames


def test_encoder_pools_any_length(voices: list[np.ndarray]) -> None:
    enc = WhisperEncoder()
    feats = enc.pooled([voices[0], voices[3][:800], np.zeros(0, np.float32), np.tile(voices[1], 12)])
    assert feats.shape == (4, POOLED_DIM) and np.isfinite(feats).all()
    again = enc.pooled([voices[0]])
    assert np.allclose(again[0], feats[0], atol=1e-4)  # each cue encoded on its own: order-free


def test_same_length_cues_are_batched_without_changing_their_states(voices: list[np.ndarray]) -> None:
    n = min(len(v) for v in voices[:3])
    same = [v[:n] for v in voices[:3]]
    enc = WhisperEncoder(batch=3)
    together = enc.pooled(same)
    alone = np.stack([enc.pooled([w])[0] for w in same])
    assert not np.allclose(together[0], together[1])
    assert np.allclose(together, alone, atol=0.05 * np.abs(alone).max())


def test_cues_encoded_side_by_side_get_the_states_of_one_worker(voices: list[np.ndarray]) -> None:
    cues = [voices[0], voices[1][: SR // 2], voices[2], np.tile(voices[3], 3), voices[4]]
    assert WhisperEncoder(threads=1).threads == 1 and WhisperEncoder(threads=2).threads == 2
    assert WhisperEncoder().threads == min(8, os.cpu_count() or 1)  # one worker per core by default
    assert np.array_equal(WhisperEncoder(threads=2).pooled(cues), WhisperEncoder(threads=1).pooled(cues))


def test_many_cues_are_encoded_chunk_by_chunk_in_input_order(
    voices: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    import emotag.models.whisper_audio as wa

    cues = voices + voices[::-1]
    enc = WhisperEncoder()
    whole = enc.pooled(cues)
    monkeypatch.setattr(wa, "POOL_CHUNK", 3)  # a long file's cues, a few at a time
    # same states up to bfloat16 rounding (the products' blocking follows the batch's size); the max over
    # frames carries one frame's rounding: up to 1.7e-3 of the range over 48 cues (runs/s18/batchdep.py)
    assert np.allclose(enc.pooled(cues), whole, atol=2.5e-3 * np.abs(whole).max())
    ct2 = WhisperEncoder(backend="ctranslate2")
    monkeypatch.setattr(wa, "POOL_CHUNK", 256)
    whole = ct2.pooled(cues)
    monkeypatch.setattr(wa, "POOL_CHUNK", 3)
    assert np.allclose(ct2.pooled(cues), whole, atol=1e-5)  # CTranslate2's int8: to within float noise
    assert np.allclose(whole[: len(voices)], whole[len(voices) :][::-1], atol=0.05 * np.abs(whole).max())


def test_encoder_depth_and_trimming_are_part_of_the_saved_head(
    branch: WhisperAudioBranch, tmp_path: Path
) -> None:
    assert branch.layers == 2 and branch.encoder.layers == 2
    assert branch.trim and branch.encoder.trim
    branch.save(tmp_path)
    meta = json.loads((tmp_path / "whisper_audio.json").read_text())
    assert meta["encoder_layers"] == 2 and meta["trim_silence"] is True
    assert meta["log_mel"] == "transformers" == WhisperAudioBranch.from_dir(tmp_path).encoder.log_mel
    (tmp_path / "whisper_audio.json").write_text(json.dumps({**meta, "log_mel": "librosa"}))
    with pytest.raises(ModelError, match="log_mel 'librosa' is not a front end .* upgrade emotag or retrain"):
        WhisperAudioBranch.from_dir(tmp_path)
    # heads written before the settings existed read all four layers of whole cues, through faster-whisper's
    # log-mel front end
    del meta["encoder_layers"], meta["trim_silence"], meta["log_mel"]
    (tmp_path / "whisper_audio.json").write_text(json.dumps(meta))
    old = WhisperAudioBranch.from_dir(tmp_path)
    assert old.layers == 4 and not old.trim and not old.encoder.trim
    assert old.log_mel == "faster-whisper" == old.encoder.log_mel


def test_both_log_mel_front_ends_compute_whispers_features(voices: list[np.ndarray]) -> None:
    with pytest.raises(ModelError, match="unknown log-mel front end 'librosa'"):
        WhisperEncoder(log_mel="librosa")
    ours = WhisperEncoder(trim=False)
    theirs = WhisperEncoder(trim=False, log_mel="faster-whisper")
    for wave in voices[:3]:
        a, b = ours.features(wave), theirs.features(wave)
        # one frame per 160 samples (faster-whisper adds one at the end), cut to an even count
        assert a.shape == (80, wave.size // 160 // 2 * 2) and b.shape == (80, (wave.size // 160 + 1) // 2 * 2)
        n = min(a.shape[1], b.shape[1])
        diff = np.abs(a[:, :n] - b[:, :n])
        assert diff.max() < 0.05 and diff.mean() < 0.005, (diff.max(), diff.mean())  # features span about 2
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=80, sampling_rate=SR)
    for wave in voices[:3]:  # the extractor's own call, which the front end runs step by step
        full = extractor(wave, sampling_rate=SR, return_tensors="np", padding="longest")["input_features"][0]
        got = ours.features(wave)
        assert np.abs(got - full[:, : got.shape[1]]).max() < 1e-5  # |z|^2 as re^2 + im^2: float rounding
    pooled_a, pooled_b = ours.pooled(voices), theirs.pooled(voices)
    gap = np.linalg.norm(pooled_a - pooled_b, axis=1) / np.linalg.norm(pooled_b, axis=1)
    assert (gap < 0.05).all(), gap
    whisper = pytest.importorskip("whisper")  # openai-whisper's own function, where installed (asr extra)
    import torch

    ref = whisper.audio.log_mel_spectrogram(torch.from_numpy(voices[0])).numpy()
    got = ours.features(voices[0])
    assert np.abs(got - ref[:, : got.shape[1]]).max() < 1e-4


def test_trimmed_states_do_not_depend_on_the_silence_around_a_cue(voices: list[np.ndarray]) -> None:
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(SR) * 1e-4).astype(np.float32)
    plain = [voices[0], voices[1]]
    padded = [np.concatenate([hiss, w, hiss, hiss]) for w in plain]
    for trim, most in ((True, 0.2), (False, None)):
        enc = WhisperEncoder(trim=trim)
        a, b = enc.pooled(plain), enc.pooled(padded)
        gap = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
        if most is not None:
            assert (gap < most).all(), gap
            trimmed_gap = gap
    assert (gap > 2 * trimmed_gap).all(), (gap, trimmed_gap)  # whole cues: the silence changes the states


def test_infer_shapes_evidence_and_file_statistics(
    branch: WhisperAudioBranch, voices: list[np.ndarray]
) -> None:
    waves = [*voices, np.zeros(2 * SR, np.float32)]
    out = branch.infer(waves)
    assert out.probs.shape == (6, len(LABELS)) and np.allclose(out.probs.sum(1), 1, atol=1e-5)
    assert out.embedding.shape == (6, HIDDEN)
    assert out.evidence[-1] == 0.0 and (out.evidence[:3] > 0.5).all()
    stats = branch.file_stats(voices * 2)
    assert stats is not None and stats.mean.shape == (POOLED_DIM,)
    with_file = branch.infer(waves, file_stats=stats)
    assert not np.allclose(with_file.probs, out.probs)
    analysis = branch.analyse(waves)
    assert np.allclose(branch.infer(waves, analysis=analysis).probs, out.probs, atol=1e-6)
    assert branch.infer([]).probs.shape == (0, len(LABELS))


def test_analyse_computes_the_evidence_in_chunks_beside_the_encoder(
    branch: WhisperAudioBranch, voices: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers score the evidence a few cues at a time (length-sorted) while they encode: each cue
    gets the evidence and states it gets on its own, in input order."""
    import emotag.audiofeatures as af
    from emotag.audiofeatures import speech_evidence

    cues = [*voices, np.zeros(SR, np.float32), *voices[::-1][:3]]
    whole_ev, whole_states = speech_evidence(cues), branch.encoder.pooled(cues)
    monkeypatch.setattr(af, "EVIDENCE_BATCH", 2)
    analysis = branch.analyse(cues)
    assert np.allclose(analysis.evidence, whole_ev, atol=1e-4), (analysis.evidence, whole_ev)
    assert np.allclose(analysis.prosody, whole_states, atol=1e-5)
    assert analysis.evidence[len(voices)] == 0.0 and analysis.lengths.tolist() == [c.size for c in cues]


def test_file_reading_averages_the_file_head_with_the_global_head_on_recentred_states() -> None:
    import torch

    torch.manual_seed(1)
    rng = np.random.default_rng(0)
    std = Standardiser(rng.normal(0, 1, POOLED_DIM).astype(np.float32), np.full(POOLED_DIM, 2.0, np.float32))
    heads = {"global": build_head(), "file": build_head()}
    temps = {"global": 0.7, "file": 0.9}
    pooled = rng.normal(0, 2, (8, POOLED_DIM)).astype(np.float32)
    stats = ProsodyStats(pooled.mean(0) + 0.5, pooled.std(0), 8)

    def logp(key: str, x: np.ndarray, t: float) -> np.ndarray:
        with torch.inference_mode():
            z = heads[key](torch.from_numpy(x))[0].double() / t
        return torch.log_softmax(z, 1).numpy()

    file_only = WhisperAudioBranch(None, heads, std, temps)  # heads trained before the centred reading
    probs, hidden = file_only.head_outputs(pooled, stats)
    expect_file = logp("file", std.file_z(pooled, stats.mean, stats.std), 0.9)
    assert np.allclose(np.log(probs), expect_file, atol=1e-5)
    both = WhisperAudioBranch(None, heads, std, {**temps, CENTRED: 0.8})
    probs2, hidden2 = both.head_outputs(pooled, stats)
    mix = 0.5 * (expect_file + logp("global", std.global_z(pooled - stats.mean + std.mean), 0.8))
    mix = np.exp(mix) / np.exp(mix).sum(1, keepdims=True)
    assert np.allclose(probs2, mix, atol=1e-5) and not np.allclose(probs2, probs, atol=1e-3)
    assert np.array_equal(hidden2, hidden)  # fusion reads the file head's hidden layer either way
    # Read relative to the file: a recording offset shared by the file and its statistics changes nothing,
    # while the same states read alone (training statistics) do change.
    moved = ProsodyStats(stats.mean + 3.0, stats.std, 8)
    assert np.allclose(both.head_outputs(pooled + 3.0, moved)[0], probs2, atol=1e-5)
    assert not np.allclose(both.head_outputs(pooled + 3.0)[0], both.head_outputs(pooled)[0], atol=1e-3)


def test_the_speech_detector_scales_the_evidence_and_is_saved_with_the_heads(
    branch: WhisperAudioBranch, voices: list[np.ndarray], tmp_path: Path
) -> None:
    """The evidence is the hand-made one times P(speech) from the pooled states; heads saved without a
    detector (trained before it existed) load without one."""
    rng = np.random.default_rng(4)
    waves = [*voices[:3], np.zeros(SR, np.float32)]
    plain = branch.analyse(waves)
    weight = rng.normal(0, 0.01, POOLED_DIM).astype(np.float32)
    for bias in (-20.0, 20.0):
        gated = WhisperAudioBranch(
            branch.encoder,
            branch.heads,
            branch.standardiser,
            branch.temperatures,
            speech=SpeechDetector(weight, bias),
        )
        p = gated.speech.probability(branch.standardiser.global_z(plain.prosody))  # type: ignore[union-attr]
        analysis = gated.analyse(waves)
        assert np.allclose(analysis.evidence, plain.evidence * p, atol=1e-6)
        assert (
            (analysis.evidence < 1e-6).all() if bias < 0 else np.allclose(analysis.evidence, plain.evidence)
        )
        assert np.array_equal(analysis.prosody, plain.prosody)
    gated.save(tmp_path / "with")
    loaded = WhisperAudioBranch.from_dir(tmp_path / "with")
    assert loaded.speech is not None and loaded.speech.bias == 20.0
    assert np.array_equal(loaded.speech.weight, weight)
    branch.save(tmp_path / "without")
    assert WhisperAudioBranch.from_dir(tmp_path / "without").speech is None
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "with" / "whisper_audio.safetensors"))
    state["speech.weight"] = state["speech.weight"][:10].clone()
    save_file(state, str(tmp_path / "with" / "whisper_audio.safetensors"))
    with pytest.raises(ModelError, match="unreadable"):
        WhisperAudioBranch.from_dir(tmp_path / "with")


def test_logistic_fit_separates_two_classes_each_weighing_half() -> None:
    from emotag.training.whisper_audio import fit_logistic

    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(1.0, 1.0, (400, 5)), rng.normal(-1.0, 1.0, (40, 5))].astype(np.float32)
    y = np.r_[np.ones(400), np.zeros(40)].astype(np.float32)
    w, b = fit_logistic(x, y)
    assert abs(1 / (1 + np.exp(-b)) - 0.5) < 0.1  # classes weigh half each: no lean to the larger one at 0
    z = x @ w + b
    assert (w > 0).all() and ((z > 0) == (y > 0.5)).mean() > 0.9
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(x, np.ones(len(x), np.float32))


def test_save_load_and_select_by_name(
    branch: WhisperAudioBranch, voices: list[np.ndarray], tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match="no Whisper audio head"):
        load_audio_branch("whisper", tmp_path)
    branch.save(tmp_path, extra={"report": {"val_ua": 0.5}})
    meta = json.loads((tmp_path / "whisper_audio.json").read_text())
    assert meta["temperatures"] == {"global": 1.0, "file": 1.2} and meta["report"]["val_ua"] == 0.5
    loaded = load_audio_branch("whisper", tmp_path)
    assert isinstance(loaded, WhisperAudioBranch)
    assert np.allclose(loaded.infer(voices[:2]).probs, branch.infer(voices[:2]).probs, atol=1e-6)
    (tmp_path / "whisper_audio.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="unreadable"):
        load_audio_branch("whisper", tmp_path)


@pytest.mark.slow
def test_training_on_a_user_manifest_cross_validates_and_loads(tmp_path: Path) -> None:
    from emotag.training.whisper_audio import train_whisper_audio

    said = (("angry", "Get out of here now!"), ("sad", "I miss her so much."), ("neu", "It is noon."))
    lines = []
    for s, (pitch, speed) in enumerate([(20, 150), (50, 170), (80, 190)]):
        for lab, text in said:
            mediagen.speak(text, tmp_path / f"s{s}_{lab}.wav", pitch=pitch, speed=speed)
            lines.append(f"s{s}_{lab}.wav,{lab},spk{s}")
    (tmp_path / "m.csv").write_text("audio,label,speaker\n" + "\n".join(lines) + "\n")
    out = tmp_path / "model"
    msgs: list[str] = []
    rep = train_whisper_audio(
        None,
        out,
        audio_data=tmp_path / "m.csv",
        n_aug=1,
        detector_nonspeech=28,
        ffn_keep=768,
        progress=msgs.append,
    )
    assert len(rep["cv"]["folds"]) == 3 and 0.0 <= rep["cv"]["summary"]["ua_per_speaker"]["mean"] <= 1.0
    assert set(rep["temperatures"]) == {"global", "file", CENTRED}
    assert all(set(f["temperatures"]) == {"global", "file", CENTRED} for f in rep["cv"]["folds"])
    pooled = rep["cv"]["summary"]["pooled"]  # every clip is out of fold once: ECE over all of them
    assert pooled["clips"] == len(lines)
    for g in ("alone", "per_speaker", "corpus"):
        assert 0.0 <= pooled[f"ece_{g}"] <= 1.0 and 0.0 < rep["cv"]["summary"][f"ece_floor_{g}"]["mean"] < 1.0
    assert rep["validation_speakers"] and not set(rep["validation_speakers"]) & set(rep["train_speakers"])
    br = load_audio_branch("whisper", out)
    assert br.infer([mediagen.read_wav(tmp_path / "s0_sad.wav")]).probs.shape == (1, 7)
    assert isinstance(br, WhisperAudioBranch) and br.speech is not None  # the speech detector ships too
    # the encoder's feed-forward cuts, fitted on the clips, ship with the heads and serve them
    assert rep["ffn_keep"] == 768 and len(rep["ffn_cut_errors"]) == 2
    assert [(c.layer, c.keep.size) for c in br.cuts] == [(0, 768), (1, 768)] and br.encoder.cuts == br.cuts
    det = rep["speech_detector"]
    assert det["train"]["nonspeech"] == 28 and det["train"]["speech"] == 2 * len(rep["train_speakers"]) * 3
    assert 0.0 <= det["validation"]["accuracy_at_half"] <= 1.0
    assert any("CV UA" in m for m in msgs)
    from emotag.training.whisper_audio import load_folds

    folds = load_folds(out, br)  # type: ignore[arg-type]
    assert folds is not None and len(folds) == 3
    seen = [set(spk) for _, spk in folds]
    assert set().union(*seen) == {"spk0", "spk1", "spk2"} and sum(len(s) for s in seen) == 3
    wave = mediagen.read_wav(tmp_path / "s1_angry.wav")
    assert not np.allclose(folds[0][0].infer([wave]).probs, folds[1][0].infer([wave]).probs)


def test_workers_run_torch_on_one_thread_each_and_leave_the_callers_setting() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from emotag.models.whisper_audio import single_omp_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with ThreadPoolExecutor(2, initializer=single_omp_thread) as ex:
            assert list(ex.map(lambda _: torch.get_num_threads(), range(6))) == [1] * 6
        assert torch.get_num_threads() == 2
        with ThreadPoolExecutor(2) as ex:  # threads started later still get the default
            assert list(ex.map(lambda _: torch.get_num_threads(), range(4))) == [2] * 4
    finally:
        torch.set_num_threads(before)
