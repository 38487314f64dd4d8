"""The saved track JSON: exact round trips, schema fields, and one-line errors for bad files."""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent / "exporters"))

from exporter_tracks import CASES, make  # noqa: E402

from emotag.errors import DataError, InputError  # noqa: E402
from emotag.timeline import LABELS, Cue, Emotion, Media, TaggedCue, Track  # noqa: E402
from emotag.trackfile import SCHEMA, dumps, load_track, loads, track_from_dict, track_to_dict  # noqa: E402


@pytest.mark.parametrize("case", CASES)
def test_round_trip_exact(case: str, tmp_path: Path) -> None:
    track = make(case)
    path = tmp_path / "t.emotag.json"
    path.write_text(dumps(track), encoding="utf-8")
    assert load_track(path) == track
    assert loads(dumps(track, indent=None)) == track
    assert "\n" not in dumps(track, indent=None).rstrip("\n")


def test_schema_fields() -> None:
    d = json.loads(dumps(make("df2997")))
    assert d["schema"] == SCHEMA == "emotag.track/1"
    assert isinstance(d["emotag"], str) and d["emotag"]
    assert d["media"]["fps"] == "30000/1001"
    assert d["media"]["start_timecode"] == "00:00:00;00" and d["media"]["drop_frame"] is True
    assert d["labels"] == list(LABELS)
    assert d["model"] == "fixture-model" and d["source"] == "sidecar:talk.srt"
    assert d["warnings"] == ["cue 4 is zero-length"]
    c = d["cues"][0]
    assert c["start_ms"] == 59_900 and c["start"] == "00:00:59,900" and c["end"] == "00:01:02,400"
    assert c["text"] == "Hello, <i>world</i>!" and c["plain"] == "Hello, world!"
    assert c["speaker"] == "Ana" and c["label"] == "joy"
    assert c["confidence"] == pytest.approx(0.82)
    assert list(c["probs"]) == list(LABELS) and sum(c["probs"].values()) == pytest.approx(1)
    assert set(c["text_evidence"]) == {"probs", "valence", "arousal", "label"}
    assert c["text_evidence"]["label"] == "joy"
    assert d["cues"][2]["text_evidence"] is None
    assert d["cues"][4]["mismatched"] is True and d["cues"][4]["mismatch"] == 0.8
    # non-ASCII stays readable in the file
    assert "東京" in dumps(make("p25"))


def test_audio_only_fps_null() -> None:
    d = track_to_dict(make("audio"))
    assert d["media"]["fps"] is None
    assert track_from_dict(d).media.fps is None


_floats = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
_va = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


@st.composite
def _emotions(draw: st.DrawFn) -> Emotion:
    raw = draw(st.lists(_floats, min_size=len(LABELS), max_size=len(LABELS)))
    return Emotion(tuple(raw), draw(_va), draw(_va))


@st.composite
def _tracks(draw: st.DrawFn) -> Track:
    n = draw(st.integers(0, 5))
    cues = []
    for i in range(n):
        start = draw(st.integers(0, 10**9))
        cue = Cue(
            i + 1, start, start + draw(st.integers(0, 10**6)), draw(st.text()), draw(st.none() | st.text())
        )
        cues.append(
            TaggedCue(
                cue,
                draw(_emotions()),
                draw(st.none() | _emotions()),
                draw(st.none() | _emotions()),
                draw(_floats),
                draw(st.booleans()),
            )
        )
    fps = draw(st.none() | st.sampled_from([Fraction(25), Fraction(30000, 1001), Fraction(24000, 1001)]))
    media = Media(
        draw(st.text(min_size=1)),
        draw(st.integers(0, 10**9)),
        fps,
        start_timecode=draw(st.none() | st.just("01:00:00:00")),
        drop_frame=draw(st.booleans()),
    )
    return Track(
        media,
        tuple(cues),
        draw(st.text()),
        draw(st.text()),
        warnings=tuple(draw(st.lists(st.text(), max_size=3))),
    )


@settings(max_examples=60, deadline=None)
@given(track=_tracks())
def test_round_trip_property(track: Track) -> None:
    assert loads(dumps(track)) == track


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_track(tmp_path / "nope.emotag.json")
    with pytest.raises(InputError, match="is a directory"):
        load_track(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="UTF-8"):
        load_track(p)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "not json at all {", "not valid JSON"),
        (lambda d: json.dumps([1, 2]), "expected an object"),
        (lambda d: json.dumps({**d, "schema": "other/1"}), "not an emotag track file"),
        (lambda d: json.dumps({**d, "schema": "emotag.track/2"}), "not supported"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "cues"}), "missing field 'cues'"),
        (lambda d: json.dumps({**d, "labels": ["joy"]}), "labels"),
        (lambda d: json.dumps({**d, "media": {**d["media"], "fps": "fast"}}), "fps"),
        (lambda d: json.dumps({**d, "cues": [{**d["cues"][0], "start_ms": "1s"}]}), r"cues\[0\].*start_ms"),
        (lambda d: json.dumps({**d, "cues": [{**d["cues"][0], "start_ms": -5}]}), r"cues\[0\].*negative"),
        (lambda d: json.dumps({**d, "cues": [{**d["cues"][0], "probs": {"joy": 1}}]}), "lacks label"),
    ],
)
def test_bad_files_raise_one_line_data_errors(tmp_path: Path, mutate: object, message: str) -> None:
    d = track_to_dict(make("p25"))
    p = tmp_path / "bad.emotag.json"
    p.write_text(mutate(d), encoding="utf-8")  # type: ignore[operator]
    with pytest.raises(DataError, match=message) as info:
        load_track(p)
    text = str(info.value)
    assert "\n" not in text and str(p) in text
