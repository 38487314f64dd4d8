"""Core data types of emotag: plain, frozen, I/O-free.

Data flows one way through these types::

    Media -> Cue* -> (per-cue text + audio evidence) -> Emotion -> TaggedCue* -> Track -> exporters

Times are integer milliseconds everywhere (as in pysubs2's ``SSAEvent``); frames exist only inside
exporters, computed from exact :class:`fractions.Fraction` frame rates. Nothing here imports numpy,
torch or any other heavy module, so ``emotag --help`` stays fast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

#: The label set every emotag model speaks: Ekman's six plus neutral, in this fixed order.
LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")

#: Where each label sits on the valence/arousal plane (Russell's circumplex, rough consensus values).
#: Used to derive valence/arousal from probabilities when a model has no regression head.
LABEL_VALENCE_AROUSAL: Mapping[str, tuple[float, float]] = {
    "anger": (-0.6, 0.8),
    "disgust": (-0.7, 0.3),
    "fear": (-0.7, 0.7),
    "joy": (0.8, 0.5),
    "sadness": (-0.7, -0.5),
    "surprise": (0.2, 0.8),
    "neutral": (0.0, -0.2),
}

_TAG_RE = re.compile(r"<[^>]*>")
_ASS_OVERRIDE_RE = re.compile(r"\{\\[^}]*\}")
_SPACE_RE = re.compile(r"\s+")
#: A speaker label opening a cue's plain text: ``[SPEAKER_00]: `` (diarising transcribers such as WhisperX),
#: ``JOHN: ``, ``Speaker 1: ``, ``Dr. Ruth Smith: ``, after an optional ``>>`` (broadcast captions) or ``-``
#: (dialogue dash). A bare name is one to four words, the first capitalised.
_LABEL_RE = re.compile(
    r"^(?:>>\s*|-\s*)?"
    r"(?:\[(?P<bracket>[^\[\]:]{1,40})\]|(?P<name>[^\W\d_][\w.'\u2019-]*(?: [\w.'\u2019-]+){0,3}))"
    r"\s*:(?:\s+|$)"
)


def plain_text(text: str) -> str:
    """Return cue text without markup: HTML-ish tags, ASS override blocks, ``\\N`` breaks, extra space."""
    text = _ASS_OVERRIDE_RE.sub("", text)
    text = text.replace("\\N", " ").replace("\\n", " ").replace("\\h", " ")
    text = _TAG_RE.sub("", text)
    return _SPACE_RE.sub(" ", text).strip()


def speaker_label(plain: str) -> tuple[str, str] | None:
    """``(speaker, rest of the text)`` when plain cue text opens with a speaker label (see
    :data:`_LABEL_RE`), else ``None``. Whether a file's labels are names is the reader's call
    (:func:`emotag.subtitles.read_cues` takes only names that recur)."""
    m = _LABEL_RE.match(plain)
    if m is None:
        return None
    name = (m.group("bracket") or m.group("name") or "").strip()
    if not name or (m.group("name") is not None and (len(name) > 32 or not name[0].isupper())):
        return None
    return name, plain[m.end() :].strip()


def speaker_key(name: str | None) -> str | None:
    """The form speaker names are compared in everywhere (case and spacing ignored: ``ANNA``, ``Anna`` and
    ``anna `` are one speaker); ``None`` for no name. Names keep their spelling where shown."""
    key = " ".join((name or "").split()).casefold()
    return key or None


@dataclass(frozen=True, slots=True)
class Media:
    """A media file as probed: what exporters need to place markers.

    Attributes:
        path: the file's path as given by the user.
        duration_ms: length of the audio stream (or container) in milliseconds.
        fps: exact video frame rate, or ``None`` for audio-only media.
        sample_rate: the sample rate emotag decoded audio at (16 kHz for the models).
        start_timecode: the media's own start timecode (``HH:MM:SS:FF`` or ``;FF`` for drop-frame), if any.
        drop_frame: whether the media's timecode is drop-frame.
        has_video: whether the file has a video stream.
        width: video width in pixels, if any.
        height: video height in pixels, if any.
    """

    path: str
    duration_ms: int
    fps: Fraction | None = None
    sample_rate: int = 16000
    start_timecode: str | None = None
    drop_frame: bool = False
    has_video: bool = False
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle segment: integer milliseconds and the original text (markup kept).

    Attributes:
        index: 1-based position in the source subtitles (after sorting by start).
        start_ms: start time in milliseconds.
        end_ms: end time in milliseconds (may equal ``start_ms`` for zero-length cues).
        text: the cue text as written, markup included (``<i>``, ``{\\an8}``); newlines kept.
        speaker: speaker name when the source says (WebVTT ``<v>``, ASS ``Name``), else ``None``.
    """

    index: int
    start_ms: int
    end_ms: int
    text: str
    speaker: str | None = None

    def __post_init__(self) -> None:
        if self.start_ms < 0:
            raise ValueError(f"cue {self.index}: negative start {self.start_ms} ms")

    @property
    def duration_ms(self) -> int:
        """Length in milliseconds; never negative (out-of-order ends are clamped by the readers)."""
        return max(0, self.end_ms - self.start_ms)

    @property
    def plain(self) -> str:
        """The text without markup: markup stripped, whitespace collapsed."""
        return plain_text(self.text)

    @property
    def spoken(self) -> str:
        """The text the model reads: :attr:`plain` without a label naming this cue's :attr:`speaker`."""
        plain = self.plain
        if self.speaker is None:
            return plain
        label = speaker_label(plain)
        return label[1] if label is not None and speaker_key(label[0]) == speaker_key(self.speaker) else plain


