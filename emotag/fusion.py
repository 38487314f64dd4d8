"""Fuse the text and audio branches' outputs into one emotion, and score voice/words mismatch.

Fusion sees only :class:`~emotag.models.branches.BranchOutput` values (calibrated probabilities, valence,
arousal, a pooled embedding and an *evidence* score per input), so either branch can be replaced without
retraining the other. Inference here is plain numpy (a few small matrix products per batch): fusion never
needs torch at run time, and its weights load from safetensors without unpickling anything. Training lives
in :mod:`emotag.training.fusion`, which mirrors these formulas in torch and exports the same tensors.

Three methods, selectable by name (``"early" | "late" | "hybrid"``):

* **late**: a weighted product of experts, ``sum_m w_m * (log p_m + beta_m)``. Each modality's
  log-probabilities get a weight ``w_m = exp(s_m) * e_m * 2 * sigmoid(a_m * e_m + b_m * (1 - H_m) + c_m)``
  where ``e_m`` is the branch's evidence and ``H_m`` its normalised entropy; the factor ``e_m`` makes a
  modality with no evidence (empty or lexically neutral text, silence, music) drop out exactly, and with it
  its per-class bias ``beta_m`` (what the modality's prior needs correcting by on the pairs). Files of the
  first format have one bias for all (``late.bias``, added whatever the evidence): it moved the voice's
  reading even where the words said nothing; the per-modality biases measured on the validation pairs
  accuracy 0.733 -> 0.737, same-label 0.892 -> 0.901, neutral text 0.808 -> 0.815, ECE 0.029 -> 0.019
  (2026-11-26), and with ``emotag eval`` on the 3 held-out eval actors same-label pairs 0.883 -> 0.906 (ECE
  0.032 -> 0.036, floor 0.039), neutral text 0.778 -> 0.767 (2 of 180 clips; the text branch reads one of
  RAVDESS's two sentences as faintly angry, evidence 0.77, and its bias now travels with it). Untrained
  (all parameters 0) this is ``w_m = e_m``: the evidence-weighted product, which is what
  :meth:`FusionModel.untrained` ships.
* **early**: an MLP over the two (standardised, presence-masked) embeddings and both evidence scores.
* **hybrid**: late fusion plus a residual MLP over both branches' probabilities, entropies, evidence and
  low-dimensional projections of their embeddings (the residual's last layer starts at zero, so an
  untrained hybrid equals late fusion).

Every method ends with its own temperature (fitted on validation pairs by
:func:`emotag.training.fusion.train_fusion`, see its ECE figures in the model card).

**Mismatch** (voice and words disagree: a sarcasm/irony candidate) is a logistic score over features that
are large only when *both* modalities carry evidence *and* point to opposite valence: the valence gap, the gap
times both confidences and evidences, the Jensen-Shannon divergence of the two distributions, the product of
the two valences when their signs differ, and the cross-valence mass
``P_words(positive) * P_voice(negative) + P_words(negative) * P_voice(positive)``. The flag threshold is
chosen on validation pairs (clashing vs agreeing vs no-evidence); :attr:`FusionOutput.direction` says which
way the clash goes (+1: words more positive than the voice, -1: the reverse).

**Valence/arousal** are evidence-weighted averages of the branches' own estimates,
``v = (alpha_v e_t v_t + (1 - alpha_v) e_a v_a + k0 v_0) / (alpha_v e_t + (1 - alpha_v) e_a + k0)`` (same
for arousal with ``alpha_a``), where ``v_0`` is the circumplex value of the fused distribution and ``k0``
its weight (``va.prior``; a large one keeps valence/arousal in line with the fused label). ``alpha`` and
``k0`` are fitted on training pairs (grid search on squared error to the label's circumplex value); the
untrained defaults lean valence on words (0.7) and arousal on voice (0.3), the usual finding in multimodal
emotion work (prosody carries arousal, lexical content valence).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from emotag import atomicfile
from emotag.errors import ModelError
from emotag.timeline import LABEL_VALENCE_AROUSAL, LABELS

if TYPE_CHECKING:
    from emotag.models.branches import BranchOutput

F32 = npt.NDArray[np.float32]
Params = dict[str, F32]

#: Fusion methods, selectable by name.
FUSION_METHODS: tuple[str, ...] = ("early", "late", "hybrid")
#: File format tag written into the safetensors metadata (``-2``: per-modality late biases).
FORMAT = "emotag-fusion-2"
#: Formats :meth:`FusionModel.load` reads (a ``-1`` file's single ``late.bias`` still applies).
READABLE_FORMATS = ("emotag-fusion-1", FORMAT)

N_LABELS = len(LABELS)
_EPS = 1e-6
#: Width of the hybrid method's embedding projections and hidden layer; the early MLP's hidden layer.
HYBRID_PROJ = 16
HYBRID_HIDDEN = 32
EARLY_HIDDEN = 64
#: Prior weight of the circumplex of the fused distribution in the valence/arousal average.
VA_PRIOR = 0.1

_POSITIVE = np.array([1.0 if LABEL_VALENCE_AROUSAL[lb][0] > 0 else 0.0 for lb in LABELS], dtype=np.float32)
_NEGATIVE = np.array([1.0 if LABEL_VALENCE_AROUSAL[lb][0] < -0.3 else 0.0 for lb in LABELS], dtype=np.float32)
_LABEL_V = np.array([LABEL_VALENCE_AROUSAL[lb][0] for lb in LABELS], dtype=np.float32)
_LABEL_A = np.array([LABEL_VALENCE_AROUSAL[lb][1] for lb in LABELS], dtype=np.float32)

#: Names of the mismatch features, in order (see :func:`mismatch_features`).
MISMATCH_FEATURES: tuple[str, ...] = (
    "valence_gap",
    "valence_gap_x_evidence",
    "valence_gap_x_confidence",
    "js_divergence_x_evidence",
    "cross_valence_mass_x_evidence",
    "evidence_product",
    "opposed_valence_x_evidence",
)


@dataclass(frozen=True, slots=True)
class FusionInput:
    """Both branches' outputs for ``n`` segments, with absent rows filled neutrally.

    A row whose modality did not run (no text, no usable audio, or single-modality mode) has uniform
    probabilities, zero valence/arousal/embedding/evidence and ``*_present`` False.
    """

    text_probs: F32
    text_valence: F32
    text_arousal: F32
    text_embedding: F32
    text_evidence: F32
    text_present: npt.NDArray[np.bool_]
    audio_probs: F32
    audio_valence: F32
    audio_arousal: F32
    audio_embedding: F32
    audio_evidence: F32
    audio_present: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.text_probs.shape[0])

    @classmethod
    def assemble(
        cls,
        n: int,
        text: BranchOutput | None,
        text_rows: Sequence[int],
        audio: BranchOutput | None,
        audio_rows: Sequence[int],
        *,
        text_dim: int,
        audio_dim: int,
    ) -> FusionInput:
        """Scatter branch outputs computed for subsets of the rows into a full ``n``-row input.

        Args:
            n: number of segments.
            text: text-branch output for the rows in ``text_rows`` (in that order), or ``None``.
            text_rows: indices (into ``range(n)``) that the text branch scored.
            audio: audio-branch output for ``audio_rows``, or ``None``.
            audio_rows: indices that the audio branch scored.
            text_dim: text embedding width (used for absent rows).
            audio_dim: audio embedding width.
        """
        t = _scatter(n, text, text_rows, text_dim)
        a = _scatter(n, audio, audio_rows, audio_dim)
        return cls(*t, *a)

    @classmethod
    def from_outputs(cls, text: BranchOutput, audio: BranchOutput) -> FusionInput:
        """Pair row ``i`` of ``text`` with row ``i`` of ``audio`` (both present everywhere)."""
        n = int(text.probs.shape[0])
        if int(audio.probs.shape[0]) != n:
            raise ValueError(f"text and audio outputs differ in length: {n} vs {audio.probs.shape[0]}")
        rows = list(range(n))
        return cls.assemble(
            n, text, rows, audio, rows, text_dim=text.embedding.shape[1], audio_dim=audio.embedding.shape[1]
        )

    def take(self, idx: npt.NDArray[np.int64]) -> FusionInput:
        """The rows ``idx`` of this input."""
        return FusionInput(*(np.asarray(getattr(self, f))[idx] for f in _FIELDS))


def _scatter(
    n: int, out: BranchOutput | None, rows: Sequence[int], dim: int
) -> tuple[F32, F32, F32, F32, F32, npt.NDArray[np.bool_]]:
    probs = np.full((n, N_LABELS), 1.0 / N_LABELS, dtype=np.float32)
    val = np.zeros(n, dtype=np.float32)
    aro = np.zeros(n, dtype=np.float32)
    emb = np.zeros((n, dim), dtype=np.float32)
    ev = np.zeros(n, dtype=np.float32)
    present = np.zeros(n, dtype=bool)
    if out is not None and len(rows):
        idx = np.asarray(rows, dtype=np.int64)
        if out.probs.shape[0] != idx.shape[0]:
            raise ModelError(f"branch returned {out.probs.shape[0]} rows for {idx.shape[0]} inputs")
        probs[idx] = out.probs
        val[idx] = out.valence
        aro[idx] = out.arousal
        if out.embedding.shape[1] == dim:
            emb[idx] = out.embedding
        ev[idx] = np.clip(out.evidence, 0.0, 1.0)
        present[idx] = True
    return probs, val, aro, emb, ev, present


_FIELDS = tuple(FusionInput.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class FusionOutput:
    """Fused result for ``n`` segments.

    Attributes:
        probs: ``(n, 7)`` calibrated fused probabilities in LABELS order.
        valence: ``(n,)`` fused valence in [-1, 1].
        arousal: ``(n,)`` fused arousal in [-1, 1].
        mismatch: ``(n,)`` voice/words disagreement score in [0, 1].
        mismatched: ``(n,)`` whether ``mismatch`` reached the calibrated threshold.
        direction: ``(n,)`` +1 when the words are more positive than the voice (positive words / negative
            tone, the sarcasm pattern), -1 for the reverse, 0 when a modality is absent.
    """

    probs: F32
    valence: F32
    arousal: F32
    mismatch: F32
    mismatched: npt.NDArray[np.bool_]
    direction: npt.NDArray[np.int8]


# ----------------------------------------------------------------------------------------------- helpers


def _f32(x: object) -> F32:
    return np.asarray(x, dtype=np.float32)


def entropy(probs: F32) -> F32:
    """Normalised entropy of each row, in [0, 1] (1 = uniform)."""
    p = np.clip(probs, _EPS, 1.0)
    h = -(p * np.log(p)).sum(axis=1) / math.log(probs.shape[1])
    return _f32(np.clip(h, 0.0, 1.0))


def softmax(logits: npt.NDArray[np.floating]) -> F32:
    """Row-wise softmax."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return _f32(e / e.sum(axis=1, keepdims=True))


