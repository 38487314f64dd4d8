"""Per-speaker voice normalisation inside one media file: what naming the speakers is worth.

``emotag tag`` reads each voice relative to the other cues of its file; where the subtitles name the speaker
(WebVTT ``<v>``, ASS ``Name``) it reads it relative to that speaker's own cues, shrunk towards the file's
(:func:`emotag.models.audio.shrink_stats`). This prints how the three choices of ``emotag tag --group-by``
(``speaker``, ``file``, ``none``) score the voice branch (unweighted accuracy, voice alone) on media files
built from RAVDESS actors that the shipped heads never heard (the eval actors 04, 15 and 24: two women,
one man), through :func:`emotag.pipeline.score`, the code path of ``emotag tag``:

* every pair of those actors, and all three, as one file (each clip one cue, 0.5 s of silence between);
* a *small* speaker: ``k`` random clips of one actor beside all 60 of an actor of the other gender, scored
  on the small speaker's cues (5 seeded draws per pair and size).

``--folds DIR`` (a directory written by ``emotag train``, which keeps the cross-validation folds' heads in
``whisper_audio_folds.safetensors``) instead measures out of fold on the other 21 actors: each fold's
heads on the actors it never heard, every pair of actors as one file, and small speakers beside a whole
speaker of the other gender with the shrinkage prior at 0 (own statistics only), 5, 10 and 20 cues. That is
where the shipped prior was chosen; the eval actors are left out of it.

Usage: ``python bench/speaker_norm.py [--data ../shared/data] [--model DIR] [--folds DIR]``
(about 2 minutes each on the 2-core CPU).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVAL_ACTORS = ("Actor_04", "Actor_15", "Actor_24")
SMALL_SIZES = (5, 8, 12, 20)
GAP_S = 0.5
SR = 16000


def ua(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> float:
    """Unweighted accuracy: mean recall over the classes present in ``y``."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def tag_file(
    model: object, waves: Sequence[np.ndarray], speakers: Sequence[str], group_by: str
) -> np.ndarray:
    """Concatenate the clips into one file, one cue each, and return the voice branch's labels."""
    from emotag.pipeline import score
    from emotag.timeline import LABELS, Cue

    gap = np.zeros(int(GAP_S * SR), np.float32)
    parts, cues, t = [], [], 0
    for i, (w, spk) in enumerate(zip(waves, speakers, strict=True)):
        start = t * 1000 // SR
        parts += [w, gap]
        t += len(w)
        cues.append(Cue(i + 1, start, t * 1000 // SR, "", speaker=spk))
        t += len(gap)
    audio = np.concatenate(parts)
    tagged = list(score(cues, audio, model, group_by=group_by, batch_size=64))  # type: ignore[arg-type]
    return np.array([LABELS.index(c.emotion.label) for c in tagged])


def end_to_end(args: argparse.Namespace) -> None:
    from emotag.models import load_model
    from emotag.timeline import LABELS
    from emotag.training.audiodata import load_clips, read_ravdess

    model = load_model(None if args.model is None else str(args.model), modality="audio")
    clips = [c for c in read_ravdess(args.data) if c.speaker in EVAL_ACTORS]
    waves = load_clips(clips, trim=False)
    y = np.array([LABELS.index(c.label) for c in clips])
    spk = np.array([c.speaker for c in clips])
    gender = {c.speaker: c.gender for c in clips}
    rows = {s: np.where(spk == s)[0] for s in EVAL_ACTORS}
    print(f"{model.name}: voice branch alone, unweighted accuracy; actors {', '.join(EVAL_ACTORS)}")
    print(f"{'actors in one file':<32}{'speaker':>9}{'file':>9}{'none':>9}")
    mixes = [*itertools.combinations(EVAL_ACTORS, 2), EVAL_ACTORS]
    for mix in mixes:
        idx = np.concatenate([rows[s] for s in mix])
        scores = [
            ua(y[idx], tag_file(model, [waves[i] for i in idx], list(spk[idx]), g))
            for g in ("speaker", "file", "none")
        ]
        name = " + ".join(f"{s[-2:]} ({(gender[s] or '?')[0]})" for s in mix)
        print(f"{name:<32}" + "".join(f"{x:9.3f}" for x in scores), flush=True)
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a, b in itertools.permutations(EVAL_ACTORS, 2) if gender[a] != gender[b]]
    print(
        f"small speaker beside a whole one of the other gender ({len(pairs)} pairs x 5 draws), on its cues:"
    )
    for k in SMALL_SIZES:
        got: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {g: ([], []) for g in ("speaker", "file")}
        for a, b in pairs:
            for _ in range(5):
                pick = rng.choice(rows[b], k, replace=False)
                idx = np.concatenate([rows[a], pick])
                for g in got:
                    pred = tag_file(model, [waves[i] for i in idx], list(spk[idx]), g)
                    got[g][0].append(y[pick])
                    got[g][1].append(pred[len(rows[a]) :])
        line = "  ".join(f"{g} {ua(np.concatenate(t), np.concatenate(p)):.3f}" for g, (t, p) in got.items())
        print(f"  {k:2d} cues: {line}", flush=True)


def out_of_fold(args: argparse.Namespace) -> None:
    from emotag.models import load_model
    from emotag.models.audio import ProsodyStats, shrink_stats
    from emotag.models.multimodal import MultimodalModel
    from emotag.timeline import LABELS
    from emotag.training.audiodata import load_clips, read_ravdess
    from emotag.training.whisper_audio import load_folds

    model = load_model(str(args.folds))
    assert isinstance(model, MultimodalModel)
    base = model.audio_branch
    folds = load_folds(args.folds, base)  # type: ignore[arg-type]
    if not folds:
        raise SystemExit(f"{args.folds}: no cross-validation fold heads (run `emotag train --out DIR` first)")
    clips = [c for c in read_ravdess(args.data) if c.speaker not in EVAL_ACTORS]
    pooled = base.encoder.pooled(load_clips(clips, trim=False))  # type: ignore[union-attr]
    y = np.array([LABELS.index(c.label) for c in clips])
    spk = np.array([c.speaker for c in clips])
    gender = {c.speaker: c.gender for c in clips}
    head_of = {s: b for b, test in folds for s in test}
    speakers = sorted(set(spk))
    rows = {s: np.where(spk == s)[0] for s in speakers}

    def stats(idx: np.ndarray) -> ProsodyStats:
        return ProsodyStats(pooled[idx].mean(0), pooled[idx].std(0), len(idx))

    def pred(idx: np.ndarray, st: ProsodyStats | None, s: str) -> np.ndarray:
        out: np.ndarray = head_of[s].head_outputs(pooled[idx], st)[0].argmax(1)
        return out

    print(f"out of fold: {len(speakers)} actors, {len(y)} clips (fold heads of {args.folds})")
    alone = np.mean([ua(y[rows[s]], pred(rows[s], None, s)) for s in speakers])
    own = np.mean([ua(y[rows[s]], pred(rows[s], stats(rows[s]), s)) for s in speakers])
    print(f"each actor as its own file: alone {alone:.3f}  per speaker {own:.3f}")
    for kind, same in (("other gender", False), ("same gender", True)):
        f, p = [], []
        for a, b in itertools.combinations(speakers, 2):
            if (gender[a] == gender[b]) != same:
                continue
            both = stats(np.concatenate([rows[a], rows[b]]))
            for s in (a, b):
                f.append(ua(y[rows[s]], pred(rows[s], both, s)))
                p.append(ua(y[rows[s]], pred(rows[s], stats(rows[s]), s)))
        print(
            f"two actors of the {kind} in one file: per file {np.mean(f):.3f}  per speaker {np.mean(p):.3f}"
        )
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a, b in itertools.permutations(speakers, 2) if gender[a] != gender[b]]
    priors = (0, 5, 10, 20)
    print(
        f"small speaker beside a whole one of the other gender ({len(pairs)} pairs x 3 draws), on its cues:"
    )
    for k in SMALL_SIZES + (30,):
        truth: list[np.ndarray] = []
        got: dict[str, list[np.ndarray]] = {n: [] for n in ("alone", "file", *(f"prior {q}" for q in priors))}
        for a, b in pairs:
            for _ in range(3):
                pick = rng.choice(rows[b], k, replace=False)
                whole = stats(np.concatenate([rows[a], pick]))
                mine = stats(pick)
                truth.append(y[pick])
                got["alone"].append(pred(pick, None, b))
                got["file"].append(pred(pick, whole, b))
                for q in priors:
                    got[f"prior {q}"].append(pred(pick, shrink_stats(mine, whole, q), b))
        t = np.concatenate(truth)
        print(f"  {k:2d} cues: " + "  ".join(f"{n} {ua(t, np.concatenate(p)):.3f}" for n, p in got.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", type=Path, default=None, help="model directory (default: the packaged one)")
    ap.add_argument("--folds", type=Path, default=None, help="an `emotag train` output with fold heads")
    args = ap.parse_args()
    t0 = time.monotonic()
    if args.folds is not None:
        out_of_fold(args)
    else:
        end_to_end(args)
    print(f"{time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
