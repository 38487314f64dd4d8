"""YouTube chapters (``chapters``): lines ``M:SS Title`` for a video description.

YouTube's rules (YouTube Help, "Video chapters"): the first timestamp is ``0:00``, timestamps ascend,
there are at least three, and each chapter is at least 10 seconds long; otherwise YouTube ignores them all.
This exporter builds chapters that satisfy the rules or raises :class:`~emotag.errors.ExportError`:

1. Regions are the selected cues merged by emotion; when ``--merge-gap`` is not given, *all* consecutive
   same-emotion cues merge (a chapter is a stretch of one mood, gaps included).
2. Each region starts a chapter at its start, floored to whole seconds (chapters are listed in seconds);
   the first chapter is pulled back to 0:00; the last runs to the end of the media (or of the last cue).
3. The shortest chapter under 10 s is folded into its shorter neighbour (the earlier one on a tie),
   and neighbours left with the same dominant emotion join; repeated until every chapter lasts 10 s.
4. Fewer than three chapters left (e.g. media under 30 s, or one mood throughout): ExportError naming
   what to change.

Title: the dominant emotion (most seconds) of the chapter, capitalised, then the first words of its first
cue in quotes (``Joy - "Hello, world!"``), at most 100 characters (YouTube's title limit for a chapter
line is not documented; 100 keeps descriptions tidy). Timestamps are ``M:SS`` below an hour and
``H:MM:SS`` from an hour on; YouTube accepts both in one list.
"""

from __future__ import annotations

from dataclasses import dataclass

from emotag.errors import ExportError
from emotag.exporters import ExportOptions
from emotag.exporters._common import one_line
from emotag.selection import Region, merge_regions
from emotag.timeline import Track

__all__ = ["EXPORTER", "MIN_CHAPTER_S", "MIN_CHAPTERS", "ChaptersExporter", "stamp"]

MIN_CHAPTER_S = 10
MIN_CHAPTERS = 3
_TITLE_MAX = 100


@dataclass(slots=True)
class _Chapter:
    start_s: int
    end_s: int
    regions: list[Region]

    @property
    def length(self) -> int:
        return self.end_s - self.start_s

    def dominant(self) -> str:
        weight: dict[str, int] = {}
        for r in self.regions:
            weight[r.label] = weight.get(r.label, 0) + max(1, r.duration_ms)
        return max(weight, key=lambda label: (weight[label], -list(weight).index(label)))


def stamp(seconds: int) -> str:
    """``M:SS`` below an hour, ``H:MM:SS`` from an hour on."""
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _title(ch: _Chapter) -> str:
    label = ch.dominant()
    first = next((r for r in ch.regions if r.label == label), ch.regions[0])
    text = one_line(first.cues[0].cue.plain) if first.cues else ""
    title = label.capitalize()
    if text:
        words = text if len(text) <= 60 else text[:57].rsplit(" ", 1)[0] + "..."
        title += f' - "{words}"'
    return title[:_TITLE_MAX]


def _join_same(chapters: list[_Chapter]) -> list[_Chapter]:
    out: list[_Chapter] = []
    for ch in chapters:
        if out and out[-1].dominant() == ch.dominant():
            out[-1].end_s = ch.end_s
            out[-1].regions.extend(ch.regions)
        else:
            out.append(ch)
    return out


class ChaptersExporter:
    """YouTube chapter list."""

    name = "chapters"
    suffix = ".txt"
    default_filename_suffix = ".emotag.chapters.txt"
    description = "YouTube chapters by mood (first at 0:00, >= 3, each >= 10 s), for a video description"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """The chapter lines, or ExportError when the rules cannot be met."""
        selected = options.selected(track.cues)
        gap = options.merge_gap_ms if options.merge_gap_ms is not None else 10**12
        regions = merge_regions(selected, gap)
        end_s = max([track.media.duration_ms // 1000] + [r.end_ms // 1000 for r in regions])
        if not regions:
            raise ExportError(
                f"{track.media.path}: no cues left for chapters; relax --min-confidence/--emotions"
            )
        chapters: list[_Chapter] = []
        for r in regions:
            start = r.start_ms // 1000
            if chapters and start <= chapters[-1].start_s:
                chapters[-1].regions.append(r)
                continue
            chapters.append(_Chapter(start, end_s, [r]))
        chapters[0].start_s = 0
        for prev, nxt in zip(chapters, chapters[1:], strict=False):
            prev.end_s = nxt.start_s
        chapters = _join_same(chapters)
        while len(chapters) > 1:
            short = min(range(len(chapters)), key=lambda i: (chapters[i].length, i))
            if chapters[short].length >= MIN_CHAPTER_S:
                break
            if short == 0:
                into = 1
            elif short == len(chapters) - 1:
                into = short - 1
            else:  # fold into the shorter neighbour (the earlier one on a tie)
                before, after = chapters[short - 1].length, chapters[short + 1].length
                into = short - 1 if before <= after else short + 1
            a, b = sorted((short, into))
            regions = chapters[a].regions + chapters[b].regions
            merged = _Chapter(chapters[a].start_s, chapters[b].end_s, regions)
            chapters[a : b + 1] = [merged]
            chapters = _join_same(chapters)
        if len(chapters) < MIN_CHAPTERS or any(ch.length < MIN_CHAPTER_S for ch in chapters):
            raise ExportError(
                f"{track.media.path}: only {len(chapters)} chapter(s) of at least {MIN_CHAPTER_S} s can be "
                f"made ({end_s} s of media), YouTube needs {MIN_CHAPTERS}; lower --min-confidence, drop "
                "--emotions/--skip-neutral or pass a smaller --merge-gap"
            )
        return "".join(f"{stamp(ch.start_s)} {_title(ch)}\n" for ch in chapters)


EXPORTER = ChaptersExporter()
