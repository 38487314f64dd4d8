"""Train the heads of the Whisper audio branch (:mod:`emotag.models.whisper_audio`) and cross-validate them.

Recipe: every clip is encoded once as it is and ``n_aug`` (:data:`N_AUG`) times through the training
augmentation chain (:func:`emotag.training.augment.augment`: noise, reverberation, band limits, codecs,
pitch and tempo), each without its leading and trailing silence
(:data:`emotag.models.whisper_audio.TRIM_SILENCE`), pooled to 1,536 values. Two heads (1,536 → 64 → 7)
are trained with AdamW, label smoothing and dropout: ``global`` on states standardised with training
statistics, ``file`` on states standardised per speaker (the statistics of that speaker's clips, as
``emotag tag`` uses those of a media file). Early stopping and each head's temperature use the validation
speakers (the last speaker fold), and so does a third temperature, ``centred``: the global head reading
states re-centred per speaker, which votes with the per-speaker head whenever a file's statistics are known
(:meth:`emotag.models.whisper_audio.WhisperAudioBranch.head_outputs`). The cross-validation repeats
the whole recipe on the 6 speaker folds (train on 4, stop on the next, test on the held-out one), so its
figures are directly comparable with :func:`emotag.training.audio.evaluate_audio_folds`.

Trimming (session 4, same 6 folds, 3 augmented copies): UA 0.744 ± 0.081 → 0.748 ± 0.067 with each clip
alone, 0.825 ± 0.060 → 0.822 ± 0.051 per speaker, degraded copies 0.564 → 0.584 / 0.641 → 0.634; on the 3
held-out eval actors, 1-1.5 s of room noise added around each clip changed 13-14 % of the untrimmed heads'
labels (accuracy 0.739 → 0.706-0.711) and none of the trimmed heads'.

Beside the heads, the step trains the branch's speech detector (:func:`train_speech_detector`): a logistic
regression on the same globally standardised states, speech (the training speakers' clips and augmented
copies, some of them over music) against synthetic noise, tones, hum and music
(:mod:`emotag.training.nonspeech`); its figures on the validation speakers and on non-speech of another
seed are in ``report.speech_detector`` of ``whisper_audio.json``.

Before any of that, and only when asked (``ffn_keep``; off by default, see :data:`FFN_KEEP`), the step narrows
the encoder's feed-forward blocks to that many of their 1,536 neurons (:func:`fit_encoder_cuts`,
:mod:`emotag.models.ffn_cut`): calibrated on :data:`CUT_CLIPS` of the
training clips (unlabelled log-mel frames; the cuts reproduce the whole encoder's blocks, nothing is fitted to
the labels), stored with the heads, and run wherever the heads run. The cross-validation here reads the
states of that one encoder (calibrated on clips of every speaker); ``bench/audio_cv.py --cut-per-fold``
fits a cut per fold on its training speakers alone, which is the honest figure.

The encoder is frozen, so all the cost is the encoding (about 40 s per pass over RAVDESS on 2 idle cores);
the heads train in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag import atomicfile, metrics
from emotag.models.audio import ProsodyStats
from emotag.models.whisper_audio import CENTRED
from emotag.timeline import LABELS
from emotag.training.audio import fit_temperature
from emotag.training.audiodata import Clip, load_clip, read_manifest, read_ravdess, speaker_folds

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

    from emotag.models.ffn_cut import FfnCut
    from emotag.models.whisper_audio import SpeechDetector, WhisperAudioBranch

Progress = Callable[[str], None]

#: Augmented copies per clip (besides the clip itself). On the 6 folds, 0 / 1 / 2 / 3 copies measured UA
#: 0.751 / 0.750 / 0.746 / 0.744 on clean clips alone and 0.462 / 0.537 / 0.555 / 0.564 on the degraded copies
#: (effects training never uses; per speaker 0.576 / 0.615 / 0.630 / 0.641), 2026-11-26: a voice from
#: another corpus is more like the degraded copies than like RAVDESS's studio takes (measured on whole
#: clips, before trimming). With 3 copies the whisper-audio step of ``emotag train`` takes 5-8 minutes.
N_AUG = 3


def _say(progress: Progress | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


#: Feed-forward neurons each encoder layer keeps by default (of 1,536; ``None``: the whole blocks), see
#: :func:`fit_encoder_cuts`. The whole blocks stay the default: a cut to 768 kept the speaker-independent
#: RAVDESS figures and took a quarter off the encoder's CPU, but reproduced the whole encoder less well on
#: speech unlike RAVDESS's (``bench/README.md``, session 20), so it is opt-in (``emotag train --ffn-keep``).
FFN_KEEP: int | None = None
#: The cut measured in session 20 (``bench/audio_cv.py --cut-per-fold`` uses it unless told otherwise).
FFN_KEEP_MEASURED = 768
#: Training clips (a seeded sample) whose log-mel frames calibrate the cuts.
CUT_CLIPS = 240


def fit_encoder_cuts(
    clips: Sequence[Clip],
    seed: int,
    layers: int | None = None,
    keep: int | None = FFN_KEEP,
    n_clips: int = CUT_CLIPS,
) -> tuple[tuple[FfnCut, ...], list[float]]:
    """The encoder's feed-forward cuts (:mod:`emotag.models.ffn_cut`), each of its ``layers`` layers cut to
    ``keep`` neurons, calibrated on a seeded sample of ``n_clips`` of ``clips`` (trimmed as the branch trims
    them); and each cut's residual error. No cuts when ``keep`` is ``None`` or not below the block's width.

    The cuts are fitted on the bfloat16 torch encoder whichever backend will serve them (CTranslate2 takes
    the same narrowed tensors).
    """
    from emotag.models.ffn_cut import fit_cuts, tensor_names
    from emotag.models.whisper_audio import DEFAULT_LAYERS, WhisperEncoder
    from emotag.models.whisper_torch import load_packaged

    if keep is None or not clips:  # the default: no torch encoder to load
        return (), []
    layers = layers or DEFAULT_LAYERS
    encoder = load_packaged(layers)
    if keep >= int(encoder.weights[tensor_names(0)[0]].shape[0]):
        return (), []
    front = WhisperEncoder(layers=layers, threads=1, backend="torch-bf16")
    rows = np.random.default_rng([seed, 31]).choice(len(clips), min(n_clips, len(clips)), replace=False)
    feats = [front.features(load_clip(clips[int(i)])) for i in sorted(rows)]
    return fit_cuts(encoder, feats, [keep] * layers)


def encode_clips(
    clips: Sequence[Clip],
    n_aug: int,
    seed: int,
    progress: Progress | None = None,
    layers: int | None = None,
    cuts: Sequence[FfnCut] = (),
) -> npt.NDArray[np.float32]:
    """``(N, 1 + n_aug, 1536)`` pooled states (encoder narrowed by ``cuts``): the clip as it is, then
    ``n_aug`` augmented copies."""
    from emotag.models.whisper_audio import DEFAULT_LAYERS, POOLED_DIM, WhisperEncoder
    from emotag.training.augment import augment

    enc = WhisperEncoder(layers=layers or DEFAULT_LAYERS, cuts=cuts)
    waves = [load_clip(c) for c in clips]
    out = np.zeros((len(clips), 1 + n_aug, POOLED_DIM), np.float32)
    t0 = time.time()
    for i, w in enumerate(waves):
        variants = [w] + [augment(w, np.random.default_rng([seed, v, i]), pool=waves) for v in range(n_aug)]
        out[i] = enc.pooled(variants)
        if (i + 1) % 200 == 0:
            _say(progress, f"whisper-audio: encoded {i + 1}/{len(clips)} clips ({time.time() - t0:.0f} s)")
    return out


def _speaker_stats(
    feats: npt.NDArray[np.float32], speakers: Sequence[str]
) -> dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
    """Per speaker, mean/std of the clean states (what a media file's statistics stand in for)."""
    spk = np.asarray(speakers)
    return {s: (feats[spk == s, 0].mean(0), feats[spk == s, 0].std(0)) for s in sorted(set(speakers))}


def _inputs(
    feats: npt.NDArray[np.float32],
    rows: Sequence[int],
    speakers: Sequence[str],
    kind: str,
    std: Any,
    stats: dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]],
    variants: bool,
) -> npt.NDArray[np.float32]:
    """Head inputs for ``rows`` (all variants when ``variants``, else the clean one), flattened."""
    vs = range(feats.shape[1]) if variants else range(1)
    parts = []
    for v in vs:
        x = feats[list(rows), v]
        if kind == "global":
            parts.append(std.global_z(x))
        elif kind == CENTRED:  # the global head on states re-centred per speaker (see head_outputs)
            means = np.stack([stats[speakers[r]][0] for r in rows])
            parts.append(std.global_z(x - means + std.mean))
        else:
            parts.append(
                np.stack([std.file_z(x[j], *stats[speakers[r]]) for j, r in enumerate(rows)]).astype(
                    np.float32
                )
            )
    return np.concatenate(parts)


