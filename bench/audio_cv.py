"""Speaker-independent cross-validation of an audio training recipe (the model card's audio figures).

``--branch cnn`` (the CNN recipe) runs :func:`emotag.training.audio.evaluate_audio_folds` with the shipped
recipe (``TrainConfig()`` and ``SHIPPED_MEMBERS`` networks per fold, as ``emotag train`` trains them): the
24 RAVDESS actors in 6 gender-balanced folds of 4; each fold's networks train on 4 folds, pick their epoch
and temperature on the next fold, and are scored on the fold they never heard: the original clips, and
copies degraded by effects training never used (telephone band, long reverb, brown noise, real mp3/opus
round trip). Prints one line per fold and a summary; ``--json FILE`` keeps the whole report.

``--branch whisper`` (the default branch's recipe; ``--ffn-keep N`` with the encoder's feed-forward blocks
cut to N neurons, ``--cut-per-fold`` fitting each fold's cut on its own training speakers) runs
:func:`emotag.training.whisper_audio.cross_validate` on the same 6 folds (train on 4, stop and calibrate on
the next, score the held-out one: each clip alone, per speaker, and the 4 held-out actors as one group of
unknown speakers, ``corpus``, as ``emotag eval`` reads a manifest of one-clip files), on the same degraded
copies.

Usage: ``python bench/audio_cv.py [--branch cnn|whisper] [--data ../shared/data] [--members N]
[--folds 0,1] [--json FILE]`` (CNN: about 15 minutes on the 2-core CPU with 2 members; Whisper: about
6 minutes, most of it degrading and encoding the copies).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from emotag.training.audio import SHIPPED_MEMBERS, TrainConfig, evaluate_audio_folds

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--members", type=int, default=SHIPPED_MEMBERS, help="networks per fold")
    ap.add_argument("--folds", default=None, help="comma-separated fold numbers (default: all 6)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-degraded", action="store_true", help="skip the degraded copies")
    ap.add_argument("--json", type=Path, default=None, help="write the full report here")
    ap.add_argument("--branch", choices=["cnn", "whisper"], default="cnn", help="which audio recipe")
    ap.add_argument(
        "--ffn-keep",
        type=int,
        default=None,
        help="whisper: cut the encoder's feed-forward blocks to this many neurons (default: whole blocks)",
    )
    ap.add_argument(
        "--cut-per-fold",
        action="store_true",
        help="whisper: fit the cuts per fold on its training speakers alone (--ffn-keep, default 768)",
    )
    args = ap.parse_args()
    t0 = time.monotonic()
    if args.branch == "whisper":
        whisper_cv(args, t0)
        return
    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    rep, _, _, _ = evaluate_audio_folds(
        args.data,
        seed=args.seed,
        cfg=TrainConfig(),
        progress=lambda m: print(time.strftime("%H:%M:%S"), m, file=sys.stderr, flush=True),
        with_degraded=not args.no_degraded,
        folds=folds,
        members=args.members,
    )
    keys = ("test_ua", "test_ua_no_file_stats", "degraded_ua", "test_acc", "test_ece_raw", "test_ece_cal")
    title = f"audio recipe, {args.members} network(s) per fold, speaker-independent folds of RAVDESS actors"
    report(args, t0, rep, title, keys)


def report(
    args: argparse.Namespace, t0: float, rep: dict[str, Any], title: str, keys: tuple[str, ...]
) -> None:
    """Print one line per fold and the summary; keep the whole report with ``--json``."""
    chosen = {int(f) for f in args.folds.split(",")} if args.folds else None
    print(title)
    for row in rep["folds"]:
        if chosen is None or row["fold"] in chosen:
            figs = "  ".join(f"{k} {row[k]:.3f}" for k in keys if k in row)
            print(f"fold {row['fold']} {','.join(row['test_speakers'])}: {figs}")
    for k in keys:
        s = rep["summary"].get(k)
        if s:
            print(f"{k:24} mean {s['mean']:.3f} ± {s['std']:.3f}  (min {s['min']:.3f}, max {s['max']:.3f})")
    summary, pooled = rep["summary"], rep["summary"].get("pooled")
    if pooled:  # ECE over all out-of-fold clips at once, beside the per-fold mean and its sampling floor
        for g in ("alone", "per_speaker", "corpus"):
            print(
                f"ece_{g:20} pooled over {pooled['clips']} clips {pooled[f'ece_{g}']:.3f}  (per-fold mean "
                f"{summary[f'ece_{g}']['mean']:.3f}; calibrated floor per fold "
                f"{summary[f'ece_floor_{g}']['mean']:.3f})"
            )
    print(f"{time.monotonic() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rep, indent=1, default=str), encoding="utf-8")


def whisper_cv(args: argparse.Namespace, t0: float) -> None:
    from emotag.models.whisper_audio import DEFAULT_LAYERS, WhisperEncoder
    from emotag.training.audio import degraded_waves
    from emotag.training.audiodata import read_ravdess, speaker_folds
    from emotag.training.whisper_audio import (
        FFN_KEEP_MEASURED,
        N_AUG,
        cross_validate,
        encode_clips,
        fit_encoder_cuts,
    )

    clips = read_ravdess(args.data)
    folds = speaker_folds(clips, k=6, seed=args.seed)
    say = print if not args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    per_fold = None
    worse = None if args.no_degraded else degraded_waves(clips, args.seed)  # degraded once, encoded per cut

    def degraded_states(cuts: Any) -> Any:
        return None if worse is None else WhisperEncoder(cuts=cuts).pooled(worse)

    if args.cut_per_fold:
        keep = args.ffn_keep or FFN_KEEP_MEASURED

        def per_fold(f: int) -> tuple[Any, Any]:
            held = set(folds[f]) | set(folds[(f + 1) % len(folds)])
            cuts, errors = fit_encoder_cuts([c for c in clips if c.speaker not in held], args.seed, keep=keep)
            say(f"{time.monotonic() - t0:.0f} s: fold {f}: cuts fitted (errors {errors}), encoding")
            return encode_clips(clips, N_AUG, args.seed, cuts=cuts), degraded_states(cuts)

        feats, degraded = None, None
        say(f"{len(folds)} folds, each encoding {len(clips)} clips (+{N_AUG} copies) with its own cuts")
    else:
        cuts, errors = fit_encoder_cuts(clips, args.seed, keep=args.ffn_keep)
        say(f"encoding {len(clips)} clips (+{N_AUG} augmented copies each), {DEFAULT_LAYERS} encoder layers")
        if cuts:
            say(f"feed-forward blocks cut to {args.ffn_keep} neurons (errors {errors})")
        feats = encode_clips(clips, N_AUG, args.seed, cuts=cuts)
        if worse is not None:
            say(f"{time.monotonic() - t0:.0f} s: encoding the degraded copies")
        degraded = degraded_states(cuts)
    rep = cross_validate(feats, clips, folds, args.seed, degraded=degraded, per_fold=per_fold)
    keys: tuple[str, ...] = ("ua_alone", "ua_per_speaker", "ua_corpus")
    keys += ("degraded_ua_alone", "degraded_ua_per_speaker", "degraded_ua_corpus")
    keys += ("ece_alone", "ece_per_speaker", "ece_corpus")
    title = (
        f"whisper audio recipe ({DEFAULT_LAYERS} encoder layers), speaker-independent folds of RAVDESS actors"
    )
    report(args, t0, rep, title, keys)


if __name__ == "__main__":
    main()
