"""emotag.timecode against an independent implementation (OpenTimelineIO's opentime) and SMPTE facts."""

from __future__ import annotations

import math
from fractions import Fraction

import opentimelineio as otio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emotag.timecode import (
    cue_frames,
    frame_to_ms,
    frames_to_tc,
    is_drop_frame_rate,
    ms_to_frame_ceil,
    ms_to_frame_floor,
    ms_to_srt,
    ms_to_vtt,
    nominal_fps,
    rate_from_string,
    srt_to_ms,
    tc_is_drop,
    tc_to_frames,
)

# (rate, drop) pairs the brief asks for
RATES = [
    (Fraction(24000, 1001), False),
    (Fraction(24), False),
    (Fraction(25), False),
    (Fraction(30000, 1001), True),
    (Fraction(30000, 1001), False),
    (Fraction(30), False),
    (Fraction(50), False),
    (Fraction(60000, 1001), True),
    (Fraction(60000, 1001), False),
    (Fraction(60), False),
]
DAY = 24 * 3600


def _day_frames(fps: Fraction, drop: bool) -> int:
    """Frames in 24 hours of timecode (where SMPTE timecode wraps)."""
    if drop:
        return 24 * (107892 if fps == Fraction(30000, 1001) else 215784)
    return DAY * nominal_fps(fps)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29.97", Fraction(30000, 1001)),
        ("30000/1001", Fraction(30000, 1001)),
        ("30000:1001", Fraction(30000, 1001)),
        ("23.976", Fraction(24000, 1001)),
        ("23.98", Fraction(24000, 1001)),
        ("59.94", Fraction(60000, 1001)),
        ("25", Fraction(25)),
        (" 50fps ", Fraction(50)),
        ("12.5", Fraction(25, 2)),
        (29.97, Fraction(30000, 1001)),
        (24, Fraction(24)),
    ],
)
def test_rate_from_string(text: str, expected: Fraction) -> None:
    assert rate_from_string(text) == expected


@pytest.mark.parametrize("bad", ["", "abc", "0", "-25", "25/0", "1/0", "5000"])
def test_rate_from_string_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="frame rate"):
        rate_from_string(bad)


def test_nominal_and_drop_rates() -> None:
    assert nominal_fps(Fraction(24000, 1001)) == 24
    assert nominal_fps(Fraction(30000, 1001)) == 30
    assert nominal_fps(Fraction(60000, 1001)) == 60
    assert nominal_fps(Fraction(25)) == 25
    with pytest.raises(ValueError, match="no SMPTE timecode"):
        nominal_fps(Fraction(25, 2))
    assert is_drop_frame_rate(Fraction(30000, 1001)) and is_drop_frame_rate(Fraction(60000, 1001))
    assert not is_drop_frame_rate(Fraction(24000, 1001)) and not is_drop_frame_rate(Fraction(30))


@pytest.mark.parametrize(
    ("frames", "tc"),
    [
        (0, "00:00:00;00"),
        (1799, "00:00:59;29"),
        (1800, "00:01:00;02"),  # frames 0 and 1 of minute 1 are skipped
        (17981, "00:09:59;29"),
        (17982, "00:10:00;00"),  # minute 10 is not skipped
        (17984, "00:10:00;02"),
        (107892, "01:00:00;00"),  # one hour of 29.97 DF is exactly 107892 frames
    ],
)
def test_drop_frame_2997_boundaries(frames: int, tc: str) -> None:
    fps = Fraction(30000, 1001)
    assert frames_to_tc(frames, fps, drop=True) == tc
    assert tc_to_frames(tc, fps) == frames


def test_drop_frame_5994_skips_four() -> None:
    fps = Fraction(60000, 1001)
    assert frames_to_tc(3599, fps, True) == "00:00:59;59"
    assert frames_to_tc(3600, fps, True) == "00:01:00;04"
    assert frames_to_tc(215784, fps, True) == "01:00:00;00"


def test_non_drop_2997_drifts_from_clock() -> None:
    fps = Fraction(30000, 1001)
    # 29.97 NDF counts 30 per "second": one wall-clock hour reads 00:59:56;12 worth of frames as NDF
    frames = ms_to_frame_floor(3_600_000, fps)
    assert frames == 107892
    assert frames_to_tc(frames, fps, drop=False) == "00:59:56:12"


def test_23976_counts_at_24_non_drop() -> None:
    fps = Fraction(24000, 1001)
    assert frames_to_tc(24, fps) == "00:00:01:00"
    with pytest.raises(ValueError, match="drop-frame"):
        frames_to_tc(24, fps, drop=True)


