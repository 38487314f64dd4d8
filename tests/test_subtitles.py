"""Subtitle reading: formats, encodings, markup, wild cues, bad files, sidecar lookup."""

from __future__ import annotations

import os
from pathlib import Path
from textwrap import dedent

import pytest

from emotag.errors import InputError, SubtitleError
from emotag.subtitles import (
    detect_format,
    find_sidecar,
    normalize_language,
    read_cues,
    read_cues_from_string,
)

try:
    from tests import mediagen as mg
except ImportError:  # tests/ itself on sys.path (pytest's default rootdir-less import)
    import mediagen as mg  # type: ignore[no-redef]

CUES = [(1000, 2500, "Hello there."), (3000, 4200, "How are you?\nFine, thanks."), (5000, 6000, "Bye.")]


@pytest.mark.parametrize("suffix", [".srt", ".vtt", ".ass"])
def test_round_trip_each_format(tmp_path: Path, suffix: str) -> None:
    path = mg.write_subs(CUES, tmp_path / f"x{suffix}")
    cl = read_cues(path)
    assert cl.format == suffix[1:]
    assert [(c.start_ms, c.end_ms, c.text) for c in cl.cues] == CUES
    assert [c.index for c in cl.cues] == [1, 2, 3]
    assert cl.warnings == ()


def test_format_comes_from_content_not_suffix(tmp_path: Path) -> None:
    path = mg.write_vtt(CUES, tmp_path / "really_vtt.srt")
    cl = read_cues(path)
    assert cl.format == "vtt"
    assert len(cl) == 3
    assert detect_format(mg.write_ass(CUES, tmp_path / "a.txt").read_text()) == "ass"


def test_srt_markup_kept_verbatim(tmp_path: Path) -> None:
    text = '<i>Hello</i> <font color="#ff0000">there</font>\n<b>friend</b>'
    cl = read_cues(mg.write_srt([(0, 1000, text)], tmp_path / "m.srt"))
    assert cl.cues[0].text == text
    assert cl.cues[0].plain == "Hello there friend"


def test_ass_overrides_kept_and_speaker_from_name(tmp_path: Path) -> None:
    cl = read_cues(mg.write_ass([(0, 1000, "{\\an8}Top line\nsecond", "Alice")], tmp_path / "m.ass"))
    cue = cl.cues[0]
    assert cue.text == "{\\an8}Top line\nsecond"
    assert cue.plain == "Top line second"
    assert cue.speaker == "Alice"


def test_vtt_voice_span_becomes_speaker(tmp_path: Path) -> None:
    path = tmp_path / "v.vtt"
    path.write_text(
        dedent("""\
        WEBVTT

        NOTE ignored

        intro
        00:01.000 --> 00:02.000 align:start position:10%
        <v Bob>Hello <i>there</i></v>

        00:00:03.000 --> 00:00:04.000
        <v.loud Mary Ann>Second</v>
    """)
    )
    cl = read_cues(path)
    assert [(c.start_ms, c.end_ms, c.speaker) for c in cl.cues] == [
        (1000, 2000, "Bob"),
        (3000, 4000, "Mary Ann"),
    ]
    assert cl.cues[0].text == "Hello <i>there</i>"


def test_speaker_labels_in_the_text_name_the_speaker(tmp_path: Path) -> None:
    """Diarised transcripts (WhisperX writes ``[SPEAKER_00]: ``) and captions (``>> ANNA:``, ``JOHN:``)."""
    lines = [
        "[SPEAKER_00]: So how was the trip?",
        "[SPEAKER_01]: <i>Honestly?</i> A disaster.",
        ">> ANNA: I told you so.",
        "[SPEAKER_00]: Come on,\nit can't have been that bad.",
        "- ANNA: It was.",
        "Listen: we land at six.",  # a capitalised word and a colon once: not a speaker
        "[SPEAKER_01]: It rained all week.",
        "No label here.",
    ]
    cl = read_cues(
        mg.write_srt([(i * 1000, i * 1000 + 900, t) for i, t in enumerate(lines)], tmp_path / "d.srt")
    )
    names = [c.speaker for c in cl.cues]
    assert names == ["SPEAKER_00", "SPEAKER_01", "ANNA", "SPEAKER_00", "ANNA", None, "SPEAKER_01", None]
    assert (
        cl.cues[1].text == "[SPEAKER_01]: <i>Honestly?</i> A disaster."
    )  # written as it was: exports keep it
    assert [c.spoken for c in cl.cues[:6]] == [
        "So how was the trip?",
        "Honestly? A disaster.",
        "I told you so.",
        "Come on, it can't have been that bad.",
        "It was.",
        "Listen: we land at six.",
    ]
    assert not cl.warnings  # naming speakers is not a fix


