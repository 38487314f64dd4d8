"""Advanced SubStation Alpha (``.ass``): one style per emotion, written by pysubs2.

pysubs2 owns the format (``[Script Info]``, ``[V4+ Styles]``, ``[Events]``, ``&HAABBGGRR`` colours with
alpha 00 = opaque, ``H:MM:SS.cc`` times); emotag only builds the ``SSAFile``. Notes:

* Styles: ``Default`` (untagged cues) plus one per label named after it, primary colour from the palette.
  A mismatch is marked by an underline override (``{\\u1}``) on the event, since a cue has one style.
* Cue markup is converted by pysubs2's own SubRip reader (``<i>`` -> ``{\\i1}``, newlines -> ``\\N``) by
  parsing each cue as a one-cue SRT; ASS override blocks in the source text (``{\\an8}``) pass through.
  ``<font color>`` is dropped by that reader, which is right here: the style carries the colour.
* The speaker goes into the event's ``Name`` field.
* ASS times have centisecond precision: pysubs2 rounds each millisecond time to the nearest 10 ms.

Tag styles: ``prefix`` = emotion style + ``[joy 0.82] `` text; ``color`` = emotion style only; ``none`` =
everything in ``Default``. Checked in tests by re-reading with pysubs2 and with ffmpeg's ASS demuxer.
"""

from __future__ import annotations

from emotag.exporters import ExportOptions
from emotag.exporters._common import tag_name
from emotag.timeline import LABELS, Track

__all__ = ["EXPORTER", "AssExporter", "ass_text"]


def ass_text(text: str) -> str:
    """SubRip-style cue text as ASS event text, via pysubs2's SubRip reader."""
    import pysubs2

    if not text.strip():
        return ""
    body = "\n".join(line for line in text.splitlines() if line.strip())
    parsed = pysubs2.SSAFile.from_string(f"1\n00:00:00,000 --> 00:00:01,000\n{body}\n", format_="srt")
    return "\\N".join(e.text for e in parsed.events)


class AssExporter:
    """ASS subtitles with a style per emotion."""

    name = "ass"
    suffix = ".ass"
    default_filename_suffix = ".emotag.ass"
    description = "Advanced SubStation Alpha subtitles, one coloured style per emotion (via pysubs2)"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """Render all cues."""
        import pysubs2

        subs = pysubs2.SSAFile()
        subs.info["Title"] = options.title_for(track)
        if track.media.width and track.media.height:
            subs.info["PlayResX"] = str(track.media.width)
            subs.info["PlayResY"] = str(track.media.height)
        default = subs.styles["Default"]
        palette = options.colors
        if options.tag_style != "none":
            for label in LABELS:
                style = default.copy()
                r, g, b = palette[label].rgb
                style.primarycolor = pysubs2.Color(r, g, b, 0)
                subs.styles[label] = style
        for tc in track.cues:
            text = ass_text(tc.cue.text)
            style_name = "Default"
            if options.tag_style != "none" and options.is_selected(tc):
                style_name = tc.label
                if options.tag_style == "prefix":
                    text = f"[{tag_name(tc)}] {text}" if text else f"[{tag_name(tc)}]"
                if tc.mismatched:
                    text = "{\\u1}" + text
            subs.events.append(
                pysubs2.SSAEvent(
                    start=tc.cue.start_ms,
                    end=max(tc.cue.end_ms, tc.cue.start_ms),
                    text=text,
                    style=style_name,
                    name=tc.cue.speaker or "",
                )
            )
        return str(subs.to_string("ass"))


EXPORTER = AssExporter()
