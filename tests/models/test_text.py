"""Text branch: user-supplied Hugging Face models (tiny, built here), training, loading, the real model.

Tiny random BERTs are built from a config and a hand-written vocab and saved with ``save_pretrained``, so
every code path that a hub model would take runs here without a download.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emotag.errors import ModelError, UnknownModelError
from emotag.timeline import LABELS
from tests.tinymodels import tiny_classifier, tiny_encoder, tiny_mpnet_encoder

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from emotag.models.text import (  # noqa: E402
    ENCODER_SHA256,
    TextBranch,
    TextConfig,
    load_text_branch,
    map_foreign_labels,
    read_section,
    verify_weights,
)

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "emotag" / "models" / "default"
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_classifier_labels_are_mapped(tmp_path):
    path = tiny_classifier(tmp_path, {0: "happy", 1: "angry", 2: "sad", 3: "other"})
    branch = load_text_branch(str(path), tmp_path / "unused")
    out = branch.infer(["i am so happy", "", "i hate you get out"], [["hi there"], [], []])
    assert out.probs.shape == (3, len(LABELS)) and out.probs.dtype == np.float32
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
    mapped = [LABELS.index(x) for x in ("joy", "anger", "sadness", "neutral")]
    unmapped = [i for i in range(len(LABELS)) if i not in mapped]
    assert np.all(out.probs[:, unmapped] == 0)
    assert out.probs[1, LABELS.index("neutral")] == 1.0 and out.evidence[1] == 0.0  # empty text
    assert out.embedding.shape == (3, 32) == (3, branch.embedding_dim)
    assert np.all(np.abs(out.valence) <= 1) and np.all(np.abs(out.arousal) <= 1)
    assert np.all((out.evidence >= 0) & (out.evidence <= 1))


def test_label_synonyms_and_sentiment_spread():
    m = map_foreign_labels({0: "Joy", 1: "LOVE", 2: "nervousness", 3: "amazement", 4: "grief", 5: "unmapped"})
    assert [LABELS[i] for i in m.argmax(axis=1)[:5]] == ["joy", "joy", "fear", "surprise", "sadness"]
    assert not m[5].any()
    s = map_foreign_labels({0: "negative", 1: "neutral", 2: "positive"})
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    assert s[2, LABELS.index("joy")] == 1.0 and s[0, LABELS.index("joy")] == 0.0
    assert s[0, LABELS.index("anger")] > 0 and s[0, LABELS.index("sadness")] > 0
    with pytest.raises(ModelError, match="maps onto"):
        map_foreign_labels({0: "LABEL_0x", 1: "banana"})


def test_sentiment_classifier_drops_nothing_and_renormalises(tmp_path):
    path = tiny_classifier(tmp_path, {0: "negative", 1: "positive", 2: "toxic"})
    out = load_text_branch(str(path), tmp_path).infer(["i love this", "what a day"])
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(out.probs[:, [LABELS.index("surprise"), LABELS.index("neutral")]] == 0)


def test_bare_encoder_needs_a_trained_head(tmp_path):
    path = tiny_encoder(tmp_path)
    with pytest.raises(ModelError, match="emotag train --text-encoder"):
        load_text_branch(str(path), tmp_path)


def test_unknown_hub_id_offline_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(UnknownModelError, match="HF_HUB_OFFLINE") as err:
        load_text_branch("nobody-here/no-such-emotion-model", tmp_path)
    assert "\n" not in str(err.value)


def test_checksum_mismatch_is_a_model_error(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"not the encoder")
    with pytest.raises(ModelError, match="does not match"):
        verify_weights(f, ENCODER_SHA256)


def test_train_head_on_user_encoder_then_load(tmp_path):
    """`train_text(encoder=SPEC)` on a tiny corpus: weights + config written, reloadable, seeded."""
    from emotag.training.text import TextTrainOptions, train_text
    from tests.training.test_textdata import write_corpus

    data = write_corpus(tmp_path / "data")
    enc = tiny_encoder(tmp_path)
    opts = TextTrainOptions(
        train_layers=1, head_hidden=16, epochs=2, batch_size=8, threads=1, use_context=True
    )
    reports = []
    for run in ("a", "b"):
        reports.append(train_text(data, tmp_path / run, seed=3, encoder=str(enc), options=opts))
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / run / "text.safetensors")) for run in ("a", "b"))
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)  # same seed, same weights
    rep = reports[0]
    assert rep["temperature"] > 0 and set(rep) >= {"meld_dev", "emorynlp_test", "goemotions_test", "history"}
    assert set(rep["meld_dev"]) == {"context", "no_context"}
    section = read_section(tmp_path / "a")
    assert section["encoder"] == str(enc) and section["train_layers"] == 1
    # the other sections of config.json survive a retrain
    cfg_path = tmp_path / "a" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["fusion"] = {"method": "late"}
    cfg_path.write_text(json.dumps(cfg))
    train_text(data, tmp_path / "a", seed=3, encoder=str(enc), options=opts, evaluate_reports=False)
    assert json.loads(cfg_path.read_text())["fusion"] == {"method": "late"}

    branch = load_text_branch(str(tmp_path / "a"), tmp_path)
    assert isinstance(branch, TextBranch)
    out = branch.infer(["i am so happy", "   ", "i hate you"], [["hi there"], [], ["what a day"]])
    assert out.probs.shape == (3, 7) and out.embedding.shape == (3, 32)
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
    assert out.evidence[1] == 0.0 and out.evidence[0] > 0
    # a cue without context is encoded alike whether or not it is batched with cues that have one
    alone = branch.infer(["i hate you"])
    mixed = branch.infer(["i hate you", "i am so happy"], [[], ["hi there"]])
    np.testing.assert_allclose(mixed.probs[0], alone.probs[0], atol=1e-5)
    with pytest.raises(ValueError, match="contexts"):
        branch.infer(["a", "b"], [[]])


@pytest.mark.parametrize("build", [tiny_encoder, tiny_mpnet_encoder], ids=["bert", "mpnet"])
def test_layers_run_by_hand_give_what_the_model_gives(tmp_path, build):
    """Training runs encoder layers one by one (cached lower layers, trained upper ones); inference runs the
    model. Both must agree, MPNet's relative position bias included."""
    from transformers import AutoModel, AutoTokenizer

    from emotag.models.text import run_layers

    path = build(tmp_path)
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    enc = tok(["i am so happy this is wonderful", "what a day", "hi"], padding=True, return_tensors="pt")
    mask = enc["attention_mask"]
    with torch.no_grad():
        ref = model(**enc).last_hidden_state
        emb = model.embeddings(input_ids=enc["input_ids"])
        split = run_layers(
            model.encoder.layer[1:],
            run_layers(model.encoder.layer[:1], emb, mask, model.encoder),
            mask,
            model.encoder,
        )
        bare = run_layers(model.encoder.layer, emb, mask)
    real = mask.bool()
    torch.testing.assert_close(split[real], ref[real], atol=1e-5, rtol=1e-5)
    if build is tiny_mpnet_encoder:  # without the bias the states differ: the test can tell
        assert float((bare[real] - ref[real]).abs().max()) > 0.02