def test_a_named_speaker_is_not_renamed_by_a_label(tmp_path: Path) -> None:
    cues = [
        (0, 900, "JOHN: hi", "Alice"),
        (1000, 1900, "JOHN: hello", "Alice"),
        (2000, 2900, "Alice: yes", "Alice"),
    ]
    cl = read_cues(mg.write_ass(cues, tmp_path / "n.ass"))
    assert [c.speaker for c in cl.cues] == ["Alice", "Alice", "Alice"]
    assert [c.spoken for c in cl.cues] == ["JOHN: hi", "JOHN: hello", "yes"]  # only its own name is dropped


def test_labels_that_differ_in_case_or_spacing_name_one_speaker(tmp_path: Path) -> None:
    """Counted by the key the model groups speakers by: ``ANNA:`` once and ``Anna:`` once recur."""
    lines = ["ANNA: I told you so.", "Anna:  It was.", "Listen: we land at six.", "BEN: Fine."]
    cl = read_cues(
        mg.write_srt([(i * 1000, i * 1000 + 900, t) for i, t in enumerate(lines)], tmp_path / "c.srt")
    )
    assert [c.speaker for c in cl.cues] == ["ANNA", "Anna", None, None]  # each keeps its spelling
    assert [c.spoken for c in cl.cues] == ["I told you so.", "It was.", lines[2], lines[3]]


def test_a_label_spelt_otherwise_than_the_named_speaker_is_still_dropped(tmp_path: Path) -> None:
    cues = [(0, 900, "ALICE: hi", "Alice"), (1000, 1900, "JOHN: hello", "Alice")]
    cl = read_cues(mg.write_ass(cues, tmp_path / "k.ass"))
    assert [c.spoken for c in cl.cues] == ["hi", "JOHN: hello"]


ACCENTED = [(0, 1000, "Café, déjà vu! Où est la crème brûlée?"), (1500, 2500, "Señor, ¿qué pasó? Grüße.")]


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [
        ("utf-8", False, "utf-8"),
        ("utf-8", True, "utf-8-sig"),
        ("utf-16", False, "utf-16-le"),  # Python's utf-16 writes a little-endian BOM
        ("utf-16-be", True, "utf-16-be"),
        ("cp1252", False, "cp1252"),
    ],
)
def test_encodings(tmp_path: Path, encoding: str, bom: bool, expected: str) -> None:
    path = mg.write_srt(ACCENTED, tmp_path / "enc.srt", encoding=encoding, bom=bom)
    cl = read_cues(path)
    assert cl.encoding == expected
    assert [c.text for c in cl.cues] == [t for _, _, t in ACCENTED]
    assert any("guessed" in w for w in cl.warnings) == (expected == "cp1252")


def test_forced_encoding(tmp_path: Path) -> None:
    path = mg.write_srt(ACCENTED, tmp_path / "enc.srt", encoding="cp1252")
    assert read_cues(path, encoding="latin-1").cues[0].text.startswith("Café")
    with pytest.raises(SubtitleError, match="not valid utf-8"):
        read_cues(path, encoding="utf-8")
    with pytest.raises(SubtitleError, match="unknown encoding"):
        read_cues(path, encoding="klingon-8")


