"""Labeled speech for the audio branch: RAVDESS from ``../shared/data`` or a user's own manifest.

RAVDESS (``ravdess/labels.csv`` + ``audio_16k/``; CC BY-NC-SA 4.0) has 24 actors (odd ids male, even
female) saying two fixed sentences in 8 emotions; ``calm`` is folded into ``neutral`` as the data README
suggests. Every split here is by *speaker* (actor), never by file: a file-level split lets the model
recognise voices instead of emotions and inflates accuracy by 20+ points.

Users who cannot use RAVDESS (its licence is non-commercial) retrain on their own clips with a manifest
CSV: ``audio,start,end,label`` (+ optional ``speaker``), ``audio`` relative to the CSV, ``start``/``end`` in
seconds (empty = whole file); labels pass through :data:`emotag.models.audio.LABEL_SYNONYMS`.

Leading and trailing silence is trimmed at load time (RAVDESS clips carry about a second of studio silence
whose length would otherwise be a cue); augmentation adds random silence back.
"""

from __future__ import annotations

import csv
import wave
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emotag.errors import DataError
from emotag.timeline import LABELS

if TYPE_CHECKING:
    import numpy.typing as npt

SAMPLE_RATE = 16000

#: RAVDESS emotion names -> emotag labels.
RAVDESS_MAP: dict[str, str] = {
    "neutral": "neutral",
    "calm": "neutral",
    "happy": "joy",
    "sad": "sadness",
    "angry": "anger",
    "fearful": "fear",
    "disgust": "disgust",
    "surprised": "surprise",
}


@dataclass(frozen=True, slots=True)
class Clip:
    """One labeled clip.

    Attributes:
        path: audio file.
        label: one of :data:`~emotag.timeline.LABELS`.
        speaker: speaker id (the split unit).
        gender: ``"male"``/``"female"`` when known.
        intensity: ``"normal"``/``"strong"`` (RAVDESS), else ``"normal"``.
        start: start in seconds within the file, or ``None``.
        end: end in seconds, or ``None``.
        source: emotion name in the source data (``calm`` for RAVDESS calm).
    """

    path: Path
    label: str
    speaker: str
    gender: str | None = None
    intensity: str = "normal"
    start: float | None = None
    end: float | None = None
    source: str = ""

    @property
    def label_index(self) -> int:
        return LABELS.index(self.label)


def ravdess_dir(data_dir: Path) -> Path:
    """Accept ``../shared/data`` or ``../shared/data/ravdess``; return the folder holding ``labels.csv``."""
    for cand in (data_dir / "ravdess", data_dir):
        if (cand / "labels.csv").is_file():
            return cand
    raise DataError(
        f"{data_dir}: no ravdess/labels.csv found; pass --data pointing at the shared data folder"
    )