@dataclass(frozen=True, slots=True)
class Emotion:
    """A distribution over :data:`LABELS` plus valence and arousal in [-1, 1].

    Attributes:
        probs: probabilities aligned with :data:`LABELS` (sum to 1).
        valence: unpleasant (-1) to pleasant (+1).
        arousal: calm (-1) to excited (+1).
    """

    probs: tuple[float, ...]
    valence: float = 0.0
    arousal: float = 0.0

    def __post_init__(self) -> None:
        if len(self.probs) != len(LABELS):
            raise ValueError(f"Emotion needs {len(LABELS)} probabilities, got {len(self.probs)}")

    @classmethod
    def from_mapping(
        cls, scores: Mapping[str, float], valence: float | None = None, arousal: float | None = None
    ) -> Emotion:
        """Build from ``{label: probability}``; missing labels are 0; renormalised; V/A derived if absent."""
        raw = [max(0.0, float(scores.get(label, 0.0))) for label in LABELS]
        total = sum(raw)
        probs = tuple(p / total for p in raw) if total > 0 else tuple(1.0 / len(LABELS) for _ in LABELS)
        if valence is None or arousal is None:
            v, a = circumplex(probs)
            valence = v if valence is None else valence
            arousal = a if arousal is None else arousal
        return cls(probs, _clip(valence), _clip(arousal))

    def __getitem__(self, label: str) -> float:
        return self.probs[LABELS.index(label)]

    def as_dict(self) -> dict[str, float]:
        """``{label: probability}`` in :data:`LABELS` order."""
        return dict(zip(LABELS, self.probs, strict=True))

    @property
    def label(self) -> str:
        """The most probable label."""
        return LABELS[max(range(len(LABELS)), key=self.probs.__getitem__)]

    @property
    def confidence(self) -> float:
        """Probability of the top label."""
        return max(self.probs)

    @property
    def entropy(self) -> float:
        """Normalised entropy in [0, 1]: 1 means no evidence (uniform), 0 means certain."""
        h = -sum(p * math.log(p) for p in self.probs if p > 0)
        return h / math.log(len(self.probs))


def circumplex(probs: Sequence[float]) -> tuple[float, float]:
    """Expected (valence, arousal) of a label distribution under :data:`LABEL_VALENCE_AROUSAL`."""
    v = sum(p * LABEL_VALENCE_AROUSAL[label][0] for p, label in zip(probs, LABELS, strict=True))
    a = sum(p * LABEL_VALENCE_AROUSAL[label][1] for p, label in zip(probs, LABELS, strict=True))
    return _clip(v), _clip(a)


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, float(x)))


@dataclass(frozen=True, slots=True)
class TaggedCue:
    """A cue with its fused emotion and the per-modality evidence it was fused from.

    Attributes:
        cue: the subtitle segment.
        emotion: the fused result.
        text: what the words alone say (``None`` when the cue has no text).
        audio: what the voice alone says (``None`` when the cue has no usable audio).
        mismatch: how strongly voice and words disagree, in [0, 1].
        mismatched: whether ``mismatch`` passed the model's threshold (a sarcasm/irony candidate).
    """

    cue: Cue
    emotion: Emotion
    text: Emotion | None = None
    audio: Emotion | None = None
    mismatch: float = 0.0
    mismatched: bool = False

    @property
    def label(self) -> str:
        return self.emotion.label

    @property
    def confidence(self) -> float:
        return self.emotion.confidence

    @property
    def start_ms(self) -> int:
        return self.cue.start_ms

    @property
    def end_ms(self) -> int:
        return self.cue.end_ms


@dataclass(frozen=True, slots=True)
class Track:
    """The result of tagging one media file: the only thing exporters see.

    Attributes:
        media: the probed media.
        cues: tagged cues sorted by start time.
        model: the name of the model that scored them.
        source: where the cues came from (``sidecar:…``, ``file:…``, ``embedded:…``, ``asr:…``).
        labels: the label order of every :class:`Emotion` (always :data:`LABELS`).
        warnings: notes gathered on the way (skipped cues, encoding guesses), for the CLI to show.
    """

    media: Media
    cues: tuple[TaggedCue, ...]
    model: str
    source: str
    labels: tuple[str, ...] = LABELS
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[TaggedCue]:
        return iter(self.cues)

    def __len__(self) -> int:
        return len(self.cues)