def sigmoid(x: npt.NDArray[np.floating]) -> F32:
    """Numerically safe logistic function."""
    return _f32(0.5 * (1.0 + np.tanh(0.5 * x)))


def _linear(x: F32, p: Mapping[str, F32], name: str) -> F32:
    return (x @ p[f"{name}.weight"].T + p[f"{name}.bias"]).astype(np.float32)


def circumplex_batch(probs: F32) -> tuple[F32, F32]:
    """Expected (valence, arousal) of each row under :data:`~emotag.timeline.LABEL_VALENCE_AROUSAL`."""
    return (probs @ _LABEL_V).astype(np.float32), (probs @ _LABEL_A).astype(np.float32)


def late_logits(x: FusionInput, p: Mapping[str, F32], prefix: str = "late") -> F32:
    """Evidence-gated weighted sum of log-probabilities, each with its own bias (see module docstring)."""
    lp_t = np.log(np.clip(x.text_probs, _EPS, 1.0))
    lp_a = np.log(np.clip(x.audio_probs, _EPS, 1.0))
    zero = np.zeros(x.text_probs.shape[1], np.float32)
    b_t, b_a = p.get(f"{prefix}.bias_t", zero), p.get(f"{prefix}.bias_a", zero)
    scale = np.exp(p[f"{prefix}.scale"])
    gate = p[f"{prefix}.gate"]
    h_t, h_a = entropy(x.text_probs), entropy(x.audio_probs)
    w_t = (
        scale[0]
        * x.text_evidence
        * 2
        * sigmoid(gate[0, 0] * x.text_evidence + gate[0, 1] * (1 - h_t) + gate[0, 2])
    )
    w_a = (
        scale[1]
        * x.audio_evidence
        * 2
        * sigmoid(gate[1, 0] * x.audio_evidence + gate[1, 1] * (1 - h_a) + gate[1, 2])
    )
    out = w_t[:, None] * (lp_t + b_t) + w_a[:, None] * (lp_a + b_a) + p.get(f"{prefix}.bias", zero)[None, :]
    return _f32(out)


