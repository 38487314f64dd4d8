"""Small helpers shared by several exporters: marker names, ASCII-safe text, frame spans of regions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from emotag.exporters import Timing
from emotag.selection import Region
from emotag.timecode import cue_frames, ms_to_frame_ceil
from emotag.timeline import TaggedCue, Track

__all__ = ["ascii_text", "one_line", "region_frames", "tag_name"]

# Characters NFKD does not decompose into ASCII but that have an obvious ASCII spelling.
_ASCII_MAP = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00df": "ss",
        "\u00e6": "ae",
        "\u00c6": "AE",
        "\u00f8": "o",
        "\u00d8": "O",
        "\u0153": "oe",
        "\u0152": "OE",
        "\u0142": "l",
        "\u0141": "L",
        "\u00f0": "d",
        "\u00d0": "D",
        "\u00fe": "th",
        "\u00de": "Th",
        "\u00a0": " ",
    }
)
_SPACE_RE = re.compile(r"\s+")


def tag_name(tc: TaggedCue) -> str:
    """The tag every format writes for one cue: ``"joy 0.82"`` (``"joy 0.82 mismatch"`` when flagged)."""
    return f"{tc.label} {tc.confidence:.2f}" + (" mismatch" if tc.mismatched else "")


def one_line(text: str) -> str:
    """Collapse newlines and runs of whitespace into single spaces."""
    return _SPACE_RE.sub(" ", text).strip()


def ascii_text(text: str) -> str:
    """Transliterate to printable ASCII (``café`` -> ``cafe``); characters without a spelling are dropped.

    EDLs (CMX3600) are 7-bit ASCII in practice: Resolve and Avid mangle or refuse other bytes.
    """
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_MAP))
    kept = "".join(ch for ch in decomposed if ch.isascii() and (ch.isprintable() or ch in " \t\n"))
    return one_line(kept)


def region_frames(region: Region, timing: Timing) -> tuple[int, int]:
    """``(first, end_exclusive)`` frames of a region from the media start (floor, ceil, >= 1 frame)."""
    return cue_frames(region.start_ms, region.end_ms, timing.fps)


def clip_frames(track: Track, regions: Sequence[Region], timing: Timing) -> int:
    """Frames a clip of the media needs: its duration (ceil), stretched to hold every region, at least 1."""
    return max(
        1,
        ms_to_frame_ceil(track.media.duration_ms, timing.fps),
        *(region_frames(r, timing)[1] for r in regions),
    )
