"""Train and evaluate the text branch (:class:`emotag.models.text.TextBranch`) on the shared text corpora.

Recipe (chosen for accuracy per CPU minute on a 2-core machine; figures in the report dict and model card):

1. Tokenise every utterance once (cue as segment A, previous cues of the same dialogue as segment B).
2. Run the *frozen* part once over everything and cache its token-level states (fp16): the embeddings
   (and the encoder layers below the top ``train_layers``, when fewer than all are trained).
3. Train the top ``train_layers`` layers plus the head on those cached states for a few epochs. The shipped
   recipe trains all six MiniLM layers through rank-16 adapters (LoRA, Hu et al. 2021) on every linear map
   (``lora_rank``): the encoder's own weights stay frozen and only the adapters (1.3 MB fp16) and the head
   are stored; loading adds them back onto the packaged encoder (:func:`emotag.models.text.apply_deltas`),
   so inference costs exactly what the plain encoder costs. With ``lora_rank=0`` copies of the layers are
   fine-tuned and stored int8 instead (each step costs ``train_layers/6`` of a full forward/backward).
   Each epoch sees all MELD + EmoryNLP training utterances and a seeded random ``go_fraction`` of
   GoEmotions (Reddit text dominates otherwise and pulls the model away from spoken dialogue).
4. Loss: cross-entropy with label smoothing (optionally class-weighted) + a masked MSE valence term.
5. Early stopping / model selection on held-out MELD-*train* dialogues (weighted-F1), then temperature scaling
   on the same held-out part (L-BFGS on the NLL). MELD dev, EmoryNLP test and GoEmotions test are only
   reported, never used for any choice.

Everything is seeded; on CPU the run is deterministic for a given seed and thread count.

What was measured when choosing the recipe (weighted-F1; "val" = held-out MELD-train dialogues, the only
set used for choices; MELD dev / EmoryNLP test / GoEmotions test shown for the record). These sweeps ran
once each (seed 0) on a borrowed GPU with an fp16-rounded copy of the encoder, full data, 4 epochs,
GoEmotions share 0.5 unless stated; seed-to-seed spread is about ±0.01 (L2 no-context: 0.548 vs 0.538)::

    variant                         val    MELD dev  Emory  GoEmo   note
    head only (L0), ctx, 8 ep       0.564  0.494     0.423  0.581   frozen encoder is clearly worse
    top-1 layer (L1), ctx           0.598  0.530     0.414  0.636
    L1, no context                  0.603  0.524     0.412  0.639   context: +0.006 dev, -0.005 val
    L2, ctx                         0.601  0.546     0.412  0.679
    L2, no context                  0.606  0.548     0.414  0.671   best per cost; ~7.5 MB fp16
    L3, no context                  0.602  0.544     0.417  0.683   no gain over L2
    all 6 layers, ctx, lr 3e-5      0.615  0.557     0.435  0.690   upper bound; too slow/big on CPU
    L1, class weights (inv-freq^.5) 0.583  0.512     0.423  0.627   UA up (0.378), weighted-F1 down
    L1, GoEmo 0.25 + MELD/Emory x2  0.591  0.519     0.424  0.562   less Reddit text hurts
    L2, all GoEmotions              0.598  0.527     0.410  0.692   more Reddit text hurts MELD
    L1, 6 ep, lr 1e-4               0.598  0.524     0.417  0.656   no gain
    L2, lr 1e-4                     0.606  0.532     0.400  0.680   no gain

A larger encoder, measured on this 2-core CPU with the previous recipe (L2, no context, 4 epochs, seed 0;
2026-11-26): all-mpnet-base-v2 (MPNet, 12 layers x 768, the published weights) reached val 0.622, MELD dev
0.570, EmoryNLP 0.466, GoEmotions 0.673 (MiniLM: 0.609 / 0.541 / 0.409 / 0.675), but its text step took 48
min instead of 11 and it reads 22 ms per line instead of 2.5, which would cut the whole model from about
105 to about 35 cues/s (estimated from that cost, not measured). It is one
``--text-encoder sentence-transformers/all-mpnet-base-v2`` away for users who prefer the words read better
over speed (MPNet layers get their relative position bias here, see :func:`emotag.models.text.run_layers`).

Averaging members (2026-11-26, this CPU, the previous two-layer recipe; four members with seeds 0-3 that
share the held-out dialogues and the head's initial weights and differ in sampling, order and dropout;
scored int8 by the branch itself): the members measured val 0.598-0.608, MELD dev 0.525-0.544; their weight
average val 0.605, MELD dev 0.536; the greedy average chosen on val (seeds 3 + 1) val 0.610, MELD dev 0.536;
the mean of the four members' log-probabilities (four times the cost) val 0.605, MELD dev 0.535. No gain on
dialogue the model never saw, so one run ships. Per-class offsets on the log-probabilities chosen on val for
weighted-F1 (same day, shipped int8 outputs): val 0.601 -> 0.624 (fitted there), MELD dev 0.536 -> 0.546,
EmoryNLP 0.414 -> 0.394, val ECE 0.045 -> 0.076: not adopted.

The neighbouring lines, previous *and next* (2026-11-27; each cue's own tokens pooled; the epoch chosen on
the held-out MELD-train dialogues; MELD dev and EmoryNLP only reported). Every cue of a subtitle file is
known before any is tagged, so the next lines are there to read. All six layers fine-tuned on a borrowed
H200 (AdamW 4e-5, head 1e-3, 6 % warm-up then linear decay, 5 epochs, batch 32, bf16; seeds 0 / 1)::

    segment B                           val            MELD dev       EmoryNLP
    none (the cue alone)                0.624 / 0.623  0.570 / 0.562  0.455 / 0.429
    3 previous lines                    0.616 / 0.616  0.559 / 0.566  0.433 / 0.451
    3 previous [SEP] 2 next lines       0.626 / 0.611  0.598 / 0.574  0.452 / 0.462
    same, lr 6e-5, layer-wise decay 0.8 0.616          0.566          0.447

The previous recipe (top two layers, this CPU, seed 0) with 3 previous [SEP] 2 next lines: val 0.605, MELD
dev 0.554, EmoryNLP 0.442, GoEmotions 0.688 (that recipe on the cue alone: 0.609 / 0.541 / 0.409 / 0.675); the
text step 21.5 instead of 10.4 min; read without its context, that model falls to 0.460 on MELD dev. So
the next lines carry what the previous ones do not (about +0.02 MELD dev at full depth, +0.013 at two
layers), but the held-out dialogues that make every choice here do not prefer them at two layers, and the
full-depth figures (mean 0.586) need the whole encoder trained (stored as adapters since, below) and, on
this CPU, 17 min per epoch (one full-depth training step measured at 1.5 s per
32 dialogue lines with their neighbours and 0.49 s per 32 GoEmotions lines; 4-5 epochs come to 70-85 min,
adapters would save only the weight gradients), against the hour the whole `emotag train` may take.
Full depth on this CPU without GoEmotions (MELD + EmoryNLP only, 3 previous [SEP] 2 next, 3 epochs, batches
of similar length, seed 0): 33 min; val 0.612 / 0.606 / 0.603 and MELD dev 0.551 / 0.572 / 0.589 after
epochs 1 / 2 / 3: the held-out dialogues chose the first epoch while MELD dev rose to the last.
Neither is shipped; reading the neighbours would also cost 3-5 times the tokens per cue.

Context (previous cues as segment B) was within noise for the same model size and costs ~3x the tokens
at inference, so the shipped recipe reads the cue alone (``use_context=False``; the branch still
supports context for models trained with it).

All six layers on this CPU (2026-11-27, seed 0, the cue alone, the held-out dialogues choosing the epoch;
``runs/s16`` scripts, not committed)::

    variant                                    val    MELD dev  Emory  GoEmo  stored     text step
    top two layers, 4 epochs (session 9-15)    0.609  0.541     0.409  0.675  3.8 MB     10.4 min
    all six fine-tuned, lr 4e-5, 3 epochs      0.620  0.560     0.430  0.689  10.9 MB    20.2 min
      the same stored as rank-r SVD truncations of the change (run int8 as inference runs):
      r = 8 / 16 / 32 / 64: val 0.598 / 0.603 / 0.610 / 0.610 (int8 copies 0.618): fine-tuning does
      not move the matrices along few enough directions to cut them afterwards
    rank-16 adapters on all six, lr 5e-4,      0.625  0.571     0.426  0.688  1.5 MB     23.1 min
      alpha 16, 4 epochs (chose epoch 3)       (float and stored fp16 adapters agree on every val line)

The adapters are the shipped recipe: best on the held-out dialogues, a third of the old file, the same
cost per cue at inference. MELD dev 0.571 is still short of 0.60; the neighbouring lines (above) are what
measured closer to it. A bc-LSTM-style dialogue model over the *outputs* (a bidirectional GRU over the
pooled states and log-probabilities of up to 8 cues on each side, trained on MELD + EmoryNLP train over
the previous recipe's branch, epoch chosen on val, three seeds) reached val 0.606-0.609 (0.601 without
it, int8), MELD dev 0.550-0.557 (0.536), EmoryNLP 0.42-0.45 (0.414); but the same classifier fed each
cue alone already gave MELD dev about 0.55, and a head refitted on the dialogue corpora without any
neighbours 0.542-0.550 (GoEmotions falling from 0.674 to 0.615-0.627): the gain was mostly a refit to
dialogue text, the neighbours' outputs added under 0.01; not adopted.

A second text encoder that ships offline: the packaged Whisper tiny.en's *decoder* (4 layers x 384, trained
on the transcripts of 680,000 hours of speech; 2026-11-27, ``runs/s19``). Frozen, mean-pooled over each
line's tokens (after the start-of-transcript and no-timestamps tokens, its cross-attention reading the
encoder's states of 2 s of silence) with a logistic regression trained on MELD + EmoryNLP train: val 0.556,
MELD dev 0.524, EmoryNLP 0.425 against MiniLM's mean-pooled states in the same probe 0.563 / 0.520 / 0.412,
and both concatenated 0.575 / 0.530 / 0.437, which suggested the two read different things. Fine-tuned
whole (the GPU recipe above: AdamW 4e-5, head 1e-3, 4 epochs, batch 32, bf16, GoEmotions share 0.5; six
runs on a borrowed H200): val 0.576-0.590, MELD dev 0.502-0.531, EmoryNLP 0.404-0.445 (seeds 0 / 1, with
and without the cross-attention, two layers, lr 8e-5), under MiniLM alone; mixed with the shipped branch's
log-probabilities at a weight chosen on val, the held-out dialogues chose 0-0.2 and MELD dev stayed at or
under 0.570 (0.564-0.570). Not adopted: once fine-tuned, the decoder adds nothing MiniLM does not read.

Whole stretches of dialogue read in one pass (2026-11-27, this CPU, ``runs/s21/win_text.py``): the
neighbours' cost above comes from reading each cue with its own copy of them; reading ``[CLS] line1 [SEP]
line2 [SEP] ...`` once and pooling each line from its own tokens costs about what reading the lines alone
costs. Trained the
shipped way otherwise (rank-16 adapters on all six layers, 4 epochs, GoEmotions share 0.5 as one-line
windows), every line of a window scored, dialogues cut into windows of 1-10 lines drawn at random each
epoch (31 min): held-out MELD-train dialogues 0.610 read in windows of 8 (epochs 1-4: 0.556 / 0.592 / 0.604
/ 0.610; windows of 4 / 6 / 12: 0.614 / 0.608 / 0.607; each line alone 0.568), MELD dev 0.547 (windows of 8),
0.555 (overlapping windows, each line scored with two or more lines on either side), 0.496 (alone);
EmoryNLP 0.448 / 0.438 / 0.408; GoEmotions 0.700. Against the shipped recipe's 0.625 / 0.571 / 0.426 /
0.688 the lines of MELD read worse in shared windows, EmoryNLP and GoEmotions a little better. Marking the
lines apart with alternating token types (every second line and its separator type 1; the neighbours above
rode in segment B, apart from the cue) changed nothing that decides: val 0.605, MELD dev 0.553 / 0.559 /
0.485, EmoryNLP 0.445 / 0.438 / 0.409, GoEmotions 0.701. Nor do they add to the shipped branch: its
log-probabilities (each cue alone, int8) mixed with the window model's (windows of 8) at weights 0.2 / 0.3 /
0.5 read val 0.622 / 0.622 / 0.613 against 0.620 alone, MELD dev 0.567 / 0.567 / 0.561 against 0.570
(``runs/s21/ens.py``). Not adopted.

The training mixture's label shares differ from dialogue's (joy 0.31 against MELD train's 0.17, neutral 0.37
against 0.47): the shipped branch's probabilities reweighted by the ratio of MELD train's shares to the
mixture's (label-shift correction, Saerens et al. 2002; nothing fitted on any held-out set), in full / half
strength: val 0.621 / 0.621 (0.620 as shipped), MELD dev 0.570 / 0.574 (0.570), EmoryNLP 0.406 / 0.411
(0.424); towards MELD + EmoryNLP train's shares: 0.622 / 0.621, 0.572 / 0.570, 0.427 / 0.428
(``runs/s21/prior.py``). The temperature-scaled branch already reads dialogue's shares; not adopted.

The shipped recipe with the neighbours as segment B (2026-11-28, this CPU, seed 0, ``runs/s22/ctx_lora.py``:
rank-16 adapters on all six layers, 4 epochs, 3 previous [SEP] 2 next lines, as the full-depth GPU runs above
read them): held-out dialogues 0.590 / 0.598 / 0.622 / 0.616 after epochs 1-4 (epoch 3 chosen), MELD dev
0.582, EmoryNLP 0.438, GoEmotions 0.699 (shipped: 0.625 / 0.571 / 0.426 / 0.688); read without its neighbours,
0.465 on MELD dev. A second seed (1; its own held-out dialogues, so its val is not comparable): val 0.575 /
0.592 / 0.614 / 0.603 (epoch 3), MELD dev 0.568, EmoryNLP 0.438: the two seeds' mean, 0.575, is about 0.005
over the cue alone. The text step took 44-47 min instead of 23, and inference 8.1-8.9 CPU-ms per line
instead of 1.9-2.1 (``runs/s22/ctx_speed.py``, MELD dev in batches of 64, CTranslate2 int8, three interleaved
rounds), about 6 ms more per cue, a third of the whole model's budget at the speed target. The held-out
dialogues do not prefer it and MELD dev gains 0.011 on seed 0 and loses 0.003 on seed 1, short of 0.60; not
adopted.

The report returned by :func:`train_text` and the model card hold the shipped branch's own figures.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag import atomicfile, metrics
from emotag.errors import DataError, ModelError
from emotag.models.ct2_encoder import check_compute_type, convertible
from emotag.models.text import (
    ENCODER_SHA256,
    PACKAGED_ENCODER,
    TEXT_WEIGHTS,
    TextBranch,
    TextConfig,
    apply_deltas,
    build_inputs,
    dequantize_state,
    load_encoder,
    make_head,
    masked_mean,
    run_layers,
    write_section,
)
from emotag.timeline import LABELS
from emotag.training.textdata import TextRecord, load_corpora

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

Progress = Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class TextTrainOptions:
    """Hyper-parameters of :func:`train_text` (defaults = the shipped model's recipe)."""

    train_layers: int = 6
    head_hidden: int = 256
    epochs: int = 4
    batch_size: int = 32
    lr_layers: float = 5e-4
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    class_weight_power: float = 0.0
    go_fraction: float = 0.5  # fixed seeded share of GoEmotions train used
    dialogue_repeat: int = 1
    valence_weight: float = 0.5
    use_context: bool = False
    context_cues: int = 3
    max_length: int = 128
    val_fraction: float = 0.1
    threads: int = 2
    device: str = "cpu"
    limit: int | None = None  # train on a seeded sample of this many utterances (quick runs)
    #: Train low-rank adapters (LoRA, Hu et al. 2021) of this rank on every linear map of the trained layers
    #: instead of the layers themselves; only the adapters and the head are stored (:func:`_lora_linear`).
    #: 0 = fine-tune the layers and store them as int8 copies (:func:`quantize_state`).
    lora_rank: int = 16
    #: The adapters' output is scaled by ``lora_alpha / lora_rank``.
    lora_alpha: float = 16.0
    #: What the branch's CTranslate2 encoder runs with at inference (written to the config; training itself
    #: runs float32; an encoder CTranslate2 cannot take runs in transformers and is written as float32).
    #: See :mod:`emotag.models.ct2_encoder` for what int8 costs and saves.
    compute_type: str = "int8"

    def __post_init__(self) -> None:
        # Checked here, not when the model is loaded: a typo would otherwise cost a whole training run and
        # leave a model directory that refuses to load.
        check_compute_type(self.compute_type)


@dataclass
class _Cached:
    """Cached frozen-layer states of one record set."""

    hidden: list[torch.Tensor]  # per record (L_i, D) fp16 (or pooled (D,) when train_layers == 0)
    target: list[torch.Tensor]  # per record (L_i,) uint8
    labels: npt.NDArray[np.int64]
    valence: npt.NDArray[np.float32]  # NaN where unknown
    sources: list[str]


def _no_progress(_msg: str, _frac: float) -> None:
    return None


def _set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _check_bert_like(model: Any, spec: str) -> None:
    if not (hasattr(model, "embeddings") and hasattr(model, "encoder") and hasattr(model.encoder, "layer")):
        raise ModelError(
            f"{spec}: train_text needs a BERT-family encoder (embeddings + encoder.layer); "
            "pick a BERT/RoBERTa/MiniLM/MPNet-style model"
        )


def _cache(
    tok: Any,
    model: Any,
    records: Sequence[TextRecord],
    opts: TextTrainOptions,
    *,
    use_context: bool,
    progress: Progress,
    what: str,
) -> _Cached:
    """Run the frozen lower layers once over ``records`` and keep the token states (see module doc)."""
    import torch

    layers = model.encoder.layer
    n_frozen = len(layers) - opts.train_layers
    order = sorted(
        range(len(records)), key=lambda i: len(records[i].text) + sum(len(c) for c in records[i].context)
    )
    hidden: list[Any] = [None] * len(records)
    target: list[Any] = [None] * len(records)
    bs = 128
    dev = torch.device(opts.device)
    with torch.inference_mode():
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            enc = build_inputs(
                tok,
                [records[i].text for i in idx],
                [records[i].context for i in idx] if use_context else None,
                use_context=use_context,
                context_cues=opts.context_cues,
                max_length=opts.max_length,
            )
            tmask = enc.pop("target_mask")
            mask = enc["attention_mask"].to(dev)
            emb_kw = {"input_ids": enc["input_ids"].to(dev)}
            if "token_type_ids" in enc:
                emb_kw["token_type_ids"] = enc["token_type_ids"].to(dev)
            h = model.embeddings(**emb_kw)
            h = run_layers(layers[:n_frozen], h, mask, model.encoder)
            if opts.train_layers == 0:
                pooled = masked_mean(h, tmask.to(dev)).to("cpu", torch.float16)
                for j, i in enumerate(idx):
                    hidden[i] = pooled[j]
                    target[i] = tmask[j]
            else:
                h16 = h.to("cpu", torch.float16)
                lengths = enc["attention_mask"].sum(1).tolist()
                for j, i in enumerate(idx):
                    n = int(lengths[j])
                    hidden[i] = h16[j, :n].clone()
                    target[i] = tmask[j, :n].to(torch.uint8).clone()
            progress(f"text: caching {what}", min(1.0, (s + bs) / max(1, len(order))))
    labels = np.array([r.label for r in records], dtype=np.int64)
    valence = np.array([np.nan if r.valence is None else r.valence for r in records], dtype=np.float32)
    return _Cached(hidden, target, labels, valence, [r.source for r in records])


def _batch(cache: _Cached, idx: Sequence[int], dev: torch.device) -> tuple[torch.Tensor, ...]:
    import torch

    if cache.hidden[idx[0]].dim() == 1:
        x = torch.stack([cache.hidden[i] for i in idx]).to(dev, torch.float32)
        return x, torch.ones(len(idx), 1, device=dev), torch.ones(len(idx), 1, device=dev)
    L = max(int(cache.hidden[i].shape[0]) for i in idx)
    D = int(cache.hidden[idx[0]].shape[1])
    x = torch.zeros(len(idx), L, D, dtype=torch.float32)
    mask = torch.zeros(len(idx), L, dtype=torch.float32)
    tmask = torch.zeros(len(idx), L, dtype=torch.float32)
    for j, i in enumerate(idx):
        n = int(cache.hidden[i].shape[0])
        x[j, :n] = cache.hidden[i].float()
        mask[j, :n] = 1.0
        tmask[j, :n] = cache.target[i].float()
    return x.to(dev), mask.to(dev), tmask.to(dev)


def _lora_linear(base: Any, rank: int, scale: float) -> Any:
    """``base`` (an ``nn.Linear``, frozen) plus a trainable low-rank update ``scale * B @ A``.

    ``A`` (rank x in) starts random and ``B`` (out x rank) at zero, so training starts from the encoder
    itself (Hu et al. 2021). Written by hand: the wrapper is a dozen lines, and the ``peft`` library would
    add a dependency to wrap modules that :func:`emotag.models.text.run_layers` calls directly.
    """
    import torch

    class LoRALinear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base
            for p in self.base.parameters():
                p.requires_grad_(False)
            self.lora_a = torch.nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            torch.nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
            self.scale = scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.base(x)
            return out + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    return LoRALinear()


class _Net:
    """Top layers + head, trained together (a thin holder so both can be saved with their key prefixes).

    With ``lora_rank`` every ``nn.Linear`` of the copied layers is wrapped by :func:`_lora_linear` and only
    the adapters and the head train; :meth:`state` then holds the adapters as ``delta.layers.<j>.<name>.a``
    (``scale * B``) and ``.b`` (``A``), the form :func:`emotag.models.text.apply_deltas` adds back onto
    the encoder's own weights, and nothing else of the layers (they are the encoder's).
    """

    def __init__(self, model: Any, opts: TextTrainOptions, dev: torch.device, *, lora: bool = True) -> None:
        import torch

        n = len(model.encoder.layer)
        self.layers = torch.nn.ModuleList(
            [copy.deepcopy(model.encoder.layer[i]) for i in range(n - opts.train_layers, n)]
        )
        self.lora: list[tuple[int, str, Any]] = []
        if lora and opts.lora_rank > 0:
            for j, layer in enumerate(self.layers):
                for p in layer.parameters():
                    p.requires_grad_(False)
                names = [name for name, m in layer.named_modules() if isinstance(m, torch.nn.Linear)]
                for name in names:
                    parent_name, _, attr = name.rpartition(".")
                    parent = layer.get_submodule(parent_name) if parent_name else layer
                    wrapped = _lora_linear(
                        getattr(parent, attr), opts.lora_rank, opts.lora_alpha / opts.lora_rank
                    )
                    setattr(parent, attr, wrapped)
                    self.lora.append((j, name, wrapped))
        self.layers.to(dev)
        self.head = make_head(int(model.config.hidden_size), opts.head_hidden, len(LABELS)).to(dev)
        self.encoder = model.encoder  # frozen; only for what its layers need besides the states (MPNet)

    def trainable(self) -> list[Any]:
        """The layer parameters that train (the adapters when there are any)."""
        return [p for p in self.layers.parameters() if p.requires_grad]

    def forward(self, x: torch.Tensor, mask: torch.Tensor, tmask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dim() == 2:
            pooled = x
        else:
            h = run_layers(list(self.layers), x, mask, self.encoder)
            pooled = masked_mean(h, tmask)
        logits, val = self.head(pooled)
        return logits, val, pooled

    def train(self, on: bool) -> None:
        self.layers.train(on)
        self.head.train(on)

    def state(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if self.lora:
            for j, name, m in self.lora:
                out[f"delta.layers.{j}.{name}.weight.a"] = (m.lora_b.detach() * m.scale).to("cpu").clone()
                out[f"delta.layers.{j}.{name}.weight.b"] = m.lora_a.detach().to("cpu").clone()
        else:
            for j, layer in enumerate(self.layers):
                for k, v in layer.state_dict().items():
                    out[f"layers.{j}.{k}"] = v.detach().to("cpu").clone()
        for k, v in self.head.state_dict().items():
            out[f"head.{k}"] = v.detach().to("cpu").clone()
        return out

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Load what :meth:`state` gave (adapters for an adapter net, whole layers otherwise)."""
        import torch

        if self.lora:
            with torch.no_grad():
                for j, name, m in self.lora:
                    m.lora_b.copy_(state[f"delta.layers.{j}.{name}.weight.a"] / m.scale)
                    m.lora_a.copy_(state[f"delta.layers.{j}.{name}.weight.b"])
        else:
            for j, layer in enumerate(self.layers):
                p = f"layers.{j}."
                layer.load_state_dict({k[len(p) :]: v for k, v in state.items() if k.startswith(p)})
        self.head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})


def _predict(
    net: _Net, cache: _Cached, dev: torch.device, bs: int = 256
) -> tuple[npt.NDArray[np.float32], ...]:
    import torch

    net.train(False)
    order = sorted(range(len(cache.hidden)), key=lambda i: int(cache.hidden[i].shape[0]))
    logits = np.zeros((len(order), len(LABELS)), dtype=np.float32)
    val = np.zeros(len(order), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), bs):
            idx = order[s : s + bs]
            lg, v, _ = net.forward(*_batch(cache, idx, dev))
            logits[idx] = lg.float().cpu().numpy()
            val[idx] = v.float().cpu().numpy()
    return logits, val


def softmax(z: npt.NDArray[np.float32], temperature: float = 1.0) -> npt.NDArray[np.float32]:
    """Row softmax of ``z / temperature``."""
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


def fit_temperature(logits: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> float:
    """Temperature minimising the NLL of ``softmax(logits / T)`` (1-D search over log T, robust and exact)."""
    best_t, best_nll = 1.0, math.inf
    z = logits.astype(np.float64)
    for log_t in np.linspace(math.log(0.05), math.log(20.0), 600):
        t = math.exp(log_t)
        s = z / t
        s = s - s.max(axis=1, keepdims=True)
        nll = float(-(s[np.arange(len(labels)), labels] - np.log(np.exp(s).sum(axis=1))).mean())
        if nll < best_nll:
            best_t, best_nll = t, nll
    return best_t


def classification_report(probs: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> dict[str, Any]:
    """accuracy, UA, macro-F1, weighted-F1, ECE and confusion matrix (via :mod:`emotag.metrics`)."""
    k = len(LABELS)
    pred = probs.argmax(axis=1)
    return {
        "n": int(len(labels)),
        "accuracy": round(metrics.accuracy(labels, pred), 4),
        "unweighted_accuracy": round(metrics.unweighted_accuracy(labels, pred, k), 4),
        "macro_f1": round(metrics.macro_f1(labels, pred, k), 4),
        "weighted_f1": round(metrics.weighted_f1(labels, pred, k), 4),
        "ece": round(metrics.expected_calibration_error(probs, labels), 4),
        "confusion": metrics.confusion_matrix(labels, pred, k).tolist(),
    }


def _epoch_order(train: _Cached, opts: TextTrainOptions, rng: random.Random) -> list[int]:
    dia = [i for i, s in enumerate(train.sources) if s != "goemotions"]
    idx = list(range(len(train.sources))) + dia * max(0, opts.dialogue_repeat - 1)
    rng.shuffle(idx)
    # Bucket by length inside chunks of 50 batches: less padding, still random across batches.
    chunk = opts.batch_size * 50
    out: list[int] = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: int(train.hidden[i].shape[0]))
        batches = [part[b : b + opts.batch_size] for b in range(0, len(part), opts.batch_size)]
        rng.shuffle(batches)
        for b in batches:
            out.extend(b)
    return out


def train_text(
    data_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    encoder: str | None = None,
    progress: Progress | None = None,
    options: TextTrainOptions | None = None,
    evaluate_reports: bool = True,
) -> dict[str, Any]:
    """Train the text branch and write ``text.safetensors`` + the ``text`` section of ``config.json``.

    Args:
        data_dir: the shared data folder (``goemotions/``, ``meld/``, ``emorynlp/``).
        out_dir: model directory to write into (other sections of ``config.json`` are kept).
        seed: seed of every random choice (held-out dialogues, sampling, init, dropout).
        encoder: encoder spec (Hugging Face id or folder); ``None`` = the packaged MiniLM.
        progress: callback ``(message, fraction_of_step)``.
        options: hyper-parameters (defaults: the shipped recipe).
        evaluate_reports: also compute figures on MELD dev, EmoryNLP test and GoEmotions test.

    Returns:
        A report: data sizes, per-epoch validation figures, temperature, report-set figures (before and
        after temperature), wall time, weight file size.

    Raises:
        DataError: data missing or malformed.
        ModelError / UnknownModelError: the encoder cannot be loaded or is not BERT-like.
    """
    import torch
    from safetensors.torch import save_file

    opts = options or TextTrainOptions()
    prog = progress or _no_progress
    t0 = time.monotonic()
    torch.set_num_threads(max(1, opts.threads))
    _set_seed(seed)
    dev = torch.device(opts.device)

    corpora = load_corpora(
        data_dir,
        seed=seed,
        val_fraction=opts.val_fraction,
        max_context=opts.context_cues,
        with_reports=evaluate_reports,
    )
    train_recs, val_recs = corpora.train, corpora.val
    if opts.go_fraction < 1.0:
        # A fixed seeded subset of GoEmotions: halves the caching cost and keeps Reddit text from
        # dominating the spoken-dialogue corpora.
        go = [r for r in train_recs if r.source == "goemotions"]
        keep = set(random.Random(seed + 1).sample(range(len(go)), int(round(len(go) * opts.go_fraction))))
        go_kept = [r for i, r in enumerate(go) if i in keep]
        train_recs = go_kept + [r for r in train_recs if r.source != "goemotions"]
    if opts.limit is not None:
        rng0 = random.Random(seed)
        train_recs = rng0.sample(train_recs, min(opts.limit, len(train_recs)))
    if opts.limit is not None:  # quick runs (tests, `emotag train --quick`): a smaller validation part too
        val_recs = random.Random(seed).sample(val_recs, min(len(val_recs), max(100, opts.limit // 2)))
    if not train_recs or not val_recs:
        raise DataError(f"{data_dir}: no training or validation utterances found")

    spec = encoder or PACKAGED_ENCODER
    sha = ENCODER_SHA256 if spec == PACKAGED_ENCODER else None
    tok, model = load_encoder(spec, sha)
    _check_bert_like(model, spec)
    if not 0 <= opts.train_layers <= len(model.encoder.layer):
        raise ModelError(f"train_layers={opts.train_layers} outside 0..{len(model.encoder.layer)}")
    model.to(dev)

    prog("text: caching frozen layers", 0.0)
    train = _cache(tok, model, train_recs, opts, use_context=opts.use_context, progress=prog, what="train")
    val = _cache(tok, model, val_recs, opts, use_context=opts.use_context, progress=prog, what="validation")
    t_cache = time.monotonic() - t0

    net = _Net(model, opts, dev)
    head_params = list(net.head.parameters())
    layer_params = net.trainable()
    groups: list[dict[str, Any]] = [{"params": head_params, "lr": opts.lr_head}]
    if layer_params:
        groups.append({"params": layer_params, "lr": opts.lr_layers})
    optim = torch.optim.AdamW(groups, weight_decay=opts.weight_decay)
    counts = np.bincount(train.labels, minlength=len(LABELS)).astype(np.float64)
    cw = (counts.sum() / np.maximum(counts, 1.0) / len(LABELS)) ** opts.class_weight_power
    cw = cw / (cw * counts).sum() * counts.sum()
    ce = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(cw, dtype=torch.float32, device=dev), label_smoothing=opts.label_smoothing
    )
    rng = random.Random(seed)
    steps_per_epoch = math.ceil(len(_epoch_order(train, opts, random.Random(seed))) / opts.batch_size)
    total = steps_per_epoch * opts.epochs
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm))
    )
    history: list[dict[str, float]] = []
    best_f1, best_state, best_epoch = -1.0, net.state(), 0
    step = 0
    for epoch in range(opts.epochs):
        net.train(True)
        order = _epoch_order(train, opts, rng)
        run_loss = 0.0
        for s in range(0, len(order), opts.batch_size):
            idx = order[s : s + opts.batch_size]
            x, mask, tmask = _batch(train, idx, dev)
            y = torch.as_tensor(train.labels[idx], device=dev)
            vt = torch.as_tensor(train.valence[idx], device=dev)
            logits, v, _ = net.forward(x, mask, tmask)
            loss = ce(logits, y)
            known = ~torch.isnan(vt)
            if opts.valence_weight > 0 and bool(known.any()):
                loss = loss + opts.valence_weight * ((v[known] - vt[known]) ** 2).mean()
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head_params + layer_params, 1.0)
            optim.step()
            sched.step()
            step += 1
            run_loss += float(loss.detach())
            if step % 50 == 0:
                prog(f"text: epoch {epoch + 1}/{opts.epochs}", (s + opts.batch_size) / len(order))
        vl, _ = _predict(net, val, dev)
        vp = vl.argmax(axis=1)
        f1 = metrics.weighted_f1(val.labels, vp, len(LABELS))
        history.append(
            {
                "epoch": epoch + 1,
                "loss": round(run_loss / max(1, math.ceil(len(order) / opts.batch_size)), 4),
                "val_weighted_f1": round(f1, 4),
                "val_accuracy": round(metrics.accuracy(val.labels, vp), 4),
                "seconds": round(time.monotonic() - t0, 1),
            }
        )
        if f1 > best_f1:
            best_f1, best_state, best_epoch = f1, net.state(), epoch + 1
    net.load(best_state)
    fl, _ = _predict(net, val, dev)
    stored = quantize_state(best_state)  # adapters: fp16; whole layers: int8 matrices
    n_layers = len(model.encoder.layer)
    shipped = apply_deltas(
        dequantize_state(stored), list(model.encoder.layer)[n_layers - opts.train_layers :]
    )
    # From here on: the shipped weights, merged into plain layers as loading merges them.
    net = _Net(model, opts, dev, lora=False)
    net.load({k: v.to(dev) for k, v in shipped.items()})
    vl, _ = _predict(net, val, dev)
    temperature = fit_temperature(vl, val.labels)
    quant = {
        "val_weighted_f1_float": round(metrics.weighted_f1(val.labels, fl.argmax(1), len(LABELS)), 4),
        "val_weighted_f1_stored": round(metrics.weighted_f1(val.labels, vl.argmax(1), len(LABELS)), 4),
        "val_argmax_agreement": round(float((fl.argmax(1) == vl.argmax(1)).mean()), 4),
    }
    report: dict[str, Any] = {
        "seed": seed,
        "encoder": spec,
        "options": asdict(opts),
        "sizes": {
            "train": len(train_recs),
            "train_by_source": {s: train.sources.count(s) for s in sorted(set(train.sources))},
            "validation_meld_train_heldout": len(val_recs),
        },
        "history": history,
        "best_epoch": best_epoch,
        "temperature": round(temperature, 4),
        "validation": {
            "raw": classification_report(softmax(vl), val.labels),
            "calibrated": classification_report(softmax(vl, temperature), val.labels),
        },
        "cache_seconds": round(t_cache, 1),
        "quantization": quant,
    }
    if evaluate_reports:
        for name, recs in corpora.reports.items():
            rep: dict[str, Any] = {}
            variants = (
                [("context", True), ("no_context", False)]
                if opts.use_context and name != "goemotions_test"
                else [("no_context", False)]
            )
            for tag, use_ctx in variants:
                c = _cache(tok, model, recs, opts, use_context=use_ctx, progress=prog, what=name)
                lg, _ = _predict(net, c, dev)
                rep[tag] = {
                    "raw": classification_report(softmax(lg), c.labels),
                    "calibrated": classification_report(softmax(lg, temperature), c.labels),
                }
            report[name] = rep

    out_dir.mkdir(parents=True, exist_ok=True)
    wpath = out_dir / TEXT_WEIGHTS
    with atomicfile.replacing(wpath) as tmp:
        save_file(stored, str(tmp), metadata={"format": "pt", "labels": ",".join(LABELS), "seed": str(seed)})
    report["weights_bytes"] = wpath.stat().st_size
    report["wall_seconds"] = round(time.monotonic() - t0, 1)
    cfg = TextConfig(
        encoder=spec,
        encoder_sha256=sha,
        train_layers=opts.train_layers,
        adapter_rank=opts.lora_rank,
        head_hidden=opts.head_hidden,
        use_context=opts.use_context,
        context_cues=opts.context_cues,
        max_length=opts.max_length,
        temperature=round(temperature, 4),
        compute_type=opts.compute_type if convertible(model, tok) else "float32",
        report=_summary(report),
    )
    write_section(out_dir, cfg.to_dict())
    prog("text: done", 1.0)
    return report


def quantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Storage form of a trained state: 2-D ``layers.*`` weights as symmetric per-row int8.

    Each quantised matrix ``W`` is stored as ``W_q`` (int8) plus ``qscale.<key>`` (fp16, one per row) with
    ``W ≈ W_q * scale``; all other tensors (biases, LayerNorms, the head) as fp16. This halves the file
    against fp16 (two MiniLM layers: ~3.8 MB instead of ~7.5 MB); the measured effect on validation
    predictions is in the training report (``quantization``). :func:`emotag.models.text.dequantize_state`
    inverts it.
    """
    import torch

    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        v = v.detach().float().cpu()
        if k.startswith("layers.") and v.dim() == 2:
            scale = (v.abs().amax(dim=1, keepdim=True) / 127.0).clamp(min=1e-12)
            out[k] = torch.round(v / scale).clamp(-127, 127).to(torch.int8).contiguous()
            out[f"qscale.{k}"] = scale.squeeze(1).to(torch.float16).contiguous()
        else:
            out[k] = v.to(torch.float16).contiguous()
    return out


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The compact figures kept in config.json (weighted-F1 / accuracy / ECE per report set)."""
    out: dict[str, Any] = {"seed": report["seed"], "temperature": report["temperature"]}
    for name in ("validation", "meld_dev", "emorynlp_test", "goemotions_test"):
        rep = report.get(name)
        if not isinstance(rep, dict):
            continue
        if name != "validation":
            rep = rep.get("context") or rep.get("no_context") or {}
        cal = rep.get("calibrated", {})
        out[name] = {
            k: cal.get(k) for k in ("accuracy", "unweighted_accuracy", "macro_f1", "weighted_f1", "ece")
        }
    return out


def evaluate_text_sets(model_dir: Path, data_dir: Path, *, use_context: bool | None = None) -> dict[str, Any]:
    """Figures of a trained text branch on MELD dev, EmoryNLP test (mapped) and GoEmotions test.

    Runs the branch exactly as inference does (:meth:`TextBranch.infer`, contexts from the dialogues).

    Args:
        model_dir: model directory holding the text section + weights.
        data_dir: the shared data folder.
        use_context: override the config's context switch (``None`` = as configured).

    Returns:
        ``{set_name: {accuracy, unweighted_accuracy, macro_f1, weighted_f1, ece, confusion, n}}``, plus
        ``valence_pearson`` / ``sentiment_accuracy`` (valence thresholded at ±1/3) where the set has
        sentiment targets.
    """
    branch = TextBranch.from_dir(model_dir)
    if use_context is not None:
        branch.config = replace(branch.config, use_context=use_context)
    corpora = load_corpora(data_dir, max_context=branch.config.context_cues)
    out: dict[str, Any] = {}
    for name, recs in corpora.reports.items():
        res = branch.infer([r.text for r in recs], [r.context for r in recs])
        labels = np.array([r.label for r in recs], dtype=np.int64)
        out[name] = classification_report(res.probs, labels)
        known = [i for i, r in enumerate(recs) if r.valence is not None]
        if len(known) > 2:
            vt = np.array([recs[i].valence for i in known], dtype=np.float64)
            vp = res.valence[known].astype(np.float64)
            # 3-way sentiment from valence with thresholds at +-1/3
            vs = np.where(vp > 1 / 3, 1.0, np.where(vp < -1 / 3, -1.0, 0.0))
            out[name]["valence_pearson"] = round(float(np.corrcoef(vp, vt)[0, 1]), 4)
            out[name]["sentiment_accuracy"] = round(float((vs == vt).mean()), 4)
    return out
