"""Write the evaluation manifests behind the model card's ``emotag eval`` figures.

The data must not be copied into the repository, so the manifests are generated from ``../shared/data``
into a git-ignored folder (default ``runs/manifests/``), with audio paths relative to each CSV:

* ``ravdess_fusion_val.csv``: RAVDESS clips of the fusion-validation actors that the shipped audio branch
  never trained on (audio only). They are among the speakers on which it chose its epoch and temperature,
  and fusion chose its method and threshold on them: read these figures as optimistic; the honest audio
  figures are the cross-validation folds in the model card.

Audio rows carry a ``speaker`` column, so ``emotag eval`` normalises each actor's voice over that actor's
rows (``--group-by auto``), as ``emotag tag`` does over a media file.
* ``meld_dev.csv``: MELD dev utterances (text only; report-only split, never used for a choice).
* ``emorynlp_test.csv``: EmoryNLP test with its own label names (run with the label map printed below; rows
  labelled Peaceful/Powerful are skipped and counted).
* ``pairs_same.csv``: each fusion-validation clip with two same-label lines from the fusion-validation text
  half (held-out MELD-train dialogues, GoEmotions dev, EmoryNLP dev).
* ``pairs_neutral_text.csv``: each clip with its own lexically neutral RAVDESS sentence → the clip's label.
* ``pairs_clash.csv``: clips of joy / anger, disgust, fear, sadness with a line of the opposite valence
  (label = the voice's); what matters here is the mismatch flag rate.

Usage: ``python bench/make_manifests.py [--data ../shared/data] [--model emotag/models/default] [--out DIR]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotag import atomicfile  # noqa: E402
from emotag.timeline import LABELS  # noqa: E402

EMORY_MAP = "joyful=joy,mad=anger,scared=fear,sad=sadness,neutral=neutral,peaceful=,powerful="
POS, NEG = ("joy",), ("anger", "disgust", "fear", "sadness")


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    cols = ["audio", "start", "end", "text", "label", "speaker"]
    with atomicfile.replacing(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in cols})
    print(f"{path}: {len(rows)} rows")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", type=Path, default=ROOT / "emotag" / "models" / "default")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "manifests")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from emotag.models.audio import audio_spec_in, branch_config_name
    from emotag.training.audiodata import read_ravdess
    from emotag.training.fusion import _stable_hash, _text_holdout
    from emotag.training.textdata import read_meld

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    cfg = json.loads((args.model / "config.json").read_text(encoding="utf-8"))
    val_spk = set(cfg.get("fusion", {}).get("val_speakers") or [])
    clips = read_ravdess(args.data)
    if not val_spk:
        print("warning: no fusion val_speakers in config.json; using every actor", file=sys.stderr)
        val_spk = {c.speaker for c in clips}
    # Fusion trains on held-out fold outputs of every actor, but the shipped audio branch trained on most
    # actors: keep only those it never trained on.
    branch = audio_spec_in(cfg)
    branch_cfg = args.model / branch_config_name(branch)
    trained = set(
        json.loads(branch_cfg.read_text(encoding="utf-8")).get("report", {}).get("train_speakers") or []
    )
    val_spk -= trained
    print(f"fusion-validation actors the {branch} audio branch never trained on: {sorted(val_spk)}")
    val_clips = [c for c in clips if c.speaker in val_spk]

    def rel(p: Path) -> str:
        return os.path.relpath(p, out)

    _write(
        out / "ravdess_fusion_val.csv",
        [{"audio": rel(c.path), "speaker": c.speaker, "label": c.label} for c in val_clips],
    )
    _write(
        out / "meld_dev.csv",
        [{"text": r.text, "label": LABELS[r.label]} for r in read_meld(args.data, "dev") if r.label >= 0],
    )
    emory = []
    with (args.data / "emorynlp" / "emorynlp_test_final.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            emory.append({"text": row["Utterance"].strip(), "label": row["Emotion"].strip().lower()})
    _write(out / "emorynlp_test.csv", emory)

    texts = [t for t in _text_holdout(args.data, args.model, args.seed) if _stable_hash(t.group) % 2 == 1]
    by_label: dict[int, list[str]] = {}
    for t in texts:
        by_label.setdefault(t.label, []).append(t.text)
    transcript = {}
    with (args.data / "ravdess" / "labels.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            transcript[row["path"].split("/")[-1]] = row["transcript"]
    same, neutral, clash = [], [], []
    for c in val_clips:
        y = LABELS.index(c.label)
        for _ in range(2):
            if by_label.get(y):
                same.append(
                    {
                        "audio": rel(c.path),
                        "speaker": c.speaker,
                        "text": rng.choice(by_label[y]),
                        "label": c.label,
                    }
                )
        neutral.append(
            {
                "audio": rel(c.path),
                "speaker": c.speaker,
                "text": transcript.get(c.path.name, ""),
                "label": c.label,
            }
        )
        opposite = NEG if c.label in POS else POS if c.label in NEG else ()
        pool = [s for lb in opposite for s in by_label.get(LABELS.index(lb), [])]
        if pool:
            clash.append(
                {"audio": rel(c.path), "speaker": c.speaker, "text": rng.choice(pool), "label": c.label}
            )
    _write(out / "pairs_same.csv", same)
    _write(out / "pairs_neutral_text.csv", neutral)
    _write(out / "pairs_clash.csv", clash)
    print(f"EmoryNLP label map: --label-map {EMORY_MAP}")


if __name__ == "__main__":
    main()