def _standardise(emb: F32, present: npt.NDArray[np.bool_], p: Mapping[str, F32], name: str) -> F32:
    z = (emb - p[f"{name}.mean"]) / p[f"{name}.std"]
    return (z * present[:, None]).astype(np.float32)


def early_features(x: FusionInput, p: Mapping[str, F32]) -> F32:
    """Input of the early MLP: standardised, presence-masked embeddings plus both evidence scores."""
    return np.concatenate(
        [
            _standardise(x.text_embedding, x.text_present, p, "early.norm_t"),
            _standardise(x.audio_embedding, x.audio_present, p, "early.norm_a"),
            x.text_evidence[:, None],
            x.audio_evidence[:, None],
        ],
        axis=1,
    ).astype(np.float32)


def early_logits(x: FusionInput, p: Mapping[str, F32]) -> F32:
    """Two-layer MLP over :func:`early_features`."""
    h = np.maximum(_linear(early_features(x, p), p, "early.fc1"), 0.0)
    return _linear(h, p, "early.fc2")


def hybrid_features(x: FusionInput, p: Mapping[str, F32]) -> F32:
    """Input of the hybrid residual: probabilities, entropies, evidence, projected embeddings."""
    zt = np.tanh(
        _linear(_standardise(x.text_embedding, x.text_present, p, "hybrid.norm_t"), p, "hybrid.proj_t")
    )
    za = np.tanh(
        _linear(_standardise(x.audio_embedding, x.audio_present, p, "hybrid.norm_a"), p, "hybrid.proj_a")
    )
    return np.concatenate(
        [
            x.text_probs,
            x.audio_probs,
            entropy(x.text_probs)[:, None],
            entropy(x.audio_probs)[:, None],
            x.text_evidence[:, None],
            x.audio_evidence[:, None],
            zt * x.text_present[:, None],
            za * x.audio_present[:, None],
        ],
        axis=1,
    ).astype(np.float32)


