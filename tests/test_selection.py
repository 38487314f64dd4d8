"""Filtering and merging of tagged cues into marker regions, and the palette behind marker colours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emotag.errors import InputError
from emotag.palette import AVID_COLORS, DEFAULT_PALETTE, OTIO_COLORS, RESOLVE_COLORS, load_palette, parse_rgb
from emotag.selection import merge_regions, select_cues
from emotag.timeline import LABELS, Cue, Emotion, TaggedCue


def _tc(
    i: int,
    start: int,
    end: int,
    label: str,
    p: float = 0.8,
    mismatched: bool = False,
    text: str | None = None,
    speaker: str | None = None,
) -> TaggedCue:
    rest = (1 - p) / (len(LABELS) - 1)
    probs = {lab: (p if lab == label else rest) for lab in LABELS}
    return TaggedCue(
        Cue(i, start, end, text if text is not None else f"<i>cue {i}</i>", speaker),
        Emotion.from_mapping(probs),
        mismatched=mismatched,
        mismatch=0.9 if mismatched else 0.1,
    )


CUES = [
    _tc(1, 0, 1000, "joy", 0.9, speaker="A"),
    _tc(2, 1500, 2500, "joy", 0.5, speaker="A"),
    _tc(3, 6000, 7000, "joy", 0.7, speaker="B"),
    _tc(4, 7100, 8000, "neutral", 0.6),
    _tc(5, 8200, 9000, "anger", 0.95, mismatched=True),
]


def test_select_filters() -> None:
    assert [c.cue.index for c in select_cues(CUES, min_confidence=0.65)] == [1, 3, 5]
    assert [c.cue.index for c in select_cues(CUES, emotions=frozenset({"anger", "neutral"}))] == [4, 5]
    assert [c.cue.index for c in select_cues(CUES, skip_neutral=True)] == [1, 2, 3, 5]
    assert [c.cue.index for c in select_cues(CUES, mismatch_only=True)] == [5]
    assert select_cues(CUES) == CUES


def test_no_merge_is_one_region_per_cue() -> None:
    regions = merge_regions(CUES)
    assert [(r.start_ms, r.end_ms, r.label) for r in regions] == [
        (c.start_ms, c.end_ms, c.label) for c in CUES
    ]
    assert regions[0].text == "cue 1" and regions[0].name == "joy 0.90"
    assert regions[4].name == "anger 0.95 mismatch" and regions[4].mismatched


def test_merge_within_gap_weighted_confidence() -> None:
    regions = merge_regions(CUES, merge_gap_ms=500)
    assert [(r.start_ms, r.end_ms, r.label, len(r.cues)) for r in regions] == [
        (0, 2500, "joy", 2),
        (6000, 7000, "joy", 1),
        (7100, 8000, "neutral", 1),
        (8200, 9000, "anger", 1),
    ]
    joy = regions[0]
    assert joy.confidence == pytest.approx((0.9 * 1000 + 0.5 * 1000) / 2000)
    assert joy.text == "cue 1 cue 2" and joy.speaker == "A" and joy.index == 1
    assert sum(joy.probs().values()) == pytest.approx(1)
    # the gap is inclusive; a different label in between always splits
    assert len(merge_regions(CUES, merge_gap_ms=499)) == 5
    assert [len(r.cues) for r in merge_regions(CUES, merge_gap_ms=10**6)] == [3, 1, 1]


def test_merge_weights_by_duration() -> None:
    long, short = _tc(1, 0, 9000, "sadness", 0.9), _tc(2, 9000, 10000, "sadness", 0.4)
    (region,) = merge_regions([long, short], merge_gap_ms=0)
    assert region.confidence == pytest.approx(0.85)
    zero = [_tc(1, 100, 100, "joy", 0.6), _tc(2, 100, 100, "joy", 0.8)]
    (region,) = merge_regions(zero, merge_gap_ms=0)
    assert region.confidence == pytest.approx(0.7) and region.duration_ms == 0


def test_overlapping_cues_merge_and_mixed_speakers() -> None:
    a, b = _tc(1, 0, 5000, "fear", speaker="A"), _tc(2, 1000, 2000, "fear", speaker="B")
    (region,) = merge_regions([a, b], merge_gap_ms=0)
    assert (region.start_ms, region.end_ms) == (0, 5000) and region.speaker is None


def test_one_speaker_spelt_two_ways_is_one_speaker() -> None:
    a, b = _tc(1, 0, 5000, "fear", speaker="ANNA"), _tc(2, 1000, 2000, "fear", speaker="Anna")
    (region,) = merge_regions([a, b], merge_gap_ms=0)
    assert region.speaker == "ANNA"


@settings(max_examples=100, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.integers(0, 5000), st.integers(0, 3000), st.sampled_from(LABELS[:3])), max_size=12
    ),
    gap=st.none() | st.integers(0, 4000),
)
def test_merge_properties(spans: list[tuple[int, int, str]], gap: int | None) -> None:
    t, cues = 0, []
    for i, (pause, length, label) in enumerate(spans):
        t += pause
        cues.append(_tc(i + 1, t, t + length, label))
        t += length
    regions = merge_regions(cues, gap)
    assert [c for r in regions for c in r.cues] == cues  # every cue once, order kept
    for r in regions:
        assert {c.label for c in r.cues} == {r.label}
        assert r.start_ms == r.cues[0].start_ms and r.end_ms == max(c.end_ms for c in r.cues)
        assert (
            min(c.confidence for c in r.cues) - 1e-9
            <= r.confidence
            <= max(c.confidence for c in r.cues) + 1e-9
        )
    for a, b in zip(regions, regions[1:], strict=False):
        if gap is not None and a.label == b.label:
            assert b.start_ms - a.end_ms > gap  # would have merged otherwise
    if gap is None:
        assert len(regions) == len(cues)


def test_default_palette_covers_every_host() -> None:
    for label in LABELS:
        c = DEFAULT_PALETTE[label]
        assert c.resolve in RESOLVE_COLORS and c.avid in AVID_COLORS and c.otio in OTIO_COLORS
        assert 0 <= c.premiere < 8 and c.hex.startswith("#") and len(c.hex) == 7
    assert len({DEFAULT_PALETTE[label].resolve for label in LABELS}) == len(LABELS)  # distinct in Resolve


def test_palette_file(tmp_path: Path) -> None:
    p = tmp_path / "palette.json"
    p.write_text(
        json.dumps(
            {
                "joy": "#0000FF",
                "sadness": [255, 0, 0],
                "mismatch": "#FFFFFF",
                "anger": {"rgb": "#00FF00", "avid": "cyan", "premiere": 7, "otio": "PINK"},
            }
        )
    )
    pal = load_palette(p)
    assert pal["joy"].rgb == (0, 0, 255) and pal["joy"].resolve == "Blue" and pal["joy"].avid == "blue"
    assert pal["sadness"].resolve == "Red" and pal["sadness"].otio == "RED"
    assert pal["anger"].avid == "cyan" and pal["anger"].premiere == 7 and pal["anger"].otio == "PINK"
    assert pal.mismatch.avid == "white"
    assert pal["fear"] == DEFAULT_PALETTE["fear"]  # untouched labels keep the default


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"happy": "#FFFFFF"}', "unknown emotion 'happy'"),
        ('{"joy": "yellow"}', "not a colour"),
        ('{"joy": {"resolve": "Orange"}}', "Resolve has no colour 'Orange'"),
        ('{"joy": {"premiere": 9}}', "0-7"),
        ("[1, 2]", "JSON object"),
        ("{", "not valid JSON"),
    ],
)
def test_bad_palette_files(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "p.json"
    p.write_text(content)
    with pytest.raises(InputError, match=message):
        load_palette(p)
    with pytest.raises(InputError, match="no such palette file"):
        load_palette(tmp_path / "missing.json")


def test_parse_rgb() -> None:
    assert parse_rgb("#fdd835") == (253, 216, 53) == parse_rgb("FDD835") == parse_rgb([253, 216, 53])
    for bad in ("#12345", [1, 2], [1, 2, 300], True):
        with pytest.raises(ValueError):
            parse_rgb(bad)
