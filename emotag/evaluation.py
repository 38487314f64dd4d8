"""Evaluate an emotion model on a labelled manifest (``emotag eval MANIFEST.csv``).

Manifest format (CSV with a header; column names are case-insensitive; fields are separated by commas, or
by semicolons or tabs when the header holds no comma, as spreadsheets in comma-decimal locales save them):

=======  =====================================================================================
audio    optional: media path, relative to the CSV's folder (any format ffmpeg reads)
start    optional: segment start in seconds (empty = 0)
end      optional: segment end in seconds (empty = end of file)
text     optional: the words spoken in the segment
label    required: one of :data:`~emotag.timeline.LABELS` after the ``label_map`` is applied
speaker  optional: who speaks (case, spacing ignored); one speaker's rows share the voice normalisation
=======  =====================================================================================

Per-speaker normalisation (``group_by``): ``emotag tag`` binds the model to each media file
(``for_file``), so pitch, energy and spectral shape are read relative to the file's own voices. ``emotag
eval`` does the same per group of rows: ``auto`` groups by ``speaker`` where that column is filled,
otherwise by audio file (the segments of one long recording), and puts the remaining clips (no speaker,
one row per file: a corpus of short clips) into one group, read like one recording session of several
voices; ``speaker`` and ``file`` use only that key; ``manifest`` puts every row with audio into one group;
``none`` scores every row on its own. Only the audio is used for the statistics, never the labels. Groups
with too little speech (fewer than the audio branch's minimum cues) are scored without normalisation,
exactly as ``emotag tag`` treats such a file.

Why the leftover clips form a group: normalising against a group of unknown, mixed speakers beats scoring
each clip alone. On the 6 speaker-independent RAVDESS folds, with all 4 test actors of a fold as one group
(``python bench/audio_cv.py --branch whisper``, ``ua_corpus``), the default branch's unweighted accuracy
was 0.778 against 0.748 alone on clean clips (higher in 5 of 6 folds; the weakest fold 0.632 -> 0.710)
and 0.615 against 0.584 on degraded copies (2026-11-26). Per speaker is best (0.829 / 0.645): give a
``speaker`` column where it is known.

Each row needs audio or text (or both). Times are seconds, not negative, ``end`` after ``start``, and a
segment must start inside its file: a row that breaks this is an error naming its line, never a row
silently scored without its audio. Labels go through ``label_map`` (``{"happy": "joy", "other": ""}``);
a row whose label maps to nothing in LABELS is skipped and counted per original label, so a mis-typed map
shows up in the report instead of silently shrinking the data. Every audio file is decoded once however
many rows point into it (16-bit 16 kHz WAV, the corpora's format, is read directly; anything else goes
through :func:`emotag.media.load_audio`, i.e. ffmpeg), then rows are scored in batches.

With ``modality="both"`` the report also carries each modality alone — the branch outputs the fused
prediction was made from (:attr:`~emotag.models.base.Prediction.text` / ``.audio``), over the rows where that
modality was present — and the mismatch flag rate. The library returns an :class:`EvalReport`, every
scored row's prediction included; only the CLI prints (:func:`format_report` renders the text table,
:func:`predictions_csv` the rows, which ``emotag eval --predictions FILE`` writes atomically).
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag import metrics
from emotag.errors import DataError, InputError
from emotag.models.base import SAMPLE_RATE, EmotionModel, Prediction, Segment, bind_to_file
from emotag.timeline import LABELS, Emotion, speaker_key

if TYPE_CHECKING:
    import numpy.typing as npt

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One labelled segment of a manifest (``audio`` resolved to an absolute path)."""

    line: int
    label: str
    text: str = ""
    audio: Path | None = None
    start: float | None = None
    end: float | None = None
    speaker: str = ""


