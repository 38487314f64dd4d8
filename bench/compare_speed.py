"""Which of two models is faster here: both loaded in one process, timed batch by batch, taking turns.

Why: the shared 2-core host's speed moves by a fifth or more within minutes, so two ``throughput.py`` runs
one after the other compare hours rather than models. Here every batch of cues goes through both models
back to back (which one goes first alternates), so a slow minute costs both alike; the per-batch ratio of
their times is what to read. Same cues as ``throughput.py`` (``build_cues``).

Usage: ``python bench/compare_speed.py MODEL_A MODEL_B [--n 512] [--batch 64] [--passes 3]
[--fill pad|speech]`` (a model is a directory, or ``default`` for the packaged one). Prints each model's
cues/s over all its batches and CPU-ms per cue, then the median ratio of A's batch time to B's and how
often B was the faster (above 1: B is faster).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs=2, help="two model directories ('default': the packaged model)")
    ap.add_argument("--n", type=int, default=512, help="cues")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--passes", type=int, default=3, help="times every cue goes through each model")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each cue")
    ap.add_argument("--fill", choices=["pad", "speech"], default="speech")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()

    import torch
    from throughput import build_cues

    from emotag.models import load_model

    torch.set_num_threads(args.threads)
    cues = build_cues(args.n, args.seconds, args.data, fill=args.fill)
    models = [load_model(None if m == "default" else Path(m)) for m in args.models]
    for model in models:
        model.predict(cues[: args.batch])  # warm-up
    wall: list[list[float]] = [[], []]
    cpu: list[list[float]] = [[], []]
    turn = 0
    for _ in range(args.passes):
        for i in range(0, len(cues), args.batch):
            for j in (0, 1) if turn % 2 == 0 else (1, 0):
                c0, w0 = _cpu_seconds(), time.perf_counter()
                models[j].predict(cues[i : i + args.batch])
                wall[j].append(time.perf_counter() - w0)
                cpu[j].append(_cpu_seconds() - c0)
            turn += 1
    n = args.passes * len(cues)
    for j, name in enumerate(args.models):
        print(
            f"{'AB'[j]} {name}: {n / sum(wall[j]):.1f} cues/s, "
            f"{1000 * sum(cpu[j]) / n:.2f} CPU-ms/cue ({args.fill} cues of {args.seconds:g} s)"
        )
    ratio = np.array(wall[0]) / np.array(wall[1])
    print(
        f"A/B batch time: median {np.median(ratio):.3f}, quartiles {np.quantile(ratio, 0.25):.3f}-"
        f"{np.quantile(ratio, 0.75):.3f}; B faster in {np.mean(ratio > 1):.0%} of {ratio.size} batches"
    )


if __name__ == "__main__":
    main()
