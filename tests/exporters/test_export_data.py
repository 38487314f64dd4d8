"""json, jsonl and csv outputs read back with the json and csv modules."""

from __future__ import annotations

import csv
import io
import json

import pytest
from exporter_tracks import CASES, make

from emotag.errors import ExportError
from emotag.exporters import ExportOptions, render
from emotag.exporters.csvfmt import COLUMNS
from emotag.timeline import LABELS
from emotag.trackfile import loads


@pytest.mark.parametrize("case", CASES)
def test_json_is_the_lossless_track(case: str) -> None:
    track = make(case)
    text = render(track, "json", ExportOptions(min_confidence=0.9))  # options never drop cues here
    assert loads(text) == track
    assert len(json.loads(text)["cues"]) == len(track)


@pytest.mark.parametrize("case", CASES)
def test_jsonl_one_object_per_selected_cue(case: str) -> None:
    track = make(case)
    options = ExportOptions(skip_neutral=True)
    lines = render(track, "jsonl", options).splitlines()
    rows = [json.loads(line) for line in lines]
    kept = [tc for tc in track if tc.label != "neutral"]
    assert [r["index"] for r in rows] == [tc.cue.index for tc in kept]
    for r, tc in zip(rows, kept, strict=True):
        assert (r["start_ms"], r["end_ms"], r["text"]) == (tc.start_ms, tc.end_ms, tc.cue.text)
        assert r["media"] == track.media.path and r["model"] == track.model
        assert tuple(r["probs"][label] for label in LABELS) == tc.emotion.probs


@pytest.mark.parametrize("case", CASES)
def test_csv_rows(case: str) -> None:
    track = make(case)
    reader = csv.DictReader(io.StringIO(render(track, "csv"), newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    rows = list(reader)
    assert len(rows) == len(track)
    for r, tc in zip(rows, track, strict=True):
        assert int(r["start_ms"]) == tc.start_ms and int(r["end_ms"]) == tc.end_ms
        assert r["label"] == tc.label and float(r["confidence"]) == tc.confidence
        assert [float(r[f"p_{label}"]) for label in LABELS] == list(tc.emotion.probs)
        assert r["mismatched"] == ("true" if tc.mismatched else "false")
        assert r["text"] == tc.cue.plain
        assert r["text_label"] == ("" if tc.text is None else tc.text.label)
        assert r["speaker"] == (tc.cue.speaker or "")


def test_csv_filters() -> None:
    rows = list(csv.DictReader(io.StringIO(render(make("p25"), "csv", ExportOptions(mismatch_only=True)))))
    assert [r["index"] for r in rows] == ["5"]


def test_mismatch_threshold_reflags_every_output() -> None:
    track = make("p25")  # mismatch scores 0.05, 0.1, 0, 0, 0.8 (flagged by the model), 0.02, 0.01

    def flagged(options: ExportOptions) -> list[str]:
        rows = csv.DictReader(io.StringIO(render(track, "csv", options), newline=""))
        return [r["index"] for r in rows if r["mismatched"] == "true"]

    assert flagged(ExportOptions()) == ["5"]
    assert flagged(ExportOptions(mismatch_threshold=0.08)) == ["2", "5"]
    assert flagged(ExportOptions(mismatch_threshold=0.9)) == []
    only = ExportOptions(mismatch_only=True, mismatch_threshold=0.08)
    assert [r["index"] for r in csv.DictReader(io.StringIO(render(track, "csv", only)))] == ["2", "5"]
    lossless = json.loads(render(track, "json", ExportOptions(mismatch_threshold=0.08)))
    assert [c["mismatched"] for c in lossless["cues"]] == [False, True, False, False, True, False, False]
    assert [c["mismatch"] for c in lossless["cues"]] == [tc.mismatch for tc in track]
    with pytest.raises(ExportError, match="--mismatch-threshold must be between 0 and 1"):
        ExportOptions(mismatch_threshold=1.5)
