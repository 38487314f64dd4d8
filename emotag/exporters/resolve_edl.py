"""DaVinci Resolve marker EDL (``resolve-edl``): timeline markers Resolve imports with
"Timelines > Import > Timeline Markers from EDL" (Media Pool, timeline's context menu).

Hand-written; no library writes this dialect. Layout confirmed against a marker EDL that Resolve itself
exported, quoted verbatim in the tests of the TC_MagiK project (found with the search tool, code corpus,
query ``|C:ResolveColor``)::

    TITLE: ( no title )

    001  001      V     C        01:00:18:06 01:00:18:07 01:00:18:06 01:00:18:07
    Poil noire gauche cadre sur visage acteur |C:ResolveColorYellow |M:Marker 1 |D:1

    008  001      V     C        01:44:35:12 01:44:35:13 01:44:35:12 01:44:35:13
     |C:ResolveColorBlue |M:Marker 130 |D:1

What that fixes, and emotag follows:

* one event per marker, **one frame long** (source = record = the marker's timecode), reel ``001``,
  the standard CMX column layout (event, two spaces, reel padded to 8, track padded to 5, ``C`` then 8
  spaces), two trailing spaces after the record out, a blank line between events;
* the next line is ``NOTE |C:ResolveColorX |M:NAME |D:FRAMES``: Resolve takes the text before the first
  ``|`` as the marker's note (so the note comes first; a marker without a note starts with `` |C:``), the
  line is not a ``* `` comment, and ``|`` is removed from note and name; ``D`` is the marker's duration
  in frames;
* Resolve writes non-ASCII notes as UTF-8 (the quoted file has "à", "é"), so notes keep their text;
  newlines are collapsed to spaces (Resolve's own multi-line notes are not reproduced);
* the quoted file has no ``FCM:`` line; emotag writes one (DROP FRAME / NON-DROP FRAME), as the other
  Resolve-marker generators found in the search corpus do, so drop-frame is never guessed.
  (Event lines above are shown without their two trailing spaces.)

Record timecode must match the *timeline's*: Resolve timelines start at 01:00:00:00 by default, so that is
the default start here (``--start-tc`` overrides; the media's own timecode is not used, because markers
belong to the timeline, not the clip). Marker name: ``joy 0.82`` (``mismatch`` appended when flagged);
note: the cue text. Colours: the palette's Resolve colour per emotion (16 ``ResolveColor*`` names).
"""

from __future__ import annotations

from emotag.exporters import ExportOptions, timing
from emotag.exporters._common import one_line, region_frames
from emotag.timeline import Track

__all__ = ["EXPORTER", "ResolveEdlExporter", "clean"]


def clean(text: str) -> str:
    """Note/name text safe for a Resolve marker line: one line, no ``|``."""
    return one_line(text.replace("|", " "))


class ResolveEdlExporter:
    """Resolve "Timeline Markers from EDL"."""

    name = "resolve-edl"
    suffix = ".edl"
    default_filename_suffix = ".emotag.resolve.edl"
    description = "DaVinci Resolve timeline markers (Import > Timeline Markers from EDL), coloured by emotion"
    frame_based = True

    def render(self, track: Track, options: ExportOptions) -> str:
        """One one-frame event plus a ``|C: |M: |D:`` line per selected region."""
        t = timing(track, options, self.name, default_start_tc="01:00:00:00")
        lines = [
            f"TITLE: {clean(options.title_for(track))}",
            "FCM: DROP FRAME" if t.drop else "FCM: NON-DROP FRAME",
            "",
        ]
        for n, region in enumerate(options.regions(track), start=1):
            first, end = region_frames(region, t)
            tc_in, tc_out = t.tc(first), t.tc(first + 1)
            lines.append(f"{n:03d}  001      V     C        {tc_in} {tc_out} {tc_in} {tc_out}  ")
            color = options.colors[region.label].resolve
            note, name = clean(region.text), clean(region.name)
            lines.append(f"{note} |C:ResolveColor{color} |M:{name} |D:{end - first}")
            lines.append("")
        return "\n".join(lines)


EXPORTER = ResolveEdlExporter()
