"""Probing and audio decoding of real containers made at test time with ffmpeg and espeak-ng."""

from __future__ import annotations

import dataclasses
import os
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emotag import media
from emotag.errors import InputError, MediaError, MissingDependencyError, SubtitleError

try:
    from tests import mediagen as mg
except ImportError:
    import mediagen as mg  # type: ignore[no-redef]

pytestmark = pytest.mark.skipif(not mg.have_tools(), reason="needs ffmpeg, ffprobe and espeak-ng")

LINES: list[tuple[str, dict[str, Any]] | str] = [
    "Hello there, how are you today?",
    ("I am very angry with you!", {"pitch": 80, "speed": 190}),
]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int, str]]]:
    folder = tmp_path_factory.mktemp("speech")
    wav = folder / "speech.wav"
    cues = mg.concat_speech(LINES, wav, gap_s=0.5)
    return wav, cues


@pytest.fixture(scope="module")
def files(
    tmp_path_factory: pytest.TempPathFactory, speech: tuple[Path, list[tuple[int, int, str]]]
) -> dict[str, Path]:
    wav, cues = speech
    folder = tmp_path_factory.mktemp("media")
    srt = mg.write_srt(cues, folder / "subs.srt")
    out: dict[str, Path] = {"wav": wav}
    for suffix in ("mp4", "mkv", "webm"):
        out[suffix] = mg.make_video(
            folder / f"v.{suffix}",
            wav,
            subs=mg.write_vtt(cues, folder / "s.vtt") if suffix == "webm" else srt,
        )
    out["mov"] = mg.make_video(folder / "v.mov", wav, fps="30000/1001", timecode="01:00:00;00")
    for suffix in ("mp3", "m4a", "flac"):
        out[suffix] = mg.make_audio(folder / f"a.{suffix}", wav)
    return out


# Lossy codecs and container muxing add padding: AAC in Matroska keeps its 1024-sample priming (64 ms at
# 16 kHz) plus end padding, which ffmpeg cannot trim without an edit list. An MP3's probed duration counts
# the encoder delay and padding (the decoder trims them, so the decoded length is exact).
TOLERANCE_MS = {"mkv": 110}
PROBE_TOLERANCE_MS = {"mkv": 110, "mp3": 130}


@pytest.mark.parametrize("kind", ["mp4", "mov", "mkv", "webm", "wav", "mp3", "m4a", "flac"])
def test_decode_every_container(
    files: dict[str, Path], speech: tuple[Path, list[tuple[int, int, str]]], kind: str
) -> None:
    wav, cues = speech
    true_ms = mg.wav_duration_ms(wav)
    pr = media.probe(files[kind])
    audio = media.load_audio(files[kind], probe=pr)
    tol = TOLERANCE_MS.get(kind, 50)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(pr.duration_ms - true_ms) <= PROBE_TOLERANCE_MS.get(kind, 50)
    assert abs(len(audio) * 1000 / 16000 - true_ms) <= tol
    assert np.abs(audio).max() <= 1.0

    def rms(a_ms: int, b_ms: int) -> float:
        seg = audio[a_ms * 16 : b_ms * 16]
        return float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if seg.size else 0.0

    gap = rms(cues[0][1] + 150, cues[1][0] - 150)
    lead = rms(0, cues[0][0] - 150)
    for start, end, _ in cues:
        loud = rms(start + 100, end - 100)
        assert loud > 0.01
        assert loud > 10 * max(gap, lead, 1e-5)


def test_probe_video_details(files: dict[str, Path]) -> None:
    pr = media.probe(files["mov"])
    m = pr.media
    assert m.fps == Fraction(30000, 1001)
    assert m.start_timecode == "01:00:00;00" and m.drop_frame
    assert (m.has_video, m.width, m.height) == (True, 160, 120)
    assert m.path == str(files["mov"])
    mp4 = media.probe(files["mp4"])
    assert mp4.fps == Fraction(25) and mp4.media.start_timecode is None and not mp4.media.drop_frame
    assert [s.codec for s in mp4.subtitle_streams] == ["mov_text"]
    sub = mp4.subtitle_streams[0]
    assert (sub.ordinal, sub.language, sub.is_text, sub.kind) == (0, "eng", True, "subtitle")
    assert sub.index == 2  # video 0, audio 1, subtitles 2


def test_probe_audio_only(files: dict[str, Path]) -> None:
    pr = media.probe(files["flac"])
    assert (pr.fps, pr.has_video, pr.media.width) == (None, False, None)
    assert [(s.codec, s.kind) for s in pr.audio_streams] == [("flac", "audio")]
    assert pr.audio_streams[0].sample_rate == 16000 and pr.audio_streams[0].channels == 1


