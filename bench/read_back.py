"""Export a tagged track to every format and read each file back with a reader emotag did not write.

Usage: ``python bench/read_back.py TRACK.emotag.json [--start-tc 01:00:00:00]`` (rendered in memory).
For each format prints the independent reader, how many items it read, and the first item's time and
name, so an editor can see at a glance that every file parses and lands where the cue starts.
Readers: srt (``srt``), webvtt-py, pysubs2 (ASS), json/jsonl (stdlib), csv (stdlib), OpenTimelineIO's
cmx_3600 / fcp_xml / fcpx_xml adapters and its native ``.otio`` reader, a regex for YouTube chapters.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import opentimelineio as otio

from emotag import exporters
from emotag.errors import EmotagError
from emotag.trackfile import load_track


def _otio_markers(text: str, adapter: str, **kwargs: object) -> list[tuple[float, str]]:
    result = otio.adapters.read_from_string(text, adapter, **kwargs)
    containers = [result, *getattr(result, "tracks", [])] if hasattr(result, "tracks") else []
    if hasattr(result, "tracks"):
        containers.append(result.tracks)
    found: list[tuple[float, str]] = []
    for item in [*containers, *result.find_clips()]:
        for m in getattr(item, "markers", []):
            found.append((m.marked_range.start_time.to_seconds(), m.name))
    if not found:  # EDL events without locators (selects): report the clips instead
        found = [(c.source_range.start_time.to_seconds(), c.name) for c in result.find_clips()]
    return sorted(found)


def _tsv(text: str, delimiter: str = "\t") -> list[tuple[float, str]]:
    """Rows of a marker list; a header row (no digit in its first two cells) is not counted."""
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]
    if rows and not any(ch.isdigit() for ch in "".join(rows[0][:2])):
        rows = rows[1:]
    return [(math.nan, " | ".join(r[:4])) for r in rows]  # time stays in the row text


def _readers(track_fps: float) -> dict[str, tuple[str, Callable[[str], list[tuple[float, str]]]]]:
    import pysubs2
    import srt
    import webvtt

    def vtt(text: str) -> list[tuple[float, str]]:
        def seconds(stamp: str) -> float:  # webvtt-py's start_in_seconds is truncated to whole seconds
            h, m, sec = stamp.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)

        return [(seconds(c.start), c.text) for c in webvtt.from_buffer(io.StringIO(text)).captions]

    def ass(text: str) -> list[tuple[float, str]]:
        return [(e.start / 1000, f"{e.style}: {e.plaintext}") for e in pysubs2.SSAFile.from_string(text)]

    fps = float(track_fps)
    return {
        "srt": ("srt", lambda t: [(s.start.total_seconds(), s.content) for s in srt.parse(t)]),
        "vtt": ("webvtt-py", vtt),
        "ass": ("pysubs2", ass),
        "json": ("json", lambda t: [(c["start_ms"] / 1000, c["label"]) for c in json.loads(t)["cues"]]),
        "jsonl": (
            "json lines",
            lambda t: [(json.loads(ln)["start_ms"] / 1000, json.loads(ln)["label"]) for ln in t.splitlines()],
        ),
        "csv": ("csv", lambda t: _tsv(t, ",")),
        "edl": ("otio cmx_3600", lambda t: _otio_markers(t, "cmx_3600", rate=fps)),
        "resolve-edl": ("otio cmx_3600", lambda t: _otio_markers(t, "cmx_3600", rate=fps)),
        "selects-edl": ("otio cmx_3600", lambda t: _otio_markers(t, "cmx_3600", rate=fps)),
        "fcpxml": ("otio fcpx_xml", lambda t: _otio_markers(t, "fcpx_xml")),
        "fcp7xml": ("otio fcp_xml", lambda t: _otio_markers(t, "fcp_xml")),
        "otio": ("otio", lambda t: _otio_markers(t, "otio_json")),
        "avid": ("csv (tab)", _tsv),
        "audacity": (
            "csv (tab)",
            lambda t: [(float(r[0]), r[2]) for r in csv.reader(io.StringIO(t), delimiter="\t")],
        ),
        "reaper": ("csv", lambda t: _tsv(t, ",")),
        "audition": ("csv (tab)", _tsv),
        "chapters": (
            "regex",
            lambda t: [(math.nan, ln) for ln in t.splitlines() if re.match(r"^\d+:\d\d", ln)],
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("track", type=Path)
    parser.add_argument("--start-tc", default=None)
    args = parser.parse_args()
    track = load_track(args.track)
    options = exporters.ExportOptions(start_tc=args.start_tc)
    fps = options.fps or track.media.fps or 25
    for fmt, (reader, read) in _readers(float(fps)).items():
        try:
            text = exporters.render(track, fmt, options)
        except EmotagError as exc:
            print(f"{fmt:12} not exported: {exc}")
            continue
        try:
            items = read(text)
        except Exception as exc:  # report, don't hide: this is what the check is for
            print(f"{fmt:12} {reader:14} FAILED to read: {type(exc).__name__}: {exc}")
            continue
        when = "" if not items or math.isnan(items[0][0]) else f"{items[0][0]:.3f}s "
        first = f"{when}{items[0][1][:50]!r}" if items else "-"
        print(f"{fmt:12} {reader:14} {len(items):3d} items; first: {first}")


if __name__ == "__main__":
    main()