@dataclass(frozen=True, slots=True)
class ScoreSet:
    """Metrics of one set of predictions against the truth.

    Attributes:
        name: ``fused``, ``text`` or ``audio``.
        n: number of scored rows.
        accuracy, unweighted_accuracy, macro_f1, weighted_f1, ece: see :mod:`emotag.metrics`.
        ece_floor: the ECE a perfectly calibrated model with these confidences shows on this many rows
            (:func:`emotag.metrics.ece_floor`): an ECE near it is as good as the set can tell.
        confusion: rows = true, columns = predicted, in LABELS order.
        recall: per-class recall (``None`` where a class has no true rows).
    """

    name: str
    n: int
    accuracy: float
    unweighted_accuracy: float
    macro_f1: float
    weighted_f1: float
    ece: float
    ece_floor: float
    confusion: tuple[tuple[int, ...], ...]
    recall: tuple[float | None, ...]

    @classmethod
    def compute(cls, name: str, y_true: Sequence[int], probs: npt.NDArray[np.float64]) -> ScoreSet:
        """Score ``probs`` (``(n, 7)``) against integer labels."""
        k = len(LABELS)
        y = np.asarray(y_true, dtype=np.int64)
        pred = probs.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
        cm = metrics.confusion_matrix(y, pred, k)
        rec = metrics.per_class_recall(cm)
        return cls(
            name=name,
            n=int(len(y)),
            accuracy=metrics.accuracy(y, pred),
            unweighted_accuracy=metrics.unweighted_accuracy(y, pred, k),
            macro_f1=metrics.macro_f1(y, pred, k),
            weighted_f1=metrics.weighted_f1(y, pred, k),
            ece=metrics.expected_calibration_error(probs, y) if len(y) else 0.0,
            ece_floor=metrics.ece_floor(probs) if len(y) else 0.0,
            confusion=tuple(tuple(int(v) for v in row) for row in cm),
            recall=tuple(None if np.isnan(r) else float(r) for r in rec),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "unweighted_accuracy": self.unweighted_accuracy,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
            "ece": self.ece,
            "ece_floor": self.ece_floor,
            "recall": dict(zip(LABELS, self.recall, strict=True)),
            "confusion": [list(r) for r in self.confusion],
        }