def test_second_audio_stream_is_the_tone(
    tmp_path: Path, speech: tuple[Path, list[tuple[int, int, str]]]
) -> None:
    wav, _ = speech
    tone = mg.tone(tmp_path / "tone.wav", mg.wav_duration_ms(wav) / 1000, freq=1000)
    path = mg.make_video(tmp_path / "two.mkv", wav, second_audio=tone)
    pr = media.probe(path)
    assert len(pr.audio_streams) == 2

    def peak_hz(x: np.ndarray) -> tuple[float, float]:
        spec = np.abs(np.fft.rfft(x[16000:32000] * np.hanning(16000)))
        return float(np.argmax(spec)), float(spec.max() / spec.sum())

    hz, share = peak_hz(media.load_audio(path, stream=1, probe=pr))
    assert abs(hz - 1000) <= 5 and share > 0.05
    hz0, share0 = peak_hz(media.load_audio(path, stream=0, probe=pr))
    assert share0 < share / 3  # speech spreads its energy; the tone does not
    with pytest.raises(
        MediaError,
        match=r"has no audio stream 2 \(audio streams: 0 \(aac, default\), 1 \(aac\)\); "
        r"pass --audio-stream between 0 and 1",
    ):
        media.load_audio(path, stream=2, probe=pr)


def test_sample_rate_and_growth_when_probe_underestimates(files: dict[str, Path]) -> None:
    pr = media.probe(files["wav"])
    small = dataclasses.replace(
        pr,
        media=dataclasses.replace(pr.media, duration_ms=100),
        audio_streams=tuple(dataclasses.replace(s, duration_ms=None) for s in pr.audio_streams),
    )
    full = media.load_audio(files["wav"], probe=pr)
    grown = media.load_audio(files["wav"], probe=small)
    np.testing.assert_array_equal(full, grown)
    at8k = media.load_audio(files["wav"], sample_rate=8000, probe=pr)
    assert abs(len(at8k) * 2 - len(full)) <= 2


def test_no_audio_stream(tmp_path: Path) -> None:
    path = mg.make_no_audio_video(tmp_path / "silent.mp4")
    pr = media.probe(path)
    assert pr.has_video and not pr.has_audio
    with pytest.raises(MediaError, match="has no audio stream; pick a file with sound"):
        media.load_audio(path)


def test_missing_directory_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        media.probe(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="is a directory"):
        media.load_audio(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_unreadable(tmp_path: Path) -> None:  # pragma: no cover - CI runs as root here
    path = mg.silence(tmp_path / "locked.wav", 1)
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        media.probe(path)


def test_truncated_mp4(tmp_path: Path, files: dict[str, Path]) -> None:
    bad = mg.truncate(files["mp4"], tmp_path / "cut.mp4", 0.5)  # moov atom is at the end
    with pytest.raises(MediaError, match="ffmpeg cannot read it"):
        media.probe(bad)


def test_truncated_mkv_fails_on_decode(tmp_path: Path, files: dict[str, Path]) -> None:
    bad = mg.truncate(files["mkv"], tmp_path / "cut.mkv", 0.4)
    pr = media.probe(bad)  # the header (with its duration) survives
    with pytest.raises(MediaError, match="truncated"):
        media.load_audio(bad, probe=pr)


@pytest.mark.parametrize("maker", ["garbage", "text"])
def test_not_media(tmp_path: Path, maker: str) -> None:
    path = tmp_path / "fake.mp4"
    if maker == "garbage":
        mg.garbage(path)
    else:
        path.write_text("this is not a video\n" * 20)
    with pytest.raises(MediaError):
        media.load_audio(path)


def test_missing_ffmpeg(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> None:
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name.startswith("ff") else real_which(name))
    with pytest.raises(MissingDependencyError, match="ffprobe is needed"):
        media.probe(files["wav"])


def test_extract_subtitle_streams(
    files: dict[str, Path], speech: tuple[Path, list[tuple[int, int, str]]]
) -> None:
    _, cues = speech
    for kind in ("mp4", "mkv", "webm"):
        text = media.extract_subtitle_stream(files[kind], 0)
        for _, _, line in cues:
            assert line in text
        assert "-->" in text


def test_extract_bitmap_and_missing_stream(files: dict[str, Path]) -> None:
    pr = media.probe(files["mp4"])
    pgs = dataclasses.replace(pr.subtitle_streams[0], codec="hdmv_pgs_subtitle", is_text=False)
    fake = dataclasses.replace(pr, subtitle_streams=(pgs,))
    with pytest.raises(SubtitleError, match="bitmap format that needs OCR"):
        media.extract_subtitle_stream(files["mp4"], 0, probe=fake)
    with pytest.raises(
        SubtitleError, match=r"has no subtitle stream 3 \(subtitle streams: 0 \(mov_text, eng"
    ):
        media.extract_subtitle_stream(files["mp4"], 3, probe=pr)


def test_to_mono() -> None:
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1)
    pcm = (stereo * 20000).astype(np.int16)
    out = media.to_mono(pcm, 44100)
    assert out.dtype == np.float32 and out.shape == (16000,)
    assert 0.55 < float(np.abs(out).max()) < 0.65
