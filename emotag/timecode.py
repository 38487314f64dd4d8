"""Milliseconds, frames and SMPTE timecode at exact :class:`~fractions.Fraction` frame rates.

Why this module exists: the core keeps integer milliseconds (see :mod:`emotag.timeline`); frames only exist
in exporters, and every exporter must agree on how a cue becomes frames and how frames become timecode.

* **ms -> frames** is exact rational arithmetic (``ms * fps / 1000`` with ``fps`` a Fraction such as
  ``30000/1001``), never float: floor for a start (the frame that contains the instant), ceil for an end
  (the frame that contains the cue's last instant is included), and at least one frame. A marker therefore
  never moves outside its cue. :func:`cue_frames` is the one place that rule lives.
* **frames <-> SMPTE** goes through the ``timecode`` package (PyPI ``timecode``, 1.4+), which implements
  the drop-frame counting of SMPTE 12M (29.97 DF skips frame numbers 0 and 1 at each minute except every
  tenth; 59.94 DF skips 0-3). We do not hand-roll that arithmetic. Two quirks of the package are
  wrapped here: its frame numbers are 1-based (``frames=1`` is ``00:00:00:00``) and it does not validate
  input (``00:00:00:30`` at 25 fps or the dropped ``00:01:00;00`` are accepted silently), so
  :func:`tc_to_frames` validates before converting. The package also marks 119.88 as drop-frame; emotag
  only allows drop-frame at 29.97 and 59.94 (the rates SMPTE 12M defines it for) and forces non-drop
  elsewhere. The tests cross-check every conversion against OpenTimelineIO's independent
  ``RationalTime.to_timecode``.
* 23.976 (24000/1001) is always non-drop and counted at a nominal 24 frames per second; 29.97 NDF counts
  at 30 and drifts from wall-clock by 3.6 s an hour, which is exactly why DF exists.
* Timecode wraps at 24 hours, as SMPTE timecode does.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = [
    "DROP_FRAME_RATES",
    "cue_frames",
    "frame_to_ms",
    "frames_to_seconds",
    "frames_to_tc",
    "is_drop_frame_rate",
    "ms_to_frame_ceil",
    "ms_to_frame_floor",
    "ms_to_srt",
    "ms_to_vtt",
    "nominal_fps",
    "rate_from_string",
    "rate_to_string",
    "srt_to_ms",
    "tc_is_drop",
    "tc_to_frames",
]

#: Rates that may be counted drop-frame (SMPTE 12M): 29.97 and 59.94.
DROP_FRAME_RATES: frozenset[Fraction] = frozenset({Fraction(30000, 1001), Fraction(60000, 1001)})

#: Decimal spellings people type for NTSC rates, mapped to the exact rate.
_NTSC_ALIASES: dict[str, Fraction] = {
    "23.976": Fraction(24000, 1001),
    "23.98": Fraction(24000, 1001),
    "29.97": Fraction(30000, 1001),
    "47.952": Fraction(48000, 1001),
    "47.95": Fraction(48000, 1001),
    "59.94": Fraction(60000, 1001),
    "119.88": Fraction(120000, 1001),
}

_TC_RE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")
_SRT_RE = re.compile(r"^(\d+):(\d{2}):(\d{2})[,.](\d{3})$")


def rate_from_string(text: str | int | float | Fraction) -> Fraction:
    """Parse a frame rate the way users and files spell it into an exact Fraction.

    Accepts ``"25"``, ``"29.97"``, ``"23.976"``, ``"59.94"``, ``"30000/1001"``, ``"30000:1001"`` (ffprobe
    style) and numbers. Decimal NTSC spellings (23.976, 29.97, ...) map to their exact ``N*1000/1001`` rate;
    any other decimal is taken literally.

    Args:
        text: the rate.

    Returns:
        The rate as a positive Fraction.

    Raises:
        ValueError: when ``text`` is not a positive rate.
    """
    if isinstance(text, Fraction):
        rate = text
    elif isinstance(text, int):
        rate = Fraction(text)
    elif isinstance(text, float):
        rate = _NTSC_ALIASES.get(f"{text:g}", Fraction(str(text)))
    else:
        s = text.strip().lower().removesuffix("fps").strip().replace(":", "/")
        if s in _NTSC_ALIASES:
            rate = _NTSC_ALIASES[s]
        else:
            try:
                rate = Fraction(s)
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"not a frame rate: {text!r} (use e.g. 25, 29.97, 24000/1001)") from None
    if rate <= 0 or rate > 1000:
        raise ValueError(f"not a frame rate: {text!r} (must be between 0 and 1000)")
    return rate


def rate_to_string(fps: Fraction) -> str:
    """The exact rate as ``"30000/1001"`` or ``"25"`` (what :func:`rate_from_string` reads back)."""
    return str(fps)


def is_drop_frame_rate(fps: Fraction) -> bool:
    """Whether drop-frame counting exists for ``fps`` (29.97 and 59.94 only)."""
    return fps in DROP_FRAME_RATES


def nominal_fps(fps: Fraction) -> int:
    """The integer frame count per timecode second: 24 for 23.976, 30 for 29.97, 25 for 25.

    Raises:
        ValueError: for rates that have no SMPTE timecode (neither an integer nor ``N*1000/1001``).
    """
    if fps.denominator == 1:
        return fps.numerator
    nominal = fps * Fraction(1001, 1000)
    if nominal.denominator == 1:
        return nominal.numerator
    raise ValueError(f"no SMPTE timecode for {float(fps):g} fps (integer or NTSC rates only)")


def tc_is_drop(tc: str) -> bool:
    """Whether a timecode string is written drop-frame (``;`` or ``.`` before the frames)."""
    m = _TC_RE.match(tc.strip())
    return bool(m and m.group(4) in ";.")


def ms_to_frame_floor(ms: int, fps: Fraction) -> int:
    """The frame that contains instant ``ms`` (exact: ``floor(ms * fps / 1000)``)."""
    return math.floor(Fraction(ms) * fps / 1000)


def ms_to_frame_ceil(ms: int, fps: Fraction) -> int:
    """The first frame boundary at or after ``ms`` (exact: ``ceil(ms * fps / 1000)``).

    Used as an *exclusive* end: frames ``[floor(start), ceil(end))`` cover the whole cue.
    """
    return math.ceil(Fraction(ms) * fps / 1000)


def cue_frames(start_ms: int, end_ms: int, fps: Fraction) -> tuple[int, int]:
    """Frames covering a cue: ``(first, end_exclusive)``, start floored, end ceiled, at least one frame.

    Args:
        start_ms: cue start in milliseconds.
        end_ms: cue end in milliseconds (may equal ``start_ms``).
        fps: exact frame rate.

    Returns:
        ``(first_frame, end_frame_exclusive)`` with ``end > first``.
    """
    first = ms_to_frame_floor(start_ms, fps)
    end = max(first + 1, ms_to_frame_ceil(max(end_ms, start_ms), fps))
    return first, end


def frame_to_ms(frame: int, fps: Fraction) -> Fraction:
    """Exact start time of ``frame`` in milliseconds (a Fraction; round it where an int is needed)."""
    return Fraction(frame) * 1000 / fps


def frames_to_seconds(frames: int, fps: Fraction) -> Fraction:
    """Exact start time of ``frame`` in seconds."""
    return Fraction(frames) / fps


def _package_rate(fps: Fraction) -> str:
    """The rate spelling the ``timecode`` package understands exactly."""
    nominal = nominal_fps(fps)
    if fps.denominator == 1:
        return str(nominal)
    for alias, rate in _NTSC_ALIASES.items():
        if rate == fps and len(alias.split(".")[1]) >= 2 and alias not in ("23.98", "47.95"):
            return alias
    raise ValueError(f"no SMPTE timecode for {float(fps):g} fps")


def frames_to_tc(frames: int, fps: Fraction, drop: bool = False) -> str:
    """Frame count (from 00:00:00:00) to SMPTE timecode.

    Args:
        frames: a non-negative frame count.
        fps: exact frame rate (integer or NTSC).
        drop: count drop-frame (only at 29.97 and 59.94); written with ``;`` before the frames.

    Returns:
        ``HH:MM:SS:FF`` or ``HH:MM:SS;FF``; wraps at 24 hours.

    Raises:
        ValueError: negative frames, drop-frame at a rate without it, or a rate without SMPTE timecode.
    """
    from timecode import Timecode  # type: ignore[attr-defined]  # the package lacks __all__

    if frames < 0:
        raise ValueError(f"negative frame count {frames}")
    if drop and not is_drop_frame_rate(fps):
        raise ValueError(f"drop-frame timecode exists only at 29.97 and 59.94 fps, not {float(fps):g}")
    tc = Timecode(_package_rate(fps), frames=frames + 1, force_non_drop_frame=not drop)
    return str(tc)


def tc_to_frames(tc: str, fps: Fraction, drop: bool | None = None) -> int:
    """SMPTE timecode to a frame count from 00:00:00:00.

    Args:
        tc: ``HH:MM:SS:FF`` (non-drop) or ``HH:MM:SS;FF`` (drop-frame).
        fps: exact frame rate.
        drop: force the counting; by default it follows the separator (``;`` means drop-frame).

    Returns:
        The frame count.

    Raises:
        ValueError: malformed timecode, frames or seconds out of range, a frame number that drop-frame
            skips (``00:01:00;00``), or drop-frame at a rate without it.
    """
    from timecode import Timecode  # type: ignore[attr-defined]  # the package lacks __all__

    m = _TC_RE.match(tc.strip())
    if not m:
        raise ValueError(f"not a timecode: {tc!r} (expected HH:MM:SS:FF)")
    hh, mm, ss, sep, ff = m.groups()
    is_drop = (sep in ";.") if drop is None else drop
    nominal = nominal_fps(fps)
    if int(mm) > 59 or int(ss) > 59 or int(ff) >= nominal:
        raise ValueError(f"not a valid timecode at {float(fps):g} fps: {tc!r}")
    if is_drop:
        if not is_drop_frame_rate(fps):
            raise ValueError(f"drop-frame timecode {tc!r} needs 29.97 or 59.94 fps, not {float(fps):g}")
        skipped = 2 * nominal // 30
        if int(ss) == 0 and int(ff) < skipped and int(mm) % 10 != 0:
            raise ValueError(f"{tc!r} does not exist in drop-frame timecode (frames 0-{skipped - 1} skipped)")
    normalised = f"{int(hh):02d}:{mm}:{ss}{';' if is_drop else ':'}{int(ff):02d}"
    return int(Timecode(_package_rate(fps), normalised, force_non_drop_frame=not is_drop).frames) - 1


def ms_to_srt(ms: int) -> str:
    """Milliseconds to SubRip time ``HH:MM:SS,mmm`` (hours not wrapped)."""
    if ms < 0:
        raise ValueError(f"negative time {ms} ms")
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{milli:03d}"


def ms_to_vtt(ms: int) -> str:
    """Milliseconds to WebVTT time ``HH:MM:SS.mmm``."""
    return ms_to_srt(ms).replace(",", ".")


def srt_to_ms(text: str) -> int:
    """SubRip (``,``) or WebVTT (``.``) time to milliseconds.

    Raises:
        ValueError: when ``text`` is not ``H:MM:SS,mmm``.
    """
    m = _SRT_RE.match(text.strip())
    if not m:
        raise ValueError(f"not an SRT time: {text!r} (expected HH:MM:SS,mmm)")
    h, mi, s, ms = (int(g) for g in m.groups())
    if mi > 59 or s > 59:
        raise ValueError(f"not an SRT time: {text!r}")
    return ((h * 60 + mi) * 60 + s) * 1000 + ms
