"""The click CLI through CliRunner: outputs, exit codes, one-line errors, no half-written files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import srt
from click.testing import CliRunner

import emotag.models
from emotag.cli import cli
from tests import mediagen
from tests.conftest import KeywordModel


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose model loader returns the keyword model (the real model has its own slow tests)."""
    monkeypatch.setattr(emotag.models, "load_model", lambda *a, **k: KeywordModel())
    return CliRunner()


def _listing(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_tag_writes_srt_and_json_beside_the_media(runner: CliRunner, talk: Path, speech_media) -> None:
    _, cues = speech_media
    result = runner.invoke(cli, ["tag", str(talk)])
    assert result.exit_code == 0, result.output
    out_srt = talk.with_name("talk.emotag.srt")
    subs = list(srt.parse(out_srt.read_text(encoding="utf-8")))
    assert [(round(s.start.total_seconds() * 1000), round(s.end.total_seconds() * 1000)) for s in subs] == [
        (a, b) for a, b, _ in cues
    ]
    assert subs[0].content.startswith("[joy 0.80 mismatch] I am so happy")
    data = json.loads(talk.with_name("talk.emotag.json").read_text(encoding="utf-8"))
    assert [c["label"] for c in data["cues"]] == ["joy", "anger", "neutral"]
    assert "talk.emotag.srt" in result.stderr


def test_summary_says_how_many_speakers_the_subtitles_name(
    runner: CliRunner, talk: Path, speech_media
) -> None:
    _, cues = speech_media
    labelled = [(a, b, f"{who}: {t}") for (a, b, t), who in zip(cues, ["ANNA", "BEN", "Anna"], strict=True)]
    mediagen.write_srt(labelled, talk.with_name("talk.srt"))  # BEN opens one cue only: not taken as a name
    result = runner.invoke(cli, ["tag", str(talk), "--force"])
    assert result.exit_code == 0, result.output
    assert "3 cues (1 speaker named) from sidecar:" in result.stderr  # ANNA and Anna: one speaker
    data = json.loads(talk.with_name("talk.emotag.json").read_text(encoding="utf-8"))
    assert [c["speaker"] for c in data["cues"]] == ["ANNA", None, "Anna"]
    assert data["cues"][0]["text"].startswith("ANNA: ")  # the subtitles' own text is kept


def test_output_dir_and_export_formats(runner: CliRunner, talk: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(
        cli, ["-q", "tag", str(talk), "-o", str(out), "--export", "srt,resolve-edl,audacity"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["talk.emotag.srt", "talk.emotag.resolve.edl", "talk.emotag.audacity.txt"]
    )
    assert result.stderr == ""


def test_missing_output_dir_is_created(runner: CliRunner, talk: Path, tmp_path: Path) -> None:
    """`emotag tag *.mov -o tagged/` (the help's own example) makes the folder, parents included."""
    out = tmp_path / "tagged" / "day1"
    result = runner.invoke(cli, ["-q", "tag", str(talk), "-o", f"{out}/", "--export", "srt,audacity"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["talk.emotag.audacity.txt", "talk.emotag.srt"]


def test_output_dir_that_is_a_file_or_cannot_be_made(runner: CliRunner, talk: Path, tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        for target, needle in (
            (tmp_path / "taken", "it is a file, not a directory"),
            (locked / "new", "cannot create the directory"),
        ):
            result = runner.invoke(cli, ["tag", str(talk), "-o", str(target)])
            if needle.startswith("cannot") and (locked / "new").exists():  # running as a user who may write
                continue
            assert result.exit_code == 5, result.output
            lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1 and needle in lines[0] and str(target) in lines[0], result.stderr
    finally:
        locked.chmod(0o700)
    assert not list(talk.parent.glob("*.emotag.*"))


def test_json_to_stdout(runner: CliRunner, talk: Path) -> None:
    before = _listing(talk.parent)
    result = runner.invoke(cli, ["-q", "tag", str(talk), "-o", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["cues"]) == 3 and data["source"].startswith("sidecar:")
    assert _listing(talk.parent) == before


def test_existing_output_is_kept_without_force(runner: CliRunner, talk: Path) -> None:
    existing = talk.with_name("talk.emotag.srt")
    existing.write_text("precious", encoding="utf-8")
    result = runner.invoke(cli, ["tag", str(talk)])
    assert result.exit_code == 5
    assert "--force" in result.stderr and "Traceback" not in result.output
    assert existing.read_text(encoding="utf-8") == "precious"
    assert not talk.with_name("talk.emotag.json").exists()
    assert runner.invoke(cli, ["-q", "tag", str(talk), "--force"]).exit_code == 0
    assert existing.read_text(encoding="utf-8").startswith("1\n")


def test_the_subtitles_being_read_are_never_overwritten(runner: CliRunner, talk: Path) -> None:
    """--subs naming last run's tagged SRT, with --force: refused before any work, the file untouched."""
    assert runner.invoke(cli, ["-q", "tag", str(talk)]).exit_code == 0
    tagged = talk.with_name("talk.emotag.srt")
    before = tagged.read_bytes()
    result = runner.invoke(cli, ["tag", str(talk), "--subs", str(tagged), "--force"])
    assert result.exit_code == 5 and "Traceback" not in result.output
    assert f"{tagged}: cannot write output (it is an input of this run)" in result.stderr
    assert tagged.read_bytes() == before


def test_two_media_writing_the_same_outputs_are_refused_before_any_work(
    runner: CliRunner, talk: Path, tmp_path: Path
) -> None:
    """talk.mp4 from two folders into one -o DIR: the second overwrote the first's outputs (--force)."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = other / talk.name
    twin.write_bytes(talk.read_bytes())
    twin.with_suffix(".srt").write_bytes(talk.with_suffix(".srt").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(cli, ["tag", str(talk), str(twin), "-o", str(out), "--force"])
    assert (
        result.exit_code == 2
        and f"{talk} and {twin} would both write {out / 'talk.emotag.srt'}" in result.output
    )
    assert list(out.iterdir()) == []
    result = runner.invoke(cli, ["tag", str(talk), str(talk), "--force"])
    assert result.exit_code == 2 and "is named twice" in result.output
    assert runner.invoke(cli, ["-q", "tag", str(talk), str(twin), "--force"]).exit_code == 0  # beside each


def test_many_files_one_bad_does_not_stop_the_others(runner: CliRunner, talk: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.mp4"
    second.write_bytes(talk.read_bytes())
    (tmp_path / "second.srt").write_text(talk.with_suffix(".srt").read_text())
    missing = tmp_path / "missing.mp4"
    result = runner.invoke(cli, ["tag", str(talk), str(missing), str(second)])
    assert result.exit_code == 2
    assert talk.with_name("talk.emotag.srt").exists() and (tmp_path / "second.emotag.srt").exists()
    assert "2 of 3 files tagged; failed: " + str(missing) in result.stderr


def _bad_inputs(tmp_path: Path, speech_media) -> dict[str, tuple[Path, int, str]]:
    src, cues = speech_media
    cases: dict[str, tuple[Path, int, str]] = {}
    cases["missing"] = (tmp_path / "nope.mp4", 2, "no such file")
    (tmp_path / "folder").mkdir()
    cases["directory"] = (tmp_path / "folder", 2, "directory")
    silent = mediagen.make_no_audio_video(tmp_path / "silent.mp4")
    mediagen.write_srt(cues, tmp_path / "silent.srt")
    cases["no audio"] = (silent, 3, "no audio stream")
    broken = mediagen.truncate(src, tmp_path / "broken.mp4", 0.3)
    mediagen.write_srt(cues, tmp_path / "broken.srt")
    cases["truncated"] = (broken, 3, "broken.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(src.read_bytes())
    (tmp_path / "empty.srt").write_text("", encoding="utf-8")
    cases["empty subtitles"] = (empty, 4, "empty.srt")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(src.read_bytes())
    (tmp_path / "bad.srt").write_text("1\n00:00:01.000 -> 00:00:02\nhello\n", encoding="utf-8")
    cases["malformed timing"] = (bad, 4, "bad.srt")
    return cases


@pytest.mark.parametrize(
    "case", ["missing", "directory", "no audio", "truncated", "empty subtitles", "malformed timing"]
)
def test_bad_input_one_line_error_and_nothing_written(
    runner: CliRunner, tmp_path: Path, speech_media, case: str
) -> None:
    path, code, needle = _bad_inputs(tmp_path, speech_media)[case]
    before = _listing(tmp_path)
    result = runner.invoke(cli, ["tag", str(path)])
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("emotag: error: ") and needle in lines[0], result.stderr
    assert _listing(tmp_path) == before


def test_debug_shows_the_traceback(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["--debug", "tag", str(tmp_path / "nope.mp4")])
    assert result.exit_code != 0
    assert result.exception is not None and type(result.exception).__name__ == "InputError"


def test_subs_with_many_files_is_a_usage_error(runner: CliRunner, talk: Path) -> None:
    result = runner.invoke(cli, ["tag", str(talk), str(talk), "--subs", str(talk.with_suffix(".srt"))])
    assert result.exit_code == 2 and "one MEDIA file" in result.output


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from emotag.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0 and 'tag' in r.output, r.output\n"
        "names = ('torch', 'transformers', 'numpy', 'faster_whisper', 'whisper')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "emotag" in result.output


def test_frame_based_export_of_audio_only_media_fails_before_scoring(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, speech_media
) -> None:
    _, cues = speech_media
    wav = tmp_path / "voice.wav"
    mediagen.concat_speech(["Hello there."], wav)
    mediagen.write_srt(cues[:1], tmp_path / "voice.srt")
    calls: list[object] = []
    monkeypatch.setattr(emotag.models, "load_model", lambda *a, **k: calls.append(a) or KeywordModel())
    before = _listing(tmp_path)
    result = CliRunner().invoke(cli, ["tag", str(wav), "--export", "srt,edl"])
    assert result.exit_code == 6
    assert "audio-only: pass --fps" in result.stderr
    assert calls == [] and _listing(tmp_path) == before
    ok = CliRunner().invoke(cli, ["-q", "tag", str(wav), "--export", "srt,edl", "--fps", "25"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "voice.emotag.edl").read_text().startswith("TITLE:")


def test_hugging_face_models_replace_both_branches(talk: Path, tmp_path: Path) -> None:
    """--text-model / --audio-model with tiny local HF classifiers, through the real model loader."""
    from tests.tinymodels import tiny_audio_classifier, tiny_classifier

    (tmp_path / "audio_model").mkdir()
    text_dir = tiny_classifier(tmp_path, {0: "happy", 1: "angry", 2: "sad", 3: "other"})
    audio_dir = tiny_audio_classifier(tmp_path / "audio_model", {0: "ang", 1: "hap", 2: "sad", 3: "neu"})
    args = ["-q", "tag", str(talk), "-o", "-", "--text-model", str(text_dir), "--audio-model", str(audio_dir)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    cues = json.loads(result.stdout)["cues"]
    assert len(cues) == 3
    for cue in cues:
        for evidence in (cue["text_evidence"], cue["audio_evidence"]):
            assert abs(sum(evidence["probs"].values()) - 1) < 1e-4
            # neither tiny model has disgust, fear or surprise: those labels get nothing
            assert all(evidence["probs"][lab] == 0 for lab in ("disgust", "fear", "surprise"))