@dataclass(frozen=True, slots=True)
class EvalReport:
    """What ``emotag eval`` reports.

    Attributes:
        manifest: the manifest evaluated.
        model: the model's name.
        modality: ``both``, ``text`` or ``audio``.
        rows: data rows in the manifest.
        skipped: original label → number of rows skipped because it maps to no known label.
        scores: ``fused`` (or the single modality's) scores first, then (for ``both``) ``text`` and
            ``audio`` alone.
        mismatch_rate: share of rows with both modalities whose mismatch flag fired (``None`` unless
            ``both``).
        mean_mismatch: mean mismatch score over those rows.
        seconds: wall time of decoding + scoring.
        labels: the label order of the confusion matrices.
        groups: normalisation groups of more than one row (see ``group_by``).
        group_by: the grouping asked for.
        predictions: each scored row with the model's answer, in manifest order (for error analysis:
            :func:`predictions_csv`; not part of :meth:`to_dict`).
    """

    manifest: str
    model: str
    modality: str
    rows: int
    skipped: dict[str, int]
    scores: tuple[ScoreSet, ...]
    mismatch_rate: float | None = None
    mean_mismatch: float | None = None
    seconds: float = 0.0
    labels: tuple[str, ...] = field(default=LABELS)
    groups: int = 0
    group_by: str = "none"
    predictions: tuple[tuple[ManifestRow, Prediction], ...] = ()

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def score(self, name: str) -> ScoreSet | None:
        """The score set called ``name`` (``fused``, ``text``, ``audio``), if present."""
        return next((s for s in self.scores if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``emotag eval --json``)."""
        return {
            "manifest": self.manifest,
            "model": self.model,
            "modality": self.modality,
            "labels": list(self.labels),
            "rows": self.rows,
            "scored": self.scores[0].n if self.scores else 0,
            "skipped": dict(self.skipped),
            "scores": {s.name: s.to_dict() for s in self.scores},
            "mismatch_rate": self.mismatch_rate,
            "mean_mismatch": self.mean_mismatch,
            "group_by": self.group_by,
            "groups": self.groups,
            "seconds": round(self.seconds, 3),
        }


# ------------------------------------------------------------------------------------------- manifest


def _float(value: str, path: Path, line: int, column: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:  # float() also reads "nan", "inf" and "-3"
        raise DataError(f"{path}:{line}: {column} {value!r} is not a number of seconds; fix the manifest")
    return seconds


def _delimiter(header: str) -> str:
    """The manifest's field separator: a comma, or a semicolon or tab when the header has no comma (a
    spreadsheet saved as CSV where the decimal mark is a comma writes semicolons)."""
    if "," not in header:
        for sep in (";", "\t"):
            if sep in header:
                return sep
    return ","


def read_table(manifest: Path, header: str) -> tuple[dict[str, str], list[tuple[int, dict[str, str]]]]:
    """The one CSV reader of every manifest (``emotag eval``, ``emotag train --audio-data / --paired``):
    ``(columns, rows)``, where ``columns`` maps each lower-case column name to the header as written and
    each row comes with the line it ends on. ``header`` is what the error messages suggest.

    Raises:
        InputError: the manifest is missing or unreadable.
        DataError: not UTF-8, or no header.
    """
    if not manifest.is_file():
        raise InputError(str(manifest), "no such manifest file", f"pass a CSV with columns {header}")
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter=_delimiter(f.readline()))
            f.seek(0)
            columns = {(name or "").strip().lower(): name for name in reader.fieldnames or ()}
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise DataError(f"{manifest}: not UTF-8 text ({exc}); save the manifest as UTF-8") from exc
    except OSError as exc:
        raise InputError(str(manifest), f"cannot read ({exc.strerror})") from exc
    if not columns:
        raise DataError(f"{manifest}: empty; the first line must be the header {header}")
    return columns, rows


def cell(columns: Mapping[str, str], row: Mapping[str, str | None], name: str) -> str:
    """The value of column ``name`` (lower case) in a :func:`read_table` row, ``""`` when absent."""
    key = columns.get(name)
    return (row.get(key) or "") if key else ""


def row_times(start: str, end: str, manifest: Path, line: int) -> tuple[float | None, float | None]:
    """A row's ``start`` and ``end`` cells in seconds (``None`` when empty).

    Raises:
        DataError: a time is not a number, negative or infinite, or ``end`` is not after ``start``.
    """
    a = _float(start, manifest, line, "start")
    b = _float(end, manifest, line, "end")
    if a is not None and b is not None and b <= a:
        raise DataError(f"{manifest}:{line}: end {b:g} s is not after start {a:g} s; fix the row")
    return a, b


def read_manifest(
    manifest: Path, label_map: Mapping[str, str] | None = None
) -> tuple[list[ManifestRow], int, dict[str, int]]:
    """Read a manifest: ``(rows kept, rows in file, skipped label counts)``.

    Raises:
        InputError: the manifest is missing or unreadable.
        DataError: no ``label`` column, a row with neither audio nor text, or a malformed time.
    """
    fields, raw = read_table(manifest, "audio,start,end,text,label")
    if "label" not in fields:
        raise DataError(f"{manifest}: no 'label' column; the header needs audio,start,end,text,label")
    if "audio" not in fields and "text" not in fields:
        raise DataError(f"{manifest}: needs an 'audio' or a 'text' column (or both)")
    lmap = {k.strip().lower(): v.strip().lower() for k, v in (label_map or {}).items()}
    base = manifest.parent

    def col(row: dict[str, str], name: str) -> str:
        return cell(fields, row, name)

    rows: list[ManifestRow] = []
    skipped: Counter[str] = Counter()
    for i, r in raw:
        original = col(r, "label").strip().lower()
        label = lmap.get(original, original)
        if label not in LABELS:
            skipped[original or "(empty)"] += 1
            continue
        text = col(r, "text").strip()
        audio_s = col(r, "audio").strip()
        if not text and not audio_s:
            raise DataError(f"{manifest}:{i}: row has neither audio nor text; fill one or drop the row")
        audio = (base / audio_s) if audio_s else None
        start, end = row_times(col(r, "start"), col(r, "end"), manifest, i)
        rows.append(ManifestRow(i, label, text, audio, start, end, col(r, "speaker").strip()))
    return rows, len(raw), dict(skipped)


def _read_pcm16_wav(path: Path) -> npt.NDArray[np.float32] | None:
    """16-bit PCM WAV already at 16 kHz, read directly (no ffmpeg process); ``None`` for anything else."""
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getframerate() != SAMPLE_RATE or w.getcomptype() != "NONE":
                return None
            ch = w.getnchannels()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    except (wave.Error, EOFError, OSError):
        return None
    if data.size == 0:
        return None
    return data.reshape(-1, ch).mean(axis=1).astype(np.float32) if ch > 1 else data


def _decode(path: Path) -> npt.NDArray[np.float32]:
    """Decode one file to 16 kHz mono float32 (corpus WAVs directly, everything else through ffmpeg)."""
    if path.suffix.lower() == ".wav":
        data = _read_pcm16_wav(path)
        if data is not None:
            return data
    from emotag.media import load_audio

    return load_audio(path, sample_rate=SAMPLE_RATE)


#: Files decoded at once by :func:`build_segments` (at most; one per CPU core).
DECODE_WORKERS = 4


def build_segments(rows: Sequence[ManifestRow], progress: Progress | None = None) -> list[Segment]:
    """Decode each referenced audio file once and cut every row's segment out of it.

    Files are decoded a few at a time (one per CPU core, at most :data:`DECODE_WORKERS`): a file that is
    not 16 kHz 16-bit PCM WAV costs two ffmpeg processes (probe, decode), mostly their start-up, so two at
    once on two cores take 65-70 ms per short clip instead of 150 (2026-11-26).
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    cache: dict[Path, npt.NDArray[np.float32]] = {}
    files = sorted({r.audio for r in rows if r.audio is not None})
    workers = max(1, min(DECODE_WORKERS, os.cpu_count() or 1, len(files)))
    with ThreadPoolExecutor(workers) as pool:
        jobs = {pool.submit(_decode, path): path for path in files}
        try:
            for i, job in enumerate(as_completed(jobs)):
                cache[jobs[job]] = job.result()
                if progress:
                    progress("decoding audio", i + 1, len(files))
        except BaseException:
            for job in jobs:
                job.cancel()
            raise
    segs = []
    for r in rows:
        wav = None
        if r.audio is not None:
            full = cache[r.audio]
            a = 0 if r.start is None else max(0, int(round(r.start * SAMPLE_RATE)))
            b = full.shape[0] if r.end is None else min(full.shape[0], int(round(r.end * SAMPLE_RATE)))
            if b <= a:  # the row's times fall outside the file: it would be scored without its audio
                raise DataError(
                    f"{r.audio}: manifest line {r.line} starts at {(r.start or 0):g} s, at or past the end "
                    f"of the audio ({full.shape[0] / SAMPLE_RATE:.2f} s); fix the row's start and end"
                )
            wav = full[a:b]
        segs.append(Segment(r.text, wav))
    return segs


