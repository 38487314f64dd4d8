"""Synthetic non-speech audio for fusion and the speech detector."""

from __future__ import annotations

import numpy as np
import pytest

from emotag.training.nonspeech import ALL_KINDS, BASIC_KINDS, MUSIC_KINDS, SAMPLE_RATE, nonspeech_audio


def test_every_kind_is_made_deterministically_at_its_length_and_level() -> None:
    waves = nonspeech_audio(2 * len(ALL_KINDS), seed=3, kinds=ALL_KINDS)
    again = nonspeech_audio(2 * len(ALL_KINDS), seed=3, kinds=ALL_KINDS)
    assert all(np.array_equal(a, b) for a, b in zip(waves, again, strict=True))
    assert not np.array_equal(waves[0], nonspeech_audio(1, seed=4, kinds=ALL_KINDS)[0])
    for w in waves:
        assert w.dtype == np.float32 and np.isfinite(w).all()
        assert SAMPLE_RATE <= w.size <= 5 * SAMPLE_RATE
        peak = float(np.abs(w).max())
        assert 10 ** (-2.5) * 0.99 <= peak <= 10 ** (-0.5) * 1.01
    # the music-like kinds are not silence: each carries energy across its length
    for k, w in zip(ALL_KINDS, waves, strict=False):
        if k in MUSIC_KINDS:
            quarters = np.array_split(w, 4)
            assert all(float(np.sqrt(np.mean(q**2))) > 1e-4 for q in quarters), k


def test_the_default_kinds_are_the_basic_ones_and_unknown_kinds_are_refused() -> None:
    assert set(BASIC_KINDS) | set(MUSIC_KINDS) == set(ALL_KINDS) and not set(BASIC_KINDS) & set(MUSIC_KINDS)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(nonspeech_audio(8, 1), nonspeech_audio(8, 1, kinds=BASIC_KINDS), strict=True)
    )
    with pytest.raises(ValueError, match="unknown non-speech kinds"):
        nonspeech_audio(2, 0, kinds=("silence", "opera"))
