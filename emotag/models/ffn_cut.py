"""Narrower feed-forward blocks for the voice encoder: keep the neurons that carry most of each block's
output and refit its output map by least squares, so the block computes nearly what the whole one did.

Why: the feed-forward blocks are two thirds of the products of each of the two Whisper layers the voice
branch runs (1,536 channels up and back down per frame, against 384 x 4 for attention), and those products
are most of its CPU time. Cutting each block to half its neurons and refitting the down-projection
(ridge regression of the whole block's output on the kept neurons, over frames of speech) keeps the
voice heads' figures: 6 speaker-independent RAVDESS folds, each fold's cut fitted on its own training
actors only (``bench/audio_cv.py --cut-per-fold``; figures in ``bench/README.md``, session 20). It follows
the whole encoder less closely on speech unlike the calibration clips (studio RAVDESS), which is why the
default model keeps the whole blocks and ``emotag train --ffn-keep`` makes the cut opt-in. Dropping the same
neurons and only folding their mean output into the bias (no refit) left 2-3 times the error in the
block's output and cost the heads about 0.01 unweighted accuracy at two thirds of the neurons.

Which neurons: the largest mean ``|GELU output|`` times the norm of the neuron's column in the
down-projection (what it adds to the residual stream), over the calibration frames. The first layers'
cut is fitted first; the next layer's calibration inputs come from the already-cut layers, so each refit
also absorbs what the layers below changed.

A cut is part of a trained voice model (the heads read the states of the cut encoder): it is stored with
the heads (:func:`state` / :func:`from_state`) and applied to the packaged weights as they load, for the
bfloat16 torch encoder (:meth:`emotag.models.whisper_torch.TorchWhisperEncoder.with_cuts`) and for
CTranslate2 (:func:`emotag.models.ct2_layers.keep_encoder_layers` rewrites the narrowed tensors into the
in-memory model file). Written by hand: pruning libraries (``torch.nn.utils.prune``) mask weights but do
not shrink the products, and none refits the output map.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from emotag.errors import ModelError

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

    from emotag.models.whisper_torch import TorchWhisperEncoder

#: Relative ridge of the refit (times the mean diagonal of the kept neurons' Gram matrix).
RIDGE = 1e-3
#: Prefix of a cut's tensors in a safetensors file.
PREFIX = "encoder_cut."


@dataclass(frozen=True, slots=True)
class FfnCut:
    """One layer's narrowed feed-forward block: the kept neurons of the up-projection (``keep``, sorted
    indices) and the refitted down-projection (``weight`` ``(d_model, len(keep))``, ``bias``
    ``(d_model,)``)."""

    layer: int
    keep: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        if self.weight.shape != (self.bias.shape[0], self.keep.shape[0]):
            raise ModelError(
                f"encoder cut of layer {self.layer}: weight {self.weight.shape} does not fit "
                f"{self.keep.shape[0]} kept neurons and {self.bias.shape[0]} outputs"
            )


def tensor_names(layer: int) -> tuple[str, str, str, str]:
    """Model-file names of ``layer``'s feed-forward tensors: up weight, up bias, down weight, down bias."""
    p = f"encoder/layer_{layer}/ffn/"
    return p + "linear_0/weight", p + "linear_0/bias", p + "linear_1/weight", p + "linear_1/bias"


def fit_cut(
    layer: int,
    inputs: torch.Tensor,
    weights: Mapping[str, torch.Tensor],
    keep: int,
    ridge: float = RIDGE,
) -> tuple[FfnCut, float]:
    """The cut of ``layer``'s block to ``keep`` neurons, fitted on ``inputs`` (``(frames, d_model)``, the
    block's layer-normed inputs) and the residual error: the mean squared difference from the whole
    block's output over those frames, relative to that output's variance.

    ``weights``: the encoder's tensors by their model-file names (``encoder/layer_{i}/ffn/...``).
    """
    import torch
    import torch.nn.functional as F

    n_w1, n_b1, n_w2, n_b2 = tensor_names(layer)
    w1, b1, w2 = weights[n_w1], weights[n_b1], weights[n_w2].float()
    if not 0 < keep <= w1.shape[0]:
        raise ModelError(f"encoder cut: cannot keep {keep} of the {w1.shape[0]} neurons of layer {layer}")
    with torch.inference_mode():
        g = F.gelu(F.linear(inputs.to(w1.dtype), w1, b1)).float()  # (frames, d_ff)
        target = (g @ w2.T).double()  # the whole block's output, less its bias
        score = g.abs().mean(0) * w2.norm(dim=0)
        kept = torch.sort(torch.argsort(score, descending=True)[:keep]).values
        x = torch.cat([g[:, kept], torch.ones(g.shape[0], 1)], 1).double()
        gram = x.T @ x
        gram += ridge * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=gram.dtype)
        beta = torch.linalg.solve(gram, x.T @ target)
        err = float(((x @ beta - target) ** 2).mean() / target.var(0).mean().clamp_min(1e-30))
    bias = (beta[-1].float() + weights[n_b2].float()).numpy()
    cut = FfnCut(layer, kept.numpy().astype(np.int64), beta[:-1].T.float().numpy().copy(), bias)
    return cut, err


