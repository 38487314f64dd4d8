"""Final Cut Pro XML 1.10 (``.fcpxml``): the media as one clip with emotion markers and keyword ranges.

Hand-written with ``xml.etree``. OpenTimelineIO's ``fcpx_xml`` adapter is not usable as is (docs/FORMATS.md,
re-checked here with otio-fcpx-xml-adapter 1.0.0): it writes version 1.8, a ``format`` with an empty
``frameDuration=""``, an asset without ``media-rep``, and markers with ``completed="1"`` (to-do items).
It remains an independent *reader* in the tests (where it reads NTSC times at an integer rate, 23 for
24000/1001, flooring them: accurate to one of its frames only; exact at integer rates).

Document, per the FCPXML 1.10 DTD (Apple, "FCPXML DTD" in the Final Cut Pro XML reference; checked with
lxml DTD validation in tests when the DTD is available, see tests/exporters/test_export_xml.py)::

    fcpxml version="1.10"
      resources
        format id=r1 frameDuration="1001/30000s" width height      (frame rate of the timeline)
        asset id=r2 name start duration hasVideo hasAudio format    (the media, start = its own timecode)
          media-rep kind="original-media" src="file:///...%20..."   (URL-encoded, required from 1.9)
      library > event > project > sequence format tcStart tcFormat(DF|NDF) duration > spine
        asset-clip ref=r2 offset=tcStart start=asset start duration tcFormat
          marker start duration value note          one per region: "joy 0.82", note = the cue text
          keyword start duration value               one per region: the emotion label

* All times are rational seconds on frame boundaries of ``frameDuration`` (FCP warns or refuses
  otherwise): a frame count times ``1/fps`` as an exact reduced fraction (``"1001/30000s"``, ``"4s"``).
* Marker and keyword times are in the clip's *source* time (the asset's start plus the offset in the
  media), which is why the asset starts at the media's own timecode. The sequence starts at ``--start-tc``
  (default 00:00:00:00, FCP's default) and the clip sits at that offset.
* Keywords per emotion make FCP's browser list a keyword collection per emotion (filter "joy"), which
  is the most useful view for editors there; markers carry the confidence and the text.
* ``completed`` is never written (it would turn markers into to-do items).
* Regions follow the frame rule of every emotag exporter: start floor, end ceil, at least one frame.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

from emotag.exporters import ExportOptions, Timing, timing
from emotag.exporters._common import clip_frames, one_line, region_frames
from emotag.timeline import Track

__all__ = ["EXPORTER", "FcpxmlExporter", "rational"]


def rational(seconds: Fraction) -> str:
    """FCPXML time: ``"0s"``, ``"4s"``, ``"1001/30000s"``."""
    if seconds.denominator == 1:
        return f"{seconds.numerator}s"
    return f"{seconds.numerator}/{seconds.denominator}s"


def _t(frames: int, t: Timing) -> str:
    return rational(Fraction(frames) / t.fps)


def media_url(path: str) -> str:
    """An absolute, percent-encoded ``file://`` URL for a media path."""
    return Path(os.path.abspath(path)).as_uri()


class FcpxmlExporter:
    """FCPXML 1.10 markers and per-emotion keyword ranges."""

    name = "fcpxml"
    suffix = ".fcpxml"
    default_filename_suffix = ".emotag.fcpxml"
    description = "Final Cut Pro XML 1.10: the clip with emotion markers and a keyword range per emotion"
    frame_based = True

    def render(self, track: Track, options: ExportOptions) -> str:
        """The whole FCPXML document."""
        t = timing(track, options, self.name)
        media = track.media
        regions = options.regions(track)
        duration = clip_frames(track, regions, t)
        stem = Path(media.path).stem or "media"
        tc_format = "DF" if t.drop else "NDF"
        has_video = media.has_video or media.width is not None

        root = ET.Element("fcpxml", version="1.10")
        resources = ET.SubElement(root, "resources")
        fmt = ET.SubElement(resources, "format", id="r1", frameDuration=rational(1 / t.fps))
        if has_video and media.width and media.height:
            fmt.set("width", str(media.width))
            fmt.set("height", str(media.height))
        asset = ET.SubElement(
            resources,
            "asset",
            id="r2",
            name=stem,
            start=_t(t.source_start, t),
            duration=_t(duration, t),
            hasVideo="1" if has_video else "0",
            hasAudio="1",
            format="r1",
        )
        ET.SubElement(asset, "media-rep", kind="original-media", src=media_url(media.path))

        library = ET.SubElement(root, "library")
        event = ET.SubElement(library, "event", name="emotag")
        project = ET.SubElement(event, "project", name=options.title_for(track))
        sequence = ET.SubElement(
            project,
            "sequence",
            format="r1",
            duration=_t(duration, t),
            tcStart=_t(t.record_start, t),
            tcFormat=tc_format,
        )
        spine = ET.SubElement(sequence, "spine")
        clip = ET.SubElement(
            spine,
            "asset-clip",
            ref="r2",
            name=stem,
            offset=_t(t.record_start, t),
            start=_t(t.source_start, t),
            duration=_t(duration, t),
            tcFormat=tc_format,
        )
        for region in regions:
            first, end = region_frames(region, t)
            marker = ET.SubElement(
                clip,
                "marker",
                start=_t(t.source_start + first, t),
                duration=_t(end - first, t),
                value=region.name,
            )
            note = one_line(region.text)
            if note:
                marker.set("note", note)
        for region in regions:
            first, end = region_frames(region, t)
            ET.SubElement(
                clip,
                "keyword",
                start=_t(t.source_start + first, t),
                duration=_t(end - first, t),
                value=region.label,
            )
        ET.indent(root, space="    ")
        body = ET.tostring(root, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n' + body + "\n"


EXPORTER = FcpxmlExporter()