def hybrid_logits(x: FusionInput, p: Mapping[str, F32]) -> F32:
    """Late fusion plus an MLP residual over :func:`hybrid_features`."""
    h = np.maximum(_linear(hybrid_features(x, p), p, "hybrid.fc1"), 0.0)
    return late_logits(x, p, "hybrid.late") + _linear(h, p, "hybrid.fc2")


def _js_divergence(a: F32, b: F32) -> F32:
    a = np.clip(a, _EPS, 1.0)
    b = np.clip(b, _EPS, 1.0)
    m = 0.5 * (a + b)
    js = 0.5 * (a * np.log(a / m)).sum(axis=1) + 0.5 * (b * np.log(b / m)).sum(axis=1)
    return _f32(js / math.log(2))


def mismatch_features(x: FusionInput) -> F32:
    """Features of voice/words disagreement, named in :data:`MISMATCH_FEATURES`."""
    both = (x.text_evidence * x.audio_evidence).astype(np.float32)
    gap = np.abs(x.text_valence - x.audio_valence)
    conf = x.text_probs.max(axis=1) * x.audio_probs.max(axis=1)
    js = _js_divergence(x.text_probs, x.audio_probs)
    pos_t, neg_t = x.text_probs @ _POSITIVE, x.text_probs @ _NEGATIVE
    pos_a, neg_a = x.audio_probs @ _POSITIVE, x.audio_probs @ _NEGATIVE
    cross = pos_t * neg_a + neg_t * pos_a
    opposed = np.maximum(0.0, -(x.text_valence * x.audio_valence))  # > 0 only when the signs differ
    f = np.stack([gap, gap * both, gap * conf * both, js * both, cross * both, both, opposed * both], axis=1)
    present = (x.text_present & x.audio_present)[:, None]
    return (f * present).astype(np.float32)


