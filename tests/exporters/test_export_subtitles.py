"""SRT, WebVTT and ASS outputs parsed back by readers emotag did not write: pysubs2, srt, pysrt, webvtt-py,
and ffmpeg's own subtitle demuxers (``ffmpeg -i file -f srt -`` re-encodes the cues we then compare)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pysrt
import pysubs2
import pytest
import srt
import webvtt
from exporter_tracks import CASES, make
from hypothesis import given, settings
from hypothesis import strategies as st

from emotag.exporters import ExportOptions, export, render
from emotag.exporters.vtt import vtt_text
from emotag.timeline import Cue, Emotion, Media, TaggedCue, Track, plain_text

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def _ffmpeg_to_srt(path: Path) -> list[srt.Subtitle]:
    """Let ffmpeg demux the file and re-mux it as SRT; fail on any ffmpeg error."""
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-f", "srt", "-"],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stderr.decode().strip() == "", proc.stderr.decode()
    return list(srt.parse(proc.stdout.decode("utf-8")))


def _vtt_ms(stamp: str) -> int:
    hms, milli = stamp.split(".")
    h, m, s = (int(x) for x in hms.split(":"))
    return ((h * 60 + m) * 60 + s) * 1000 + int(milli)


def _ms(td: object) -> int:
    return round(td.total_seconds() * 1000)  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES)
def test_srt_readers_agree(case: str, tmp_path: Path) -> None:
    track = make(case)
    path = export(track, tmp_path / "out.srt")
    text = path.read_text(encoding="utf-8")
    # srt (strict parser): count, indices, exact times, tagged text
    subs = list(srt.parse(text))
    assert [s.index for s in subs] == [tc.cue.index for tc in track]
    assert [(_ms(s.start), _ms(s.end)) for s in subs] == [
        (tc.start_ms, max(tc.end_ms, tc.start_ms)) for tc in track
    ]
    for s, tc in zip(subs, track, strict=True):
        assert (
            s.content
            == f"[{tc.label} {tc.confidence:.2f}{' mismatch' if tc.mismatched else ''}] {tc.cue.text}"
        )
    # pysrt: raw text kept (markup and non-ASCII)
    items = pysrt.from_string(text)
    assert [i.text for i in items] == [s.content for s in subs]
    assert [i.start.ordinal for i in items] == [tc.start_ms for tc in track]
    # pysubs2: times and markup converted to ASS, text otherwise intact
    ssa = pysubs2.SSAFile.from_string(text, format_="srt")
    assert [(e.start, e.end) for e in ssa] == [(tc.start_ms, max(tc.end_ms, tc.start_ms)) for tc in track]
    assert "東京" in ssa[5].text and "{\\i1}world{\\i0}" in ssa[0].text


@needs_ffmpeg
@pytest.mark.parametrize("style", ["prefix", "color", "none"])
def test_srt_ffmpeg_reads_every_cue(style: str, tmp_path: Path) -> None:
    track = make("df2997")
    path = export(track, tmp_path / "out.srt", options=ExportOptions(tag_style=style))  # type: ignore[arg-type]
    back = _ffmpeg_to_srt(path)
    non_empty = list(track)  # ffmpeg keeps zero-length cues too
    assert [(_ms(s.start), _ms(s.end)) for s in back] == [(tc.start_ms, tc.end_ms) for tc in non_empty]
    for s, tc in zip(back, non_empty, strict=True):
        assert plain_text(tc.cue.text) in plain_text(s.content)


def test_srt_tag_styles_and_selection() -> None:
    track = make("p25")
    color = render(track, "srt", ExportOptions(tag_style="color"))
    assert '<font color="#FDD835">Hello, <i>world</i>!</font>' in color
    none = list(srt.parse(render(track, "srt", ExportOptions(tag_style="none"))))
    assert [s.content for s in none] == [tc.cue.text for tc in track]
    # unselected cues stay, untagged
    only_anger = list(srt.parse(render(track, "srt", ExportOptions(emotions=frozenset({"anger"})))))
    assert len(only_anger) == len(track)
    tagged = [s for s in only_anger if s.content.startswith("[")]
    assert [s.content.split("]")[0] for s in tagged] == ["[anger 0.95"]


@pytest.mark.parametrize("case", CASES)
def test_vtt_webvtt_py(case: str, tmp_path: Path) -> None:
    track = make(case)
    path = export(track, tmp_path / "out.vtt")
    vtt = webvtt.read(str(path))
    assert len(vtt.captions) == len(track)
    for cap, tc in zip(vtt.captions, track, strict=True):
        assert _vtt_ms(cap.start) == tc.start_ms
        assert _vtt_ms(cap.end) == max(tc.end_ms, tc.start_ms)
        assert cap.identifier == str(tc.cue.index)
        assert cap.voice == tc.cue.speaker
        raw = cap.raw_text
        classes = tc.label + (".mismatch" if tc.mismatched else "")
        assert f"<c.{classes}>[{tc.label} {tc.confidence:.2f}" in raw
        assert plain_text(tc.cue.text) in " ".join(cap.text.split())
    content = path.read_text(encoding="utf-8")
    assert content.startswith("WEBVTT\n\nSTYLE\n::cue(.anger) { color: #E53935; }")
    assert content.index("STYLE") < content.index("-->")


def test_vtt_text_escapes_and_translates() -> None:
    assert vtt_text('{\\an8}<font color="#fff">A & B</font> <i>x</i> 1 < 2 --> 3') == (
        "A &amp; B <i>x</i> 1 &lt; 2 --&gt; 3"
    )
    assert vtt_text("line1\n\nline2") == "line1\nline2"
    assert vtt_text("a\\Nb") == "a\nb"


@needs_ffmpeg
def test_vtt_ffmpeg(tmp_path: Path) -> None:
    track = make("df2997")
    path = export(track, tmp_path / "out.vtt")
    # FFmpeg's WebVTT demuxer stops at a STYLE block (trac #9064, documented in emotag.exporters.vtt), so the
    # cues are checked with the block removed.
    text = path.read_text(encoding="utf-8")
    start = text.index("STYLE")
    path.write_text(text[:start] + text[text.index("\n\n", start) + 2 :], encoding="utf-8")
    back = _ffmpeg_to_srt(path)
    non_empty = list(track)
    assert [(_ms(s.start), _ms(s.end)) for s in back] == [(tc.start_ms, tc.end_ms) for tc in non_empty]
    assert "Ça va" in back[5].content


@pytest.mark.parametrize("case", CASES)
def test_ass_pysubs2(case: str, tmp_path: Path) -> None:
    track = make(case)
    path = export(track, tmp_path / "out.ass")
    subs = pysubs2.load(str(path))
    assert len(subs) == len(track)
    for ev, tc in zip(subs, track, strict=True):
        assert abs(ev.start - tc.start_ms) <= 5 and abs(ev.end - max(tc.end_ms, tc.start_ms)) <= 5
        assert ev.style == tc.label
        assert ev.name == (tc.cue.speaker or "")
        assert f"[{tc.label} {tc.confidence:.2f}" in ev.text
        # the style's primary colour is the palette's emotion colour, opaque
        color = subs.styles[tc.label].primarycolor
        r, g, b = ExportOptions().colors[tc.label].rgb
        assert (color.r, color.g, color.b, color.a) == (r, g, b, 0)
    assert "{\\u1}" in subs[4].text  # the mismatch
    assert "&H0035D8FD" in path.read_text(encoding="utf-8")  # joy #FDD835 as &HAABBGGRR


@needs_ffmpeg
def test_ass_ffmpeg(tmp_path: Path) -> None:
    track = make("df2997")
    path = export(track, tmp_path / "out.ass")
    back = _ffmpeg_to_srt(path)
    non_empty = list(track)
    assert len(back) == len(non_empty)
    for s, tc in zip(back, non_empty, strict=True):
        assert abs(_ms(s.start) - tc.start_ms) <= 10 and abs(_ms(s.end) - tc.end_ms) <= 10


def test_ass_none_style_uses_default(tmp_path: Path) -> None:
    subs = pysubs2.SSAFile.from_string(render(make("p25"), "ass", ExportOptions(tag_style="none")))
    assert {e.style for e in subs} == {"Default"} and set(subs.styles) == {"Default"}
    assert not any(e.text.startswith("[") for e in subs)


def test_srt_output_is_utf8_without_bom(tmp_path: Path) -> None:
    path = export(make("p25"), tmp_path / "x.srt")
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert "東京".encode() in raw
    assert io.BytesIO(raw).read().decode("utf-8")


_cue_text = st.lists(
    st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<>{}"), max_size=8)
    | st.sampled_from(["\n", "\r\n", "\r", "\n\n", " \n", "<i>", "</i>"]),
    max_size=6,
).map("".join)


@settings(max_examples=80, deadline=None)
@given(texts=st.lists(_cue_text, min_size=1, max_size=6), style=st.sampled_from(["prefix", "color", "none"]))
def test_srt_any_unicode_text_keeps_framing(texts: list[str], style: str) -> None:
    """Arbitrary Unicode and newlines never change the cue count or times for srt, pysrt and pysubs2."""
    emo = Emotion.from_mapping({"joy": 0.7, "neutral": 0.3})
    cues = tuple(TaggedCue(Cue(i + 1, i * 2000, i * 2000 + 1500, t), emo) for i, t in enumerate(texts))
    track = Track(Media("/m/x.mp4", 20000), cues, "m", "s")
    text = render(track, "srt", ExportOptions(tag_style=style))  # type: ignore[arg-type]
    expected = [(i * 2000, i * 2000 + 1500) for i in range(len(texts))]
    assert [(_ms(s.start), _ms(s.end)) for s in srt.parse(text)] == expected
    assert [(i.start.ordinal, i.end.ordinal) for i in pysrt.from_string(text)] == expected
    assert [(e.start, e.end) for e in pysubs2.SSAFile.from_string(text, format_="srt")] == expected
    for s, original in zip(srt.parse(text), texts, strict=True):
        words = " ".join(original.replace("<i>", "").replace("</i>", "").split())
        assert words in " ".join(s.content.replace("<i>", "").replace("</i>", "").split())


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(_cue_text, min_size=1, max_size=6), speaker=st.none() | _cue_text)
def test_vtt_any_unicode_text_keeps_framing(
    texts: list[str], speaker: str | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    emo = Emotion.from_mapping({"sadness": 0.7, "neutral": 0.3})
    cues = tuple(
        TaggedCue(Cue(i + 1, i * 2000, i * 2000 + 1500, t + " -->", speaker or None), emo)
        for i, t in enumerate(texts)
    )
    path = tmp_path_factory.mktemp("vtt") / "x.vtt"
    export(Track(Media("/m/x.mp4", 20000), cues, "m", "s"), path)
    captions = webvtt.read(str(path)).captions
    assert [(_vtt_ms(c.start), _vtt_ms(c.end)) for c in captions] == [
        (i * 2000, i * 2000 + 1500) for i in range(len(texts))
    ]
