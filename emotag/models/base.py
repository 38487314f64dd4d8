"""The contract between the pipeline and any emotion model.

A model receives :class:`Segment` batches (cue text without markup, the cue's 16 kHz mono waveform, and the
text of the previous cues for conversational context) and returns one :class:`Prediction` per segment:
the fused :class:`~emotag.timeline.Emotion`, the per-modality evidence it was fused from, and a
voice/words mismatch score. Models are registered by name (see :mod:`emotag.models`), loaded lazily, and
import torch only inside their own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from emotag.timeline import Emotion

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Sample rate of every waveform handed to a model.
SAMPLE_RATE = 16000


@dataclass(frozen=True, slots=True)
class Segment:
    """What a model sees of one cue.

    Attributes:
        text: the cue text without markup (may be empty).
        audio: float32 mono waveform at :data:`SAMPLE_RATE`, or ``None`` when there is none.
        context: plain text of the preceding cues of the same file, oldest first (may be empty).
        speaker: who speaks, when the subtitles say (``None`` otherwise); a model bound to a file
            (``for_file``) may normalise each named speaker's voice on its own.
    """

    text: str
    audio: npt.NDArray[np.float32] | None = None
    context: tuple[str, ...] = ()
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class Prediction:
    """A model's answer for one segment.

    Attributes:
        emotion: the fused emotion.
        text: text-only evidence, ``None`` if the text branch did not run (no text, or audio-only mode).
        audio: audio-only evidence, ``None`` if the audio branch did not run.
        mismatch: disagreement between voice and words in [0, 1].
        mismatched: whether ``mismatch`` passed the model's calibrated threshold.
    """

    emotion: Emotion
    text: Emotion | None = None
    audio: Emotion | None = None
    mismatch: float = 0.0
    mismatched: bool = False


@runtime_checkable
class EmotionModel(Protocol):
    """What the pipeline needs of a model."""

    @property
    def name(self) -> str:
        """A short identifier written into every output (``emotag-default-1``)."""
        ...

    def predict(self, segments: Sequence[Segment]) -> list[Prediction]:
        """Score a batch of segments; returns one prediction per segment, in order."""
        ...


# A model may also offer ``for_file(segments[, progress]) -> EmotionModel``: the pipeline calls it once per
# media file with all of that file's segments and scores the file's batches with the returned model (the
# default model uses it to normalise the voice per speaker/file). ``progress(done, total)``, if the method
# accepts it, is told how many segments' voices have been read. It is optional, so it is not part of the
# Protocol; :func:`bind_to_file` calls it for either signature.


def bind_to_file(
    model: EmotionModel, segments: Sequence[Segment], progress: Callable[[int, int], None] | None = None
) -> EmotionModel:
    """``model.for_file(segments)`` where the model offers it (passing ``progress`` where it takes one),
    else ``model`` itself."""
    import inspect

    for_file = getattr(model, "for_file", None)
    if not callable(for_file):
        return model
    if progress is not None:
        try:
            takes_progress = "progress" in inspect.signature(for_file).parameters
        except (TypeError, ValueError):  # builtins and some extension types have no signature
            takes_progress = False
        if takes_progress:
            bound: EmotionModel = for_file(segments, progress=progress)
            return bound
    plain: EmotionModel = for_file(segments)
    return plain
