"""OpenTimelineIO (``.otio``): the lossless interchange for pipelines.

Written through OpenTimelineIO itself (``otio.adapters.write_to_string(timeline, "otio_json")``), so any
OTIO-based tool reads it. Content: a ``Timeline`` (name = title, ``global_start_time`` = ``--start-tc`` or
the media's timecode) with one track (video if the media has video, else audio) holding one ``Clip`` of
the whole media (``ExternalReference`` to its ``file://`` URL, ``available_range`` starting at the media's
own timecode). The emotion regions are ``Marker``s on the **track** (so they survive re-editing the clip),
in track time: ``marked_range`` start = region start, duration = region length, ``color`` = the palette's
``MarkerColor`` name, ``name`` = ``joy 0.82``, and ``metadata["emotag"]`` = the full scores (label,
confidence, duration-weighted probabilities, mismatch, text, and every cue with its fused and
per-modality probabilities, valence and arousal).

Time base: the frame rate when one is known (``--fps`` or the media's), with the usual frame rule (start
floor, end ceil, >= 1 frame); for audio-only media without ``--fps``, rate 1000 (exact milliseconds), so
this format never needs ``--fps``. Rates are doubles in OTIO; 30000/1001 is passed as ``30000/1001``
evaluated in floating point, which OTIO's timecode functions recognise as 29.97 (the tests read times back
as frames and compare exactly).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from emotag.exporters import ExportOptions, timing
from emotag.exporters._common import region_frames
from emotag.selection import Region
from emotag.timecode import ms_to_frame_ceil
from emotag.timeline import Emotion, TaggedCue, Track

__all__ = ["EXPORTER", "OtioExporter"]


def _emotion(e: Emotion | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "label": e.label,
        "confidence": e.confidence,
        "probs": e.as_dict(),
        "valence": e.valence,
        "arousal": e.arousal,
    }


def _cue(tc: TaggedCue) -> dict[str, Any]:
    return {
        "index": tc.cue.index,
        "start_ms": tc.cue.start_ms,
        "end_ms": tc.cue.end_ms,
        "text": tc.cue.text,
        "speaker": tc.cue.speaker,
        "emotion": _emotion(tc.emotion),
        "text_evidence": _emotion(tc.text),
        "audio_evidence": _emotion(tc.audio),
        "mismatch": tc.mismatch,
        "mismatched": tc.mismatched,
    }


def region_metadata(region: Region, model: str) -> dict[str, Any]:
    """What ``metadata["emotag"]`` holds for one marker."""
    return {
        "label": region.label,
        "confidence": region.confidence,
        "probs": region.probs(),
        "mismatched": region.mismatched,
        "mismatch": region.mismatch,
        "text": region.text,
        "speaker": region.speaker,
        "start_ms": region.start_ms,
        "end_ms": region.end_ms,
        "model": model,
        "cues": [_cue(c) for c in region.cues],
    }


class OtioExporter:
    """OpenTimelineIO timeline with emotion markers."""

    name = "otio"
    suffix = ".otio"
    default_filename_suffix = ".emotag.otio"
    description = "OpenTimelineIO timeline: markers with MarkerColor and full scores in metadata['emotag']"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """The timeline as OTIO JSON."""
        import opentimelineio as otio

        media = track.media
        regions = options.regions(track)
        if (options.fps or media.fps) is not None:
            t = timing(track, options, self.name)
            rate = float(t.fps)
            spans = [region_frames(r, t) for r in regions]
            duration = max(1, ms_to_frame_ceil(media.duration_ms, t.fps), *(e for _, e in spans))
            record_start, source_start = t.record_start, t.source_start
        else:
            rate = 1000.0
            spans = [(r.start_ms, max(r.start_ms + 1, r.end_ms)) for r in regions]
            duration = max(1, media.duration_ms, *(e for _, e in spans))
            record_start = source_start = 0

        def rt(value: int) -> Any:
            return otio.opentime.RationalTime(value, rate)

        def tr(start: int, length: int) -> Any:
            return otio.opentime.TimeRange(rt(start), rt(length))

        timeline = otio.schema.Timeline(name=options.title_for(track), global_start_time=rt(record_start))
        has_video = media.has_video or media.width is not None
        kind = otio.schema.TrackKind.Video if has_video else otio.schema.TrackKind.Audio
        otio_track = otio.schema.Track(name="emotag", kind=kind)
        timeline.tracks.append(otio_track)
        ref = otio.schema.ExternalReference(
            target_url=Path(os.path.abspath(media.path)).as_uri(), available_range=tr(source_start, duration)
        )
        clip = otio.schema.Clip(
            name=Path(media.path).name or "media",
            media_reference=ref,
            source_range=tr(source_start, duration),
        )
        otio_track.append(clip)
        timeline.metadata["emotag"] = {
            "model": track.model,
            "source": track.source,
            "fps": None if media.fps is None else str(media.fps),
        }
        for region, (first, end) in zip(regions, spans, strict=True):
            marker = otio.schema.Marker(
                name=region.name,
                marked_range=tr(first, end - first),
                color=options.colors[region.label].otio,
                metadata={"emotag": region_metadata(region, track.model)},
            )
            otio_track.markers.append(marker)
        return str(otio.adapters.write_to_string(timeline, "otio_json")) + "\n"


EXPORTER = OtioExporter()
