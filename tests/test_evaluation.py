"""emotag.evaluation and `emotag eval`: a manifest built at test time (tones, espeak-ng speech, text)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotag.errors import DataError, InputError
from emotag.evaluation import evaluate, format_report, normalisation_groups, read_manifest
from emotag.fusion import FusionModel
from emotag.models.multimodal import MultimodalModel
from emotag.timeline import LABELS

sys.path.insert(0, str(Path(__file__).parent / "models"))
from stubs import KeywordTextBranch, ToneAudioBranch, tone  # noqa: E402

SR = 16000


def _wav(path: Path, samples: np.ndarray) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", str(SR), "-ac", "1", "-i", "pipe:0", str(path)],
        input=samples.astype("<f4").tobytes(),
        check=True,
    )
    return path


@pytest.fixture
def manifest(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    # one file, three 1 s segments: joy tone, anger tone, sadness tone (decoded once, cut three times)
    _wav(media / "tones.wav", np.concatenate([tone("joy"), tone("anger"), tone("sadness")]))
    subprocess.run(["espeak-ng", "-w", str(media / "speech.wav"), "the train leaves at noon"], check=True)
    rows = [
        "audio,start,end,text,label",
        "media/tones.wav,0,1,I am so happy,happy",  # both right (label via --label-map)
        "media/tones.wav,1,2,what a wonderful day,anger",  # words joy, voice anger: a clash
        "media/tones.wav,2,3,,sadness",  # audio only
        ",,,I am scared,fear",  # text only
        "media/speech.wav,,,the train leaves at noon,neutral",
        "media/tones.wav,0,1,I am happy,other",  # no such label: skipped and counted
    ]
    path = tmp_path / "MANIFEST.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def stub_model() -> MultimodalModel:
    tb, ab = KeywordTextBranch(), ToneAudioBranch()
    return MultimodalModel(tb, ab, FusionModel.untrained(tb.embedding_dim, ab.embedding_dim))


def test_read_manifest(manifest):
    rows, n, skipped = read_manifest(manifest, {"happy": "joy"})
    assert n == 6 and len(rows) == 5 and skipped == {"other": 1}
    assert rows[0].label == "joy" and rows[0].start == 0.0 and rows[0].end == 1.0
    assert rows[3].audio is None and rows[4].start is None
    assert rows[0].audio == manifest.parent / "media" / "tones.wav"


def test_evaluate_both(manifest, monkeypatch):
    import emotag.evaluation as ev

    decoded: list[Path] = []
    real = ev._decode
    monkeypatch.setattr(ev, "_decode", lambda p: decoded.append(p) or real(p))
    report = evaluate(manifest, model=stub_model(), label_map={"happy": "joy"}, batch_size=2)
    assert sorted(p.name for p in decoded) == ["speech.wav", "tones.wav"]  # each file decoded once
    fused, text, audio = report.scores
    assert (fused.name, text.name, audio.name) == ("fused", "text", "audio")
    assert report.rows == 6 and report.n_skipped == 1 and fused.n == 5
    assert text.n == 4 and audio.n == 4  # rows where that modality is present
    assert fused.confusion[LABELS.index("sadness")][LABELS.index("sadness")] == 1
    assert fused.confusion[LABELS.index("fear")][LABELS.index("fear")] == 1
    assert sum(map(sum, fused.confusion)) == 5
    assert 0.6 <= fused.accuracy <= 1.0
    assert report.mismatch_rate == pytest.approx(1 / 3)  # rows with both: joy/joy, joy/anger clash, speech
    d = report.to_dict()
    assert json.loads(json.dumps(d))["scores"]["fused"]["n"] == 5
    text_table = format_report(report)
    assert "fused" in text_table and "mismatch flagged on 33.3%" in text_table and "other x1" in text_table
    assert "voice normalisation" in text_table
    assert 0.0 < fused.ece_floor < 1.0 and d["scores"]["fused"]["ece_floor"] == fused.ece_floor
    assert "floor" in text_table.splitlines()[5]  # the ECE column has its floor beside it


def test_files_are_decoded_side_by_side_into_the_rows_of_the_manifest(tmp_path):
    import emotag.evaluation as ev
    from emotag.errors import MediaError

    names = []
    for i, line in enumerate(["one", "two words", "three little words", "four"]):
        subprocess.run(["espeak-ng", "-w", str(tmp_path / f"s{i}.wav"), line], check=True)  # 22.05 kHz
        names.append(f"s{i}.wav")
    _wav(tmp_path / "t.wav", np.concatenate([tone("joy"), tone("fear")]))  # 16 kHz PCM: read directly
    names.append("t.wav")
    lines = ["audio,start,end,label"] + [f"{n},,,neutral" for n in reversed(names)] + ["t.wav,1,2,fear"]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    rows, _, _ = read_manifest(tmp_path / "m.csv")
    seen: list[tuple[str, int, int]] = []
    segs = ev.build_segments(rows, lambda stage, done, total: seen.append((stage, done, total)))
    assert seen == [("decoding audio", k, 5) for k in range(1, 6)]
    for row, seg in zip(rows, segs, strict=True):
        assert row.audio is not None and seg.audio is not None
        whole = ev._decode(row.audio)
        expect = whole if row.start is None else whole[SR : 2 * SR]
        np.testing.assert_array_equal(seg.audio, expect)
    assert len({seg.audio.shape[0] for seg in segs}) == len(segs)  # each row got its own file's audio
    (tmp_path / "s2.wav").write_bytes(b"RIFF not really a wav")
    with pytest.raises((InputError, MediaError), match="s2.wav"):
        ev.build_segments(rows)


def test_evaluate_single_modality(manifest):
    report = evaluate(manifest, model=stub_model(), modality="text", label_map={"happy": "joy"})
    assert [s.name for s in report.scores] == ["text"] and report.mismatch_rate is None
    assert "voice normalisation" not in format_report(report)  # no voices were read
    # text-only: the audio-only sadness row has nothing to go on (uniform → argmax anger): wrong
    assert report.scores[0].confusion[LABELS.index("sadness")][LABELS.index("sadness")] == 0


def test_normalisation_groups_follow_speaker_then_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "audio,text,label,speaker\n"
        "a.wav,,joy,ann\n"  # 0
        "b.wav,,joy,ann\n"  # 1: same speaker, other file
        "a.wav,,joy,\n"  # 2: no speaker: grouped by file with nothing else (row 0 is ann's)
        "c.wav,,joy,\n"  # 3
        "c.wav,,joy,\n"  # 4
        ",hello,joy,\n"  # 5: text only, no speaker
    )
    rows, _, _ = read_manifest(path)
    assert rows[0].speaker == "ann" and rows[2].speaker == ""
    assert normalisation_groups(rows, "auto") == [[0, 1], [2], [3, 4], [5]]
    assert normalisation_groups(rows, "speaker") == [[0, 1], [2], [3], [4], [5]]
    assert normalisation_groups(rows, "file") == [[0, 2], [1], [3, 4], [5]]
    assert normalisation_groups(rows, "manifest") == [[0, 1, 2, 3, 4], [5]]
    assert normalisation_groups(rows, "none") == [[0], [1], [2], [3], [4], [5]]


def test_speaker_names_group_whatever_their_case_or_spacing(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "audio,text,label,speaker\n"
        "a.wav,,joy,Ann Lee\nb.wav,,joy,ANN LEE\nc.wav,,joy,ann  lee\nd.wav,,joy,Bo\n"
    )
    rows, _, _ = read_manifest(path)
    assert normalisation_groups(rows, "speaker") == [[0, 1, 2], [3]]


def test_clips_of_unknown_speakers_are_normalised_together(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "audio,start,end,label,speaker\n"
        "a.wav,,,joy,\n"  # 0: a corpus of one-clip files, no speakers ...
        "b.wav,,,anger,\n"  # 1
        "long.wav,0,2,joy,\n"  # 2: two cues of one recording: their own group
        "long.wav,2,4,sadness,\n"  # 3
        "c.wav,,,fear,\n"  # 4: ... one group with rows 0 and 1
        "d.wav,,,joy,bob\n"  # 5: a known speaker keeps his own group
    )
    rows, _, _ = read_manifest(path)
    assert normalisation_groups(rows, "auto") == [[0, 1, 4], [2, 3], [5]]
    assert normalisation_groups(rows, "file") == [[0], [1], [2, 3], [4], [5]]
    with pytest.raises(DataError, match="grouping"):
        normalisation_groups(rows, "actor")


def test_evaluate_binds_the_model_to_each_group(manifest, monkeypatch):
    model = stub_model()
    seen: list[int] = []
    real = MultimodalModel.for_file

    def spy(self, segments):
        seen.append(len(segments))
        return real(self, segments)

    monkeypatch.setattr(MultimodalModel, "for_file", spy)
    grouped = evaluate(manifest, model=model, label_map={"happy": "joy"}, batch_size=2)
    assert seen == [3]  # the three segments of tones.wav; speech.wav and the text row stand alone
    assert grouped.groups == 1 and "1 group(s)" in format_report(grouped)
    seen.clear()
    alone = evaluate(manifest, model=model, label_map={"happy": "joy"}, group_by="none")
    assert seen == [] and alone.groups == 0
    # the stub has no file statistics: the same predictions either way, in manifest order
    assert grouped.scores == alone.scores


def test_manifest_errors(tmp_path):
    with pytest.raises(InputError):
        read_manifest(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("audio,text\nx.wav,hi\n")
    with pytest.raises(DataError, match="no 'label' column"):
        read_manifest(bad)
    bad.write_text("audio,text,label\n,,joy\n")
    with pytest.raises(DataError, match="neither audio nor text"):
        read_manifest(bad)
    bad.write_text("text,start,label\nhi,soon,joy\n")
    with pytest.raises(DataError, match="start 'soon'"):
        read_manifest(bad)
    bad.write_text("text,label\nhi,other\n")
    with pytest.raises(DataError, match="no row has a usable label"):
        evaluate(bad, model=stub_model())
    bad.write_text("text,label\n")
    with pytest.raises(DataError, match="bad.csv: a header and no rows"):
        evaluate(bad, model=stub_model())
    bad.write_text("")
    with pytest.raises(DataError, match="bad.csv: empty; the first line must be the header"):
        read_manifest(bad)
    for start, end, message in [
        ("nan", "", "start 'nan'"),
        ("-1", "2", "start '-1'"),
        ("1", "inf", "end 'inf'"),
        ("3", "1", "bad.csv:2: end 1 s is not after start 3 s"),
        ("2", "2", "end 2 s is not after start 2 s"),
    ]:
        bad.write_text(f"text,start,end,label\nhi,{start},{end},joy\n")
        with pytest.raises(DataError, match=message):
            read_manifest(bad)


def test_rows_that_start_past_the_end_of_their_audio_are_refused(manifest):
    """tones.wav is 3 s long: a row starting at 5 s names its file and line instead of losing its audio."""
    text = manifest.read_text().replace("media/tones.wav,2,3,,sadness", "media/tones.wav,5,6,,sadness")
    manifest.write_text(text)
    with pytest.raises(
        DataError, match=r"tones.wav: manifest line 4 starts at 5 s, at or past the end of the audio"
    ):
        evaluate(manifest, model=stub_model(), label_map={"happy": "joy"})


@pytest.mark.parametrize("sep", [";", "\t"])
def test_manifests_saved_with_semicolons_or_tabs_are_read(manifest, sep):
    """A spreadsheet in a comma-decimal locale saves "CSV" with semicolons (and a BOM); text keeps commas."""
    lines = manifest.read_text().splitlines()
    lines[1] = "media/tones.wav,0,1,Oh, I am so happy,happy"
    fields = [line.split(",", 3)[:3] + line.split(",", 3)[3].rsplit(",", 1) for line in lines]
    other = manifest.with_name("other.csv")
    other.write_text("\ufeff" + "\n".join(sep.join(f) for f in fields) + "\n", encoding="utf-8")
    rows, n, skipped = read_manifest(other, {"happy": "joy"})
    assert n == 6 and len(rows) == 5 and skipped == {"other": 1}
    assert rows[0].text == "Oh, I am so happy" and rows[0].label == "joy" and rows[0].end == 1.0
    assert [(r.text, r.label, r.start, r.end) for r in rows[1:]] == [
        (r.text, r.label, r.start, r.end) for r in read_manifest(manifest, {"happy": "joy"})[0][1:]
    ]


def test_cli_eval(manifest, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import emotag.models.audio as audio_mod
    import emotag.models.text as text_mod
    from emotag.cli import cli

    monkeypatch.setattr(text_mod, "load_text_branch", lambda spec, d: KeywordTextBranch())
    monkeypatch.setattr(audio_mod, "load_audio_branch", lambda spec, d: ToneAudioBranch())
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "config.json").write_text(json.dumps({"name": "stub", "labels": list(LABELS)}))
    runner = CliRunner()
    res = runner.invoke(
        cli, ["-q", "eval", str(manifest), "--model", str(mdir), "--json", "--label-map", "happy=joy"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["model"] == "stub" and data["scored"] == 5 and data["skipped"] == {"other": 1}
    res = runner.invoke(cli, ["-q", "eval", str(manifest), "--model", str(mdir), "--modality", "audio"])
    assert res.exit_code == 0 and "audio" in res.output and "confusion" in res.output
    res = runner.invoke(cli, ["eval", str(tmp_path / "nope.csv"), "--model", str(mdir)])
    assert res.exit_code == 2 and "no such manifest" in res.output
    res = runner.invoke(cli, ["eval", str(manifest), "--label-map", "happy"])
    assert res.exit_code == 2 and "not old=new" in res.output


def test_cli_eval_writes_every_scored_row_for_error_analysis(manifest, tmp_path, monkeypatch):
    """--predictions: one CSV row per scored manifest row, read back with the csv module; refused, untouched,
    when it exists (without --force) or cannot be written."""
    import csv

    from click.testing import CliRunner

    import emotag.models.audio as audio_mod
    import emotag.models.text as text_mod
    from emotag.cli import cli

    monkeypatch.setattr(text_mod, "load_text_branch", lambda spec, d: KeywordTextBranch())
    monkeypatch.setattr(audio_mod, "load_audio_branch", lambda spec, d: ToneAudioBranch())
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "config.json").write_text(json.dumps({"name": "stub", "labels": list(LABELS)}))
    out = tmp_path / "rows.csv"
    args = ["-q", "eval", str(manifest), "--model", str(mdir), "--json", "--label-map", "happy=joy"]
    res = CliRunner().invoke(cli, [*args, "--predictions", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["line"] for r in rows] == ["2", "3", "4", "5", "6"]  # line 7's label maps to nothing
    assert [r["label"] for r in rows] == ["joy", "anger", "sadness", "fear", "neutral"]
    assert rows[0]["audio"] == "media/tones.wav" and rows[0]["start"] == "0" and rows[0]["end"] == "1"
    assert (
        rows[2]["text"] == "" and rows[2]["text_predicted"] == "" and rows[2]["audio_predicted"] == "sadness"
    )
    assert rows[3]["audio"] == "" and rows[3]["audio_predicted"] == "" and rows[3]["mismatch"] == ""
    correct = [int(r["correct"]) for r in rows]
    assert correct == [int(r["predicted"] == r["label"]) for r in rows]
    assert abs(sum(correct) / len(rows) - report["scores"]["fused"]["accuracy"]) < 1e-9
    for r in rows:
        probs = [float(r[f"p_{label}"]) for label in LABELS]
        assert abs(sum(probs) - 1) < 1e-3 and LABELS[probs.index(max(probs))] == r["predicted"]
        assert abs(max(probs) - float(r["confidence"])) < 1e-4
    assert rows[1]["mismatched"] == "1"  # joyful words, angry tone
    before = out.read_bytes()
    res = CliRunner().invoke(cli, [*args, "--predictions", str(out)])
    assert res.exit_code == 5 and "output exists; pass --force" in res.output and out.read_bytes() == before
    res = CliRunner().invoke(cli, [*args, "--predictions", str(tmp_path / "no" / "rows.csv")])
    assert res.exit_code == 5 and "pass a --predictions path in a writable directory" in res.output
    res = CliRunner().invoke(cli, [*args, "--modality", "text", "--predictions", str(out), "--force"])
    assert res.exit_code == 0 and out.read_bytes() != before
    source = manifest.read_bytes()
    res = CliRunner().invoke(cli, [*args, "--predictions", str(manifest), "--force"])  # the manifest itself
    assert res.exit_code == 5 and "it is an input of this run" in res.output
    assert manifest.read_bytes() == source


@pytest.mark.slow
def test_evaluate_default_model_on_speech(manifest):
    report = evaluate(manifest, label_map={"happy": "joy"})
    fused = report.score("fused")
    assert fused is not None and fused.n == 5
    assert report.score("text") is not None and report.score("text").n == 4


def test_speaker_grouping_changes_a_real_audio_branch(tmp_path):
    """With the built-in audio network (random weights), per-speaker statistics change its input."""
    import torch

    from emotag.models.audio import AudioBranch, AudioNetConfig, build_net

    lines = ["the train leaves at noon", "I never said that", "where are my keys", "call me back", "not now"]
    rows = ["audio,label,speaker"]
    for i, line in enumerate(lines):
        wav = tmp_path / f"{i}.wav"
        subprocess.run(["espeak-ng", "-p", str(20 + 15 * i), "-w", str(wav), line], check=True)
        rows.append(f"{i}.wav,neutral,spk")
    path = tmp_path / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    torch.manual_seed(0)
    cfg = AudioNetConfig()
    p = cfg.n_prosody
    ab = AudioBranch([build_net(cfg)], cfg, np.zeros(p, np.float32), np.ones(p, np.float32))
    model = MultimodalModel(None, ab, FusionModel.untrained(0, ab.embedding_dim), modality="audio")
    grouped = evaluate(path, model=model, modality="audio")
    alone = evaluate(path, model=model, modality="audio", group_by="none")
    assert grouped.groups == 1 and alone.groups == 0
    assert grouped.scores[0].n == alone.scores[0].n == 5
    assert grouped.scores[0].ece != alone.scores[0].ece
