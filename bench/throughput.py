"""Throughput of the whole model: cues per second and peak memory on this machine.

Builds ``--n`` synthetic 5 s cues from real speech (RAVDESS clips, padded with their own room noise level to
5 s, or espeak-ng sentences when the data folder is missing) with real dialogue text (MELD dev lines, with the
three previous lines as context), then times ``load_model().predict`` over them in batches, as the pipeline
calls it. ``--fill speech`` fills each cue with speech instead (clips without their silence, back to back):
the default audio branch drops a cue's leading and trailing silence before its encoder, so padded cues cost
it less than cues that are speech from end to end. Prints one line per measurement and a JSON summary
(``--json``).

Measured: model load time, cues/s over all batches after one warm-up batch, and the split between the text
branch, the audio branch and fusion (``--profile``), plus peak RSS from ``resource.getrusage`` (the whole
process: Python, torch, both branches, the cues themselves), and how fast the host itself ran a fixed
workload just before and just after (:func:`host_reference`), so that two runs can be told apart by host
as well as by model. Target: >= 100 cues/s on 2 CPU cores.

Usage: ``python bench/throughput.py [--n 512] [--batch 64] [--fill pad|speech] [--model DIR]
[--audio-model whisper] [--modality both] [--profile]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 16000


def _espeak(text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "s.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        from emotag.media import load_audio

        return load_audio(wav)


def _pad(w: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SR)
    if w.shape[0] >= n:
        return w[:n].astype(np.float32)
    floor = float(np.percentile(np.abs(w), 10)) + 1e-5
    out = rng.normal(0, floor, n).astype(np.float32)
    start = int(rng.integers(0, n - w.shape[0] + 1))
    out[start : start + w.shape[0]] += w
    return out


def _fill(waves: list[np.ndarray], first: int, seconds: float) -> np.ndarray:
    """``seconds`` of speech: the clips from ``first`` on, each without its silence, back to back."""
    from emotag.audiofeatures import trim_silence

    n, i = int(seconds * SR), first
    parts: list[np.ndarray] = []
    while sum(p.shape[0] for p in parts) < n:
        parts.append(trim_silence(waves[i % len(waves)]))
        i += 1
    return np.concatenate(parts)[:n].astype(np.float32)


def build_cues(n: int, seconds: float, data: Path, seed: int = 0, fill: str = "pad") -> list:  # type: ignore[type-arg]
    """``n`` Segments of ``seconds`` each (real speech padded with room noise, or with ``fill="speech"``
    speech throughout), MELD text with context (espeak + fixed lines as fallback)."""
    from emotag.models.base import Segment

    rng = np.random.default_rng(seed)
    lines: list[tuple[str, tuple[str, ...]]] = []
    meld = data / "meld" / "MELD" / "dev_sent_emo.csv"
    if meld.is_file():
        prev: list[str] = []
        dialogue = None
        with meld.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row["Dialogue_ID"] != dialogue:
                    prev, dialogue = [], row["Dialogue_ID"]
                lines.append((row["Utterance"], tuple(prev[-3:])))
                prev.append(row["Utterance"])
    else:
        lines = [
            (s, ()) for s in ("I can't believe you did that.", "We will meet tomorrow.", "That's great news!")
        ]
    waves: list[np.ndarray] = []
    labels = data / "ravdess" / "labels.csv"
    if labels.is_file():
        from emotag.training.audiodata import load_clip, read_ravdess

        clips = read_ravdess(data)
        pick = rng.choice(len(clips), size=min(n, 256), replace=False)
        waves = [load_clip(clips[int(i)]) for i in pick]
    else:
        waves = [_espeak(t) for t, _ in lines[:16]]
    audio = [
        _fill(waves, i, seconds) if fill == "speech" else _pad(waves[i % len(waves)], seconds, rng)
        for i in range(n)
    ]
    return [Segment(lines[i % len(lines)][0], audio[i], lines[i % len(lines)][1]) for i in range(n)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def host_reference(seconds: float = 0.4) -> dict[str, float | str]:
    """How fast this host runs a fixed workload right now, on one thread: the voice encoder's commonest
    product shape (256 frames x 384 -> 1536, bfloat16 where the CPU has AMX and float32 otherwise, as the
    encoder runs) in GFLOP/s, and a float32 read-modify-write over 64 MB in GB/s.

    Why: on a shared host the same work ran at 18.5-20.4 CPU-ms per cue in one hour and 10.7-11.4 in another
    (2026-11-27/28, the shipped model, `--fill speech`); cues/s alone cannot say whether a model or the host
    changed. Printed before and after the timed run (the load average sees this machine only, not the
    neighbours on its cores).
    """
    import torch

    from emotag.models.whisper_torch import fast_backend

    dtype = torch.bfloat16 if fast_backend() == "torch-bf16" else torch.float32
    a, b = torch.randn(256, 384).to(dtype), torch.randn(384, 1536).to(dtype)
    big = torch.ones(16 * 1024 * 1024)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.mm(a, b)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            torch.mm(a, b)
            n += 1
        gflops = 2 * 256 * 384 * 1536 * n / (time.perf_counter() - t0) / 1e9
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            big.mul_(1.0)
            n += 1
        gbs = 2 * big.numel() * 4 * n / (time.perf_counter() - t0) / 1e9
    finally:
        torch.set_num_threads(threads)
    return {"matmul_gflops": round(gflops, 1), "stream_gb_s": round(gbs, 1), "dtype": str(dtype)[6:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="number of cues")
    ap.add_argument("--batch", type=int, default=64, help="cues per predict() call")
    ap.add_argument("--seconds", type=float, default=5.0, help="cue length")
    ap.add_argument(
        "--fill", choices=["pad", "speech"], default="pad", help="pad clips with room noise, or speech only"
    )
    ap.add_argument("--model", default=None, help="model dir or name (default: packaged)")
    ap.add_argument("--modality", default="both", choices=["both", "text", "audio"])
    ap.add_argument("--fusion", default=None, choices=["early", "late", "hybrid"])
    ap.add_argument("--audio-model", default=None, help="e.g. 'whisper' (the Whisper-encoder branch)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--profile", action="store_true", help="also time each branch and fusion separately")
    ap.add_argument("--json", action="store_true", help="print a JSON summary line at the end")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    cues = build_cues(args.n, args.seconds, args.data, fill=args.fill)
    rss_cues = peak_rss_mb()
    from emotag.models import load_model

    t0 = time.perf_counter()
    model = load_model(args.model, fusion=args.fusion, modality=args.modality, audio_model=args.audio_model)
    load_s = time.perf_counter() - t0
    model.predict(cues[: args.batch])  # warm-up (first-call allocations, lazy imports)
    ref_before = host_reference()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for i in range(0, len(cues), args.batch):
        model.predict(cues[i : i + args.batch])
    total = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    ref_after = host_reference()
    load1 = os.getloadavg()[0]
    res = {
        "cues": len(cues),
        "seconds_per_cue_audio": args.seconds,
        "fill": args.fill,
        "batch": args.batch,
        "threads": args.threads,
        "modality": args.modality,
        "model": model.name,
        "fusion": getattr(model, "method", None),
        "load_s": round(load_s, 2),
        "cues_per_s": round(len(cues) / total, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        # CPU seconds per cue: robust to other processes sharing the cores; on N otherwise idle cores
        # throughput is at most N / cpu_s_per_cue (fully parallel) and at least 1 / cpu_s_per_cue
        "cpu_ms_per_cue": round(1000 * cpu / len(cues), 2),
        "cues_per_cpu_s": round(len(cues) / max(cpu, 1e-9), 1),
        "load_avg_1min": round(load1, 2),
        "rss_after_building_cues_mb": round(rss_cues, 1),
        "host_reference_before": ref_before,
        "host_reference_after": ref_after,
    }
    print(
        f"{res['cues_per_s']} cues/s ({len(cues)} {args.fill} cues of {args.seconds:g} s, "
        f"batch {args.batch}, "
        f"{args.threads} threads, {args.modality}); load {load_s:.1f} s; peak RSS {res['peak_rss_mb']} MB; "
        f"{res['cpu_ms_per_cue']} CPU-ms/cue ({res['cues_per_cpu_s']} cues per CPU-second); "
        f"load average {res['load_avg_1min']}"
    )
    print(
        f"host reference, one thread, before / after: {ref_before['dtype']} products "
        f"{ref_before['matmul_gflops']} / {ref_after['matmul_gflops']} GFLOP/s, float32 stream "
        f"{ref_before['stream_gb_s']} / {ref_after['stream_gb_s']} GB/s"
    )
    if args.profile and hasattr(model, "branch_inputs"):
        from emotag.models.multimodal import MultimodalModel

        assert isinstance(model, MultimodalModel)
        t_text = t_audio = t_fuse = 0.0
        for i in range(0, len(cues), args.batch):
            batch = cues[i : i + args.batch]
            if model.text_branch is not None:
                t = time.perf_counter()
                model.text_branch.infer([c.text for c in batch], [c.context for c in batch])
                t_text += time.perf_counter() - t
            if model.audio_branch is not None:
                t = time.perf_counter()
                model.audio_branch.infer([c.audio for c in batch])
                t_audio += time.perf_counter() - t
        x = model.branch_inputs(cues[: args.batch])
        t = time.perf_counter()
        for _ in range(max(1, len(cues) // args.batch)):
            model.predictions(x)
        t_fuse = time.perf_counter() - t
        res |= {
            "text_cues_per_s": round(len(cues) / max(t_text, 1e-9), 1),
            "audio_cues_per_s": round(len(cues) / max(t_audio, 1e-9), 1),
            "fusion_cues_per_s": round(len(cues) / max(t_fuse, 1e-9), 1),
        }
        print(
            f"text branch {res['text_cues_per_s']} cues/s; audio branch {res['audio_cues_per_s']} cues/s; "
            f"fusion + Prediction objects {res['fusion_cues_per_s']} cues/s"
        )
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
