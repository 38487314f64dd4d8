"""emotag.models: name/directory resolution, entry-point discovery, errors, list_models, the CLI."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
from stubs import KeywordTextBranch, ToneAudioBranch, tone

import emotag.models as models
from emotag.errors import ModelError, UnknownModelError
from emotag.fusion import FusionModel
from emotag.models.base import Segment
from emotag.models.multimodal import MultimodalModel
from emotag.timeline import LABELS


@pytest.fixture
def fake_extension(tmp_path, monkeypatch):
    """An installed distribution (dist-info + module) on sys.path declaring two emotag.models entry points."""
    (tmp_path / "fake_emotag_model.py").write_text(
        textwrap.dedent("""
        from emotag.models.base import Prediction
        from emotag.timeline import Emotion

        class FakeModel:
            name = "fake-1"

            def predict(self, segments):
                return [Prediction(Emotion.from_mapping({"joy": 1.0})) for _ in segments]

        def broken():
            raise RuntimeError("weights missing")
    """)
    )
    info = tmp_path / "fake_emotag_model-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-emotag-model\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[emotag.models]\nfake = fake_emotag_model:FakeModel\nbroken = fake_emotag_model:broken\n"
        "default = fake_emotag_model:FakeModel\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("EMOTAG_DISABLE_EXTENSIONS", raising=False)
    yield tmp_path
    sys.modules.pop("fake_emotag_model", None)


def test_unknown_name_lists_available(fake_extension):
    with pytest.raises(UnknownModelError) as err:
        models.load_model("no-such-model")
    assert "default" in err.value.available and "fake" in err.value.available
    assert "available: broken, default, fake" in str(err.value)
    with pytest.raises(UnknownModelError, match="no such directory"):
        models.load_model("/nonexistent/model_dir")


def test_entry_point_model_is_loaded_lazily(fake_extension):
    entries = models.registry_entries()
    assert entries["fake"].source.startswith("fake-emotag-model")
    assert "fake_emotag_model" not in sys.modules  # discovery imports nothing
    model = models.load_model("fake")
    assert model.name == "fake-1"
    assert model.predict([Segment("x")])[0].emotion.label == "joy"
    # the built-in name cannot be shadowed by an extension
    assert entries["default"].source == "built-in"
    with pytest.raises(ModelError, match="failed to load: RuntimeError: weights missing"):
        models.load_model("broken")
    with pytest.raises(ModelError, match="do not apply"):
        models.load_model("fake", fusion="late")


def test_disable_extensions(fake_extension, monkeypatch):
    monkeypatch.setenv("EMOTAG_DISABLE_EXTENSIONS", "1")
    assert models.available_models() == ["default"]
    with pytest.raises(UnknownModelError):
        models.load_model("fake")


def _model_dir(tmp_path, monkeypatch, fusion: FusionModel | None = None):
    import emotag.models.audio as audio_mod
    import emotag.models.text as text_mod

    monkeypatch.setattr(text_mod, "load_text_branch", lambda spec, d: KeywordTextBranch())
    monkeypatch.setattr(audio_mod, "load_audio_branch", lambda spec, d: ToneAudioBranch())
    d = tmp_path / "mymodel"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"name": "my-model", "labels": list(LABELS)}))
    if fusion is not None:
        fusion.save(d / "fusion.safetensors")
    return d


def test_model_directory(tmp_path, monkeypatch):
    d = _model_dir(tmp_path, monkeypatch)
    model = models.load_model(d)
    assert isinstance(model, MultimodalModel) and model.name == "my-model" and model.method == "late"
    assert model.predict([Segment("I am sad", tone("sadness"))])[0].emotion.label == "sadness"
    text_only = models.load_model(str(d), modality="text")
    assert isinstance(text_only, MultimodalModel) and text_only.audio_branch is None
    with pytest.raises(ModelError, match="not trained"):
        models.load_model(d, fusion="hybrid")
    (d / "config.json").write_text(json.dumps({"labels": ["a", "b"]}))
    with pytest.raises(ModelError, match="labels"):
        models.load_model(d)
    (d / "config.json").unlink()
    with pytest.raises(UnknownModelError, match="config.json"):
        models.load_model(d)


def test_model_directory_uses_its_fusion_weights(tmp_path, monkeypatch):
    fm = FusionModel.untrained(8, 4)
    params = dict(fm.params)
    params["mismatch.threshold"] = np.array([0.99], np.float32)  # a distinguishable saved value
    d = _model_dir(tmp_path, monkeypatch, FusionModel(params, "late", 8, 4))
    model = models.load_model(d)
    assert isinstance(model, MultimodalModel) and model.fusion.threshold == pytest.approx(0.99)


def test_list_models_and_cli(fake_extension):
    from click.testing import CliRunner

    from emotag.cli import cli

    infos = {i.name: i for i in models.list_models()}
    assert infos["default"].source == "builtin" and infos["default"].labels == LABELS
    assert infos["default"].size_bytes > 0
    assert "fake" in infos and "fake_emotag_model:FakeModel" in infos["fake"].source
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    assert "default  [builtin]" in result.output and "fake" in result.output
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert {m["name"] for m in json.loads(result.output)} >= {"default", "fake"}


def test_import_is_light():
    import subprocess

    code = "import sys, emotag.models; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_packaged_default_on_real_speech(tmp_path):
    import subprocess

    wav = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "I am so angry with you, get out now!"], check=True)
    from emotag.media import load_audio

    audio = load_audio(wav)
    model = models.load_model()
    assert isinstance(model, MultimodalModel)
    preds = model.predict(
        [
            Segment("I am so angry with you, get out now!", audio),
            Segment("", audio),
            Segment("Thank you so much, this is wonderful!", None),
        ]
    )
    assert preds[0].text is not None and preds[0].audio is not None
    assert preds[1].text is None and preds[2].audio is None
    assert preds[2].emotion.label == "joy"
    assert preds[0].emotion.label in ("anger", "disgust")


@pytest.mark.slow
def test_packaged_default_reads_the_words_over_music(tmp_path):
    """Lines over music: a melody, a drum loop, a synth pad, a chord pulsing at syllable rate, a beat of
    notes. The voice branch hears no speech (the pitch-glide gate catches the first two, the speech detector
    on the encoder's states the rest), so the fused emotion is the words' and no voice/words mismatch is
    flagged; the same lines spoken keep the voice in the fusion."""
    import subprocess

    from emotag.media import load_audio
    from emotag.training.nonspeech import nonspeech_audio
    from tests import mediagen

    lines = ["Thank you so much, this is wonderful!", "I am so angry with you, get out now!"]
    spoken = []
    for i, line in enumerate(lines):
        subprocess.run(["espeak-ng", "-w", str(tmp_path / f"{i}.wav"), line], check=True)
        spoken.append(load_audio(tmp_path / f"{i}.wav"))
    model = models.load_model()
    beds = [mediagen.melody(0), mediagen.drum_loop(), *nonspeech_audio(3, 9, kinds=("pad", "pulse", "music"))]
    words = model.predict([Segment(line, None) for line in lines])
    over = model.predict([Segment(line, bed) for line in lines for bed in beds])
    for k, pred in enumerate(over):
        alone = words[k // len(beds)].emotion
        assert pred.emotion.label == alone.label and not pred.mismatched, (k, pred)
        assert max(abs(a - b) for a, b in zip(pred.emotion.probs, alone.probs, strict=True)) < 0.05, k
    voiced = model.predict([Segment(line, w) for line, w in zip(lines, spoken, strict=True)])
    moved = [
        max(abs(a - b) for a, b in zip(p.emotion.probs, w.emotion.probs, strict=True))
        for p, w in zip(voiced, words, strict=True)
    ]
    assert max(moved) > 0.05, moved
