"""WebVTT (``.vtt``) with emotion class spans, a ``STYLE`` block and voice spans.

Hand-written: webvtt-py (0.6), the usual Python library, writes captions but cannot write ``STYLE`` blocks
or class spans, and the format is small. Followed: W3C WebVTT (https://www.w3.org/TR/webvtt1/):

* ``WEBVTT`` header, then a ``STYLE`` block before the first cue with ``::cue(.joy) { color: #RRGGBB; }``
  per emotion (a STYLE block may not contain the string ``-->`` nor blank lines, and must precede cues).
* Cue identifier = the cue's index, then ``HH:MM:SS.mmm --> HH:MM:SS.mmm``.
* Cue text: ``<v Speaker>`` voice span when the speaker is known, then ``<c.joy>…</c>`` (``<c.joy.mismatch>``
  when flagged) around the text. WebVTT allows only ``c i b u ruby rt v lang`` tags and requires ``&`` and
  ``<`` to be escaped, so SubRip markup is translated: ``<i> <b> <u>`` kept, ``<font>`` and other tags
  dropped (their text kept), ASS override blocks (``{\\an8}``) removed, ``&``/``<``/``>`` escaped (so a
  ``-->`` in the text cannot end the timing line). Blank lines inside a cue are removed.

Tag styles: ``prefix`` adds ``[joy 0.82] `` inside the class span; ``color`` only the class span; ``none``
neither (plain subtitles, speakers kept). Unselected cues are written untagged.

Host quirk: FFmpeg's WebVTT demuxer (5.1 here, and upstream per FFmpeg trac #9064, quoted in yt-dlp issue
#6560) drops every cue after a ``STYLE`` block, so a file with the block reads as empty in ffmpeg-based
tools (measured: 0 of 7 cues; 7 of 7 with the block removed). Browsers and webvtt-py follow the spec. With
``--tag-style none`` no STYLE block is written; otherwise it is kept, because it is what colours the
classes in players that follow the spec.

Checked in tests with webvtt-py (times, voice, classes, text) and, with the STYLE block removed, ffmpeg.
"""

from __future__ import annotations

import re

from emotag.exporters import ExportOptions
from emotag.exporters._common import tag_name
from emotag.timecode import ms_to_vtt
from emotag.timeline import LABELS, TaggedCue, Track

__all__ = ["EXPORTER", "VttExporter", "vtt_text"]

_TAG_RE = re.compile(r"(</?[A-Za-z][^<>]*>)")
_KEEP_RE = re.compile(r"^</?([ibu])>$", re.IGNORECASE)
_ASS_RE = re.compile(r"\{\\[^}]*\}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt_text(text: str) -> str:
    """Translate SubRip-style cue text into valid WebVTT cue text (see the module docstring)."""
    text = _ASS_RE.sub("", text).replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ")
    out = []
    for part in _TAG_RE.split(text):
        if not part:
            continue
        if part.startswith("<") and part.endswith(">"):
            m = _KEEP_RE.match(part)
            if m:
                out.append(part.lower())
            continue
        out.append(_escape(part))
    joined = "".join(out)  # ">" is escaped, so "-->" cannot survive into a cue
    lines = [line.strip() for line in joined.splitlines()]
    return "\n".join(line for line in lines if line)


def _speaker(name: str) -> str:
    # A voice annotation ends at ">" and may not hold "&" or "<" unescaped.
    return _escape(" ".join(name.split()))


def _cue_text(tc: TaggedCue, options: ExportOptions) -> str:
    body = vtt_text(tc.cue.text)
    if options.tag_style != "none" and options.is_selected(tc):
        classes = tc.label + (".mismatch" if tc.mismatched else "")
        prefix = f"[{tag_name(tc)}] " if options.tag_style == "prefix" else ""
        body = f"<c.{classes}>{prefix}{body}</c>".replace("] </c>", "]</c>")
    if tc.cue.speaker:
        body = f"<v {_speaker(tc.cue.speaker)}>{body}</v>"
    return body


class VttExporter:
    """WebVTT with emotion classes."""

    name = "vtt"
    suffix = ".vtt"
    default_filename_suffix = ".emotag.vtt"
    description = "WebVTT with <c.emotion> spans, a STYLE block of emotion colours and <v Speaker> voices"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """Render all cues (timings untouched)."""
        palette = options.colors
        parts = ["WEBVTT\n"]
        if options.tag_style != "none":
            style = ["STYLE"]
            style += [f"::cue(.{label}) {{ color: {palette[label].hex}; }}" for label in LABELS]
            style.append("::cue(.mismatch) { text-decoration: underline; }")
            parts.append("\n".join(style) + "\n")
        for tc in track.cues:
            start = tc.cue.start_ms
            end = max(tc.cue.end_ms, start)
            text = _cue_text(tc, options)
            parts.append(f"{tc.cue.index}\n{ms_to_vtt(start)} --> {ms_to_vtt(end)}\n{text}\n")
        return "\n".join(parts)


EXPORTER = VttExporter()