# ----------------------------------------------------------------------------------------- evaluate


#: Accepted values of ``group_by`` (see the module docstring).
GROUP_BY = ("auto", "speaker", "file", "manifest", "none")


def normalisation_groups(rows: Sequence[ManifestRow], group_by: str = "auto") -> list[list[int]]:
    """Row indices grouped for per-speaker normalisation, in manifest order (singletons when ungrouped)."""
    if group_by not in GROUP_BY:
        raise DataError(f"unknown grouping {group_by!r}; choose one of {', '.join(GROUP_BY)}")
    keys: list[tuple[str, str]] = []
    for i, r in enumerate(rows):
        if r.audio is not None and group_by == "manifest":
            keys.append(("manifest", ""))
        elif group_by in ("auto", "speaker") and (name := speaker_key(r.speaker)) is not None:
            keys.append(("speaker", name))
        elif group_by in ("auto", "file") and r.audio is not None:
            keys.append(("file", str(r.audio)))
        else:
            keys.append(("row", str(i)))
    if group_by == "auto":
        # Clips of unknown speakers, one file each (a corpus of short clips): read as one recording session.
        count = Counter(keys)
        keys = [("manifest", "") if k[0] == "file" and count[k] == 1 else k for k in keys]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _predict_grouped(
    model: EmotionModel,
    segments: Sequence[Segment],
    groups: Sequence[Sequence[int]],
    batch_size: int,
    progress: Progress | None,
) -> list[Prediction | None]:
    """Predictions per row; each group goes through ``model.for_file`` when the model has it."""
    preds: list[Prediction | None] = [None] * len(segments)
    done = 0
    singles: list[int] = []
    batches: list[tuple[EmotionModel, list[int]]] = []
    grouped = sum(len(g) for g in groups if len(g) > 1) if callable(getattr(model, "for_file", None)) else 0
    read = 0
    for g in groups:
        if len(g) > 1 and grouped:

            def voices(d: int, _total: int, before: int = read) -> None:
                if progress:
                    progress("reading voices", before + d, grouped)

            bound = bind_to_file(model, [segments[i] for i in g], voices)
            read += len(g)
            batches += [(bound, list(g[k : k + batch_size])) for k in range(0, len(g), batch_size)]
        else:
            singles += g
    batches += [(model, singles[k : k + batch_size]) for k in range(0, len(singles), batch_size)]
    for m, idx in batches:
        out = m.predict([segments[i] for i in idx])
        if len(out) != len(idx):
            raise DataError(f"model {model.name!r} returned {len(out)} predictions for {len(idx)} segments")
        for i, p in zip(idx, out, strict=True):
            preds[i] = p
        done += len(idx)
        if progress:
            progress("scoring", done, len(segments))
    return preds


