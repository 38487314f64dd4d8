"""The exporter registry, export() file handling, extension discovery and the export CLI commands."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import stat
import textwrap
from fractions import Fraction
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from exporter_tracks import make

import emotag.exporters as ex
from emotag import atomicfile
from emotag.cli_export import export_options, options_from_cli, register
from emotag.errors import ExportError, OutputError, OutputExistsError, UnknownExporterError
from emotag.exporters import (
    BUILTINS,
    ExportOptions,
    export,
    export_many,
    get_exporter,
    infer_format,
    output_path,
)
from emotag.trackfile import dumps


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


# --------------------------------------------------------------------------- registry


def test_every_builtin_satisfies_the_protocol() -> None:
    found = ex.available()
    assert list(found)[: len(BUILTINS)] == list(BUILTINS)
    for name, exp in found.items():
        assert isinstance(exp, ex.Exporter)
        assert exp.name == name
        assert exp.default_filename_suffix.startswith(".emotag.") and exp.default_filename_suffix.endswith(
            exp.suffix
        )
        assert exp.description and "\n" not in exp.description


def test_unknown_format_lists_available() -> None:
    with pytest.raises(
        UnknownExporterError, match=r"unknown export format 'mp4'; available: .*resolve-edl.*srt"
    ):
        get_exporter("mp4")
    assert get_exporter("SRT").name == "srt"


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [
        ("a.srt", "srt"),
        ("a.emotag.srt", "srt"),
        ("a.vtt", "vtt"),
        ("a.ass", "ass"),
        ("a.json", "json"),
        ("a.jsonl", "jsonl"),
        ("a.csv", "csv"),
        ("a.edl", "edl"),
        ("a.emotag.resolve.edl", "resolve-edl"),
        ("a.resolve.edl", "resolve-edl"),
        ("A.SELECTS.EDL", "selects-edl"),
        ("a.fcpxml", "fcpxml"),
        ("a.xml", "fcp7xml"),
        ("a.avid.txt", "avid"),
        ("a.audacity.txt", "audacity"),
        ("a.txt", "avid"),
        ("a.reaper.csv", "reaper"),
        ("a.audition.csv", "audition"),
        ("a.otio", "otio"),
        ("a.chapters.txt", "chapters"),
    ],
)
def test_infer_format(filename: str, fmt: str) -> None:
    assert infer_format(filename) == fmt


def test_infer_format_unknown() -> None:
    with pytest.raises(UnknownExporterError):
        infer_format("x.mov")


def test_output_path() -> None:
    assert output_path("/v/interview.mp4", "srt") == Path("/v/interview.emotag.srt")
    assert output_path("/v/interview.mp4", "resolve-edl", "/out") == Path("/out/interview.emotag.resolve.edl")
    assert output_path("/v/interview.emotag.json", "edl") == Path("/v/interview.emotag.edl")


# --------------------------------------------------------------------------- export()


def test_export_writes_atomically_and_refuses_overwrite(tmp_path: Path) -> None:
    track = make("p25")
    path = export(track, tmp_path / "t.emotag.srt")
    first = path.read_bytes()
    assert _listing(tmp_path) == ["t.emotag.srt"]  # no temp file left behind
    path.write_text("edited by hand", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="--force"):
        export(track, path)
    assert path.read_text(encoding="utf-8") == "edited by hand"
    export(track, path, force=True)
    assert path.read_bytes() == first


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_exports_get_the_permissions_a_plain_open_gives(tmp_path: Path) -> None:
    """Not mkstemp's owner-only 0600: markers on shared storage must be readable by the next tool."""
    track = make("p25")
    old = os.umask(0o022)
    try:
        path = export(track, tmp_path / "t.emotag.srt")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(export(track, tmp_path / "private.srt").stat().st_mode) == 0o600
        path.chmod(0o640)  # an overwrite keeps what the user set
        export(track, path, force=True)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_frame_based_format_on_audio_only_media(tmp_path: Path) -> None:
    track = make("audio")
    with pytest.raises(ExportError, match=r"podcast.mp3 is audio-only: pass --fps 25 .*\(resolve-edl\)"):
        export(track, tmp_path / "x.resolve.edl")
    assert _listing(tmp_path) == []
    export(track, tmp_path / "x.resolve.edl", options=ExportOptions(fps=Fraction(25)))
    assert _listing(tmp_path) == ["x.resolve.edl"]
    export(track, tmp_path / "x.srt")  # time-based formats need no rate


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        export(make("p25"), tmp_path / "nope" / "x.srt")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        export(make("p25"), tmp_path / "file" / "x.srt")
    with pytest.raises(OutputError, match="is a directory"):
        export(make("p25"), tmp_path, fmt="srt")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            export(make("p25"), ro / "x.srt")
        assert _listing(ro) == []
    finally:
        ro.chmod(0o700)