def train_head(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    xv: npt.NDArray[np.float32],
    yv: npt.NDArray[np.int64],
    seed: int,
    epochs: int = 80,
) -> tuple[torch.nn.Module, float]:
    """Train one head, keeping the epoch with the best validation UA; returns (head, that UA)."""
    import torch

    from emotag.models.whisper_audio import build_head

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = build_head()
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    ce = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    xt, yt, xvt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(xv)
    best, best_state = -1.0, None
    for _ in range(epochs):
        head.train()
        perm = rng.permutation(len(y))
        for s in range(0, len(perm), 64):
            idx = torch.from_numpy(perm[s : s + 64])
            loss = ce(head(xt[idx])[0], yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.inference_mode():
            ua = metrics.unweighted_accuracy(yv, head(xvt)[0].numpy().argmax(1), len(LABELS))
        if ua > best:
            best, best_state = ua, {k: v.clone() for k, v in head.state_dict().items()}
    assert best_state is not None
    head.load_state_dict(best_state)
    head.eval()
    return head, best


def _logits(head: torch.nn.Module, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import torch

    with torch.inference_mode():
        out: npt.NDArray[np.float32] = head(torch.from_numpy(x))[0].numpy()
    return out


def _fit(
    feats: npt.NDArray[np.float32],
    clips: Sequence[Clip],
    train: Sequence[int],
    val: Sequence[int],
    seed: int,
) -> tuple[dict[str, torch.nn.Module], dict[str, float], Any, dict[str, float]]:
    """Both heads on ``train`` rows, stopped and calibrated on ``val`` rows."""
    from emotag.models.whisper_audio import Standardiser

    spk = [c.speaker for c in clips]
    y = np.array([c.label_index for c in clips], np.int64)
    allx = feats[list(train)].reshape(-1, feats.shape[-1])
    std = Standardiser(allx.mean(0).astype(np.float32), np.maximum(allx.std(0), 1e-4).astype(np.float32))
    stats = _speaker_stats(feats, spk)
    heads, temps, val_ua = {}, {}, {}
    y_tr = np.tile(y[list(train)], feats.shape[1])
    for k, kind in enumerate(("global", "file")):
        x = _inputs(feats, train, spk, kind, std, stats, variants=True)
        xv = _inputs(feats, val, spk, kind, std, stats, variants=False)
        head, ua = train_head(x, y_tr, xv, y[list(val)], seed + k)
        heads[kind] = head
        temps[kind] = fit_temperature(_logits(head, xv), y[list(val)])
        val_ua[kind] = ua
    xc = _inputs(feats, val, spk, CENTRED, std, stats, variants=False)
    temps[CENTRED] = fit_temperature(_logits(heads["global"], xc), y[list(val)])
    return heads, temps, std, val_ua


def _branch_probs(
    branch: WhisperAudioBranch, pooled: npt.NDArray[np.float32], speakers: Sequence[str], group: str
) -> npt.NDArray[np.float32]:
    """The branch's calibrated probabilities for clean pooled states ``(N, 1536)``: each clip alone
    (``none``), each speaker's clips with that speaker's statistics (``speaker``, as ``emotag tag`` reads a
    media file), or all of them with the statistics of the whole set (``corpus``: unknown, mixed speakers,
    as ``emotag eval`` reads a manifest of one-clip files)."""
    if group == "none":
        return branch.head_outputs(pooled)[0]
    keys = list(speakers) if group == "speaker" else [""] * len(speakers)
    out = np.zeros((len(keys), len(LABELS)), np.float32)
    for k, (mean, sd) in _speaker_stats(pooled[:, None, :], keys).items():
        m = np.asarray(keys) == k
        out[m] = branch.head_outputs(pooled[m], ProsodyStats(mean, sd, int(m.sum())))[0]
    return out


def cross_validate(
    feats: npt.NDArray[np.float32] | None,
    clips: Sequence[Clip],
    folds: Sequence[Sequence[str]],
    seed: int,
    keep: list[WhisperAudioBranch] | None = None,
    layers: int | None = None,
    degraded: npt.NDArray[np.float32] | None = None,
    per_fold: Callable[[int], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]] | None = None,
) -> dict[str, Any]:
    """Per fold and summary: UA and ECE of the branch reading each test clip alone, per speaker, and with
    the statistics of the whole test fold (``corpus``: 4 unknown, mixed speakers); see :func:`_branch_probs`.

    Each fold also gives the floor a calibrated model shows on its clips (``ece_floor_*``,
    :func:`emotag.metrics.ece_floor`): a fold's few hundred clips put it near 0.06, so the per-fold ECE
    overstates the error; the summary's ``pooled`` holds the ECE over all out-of-fold clips at once.

    ``keep``: if given, each fold's branch (heads that never saw that fold's test speakers) is appended,
    for :func:`save_folds` (fusion trains on their held-out outputs). ``degraded``: ``(N, 1536)`` pooled
    states of each clip's degraded copy (:func:`emotag.training.audio.degraded_waves`, the copy the CNN's
    cross-validation scores too): each fold is also scored on its test
    speakers' degraded copies (statistics of the degraded clips). ``per_fold``: called with each fold's
    number, returns that fold's ``(feats, degraded)`` in place of the arguments (states of an encoder
    calibrated without the fold's validation and test speakers, :func:`fit_encoder_cuts`).
    """
    from emotag.models.whisper_audio import DEFAULT_LAYERS, WhisperAudioBranch

    layers = layers or DEFAULT_LAYERS
    spk = [c.speaker for c in clips]
    y = np.array([c.label_index for c in clips], np.int64)
    rows: list[dict[str, Any]] = []
    groups = (("ua_alone", "none"), ("ua_per_speaker", "speaker"), ("ua_corpus", "corpus"))
    oof = {g: np.zeros((len(clips), len(LABELS)), np.float32) for _, g in groups}
    seen = np.zeros(len(clips), bool)
    for f in range(len(folds)):
        test_s, val_s = set(folds[f]), set(folds[(f + 1) % len(folds)])
        te = [i for i, s in enumerate(spk) if s in test_s]
        va = [i for i, s in enumerate(spk) if s in val_s]
        tr = [i for i, s in enumerate(spk) if s not in test_s | val_s]
        if per_fold is not None:
            feats, degraded = per_fold(f)
        if feats is None:
            raise ValueError("cross_validate: no states (pass feats or per_fold)")
        heads, temps, std, _ = _fit(feats, clips, tr, va, seed + 100 * f)
        branch = WhisperAudioBranch(None, heads, std, temps, layers=layers)
        if keep is not None:
            keep.append(branch)
        row: dict[str, Any] = {"fold": f, "test_speakers": sorted(test_s), "temperatures": temps}
        seen[te] = True
        for key, group in groups:
            p = _branch_probs(branch, feats[te, 0], [spk[i] for i in te], group)
            oof[group][te] = p
            row[key] = metrics.unweighted_accuracy(y[te], p.argmax(1), len(LABELS))
            row[f"ece_{key[3:]}"] = metrics.expected_calibration_error(p, y[te])
            row[f"ece_floor_{key[3:]}"] = metrics.ece_floor(p)
            if degraded is not None:
                dp = _branch_probs(branch, degraded[te], [spk[i] for i in te], group)
                row[f"degraded_{key}"] = metrics.unweighted_accuracy(y[te], dp.argmax(1), len(LABELS))
        rows.append(row)
    summary = {}
    keys = ["ua_alone", "ua_per_speaker", "ua_corpus", "ece_alone", "ece_per_speaker", "ece_corpus"]
    keys += ["ece_floor_alone", "ece_floor_per_speaker", "ece_floor_corpus"]
    if degraded is not None:
        keys += ["degraded_ua_alone", "degraded_ua_per_speaker", "degraded_ua_corpus"]
    for key in keys:
        v = np.array([r[key] for r in rows])
        summary[key] = {
            "mean": float(v.mean()),
            "std": float(v.std()),
            "min": float(v.min()),
            "max": float(v.max()),
        }
    pooled: dict[str, Any] = {"clips": int(seen.sum())}
    for key, group in groups:
        pooled[f"ece_{key[3:]}"] = metrics.expected_calibration_error(oof[group][seen], y[seen])
    summary["pooled"] = pooled
    return {"folds": rows, "summary": summary}


#: Speech detector (:func:`train_speech_detector`): synthetic non-speech clips for training and for its
#: report, every how many clips one is also mixed over music, and the L2 weight of the regression.
DETECTOR_NONSPEECH = 560
DETECTOR_MIX_EVERY = 3
DETECTOR_L2 = 1e-3


def _speech_over_music(waves: Sequence[npt.NDArray[np.float32]], seed: int) -> list[npt.NDArray[np.float32]]:
    """Each waveform with a music-like bed (:data:`~emotag.training.nonspeech.MUSIC_KINDS` or a beat of
    notes) 3-20 dB under it: still speech, as in a scene with a score under the dialogue."""
    from emotag.training.nonspeech import MUSIC_KINDS, nonspeech_audio

    rng = np.random.default_rng([seed, 11])
    beds = nonspeech_audio(len(waves), seed + 101, kinds=(*MUSIC_KINDS, "music"))
    out = []
    for w, bed in zip(waves, beds, strict=True):
        # float64 levels, unlike emotag.training.augment.mix_at_snr: the shipped detector was fitted on these
        # exact mixes, and its weights move by up to 0.5 % on float32 ones (same validation figures)
        bed = np.resize(bed, w.size).astype(np.float64)
        rms_w = float(np.sqrt(np.mean(np.square(w, dtype=np.float64)))) + 1e-9
        rms_b = float(np.sqrt(np.mean(np.square(bed)))) + 1e-9
        gain = rms_w / rms_b / 10 ** (float(rng.uniform(3.0, 20.0)) / 20)
        out.append((w + gain * bed).astype(np.float32))
    return out


def fit_logistic(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.float32], l2: float = DETECTOR_L2
) -> tuple[npt.NDArray[np.float32], float]:
    """``(weight, bias)`` of a logistic regression, each class weighing half (L-BFGS, L2 on the weight)."""
    import torch

    xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.float32))
    pos = float(yt.sum())
    if pos == 0 or pos == len(yt):
        raise ValueError("a logistic regression needs both classes")
    sw = torch.where(yt > 0.5, 0.5 / pos, 0.5 / (len(yt) - pos))
    w = torch.zeros(xt.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=500, tolerance_grad=1e-7, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (
            sw * torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt, reduction="none")
        ).sum()
        loss = loss + 0.5 * l2 * w.square().sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    return w.detach().numpy().astype(np.float32), float(b.detach()[0])


