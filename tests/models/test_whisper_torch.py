"""The voice branch's bfloat16 torch encoder: the packaged tiny.en layers, checked against transformers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from emotag.errors import ModelError
from tests import mediagen
from tests.packaged import skip_unless_packaged_whisper

skip_unless_packaged_whisper()

from emotag.asr import load_packaged_whisper, read_packaged_model_bin  # noqa: E402
from emotag.models import ct2_layers  # noqa: E402
from emotag.models.whisper_audio import (  # noqa: E402
    POOLED_DIM,
    Standardiser,
    WhisperAudioBranch,
    WhisperEncoder,
    build_head,
    whisper_log_mel,
)
from emotag.models.whisper_torch import (  # noqa: E402
    TorchWhisperEncoder,
    has_amx,
    load_packaged,
    weights_from_model_file,
)

LAYERS = 2


def _transformers_encoder(weights: dict[str, object]) -> object:
    """transformers' own Whisper encoder (float32, ``LAYERS`` layers) holding the packaged weights."""
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder as HFEncoder

    w = {k: v for k, v in weights.items() if isinstance(v, torch.Tensor)}
    cfg = WhisperConfig(
        d_model=384, encoder_layers=LAYERS, encoder_attention_heads=6, encoder_ffn_dim=1536, num_mel_bins=80
    )
    enc = HFEncoder(cfg).eval()
    state = {
        "conv1.weight": w["encoder/conv1/weight"],
        "conv1.bias": w["encoder/conv1/bias"],
        "conv2.weight": w["encoder/conv2/weight"],
        "conv2.bias": w["encoder/conv2/bias"],
        "embed_positions.weight": w["encoder/position_encodings/encodings"],
        "layer_norm.weight": w["encoder/layer_norm/gamma"],
        "layer_norm.bias": w["encoder/layer_norm/beta"],
    }
    for i in range(LAYERS):
        p, q = f"encoder/layer_{i}/", f"layers.{i}."
        qkv_w, qkv_b = w[p + "self_attention/linear_0/weight"], w[p + "self_attention/linear_0/bias"]
        state |= {
            q + "self_attn.q_proj.weight": qkv_w[:384],
            q + "self_attn.q_proj.bias": qkv_b[:384],
            q + "self_attn.k_proj.weight": qkv_w[384:768],  # Whisper's keys have no bias
            q + "self_attn.v_proj.weight": qkv_w[768:],
            q + "self_attn.v_proj.bias": qkv_b[768:],
            q + "self_attn.out_proj.weight": w[p + "self_attention/linear_1/weight"],
            q + "self_attn.out_proj.bias": w[p + "self_attention/linear_1/bias"],
            q + "self_attn_layer_norm.weight": w[p + "self_attention/layer_norm/gamma"],
            q + "self_attn_layer_norm.bias": w[p + "self_attention/layer_norm/beta"],
            q + "final_layer_norm.weight": w[p + "ffn/layer_norm/gamma"],
            q + "final_layer_norm.bias": w[p + "ffn/layer_norm/beta"],
            q + "fc1.weight": w[p + "ffn/linear_0/weight"],
            q + "fc1.bias": w[p + "ffn/linear_0/bias"],
            q + "fc2.weight": w[p + "ffn/linear_1/weight"],
            q + "fc2.bias": w[p + "ffn/linear_1/bias"],
        }
    assert not np.any(np.asarray(qkv_b[384:768]))  # what dropping the key bias assumes
    enc.load_state_dict(state)
    return enc


