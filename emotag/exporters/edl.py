"""CMX 3600 EDLs: ``edl`` (one event per emotion region, in place) and ``selects-edl`` (packed cuts).

Hand-written, not through OpenTimelineIO's ``cmx_3600`` adapter. What the adapter (otio-cmx3600-adapter
1.0.0 with opentimelineio 0.18.1) did when tried here, and why each rules it out for emotag:

* no ``FCM:`` line, so hosts guess drop-frame (docs/FORMATS.md saw the same);
* record times always start at 00:00:00:00: ``Timeline.global_start_time`` is ignored by the writer, so a
  timeline starting at 01:00:00:00 cannot be expressed;
* locator names are upper-cased (``* LOC: ... JOY 0.82``) and non-ASCII passes through unchanged;
* the reel is cut from the file name (``talk sho``) unless set in metadata;
* its own reader's locator pattern is ``\\d\\d:\\d\\d:\\d\\d:\\d\\d``, so the drop-frame ``;`` locators its
  writer emits are silently dropped on reading.

The adapter stays the independent *reader* in the tests (events, source/record times, clip names, and
non-drop locators are compared).

Layout (CMX 3600 as written by Avid/Resolve, same columns as the adapter's)::

    TITLE: talk show
    FCM: NON-DROP FRAME

    001  AX       V     C        00:00:01:00 00:00:03:13 01:00:01:00 01:00:03:13
    * FROM CLIP NAME: talk show.mp4
    * LOC: 01:00:01:00 YELLOW  joy 0.82
    * EMOTION: joy 0.82 valence +0.64 arousal +0.36
    * TEXT: Hello, world!

* Reel ``AX`` (auxiliary source: the convention for file-based media), track ``V`` for ``edl`` (marker
  carrier) and ``B`` (video + audio 1) for ``selects-edl`` (interview selects need the sound).
* Source times are the media's own timecode (its ``start_timecode``, else 00:00:00:00); record times start
  at ``--start-tc``, else the media's timecode, else 00:00:00:00.
* ``* LOC:`` lines are Avid locators (colours: the Avid set from the palette, upper-case). Drop-frame
  locators are written with ``;`` like every other drop-frame timecode.
* ASCII only: names and comments are transliterated (``Zoë`` -> ``Zoe``), characters without an ASCII
  spelling dropped; comment text is capped at 200 characters.
* ``edl``: region frames are start-floor / end-ceil (at least one frame); events keep their timeline
  position (gaps between them), and a region overlapping the previous event is trimmed to start where that
  one ends (dropped, its locator kept on the previous event, when nothing is left), so record times never
  overlap.
* ``selects-edl``: each selected region plus ``handles_ms`` before and after (clipped to the media),
  record times packed back to back from the start timecode; the locator marks the moment inside the
  handles. Event numbers run past 999 with more digits (hosts that stop at 999 are rare today).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emotag.exporters import ExportOptions, Timing, timing
from emotag.exporters._common import ascii_text, region_frames
from emotag.selection import Region
from emotag.timecode import ms_to_frame_ceil, ms_to_frame_floor
from emotag.timeline import Track

__all__ = ["EXPORTER", "SELECTS_EXPORTER", "EdlEvent", "EdlExporter", "SelectsEdlExporter", "write_edl"]

_COMMENT_MAX = 200


@dataclass(slots=True)
class EdlEvent:
    """One CMX 3600 event: source and record frames (offsets from each side's start) and comments."""

    src_in: int
    src_out: int
    rec_in: int
    rec_out: int
    comments: list[str] = field(default_factory=list)
    reel: str = "AX"
    channels: str = "V"


def _fcm(t: Timing) -> str:
    return "FCM: DROP FRAME" if t.drop else "FCM: NON-DROP FRAME"


def write_edl(title: str, t: Timing, events: list[EdlEvent]) -> str:
    """Lay out a CMX 3600 EDL (title, FCM line, events with comment lines).

    Args:
        title: the EDL title (transliterated to ASCII).
        t: resolved timing (rate, drop-frame, source and record starts).
        events: the events, frame offsets relative to the source and record starts.
    """
    lines = [f"TITLE: {ascii_text(title)[:70] or 'emotag'}", _fcm(t), ""]
    for n, ev in enumerate(events, start=1):
        lines.append(
            f"{n:03d}  {ev.reel:<8} {ev.channels:<5} C        "
            f"{t.src_tc(ev.src_in)} {t.src_tc(ev.src_out)} {t.tc(ev.rec_in)} {t.tc(ev.rec_out)}"
        )
        lines.extend(f"* {c}" for c in ev.comments)
        lines.append("")
    return "\n".join(lines)


def _clip_name(track: Track) -> str:
    return ascii_text(Path(track.media.path).name) or "media"


def _loc(t: Timing, rec_frame: int, region: Region, options: ExportOptions) -> str:
    color = options.colors[region.label].avid.upper()
    return f"LOC: {t.tc(rec_frame)} {color:<7} {ascii_text(region.name)}"


def _emotion_comment(region: Region) -> str:
    valence = sum(c.emotion.valence for c in region.cues) / len(region.cues)
    arousal = sum(c.emotion.arousal for c in region.cues) / len(region.cues)
    text = f"EMOTION: {region.name} valence {valence:+.2f} arousal {arousal:+.2f}"
    if region.mismatched:
        words = {c.text.label for c in region.cues if c.text is not None}
        voice = {c.audio.label for c in region.cues if c.audio is not None}
        text += f" (words {'/'.join(sorted(words)) or '-'}, voice {'/'.join(sorted(voice)) or '-'})"
    return text


def _comments(track: Track, region: Region, options: ExportOptions, t: Timing, loc_frame: int) -> list[str]:
    comments = [
        f"FROM CLIP NAME: {_clip_name(track)}",
        _loc(t, loc_frame, region, options),
        _emotion_comment(region),
    ]
    if region.speaker:
        comments.append(f"SPEAKER: {ascii_text(region.speaker)[:_COMMENT_MAX]}")
    text = ascii_text(region.text)[:_COMMENT_MAX]
    if text:
        comments.append(f"TEXT: {text}")
    return comments


class EdlExporter:
    """CMX 3600 EDL, one event per emotion region at its timeline position."""

    name = "edl"
    suffix = ".edl"
    default_filename_suffix = ".emotag.edl"
    description = "CMX 3600 EDL: an event per emotion region with LOC locators and emotion comments"
    frame_based = True

    def render(self, track: Track, options: ExportOptions) -> str:
        """Render the selected regions as in-place events."""
        t = timing(track, options, self.name)
        events: list[EdlEvent] = []
        prev_end = 0
        for region in options.regions(track):
            first, end = region_frames(region, t)
            loc_frame = first
            if events and first < prev_end:
                first = prev_end
            if first >= end:
                # Fully covered by the previous event: keep the locator there.
                events[-1].comments.insert(2, _loc(t, loc_frame, region, options))
                continue
            comments = _comments(track, region, options, t, loc_frame)
            events.append(EdlEvent(first, end, first, end, comments))
            prev_end = end
        return write_edl(options.title_for(track), t, events)


class SelectsEdlExporter:
    """CMX 3600 EDL of cuts: each chosen moment with handles, packed back to back."""

    name = "selects-edl"
    suffix = ".edl"
    default_filename_suffix = ".emotag.selects.edl"
    description = "CMX 3600 selects: a cut per chosen moment (+handles), packed into a ready sequence"
    frame_based = True

    def render(self, track: Track, options: ExportOptions) -> str:
        """Render the selected regions as packed cuts with handles."""
        t = timing(track, options, self.name)
        handle_in = ms_to_frame_floor(options.handles_ms, t.fps)
        handle_out = ms_to_frame_ceil(options.handles_ms, t.fps)
        media_end = ms_to_frame_ceil(track.media.duration_ms, t.fps)
        events: list[EdlEvent] = []
        rec = 0
        for region in options.regions(track):
            first, end = region_frames(region, t)
            src_in = max(0, first - handle_in)
            src_out = max(end, min(media_end, end + handle_out)) if media_end > 0 else end + handle_out
            length = src_out - src_in
            loc_frame = rec + (first - src_in)
            comments = _comments(track, region, options, t, loc_frame)
            events.append(EdlEvent(src_in, src_out, rec, rec + length, comments, channels="B"))
            rec += length
        return write_edl(options.title_for(track) + " selects", t, events)


EXPORTER = EdlExporter()
SELECTS_EXPORTER = SelectsEdlExporter()
