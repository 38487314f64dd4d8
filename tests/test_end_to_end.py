"""The real embedded model end to end on the bundled sample (espeak-ng speech + sidecar SRT): slow."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from emotag.cli import cli
from emotag.timeline import LABELS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, tools: None) -> Path:
    sys.path.insert(0, str(ROOT / "samples"))
    try:
        import make_sample
    finally:
        sys.path.pop(0)
    return make_sample.build(tmp_path_factory.mktemp("sample"))


@pytest.mark.slow
def test_real_model_tags_the_sample(sample: Path) -> None:
    result = CliRunner().invoke(cli, ["-q", "tag", str(sample), "--export", "srt,json,resolve-edl,fcpxml"])
    assert result.exit_code == 0, result.output
    data = json.loads(sample.with_name("interview.emotag.json").read_text(encoding="utf-8"))
    cues = data["cues"]
    assert len(cues) == 9 and data["source"].startswith("sidecar:")
    for cue in cues:
        assert set(cue["probs"]) == set(LABELS)
        assert math.isclose(sum(cue["probs"].values()), 1.0, abs_tol=1e-4)
        assert -1 <= cue["valence"] <= 1 and -1 <= cue["arousal"] <= 1
        assert cue["text_evidence"] is not None and cue["audio_evidence"] is not None
        assert 0 <= cue["mismatch"] <= 1
    by_text = {c["text"]: c for c in cues}
    # the words of these lines leave no doubt; the text branch alone must read them right
    assert (
        by_text["We won the award! I can't believe it, this is the best day ever!"]["text_evidence"]["label"]
        == "joy"
    )
    assert (
        by_text["I miss them so much. Nothing has felt right since."]["text_evidence"]["label"] == "sadness"
    )
    # fused: the joyful line is joy and positive, the sad one sad and negative; the flat statement's words
    # carry no evidence, so its label is the voice's, and neutral words never clash with a voice; the glad
    # words in a sour voice are flagged
    award = by_text["We won the award! I can't believe it, this is the best day ever!"]
    assert award["label"] == "joy" and award["valence"] > 0.2 and not award["mismatched"]
    sad = by_text["I miss them so much. Nothing has felt right since."]
    assert sad["label"] == "sadness" and sad["valence"] < 0
    flat = by_text["The report is due on Friday at noon."]
    assert flat["text_evidence"]["label"] == "neutral"
    assert flat["label"] == flat["audio_evidence"]["label"] and not flat["mismatched"]
    assert by_text["Oh, great. Another meeting. Just what I needed."]["mismatched"]
    srt_text = sample.with_name("interview.emotag.srt").read_text(encoding="utf-8")
    assert srt_text.count(" --> ") == 9
    assert "|C:ResolveColor" in sample.with_name("interview.emotag.resolve.edl").read_text(encoding="utf-8")


@pytest.mark.slow
def test_cnn_audio_branch_tags_the_sample(sample: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["-q", "tag", str(sample), "--audio-model", "cnn", "-o", str(tmp_path), "--force"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "interview.emotag.json").read_text(encoding="utf-8"))
    assert data["model"].endswith("+cnn") and len(data["cues"]) == 9
    by_text = {c["text"]: c for c in data["cues"]}
    assert by_text["We won the award! I can't believe it, this is the best day ever!"]["label"] == "joy"
    assert by_text["I miss them so much. Nothing has felt right since."]["label"] == "sadness"


@pytest.mark.slow
@pytest.mark.parametrize("named_by", ["vtt-voice", "srt-label"])
def test_naming_the_speakers_reads_each_voice_against_its_own(
    tmp_path: Path, tools: None, named_by: str
) -> None:
    """Two voices (low male, high female) say the same lines in one file: read against the whole file, the
    high voice sounds different on every line; read against each speaker's own cues (named by WebVTT
    ``<v>`` or by ``[SPEAKER_00]: `` labels in an SRT), the two voices' readings of the same line come
    much closer."""
    from tests import mediagen

    low = {"voice": "en-us+m3", "pitch": 20}
    high = {"voice": "en-us+f3", "pitch": 80, "speed": 175}
    lines = [(t, kw) for t in mediagen.SPEAKER_LINES for kw in (low, high)]
    placed = mediagen.concat_speech(lines, tmp_path / "two.wav")
    who = ["Low", "High"] * len(mediagen.SPEAKER_LINES)
    if named_by == "vtt-voice":
        mediagen.write_vtt([(*c, w) for c, w in zip(placed, who, strict=True)], tmp_path / "two.vtt")
    else:
        labelled = [(s, e, f"[{w}]: {t}") for (s, e, t), w in zip(placed, who, strict=True)]
        mediagen.write_srt(labelled, tmp_path / "two.srt")

    def gap(group_by: str) -> float:
        out = tmp_path / group_by
        out.mkdir()
        args = ["-q", "tag", str(tmp_path / "two.wav"), "--modality", "audio", "-o", str(out)]
        result = CliRunner().invoke(cli, [*args, "--group-by", group_by])
        assert result.exit_code == 0, result.output
        cues = json.loads((out / "two.emotag.json").read_text(encoding="utf-8"))["cues"]
        assert [c["speaker"] for c in cues] == who
        probs = [[c["probs"][lb] for lb in LABELS] for c in cues]
        return sum(
            sum(abs(a - b) for a, b in zip(probs[i], probs[i + 1], strict=True))
            for i in range(0, len(probs), 2)
        )

    by_speaker, by_file = gap("speaker"), gap("file")
    assert by_speaker < 0.8 * by_file, (by_speaker, by_file)
    assert gap("none") > 0  # each cue alone still runs