def test_write_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OS refusing the temp file (read-only mount, quota) is an OutputError, with nothing written."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomicfile.tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match="Permission denied"):
        export(make("p25"), tmp_path / "x.srt")
    assert _listing(tmp_path) == []


def test_export_many_is_all_or_nothing(tmp_path: Path) -> None:
    track = make("p25")
    (tmp_path / "keep.edl").write_text("mine")
    before = _listing(tmp_path)
    # a format that cannot render (40 s cannot hold YouTube chapters) stops everything before any write
    with pytest.raises(ExportError):
        export_many(track, [(tmp_path / "a.srt", None), (tmp_path / "a.chapters.txt", None)])
    assert _listing(tmp_path) == before
    # an existing target stops everything too
    with pytest.raises(OutputExistsError):
        export_many(track, [(tmp_path / "b.srt", None), (tmp_path / "keep.edl", None)])
    assert _listing(tmp_path) == before and (tmp_path / "keep.edl").read_text() == "mine"
    with pytest.raises(OutputError, match="same file"):
        export_many(track, [(tmp_path / "c.srt", "srt"), (tmp_path / "c.srt", "srt")])
    written = export_many(track, [(tmp_path / "d.srt", None), (tmp_path / "d.edl", None)])
    assert [p.name for p in written] == ["d.srt", "d.edl"]


def test_bad_options_are_export_errors() -> None:
    with pytest.raises(ExportError, match="tag style"):
        ExportOptions(tag_style="bold")  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="--fps"):
        ExportOptions(fps="fast")  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="drop-frame timecode needs 29.97"):
        ex.render(make("p25"), "edl", ExportOptions(drop_frame=True))
    with pytest.raises(ExportError, match="bad start timecode"):
        ex.render(make("p25"), "edl", ExportOptions(start_tc="00:00:00:30"))
    assert ExportOptions(fps="29.97").fps == Fraction(30000, 1001)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- extensions


FAKE_MODULE = textwrap.dedent("""
    class Upper:
        name = "upper"
        suffix = ".up"
        default_filename_suffix = ".emotag.up"
        description = "cue texts in upper case"
        frame_based = False

        def render(self, track, options):
            return "".join(tc.cue.text.upper() + "\\n" for tc in track)

    EXPORTER = Upper()
""")


@pytest.fixture
def fake_extensions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake installed distribution with three exporter entry points: good, broken, and a clash."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "emotag_fake_ext.py").write_text(FAKE_MODULE)
    (site / "emotag_fake_broken.py").write_text("raise RuntimeError('boom at import')\n")
    dist = site / "emotag_fake_ext-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: emotag-fake-ext\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(
        "[emotag.exporters]\nupper = emotag_fake_ext:EXPORTER\nbroken = emotag_fake_broken:EXPORTER\n"
        "srt = emotag_fake_ext:EXPORTER\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("EMOTAG_DISABLE_EXTENSIONS", raising=False)
    return site


