"""`emotag train` end to end on a tiny subset of the real data (slow: real encoder, real audio network)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_cli_train_reports_missing_data(tmp_path):
    from click.testing import CliRunner

    from emotag.cli import cli

    res = CliRunner().invoke(
        cli, ["-q", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]
    )
    assert res.exit_code == 9 and "data folder not found" in res.output


def test_cli_train_checks_steps_before_training(tmp_path):
    from click.testing import CliRunner

    from emotag.cli import cli

    run = CliRunner().invoke
    res = run(
        cli, ["-q", "train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--steps", "audio,bogus"]
    )
    assert res.exit_code == 2 and "unknown step(s) bogus" in res.output
    res = run(
        cli, ["-q", "train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--steps", "fusion"]
    )
    assert res.exit_code == 2 and "text.safetensors is missing" in res.output
    res = run(
        cli, ["-q", "train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--ffn-keep", "1536"]
    )
    assert res.exit_code == 2 and "--ffn-keep" in res.output  # a cut keeps fewer than the 1,536 neurons
    assert not (tmp_path / "m").exists()  # nothing written


def test_cli_train_keeps_a_trained_model_unless_forced(tmp_path):
    """A full run into a directory that already holds a model is refused before any work (25 minutes of
    training would otherwise replace it); --force lets it, --steps updates parts of it as before."""
    from click.testing import CliRunner

    from emotag.cli import cli

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"name": "mine"}')
    args = ["-q", "train", "--data", str(tmp_path / "nope"), "--out", str(model)]
    res = CliRunner().invoke(cli, args)
    assert (
        res.exit_code == 5
        and "m: output exists; pass --force to overwrite it or name another --out" in res.output
    )
    assert (model / "config.json").read_text() == '{"name": "mine"}'
    res = CliRunner().invoke(cli, [*args, "--force"])
    assert res.exit_code == 9 and "data folder not found" in res.output  # past the check, on to the data


def test_missing_whisper_packages_fail_before_any_training(tmp_path, monkeypatch):
    import emotag.asr as asr
    from emotag.errors import MissingDependencyError
    from emotag.training import train

    monkeypatch.setattr(asr, "packaged_model_dir", lambda: None)
    with pytest.raises(MissingDependencyError, match="whisper-audio training step"):
        train(tmp_path, tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not (DATA / "ravdess" / "labels.csv").is_file():
        pytest.skip(f"shared data folder not found at {DATA}")
    from emotag.training import train

    out = tmp_path_factory.mktemp("model")
    stages: list[str] = []
    t0 = time.monotonic()
    report = train(DATA, out, seed=0, quick=True, progress=lambda stage, done, total: stages.append(stage))
    return out, report, time.monotonic() - t0, stages


@pytest.mark.slow
def test_quick_train_writes_a_loadable_model(trained):
    out, report, seconds, stages = trained
    assert seconds < 600, f"quick training took {seconds:.0f} s"
    for name in ("config.json", "fusion.safetensors", "MODEL_CARD.md", "model_card.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert {"text", "fusion"} <= set(cfg) and cfg["fusion"]["trained"] is True
    # the text encoder runs int8 through CTranslate2 (the shipped recipe)
    assert cfg["text"]["compute_type"] == "int8"
    # fusion trains on the Whisper-encoder branch when its heads exist (the default's choice)
    assert cfg["fusion"]["audio_branch"] == "whisper" and (out / "whisper_audio.safetensors").is_file()
    # the voice encoder's feed-forward blocks stay whole unless --ffn-keep asks for a cut
    assert json.loads((out / "whisper_audio.json").read_text())["ffn_keep"] == {}
    assert set(report.fusion["methods"]) == {"early", "late", "hybrid"}
    assert report.fusion["chosen"] == cfg["fusion"]["method"]
    # quick runs keep no cross-validation fold heads, so fusion hears only the actors the heads held out,
    # and the summary says so (with the way to hear them all)
    assert report.fusion["audio_heldout"] == "validation speakers"
    assert not (out / "whisper_audio_folds.safetensors").exists()
    assert (
        "fusion heard only the 4 actors" in report.summary()
        and "--steps whisper-audio,fusion" in report.summary()
    )
    assert any(s.startswith("text") for s in stages) and any(s.startswith("fusion") for s in stages)
    card = json.loads((out / "model_card.json").read_text())
    assert "CC BY-NC-SA 4.0" in card["licences"]["RAVDESS"] and card["figures"]["fusion"]["chosen"]
    assert "non-commercial" in (out / "MODEL_CARD.md").read_text()


@pytest.mark.slow
def test_quick_model_predicts(trained):
    import numpy as np

    from emotag.models import load_model
    from emotag.models.base import Segment
    from emotag.models.multimodal import MultimodalModel

    out, *_ = trained
    model = load_model(out)
    assert isinstance(model, MultimodalModel)
    rng = np.random.default_rng(0)
    preds = model.predict(
        [Segment("I love this!", rng.normal(0, 0.1, 16000).astype(np.float32)), Segment("", None)]
    )
    assert len(preds) == 2 and preds[1].text is None and preds[1].audio is None
    for m in ("early", "late", "hybrid"):
        assert isinstance(load_model(out, fusion=m), MultimodalModel)
    from emotag.errors import ModelError
    from emotag.models.audio import AudioBranch
    from emotag.models.whisper_audio import WhisperAudioBranch

    assert isinstance(model.audio_branch, WhisperAudioBranch)
    same = load_model(out, audio_model="whisper", fusion="early")  # the branch fusion knows: any method
    assert isinstance(same, MultimodalModel) and same.method == "early" and "+" not in same.name
    cnn = load_model(out, audio_model="cnn")
    assert isinstance(cnn, MultimodalModel) and isinstance(cnn.audio_branch, AudioBranch)
    assert cnn.name.endswith("+cnn") and cnn.method == "late"
    with pytest.raises(ModelError, match="use late"):
        load_model(out, audio_model="cnn", fusion="hybrid")


@pytest.mark.slow
def test_real_paired_validation_rows_join_the_temperature_fit(trained, tmp_path, monkeypatch):
    """`emotag train --paired`: the real pairs that land in validation are among the pairs the fusion
    temperatures are fitted on (with the augmented copies of the constructed ones), not left out."""
    import shutil
    import zlib

    import emotag.training.fusion as fusion_training
    from emotag.evaluation import read_manifest
    from tests import mediagen

    out, *_ = trained
    model_dir = tmp_path / "m"
    shutil.copytree(out, model_dir)
    said = [("joy", "We won and this is wonderful!"), ("anger", "Get out of here now!")]
    manifest = tmp_path / "paired.csv"
    lines, val_files, fit_files, k = [], 0, 0, 0
    while val_files < 2 or fit_files < 2:  # files split by a hash of their path: have both kinds
        label, text = said[k % 2]
        wav = mediagen.speak(text, tmp_path / f"p{k}.wav")
        lines.append(f"{wav.name},,,{text},{label}")
        manifest.write_text("audio,start,end,text,label\n" + "\n".join(lines) + "\n")
        last = read_manifest(manifest)[0][-1]
        is_val = zlib.crc32(str(last.audio).encode("utf-8")) % 5 == 0
        val_files, fit_files, k = val_files + is_val, fit_files + (not is_val), k + 1
    seen: dict[str, object] = {}
    real = fusion_training.train_fusion_on_pairs

    def spy(cache_fit, fit_pairs, cache_val, val_pairs, **kw):  # type: ignore[no-untyped-def]
        seen["val"], seen["calibration"] = val_pairs, kw.get("calibration")
        return real(cache_fit, fit_pairs, cache_val, val_pairs, **kw)

    monkeypatch.setattr(fusion_training, "train_fusion_on_pairs", spy)
    fusion_training.train_fusion(DATA, model_dir, seed=0, paired=manifest, limit=24)
    val, (cal_cache, cal) = seen["val"], seen["calibration"]  # type: ignore[misc]
    assert val.kind.count("paired") == val_files
    assert cal.kind.count("paired") == val_files  # every real validation pair, each once
    assert len(cal.label) > len(val.label)  # plus the augmented copies of constructed pairs
    paired = [j for j, kind in enumerate(cal.kind) if kind == "paired"]
    assert max(cal.audio_idx[paired]) < cal_cache.audio.probs.shape[0]  # indices point into its cache


def test_summary_says_which_actors_fusion_heard(tmp_path):
    from emotag.training import TrainReport

    sizes = {"fit_speakers": 12, "val_speakers": 12}
    folds = TrainReport(tmp_path, fusion={"audio_heldout": "folds", "sizes": sizes}).summary()
    assert "fusion heard 24 actors, each through audio heads that never trained on it" in folds
    held = TrainReport(
        tmp_path, fusion={"audio_heldout": "validation speakers", "sizes": {"fit_speakers": 2}}
    )
    assert "fusion heard only the 2 actors" in held.summary()
    assert "fusion heard" not in TrainReport(tmp_path).summary()  # no fusion step, no line
