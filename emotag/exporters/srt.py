"""Tagged SubRip (``.srt``): the original subtitles with each cue's emotion shown.

Written with the ``srt`` library (``srt.compose``): cue numbers, ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` timings
and the blank-line separation are its job. Blank and whitespace-only lines *inside* a cue's text (and
``\\r``) are removed first (:func:`clean_text`), since they would end the cue early for every reader.
Timings are the cues' own milliseconds, untouched (SRT has 1 ms precision, as does the core), and the
original markup (``<i>``, ``{\\an8}``) is kept.

Tag styles (``ExportOptions.tag_style``):

* ``prefix``: ``[joy 0.82] `` before the first line (``[joy 0.82 mismatch]`` for voice/words mismatches).
  Visible in every player and editor.
* ``color``: the text wrapped in ``<font color="#RRGGBB">…</font>`` from the palette. Players (mpv, VLC,
  ffmpeg's subtitle filter) honour it. **Not verified** for editors: whether DaVinci Resolve's and Premiere
  Pro's SRT import render, strip or show ``<font>`` tags literally could not be confirmed from public
  sources with the search tool (Resolve's manual only describes its own subtitle track styling). That is
  why ``prefix`` is the default and ``color`` is meant for review copies played in a player.
* ``none``: subtitles unchanged (useful with ``--min-confidence`` for a clean copy).

Cues that fail the selection options (``--min-confidence``, ``--emotions``, ...) stay in the file untagged:
the output is always a complete subtitle track.
"""

from __future__ import annotations

from datetime import timedelta

from emotag.errors import MissingDependencyError
from emotag.exporters import ExportOptions
from emotag.exporters._common import tag_name
from emotag.timeline import TaggedCue, Track

__all__ = ["EXPORTER", "SrtExporter", "clean_text", "tagged_text"]


def clean_text(text: str) -> str:
    """Cue text that cannot break SubRip framing.

    ``\\r\\n`` and ``\\r`` become ``\\n``; blank or whitespace-only lines are removed (a blank line ends a cue
    for every reader); trailing whitespace is stripped.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines if line.strip()).strip()


def tagged_text(tc: TaggedCue, options: ExportOptions) -> str:
    """A cue's text with its tag applied per ``options.tag_style`` (untouched if the cue is not selected).

    Args:
        tc: the tagged cue.
        options: export options (tag style, filters, palette).
    """
    text = clean_text(tc.cue.text)
    if options.tag_style == "none" or not options.is_selected(tc):
        return text
    if options.tag_style == "prefix":
        return f"[{tag_name(tc)}] {text}" if text else f"[{tag_name(tc)}]"
    if not text:
        return text
    color = options.colors[tc.label].hex
    return f'<font color="{color}">{text}</font>'


class SrtExporter:
    """Tagged SubRip."""

    name = "srt"
    suffix = ".srt"
    default_filename_suffix = ".emotag.srt"
    description = "SubRip subtitles with each cue's emotion as a [label conf] prefix or a colour"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """Render all cues (timings untouched, markup kept).

        Raises:
            MissingDependencyError: the ``srt`` package is not installed.
        """
        try:
            import srt
        except ImportError:
            raise MissingDependencyError("srt", "SubRip export", "pip install 'srt>=3.5'") from None

        subs = [
            srt.Subtitle(
                index=tc.cue.index,
                start=timedelta(milliseconds=tc.cue.start_ms),
                end=timedelta(milliseconds=max(tc.cue.end_ms, tc.cue.start_ms)),
                content=tagged_text(tc, options),
            )
            for tc in track.cues
        ]
        return str(srt.compose(subs, reindex=False, strict=True))


EXPORTER = SrtExporter()