@pytest.mark.parametrize("fused", [True, False], ids=["fused-gelu", "separate-gelu"])
def test_bf16_states_are_transformers_float32_whisper_within_bfloat16_rounding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fused: bool
) -> None:
    import torch

    import emotag.models.whisper_torch as wt

    if fused and not wt.fused_gelu():
        pytest.skip("this torch has no fused product-GELU operators")
    monkeypatch.setattr(wt, "fused_gelu", lambda: fused)

    voice = mediagen.read_wav(
        mediagen.speak("I really did not expect to see you here today", tmp_path / "v.wav")
    )
    wave = np.zeros(30 * 16000, np.float32)  # transformers' encoder takes exactly Whisper's 30 s window
    wave[: voice.size] = voice[: wave.size]
    feats = whisper_log_mel()(wave)[:, :3000][None]
    assert feats.shape == (1, 80, 3000)
    path, blob = read_packaged_model_bin("this test")
    reference = _transformers_encoder(weights_from_model_file(blob, LAYERS, str(path)))
    with torch.inference_mode():
        want = reference(torch.from_numpy(feats)).last_hidden_state.numpy()  # type: ignore[operator]
    got = load_packaged(LAYERS).encode(feats)
    int8 = np.asarray(load_packaged_whisper(1, encoder_layers=LAYERS).encode(np.ascontiguousarray(feats)))
    assert got.shape == want.shape == int8.shape == (1, 1500, 384) and got.dtype == np.float32

    def rel(a: np.ndarray) -> float:
        return float(np.sqrt(((a - want) ** 2).mean() / (want**2).mean()))

    # bfloat16 products keep about 3 significant digits; CTranslate2's int8 is further from the float model
    assert rel(got) < 0.02, rel(got)
    assert rel(got) < 0.6 * rel(int8), (rel(got), rel(int8))
    # shorter inputs (no padding to 30 s): attention then spans only them; CTranslate2 reads them the same way
    short = load_packaged(LAYERS).encode(feats[:, :, :400])
    ct2 = np.asarray(
        load_packaged_whisper(1, encoder_layers=LAYERS).encode(np.ascontiguousarray(feats[:, :, :400]))
    )
    assert short.shape == ct2.shape == (1, 200, 384)
    assert np.sqrt(((short - ct2) ** 2).mean() / (ct2**2).mean()) < 2 * rel(int8)