def test_wild_cues(tmp_path: Path) -> None:
    path = tmp_path / "wild.srt"
    path.write_text(
        dedent("""\
        1
        00:00:05,000 --> 00:00:06,000
        late one

        2
        00:00:01,000 --> 00:00:03,000
        overlap A

        3
        00:00:02,000 --> 00:00:04,000
        overlap B

        4
        00:00:07,000 --> 00:00:07,000
        zero length

        5
        00:00:09,000 --> 00:00:08,000
        backwards

        6
        00:00:10,000 --> 00:00:11,000
        <i></i>

        7
        00:00:12,000 --> 00:00:13,000
        last
    """)
    )
    cl = read_cues(path)
    got = [(c.index, c.start_ms, c.end_ms, c.text) for c in cl.cues]
    assert got == [
        (1, 1000, 3000, "overlap A"),
        (2, 2000, 4000, "overlap B"),
        (3, 5000, 6000, "late one"),
        (4, 7000, 7000, "zero length"),
        (5, 9000, 9000, "backwards"),
        (6, 12000, 13000, "last"),
    ]
    joined = " | ".join(cl.warnings)
    assert "dropped 1 cue(s) with no text" in joined
    assert "1 cue(s) ended before they started" in joined
    assert "2 zero-length cue(s)" in joined
    assert "out of order" in joined


@pytest.mark.parametrize(
    ("line", "bad"),
    [
        ("00:00:03.000 -> 00:00:04", "00:00:03.000 -> 00:00:04"),
        ("00:00:03,000 --> 00:00:0x,000", "00:00:03,000 --> 00:00:0x,000"),
        ("00:00:03 --> 00:00:04", "00:00:03 --> 00:00:04"),
    ],
)
def test_malformed_srt_timing_names_the_line(tmp_path: Path, line: str, bad: str) -> None:
    path = tmp_path / "bad.srt"
    path.write_text(f"1\n00:00:01,000 --> 00:00:02,000\nfine\n\n2\n{line}\nbroken\n")
    with pytest.raises(SubtitleError) as err:
        read_cues(path)
    assert f"line 6: malformed timing {bad!r}" in str(err.value)
    assert "re-export" in str(err.value)


def test_malformed_vtt_timing(tmp_path: Path) -> None:
    path = tmp_path / "bad.vtt"
    path.write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\n00:03,000 --> 00:04,000\nbad\n")
    with pytest.raises(SubtitleError, match="line 6: malformed timing"):
        read_cues(path)


def test_text_that_mentions_a_time_is_not_a_timing_line(tmp_path: Path) -> None:
    cl = read_cues(mg.write_srt([(0, 1000, "Meet me at 10:30, not later.")], tmp_path / "t.srt"))
    assert cl.cues[0].text == "Meet me at 10:30, not later."


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.srt"
    path.write_bytes(content)
    with pytest.raises(SubtitleError, match="is empty"):
        read_cues(path)


def test_no_cues_with_text(tmp_path: Path) -> None:
    path = mg.write_srt([(0, 1000, " "), (2000, 3000, "<i> </i>")], tmp_path / "blank.srt")
    with pytest.raises(SubtitleError, match="no cues with text"):
        read_cues(path)


def test_binary_garbage(tmp_path: Path) -> None:
    with pytest.raises(SubtitleError, match="binary"):
        read_cues(mg.garbage(tmp_path / "junk.srt"))