def _probs(emotions: Sequence[Emotion]) -> npt.NDArray[np.float64]:
    return np.array([e.probs for e in emotions], dtype=np.float64).reshape(len(emotions), len(LABELS))


def evaluate(
    manifest: Path,
    *,
    model: EmotionModel | str | Path | None = None,
    modality: str = "both",
    label_map: Mapping[str, str] | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
    group_by: str = "auto",
) -> EvalReport:
    """Score every row of ``manifest`` with ``model`` and compute the metrics.

    Args:
        manifest: the CSV (see the module docstring).
        model: an :class:`EmotionModel`, or a spec for :func:`emotag.models.load_model` (``None`` = default).
        modality: ``both``, ``text`` or ``audio``; a multimodal model is switched to it.
        label_map: label synonyms, ``old -> new`` (a new label outside LABELS drops the row, counted).
        batch_size: segments per ``predict`` call.
        progress: ``callback(stage, done, total)``.
        group_by: per-speaker normalisation groups (see the module docstring).
    """
    from emotag.models.multimodal import MODALITIES, MultimodalModel

    if modality not in MODALITIES:
        raise DataError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    t0 = time.perf_counter()
    rows, n_raw, skipped = read_manifest(manifest, label_map)
    if not n_raw:
        raise DataError(f"{manifest}: a header and no rows; add one row per labelled segment")
    if not rows:
        raise DataError(
            f"{manifest}: no row has a usable label (skipped: {skipped or 'none'}); check --label-map"
        )
    if model is None or isinstance(model, (str, Path)):
        from emotag.models import load_model

        model = load_model(model, modality=modality)
    elif isinstance(model, MultimodalModel) and model.modality != modality:
        model = model.with_modality(modality)
    groups = normalisation_groups(rows, group_by)
    segments = build_segments(rows, progress)
    scored = _predict_grouped(model, segments, groups, batch_size, progress)
    preds = [p for p in scored if p is not None]
    if len(preds) != len(segments):
        raise DataError(
            f"model {model.name!r} left {len(segments) - len(preds)} segments without a prediction"
        )
    y = [LABELS.index(r.label) for r in rows]
    name = "fused" if modality == "both" else modality
    scores = [ScoreSet.compute(name, y, _probs([p.emotion for p in preds]))]
    mm_rate = mm_mean = None
    if modality == "both":
        for mod in ("text", "audio"):
            idx = [i for i, p in enumerate(preds) if getattr(p, mod) is not None]
            ems = [getattr(preds[i], mod) for i in idx]
            scores.append(ScoreSet.compute(mod, [y[i] for i in idx], _probs(ems)))
        both = [p for p in preds if p.text is not None and p.audio is not None]
        if both:
            mm_rate = float(np.mean([p.mismatched for p in both]))
            mm_mean = float(np.mean([p.mismatch for p in both]))
    return EvalReport(
        manifest=str(manifest),
        model=model.name,
        modality=modality,
        rows=n_raw,
        skipped=skipped,
        scores=tuple(scores),
        mismatch_rate=mm_rate,
        mean_mismatch=mm_mean,
        seconds=time.perf_counter() - t0,
        groups=sum(1 for g in groups if len(g) > 1),
        group_by=group_by,
        predictions=tuple(zip(rows, preds, strict=True)),
    )


