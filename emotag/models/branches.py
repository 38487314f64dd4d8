"""The contract between the single-modality branches and fusion.

Each branch (text: :mod:`emotag.models.text`; audio: :mod:`emotag.models.audio`) turns a batch of inputs
into a :class:`BranchOutput`: calibrated probabilities over :data:`~emotag.timeline.LABELS`, valence and
arousal, a fixed-size embedding (what early/hybrid fusion learns from), and an *evidence* score that says
how much the modality has to say at all (lexically neutral or empty text, silence, music or noise → low).
Fusion (:mod:`emotag.fusion`) sees only these outputs, so either branch can be swapped for a user-supplied
Hugging Face model without touching fusion.

Model directory layout (the packaged default lives in ``emotag/models/default/``)::

    config.json           {"name", "version", "labels", "text": {...}, "audio": {...}, "fusion": {...}}
    text.safetensors      text branch weights (head / adapters / top layers over the packaged encoder)
    audio.safetensors     audio branch weights
    fusion.safetensors    fusion + mismatch weights
    MODEL_CARD.md         human-readable card: data, licences, figures, limits
    model_card.json       the same, machine-readable

Each branch reads and writes only its own section of ``config.json`` and its own weights file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    from _typeshed import DataclassInstance

Rows = TypeVar("Rows", bound="DataclassInstance")


def concat_rows(parts: Sequence[Rows]) -> Rows:
    """Row-wise concatenation of records whose every field is an array with one row per input
    (:class:`BranchOutput`, :class:`~emotag.models.audio.VoiceAnalysis`); one part comes back as it is."""
    first = parts[0]
    if len(parts) == 1:
        return first
    joined = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(first)}
    return replace(first, **joined)


def take_rows(rows: Rows, idx: Sequence[int] | npt.NDArray[np.int64]) -> Rows:
    """The rows ``idx`` (in that order) of a record like those :func:`concat_rows` joins."""
    k = np.asarray(idx, dtype=np.int64)
    return replace(rows, **{f.name: getattr(rows, f.name)[k] for f in fields(rows)})


def unsort_rows(parts: Sequence[Rows], order: Sequence[int]) -> Rows:
    """Join ``parts`` computed for the inputs in ``order`` (a permutation) and put the rows back in input
    order."""
    inv = np.empty(len(order), dtype=np.int64)
    inv[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    return take_rows(concat_rows(parts), inv)


@dataclass(frozen=True, slots=True)
class BranchOutput:
    """One branch's answer for a batch of ``n`` inputs.

    Attributes:
        probs: ``(n, 7)`` float32, calibrated probabilities in LABELS order.
        valence: ``(n,)`` float32 in [-1, 1].
        arousal: ``(n,)`` float32 in [-1, 1].
        embedding: ``(n, d)`` float32, the branch's pooled representation (``d`` fixed per branch).
        evidence: ``(n,)`` float32 in [0, 1]: how much emotional evidence the input carries at all
            (0 for empty text or silent audio).
    """

    probs: npt.NDArray[np.float32]
    valence: npt.NDArray[np.float32]
    arousal: npt.NDArray[np.float32]
    embedding: npt.NDArray[np.float32]
    evidence: npt.NDArray[np.float32]


class TextBranchLike(Protocol):
    """What fusion needs of a text branch."""

    @property
    def name(self) -> str: ...

    @property
    def embedding_dim(self) -> int: ...

    def infer(
        self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None
    ) -> BranchOutput: ...


class AudioBranchLike(Protocol):
    """What fusion needs of an audio branch. Waveforms are float32 mono at 16 kHz."""

    @property
    def name(self) -> str: ...

    @property
    def embedding_dim(self) -> int: ...

    def infer(self, waveforms: Sequence[npt.NDArray[np.float32]]) -> BranchOutput: ...