def train_speech_detector(
    feats: npt.NDArray[np.float32],
    clips: Sequence[Clip],
    train: Sequence[int],
    val: Sequence[int],
    std: Any,
    seed: int,
    layers: int | None = None,
    progress: Progress | None = None,
    n_nonspeech: int = DETECTOR_NONSPEECH,
    cuts: Sequence[FfnCut] = (),
) -> tuple[SpeechDetector, dict[str, Any]]:
    """The Whisper branch's :class:`~emotag.models.whisper_audio.SpeechDetector` and its report.

    Speech: the ``train`` clips' states (as they are and their augmented copies, ``feats``) and every
    :data:`DETECTOR_MIX_EVERY`-th of them over music (:func:`_speech_over_music`). No speech: synthetic
    noise, tones, hum and music (:func:`emotag.training.nonspeech.nonspeech_audio`, every kind). The report
    measures the ``val`` clips, the same over music, and non-speech of another seed, per kind
    (``n_nonspeech`` clips each for training and for the report).
    """
    from emotag.models.whisper_audio import DEFAULT_LAYERS, SpeechDetector, WhisperEncoder
    from emotag.training.nonspeech import ALL_KINDS, nonspeech_audio

    t0 = time.time()
    enc = WhisperEncoder(layers=layers or DEFAULT_LAYERS, cuts=cuts)

    def states(waves: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = std.global_z(enc.pooled(waves))
        return out

    mixed_tr = [train[k] for k in range(0, len(train), DETECTOR_MIX_EVERY)]
    mixed_va = [val[k] for k in range(0, len(val), DETECTOR_MIX_EVERY)]
    _say(
        progress, f"whisper-audio: speech detector: encoding {len(mixed_tr) + len(mixed_va)} clips over music"
    )
    over_tr = states(_speech_over_music([load_clip(clips[i]) for i in mixed_tr], seed))
    over_va = states(_speech_over_music([load_clip(clips[i]) for i in mixed_va], seed + 1))
    _say(progress, f"whisper-audio: speech detector: encoding {2 * n_nonspeech} non-speech clips")
    noise_tr = states(nonspeech_audio(n_nonspeech, seed + 201, kinds=ALL_KINDS))
    noise_va = states(nonspeech_audio(n_nonspeech, seed + 202, kinds=ALL_KINDS))
    speech_tr = np.concatenate([std.global_z(feats[list(train), v]) for v in range(feats.shape[1])])
    x = np.concatenate([speech_tr, over_tr, noise_tr])
    y = np.r_[np.ones(len(speech_tr) + len(over_tr)), np.zeros(len(noise_tr))].astype(np.float32)
    weight, bias = fit_logistic(x, y)
    det = SpeechDetector(weight, bias)

    def summary(p: npt.NDArray[np.float32]) -> dict[str, float]:
        return {
            "min": round(float(p.min()), 4),
            "p01": round(float(np.percentile(p, 1)), 4),
            "median": round(float(np.median(p)), 4),
            "max": round(float(p.max()), 4),
        }

    p_noise = det.probability(noise_va)
    kinds = np.array([ALL_KINDS[i % len(ALL_KINDS)] for i in range(len(p_noise))])
    p_speech = det.probability(std.global_z(feats[list(val), 0]))
    p_over = det.probability(over_va)
    validation: dict[str, Any] = {
        "speech": summary(p_speech),
        "speech_augmented": summary(
            det.probability(
                np.concatenate([std.global_z(feats[list(val), v]) for v in range(1, feats.shape[1])])
            )
        )
        if feats.shape[1] > 1
        else None,
        "speech_over_music": summary(p_over),
        "nonspeech": summary(p_noise),
        "nonspeech_max_by_kind": {
            k: round(float(p_noise[kinds == k].max()), 4) for k in ALL_KINDS if (kinds == k).any()
        },
        "accuracy_at_half": round(float(np.mean(np.r_[p_speech >= 0.5, p_over >= 0.5, p_noise < 0.5])), 4),
    }
    report = {
        "train": {
            "speech": len(speech_tr),
            "speech_over_music": len(over_tr),
            "nonspeech": len(noise_tr),
        },
        "l2": DETECTOR_L2,
        "validation": validation,
        "seconds": round(time.time() - t0, 1),
    }
    v = validation
    _say(
        progress,
        f"whisper-audio: speech detector: validation speech P min {v['speech']['min']:.3f}, over music "
        f"{v['speech_over_music']['min']:.3f}, non-speech max {v['nonspeech']['max']:.3f}",
    )
    return det, report


FOLDS_NAME = "whisper_audio_folds.safetensors"


def save_folds(out_dir: Path, branches: Sequence[WhisperAudioBranch]) -> None:
    """Write the cross-validation folds' heads (a training artefact, not shipped: only fusion training reads
    them, through :func:`load_folds`)."""
    from safetensors.torch import save_file

    state = {k: v for i, b in enumerate(branches) for k, v in b.state(f"fold{i}.").items()}
    with atomicfile.replacing(out_dir / FOLDS_NAME) as tmp:
        save_file(state, str(tmp))


def load_folds(
    model_dir: Path, branch: WhisperAudioBranch
) -> list[tuple[WhisperAudioBranch, list[str]]] | None:
    """Each cross-validation fold's branch (sharing ``branch``'s encoder) with the speakers it never saw,
    or ``None`` when ``model_dir`` has no fold heads (then fusion falls back to held-out speakers)."""
    import json

    from safetensors.torch import load_file

    from emotag.models.whisper_audio import CONFIG_NAME, WhisperAudioBranch

    try:
        meta = json.loads((model_dir / CONFIG_NAME).read_text(encoding="utf-8"))
        rows = meta["report"]["cv"]["folds"]
        state = load_file(str(model_dir / FOLDS_NAME))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out = []
    for i, row in enumerate(rows):
        if f"fold{i}.stats.mean" not in state or "temperatures" not in row:
            return None
        heads, std = WhisperAudioBranch.heads_from_state(state, f"fold{i}.")
        sub = WhisperAudioBranch(
            branch.encoder,
            heads,
            std,
            dict(row["temperatures"]),
            name=f"{branch.name}-fold{i}",
            layers=branch.layers,
            trim=branch.trim,
            log_mel=branch.log_mel,
            backend=branch.backend,
            speech=branch.speech,  # speech or not is no emotion: every fold hears it the same way
        )
        out.append((sub, [str(s) for s in row["test_speakers"]]))
    return out


def train_whisper_audio(
    data_dir: Path | None,
    out_dir: Path,
    *,
    seed: int = 0,
    audio_data: Path | None = None,
    n_aug: int = N_AUG,
    with_folds: bool = True,
    layers: int | None = None,
    detector_nonspeech: int = DETECTOR_NONSPEECH,
    ffn_keep: int | None = FFN_KEEP,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Encode the clips, cross-validate the recipe, train the shipped heads and the speech detector
    (:func:`train_speech_detector`, ``detector_nonspeech`` synthetic non-speech clips), write them into
    ``out_dir``.

    With ``with_folds``, the folds' heads are also written (:data:`FOLDS_NAME`) for fusion training.
    """
    from emotag.errors import DataError
    from emotag.models.whisper_audio import (
        DEFAULT_LAYERS,
        LOG_MEL,
        TRIM_SILENCE,
        WhisperAudioBranch,
    )
    from emotag.models.whisper_torch import fast_backend

    layers = layers or DEFAULT_LAYERS
    t0 = time.time()
    if audio_data is not None:
        clips = read_manifest(audio_data)
    elif data_dir is not None:
        clips = read_ravdess(data_dir)
    else:
        raise DataError("no audio training data: pass --data (with ravdess/) or --audio-data MANIFEST.csv")
    if len({c.speaker for c in clips}) < 2:
        raise DataError(
            "Whisper audio training needs clips of at least 2 speakers (validation is by speaker)"
        )
    folds = speaker_folds(clips, k=min(6, len({c.speaker for c in clips})), seed=seed)
    cuts, cut_errors = fit_encoder_cuts(clips, seed, layers, ffn_keep)
    if cuts:
        _say(
            progress,
            f"whisper-audio: feed-forward blocks cut to {ffn_keep} neurons (residual error "
            + ", ".join(f"{e:.3f}" for e in cut_errors)
            + ")",
        )
    _say(progress, f"whisper-audio: encoding {len(clips)} clips x {1 + n_aug} ({layers} encoder layers)")
    feats = encode_clips(clips, n_aug, seed, progress, layers=layers, cuts=cuts)
    report: dict[str, Any] = {
        "labels": list(LABELS),
        "n_aug": n_aug,
        "seed": seed,
        "encoder_layers": layers,
        "trim_silence": TRIM_SILENCE,
        "log_mel": LOG_MEL,
        "encoder_backend": fast_backend(),
        "ffn_keep": ffn_keep if cuts else None,
        "ffn_cut_errors": [round(e, 4) for e in cut_errors],
    }
    fold_branches: list[WhisperAudioBranch] = []
    if with_folds and len(folds) >= 3:
        report["cv"] = cross_validate(feats, clips, folds, seed, keep=fold_branches, layers=layers)
        s = report["cv"]["summary"]
        _say(
            progress,
            f"whisper-audio: CV UA alone {s['ua_alone']['mean']:.3f}, "
            f"per speaker {s['ua_per_speaker']['mean']:.3f}",
        )
    val_s = set(folds[-1])
    va = [i for i, c in enumerate(clips) if c.speaker in val_s]
    tr = [i for i, c in enumerate(clips) if c.speaker not in val_s]
    heads, temps, std, val_ua = _fit(feats, clips, tr, va, seed)
    speech, report["speech_detector"] = train_speech_detector(
        feats,
        clips,
        tr,
        va,
        std,
        seed,
        layers=layers,
        progress=progress,
        n_nonspeech=detector_nonspeech,
        cuts=cuts,
    )
    report.update(
        validation_speakers=sorted(val_s),
        train_speakers=sorted({clips[i].speaker for i in tr}),
        val_ua=val_ua,
        temperatures=temps,
        train_seconds=time.time() - t0,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if fold_branches:
        save_folds(out_dir, fold_branches)
    else:
        (out_dir / FOLDS_NAME).unlink(missing_ok=True)  # stale folds of another recipe must not be used
    WhisperAudioBranch(None, heads, std, temps, layers=layers, speech=speech, cuts=cuts).save(
        out_dir, extra={"report": report}
    )
    _say(progress, f"whisper-audio: wrote {out_dir} ({report['train_seconds']:.0f} s)")
    return report