# ------------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class FusionModel:
    """Fusion parameters plus the calibrated scalars that go with them.

    Attributes:
        params: named float32 arrays (the contents of ``fusion.safetensors``).
        method: the default method (what measured best on validation pairs).
        text_dim: text embedding width the early/hybrid parameters were trained for.
        audio_dim: audio embedding width.
        info: free-form metadata (validation figures), stored as JSON in the safetensors header.
    """

    params: Params
    method: str = "late"
    text_dim: int = 0
    audio_dim: int = 0
    info: dict[str, object] = field(default_factory=dict)

    @classmethod
    def untrained(cls, text_dim: int = 0, audio_dim: int = 0) -> FusionModel:
        """Evidence-weighted late fusion with no learned parameters; a fixed 0.5 mismatch threshold."""
        params: Params = {
            "late.scale": np.zeros(2, np.float32),
            "late.gate": np.zeros((2, 3), np.float32),
            "late.bias_t": np.zeros(N_LABELS, np.float32),
            "late.bias_a": np.zeros(N_LABELS, np.float32),
            "temperature": np.ones(len(FUSION_METHODS), np.float32),
            "va.alpha": np.array([0.7, 0.3], np.float32),
            # valence gap (in [0, 2]) x evidence dominates: a full-evidence clash of 1.0 reaches 0.5.
            "mismatch.weight": np.array([0.0, 4.0, 2.0, 1.0, 2.0, 0.0, 0.0], np.float32),
            "mismatch.bias": np.array([-4.0], np.float32),
            "mismatch.threshold": np.array([0.5], np.float32),
        }
        return cls(params, "late", text_dim, audio_dim, {"trained": False})

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods whose parameters are present."""
        have = []
        for m in FUSION_METHODS:
            key = {"early": "early.fc1.weight", "late": "late.scale", "hybrid": "hybrid.fc1.weight"}[m]
            if key in self.params:
                have.append(m)
        return tuple(have)

    @property
    def threshold(self) -> float:
        """The mismatch flag threshold."""
        return float(self.params["mismatch.threshold"][0])

    def temperature(self, method: str) -> float:
        """The calibration temperature of ``method``."""
        return float(self.params["temperature"][FUSION_METHODS.index(method)])

    def check_method(self, method: str | None) -> str:
        """Resolve ``None`` to the default and check the method's parameters exist."""
        method = method or self.method
        if method not in FUSION_METHODS:
            raise ModelError(f"unknown fusion method {method!r}; choose one of {', '.join(FUSION_METHODS)}")
        if method not in self.methods:
            raise ModelError(
                f"fusion method {method!r} is not trained in this model (has: {', '.join(self.methods)}); "
                "retrain with `emotag train` or pick another --fusion"
            )
        return method

    def logits(self, x: FusionInput, method: str | None = None) -> F32:
        """Uncalibrated fused logits."""
        m = self.check_method(method)
        if m == "late":
            return late_logits(x, self.params)
        if m == "early":
            return early_logits(x, self.params)
        return hybrid_logits(x, self.params)

    def mismatch(self, x: FusionInput) -> F32:
        """Mismatch score in [0, 1] per row (0 when either modality is absent)."""
        f = mismatch_features(x)
        s = sigmoid(f @ self.params["mismatch.weight"] + self.params["mismatch.bias"][0])
        return np.where(x.text_present & x.audio_present, s, 0.0).astype(np.float32)

    def valence_arousal(self, x: FusionInput, probs: F32) -> tuple[F32, F32]:
        """Evidence-weighted valence and arousal (see module docstring)."""
        alpha_v, alpha_a = (float(v) for v in self.params["va.alpha"])
        prior = self.params.get("va.prior")  # models trained before it was fitted used VA_PRIOR
        k_v, k_a = (float(v) for v in prior) if prior is not None else (VA_PRIOR, VA_PRIOR)
        v0, a0 = circumplex_batch(probs)
        return (
            _weighted(alpha_v, x.text_evidence, x.text_valence, x.audio_evidence, x.audio_valence, v0, k_v),
            _weighted(alpha_a, x.text_evidence, x.text_arousal, x.audio_evidence, x.audio_arousal, a0, k_a),
        )

    def fuse(self, x: FusionInput, method: str | None = None) -> FusionOutput:
        """Fuse a batch: calibrated probabilities, valence/arousal, mismatch score, flag and direction."""
        m = self.check_method(method)
        probs = softmax(self.logits(x, m) / self.temperature(m))
        val, aro = self.valence_arousal(x, probs)
        mm = self.mismatch(x)
        both = x.text_present & x.audio_present
        direction = np.where(both, np.sign(x.text_valence - x.audio_valence), 0).astype(np.int8)
        return FusionOutput(probs, val, aro, mm, mm >= self.threshold, direction)

    # -------------------------------------------------------------------------------------------- I/O

    def save(self, path: Path) -> None:
        """Write the parameters and metadata to a safetensors file, atomically."""
        from safetensors.numpy import save_file

        meta = {
            "format": FORMAT,
            "method": self.method,
            "text_dim": str(self.text_dim),
            "audio_dim": str(self.audio_dim),
            "labels": ",".join(LABELS),
            "info": json.dumps(self.info, sort_keys=True, default=float),
        }
        with atomicfile.replacing(path) as tmp:  # safetensors alone creates files 0600
            save_file(
                {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.params.items()}, str(tmp), meta
            )

    @classmethod
    def load(cls, path: Path) -> FusionModel:
        """Read a file written by :meth:`save` (safetensors: no unpickling)."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                params = {k: np.asarray(f.get_tensor(k), dtype=np.float32) for k in f.keys()}
        except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
            raise ModelError(
                f"{path}: cannot read fusion weights ({exc}); retrain with `emotag train`"
            ) from exc
        if meta.get("format") not in READABLE_FORMATS:
            raise ModelError(f"{path}: not an emotag fusion file (format {meta.get('format')!r})")
        if meta.get("labels", ",".join(LABELS)) != ",".join(LABELS):
            raise ModelError(f"{path}: fusion was trained for labels {meta.get('labels')}, not {LABELS}")
        info = json.loads(meta.get("info", "{}"))
        return cls(
            params,
            meta.get("method", "late"),
            int(meta.get("text_dim", 0)),
            int(meta.get("audio_dim", 0)),
            info,
        )


def _weighted(alpha: float, e_t: F32, v_t: F32, e_a: F32, v_a: F32, v0: F32, k0: float = VA_PRIOR) -> F32:
    num = alpha * e_t * v_t + (1 - alpha) * e_a * v_a + k0 * v0
    den = alpha * e_t + (1 - alpha) * e_a + k0
    return _f32(np.clip(num / den, -1.0, 1.0))


def mismatch_direction(direction: int) -> str:
    """Human words for :attr:`FusionOutput.direction` values."""
    if direction > 0:
        return "positive words / negative voice"
    if direction < 0:
        return "negative words / positive voice"
    return "none"
