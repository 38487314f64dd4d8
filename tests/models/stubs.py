"""Stand-in branches for fusion/model tests: small, deterministic, and honest about evidence.

``KeywordTextBranch`` reads emotion words (no words → uniform, evidence 0); ``ToneAudioBranch`` reads the
dominant frequency of a waveform (silence → uniform, evidence 0). Both return real
:class:`~emotag.models.branches.BranchOutput` values, so fusion and the model run their real code paths.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emotag.models.branches import BranchOutput
from emotag.timeline import LABEL_VALENCE_AROUSAL, LABELS

SR = 16000
KEYWORDS = {
    "angry": "anger",
    "furious": "anger",
    "disgusting": "disgust",
    "gross": "disgust",
    "scared": "fear",
    "afraid": "fear",
    "happy": "joy",
    "wonderful": "joy",
    "love": "joy",
    "sad": "sadness",
    "miserable": "sadness",
    "wow": "surprise",
    "unbelievable": "surprise",
}
#: Tone frequency (Hz) that the audio stub maps to each label.
TONE_HZ = {lb: 200.0 + 150.0 * i for i, lb in enumerate(LABELS)}


def _output(probs: np.ndarray, evidence: np.ndarray, emb: np.ndarray) -> BranchOutput:
    v = np.array([[LABEL_VALENCE_AROUSAL[lb][0] for lb in LABELS]], np.float32)
    a = np.array([[LABEL_VALENCE_AROUSAL[lb][1] for lb in LABELS]], np.float32)
    return BranchOutput(
        probs.astype(np.float32),
        (probs * v).sum(1).astype(np.float32),
        (probs * a).sum(1).astype(np.float32),
        emb.astype(np.float32),
        evidence.astype(np.float32),
    )


class KeywordTextBranch:
    name = "stub-text"
    embedding_dim = 8

    def __init__(self) -> None:
        self.calls = 0

    def infer(self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None) -> BranchOutput:
        self.calls += 1
        n = len(texts)
        probs = np.full((n, len(LABELS)), 1 / len(LABELS))
        ev = np.zeros(n)
        emb = np.zeros((n, self.embedding_dim))
        for i, t in enumerate(texts):
            words = [w.strip(".,!?").lower() for w in t.split()]
            hits = [KEYWORDS[w] for w in words if w in KEYWORDS]
            if hits:  # the mass is shared between every emotion word found
                probs[i] = 0.02
                for h in hits:
                    probs[i, LABELS.index(h)] += (1 - 0.02 * len(LABELS)) / len(hits)
                ev[i] = 0.9
                emb[i, LABELS.index(hits[0]) % self.embedding_dim] = 1.0
            emb[i, -1] = len(words) / 10
        return _output(probs, ev, emb)


class ToneAudioBranch:
    name = "stub-audio"
    embedding_dim = 4

    def __init__(self) -> None:
        self.calls = 0

    def infer(self, waveforms: Sequence[np.ndarray]) -> BranchOutput:
        self.calls += 1
        n = len(waveforms)
        probs = np.full((n, len(LABELS)), 1 / len(LABELS))
        ev = np.zeros(n)
        emb = np.zeros((n, self.embedding_dim))
        freqs = np.array(list(TONE_HZ.values()))
        for i, w in enumerate(waveforms):
            w = np.asarray(w, dtype=np.float64)
            rms = float(np.sqrt(np.mean(w**2))) if w.size else 0.0
            emb[i, 0] = rms
            if rms < 1e-3:
                continue
            spec = np.abs(np.fft.rfft(w))
            bins = np.fft.rfftfreq(w.size, 1 / SR)
            energy = np.array([spec[np.abs(bins - f) < 20].sum() for f in freqs]) ** 2
            if energy.sum() <= 0:
                continue
            share = energy / energy.sum()  # mixed tones share the mass
            probs[i] = 0.03 + (1 - 0.03 * len(LABELS)) * share
            ev[i] = 0.8
            emb[i, 1] = float(bins[int(np.argmax(spec))]) / 1000
        return _output(probs, ev, emb)


def tone(label: str, seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    """A pure tone the audio stub reads as ``label``."""
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * TONE_HZ[label] * t)).astype(np.float32)