#: Columns of :func:`predictions_csv` before the fused probabilities (``p_anger`` ... ``p_neutral``).
PREDICTION_COLUMNS = (
    "line",
    "audio",
    "start",
    "end",
    "speaker",
    "text",
    "label",
    "predicted",
    "confidence",
    "correct",
    "text_predicted",
    "text_confidence",
    "audio_predicted",
    "audio_confidence",
    "mismatch",
    "mismatched",
)


def predictions_csv(report: EvalReport) -> str:
    """Every scored row of ``report`` as CSV text: where it is in the manifest (``line``, as written in its
    columns), the true label, the fused prediction and its confidence, each modality's own prediction
    (empty where that modality was absent), the mismatch score and flag, then the fused probabilities.
    Sorting it by ``correct`` and ``confidence`` lists the confident mistakes first."""
    import io

    def top(em: Emotion | None) -> tuple[str, str]:
        return ("", "") if em is None else (em.label, f"{em.confidence:.4f}")

    base = Path(report.manifest).parent
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*PREDICTION_COLUMNS, *(f"p_{label}" for label in LABELS)])
    for row, pred in report.predictions:
        audio = "" if row.audio is None else str(row.audio)
        if row.audio is not None and row.audio.is_relative_to(base):  # as the manifest wrote it
            audio = row.audio.relative_to(base).as_posix()
        writer.writerow(
            [
                row.line,
                audio,
                "" if row.start is None else f"{row.start:g}",
                "" if row.end is None else f"{row.end:g}",
                row.speaker,
                row.text,
                row.label,
                *top(pred.emotion),
                int(pred.emotion.label == row.label),
                *top(pred.text),
                *top(pred.audio),
                f"{pred.mismatch:.4f}" if pred.text is not None and pred.audio is not None else "",
                int(pred.mismatched),
                *(f"{p:.4f}" for p in pred.emotion.probs),
            ]
        )
    return out.getvalue()


def format_report(report: EvalReport) -> str:
    """Render a report as the text ``emotag eval`` prints."""
    lines = [
        f"manifest: {report.manifest}",
        f"model:    {report.model}   modality: {report.modality}",
        f"rows:     {report.rows} ({report.scores[0].n if report.scores else 0} scored, "
        f"{report.n_skipped} skipped" + (f": {_fmt_skipped(report.skipped)}" if report.skipped else "") + ")",
    ]
    if report.modality != "text":  # no voices to normalise otherwise
        lines.append(f"voice normalisation: {report.groups} group(s) of rows (--group-by {report.group_by})")
    lines += [
        "",
        f"{'':8} {'n':>6} {'acc':>7} {'UA':>7} {'macroF1':>8} {'wF1':>7} {'ECE':>7} {'floor':>7}",
    ]
    for s in report.scores:
        lines.append(
            f"{s.name:8} {s.n:>6} {s.accuracy:>7.3f} {s.unweighted_accuracy:>7.3f} {s.macro_f1:>8.3f} "
            f"{s.weighted_f1:>7.3f} {s.ece:>7.3f} {s.ece_floor:>7.3f}"
        )
    if report.scores:
        lines.append(
            "floor: the ECE a perfectly calibrated model with these confidences shows on this many rows"
        )
    if report.mismatch_rate is not None:
        lines.append(
            f"mismatch flagged on {report.mismatch_rate:.1%} of rows with voice and words "
            f"(mean score {report.mean_mismatch:.3f})"
        )
    if report.scores:
        main = report.scores[0]
        short = [lb[:5] for lb in report.labels]
        lines += [
            "",
            f"confusion ({main.name}; rows = true, columns = predicted)",
            f"{'':9}" + "".join(f"{s:>7}" for s in short) + f"{'recall':>8}",
        ]
        for lb, row, rec in zip(short, main.confusion, main.recall, strict=True):
            r = "   -" if rec is None else f"{rec:.3f}"
            lines.append(f"{lb:9}" + "".join(f"{v:>7}" for v in row) + f"{r:>8}")
    lines.append(f"\n{report.seconds:.1f} s")
    return "\n".join(lines)


def _fmt_skipped(skipped: Mapping[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))
