"""Final Cut Pro 7 XML / xmeml (``.xml``): a sequence with emotion markers, the way Premiere Pro imports them.

Premiere Pro has no native marker-list import; importing an xmeml file creates a sequence, and its
``<marker>`` elements become sequence markers (docs/FORMATS.md). Hand-written with ``xml.etree`` following
Apple's "Final Cut Pro XML Interchange Format" (xmeml v5) and auto-editor's ``exports/fcp7.py`` (rate as
``timebase`` + ``ntsc``: 24000/1001 -> 24 TRUE, 30000/1001 -> 30 TRUE, 60000/1001 -> 60 TRUE).

OpenTimelineIO's ``fcp_xml`` adapter (otio-fcp-adapter 1.0.0) writes markers correctly but, tried here, it
also writes the file ``<name>`` URL-encoded (``talk%20show.mp4``), no audio track, the sequence timecode
always ``NDF`` (a 29.97 DF start of 01:00:00;00 came out as ``00:59:56:12``), and point markers with
``out`` = ``in`` rather than ``-1``. So it is used as the independent *reader* in the tests only.

Structure: ``xmeml version="5"`` > ``sequence`` (name, duration, rate, timecode of the timeline start with
``displayformat`` DF/NDF, media > video track + audio track, each with one ``clipitem`` of the whole
media referencing one ``file`` with ``pathurl``), then one ``<marker>`` per selected region with ``name``
(``joy 0.82``), ``comment`` (the cue text), ``in`` and ``out`` in frames from the sequence start (start
floor, end ceil, at least one frame long, so ``out`` is never -1 here). The file's own timecode is the
media's ``start_timecode``; the sequence starts at ``--start-tc`` (default: the media's timecode, else
00:00:00:00).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

from emotag.exporters import ExportOptions, Timing, timing
from emotag.exporters._common import clip_frames, one_line, region_frames
from emotag.timecode import frames_to_tc, nominal_fps
from emotag.timeline import Track

__all__ = ["EXPORTER", "Fcp7XmlExporter"]


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = text
    return el


def _rate(parent: ET.Element, fps: Fraction) -> None:
    rate = ET.SubElement(parent, "rate")
    _text(rate, "timebase", str(nominal_fps(fps)))
    _text(rate, "ntsc", "FALSE" if fps.denominator == 1 else "TRUE")


def _timecode(parent: ET.Element, frames: int, t: Timing) -> None:
    tc = ET.SubElement(parent, "timecode")
    _rate(tc, t.fps)
    _text(tc, "string", frames_to_tc(frames, t.fps, t.drop))
    _text(tc, "frame", str(frames))
    _text(tc, "displayformat", "DF" if t.drop else "NDF")


class Fcp7XmlExporter:
    """xmeml sequence markers (Premiere Pro import)."""

    name = "fcp7xml"
    suffix = ".xml"
    default_filename_suffix = ".emotag.xml"
    description = "Final Cut Pro 7 XML (xmeml): a sequence with emotion markers that Premiere Pro imports"
    frame_based = True

    def render(self, track: Track, options: ExportOptions) -> str:
        """The whole xmeml document."""
        t = timing(track, options, self.name)
        media = track.media
        regions = options.regions(track)
        duration = clip_frames(track, regions, t)
        filename = Path(media.path).name or "media"
        has_video = media.has_video or media.width is not None

        root = ET.Element("xmeml", version="5")
        seq = ET.SubElement(root, "sequence", id="sequence-1")
        _text(seq, "name", options.title_for(track))
        _text(seq, "duration", str(duration))
        _rate(seq, t.fps)
        _timecode(seq, t.record_start, t)
        media_el = ET.SubElement(seq, "media")

        def clipitem(parent: ET.Element, clip_id: str, first: bool, mediatype: str) -> None:
            item = ET.SubElement(parent, "clipitem", id=clip_id)
            _text(item, "name", filename)
            _text(item, "enabled", "TRUE")
            _text(item, "duration", str(duration))
            _rate(item, t.fps)
            _text(item, "start", "0")
            _text(item, "end", str(duration))
            _text(item, "in", "0")
            _text(item, "out", str(duration))
            file_el = ET.SubElement(item, "file", id="file-1")
            if first:
                _text(file_el, "name", filename)
                _text(file_el, "pathurl", Path(os.path.abspath(media.path)).as_uri())
                _rate(file_el, t.fps)
                _text(file_el, "duration", str(duration))
                _timecode(file_el, t.source_start, t)
                fmedia = ET.SubElement(file_el, "media")
                if has_video:
                    video = ET.SubElement(fmedia, "video")
                    sc = ET.SubElement(video, "samplecharacteristics")
                    _rate(sc, t.fps)
                    if media.width and media.height:
                        _text(sc, "width", str(media.width))
                        _text(sc, "height", str(media.height))
                audio = ET.SubElement(fmedia, "audio")
                _text(audio, "channelcount", "1")
            if mediatype == "audio":
                src = ET.SubElement(item, "sourcetrack")
                _text(src, "mediatype", "audio")
                _text(src, "trackindex", "1")

        first_use = True
        if has_video:
            video = ET.SubElement(media_el, "video")
            fmt = ET.SubElement(video, "format")
            sc = ET.SubElement(fmt, "samplecharacteristics")
            _rate(sc, t.fps)
            if media.width and media.height:
                _text(sc, "width", str(media.width))
                _text(sc, "height", str(media.height))
            clipitem(ET.SubElement(video, "track"), "clipitem-1", True, "video")
            first_use = False
        audio = ET.SubElement(media_el, "audio")
        clipitem(ET.SubElement(audio, "track"), "clipitem-2", first_use, "audio")

        for region in regions:
            first, end = region_frames(region, t)
            marker = ET.SubElement(seq, "marker")
            _text(marker, "name", region.name)
            _text(marker, "comment", one_line(region.text))
            _text(marker, "in", str(first))
            _text(marker, "out", str(end))
        ET.indent(root, space="    ")
        body = ET.tostring(root, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + body + "\n"


EXPORTER = Fcp7XmlExporter()