def test_weights_of_another_kind_or_depth_are_a_model_error() -> None:
    path, blob = read_packaged_model_bin("this test")
    parsed = ct2_layers.parse(blob, str(path))
    int8 = [
        dataclasses.replace(v, dtype=1, data=v.data[: len(v.data) // 2])
        if v.name == "encoder/layer_0/ffn/linear_0/weight"
        else v
        for v in parsed.variables
    ]
    bad = ct2_layers.serialise(dataclasses.replace(parsed, variables=tuple(int8)))
    with pytest.raises(
        ModelError, match=r"bad\.bin: encoder/layer_0/ffn/linear_0/weight is not stored as float"
    ):
        weights_from_model_file(bad, LAYERS, "bad.bin")
    two = weights_from_model_file(blob, 2, "model.bin")
    assert not any(k.startswith("encoder/layer_2/") for k in two)  # only what two layers read
    with pytest.raises(
        ModelError, match=r"model\.bin: no Whisper encoder with 3 layers \(encoder/layer_2/\)"
    ):
        TorchWhisperEncoder(two, 3)


def test_the_bfloat16_encoder_runs_only_where_it_is_the_fast_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import emotag.models.whisper_torch as wt

    with pytest.raises(ModelError, match="unknown Whisper encoder 'onnx'"):
        WhisperEncoder(backend="onnx")
    assert WhisperEncoder(backend="ctranslate2").backend == "ctranslate2"
    monkeypatch.setattr(wt, "has_amx", lambda: True)
    assert WhisperEncoder().backend == WhisperEncoder(backend="torch-bf16").backend == "torch-bf16"
    monkeypatch.setattr(wt, "has_amx", lambda: False)  # emulated bfloat16 would be several times slower
    assert WhisperEncoder().backend == WhisperEncoder(backend="torch-bf16").backend == "ctranslate2"


@pytest.mark.skipif(not has_amx(), reason="the bfloat16 encoder runs only on CPUs with AMX")
def test_heads_are_served_by_the_encoder_they_were_trained_on(tmp_path: Path) -> None:
    std = Standardiser(np.zeros(POOLED_DIM, np.float32), np.ones(POOLED_DIM, np.float32))
    heads = {"global": build_head(), "file": build_head()}
    WhisperAudioBranch(None, heads, std, {"global": 1.0, "file": 1.0}).save(tmp_path)
    meta = json.loads((tmp_path / "whisper_audio.json").read_text())
    assert meta["encoder_backend"] == "torch-bf16"  # new heads: the bfloat16 encoder
    loaded = WhisperAudioBranch.from_dir(tmp_path)
    assert loaded.backend == loaded.encoder.backend == "torch-bf16" and loaded.encoder.batch == 8
    del meta["encoder_backend"]  # heads written before the setting existed read CTranslate2's int8 states
    (tmp_path / "whisper_audio.json").write_text(json.dumps(meta))
    old = WhisperAudioBranch.from_dir(tmp_path)
    assert old.backend == old.encoder.backend == "ctranslate2" and old.encoder.batch == 4
    (tmp_path / "whisper_audio.json").write_text(json.dumps({**meta, "encoder_backend": "onnx"}))
    with pytest.raises(
        ModelError, match="encoder_backend 'onnx' is not an encoder .* upgrade emotag or retrain"
    ):
        WhisperAudioBranch.from_dir(tmp_path)


def test_cues_of_many_lengths_are_padded_to_few_and_keep_their_own_states(tmp_path: Path) -> None:
    lines = ["no", "what a lovely morning it is", "I told you already, I am not going back there"]
    waves = [mediagen.read_wav(mediagen.speak(t, tmp_path / f"{i}.wav")) for i, t in enumerate(lines)]
    mel = whisper_log_mel()
    feats = [(f := mel(w))[:, : f.shape[1] // 2 * 2] for w in waves]
    assert len({f.shape[1] for f in feats}) == 3
    enc = load_packaged(LAYERS)
    together = enc.encode_many(feats)
    for f, states in zip(feats, together, strict=True):
        alone = enc.encode(f[None])[0]
        assert states.shape == alone.shape == (f.shape[1] // 2, 384)
        # same states up to bfloat16 rounding: the padding is never read
        assert np.sqrt(((states - alone) ** 2).mean() / (alone**2).mean()) < 0.005
    longest = max(f.shape[1] for f in feats)
    assert enc.encode_many(feats, longest + 2)[0].shape == together[0].shape
    with pytest.raises(ValueError, match="even lengths up to"):
        enc.encode_many(feats, longest - 2)
    assert enc.encode_many([]) == []


def test_fused_and_separate_gelu_compute_the_same_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emotag.models.whisper_torch as wt

    if not wt.fused_gelu():
        pytest.skip("this torch has no fused product-GELU operators")
    wave = mediagen.read_wav(mediagen.speak("Well, that went better than I had feared", tmp_path / "v.wav"))
    feats = whisper_log_mel()(wave)
    feats = feats[None, :, : feats.shape[1] // 2 * 2]
    enc = load_packaged(LAYERS)
    monkeypatch.setattr(wt, "fused_gelu", lambda: True)
    fused = enc.encode(feats)
    monkeypatch.setattr(wt, "fused_gelu", lambda: False)
    separate = enc.encode(feats)
    rel = float(np.sqrt(((fused - separate) ** 2).mean() / (separate**2).mean()))
    assert fused.shape == separate.shape == (1, feats.shape[2] // 2, 384)
    assert 0 < rel < 0.02, rel  # other kernels, the same function to bfloat16 rounding


def test_fused_gelu_is_used_only_where_torch_has_it_and_it_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import emotag.models.whisper_torch as wt

    ops = torch.ops.mkldnn
    # where this torch has the operators (2.13 does), the probe finds that they agree
    assert wt.fused_gelu.__wrapped__() == hasattr(ops, "_linear_pointwise")

    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported")

    def wrong(x: torch.Tensor, *args: object) -> torch.Tensor:
        return torch.zeros((*x.shape[:-1], 96), dtype=x.dtype)

    for name, stand_in in (
        ("_linear_pointwise", fails),
        ("_linear_pointwise", wrong),
        ("_convolution_pointwise", fails),
    ):
        with monkeypatch.context() as m:
            m.setattr(ops, name, stand_in, raising=False)
            assert not wt.fused_gelu.__wrapped__()


@pytest.fixture(scope="module")
def cut_voices(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Four long takes (20-30 s each: a refit needs many more frames than it has neurons) and a short one."""
    d = tmp_path_factory.mktemp("cutvoices")
    story = (
        "Get out of here, I said get out right now, and do not come back until you can explain yourself. "
        "I miss them so much, every single day, and the house is so quiet without their voices in it. "
        "Oh wow, I did not expect to see you here, of all places, after all these years away from home. "
        "The meeting starts at nine in the second room; bring the numbers from last quarter with you."
    )
    lines = [
        (story, 20, 190),
        (story[::-1].title(), 40, 130),
        (" ".join(reversed(story.split())), 70, 170),
        (story.upper().replace(",", ""), 55, 150),
        ("Please do not leave me alone in the dark", 85, 140),
    ]
    return [
        mediagen.read_wav(mediagen.speak(t, d / f"{i}.wav", pitch=p, speed=s))
        for i, (t, p, s) in enumerate(lines)
    ]


def test_a_cut_encoder_keeps_what_the_whole_blocks_compute(cut_voices: list[np.ndarray]) -> None:
    import torch

    from emotag.models.ffn_cut import fit_cuts

    enc = load_packaged(LAYERS)
    mel = whisper_log_mel()
    feats = [(f := mel(w))[:, : min(3000, f.shape[1] // 2 * 2)] for w in cut_voices]
    cuts, errors = fit_cuts(enc, feats[:4], [768, 768])  # the fifth cue is never seen by the fit
    assert [c.layer for c in cuts] == [0, 1] and all(c.keep.size == 768 for c in cuts)
    assert all(0 < e < 0.2 for e in errors), errors
    cut = enc.with_cuts(cuts)
    assert cut.weights["encoder/layer_1/ffn/linear_0/weight"].shape == (768, 384)
    assert enc.weights["encoder/layer_1/ffn/linear_0/weight"].shape == (1536, 384)  # the packaged one stays
    assert enc.with_cuts(()) is enc
    whole, narrow = enc.encode(feats[4][None])[0], cut.encode(feats[4][None])[0]
    # the same neurons without the refit (the old down-projection): further from the whole encoder
    w = enc.weights
    naive = []
    for c in cuts:
        p = f"encoder/layer_{c.layer}/ffn/linear_1/"
        kept = w[p + "weight"][:, torch.from_numpy(c.keep)].float().numpy()
        naive.append(dataclasses.replace(c, weight=kept, bias=w[p + "bias"].float().numpy()))
    dropped = enc.with_cuts(naive).encode(feats[4][None])[0]

    def rel(a: np.ndarray) -> float:
        return float(np.sqrt(((a - whole) ** 2).mean() / (whole**2).mean()))

    assert rel(narrow) < 0.8 * rel(dropped), (rel(narrow), rel(dropped))
    assert np.corrcoef(narrow.ravel(), whole.ravel())[0, 1] > 0.97


def test_ctranslate2_runs_the_same_cut_as_torch(cut_voices: list[np.ndarray], tmp_path: Path) -> None:
    from emotag.training.audiodata import Clip
    from emotag.training.whisper_audio import fit_encoder_cuts

    paths = []
    for i, w in enumerate(cut_voices):
        paths.append(mediagen.write_wav(tmp_path / f"{i}.wav", w))
    clips = [Clip(Path(p), "neutral", f"s{i}") for i, p in enumerate(paths)]
    cuts, _ = fit_encoder_cuts(clips[:4], seed=0, keep=768)
    torch_cut = WhisperEncoder(backend="torch-bf16", cuts=cuts).pooled(cut_voices)
    ct2_cut = WhisperEncoder(backend="ctranslate2", cuts=cuts).pooled(cut_voices)
    ct2_whole = WhisperEncoder(backend="ctranslate2").pooled(cut_voices)

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sqrt(((a - b) ** 2).mean() / (b**2).mean()))

    # int8 against bfloat16 of the same narrowed blocks: as close as the whole encoders are (about 0.02),
    # and much closer than CTranslate2's whole encoder is to the cut one
    assert rel(ct2_cut, torch_cut) < 0.05 < rel(ct2_whole, torch_cut)
    blob = read_packaged_model_bin("test")[1]
    with pytest.raises(ModelError, match="beyond the 1 kept"):
        ct2_layers.keep_encoder_layers(blob, 1, cuts=cuts)
    bad = dataclasses.replace(
        cuts[0], weight=np.zeros((100, 768), np.float32), bias=np.zeros(100, np.float32)
    )
    with pytest.raises(ModelError, match="does not fit the file's shapes"):
        ct2_layers.keep_encoder_layers(blob, 2, cuts=[bad])


def test_cuts_are_saved_with_the_heads_and_served_by_either_backend(
    cut_voices: list[np.ndarray], tmp_path: Path
) -> None:
    from emotag.models.ffn_cut import fit_cuts

    mel = whisper_log_mel()
    feats = [(f := mel(w))[:, : min(3000, f.shape[1] // 2 * 2)] for w in cut_voices[:3]]
    cuts, _ = fit_cuts(load_packaged(LAYERS), feats, [None, 512])  # the second layer only
    std = Standardiser(np.zeros(POOLED_DIM, np.float32), np.ones(POOLED_DIM, np.float32))
    heads = {"global": build_head(), "file": build_head()}
    WhisperAudioBranch(None, heads, std, {"global": 1.0, "file": 1.0}, cuts=cuts).save(tmp_path)
    assert json.loads((tmp_path / "whisper_audio.json").read_text())["ffn_keep"] == {"1": 512}
    loaded = WhisperAudioBranch.from_dir(tmp_path)
    assert [(c.layer, c.keep.size) for c in loaded.cuts] == [(1, 512)]
    assert np.array_equal(loaded.cuts[0].keep, cuts[0].keep)
    assert loaded.encoder.cuts == loaded.cuts
    direct = WhisperEncoder(cuts=loaded.cuts).pooled(cut_voices[3:])
    assert np.allclose(loaded.encoder.pooled(cut_voices[3:]), direct)
    ct2 = WhisperAudioBranch(
        None, heads, std, {"global": 1.0, "file": 1.0}, cuts=loaded.cuts, backend="ctranslate2"
    )
    assert ct2.encoder.backend == "ctranslate2" and ct2.encoder.cuts == loaded.cuts
    # heads saved before cuts existed run the whole blocks
    WhisperAudioBranch(None, heads, std, {"global": 1.0, "file": 1.0}).save(tmp_path / "old")
    assert WhisperAudioBranch.from_dir(tmp_path / "old").cuts == ()
    from emotag.modelcard import _ffn_cut_text  # what the model card says of them

    assert "(layer 2: 512 of 1,536 neurons;" in _ffn_cut_text(tmp_path, True)
    assert _ffn_cut_text(tmp_path / "old", True) == _ffn_cut_text(tmp_path, False) == ""
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "whisper_audio.safetensors"))
    del state["encoder_cut.layer_1.weight"]
    save_file(state, str(tmp_path / "whisper_audio.safetensors"))
    with pytest.raises(
        ModelError, match="unreadable Whisper audio head .*encoder_cut.layer_1.weight missing"
    ):
        WhisperAudioBranch.from_dir(tmp_path)


def test_cues_of_30_s_or_more_are_read_to_30_s(tmp_path: Path) -> None:
    # 30 s is 3,000 log-mel frames; rounded up to the padding buckets it would outgrow the position table
    wave = mediagen.read_wav(
        mediagen.speak("Tell me again why we came here. " * 12, tmp_path / "l.wav", speed=120)
    )
    assert wave.size > 31 * 16000
    long = np.concatenate([wave, np.zeros(16000, np.float32)])[: 31 * 16000]
    torch_enc, ct2_enc = WhisperEncoder(trim=False), WhisperEncoder(trim=False, backend="ctranslate2")
    a, b = torch_enc.pooled([long, long[: 30 * 16000]]), ct2_enc.pooled([long])
    assert np.allclose(a[0], a[1], atol=1e-3)  # past 30 s nothing is read
    assert np.corrcoef(a[0], b[0])[0, 1] > 0.99
    enc = load_packaged(LAYERS)
    with pytest.raises(ValueError, match="up to 3000 frames"):
        enc.encode_many([np.zeros((80, 3000), np.float32)], 3008)
