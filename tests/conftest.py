"""Shared fixtures: media generated at test time (ffmpeg + espeak-ng) and a deterministic fake model.

The fake model goes through the real seam (``emotag.tag(model=...)`` / the model loader), like llm's mock
models: it reads words for the text branch and measures loudness for the audio branch, so tests can
assert that the pipeline hands each model the right text, context and audio slice.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from emotag.models.base import Prediction, Segment
from emotag.timeline import LABELS, Emotion
from tests import mediagen

SPEECH_LINES: list[tuple[str, dict[str, int]]] = [
    ("I am so happy today, this is wonderful.", {"pitch": 75, "speed": 180}),
    ("I hate this, get out of my house.", {"pitch": 40, "speed": 190, "amplitude": 180}),
    ("The meeting is at noon on Friday.", {}),
]

_WORDS = {
    "happy": "joy",
    "wonderful": "joy",
    "great": "joy",
    "hate": "anger",
    "miss": "sadness",
    "afraid": "fear",
}


def one_hot(label: str, p: float = 0.8) -> Emotion:
    rest = (1 - p) / (len(LABELS) - 1)
    return Emotion.from_mapping({lab: (p if lab == label else rest) for lab in LABELS})


class KeywordModel:
    """Deterministic stand-in for an emotion model: keywords for text, loudness for audio."""

    name = "keyword-test-model"

    def __init__(self) -> None:
        self.seen: list[Segment] = []

    def predict(self, segments: Sequence[Segment]) -> list[Prediction]:
        self.seen.extend(segments)
        out = []
        for seg in segments:
            words = seg.text.lower().replace(",", " ").replace(".", " ").split()
            text_label = next((_WORDS[w] for w in words if w in _WORDS), "neutral")
            text = one_hot(text_label) if seg.text else None
            audio = None
            if seg.audio is not None:
                rms = float(np.sqrt(np.mean(np.square(seg.audio)))) if seg.audio.size else 0.0
                audio = one_hot("neutral" if rms < 0.01 else "surprise", 0.5)
            fused = text or audio or one_hot("neutral", 1 / len(LABELS))
            mismatch = (
                0.9 if (text_label == "joy" and audio is not None and audio.label != "neutral") else 0.1
            )
            out.append(Prediction(fused, text, audio, mismatch, mismatch > 0.5))
        return out


@pytest.fixture
def keyword_model() -> KeywordModel:
    return KeywordModel()


@pytest.fixture(scope="session")
def tools() -> None:
    if not mediagen.have_tools():
        pytest.skip("ffmpeg, ffprobe and espeak-ng are needed (scripts/setup installs them)")


@pytest.fixture(scope="session")
def speech_media(
    tmp_path_factory: pytest.TempPathFactory, tools: None
) -> tuple[Path, list[tuple[int, int, str]]]:
    """An mp4 with three spoken lines and its cues (start_ms, end_ms, text), built once per session."""
    root = tmp_path_factory.mktemp("speech")
    cues = mediagen.concat_speech(SPEECH_LINES, root / "speech.wav", gap_s=0.5)
    mp4 = mediagen.make_video(root / "talk.mp4", root / "speech.wav")
    return mp4, cues


@pytest.fixture
def talk(tmp_path: Path, speech_media: tuple[Path, list[tuple[int, int, str]]]) -> Path:
    """A private copy of the speech mp4 with a sidecar ``talk.srt`` in ``tmp_path``."""
    src, cues = speech_media
    dst = tmp_path / "talk.mp4"
    shutil.copy(src, dst)
    mediagen.write_srt(cues, tmp_path / "talk.srt")
    return dst
