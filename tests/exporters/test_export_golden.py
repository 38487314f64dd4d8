"""Every format on every fixed Track, byte for byte against tests/golden/ (EMOTAG_UPDATE_GOLDEN=1 rewrites).

Cases (see exporter_tracks.py): 25 fps; 29.97 drop-frame across 00:01:00;02 / 00:10:00;00 and past one hour;
23.976; media timecode 01:00:00:00; audio-only (frame-based formats get ``--fps 25`` there). Plus option
variants: merged regions without neutral, the colour and none tag styles, a 01:00:00:00 timeline start.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from exporter_tracks import CASES, make
from golden_util import check_golden

from emotag.exporters import BUILTINS, ExportOptions, get_exporter, render

VARIANTS: dict[str, ExportOptions] = {
    "merged": ExportOptions(merge_gap_ms=2000, skip_neutral=True, min_confidence=0.5),
    "color": ExportOptions(tag_style="color"),
    "none": ExportOptions(tag_style="none"),
    "start1h": ExportOptions(start_tc="01:00:00:00"),
}

_VERSION_RE = re.compile(r'("emotag": )"[^"]*"')


def _normalise(fmt: str, text: str) -> str:
    # The json track records the emotag version; keep golden files stable across releases.
    return _VERSION_RE.sub(r'\1"<version>"', text) if fmt == "json" else text


def _suffix(fmt: str) -> str:
    return get_exporter(fmt).suffix


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fmt", list(BUILTINS))
def test_golden(fmt: str, case: str) -> None:
    if fmt == "chapters" and case != "df2997":
        pytest.skip("40 s of media cannot hold 3 chapters of 10 s: covered by test_export_markerlists")
    track = make(case)
    options = ExportOptions()
    if case == "audio" and get_exporter(fmt).frame_based:
        options = ExportOptions(fps=Fraction(25))
    check_golden(fmt, case, _suffix(fmt), _normalise(fmt, render(track, fmt, options)))


@pytest.mark.parametrize(
    ("fmt", "variant"),
    [
        ("srt", "color"),
        ("srt", "none"),
        ("vtt", "color"),
        ("vtt", "none"),
        ("ass", "none"),
        ("edl", "merged"),
        ("selects-edl", "merged"),
        ("resolve-edl", "merged"),
        ("fcpxml", "merged"),
        ("fcp7xml", "start1h"),
        ("edl", "start1h"),
        ("fcpxml", "start1h"),
        ("avid", "merged"),
        ("reaper", "merged"),
        ("audition", "merged"),
        ("otio", "merged"),
        ("csv", "merged"),
    ],
)
def test_golden_variants(fmt: str, variant: str) -> None:
    check_golden(fmt, f"p25_{variant}", _suffix(fmt), render(make("p25"), fmt, VARIANTS[variant]))
