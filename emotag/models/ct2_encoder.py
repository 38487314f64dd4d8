"""Run the text branch's BERT encoder (with its fine-tuned top layers) through CTranslate2 on CPU.

Why: CTranslate2 fuses what transformers runs op by op, so the same encoder is faster on a small CPU. On
the 1,109 MELD dev lines with the packaged model (2 threads, batches of 16, 2026-11-26;
``runs/s6/ct2_text.py``): transformers 3.10 ms per line, CTranslate2 float32 2.43 ms, the same labels and
probabilities (largest difference under 1e-4), int8 1.24 ms.

The compute type is the text config's (``compute_type``); the packaged model runs int8 (session 9,
2026-11-26). What int8 costs, same weights, float32 -> int8 (``runs/s9/tq.py``): weighted-F1 on the
held-out MELD-train dialogues 0.609 -> 0.601, MELD dev 0.541 -> 0.536, EmoryNLP test 0.409 -> 0.414,
GoEmotions test 0.675 -> 0.674 (ECE 0.046 / 0.038 / 0.173 / 0.024 -> 0.045 / 0.035 / 0.167 / 0.021),
within the ±0.01 that seeds move these figures. What it saves: the whole model on the benchmark's cues
(``bench/throughput.py``, 6 interleaved pairs on one host) 99-108 -> 108-145 cues/s, median 106 -> 126,
CPU time per cue 17.3-18.6 -> 12.5-16.9 ms. Training the top layers on the int8 lower layers' states
(quantisation-aware) measured 0.603 / 0.537 / 0.414 / 0.674: no better, so training runs float32.

The weights are converted float32 and quantised by CTranslate2 as it loads them: quantising the
converter's arrays (``spec.optimize(quantization="int8")``) rewrites the tensors of the transformers model
they were read from, in place.

The conversion is CTranslate2's own (``ctranslate2.converters.transformers.BertLoader`` reads the loaded
model object, so the fine-tuned layers are the ones converted); the converted files exist in a temporary
folder only while CTranslate2 reads them. The converted copy adds about 170 MB to the process (its 87 MB of
weights plus what the conversion leaves with the allocator; reading the files into memory first, for
CTranslate2's ``files=``, added 270 MB). Only BERT encoders with absolute positions convert; any other
encoder (or a missing ctranslate2) gives ``None`` and the branch keeps running transformers.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


#: Compute types a converted encoder may run with (the ones this CPU build of CTranslate2 has).
COMPUTE_TYPES = ("float32", "int8")

#: What a failed conversion raises (the converter's asserts and lookups, CTranslate2's loader, the disk).
_CONVERSION_ERRORS = (
    ValueError,
    TypeError,
    RuntimeError,
    NotImplementedError,
    AssertionError,
    AttributeError,
    KeyError,
    OSError,
)


class CT2Encoder:
    """A converted encoder: ``last_hidden_state`` for tokenised batches, like the transformers model's."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder

    def last_hidden_state(self, inputs: Any) -> torch.Tensor:
        """``(B, L, D)`` float32 states for a tokenizer batch (``input_ids``, ``attention_mask``,
        optionally ``token_type_ids``; right-padded, as the tokenizer pads)."""
        import ctranslate2
        import torch

        ids = np.ascontiguousarray(inputs["input_ids"].numpy().astype(np.int32))
        lengths = np.ascontiguousarray(inputs["attention_mask"].sum(1).numpy().astype(np.int32))
        types = inputs.get("token_type_ids")
        out = self._encoder.forward_batch(
            ctranslate2.StorageView.from_array(ids),
            ctranslate2.StorageView.from_array(lengths),
            token_type_ids=types.tolist() if types is not None else None,
        )
        return torch.from_numpy(np.array(out.last_hidden_state, dtype=np.float32))


def check_compute_type(compute_type: str) -> None:
    """Refuse a compute type outside :data:`COMPUTE_TYPES`.

    Raises:
        ValueError: it is not one of them.
    """
    if compute_type not in COMPUTE_TYPES:
        raise ValueError(f"compute type {compute_type!r}: use one of {', '.join(COMPUTE_TYPES)}")


def convertible(model: Any, tokenizer: Any) -> bool:
    """Whether :func:`convert` can take ``model``: a BERT with absolute positions, padded on the right
    (CTranslate2 reads each row's length as right padding). Anything else runs in transformers (float32)."""
    config: Any = getattr(model, "config", None)
    return (
        getattr(config, "model_type", None) == "bert"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and getattr(tokenizer, "padding_side", "right") == "right"
    )


def convert(model: Any, tokenizer: Any, threads: int, *, compute_type: str = "float32") -> CT2Encoder | None:
    """``model`` (a transformers ``BertModel``, as loaded and fine-tuned) as a CTranslate2 encoder running
    on ``threads`` CPU threads with ``compute_type`` (:data:`COMPUTE_TYPES`; ``"int8"`` quantises the
    weights per row and the activations on the fly), or ``None`` when it cannot be converted."""
    check_compute_type(compute_type)
    if not convertible(model, tokenizer):
        return None
    config: Any = model.config
    try:
        import ctranslate2
        import torch
        from ctranslate2.converters.transformers import BertLoader
    except ImportError:
        return None
    # The converter asserts absolute positions through this attribute, which transformers 5 configs no
    # longer carry (their BERT has no other kind); it is set for the conversion only.
    missing = not hasattr(config, "position_embedding_type")
    try:
        if missing:
            config.position_embedding_type = "absolute"
        with torch.no_grad():
            spec = BertLoader()(model, tokenizer)
            spec.validate()
            spec.optimize(quantization="float32")  # int8 in place would rewrite the model's own tensors
        with tempfile.TemporaryDirectory(prefix="emotag-ct2-") as tmp:
            spec.save(tmp)
            del spec  # its arrays are a third copy of the weights
            encoder = ctranslate2.Encoder(tmp, device="cpu", compute_type=compute_type, intra_threads=threads)
    except _CONVERSION_ERRORS:
        # a BERT variant the converter does not cover, or no temporary folder: transformers runs it
        return None
    finally:
        if missing:
            del config.position_embedding_type
    return CT2Encoder(encoder)