def fit_cuts(
    encoder: TorchWhisperEncoder,
    features: Sequence[npt.NDArray[np.float32]],
    keeps: Sequence[int | None],
    ridge: float = RIDGE,
) -> tuple[tuple[FfnCut, ...], list[float]]:
    """Cuts of ``encoder``'s layers to ``keeps[i]`` neurons each (``None``: layer ``i`` whole), fitted layer
    by layer on the cues' log-mel frames ``features`` (``(80, N_i)`` each), and each cut's residual error
    (:func:`fit_cut`). Layer ``i``'s calibration inputs come from the encoder with the cuts below it."""
    cuts: list[FfnCut] = []
    errors: list[float] = []
    current = encoder
    for layer, keep in enumerate(keeps):
        if keep is None:
            continue
        cut, err = fit_cut(layer, current.ffn_inputs(features, layer), encoder.weights, keep, ridge)
        cuts.append(cut)
        errors.append(err)
        current = encoder.with_cuts(cuts)
    return tuple(cuts), errors


def apply_cuts(weights: Mapping[str, torch.Tensor], cuts: Sequence[FfnCut]) -> dict[str, torch.Tensor]:
    """A copy of ``weights`` (model-file names) with each cut layer's block narrowed, in the dtypes the
    tensors had."""
    import torch

    out = dict(weights)
    for cut in cuts:
        n_w1, n_b1, n_w2, n_b2 = tensor_names(cut.layer)
        if n_w1 not in out:
            raise ModelError(f"encoder cut of layer {cut.layer}: the encoder has no such layer")
        idx = torch.from_numpy(cut.keep)
        if int(idx.max()) >= out[n_w1].shape[0] or cut.weight.shape[0] != out[n_w2].shape[0]:
            raise ModelError(f"encoder cut of layer {cut.layer}: does not fit this encoder's shapes")
        out[n_w1] = out[n_w1][idx].contiguous()
        out[n_b1] = out[n_b1][idx].contiguous()
        out[n_w2] = torch.from_numpy(cut.weight).to(out[n_w2].dtype).contiguous()
        out[n_b2] = torch.from_numpy(cut.bias).to(out[n_b2].dtype).contiguous()
    return out


def digest(cuts: Sequence[FfnCut]) -> str:
    """A short hash of the cuts (for caches of encoders built with them); ``""`` for none."""
    if not cuts:
        return ""
    h = hashlib.sha256()
    for c in cuts:
        for a in (np.int64(c.layer), c.keep, c.weight, c.bias):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def state(cuts: Sequence[FfnCut]) -> dict[str, torch.Tensor]:
    """The cuts as named tensors (the refitted weights in float16, as the packaged model stores its own)."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for c in cuts:
        p = f"{PREFIX}layer_{c.layer}."
        out[p + "keep"] = torch.from_numpy(c.keep.astype(np.int32))
        out[p + "weight"] = torch.from_numpy(c.weight).to(torch.float16)
        out[p + "bias"] = torch.from_numpy(c.bias).to(torch.float16)
    return out


def from_state(tensors: Mapping[str, torch.Tensor]) -> tuple[FfnCut, ...]:
    """The inverse of :func:`state` (no cuts: ``()``).

    Raises:
        ModelError: a cut's tensors are missing or do not fit each other.
    """
    layers = sorted(
        {int(k[len(PREFIX) :].split(".")[0][len("layer_") :]) for k in tensors if k.startswith(PREFIX)}
    )
    cuts = []
    for i in layers:
        p = f"{PREFIX}layer_{i}."
        try:
            keep, weight, bias = (tensors[p + n] for n in ("keep", "weight", "bias"))
        except KeyError as exc:
            raise ModelError(f"encoder cut of layer {i}: {exc.args[0]} missing") from None
        cuts.append(FfnCut(i, keep.numpy().astype(np.int64), weight.float().numpy(), bias.float().numpy()))
    return tuple(cuts)
