"""JSON exports: the lossless track file (``json``) and one object per selected cue (``jsonl``).

``json`` is exactly what :mod:`emotag.trackfile` writes (schema ``emotag.track/1``) so ``emotag export`` can
read it back and render any other format without re-running the model. It is a record, not a view:
selection options (``--min-confidence`` ...) are deliberately ignored so a saved track never loses cues.

``jsonl`` (JSON Lines, one object per line, UTF-8, ``\\n`` line ends) is for data tools (jq, pandas,
DuckDB): each line is the per-cue object of the track schema plus ``media`` (path) and ``model``, and the
selection filters apply (merging does not: rows stay cues).
"""

from __future__ import annotations

import json

from emotag.exporters import ExportOptions
from emotag.timeline import Track
from emotag.trackfile import _cue_to_dict, dumps

__all__ = ["EXPORTER", "JSONL_EXPORTER", "JsonExporter", "JsonlExporter"]


class JsonExporter:
    """The full track as versioned JSON (re-exportable)."""

    name = "json"
    suffix = ".json"
    default_filename_suffix = ".emotag.json"
    description = "the full tagged track (schema emotag.track/1); `emotag export` reads it back"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """Return :func:`emotag.trackfile.dumps` of the track (options ignored: the file is lossless)."""
        return dumps(track)


class JsonlExporter:
    """One JSON object per selected cue."""

    name = "jsonl"
    suffix = ".jsonl"
    default_filename_suffix = ".emotag.jsonl"
    description = "JSON Lines, one object per selected cue with scores and evidence"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """One line per selected cue."""
        lines = []
        for tc in options.selected(track.cues):
            row = {"media": track.media.path, "model": track.model, **_cue_to_dict(tc)}
            lines.append(json.dumps(row, ensure_ascii=False, allow_nan=False))
        return "".join(line + "\n" for line in lines)


EXPORTER = JsonExporter()
JSONL_EXPORTER = JsonlExporter()
