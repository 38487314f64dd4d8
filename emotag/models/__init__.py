"""Find and load emotion models: the packaged default, trained model directories, and extensions.

Resolution order for :func:`load_model`'s ``model`` argument:

1. ``None`` or ``"default"``: the packaged model directory ``emotag/models/default/``.
2. An existing directory: a model directory as written by ``emotag train --out DIR`` (``config.json`` plus
   weights; see :mod:`emotag.models.branches` for the layout).
3. A name registered in the ``emotag.models`` entry-point group by an installed extension. Entry points are
   only listed at discovery and ``.load()``-ed when that name is asked for (as OpenTimelineIO's plugin
   manifest does), so a broken extension only matters when selected. ``EMOTAG_DISABLE_EXTENSIONS=1`` turns
   discovery off (the equivalent of ``OTIO_DISABLE_ENTRYPOINTS_PLUGINS``).
4. Anything else: :class:`~emotag.errors.UnknownModelError` listing what is available.

An entry point may name an :class:`~emotag.models.base.EmotionModel` instance, a class, or a factory; classes
and factories are called with no arguments. This module imports nothing heavy: torch and transformers are
imported by the branch modules when a model is actually loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotag.errors import EmotagError, ModelError, UnknownModelError
from emotag.models.base import EmotionModel, Prediction, Segment
from emotag.timeline import LABELS

if TYPE_CHECKING:
    from emotag.models.multimodal import MultimodalModel
    from emotag.registry import Entry

#: Entry-point group third-party models register under.
ENTRY_POINT_GROUP = "emotag.models"
#: Name of the packaged model.
DEFAULT_NAME = "default"
#: Directory of the packaged model.
DEFAULT_DIR = Path(__file__).resolve().parent / "default"
#: Built-in registry entries (name -> import path), listed like extensions'.
BUILTINS: dict[str, str] = {DEFAULT_NAME: "emotag.models:load_default"}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``emotag models`` shows about one model.

    Attributes:
        name: the name to pass to ``--model``.
        source: ``"builtin"``, ``"directory"`` or ``"extension (<module:attr>)"``.
        path: the model directory, if it has one.
        labels: the labels it predicts (empty when unknown without loading it).
        size_bytes: total size of the model's own files (excluding shared encoders).
        summary: one-line card summary.
        licences: licence notes from the model card (data licences matter: RAVDESS is non-commercial).
    """

    name: str
    source: str
    path: str | None = None
    labels: tuple[str, ...] = ()
    size_bytes: int = 0
    summary: str = ""
    licences: str = ""


def registry_entries() -> dict[str, Entry]:
    """Every model name with where it comes from (nothing is imported), for ``emotag extensions``."""
    from emotag.registry import discover

    return discover(ENTRY_POINT_GROUP, BUILTINS)


def available_models() -> list[str]:
    """Names :func:`load_model` accepts (directories aside)."""
    return sorted(registry_entries())


def load_default(**kwargs: Any) -> EmotionModel:
    """The packaged model (the built-in registry entry ``default``)."""
    return load_model_dir(DEFAULT_DIR, **kwargs)


def read_config(model_dir: Path) -> dict[str, Any]:
    """Read ``config.json`` of a model directory."""
    cfg_path = model_dir / "config.json"
    if not cfg_path.is_file():
        raise UnknownModelError(
            str(model_dir),
            available_models(),
            "a model directory needs a config.json (write one with `emotag train`)",
        )
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{cfg_path}: unreadable model config ({exc}); retrain with `emotag train`") from exc
    if not isinstance(cfg, dict):
        raise ModelError(f"{cfg_path}: model config must be a JSON object; retrain with `emotag train`")
    labels = tuple(cfg.get("labels", LABELS))
    if labels != LABELS:
        raise ModelError(f"{cfg_path}: model labels {labels} differ from emotag's {LABELS}")
    return cfg


