"""The text encoder run by CTranslate2: the same states as transformers, or a clean fallback to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.tinymodels import tiny_encoder

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("ctranslate2")

from emotag.models.ct2_encoder import convert  # noqa: E402
from emotag.models.text import TextBranch, TextConfig, build_inputs, make_head  # noqa: E402
from emotag.timeline import LABELS  # noqa: E402

CUES = ["i am so happy", "hate you get out !", "the meeting at noon on friday , do believe it", "wow"]
CONTEXTS = [["hi there"], [], ["what a day", "i miss her so much"], ["sad"]]


def _load(path: Path) -> tuple[object, object]:
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()
    return tok, model


def test_converted_bert_gives_the_states_of_transformers(tmp_path: Path) -> None:
    tok, model = _load(tiny_encoder(tmp_path))
    with torch.no_grad():  # random weights that differ from layer to layer, as fine-tuned ones do
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # single sequences, and pairs with token types; both padded
    batches = [
        build_inputs(tok, CUES, ctx, use_context=True, context_cues=2, max_length=64)
        for ctx in (None, CONTEXTS)
    ]
    for enc in batches:
        enc.pop("target_mask")
    with torch.no_grad():
        refs = [model(**enc).last_hidden_state for enc in batches]
    fast = convert(model, tok, threads=1)
    assert fast is not None
    assert (batches[1]["token_type_ids"] == 1).any()
    for enc, ref in zip(batches, refs, strict=True):
        got = fast.last_hidden_state(enc)
        valid = enc["attention_mask"].bool()
        assert got.shape == ref.shape and not valid.all()
        assert torch.allclose(got[valid], ref[valid], atol=1e-4), (got[valid] - ref[valid]).abs().max()
        with torch.no_grad():  # converting read the model without changing it
            assert torch.equal(model(**enc).last_hidden_state, ref)
    assert (
        not hasattr(model.config, "position_embedding_type")
        or model.config.position_embedding_type == "absolute"
    )


def _branch(tok: object, model: object, backend: str) -> TextBranch:
    cfg = TextConfig(encoder="tiny", use_context=True, context_cues=2, train_layers=1, head_hidden=8)
    torch.manual_seed(1)
    head = make_head(int(model.config.hidden_size), 8, len(LABELS)).eval()  # type: ignore[attr-defined]
    return TextBranch(cfg, tok, model, head, backend=backend)


def test_branch_scores_alike_on_either_backend(tmp_path: Path) -> None:
    tok, model = _load(tiny_encoder(tmp_path))
    fast, slow = _branch(tok, model, "auto"), _branch(tok, model, "torch")
    assert fast.runs_on == "ctranslate2" and slow.runs_on == "transformers"
    a, b = fast.infer(CUES, CONTEXTS), slow.infer(CUES, CONTEXTS)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
    np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-4)
    assert not np.allclose(a.probs[0], a.probs[1])
    with pytest.raises(ValueError, match="backend"):
        _branch(tok, model, "onnx")


def test_an_encoder_ctranslate2_cannot_take_stays_on_transformers(tmp_path: Path) -> None:
    from transformers import DistilBertConfig, DistilBertModel

    tok, _ = _load(tiny_encoder(tmp_path))
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=1, n_heads=2, hidden_dim=37)  # type: ignore[arg-type]
    model = DistilBertModel(cfg).eval()
    assert convert(model, tok, threads=1) is None
    branch = _branch(tok, model, "auto")
    assert branch.runs_on == "transformers"
    out = branch.infer(CUES)
    (tmp_path / "bert").mkdir()
    bert_tok, bert = _load(tiny_encoder(tmp_path / "bert"))
    bert_tok.padding_side = "left"  # lengths could not say where each row's tokens are
    assert convert(bert, bert_tok, threads=1) is None
    assert out.probs.shape == (len(CUES), len(LABELS)) and np.isfinite(out.probs).all()


def test_a_failed_conversion_leaves_the_model_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctranslate2

    tok, model = _load(tiny_encoder(tmp_path))
    had = hasattr(model.config, "position_embedding_type")

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no space left on device")

    monkeypatch.setattr(ctranslate2, "Encoder", refuse)
    assert convert(model, tok, threads=1) is None
    assert hasattr(model.config, "position_embedding_type") == had
    branch = _branch(tok, model, "auto")
    assert branch.runs_on == "transformers"
    assert branch.infer(CUES).probs.shape == (len(CUES), len(LABELS))


def test_int8_encoder_is_close_not_equal(tmp_path: Path) -> None:
    tok, model = _load(tiny_encoder(tmp_path))
    enc = build_inputs(tok, CUES, None, use_context=False, context_cues=0, max_length=64)
    enc.pop("target_mask")
    valid = enc["attention_mask"].bool()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    f32, q8 = (convert(model, tok, threads=1, compute_type=t) for t in ("float32", "int8"))
    assert f32 is not None and q8 is not None
    # quantising the converter's arrays in place would have rewritten the model's own tensors
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    a, b = f32.last_hidden_state(enc)[valid], q8.last_hidden_state(enc)[valid]
    err = (a - b).abs().max()
    assert 0 < err < 0.25 * a.abs().max(), err
    with pytest.raises(ValueError, match="compute type"):
        convert(model, tok, threads=1, compute_type="int4")


def test_branch_runs_the_compute_type_its_config_names(tmp_path: Path) -> None:
    tok, model = _load(tiny_encoder(tmp_path))
    base = _branch(tok, model, "auto")
    cfg = TextConfig(**{**base.config.to_dict(), "labels": LABELS, "compute_type": "int8"})
    q8 = TextBranch(cfg, tok, model, base._head, backend="auto")
    assert q8.runs_on == "ctranslate2"
    a, b = base.infer(CUES), q8.infer(CUES)
    assert not np.array_equal(a.embedding, b.embedding)
    assert np.abs(a.embedding - b.embedding).max() < 0.25 * np.abs(a.embedding).max()
    assert TextConfig.from_dict({}).compute_type == "float32"  # branches trained before it: float32
