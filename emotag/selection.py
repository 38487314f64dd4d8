"""Which tagged cues become markers, and how neighbouring cues merge into regions.

Why a module of its own: every marker exporter (EDLs, FCPXML, marker lists, chapters) answers the same two
questions the same way, so an editor gets identical markers whatever host they import into:

1. **Filter** (:func:`select_cues`): drop cues below a confidence, outside a set of emotions, neutral ones,
   or (``mismatch_only``) all but the voice/words mismatches.
2. **Merge** (:func:`merge_regions`): consecutive surviving cues with the same label whose gap is at most
   ``merge_gap_ms`` become one region (a cut of a sad stretch is one marker, not twelve). The region's
   confidence is the duration-weighted mean of its cues' confidences (weights are durations in ms, with
   1 ms for zero-length cues so a region of zero-length cues is a plain mean); its text is the cues' plain
   texts joined with a space. ``merge_gap_ms=None`` keeps one region per cue. Overlapping cues (negative
   gap) merge whenever merging is on.

Subtitle exporters do not drop cues (a tagged SRT is still the full subtitle file); they only leave the
unselected cues untagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from emotag.timeline import LABELS, TaggedCue, speaker_key

__all__ = ["Region", "merge_regions", "select_cues"]


@dataclass(frozen=True, slots=True)
class Region:
    """A stretch of one emotion: one cue, or several merged.

    Attributes:
        start_ms: start of the first cue.
        end_ms: the latest end of its cues.
        label: the shared emotion label.
        confidence: duration-weighted mean confidence.
        text: plain texts of the cues joined with a space.
        cues: the tagged cues it covers, in order.
    """

    start_ms: int
    end_ms: int
    label: str
    confidence: float
    text: str
    cues: tuple[TaggedCue, ...]

    @property
    def duration_ms(self) -> int:
        """Length in milliseconds (never negative)."""
        return max(0, self.end_ms - self.start_ms)

    @property
    def index(self) -> int:
        """The cue index of the first cue."""
        return self.cues[0].cue.index

    @property
    def mismatched(self) -> bool:
        """Whether any cue in it is flagged as a voice/words mismatch."""
        return any(c.mismatched for c in self.cues)

    @property
    def mismatch(self) -> float:
        """The largest mismatch score of its cues."""
        return max(c.mismatch for c in self.cues)

    @property
    def speaker(self) -> str | None:
        """The speaker when all cues share one (the first cue's spelling), else ``None``."""
        if len({speaker_key(c.cue.speaker) for c in self.cues}) != 1:
            return None
        return self.cues[0].cue.speaker

    @property
    def name(self) -> str:
        """The marker name every exporter uses: ``"joy 0.82"`` (``"joy 0.82 mismatch"`` when flagged)."""
        return f"{self.label} {self.confidence:.2f}" + (" mismatch" if self.mismatched else "")

    def probs(self) -> dict[str, float]:
        """Duration-weighted mean probabilities over :data:`~emotag.timeline.LABELS`."""
        weights = [_weight(c) for c in self.cues]
        total = sum(weights)
        return {
            label: sum(w * c.emotion.probs[i] for w, c in zip(weights, self.cues, strict=True)) / total
            for i, label in enumerate(LABELS)
        }


def _weight(tc: TaggedCue) -> int:
    return max(1, tc.cue.duration_ms)


def select_cues(
    cues: Iterable[TaggedCue],
    *,
    min_confidence: float = 0.0,
    emotions: frozenset[str] | None = None,
    skip_neutral: bool = False,
    mismatch_only: bool = False,
) -> list[TaggedCue]:
    """Keep the cues a marker export should show.

    Args:
        cues: tagged cues in time order.
        min_confidence: drop cues whose top probability is below this.
        emotions: keep only these labels (``None`` keeps all).
        skip_neutral: drop cues labelled ``neutral``.
        mismatch_only: keep only cues flagged as voice/words mismatches.

    Returns:
        The surviving cues, order kept.
    """
    out = []
    for tc in cues:
        if tc.confidence < min_confidence:
            continue
        if emotions is not None and tc.label not in emotions:
            continue
        if skip_neutral and tc.label == "neutral":
            continue
        if mismatch_only and not tc.mismatched:
            continue
        out.append(tc)
    return out


def _region(group: Sequence[TaggedCue]) -> Region:
    weights = [_weight(c) for c in group]
    confidence = sum(w * c.confidence for w, c in zip(weights, group, strict=True)) / sum(weights)
    return Region(
        start_ms=group[0].cue.start_ms,
        end_ms=max(max(c.cue.end_ms, c.cue.start_ms) for c in group),
        label=group[0].label,
        confidence=confidence,
        text=" ".join(p for p in (c.cue.plain for c in group) if p),
        cues=tuple(group),
    )


def merge_regions(cues: Sequence[TaggedCue], merge_gap_ms: int | None = None) -> list[Region]:
    """Merge consecutive same-label cues separated by at most ``merge_gap_ms`` into regions.

    Args:
        cues: (already selected) tagged cues in time order.
        merge_gap_ms: largest gap in ms between one cue's end and the next one's start that still merges;
            ``None`` means no merging (one region per cue).

    Returns:
        Regions in time order.
    """
    if not cues:
        return []
    groups: list[list[TaggedCue]] = [[cues[0]]]
    for tc in cues[1:]:
        group = groups[-1]
        end = max(max(c.cue.end_ms, c.cue.start_ms) for c in group)
        if merge_gap_ms is not None and tc.label == group[0].label and tc.cue.start_ms - end <= merge_gap_ms:
            group.append(tc)
        else:
            groups.append([tc])
    return [_region(g) for g in groups]
