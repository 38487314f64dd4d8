"""Fixed Tracks for exporter tests and golden files (plain functions, no pytest imports).

Every case shares one set of cues (joy, sadness with a ``|`` in its text, a zero-length neutral cue, a
voice/words mismatch, non-ASCII text, a two-line anger cue) shifted to the times each case needs:

* ``p25``: 25 fps video, no own timecode.
* ``df2997``: 29.97 drop-frame, cues straddling 00:01:00;02 and 00:10:00;00 and one past one hour.
* ``film23976``: 23.976 (always non-drop, counted at 24).
* ``hour25``: 25 fps media whose own timecode starts at 01:00:00:00.
* ``audio``: audio-only (no frame rate).
"""

from __future__ import annotations

from fractions import Fraction

from emotag.timeline import Cue, Emotion, Media, TaggedCue, Track

# (start_ms, end_ms, text, speaker, fused {label: p}, text evidence, audio evidence, mismatch, mismatched)
_BASE: tuple[
    tuple[
        int,
        int,
        str,
        str | None,
        dict[str, float],
        dict[str, float] | None,
        dict[str, float] | None,
        float,
        bool,
    ],
    ...,
] = (
    (
        1000,
        3500,
        "Hello, <i>world</i>!",
        "Ana",
        {"joy": 0.82, "neutral": 0.12, "surprise": 0.06},
        {"joy": 0.9, "neutral": 0.1},
        {"joy": 0.7, "neutral": 0.3},
        0.05,
        False,
    ),
    (
        4000,
        6200,
        "I miss her so much.",
        "Ben",
        {"sadness": 0.91, "neutral": 0.09},
        {"sadness": 0.95, "neutral": 0.05},
        {"sadness": 0.8, "neutral": 0.2},
        0.1,
        False,
    ),
    (
        6300,
        8040,
        "Still... | it hurts",
        "Ben",
        {"sadness": 0.7, "fear": 0.2, "neutral": 0.1},
        None,
        {"sadness": 0.7, "fear": 0.3},
        0.0,
        False,
    ),
    (9000, 9000, "Hmm.", None, {"neutral": 0.6, "joy": 0.4}, {"neutral": 0.6, "joy": 0.4}, None, 0.0, False),
    (
        12000,
        15500,
        "Oh great, just great.",
        "Ana",
        {"joy": 0.55, "anger": 0.45},
        {"joy": 0.9, "anger": 0.1},
        {"anger": 0.8, "joy": 0.2},
        0.8,
        True,
    ),
    (
        16000,
        20000,
        "Ça va? Très bien — 東京 😀",
        "Zoë",
        {"surprise": 0.66, "joy": 0.34},
        {"surprise": 0.6, "joy": 0.4},
        {"surprise": 0.7, "joy": 0.3},
        0.02,
        False,
    ),
    (
        25000,
        31000,
        "Get out!\nNow!",
        None,
        {"anger": 0.95, "disgust": 0.05},
        {"anger": 0.9, "disgust": 0.1},
        {"anger": 0.99, "disgust": 0.01},
        0.01,
        False,
    ),
)

#: Offsets (ms) added to the base cues of each case; drop-frame cues are spread across the DF boundaries.
_DF_OFFSETS = (58_900, 58_900, 58_900, 58_900, 598_600, 598_600, 3_600_000)


def _emotion(d: dict[str, float] | None) -> Emotion | None:
    return None if d is None else Emotion.from_mapping(d)


def _cues(offsets: tuple[int, ...] | None = None) -> tuple[TaggedCue, ...]:
    out = []
    for i, (start, end, text, speaker, fused, tev, aev, mismatch, mismatched) in enumerate(_BASE):
        off = 0 if offsets is None else offsets[i]
        emo = Emotion.from_mapping(fused)
        out.append(
            TaggedCue(
                cue=Cue(index=i + 1, start_ms=start + off, end_ms=end + off, text=text, speaker=speaker),
                emotion=emo,
                text=_emotion(tev),
                audio=_emotion(aev),
                mismatch=mismatch,
                mismatched=mismatched,
            )
        )
    return tuple(out)


def make(case: str) -> Track:
    """The fixed Track of a case (see the module docstring)."""
    if case == "p25":
        media = Media("/media/talk show.mp4", 40_000, Fraction(25), has_video=True, width=1920, height=1080)
        cues = _cues()
    elif case == "df2997":
        media = Media(
            "/media/df_clip.mov",
            3_640_000,
            Fraction(30000, 1001),
            start_timecode="00:00:00;00",
            drop_frame=True,
            has_video=True,
            width=1280,
            height=720,
        )
        cues = _cues(_DF_OFFSETS)
    elif case == "film23976":
        media = Media(
            "/media/film.mkv", 40_000, Fraction(24000, 1001), has_video=True, width=1920, height=800
        )
        cues = _cues()
    elif case == "hour25":
        media = Media(
            "/media/cam_A001.mxf",
            40_000,
            Fraction(25),
            start_timecode="01:00:00:00",
            has_video=True,
            width=1920,
            height=1080,
        )
        cues = _cues()
    elif case == "audio":
        media = Media("/media/podcast.mp3", 40_000, None)
        cues = _cues()
    else:
        raise ValueError(case)
    return Track(
        media=media,
        cues=cues,
        model="fixture-model",
        source="sidecar:talk.srt",
        warnings=("cue 4 is zero-length",),
    )


CASES: tuple[str, ...] = ("p25", "df2997", "film23976", "hour25", "audio")
