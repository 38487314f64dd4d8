"""Speaker-independent cross-validation of the audio training recipe (the model card's audio figures).

Runs :func:`emotag.training.audio.evaluate_audio_folds` with the shipped recipe (``TrainConfig()`` and
``SHIPPED_MEMBERS`` networks per fold, as ``emotag train`` trains them): the 24 RAVDESS actors in 6
gender-balanced folds of 4; each fold's networks train on 4 folds, pick their epoch and temperature on the
next fold, and are scored on the fold they never heard: the original clips, and copies degraded by effects
training never used (telephone band, long reverb, brown noise, real mp3/opus round trip). Prints one line per
fold and a summary; ``--json FILE`` keeps the whole report.

Usage: ``python bench/audio_cv.py [--data ../shared/data] [--members N] [--folds 0,1] [--json FILE]``
(about 15 minutes on the 2-core CPU with 2 members).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

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
    args = ap.parse_args()
    t0 = time.monotonic()
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
    print(f"audio recipe, {args.members} network(s) per fold, speaker-independent folds of RAVDESS actors")
    for row in rep["folds"]:
        figs = "  ".join(f"{k} {row[k]:.3f}" for k in keys if k in row)
        print(f"fold {row['fold']} {','.join(row['test_speakers'])}: {figs}")
    for k in keys:
        s = rep["summary"].get(k)
        if s:
            print(f"{k:22} mean {s['mean']:.3f} ± {s['std']:.3f}  (min {s['min']:.3f}, max {s['max']:.3f})")
    print(f"{time.monotonic() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rep, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
