"""CSV (``.csv``): one row per selected cue, for spreadsheets and data tools.

RFC 4180 via Python's ``csv`` module (comma-separated, ``"``-quoted when needed, ``\\r\\n`` row ends as the
module writes by default, UTF-8 without BOM). Columns: index, start_ms, end_ms, start, end (SRT-style),
speaker, label, confidence, valence, arousal, mismatch, mismatched, one ``p_<label>`` per label, text_label,
audio_label (labels of the per-modality evidence, empty when absent), text (plain, one line).
Filters apply; merging does not (rows stay cues). Numbers are written with Python's shortest ``repr``.
"""

from __future__ import annotations

import csv
import io

from emotag.exporters import ExportOptions
from emotag.exporters._common import one_line
from emotag.timecode import ms_to_srt
from emotag.timeline import LABELS, Track

__all__ = ["COLUMNS", "EXPORTER", "CsvExporter"]

COLUMNS: tuple[str, ...] = (
    "index",
    "start_ms",
    "end_ms",
    "start",
    "end",
    "speaker",
    "label",
    "confidence",
    "valence",
    "arousal",
    "mismatch",
    "mismatched",
    *(f"p_{label}" for label in LABELS),
    "text_label",
    "audio_label",
    "text",
)


class CsvExporter:
    """Per-cue scores as CSV."""

    name = "csv"
    suffix = ".csv"
    default_filename_suffix = ".emotag.csv"
    description = "one row per selected cue: times, label, confidence, valence/arousal, all probabilities"
    frame_based = False

    def render(self, track: Track, options: ExportOptions) -> str:
        """Header plus one row per selected cue."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(COLUMNS)
        for tc in options.selected(track.cues):
            cue = tc.cue
            writer.writerow(
                [
                    cue.index,
                    cue.start_ms,
                    cue.end_ms,
                    ms_to_srt(cue.start_ms),
                    ms_to_srt(max(cue.end_ms, cue.start_ms)),
                    cue.speaker or "",
                    tc.label,
                    repr(tc.confidence),
                    repr(tc.emotion.valence),
                    repr(tc.emotion.arousal),
                    repr(tc.mismatch),
                    "true" if tc.mismatched else "false",
                    *(repr(p) for p in tc.emotion.probs),
                    "" if tc.text is None else tc.text.label,
                    "" if tc.audio is None else tc.audio.label,
                    one_line(cue.plain),
                ]
            )
        return buf.getvalue()


EXPORTER = CsvExporter()