def test_entry_point_discovery(
    fake_extensions: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        found = ex.available()
    assert found["upper"].description == "cue texts in upper case"
    assert "broken" not in found  # logged and skipped
    assert any("broken" in r.getMessage() and "boom at import" in r.getMessage() for r in caplog.records)
    assert found["srt"] is get_exporter("srt") and found["srt"].suffix == ".srt"  # a built-in wins
    entry = ex.registry_entries()["upper"]
    assert entry.source == "emotag-fake-ext 1.2.3"
    with pytest.raises(ExportError, match=r"'broken' comes from extension .*failed to load .*boom at import"):
        get_exporter("broken")
    out = export(make("p25"), tmp_path / "x.emotag.up")  # suffix inference reaches extensions too
    assert out.read_text(encoding="utf-8").splitlines()[0] == "HELLO, <I>WORLD</I>!"


def test_extensions_can_be_disabled(fake_extensions: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOTAG_DISABLE_EXTENSIONS", "1")
    assert "upper" not in ex.available()
    with pytest.raises(UnknownExporterError):
        get_exporter("upper")


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def group() -> None:
        """Test group."""

    register(group)
    return group


@pytest.fixture
def track_file(tmp_path: Path) -> Path:
    path = tmp_path / "talk.emotag.json"
    path.write_text(dumps(make("p25")), encoding="utf-8")
    return path


def test_cli_export_to_several_formats(cli: click.Group, track_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["export", str(track_file), "--to", "srt,resolve-edl,avid", "--skip-neutral"]
    )
    assert result.exit_code == 0, result.output
    written = [tmp_path / n for n in ("talk.emotag.srt", "talk.emotag.resolve.edl", "talk.emotag.avid.txt")]
    assert result.output.split() == [str(p) for p in written]
    assert all(p.is_file() for p in written)
    assert "neutral" not in written[1].read_text(encoding="utf-8")


def test_cli_export_output_file_and_dir(cli: click.Group, track_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "export",
            str(track_file),
            "-o",
            str(tmp_path / "cut.selects.edl"),
            "--merge-gap",
            "2s",
            "--handles",
            "500",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cut.selects.edl").read_text().startswith("TITLE: talk show selects")
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(cli, ["export", str(track_file), "--to", "fcpxml,otio", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert _listing(out) == ["talk.emotag.fcpxml", "talk.emotag.otio"]
    result = runner.invoke(cli, ["export", str(track_file), "--to", "chapters", "-o", "-"])
    assert result.exit_code == 6 and "YouTube needs 3" in result.output
    result = runner.invoke(cli, ["export", str(track_file), "--to", "audacity", "-o", "-"])
    assert result.exit_code == 0 and result.output.startswith("1.000000\t3.500000\tjoy 0.82: Hello, world!")


def test_cli_export_makes_a_missing_output_dir(cli: click.Group, track_file: Path, tmp_path: Path) -> None:
    """`-o markers/` (a new folder: several formats, or one name ending in a slash) is created."""
    runner = CliRunner()
    out = tmp_path / "markers" / "reel1"
    result = runner.invoke(cli, ["export", str(track_file), "--to", "avid", "--fps", "25", "-o", f"{out}/"])
    assert result.exit_code == 0, result.output
    assert _listing(out) == ["talk.emotag.avid.txt"]
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    taken = f"{tmp_path / 'taken'}/"
    result = runner.invoke(cli, ["export", str(track_file), "--to", "srt,otio", "-o", taken])
    assert result.exit_code == 5 and "it is a file, not a directory" in result.output, result.output


def test_cli_export_never_writes_over_the_track_it_reads(cli: click.Group, track_file: Path) -> None:
    """`--to json --force` beside the track would be the track itself (re-thresholded, filtered): refused,
    also through a link, and the track is untouched."""
    before = track_file.read_bytes()
    link = track_file.with_name("link.json")
    link.symlink_to(track_file)
    for args in (
        ["export", str(track_file), "--to", "json", "--force", "--mismatch-threshold", "0.9"],
        ["export", str(link), "-o", str(track_file), "--force"],
        ["export", str(track_file), "-o", str(link), "--force"],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 5, (args, result.output)
        assert "cannot write output (it is an input of this run)" in result.output
    assert track_file.read_bytes() == before and link.is_symlink()
    result = CliRunner().invoke(cli, ["export", str(track_file), "--to", "srt", "--force"])
    assert result.exit_code == 0, result.output  # other targets beside it are fine


def test_cli_export_mismatch_threshold(cli: click.Group, track_file: Path) -> None:
    runner = CliRunner()
    args = ["export", str(track_file), "--to", "csv", "-o", "-", "--mismatch-only"]
    model = runner.invoke(cli, args)
    lower = runner.invoke(cli, [*args, "--mismatch-threshold", "0.08"])
    assert model.exit_code == 0 and lower.exit_code == 0, model.output + lower.output
    assert [r["index"] for r in csv.DictReader(io.StringIO(model.output))] == ["5"]
    assert [r["index"] for r in csv.DictReader(io.StringIO(lower.output))] == ["2", "5"]
    bad = runner.invoke(cli, [*args, "--mismatch-threshold", "1.5"])
    assert bad.exit_code == 2 and "--mismatch-threshold" in bad.output


def test_cli_export_errors(cli: click.Group, track_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["export", str(tmp_path / "missing.json"), "--to", "srt"])
    assert r.exit_code == 2 and "missing.json: no such file" in r.output
    r = runner.invoke(cli, ["export", str(track_file), "--to", "mp4"])
    assert r.exit_code == 2 and "unknown export format 'mp4'" in r.output
    r = runner.invoke(cli, ["export", str(track_file), "--to", "srt"])
    assert r.exit_code == 0
    before = _listing(tmp_path)
    r = runner.invoke(cli, ["export", str(track_file), "--to", "srt,edl"])
    assert r.exit_code == 5 and "output exists" in r.output and _listing(tmp_path) == before
    r = runner.invoke(cli, ["export", str(track_file), "--to", "srt", "--force"])
    assert r.exit_code == 0
    r = runner.invoke(cli, ["export", str(track_file), "--emotions", "happy", "--to", "srt"])
    assert r.exit_code == 2 and "unknown emotion(s) happy" in r.output
    r = runner.invoke(cli, ["export", str(track_file), "--fps", "fast", "--to", "edl"])
    assert r.exit_code == 2 and "not a frame rate" in r.output
    r = runner.invoke(cli, ["export", str(track_file), "--start-tc", "1h", "--to", "edl"])
    assert r.exit_code == 2 and "not a timecode" in r.output
    r = runner.invoke(cli, ["export", str(track_file)])
    assert r.exit_code == 2 and "--to" in r.output


def test_cli_audio_only_needs_fps(cli: click.Group, tmp_path: Path) -> None:
    path = tmp_path / "pod.emotag.json"
    path.write_text(dumps(make("audio")), encoding="utf-8")
    r = CliRunner().invoke(cli, ["export", str(path), "--to", "edl"])
    assert r.exit_code == 6 and "is audio-only: pass --fps 25" in r.output
    assert _listing(tmp_path) == ["pod.emotag.json"]
    r = CliRunner().invoke(
        cli, ["export", str(path), "--to", "edl", "--fps", "25", "--start-tc", "01:00:00:00"]
    )
    assert r.exit_code == 0, r.output
    assert "01:00:01:00" in (tmp_path / "pod.emotag.edl").read_text()


def test_cli_formats(cli: click.Group) -> None:
    r = CliRunner().invoke(cli, ["formats"])
    assert r.exit_code == 0
    for name in BUILTINS:
        assert any(line.split()[0] == name for line in r.output.splitlines() if line.strip())
    rows = json.loads(CliRunner().invoke(cli, ["formats", "--json"]).output)
    by_name = {row["name"]: row for row in rows}
    assert by_name["resolve-edl"]["frame_based"] is True and by_name["srt"]["frame_based"] is False
    assert by_name["fcpxml"]["filename"] == ".emotag.fcpxml"


def test_export_options_decorator(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    @click.command()
    @export_options
    def cmd(**kwargs: object) -> None:
        seen["result"] = options_from_cli(**kwargs)

    palette = tmp_path / "p.json"
    palette.write_text(json.dumps({"joy": "#00FF00", "anger": {"rgb": "#FF0000", "resolve": "Rose"}}))
    r = CliRunner().invoke(
        cmd,
        [
            "--export",
            "srt,edl,srt",
            "--min-confidence",
            "0.5",
            "--emotions",
            "joy,anger",
            "--skip-neutral",
            "--mismatch-only",
            "--merge-gap",
            "1.5s",
            "--fps",
            "23.976",
            "--start-tc",
            "01:00:00:00",
            "--tag-style",
            "color",
            "--palette",
            str(palette),
            "--non-drop-frame",
            "--title",
            "T",
        ],
    )
    assert r.exit_code == 0, r.output
    options, formats = seen["result"]  # type: ignore[misc]
    assert formats == ["srt", "edl"]
    assert options == ExportOptions(
        fps=Fraction(24000, 1001),
        start_tc="01:00:00:00",
        drop_frame=False,
        tag_style="color",
        min_confidence=0.5,
        emotions=frozenset({"joy", "anger"}),
        skip_neutral=True,
        mismatch_only=True,
        merge_gap_ms=1500,
        palette=options.palette,
        handles_ms=1000,
        title="T",
    )
    assert options.colors["joy"].hex == "#00FF00" and options.colors["joy"].resolve == "Green"
    assert options.colors["anger"].resolve == "Rose"
    r = CliRunner().invoke(cmd, ["--palette", str(tmp_path / "none.json")])
    assert r.exit_code != 0