def test_plain_text_is_not_subtitles(tmp_path: Path) -> None:
    path = tmp_path / "notes.srt"
    path.write_text("just some notes\nwith no timing at all\n")
    with pytest.raises(SubtitleError, match="not a subtitle file"):
        read_cues(path)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_cues(tmp_path / "nope.srt")
    with pytest.raises(InputError, match="is a directory"):
        read_cues(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_unreadable(tmp_path: Path) -> None:  # pragma: no cover - CI runs as root here
    path = mg.write_srt(CUES, tmp_path / "locked.srt")
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_cues(path)


def test_read_from_string_for_embedded_streams() -> None:
    text = "1\n00:00:00,500 --> 00:00:01,500\n<i>hi</i>\n"
    cl = read_cues_from_string(text, name="movie.mkv#s:0")
    assert (cl.format, cl.cues[0].start_ms, cl.cues[0].text) == ("srt", 500, "<i>hi</i>")
    with pytest.raises(SubtitleError, match=r"movie\.mkv#s:0: is empty"):
        read_cues_from_string("\n", name="movie.mkv#s:0")


# ---------------------------------------------------------------------------------------------- sidecar


def _touch(folder: Path, *names: str) -> None:
    for n in names:
        mg.write_srt(CUES, folder / n)


def test_sidecar_prefers_exact_name(tmp_path: Path) -> None:
    _touch(tmp_path, "movie.en.srt", "movie.srt", "movie.fr.srt", "movie.emotag.srt")
    assert find_sidecar(tmp_path / "movie.mp4") == tmp_path / "movie.srt"


@pytest.mark.parametrize("tag", ["en", "eng", "en-US", "EN"])
def test_sidecar_language_match(tmp_path: Path, tag: str) -> None:
    _touch(tmp_path, "movie.de.srt", f"movie.{tag}.srt", "movie.fr.srt")
    assert find_sidecar(tmp_path / "movie.mp4") == tmp_path / f"movie.{tag}.srt"
    assert find_sidecar(tmp_path / "movie.mp4", lang="fre") == tmp_path / "movie.fr.srt"
    assert find_sidecar(tmp_path / "movie.mp4", lang="de") == tmp_path / "movie.de.srt"


def test_sidecar_any_other_and_suffix_preference(tmp_path: Path) -> None:
    (tmp_path / "movie.ja.ASS").write_text(mg.write_ass(CUES, tmp_path / "tmp.ass").read_text())
    assert find_sidecar(tmp_path / "movie.mp4") == tmp_path / "movie.ja.ASS"
    mg.write_vtt(CUES, tmp_path / "movie.VTT")
    assert find_sidecar(tmp_path / "movie.mp4") == tmp_path / "movie.VTT"
    _touch(tmp_path, "movie.srt")
    assert find_sidecar(tmp_path / "movie.mp4") == tmp_path / "movie.srt"


def test_sidecar_never_picks_own_output_or_other_names(tmp_path: Path) -> None:
    _touch(tmp_path, "movie.emotag.srt", "movie2.srt", "other.srt", "movie.en.emotag.srt")
    assert find_sidecar(tmp_path / "movie.mp4") is None


def test_normalize_language() -> None:
    assert [
        normalize_language(x) for x in ("eng", "en-US", "English", "fre", "ger", "und", None, "pt_BR")
    ] == ["en", "en", "en", "fr", "de", None, None, "pt"]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [("Zażółć gęślą jaźń. Cześć, jak się masz?", "cp1250"), ("Привет, как дела? Всё хорошо.", "cp1251")],
)
def test_other_legacy_encodings_keep_their_guess(tmp_path: Path, text: str, encoding: str) -> None:
    cl = read_cues(mg.write_srt([(0, 1000, text)], tmp_path / "x.srt", encoding=encoding))
    assert cl.cues[0].text == text


def test_srt_in_the_wild_layouts() -> None:
    no_index = "00:00:01,000 --> 00:00:02,000\nhello\n\n00:00:03,000 --> 00:00:04,000\nworld\n"
    crlf = (
        "\r\n\r\n1\r\n00:00:01,000 --> 00:00:02,000  \r\nhello\r\n\r\n\r\n"
        "2\r\n00:00:03.000 --> 00:00:04.000\r\nworld"
    )
    numeric = "1\n00:00:01,000 --> 00:00:02,000\n1984\n\n2\n00:00:03,000 --> 00:00:04,000\n42\n"
    for text, want in ((no_index, ["hello", "world"]), (crlf, ["hello", "world"]), (numeric, ["1984", "42"])):
        cl = read_cues_from_string(text, name="wild.srt")
        assert [(c.start_ms, c.end_ms) for c in cl.cues] == [(1000, 2000), (3000, 4000)]
        assert [c.text for c in cl.cues] == want


def test_blank_line_inside_a_cue_is_joined() -> None:
    text = (
        "junk\n\n1\n00:00:01,000 --> 00:00:02,000\nhello\n\nstill one\n\n"
        "2\n00:00:03,000 --> 00:00:04,000\nend\n"
    )
    cl = read_cues_from_string(text, name="gap.srt")
    assert [c.text for c in cl.cues] == ["hello\nstill one", "end"]
    assert any("joined to the cue before" in w for w in cl.warnings)
    assert any("ignored 1 text block(s)" in w for w in cl.warnings)
