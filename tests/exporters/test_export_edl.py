"""EDLs read back by OpenTimelineIO's cmx_3600 adapter (an independent reader), times compared in frames.

Expected frames are computed here from first principles (floor(start * fps), ceil(end * fps), >= 1 frame)
and timecodes are parsed with OTIO's ``from_timecode``, not with emotag.timecode.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import opentimelineio as otio
import pytest
from exporter_tracks import CASES, make

from emotag.exporters import ExportOptions, render
from emotag.timeline import Track

LOC_RE = re.compile(r"^\* LOC: (\d\d:\d\d:\d\d[:;]\d\d) (\w+)\s+(.*)$")


def _fps(track: Track, options: ExportOptions) -> Fraction:
    fps = options.fps or track.media.fps
    assert fps is not None
    return fps


def _expected(track: Track, options: ExportOptions) -> list[tuple[int, int, str, str]]:
    """(first frame, end frame, label, name) per selected cue (no merging), from first principles."""
    fps = _fps(track, options)
    out = []
    for tc in options.selected(track.cues):
        first = math.floor(Fraction(tc.start_ms) * fps / 1000)
        end = max(first + 1, math.ceil(Fraction(tc.end_ms) * fps / 1000))
        name = f"{tc.label} {tc.confidence:.2f}" + (" mismatch" if tc.mismatched else "")
        out.append((first, end, tc.label, name))
    return out


def _from_tc(tc: str, fps: Fraction) -> int:
    return round(otio.opentime.from_timecode(tc, float(fps)).value)


def _options(case: str) -> ExportOptions:
    return ExportOptions(fps=Fraction(25)) if case == "audio" else ExportOptions()


@pytest.mark.parametrize("case", CASES)
def test_edl_read_by_otio(case: str) -> None:
    track, options = make(case), _options(case)
    text = render(track, "edl", options)
    fps = _fps(track, options)
    drop = case == "df2997"
    assert ("FCM: DROP FRAME" if drop else "FCM: NON-DROP FRAME") in text.splitlines()[1]
    timeline = otio.adapters.read_from_string(text, "cmx_3600", rate=float(fps))
    clips = list(timeline.find_clips())
    expected = _expected(track, options)
    assert len(clips) == len(expected)
    src0 = _from_tc(track.media.start_timecode, fps) if track.media.start_timecode else 0
    rec_first = clips[0].range_in_parent().start_time.to_frames()
    for clip, (first, end, label, name) in zip(clips, expected, strict=True):
        assert clip.name == "talk show.mp4" or clip.name.endswith((".mov", ".mkv", ".mxf", ".mp3"))
        assert clip.source_range.start_time.to_frames() == src0 + first
        assert clip.source_range.duration.to_frames() == end - first
        # record side: gaps preserved, so offsets from the first event equal source offsets
        assert clip.range_in_parent().start_time.to_frames() - rec_first == first - expected[0][0]
        if not drop:  # OTIO's LOC pattern has no ';' form: drop-frame locators are checked below
            assert [m.name for m in clip.markers] == [name]
            assert clip.markers[0].color == ExportOptions().colors[label].avid.upper()
            assert clip.markers[0].marked_range.start_time.to_frames() == src0 + first
    # every LOC line (drop-frame included) parsed independently
    locs = [LOC_RE.match(line) for line in text.splitlines() if line.startswith("* LOC:")]
    assert all(locs) and len(locs) == len(expected)
    for m, (first, _end, _label, name) in zip(locs, expected, strict=True):
        assert m is not None
        assert _from_tc(m.group(1), fps) == src0 + first
        assert (";" in m.group(1)) == drop
        assert m.group(3) == name


def test_edl_df_boundaries_exact() -> None:
    text = render(make("df2997"), "edl")
    events = [line.split() for line in text.splitlines() if re.match(r"^\d{3}  ", line)]
    # cue 1 59.900-62.400 s at 29.97: frames 1795..1871 -> across the minute boundary 00:01:00;02
    assert events[0][4:6] == ["00:00:59;25", "00:01:02;13"]
    # cue 5 610.600-614.100 s: frames 18299..18404, past 00:10:00;00 (no frames dropped at minute 10)
    assert events[4][4:6] == ["00:10:10;17", "00:10:14;03"]
    assert events[6][4] == "01:00:24;29"


def test_edl_ascii_only_and_comments() -> None:
    text = render(make("p25"), "edl")
    assert text.isascii()
    assert "* TEXT: Ca va? Tres bien -" in text and "* SPEAKER: Zoe" in text
    assert "* EMOTION: joy 0.55 mismatch valence +0.17 arousal +0.64 (words joy, voice anger)" in text


def test_edl_start_tc_offsets_record_only() -> None:
    track = make("p25")
    timeline = otio.adapters.read_from_string(
        render(track, "edl", ExportOptions(start_tc="01:00:00:00")), "cmx_3600", rate=25
    )
    clip = next(iter(timeline.find_clips()))
    assert clip.source_range.start_time.to_frames() == 25  # source keeps the media's time
    text = render(track, "edl", ExportOptions(start_tc="01:00:00:00"))
    assert "00:00:01:00 00:00:03:13 01:00:01:00 01:00:03:13" in text


def test_edl_overlapping_cues_never_overlap_on_record() -> None:
    from emotag.timeline import Cue, Emotion, TaggedCue

    base = make("p25")
    joy = Emotion.from_mapping({"joy": 1})
    anger = Emotion.from_mapping({"anger": 1})
    cues = (
        TaggedCue(Cue(1, 1000, 4000, "a"), joy),
        TaggedCue(Cue(2, 3000, 5000, "b"), anger),
        TaggedCue(Cue(3, 3500, 3900, "c"), anger),
    )
    track = Track(base.media, cues, "m", "s")
    text = render(track, "edl")
    timeline = otio.adapters.read_from_string(text, "cmx_3600", rate=25)  # raises on overlapping records
    ranges = [c.range_in_parent() for c in timeline.find_clips()]
    assert [(r.start_time.to_frames(), r.duration.to_frames()) for r in ranges] == [(0, 75), (75, 25)]
    assert text.count("* LOC:") == 3  # the swallowed cue keeps its locator


@pytest.mark.parametrize("case", ["p25", "df2997", "hour25"])
def test_selects_edl_packed_with_handles(case: str) -> None:
    track = make(case)
    options = ExportOptions(merge_gap_ms=2000, skip_neutral=True, handles_ms=1000)
    text = render(track, "selects-edl", options)
    fps = _fps(track, options)
    timeline = otio.adapters.read_from_string(text, "cmx_3600", rate=float(fps))
    # track "B" = video + audio 1: OTIO builds a video and an audio track with the same cuts
    (video,) = timeline.video_tracks()
    (audio,) = timeline.audio_tracks()
    clips = list(video.find_clips())
    assert [c.source_range for c in audio.find_clips()] == [c.source_range for c in clips]
    regions = options.regions(track)
    assert len(clips) == len(regions) == 5  # the two sadness cues merged, neutral skipped
    src0 = _from_tc(track.media.start_timecode, fps) if track.media.start_timecode else 0
    rec = 0
    handle = math.floor(Fraction(1000) * fps / 1000)
    media_end = math.ceil(Fraction(track.media.duration_ms) * fps / 1000)
    for clip, region in zip(clips, regions, strict=True):
        first = math.floor(Fraction(region.start_ms) * fps / 1000)
        end = math.ceil(Fraction(region.end_ms) * fps / 1000)
        src_in = max(0, first - handle)
        src_out = min(media_end, end + math.ceil(Fraction(1000) * fps / 1000))
        assert clip.source_range.start_time.to_frames() == src0 + src_in
        assert clip.source_range.duration.to_frames() == src_out - src_in
        assert clip.range_in_parent().start_time.to_frames() == rec  # packed back to back
        rec += src_out - src_in
    assert all(line.split()[2] == "B" for line in text.splitlines() if re.match(r"^\d{3}  ", line))


@pytest.mark.parametrize("case", CASES)
def test_resolve_edl_read_by_otio(case: str) -> None:
    track, options = make(case), _options(case)
    text = render(track, "resolve-edl", options)
    fps = _fps(track, options)
    drop = case == "df2997"
    timeline = otio.adapters.read_from_string(text, "cmx_3600", rate=float(fps))
    clips = list(timeline.find_clips())
    expected = _expected(track, options)
    assert len(clips) == len(expected)
    start = _from_tc("01:00:00;00" if drop else "01:00:00:00", fps)  # Resolve's default timeline start
    for clip, (first, end, label, name), tc in zip(
        clips, expected, options.selected(track.cues), strict=True
    ):
        assert clip.source_range.start_time.to_frames() == start + first
        assert clip.source_range.duration.to_frames() == 1
        (line,) = clip.metadata["cmx_3600"]["comments"]
        note, color, mname, dur = re.fullmatch(
            r"(.*) \|C:ResolveColor(\w+) \|M:(.*) \|D:(\d+)", line
        ).groups()
        assert note == " ".join(tc.cue.plain.replace("|", " ").split())
        assert color == ExportOptions().colors[label].resolve
        assert mname == name and int(dur) == end - first
    # the line layout of Resolve's own export: 2 spaces, reel 001, trailing two spaces, note first
    lines = text.splitlines()
    assert lines[3].startswith("001  001      V     C        ") and lines[3].endswith("  ")
    assert lines[4].startswith("Hello, world! |C:ResolveColorYellow |M:joy 0.82 |D:")
    assert "|" not in lines[10].split(" |C:")[0]  # "Still... | it hurts" lost its pipe


def test_resolve_edl_note_free_marker_starts_with_space() -> None:
    from emotag.timeline import Cue, Emotion, TaggedCue

    base = make("p25")
    track = Track(base.media, (TaggedCue(Cue(1, 0, 1000, ""), Emotion.from_mapping({"joy": 1})),), "m", "s")
    assert " |C:ResolveColorYellow |M:joy 1.00 |D:25" in render(track, "resolve-edl").splitlines()


def test_df_media_timecode_with_forced_non_drop() -> None:
    """A DF-labelled media timecode keeps its frame count when the export counts non-drop."""
    import dataclasses

    base = make("df2997")
    track = dataclasses.replace(base, media=dataclasses.replace(base.media, start_timecode="01:00:00;00"))
    fps = 30000 / 1001
    start = round(otio.opentime.from_timecode("01:00:00;00", fps).value)  # 107892 frames
    for options in (ExportOptions(), ExportOptions(drop_frame=False)):
        timeline = otio.adapters.read_from_string(render(track, "edl", options), "cmx_3600", rate=fps)
        clip = next(iter(timeline.find_clips()))
        assert clip.source_range.start_time.to_frames() == start + 1795
    assert "01:00:56:07 01:00:58:23 01:00:56:07" in render(track, "edl", ExportOptions(drop_frame=False))
