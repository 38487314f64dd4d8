"""The audio branch: shapes, determinism, save/load, chunking, the Hugging Face path, and real clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emotag.audiofeatures import N_PROSODY, N_PROSODY_CORE
from emotag.errors import ModelError
from emotag.models.audio import (
    AudioBranch,
    AudioNetConfig,
    HFAudioBranch,
    build_net,
    load_audio_branch,
    map_label,
)
from emotag.timeline import LABELS
from tests.tinymodels import tiny_audio_classifier

SR = 16000
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "emotag" / "models" / "default"
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


def _waves(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(3 * SR) / SR
    # Amplitude-modulated harmonic "vowels" with a gliding pitch: voiced, syllable-like.
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    voice = (0.2 * voice + 0.002 * rng.standard_normal(t.size)).astype(np.float32)
    return [voice, voice[:SR], np.zeros(2 * SR, np.float32), np.tile(voice, 7)]  # 21 s: chunked


@pytest.fixture(scope="module")
def branch() -> AudioBranch:
    import torch

    torch.manual_seed(0)
    cfg = AudioNetConfig()
    nets = [build_net(cfg), build_net(cfg)]
    p = cfg.n_prosody
    return AudioBranch(nets, cfg, np.zeros(p, np.float32), np.ones(p, np.float32), temperature=1.5)


def test_branch_shapes_and_ranges(branch: AudioBranch) -> None:
    out = branch.infer(_waves())
    n = 4
    assert out.probs.shape == (n, len(LABELS)) and out.probs.dtype == np.float32
    assert np.allclose(out.probs.sum(1), 1.0, atol=1e-5)
    assert out.embedding.shape == (n, branch.embedding_dim)
    assert out.valence.shape == out.arousal.shape == out.evidence.shape == (n,)
    assert (np.abs(out.valence) <= 1).all() and (np.abs(out.arousal) <= 1).all()
    assert out.evidence[2] == 0.0 and out.evidence[0] > 0.5
    empty = branch.infer([])
    assert empty.probs.shape == (0, len(LABELS))


def test_branch_is_deterministic_and_order_independent(branch: AudioBranch) -> None:
    w = _waves()
    a = branch.infer(w)
    b = branch.infer(list(reversed(w)))
    assert np.allclose(a.probs, b.probs[::-1], atol=1e-5)
    assert np.allclose(a.embedding, b.embedding[::-1], atol=1e-5)


def test_file_stats_change_the_input(branch: AudioBranch) -> None:
    w = _waves()
    stats = branch.file_stats([w[0]] * 3 + [w[1]] * 3)
    assert stats is not None and stats.count == 6 and stats.mean.shape == (N_PROSODY,)
    assert branch.file_stats([w[2]] * 10) is None  # silence carries no speech
    a = branch.infer(w[:2])
    b = branch.infer(w[:2], file_stats=stats)
    assert not np.allclose(a.probs, b.probs)


def test_save_and_load_roundtrip(branch: AudioBranch, tmp_path: Path) -> None:
    branch.save(tmp_path, extra={"report": {"val_ua": 0.5}})
    assert (tmp_path / "audio.safetensors").is_file()
    meta = json.loads((tmp_path / "audio.json").read_text())
    assert meta["n_models"] == 2 and meta["labels"] == list(LABELS)
    loaded = load_audio_branch(None, tmp_path)
    assert isinstance(loaded, AudioBranch) and loaded.temperature == pytest.approx(1.5)
    w = _waves()[:2]
    assert np.allclose(loaded.infer(w).probs, branch.infer(w).probs, atol=1e-6)


def test_models_trained_on_prosody_only_still_load_and_run(tmp_path: Path) -> None:
    """Models from before the spectral profile (no ``n_prosody`` in audio.json) read the first 16."""
    import torch

    torch.manual_seed(1)
    cfg = AudioNetConfig(n_prosody=N_PROSODY_CORE)
    old = AudioBranch([build_net(cfg)], cfg, np.zeros(16, np.float32), np.ones(16, np.float32))
    old.save(tmp_path)
    meta = json.loads((tmp_path / "audio.json").read_text())
    del meta["net"]["n_prosody"]
    (tmp_path / "audio.json").write_text(json.dumps(meta))
    loaded = AudioBranch.from_dir(tmp_path)
    assert loaded.config.n_prosody == N_PROSODY_CORE
    w = _waves()[:2]
    stats = loaded.file_stats(w * 3)
    assert stats is not None and stats.mean.shape == (N_PROSODY_CORE,)
    assert np.allclose(
        loaded.infer(w, file_stats=stats).probs, old.infer(w, file_stats=stats).probs, atol=1e-6
    )


def test_prosody_statistics_must_fit_the_network() -> None:
    cfg = AudioNetConfig()
    with pytest.raises(ModelError, match="prosody statistics"):
        AudioBranch([build_net(cfg)], cfg, np.zeros(16, np.float32), np.ones(16, np.float32))


def test_missing_weights_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="audio"):
        load_audio_branch(None, tmp_path)


def test_label_synonyms() -> None:
    assert map_label("HAP") == "joy" and map_label("fearful") == "fear" and map_label("calm") == "neutral"
    assert map_label("boredom") is None


def test_hugging_face_branch_with_tiny_random_model(tmp_path: Path) -> None:
    id2label = {0: "ang", 1: "hap", 2: "sad", 3: "neu", 4: "boredom"}
    tiny_audio_classifier(tmp_path, id2label, SR)
    br = load_audio_branch(str(tmp_path), tmp_path / "unused")
    assert isinstance(br, HFAudioBranch) and br.embedding_dim == 16
    out = br.infer(_waves()[:3])
    assert out.probs.shape == (3, len(LABELS))
    assert np.allclose(out.probs.sum(1), 1.0, atol=1e-5)
    for lab in ("disgust", "fear", "surprise"):  # no twin in the model: probability 0
        assert (out.probs[:, LABELS.index(lab)] == 0).all()
    assert out.embedding.shape == (3, 16)
    assert out.evidence[2] == 0.0


def test_unknown_hf_model_raises(tmp_path: Path) -> None:
    from emotag.errors import UnknownModelError

    with pytest.raises((UnknownModelError, ModelError)):
        load_audio_branch(str(tmp_path / "nope"), tmp_path)


@pytest.mark.slow
def test_packaged_branch_on_held_out_ravdess_actors() -> None:
    if not (DATA_DIR / "ravdess" / "labels.csv").is_file():
        pytest.skip(f"RAVDESS not found at {DATA_DIR}/ravdess (the shared data folder is missing)")
    if not (DEFAULT_DIR / "audio.safetensors").is_file():
        pytest.skip("no packaged audio branch yet (run `emotag train`)")
    from emotag.training.audiodata import load_clip, read_ravdess

    meta = json.loads((DEFAULT_DIR / "audio.json").read_text())
    held = set(meta["report"]["validation_speakers"])
    train = set(meta["report"]["train_speakers"])
    assert held and not (held & train)
    clips = [c for c in read_ravdess(DATA_DIR) if c.speaker in held and c.intensity == "strong"]
    br = AudioBranch.from_dir(DEFAULT_DIR)
    waves = [load_clip(c) for c in clips]
    out = br.infer(waves, file_stats=br.file_stats(waves))
    y = np.array([c.label_index for c in clips])
    pred = out.probs.argmax(1)
    recalls = [np.mean(pred[y == k] == k) for k in np.unique(y)]
    assert float(np.mean(recalls)) > 0.4  # chance is 1/6 here (no strong neutral)
    assert (out.evidence > 0.5).mean() > 0.9


def test_shrink_stats_weighs_a_speakers_own_cues_against_the_file() -> None:
    from emotag.models.audio import SPEAKER_PRIOR_CUES, ProsodyStats, shrink_stats

    own = ProsodyStats(
        np.array([2.0, -1.0], np.float32), np.array([1.0, 3.0], np.float32), SPEAKER_PRIOR_CUES
    )
    pooled = ProsodyStats(np.array([0.0, 1.0], np.float32), np.array([2.0, 1.0], np.float32), 100)
    half = shrink_stats(own, pooled)  # as many own cues as the prior: halfway, variances averaged
    assert np.allclose(half.mean, [1.0, 0.0]) and np.allclose(half.std, np.sqrt([2.5, 5.0]))
    assert half.count == SPEAKER_PRIOR_CUES and half.mean.dtype == np.float32
    many = shrink_stats(ProsodyStats(own.mean, own.std, 995), pooled)
    assert np.allclose(many.mean, 0.995 * own.mean + 0.005 * pooled.mean)
    same = shrink_stats(own, pooled, prior=0)
    assert np.allclose(same.mean, own.mean) and np.allclose(same.std, own.std)