def test_train_head_on_an_mpnet_encoder(tmp_path):
    """`emotag train --text-encoder` on an MPNet model (e.g. all-mpnet-base-v2) trains and loads."""
    from emotag.training.text import TextTrainOptions, train_text
    from tests.training.test_textdata import write_corpus

    data = write_corpus(tmp_path / "data")
    enc = tiny_mpnet_encoder(tmp_path)
    opts = TextTrainOptions(train_layers=1, head_hidden=16, epochs=1, batch_size=8, threads=1)
    rep = train_text(data, tmp_path / "m", seed=0, encoder=str(enc), options=opts, evaluate_reports=False)
    assert rep["validation"]["calibrated"]["n"] > 0
    branch = load_text_branch(str(tmp_path / "m"), tmp_path)
    assert isinstance(branch, TextBranch) and branch.runs_on == "transformers"
    assert branch.config.compute_type == "float32"  # what runs: the card must not say int8
    out = branch.infer(["i am so happy", "i hate you"])
    assert out.probs.shape == (2, 7) and np.isfinite(out.probs).all()


def test_unknown_compute_type_is_refused_before_training():
    """A typo in the options fails at once, not after a training run whose model would refuse to load."""
    from emotag.training.text import TextTrainOptions

    assert TextTrainOptions(compute_type="float32").compute_type == "float32"
    with pytest.raises(ValueError, match="compute type 'int4': use one of float32, int8"):
        TextTrainOptions(compute_type="int4")


