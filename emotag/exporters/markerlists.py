"""Marker lists for Avid Media Composer, Audacity, Reaper and Adobe Audition.

Each is a small text table; all four are hand-written (no maintained library writes them) from what the
hosts themselves export, as found with the search tool (code corpus), since emotag's tests cannot run the
hosts. One marker per selected region (filters and ``--merge-gap`` apply); name ``joy 0.82`` (``mismatch``
appended when flagged); the cue text goes where the host has a comment/description field.

**Avid** (``avid``, ``.txt``; Markers window > Import Markers): tab-separated, one marker a line, no
header: ``user, timecode, track, colour, comment, duration in frames``. Confirmed against an Avid
"Markers List" export quoted in adamhawkey/EDL_tools ``Marker_tools/README.md``::

    Isabel Yanes GT<TAB>01:01:07:21<TAB>V1<TAB>red<TAB>VFX - Fade In...<TAB>1

Colours are Avid's eight, lower-case as Avid writes them (palette ``avid``). Timecode is the sequence's:
Avid sequences start at 01:00:00:00 by default, so that is the default start (``--start-tc`` overrides).
Frame-based: start floor, duration = ceil(end) - floor(start), at least 1. Tabs/newlines in text become
spaces.

**Audacity** (``audacity``, ``.txt``; File > Import > Labels): ``start<TAB>end<TAB>label`` in seconds with
six decimals, as Audacity's own label export writes; times are exact (integer ms), no frames involved.
Label: ``joy 0.82: text``.

**Reaper** (``reaper``, ``.csv``; Region/Marker Manager > Import): ``#,Name,Start,End,Length,Color`` with
ids ``R1, R2, ...`` for regions (``M1`` for zero-length markers), colour as ``RRGGBB`` hex. The header and
ids are what Reaper's own export writes (several tools in the search corpus read or write it:
e.g. a NAM-dataset tool documents ``R1,train,50000,7760000,7657222,FF0000``). **Not verified in Reaper
itself:** the Start/End/Length cells follow the project's ruler format in Reaper's exports (bars.beats,
H:M:S, seconds, samples); emotag writes Reaper's minutes:seconds form ``m:ss.fff`` (``h:mm:ss.fff`` past an
hour), the time-based form the corpus writers use, which is what a project with a time ruler shows. If a
project uses measures.beats, switch the ruler to Minutes:Seconds before importing.

**Adobe Audition** (``audition``, ``.csv``; Markers panel > Import): despite the suffix, **tab**-separated
with the header ``Name Start Duration Time Format Type Description``; times ``m:ss.fff`` (``h:mm:ss.fff``
past an hour), ``Time Format`` always the word ``decimal``, ``Type`` ``Cue``; a range marker is a ``Cue``
with a non-zero duration. Confirmed against Audition exports quoted in several repositories in the
search corpus (e.g. DrSkunk/audition-chapter-tagger README: ``...<TAB>1:16.655<TAB>0:00.000<TAB>decimal
<TAB>Cue``; a ranged example ``Marker 06<TAB>0:12.344<TAB>0:02.093<TAB>decimal<TAB>Cue``).
"""

from __future__ import annotations

import csv
import io

from emotag.exporters import ExportOptions, timing
from emotag.exporters._common import one_line, region_frames
from emotag.palette import rgb_hex
from emotag.selection import Region
from emotag.timeline import Track

__all__ = [
    "AUDACITY_EXPORTER",
    "AUDITION_EXPORTER",
    "AVID_EXPORTER",
    "REAPER_EXPORTER",
    "clock",
    "seconds6",
]


def _cell(text: str) -> str:
    return one_line(text.replace("\t", " "))


def clock(ms: int) -> str:
    """``m:ss.fff`` below one hour, ``h:mm:ss.fff`` above (Audition and Reaper time display)."""
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    if h:
        return f"{h}:{m:02d}:{s:02d}.{milli:03d}"
    return f"{m}:{s:02d}.{milli:03d}"


def seconds6(ms: int) -> str:
    """Exact seconds with six decimals from integer milliseconds (``1500`` -> ``1.500000``)."""
    return f"{ms // 1000}.{ms % 1000:03d}000"


def _label(region: Region) -> str:
    text = _cell(region.text)
    return f"{region.name}: {text}" if text else region.name


class AvidExporter:
    """Avid Media Composer marker list."""

    name = "avid"
    suffix = ".txt"
    default_filename_suffix = ".emotag.avid.txt"
    description = "Avid Media Composer marker list (tab-separated; Markers window > Import)"
    frame_based = True

    def render(self, track: Track, options: ExportOptions) -> str:
        """One tab-separated line per region."""
        t = timing(track, options, self.name, default_start_tc="01:00:00:00")
        lines = []
        for region in options.regions(track):
            first, end = region_frames(region, t)
            color = options.colors[region.label].avid
            lines.append("\t".join(["emotag", t.tc(first), "V1", color, _label(region), str(end - first)]))
        return "".join(line + "\n" for line in lines)


class AudacityExporter:
    """Audacity label track."""

    name = "audacity"
    suffix = ".txt"
    default_filename_suffix = ".emotag.audacity.txt"
    description = "Audacity labels (File > Import > Labels), exact seconds"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """``start<TAB>end<TAB>label`` per region."""
        return "".join(
            f"{seconds6(r.start_ms)}\t{seconds6(max(r.end_ms, r.start_ms))}\t{_label(r)}\n"
            for r in options.regions(track)
        )


class ReaperExporter:
    """Reaper Region/Marker Manager CSV."""

    name = "reaper"
    suffix = ".csv"
    default_filename_suffix = ".emotag.reaper.csv"
    description = "Reaper regions (Region/Marker Manager > Import), coloured by emotion"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """Header plus ``R<n>`` (or ``M<n>`` for zero-length) rows."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["#", "Name", "Start", "End", "Length", "Color"])
        n_regions = n_markers = 0
        for region in options.regions(track):
            color = rgb_hex(options.colors[region.label].rgb).lstrip("#")
            if region.duration_ms > 0:
                n_regions += 1
                writer.writerow(
                    [
                        f"R{n_regions}",
                        _label(region),
                        clock(region.start_ms),
                        clock(region.end_ms),
                        clock(region.duration_ms),
                        color,
                    ]
                )
            else:
                n_markers += 1
                writer.writerow([f"M{n_markers}", _label(region), clock(region.start_ms), "", "", color])
        return buf.getvalue()


class AuditionExporter:
    """Adobe Audition marker list."""

    name = "audition"
    suffix = ".csv"
    default_filename_suffix = ".emotag.audition.csv"
    description = "Adobe Audition markers (tab-separated .csv; Markers panel > Import)"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """Header plus one ``Cue`` row per region (range markers when longer than 0)."""
        lines = ["Name\tStart\tDuration\tTime Format\tType\tDescription"]
        for region in options.regions(track):
            lines.append(
                "\t".join(
                    [
                        _cell(region.name),
                        clock(region.start_ms),
                        clock(region.duration_ms),
                        "decimal",
                        "Cue",
                        _cell(region.text),
                    ]
                )
            )
        return "".join(line + "\n" for line in lines)


AVID_EXPORTER = AvidExporter()
AUDACITY_EXPORTER = AudacityExporter()
REAPER_EXPORTER = ReaperExporter()
AUDITION_EXPORTER = AuditionExporter()
