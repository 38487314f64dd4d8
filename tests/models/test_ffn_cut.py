"""Narrowed feed-forward blocks of the voice encoder (:mod:`emotag.models.ffn_cut`)."""

from __future__ import annotations

import numpy as np
import pytest

from emotag.errors import ModelError
from emotag.models import ffn_cut
from emotag.models.ffn_cut import FfnCut, apply_cuts, fit_cut


def _block(d: int = 16, width: int = 48, seed: int = 0) -> dict[str, object]:
    import torch

    g = torch.Generator().manual_seed(seed)
    p = "encoder/layer_0/ffn/"
    return {
        p + "linear_0/weight": torch.randn(width, d, generator=g) / d**0.5,
        p + "linear_0/bias": 0.1 * torch.randn(width, generator=g),
        p + "linear_1/weight": torch.randn(d, width, generator=g) / width**0.5,
        p + "linear_1/bias": 0.1 * torch.randn(d, generator=g),
    }


def _block_output(w: dict[str, object], x: object, layer: int = 0) -> object:
    import torch.nn.functional as F

    p = f"encoder/layer_{layer}/ffn/"
    return F.linear(
        F.gelu(F.linear(x, w[p + "linear_0/weight"], w[p + "linear_0/bias"])),
        w[p + "linear_1/weight"],
        w[p + "linear_1/bias"],
    )  # type: ignore[arg-type]


def test_a_refit_recovers_neurons_that_duplicate_kept_ones_exactly() -> None:
    import torch

    w = _block()
    p = "encoder/layer_0/ffn/"
    # the second half of the neurons repeats the first, with smaller output weights: the first half is
    # kept and carries everything, once the refit adds the copies' output weights to theirs
    for n in ("linear_0/weight", "linear_0/bias"):
        t = w[p + n]
        w[p + n] = torch.cat([t[:24], t[:24]])  # type: ignore[index]
    w[p + "linear_1/weight"][:, 24:] *= 0.05  # type: ignore[index]
    x = torch.randn(4000, 16, generator=torch.Generator().manual_seed(1))
    cut, err = fit_cut(0, x, w, 24)  # type: ignore[arg-type]
    assert err < 1e-4 and cut.keep.size == 24 and cut.weight.shape == (16, 24)
    narrowed = apply_cuts(w, [cut])  # type: ignore[arg-type]
    assert narrowed[p + "linear_0/weight"].shape == (24, 16) and narrowed[p + "linear_1/weight"].shape == (
        16,
        24,
    )
    fresh = torch.randn(500, 16, generator=torch.Generator().manual_seed(2))
    whole, cut_out = _block_output(w, fresh), _block_output(narrowed, fresh)
    assert torch.allclose(whole, cut_out, atol=0.01)  # the ridge shrinks the refit a little  # type: ignore[arg-type]


def test_a_refit_beats_dropping_neurons_and_folding_their_mean_into_the_bias() -> None:
    import torch

    w = _block(width=64)
    x = torch.randn(6000, 16, generator=torch.Generator().manual_seed(3))
    cut, err = fit_cut(0, x, w, 32)  # type: ignore[arg-type]
    fresh = torch.randn(2000, 16, generator=torch.Generator().manual_seed(4))
    whole = _block_output(w, fresh)
    refit = _block_output(apply_cuts(w, [cut]), fresh)  # type: ignore[arg-type]
    # the same neurons, the old down-projection, the dropped neurons' mean output in the bias
    p = "encoder/layer_0/ffn/"
    g = torch.nn.functional.gelu(
        torch.nn.functional.linear(x, w[p + "linear_0/weight"], w[p + "linear_0/bias"])
    )  # type: ignore[arg-type]
    drop = torch.ones(64, dtype=torch.bool)
    drop[torch.from_numpy(cut.keep)] = False
    naive_bias = w[p + "linear_1/bias"] + w[p + "linear_1/weight"][:, drop] @ g[:, drop].mean(0)  # type: ignore[index,operator]
    naive = FfnCut(
        0, cut.keep, w[p + "linear_1/weight"][:, torch.from_numpy(cut.keep)].numpy(), naive_bias.numpy()
    )  # type: ignore[index]
    dropped = _block_output(apply_cuts(w, [naive]), fresh)  # type: ignore[arg-type]
    var = whole.var(0).mean()  # type: ignore[attr-defined]
    e_refit, e_naive = (
        float(((refit - whole) ** 2).mean() / var),
        float(((dropped - whole) ** 2).mean() / var),
    )  # type: ignore[operator]
    assert 0 < e_refit < 0.6 * e_naive
    assert abs(e_refit - err) < 0.5 * err + 0.01  # what the fit reports holds on frames it never saw


def test_cuts_are_checked_and_round_trip_through_named_tensors() -> None:
    w = _block()
    cut, _ = fit_cut(0, __import__("torch").randn(300, 16), w, 20)  # type: ignore[arg-type]
    back = ffn_cut.from_state(ffn_cut.state([cut]))
    assert len(back) == 1 and back[0].layer == 0 and np.array_equal(back[0].keep, cut.keep)
    assert np.allclose(back[0].weight, cut.weight, rtol=1e-3, atol=1e-3)  # stored float16
    assert ffn_cut.from_state({}) == () and ffn_cut.digest([]) == ""
    assert ffn_cut.digest([cut]) != ffn_cut.digest([FfnCut(0, cut.keep, cut.weight + 1, cut.bias)])
    with pytest.raises(ModelError, match="does not fit"):
        FfnCut(0, cut.keep, cut.weight[:, :3], cut.bias)
    with pytest.raises(ModelError, match="cannot keep 99"):
        fit_cut(0, __import__("torch").randn(30, 16), w, 99)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="no such layer"):
        apply_cuts(w, [FfnCut(3, cut.keep, cut.weight, cut.bias)])  # type: ignore[arg-type]
    state = ffn_cut.state([cut])
    del state["encoder_cut.layer_0.bias"]
    with pytest.raises(ModelError, match="layer 0: encoder_cut.layer_0.bias missing"):
        ffn_cut.from_state(state)