def test_adapters_are_trained_stored_and_added_back_onto_the_encoder(tmp_path):
    """``lora_rank``: only low-rank adapters of every linear map (and the head) train and are stored;
    loading adds them onto a fresh copy of the encoder, and the branch then scores what training scored."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel

    from emotag.models.text import apply_deltas
    from emotag.training.text import TextTrainOptions, train_text
    from tests.training.test_textdata import write_corpus

    data = write_corpus(tmp_path / "data")
    enc = tiny_encoder(tmp_path)
    opts = TextTrainOptions(
        train_layers=2, head_hidden=16, epochs=2, batch_size=8, threads=1, lora_rank=3, lr_layers=1e-2
    )
    rep = train_text(data, tmp_path / "m", seed=1, encoder=str(enc), options=opts, evaluate_reports=False)
    stored = load_file(str(tmp_path / "m" / "text.safetensors"))
    assert not [k for k in stored if k.startswith("layers.")]  # nothing of the encoder's own layers
    assert stored["delta.layers.1.attention.self.query.weight.a"].shape == (32, 3)
    assert stored["delta.layers.1.attention.self.query.weight.b"].shape == (3, 32)
    assert stored["delta.layers.0.intermediate.dense.weight.a"].shape == (37, 3)
    assert len([k for k in stored if k.startswith("delta.")]) == 2 * 2 * 6  # 6 linear maps per BERT layer
    # what the stored (fp16) adapters score on the held-out part is what training measured in float
    assert rep["quantization"]["val_argmax_agreement"] >= 0.95

    base = AutoModel.from_pretrained(str(enc)).encoder.layer
    branch = TextBranch.from_dir(tmp_path / "m")
    own = branch._enc.encoder.layer[1].state_dict()
    a = stored["delta.layers.1.output.dense.weight.a"].float()
    b = stored["delta.layers.1.output.dense.weight.b"].float()
    torch.testing.assert_close(
        own["output.dense.weight"], base[1].state_dict()["output.dense.weight"] + a @ b
    )
    assert not torch.allclose(own["output.dense.weight"], base[1].state_dict()["output.dense.weight"])
    torch.testing.assert_close(own["output.dense.bias"], base[1].state_dict()["output.dense.bias"])
    out = branch.infer(["i am so happy", "i hate you"])
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
    merged = apply_deltas({k: v.float() for k, v in stored.items()}, base)
    assert "layers.0.output.dense.weight" in merged and not [k for k in merged if k.startswith("delta.")]

    # An adapter for a layer the encoder does not have is refused, naming the file.
    stored["delta.layers.7.output.dense.weight.a"] = a.half()
    stored["delta.layers.7.output.dense.weight.b"] = b.half()
    save_file(stored, str(tmp_path / "m" / "text.safetensors"))
    with pytest.raises(ModelError, match=r"text\.safetensors.*does not fit the encoder"):
        TextBranch.from_dir(tmp_path / "m")


def test_broken_weights_are_a_model_error(tmp_path):
    from emotag.training.text import TextTrainOptions, train_text
    from tests.training.test_textdata import write_corpus

    data = write_corpus(tmp_path / "data")
    enc = tiny_encoder(tmp_path)
    opts = TextTrainOptions(train_layers=1, head_hidden=16, epochs=1, batch_size=8, threads=1)
    train_text(data, tmp_path / "m", seed=0, encoder=str(enc), options=opts, evaluate_reports=False)
    cfg_path = tmp_path / "m" / "config.json"
    good = cfg_path.read_text()
    assert json.loads(good)["text"]["compute_type"] == "int8"
    assert TextBranch.from_dir(tmp_path / "m").runs_on == "ctranslate2"
    cfg = json.loads(good)
    cfg["text"]["compute_type"] = "int4"  # a type this emotag does not know
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="compute type 'int4'"):
        TextBranch.from_dir(tmp_path / "m")
    cfg_path.write_text(good)
    (tmp_path / "m" / "text.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="text.safetensors"):
        TextBranch.from_dir(tmp_path / "m")
    shutil.rmtree(tmp_path / "m")
    with pytest.raises(ModelError):
        TextBranch.from_dir(tmp_path / "m")
    # Layers stored whole (int8 copies, no adapters) must be complete: a missing tensor is not filled in
    # from the encoder.
    copies = TextTrainOptions(train_layers=1, head_hidden=16, epochs=1, batch_size=8, threads=1, lora_rank=0)
    train_text(data, tmp_path / "c", seed=0, encoder=str(enc), options=copies, evaluate_reports=False)
    from safetensors.torch import load_file, save_file

    stored = load_file(str(tmp_path / "c" / "text.safetensors"))
    assert "layers.0.output.dense.bias" in stored and "qscale.layers.0.output.dense.weight" in stored
    TextBranch.from_dir(tmp_path / "c")
    del stored["layers.0.output.dense.bias"]
    save_file(stored, str(tmp_path / "c" / "text.safetensors"))
    with pytest.raises(ModelError, match="weights do not fit the encoder"):
        TextBranch.from_dir(tmp_path / "c")


@pytest.mark.slow
@pytest.mark.skipif(
    not (DEFAULT_DIR / "text.safetensors").is_file(), reason="packaged text weights not trained yet"
)
def test_packaged_branch_on_clear_sentences():
    branch = load_text_branch(None, DEFAULT_DIR)
    texts = [
        "I am so happy, this is wonderful!",
        "I hate you, get out!",
        "I miss her so much, I can't stop crying.",
        "The meeting is at noon on Friday.",
        "",
    ]
    out = branch.infer(texts)
    top = [LABELS[i] for i in out.probs.argmax(axis=1)]
    assert top[:3] == ["joy", "anger", "sadness"]
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
    # calibration ordering: the clear cues are more confident and carry more evidence than the neutral one
    conf = out.probs.max(axis=1)
    assert min(conf[:3]) > out.probs[3, LABELS.index("joy")]
    assert min(out.evidence[:3]) > out.evidence[3] and out.evidence[4] == 0.0
    assert out.valence[0] > 0.3 > -0.3 > max(out.valence[1], out.valence[2])
    assert out.arousal[1] > out.arousal[2]  # anger is more aroused than sadness
    assert out.embedding.shape == (5, 384)
    # cues are scored in small length-sorted batches: the scores do not depend on the batch size
    many = [f"{t} {'Really. ' * (k % 7)}".strip() for k, t in enumerate(texts * 8) if t]
    small = branch.infer(many)
    branch._batch = len(many)
    np.testing.assert_allclose(branch.infer(many).probs, small.probs, atol=1e-5)
    # run by CTranslate2 in int8: close to what transformers gives in float32, and CTranslate2's float32
    # gives the same scores as transformers
    assert branch.runs_on == "ctranslate2" and branch.config.compute_type == "int8"
    slow = TextBranch(branch.config, branch._tok, branch._enc, branch._head, backend="torch")
    assert slow.runs_on == "transformers"
    ref = slow.infer(many).probs
    assert np.abs(ref - small.probs).max() < 0.1 and (ref.argmax(1) == small.probs.argmax(1)).mean() > 0.9
    cfg32 = TextConfig.from_dict({**branch.config.to_dict(), "compute_type": "float32"})
    f32 = TextBranch(cfg32, branch._tok, branch._enc, branch._head)
    np.testing.assert_allclose(f32.infer(many).probs, ref, atol=1e-5)