def read_ravdess(data_dir: Path) -> list[Clip]:
    """All RAVDESS speech clips with emotag labels.

    Raises:
        DataError: the folder or its ``labels.csv`` is missing or malformed.
    """
    root = ravdess_dir(data_dir)
    clips: list[Clip] = []
    with (root / "labels.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                emo = row["emotion"]
                clips.append(
                    Clip(
                        path=root / row["path"],
                        label=RAVDESS_MAP[emo],
                        speaker=row["speaker"],
                        gender=row.get("gender") or None,
                        intensity=row.get("intensity") or "normal",
                        source=emo,
                    )
                )
            except KeyError as exc:
                raise DataError(
                    f"{root / 'labels.csv'}: bad row {row} ({exc}); expected RAVDESS labels"
                ) from exc
    if not clips:
        raise DataError(f"{root / 'labels.csv'}: no clips listed")
    return clips


def read_manifest(csv_path: Path) -> list[Clip]:
    """Clips from a user manifest (``audio,start,end,label`` + optional ``speaker``).

    Read like every manifest (:func:`emotag.evaluation.read_table`: column names in any case, commas,
    semicolons or tabs, times checked by line). Labels go through :func:`~emotag.models.audio.map_label`
    (``Happy``, ``ang``, ``calm``, ...); rows whose label has no emotag twin, or that have no audio, are
    skipped. Without a ``speaker`` every audio file is its own group, so splits still never share a file.

    Raises:
        DataError: the file is missing, has no ``audio``/``label`` column, has a malformed time, or yields
            no usable row.
    """
    from emotag.evaluation import cell, read_table, row_times
    from emotag.models.audio import map_label

    if not csv_path.is_file():
        raise DataError(
            f"{csv_path}: audio manifest not found; pass a CSV with columns audio,start,end,label"
        )
    columns, rows = read_table(csv_path, "audio,start,end,label,speaker")
    if not {"audio", "label"} <= columns.keys():
        raise DataError(f"{csv_path}: needs columns audio and label (optional start, end, speaker)")
    base = csv_path.parent
    clips: list[Clip] = []
    for line, row in rows:
        source = cell(columns, row, "label")
        lab = map_label(source)
        audio = cell(columns, row, "audio").strip()
        if lab is None or not audio:
            continue
        start, end = row_times(cell(columns, row, "start"), cell(columns, row, "end"), csv_path, line)
        speaker = cell(columns, row, "speaker").strip() or audio
        clips.append(Clip(base / audio, lab, speaker, start=start, end=end, source=source))
    if not clips:
        raise DataError(f"{csv_path}: no row with an audio path and a label among {', '.join(LABELS)}")
    return clips


def _read_wav16(path: Path) -> npt.NDArray[np.float32] | None:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getframerate() != SAMPLE_RATE:
                return None
            ch = w.getnchannels()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    except (wave.Error, EOFError):
        return None
    if ch > 1:
        data = data.reshape(-1, ch).mean(1)
    return data


def load_clip(clip: Clip) -> npt.NDArray[np.float32]:
    """The clip's 16 kHz mono float32 samples (16-bit 16 kHz WAV read directly, anything else via ffmpeg).

    Raises:
        DataError: the file is missing or cannot be decoded.
    """
    if not clip.path.is_file():
        raise DataError(f"{clip.path}: audio file missing; fix the path in the data manifest")
    data = _read_wav16(clip.path) if clip.path.suffix.lower() == ".wav" else None
    if data is None:
        from emotag.errors import EmotagError
        from emotag.media import load_audio

        try:
            data = load_audio(clip.path, sample_rate=SAMPLE_RATE)
        except EmotagError as exc:
            raise DataError(f"{clip.path}: cannot decode ({exc})") from exc
    if clip.start is not None or clip.end is not None:
        a = int(round((clip.start or 0.0) * SAMPLE_RATE))
        b = int(round(clip.end * SAMPLE_RATE)) if clip.end is not None else data.shape[0]
        whole = data.shape[0]
        data = data[max(0, a) : max(a, b)]
        if data.size == 0:
            raise DataError(
                f"{clip.path}: the clip from {clip.start or 0:g} s is outside the audio "
                f"({whole / SAMPLE_RATE:.2f} s); fix its start and end in the data manifest"
            )
    return np.ascontiguousarray(data, dtype=np.float32)


def trim_silence(
    x: npt.NDArray[np.float32], margin_s: float = 0.05, range_db: float = 40.0
) -> npt.NDArray[np.float32]:
    """Cut leading/trailing frames more than ``range_db`` under the loudest 20 ms frame (keeps a margin)."""
    hop = 320
    n = x.shape[0] // hop
    if n < 3:
        return x
    e = 10 * np.log10(np.square(x[: n * hop].reshape(n, hop)).mean(1) + 1e-10)
    on = np.flatnonzero(e > e.max() - range_db)
    m = int(margin_s * SAMPLE_RATE)
    a = max(0, on[0] * hop - m)
    b = min(x.shape[0], (on[-1] + 1) * hop + m)
    return x[a:b]


def load_clips(clips: Sequence[Clip], trim: bool = True) -> list[npt.NDArray[np.float32]]:
    """Load (and trim) every clip's waveform."""
    return [trim_silence(load_clip(c)) if trim else load_clip(c) for c in clips]


def speakers(clips: Iterable[Clip]) -> list[str]:
    """Sorted distinct speaker ids."""
    return sorted({c.speaker for c in clips})


def speaker_folds(clips: Sequence[Clip], k: int = 6, seed: int = 0) -> list[list[str]]:
    """Partition speakers into ``k`` folds, balancing gender (each RAVDESS fold: 2 male + 2 female).

    Deterministic for a seed; every speaker lands in exactly one fold.
    """
    rng = np.random.default_rng(seed)
    by_gender: dict[str, list[str]] = defaultdict(list)
    gender_of = {c.speaker: (c.gender or "?") for c in clips}
    for s in sorted(gender_of):
        by_gender[gender_of[s]].append(s)
    folds: list[list[str]] = [[] for _ in range(k)]
    pos = 0
    for g in sorted(by_gender):
        group = list(by_gender[g])
        rng.shuffle(group)
        for s in group:
            folds[pos % k].append(s)
            pos += 1
    return [sorted(f) for f in folds if f]


def split_by_speaker(clips: Sequence[Clip], held_out: Iterable[str]) -> tuple[list[int], list[int]]:
    """Indices of clips whose speaker is not / is in ``held_out``."""
    hs = set(held_out)
    train = [i for i, c in enumerate(clips) if c.speaker not in hs]
    test = [i for i, c in enumerate(clips) if c.speaker in hs]
    return train, test