@pytest.mark.parametrize(
    "bad",
    ["00:01:00;00", "00:01:00;01", "10:00:00:25", "00:60:00:00", "1:2:3", "aa:bb:cc:dd"],
)
def test_tc_to_frames_rejects_invalid(bad: str) -> None:
    fps = Fraction(30000, 1001) if ";" in bad else Fraction(25)
    with pytest.raises(ValueError):
        tc_to_frames(bad, fps)


def test_drop_separator_rejected_at_non_drop_rate() -> None:
    with pytest.raises(ValueError, match="29.97 or 59.94"):
        tc_to_frames("00:00:10;00", Fraction(25))
    assert tc_is_drop("01:00:00;00") and not tc_is_drop("01:00:00:00")


def test_frames_to_tc_rejects_negative_and_odd_rates() -> None:
    with pytest.raises(ValueError):
        frames_to_tc(-1, Fraction(25))
    with pytest.raises(ValueError):
        frames_to_tc(1, Fraction(25, 2))


@pytest.mark.parametrize(("fps", "drop"), RATES)
@settings(max_examples=60, deadline=None)
@given(frames=st.integers(min_value=0, max_value=DAY * 60))
def test_frames_tc_round_trip_matches_otio(fps: Fraction, drop: bool, frames: int) -> None:
    frames = frames % _day_frames(fps, drop)  # timecode wraps at 24 h
    tc = frames_to_tc(frames, fps, drop)
    assert tc_to_frames(tc, fps, drop) == frames
    # independent check: OpenTimelineIO's own timecode implementation (its 24 h wrap differs for NTSC
    # non-drop, which counts a "day" of wall-clock time, so compare below 23 h)
    if frames < 23 * 3600 * fps:
        rt = otio.opentime.RationalTime(frames, float(fps))
        assert otio.opentime.to_timecode(rt, float(fps), drop) == tc
    sep = ";" if drop else ":"
    assert tc[8] == sep


@pytest.mark.parametrize(("fps", "drop"), RATES)
@settings(max_examples=60, deadline=None)
@given(ms=st.integers(min_value=0, max_value=20 * 3600 * 1000))
def test_ms_frames_within_one_frame(fps: Fraction, drop: bool, ms: int) -> None:
    f = ms_to_frame_floor(ms, fps)
    c = ms_to_frame_ceil(ms, fps)
    assert frame_to_ms(f, fps) <= ms < frame_to_ms(f + 1, fps)  # the frame that contains ms
    assert frame_to_ms(c - 1, fps) < ms <= frame_to_ms(c, fps)
    assert c - f in (0, 1)
    # through timecode and back lands on the same frame, hence within one frame of ms
    wrapped = f % _day_frames(fps, drop)
    assert tc_to_frames(frames_to_tc(wrapped, fps, drop), fps, drop) == wrapped
    assert abs(frame_to_ms(f, fps) - ms) < 1000 / fps


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=10**8),
    length=st.integers(min_value=0, max_value=10**6),
    fps=st.sampled_from([fps for fps, _ in RATES]),
)
def test_cue_frames_never_leave_the_cue(start: int, length: int, fps: Fraction) -> None:
    end = start + length
    first, stop = cue_frames(start, end, fps)
    assert stop - first >= 1
    # the first frame contains the cue start; the marker ends on the boundary at or after the cue end
    assert frame_to_ms(first, fps) <= start < frame_to_ms(first + 1, fps)
    if length > 0:
        assert frame_to_ms(stop - 1, fps) < end <= frame_to_ms(stop, fps)
    assert math.floor(start * fps / 1000) == first


@settings(max_examples=200, deadline=None)
@given(ms=st.integers(min_value=0, max_value=99 * 3600 * 1000))
def test_srt_time_round_trip(ms: int) -> None:
    s = ms_to_srt(ms)
    assert srt_to_ms(s) == ms
    assert srt_to_ms(ms_to_vtt(ms)) == ms
    assert s[-4] == "," and ms_to_vtt(ms)[-4] == "."


def test_srt_time_rejects() -> None:
    with pytest.raises(ValueError):
        srt_to_ms("00:61:00,000")
    with pytest.raises(ValueError):
        ms_to_srt(-1)


def test_wrap_at_24_hours() -> None:
    fps = Fraction(30000, 1001)
    assert frames_to_tc(_day_frames(fps, True), fps, True) == "00:00:00;00"
    assert frames_to_tc(_day_frames(fps, True) - 1, fps, True) == "23:59:59;29"
