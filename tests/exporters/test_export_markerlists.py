"""Avid, Audacity, Reaper, Audition marker lists and YouTube chapters, read with Python's csv module and
checked field by field; timecodes parsed with OpenTimelineIO's ``from_timecode``."""

from __future__ import annotations

import csv
import io
import math
import re
from fractions import Fraction

import opentimelineio as otio
import pytest
from exporter_tracks import CASES, make

from emotag.errors import ExportError
from emotag.exporters import ExportOptions, render
from emotag.timeline import Cue, Emotion, Media, TaggedCue, Track


def _clock_ms(value: str) -> int:
    """Parse ``m:ss.fff`` / ``h:mm:ss.fff`` independently of emotag."""
    parts = value.split(":")
    seconds = Fraction(parts[-1])
    minutes = int(parts[-2])
    hours = int(parts[-3]) if len(parts) == 3 else 0
    return int((hours * 3600 + minutes * 60 + seconds) * 1000)


@pytest.mark.parametrize("case", CASES)
def test_avid_marker_list(case: str) -> None:
    track = make(case)
    options = ExportOptions(fps=Fraction(25)) if case == "audio" else ExportOptions()
    text = render(track, "avid", options)
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    regions = options.regions(track)
    assert len(rows) == len(regions)
    fps = options.fps or track.media.fps
    assert fps is not None
    drop = case == "df2997"
    start = round(otio.opentime.from_timecode("01:00:00;00" if drop else "01:00:00:00", float(fps)).value)
    for row, region in zip(rows, regions, strict=True):
        assert len(row) == 6
        user, tc, trk, color, comment, duration = row
        first = math.floor(Fraction(region.start_ms) * fps / 1000)
        end = max(first + 1, math.ceil(Fraction(region.end_ms) * fps / 1000))
        assert user == "emotag" and trk == "V1"
        assert round(otio.opentime.from_timecode(tc, float(fps)).value) == start + first
        assert (";" in tc) == drop
        assert color in {"red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"}
        assert color == ExportOptions().colors[region.label].avid
        assert comment.startswith(region.name) and "\t" not in comment
        assert int(duration) == end - first


@pytest.mark.parametrize("case", CASES)
def test_audacity_labels(case: str) -> None:
    track = make(case)
    rows = list(csv.reader(io.StringIO(render(track, "audacity")), delimiter="\t"))
    regions = ExportOptions().regions(track)
    assert len(rows) == len(regions)
    for (start, end, label), region in zip(rows, regions, strict=True):
        assert re.fullmatch(r"\d+\.\d{6}", start) and re.fullmatch(r"\d+\.\d{6}", end)
        assert Fraction(start) * 1000 == region.start_ms and Fraction(end) * 1000 == region.end_ms
        assert label.startswith(region.name)
    assert rows[3][0] == rows[3][1]  # the zero-length cue is a point label


@pytest.mark.parametrize("case", CASES)
def test_reaper_regions(case: str) -> None:
    track = make(case)
    reader = csv.DictReader(io.StringIO(render(track, "reaper")))
    assert reader.fieldnames == ["#", "Name", "Start", "End", "Length", "Color"]
    rows = list(reader)
    regions = ExportOptions().regions(track)
    assert len(rows) == len(regions)
    for row, region in zip(rows, regions, strict=True):
        assert _clock_ms(row["Start"]) == region.start_ms
        if region.duration_ms:
            assert row["#"].startswith("R")
            assert _clock_ms(row["End"]) == region.end_ms
            assert _clock_ms(row["Length"]) == region.duration_ms
        else:
            assert row["#"].startswith("M") and row["End"] == row["Length"] == ""
        assert re.fullmatch(r"[0-9A-F]{6}", row["Color"])
        assert row["Name"].startswith(region.name)
    assert [r["#"] for r in rows] == ["R1", "R2", "R3", "M1", "R4", "R5", "R6"]


@pytest.mark.parametrize("case", CASES)
def test_audition_markers(case: str) -> None:
    track = make(case)
    text = render(track, "audition")
    assert text.splitlines()[0] == "Name\tStart\tDuration\tTime Format\tType\tDescription"
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    regions = ExportOptions().regions(track)
    assert len(rows) == len(regions)
    for row, region in zip(rows, regions, strict=True):
        assert row["Name"] == region.name
        assert _clock_ms(row["Start"]) == region.start_ms
        assert _clock_ms(row["Duration"]) == region.duration_ms
        assert row["Time Format"] == "decimal" and row["Type"] == "Cue"
        assert row["Description"] == " ".join(region.text.split())
    if case == "df2997":
        assert rows[-1]["Start"] == "1:00:25.000"  # h:mm:ss.fff past one hour
        assert rows[0]["Start"] == "0:59.900"


def _long_track(moods: list[tuple[str, int]], gap_ms: int = 0) -> Track:
    """Consecutive cues of given (label, seconds) lengths."""
    cues, t = [], 0
    for i, (label, seconds) in enumerate(moods, start=1):
        cues.append(
            TaggedCue(
                Cue(i, t, t + seconds * 1000, f"line {i} {label}"),
                Emotion.from_mapping({label: 0.9, "neutral": 0.1}),
            )
        )
        t += seconds * 1000 + gap_ms
    return Track(Media("/m/pod.mp3", t), tuple(cues), "m", "s")


def _check_youtube_rules(text: str, duration_s: int) -> list[int]:
    lines = text.splitlines()
    stamps = []
    for line in lines:
        m = re.fullmatch(r"(?:(\d+):)?(\d{1,2}):(\d{2}) (.+)", line)
        assert m, line
        h, mi, s = int(m.group(1) or 0), int(m.group(2)), int(m.group(3))
        stamps.append(h * 3600 + mi * 60 + s)
    assert stamps[0] == 0 and lines[0].startswith("0:00 ")
    assert len(stamps) >= 3
    assert all(b - a >= 10 for a, b in zip(stamps, stamps[1:], strict=False))
    assert duration_s - stamps[-1] >= 10
    return stamps


def test_chapters_follow_youtube_rules() -> None:
    track = _long_track(
        [
            ("joy", 30),
            ("joy", 20),
            ("sadness", 5),
            ("sadness", 40),
            ("anger", 3),
            ("surprise", 60),
            ("fear", 4),
            ("neutral", 30),
        ]
    )
    text = render(track, "chapters")
    stamps = _check_youtube_rules(text, track.media.duration_ms // 1000)
    titles = [line.split(" ", 1)[1] for line in text.splitlines()]
    assert titles[0].startswith("Joy") and titles[1].startswith("Sadness")
    assert stamps[:2] == [0, 50]
    # short moods (anger 3 s, fear 4 s) were folded into neighbours
    assert not any(t.startswith(("Anger", "Fear")) for t in titles)


def test_chapters_df_track_past_one_hour() -> None:
    text = render(make("df2997"), "chapters")
    _check_youtube_rules(text, 3640)
    assert text.splitlines()[-1].startswith("1:00:25 ")


def test_chapters_impossible_is_a_clear_error() -> None:
    with pytest.raises(ExportError, match="YouTube needs 3"):
        render(make("p25"), "chapters")  # 40 s of media
    with pytest.raises(ExportError, match="no cues left"):
        render(make("p25"), "chapters", ExportOptions(min_confidence=0.99))
    one_mood = _long_track([("joy", 30), ("joy", 30), ("joy", 30)])
    with pytest.raises(ExportError, match=r"only 1 chapter"):
        render(one_mood, "chapters")