def load_model_dir(
    model_dir: Path,
    *,
    text_model: str | None = None,
    audio_model: str | None = None,
    fusion: str | None = None,
    modality: str = "both",
) -> MultimodalModel:
    """Load a multimodal model directory (the packaged default or one written by ``emotag train``).

    Args:
        model_dir: directory with ``config.json`` and the branch/fusion weights.
        text_model: replace the text branch (Hugging Face id or directory), as the text branch loader allows.
        audio_model: replace the audio branch likewise.
        fusion: ``"early"``, ``"late"`` or ``"hybrid"`` (``None`` = the directory's default).
        modality: ``"both"``, ``"text"`` or ``"audio"``; only the branches needed are loaded.
    """
    from emotag.fusion import FusionModel
    from emotag.models.multimodal import MODALITIES, MultimodalModel

    if modality not in MODALITIES:
        raise ModelError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    from emotag.models.audio import CNN_SPEC, WHISPER_SPEC, audio_spec_in

    cfg = read_config(model_dir)
    default_spec = audio_spec_in(cfg)
    if audio_model == default_spec:
        audio_model = None  # the branch fusion was trained on: every fusion method applies
    text_branch = audio_branch = None
    if modality in ("both", "text"):
        from emotag.models.text import load_text_branch

        text_branch = load_text_branch(text_model, model_dir)
    if modality in ("both", "audio"):
        from emotag.models.audio import load_audio_branch

        audio_branch = load_audio_branch(audio_model or default_spec, model_dir)
    fcfg = cfg.get("fusion", {}) if isinstance(cfg.get("fusion"), dict) else {}
    weights = model_dir / str(fcfg.get("weights", "fusion.safetensors"))
    if weights.is_file():
        fm = FusionModel.load(weights)
    else:
        fm = FusionModel.untrained(
            getattr(text_branch, "embedding_dim", 0), getattr(audio_branch, "embedding_dim", 0)
        )
    name = str(cfg.get("name", model_dir.name))
    if text_model or audio_model:
        built_in = audio_model in (CNN_SPEC, WHISPER_SPEC) and not text_model
        name += f"+{audio_model}" if built_in else "+custom"
        # Fusion's early/hybrid weights were learned on the directory's own branches' embeddings; a
        # swapped-in branch can only be fused by its probabilities.
        if fusion not in (None, "late"):
            raise ModelError(
                f"--fusion {fusion} needs the model's own branches; with --text-model/--audio-model use late"
            )
        fusion = "late"
    return MultimodalModel(text_branch, audio_branch, fm, name=name, method=fusion, modality=modality)


def _from_entry(entry: Entry) -> EmotionModel:
    try:
        obj = entry.load()
        if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "predict")):
            obj = obj()
    except EmotagError:
        raise
    except Exception as exc:  # an extension's failure must not look like an emotag crash
        raise ModelError(
            f"model extension {entry.name!r} ({entry.target}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(obj, EmotionModel):
        raise ModelError(
            f"model extension {entry.name!r} ({entry.target}) is not an EmotionModel (needs name and predict)"
        )
    return obj


def load_model(
    model: str | Path | None = None,
    *,
    text_model: str | None = None,
    audio_model: str | None = None,
    fusion: str | None = None,
    modality: str = "both",
) -> EmotionModel:
    """Load an emotion model by name or directory (see the module docstring for the resolution order).

    Args:
        model: ``None``/``"default"``, a model directory, or a registered extension name.
        text_model: Hugging Face id or directory replacing the text branch (model directories only).
        audio_model: likewise for the audio branch.
        fusion: fusion method ``"early" | "late" | "hybrid"`` (model directories only).
        modality: ``"both" | "text" | "audio"`` (model directories only).

    Raises:
        UnknownModelError: the name is neither a directory nor registered (lists available names).
        ModelError: the model exists but fails to load.
    """
    if model is None or (isinstance(model, str) and model == DEFAULT_NAME):
        return load_model_dir(
            DEFAULT_DIR, text_model=text_model, audio_model=audio_model, fusion=fusion, modality=modality
        )
    path = Path(model).expanduser()
    if path.is_dir():
        return load_model_dir(
            path, text_model=text_model, audio_model=audio_model, fusion=fusion, modality=modality
        )
    entries = registry_entries()
    if isinstance(model, str) and model in entries:
        if text_model or audio_model or fusion or modality != "both":
            raise ModelError(
                f"model {model!r} is an extension; "
                "--text-model/--audio-model/--fusion/--modality do not apply"
            )
        return _from_entry(entries[model])
    hint = "or pass a model directory written by `emotag train --out DIR`"
    if path.suffix or os.sep in str(model):
        hint = f"no such directory {str(path)!r}; " + hint
    raise UnknownModelError(str(model), available_models(), hint)


def _dir_info(name: str, source: str, model_dir: Path) -> ModelInfo:
    size = sum(p.stat().st_size for p in model_dir.iterdir() if p.is_file())
    labels: tuple[str, ...] = LABELS
    summary = licences = ""
    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        labels = tuple(cfg.get("labels", LABELS))
    except (OSError, ValueError):
        summary = "(no readable config.json)"
    try:
        card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
        summary = summary or str(card.get("summary", ""))
        lic = card.get("licences", {})
        licences = "; ".join(f"{k}: {v}" for k, v in lic.items()) if isinstance(lic, dict) else str(lic)
    except (OSError, ValueError):
        pass
    return ModelInfo(name, source, str(model_dir), labels, size, summary, licences)


def list_models() -> list[ModelInfo]:
    """Describe the packaged model and every registered extension (extensions are not loaded)."""
    infos = [_dir_info(DEFAULT_NAME, "builtin", DEFAULT_DIR)]
    for name, entry in sorted(registry_entries().items()):
        if name not in BUILTINS:
            infos.append(ModelInfo(name, f"extension ({entry.source}: {entry.target})"))
    return infos


__all__ = [
    "DEFAULT_DIR",
    "EmotionModel",
    "ModelInfo",
    "Prediction",
    "Segment",
    "available_models",
    "list_models",
    "load_default",
    "registry_entries",
    "load_model",
    "load_model_dir",
]
