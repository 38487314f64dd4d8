"""Train and evaluate the audio branch, speaker-independently (every split is by actor).

Protocol (what the figures in the model card mean):

* :func:`evaluate_audio_folds`: the 24 RAVDESS actors are cut into 6 gender-balanced folds of 4. For each
  fold ``k`` a network trains on 4 folds, stops early and fits its temperature on fold ``k+1``, and is
  tested on fold ``k`` which it never saw. Test clips are the original files (silence and all), not the
  trimmed/augmented training copies. Reported: unweighted accuracy (mean per-class recall, UA) per fold,
  mean ± std, min/max, ECE before/after temperature scaling, and UA on the same held-out clips degraded
  by things training never used (telephone band, real mp3/opus round trip, long reverb, brown noise).
* :func:`train_audio`: the shipped branch is :data:`SHIPPED_MEMBERS` networks (seeds) trained on 20 actors
  (5 folds), their logits averaged; the 6th fold's 4 actors are its validation speakers (early stopping on
  UA, temperature scaling, the reported validation figures) and are named in ``audio.json``
  (``report.validation_speakers``), so fusion training and tests can find clips the branch never trained
  on. Why two: on the 6 folds, two seeds' average measured UA 0.617 ± 0.014 against 0.596 for one network
  (whose folds swung by up to 0.13 between seeds), and each network costs about 1 ms per 5 s cue, which
  keeps the whole model above 100 cues/s on 2 cores.
* Per-file prosody normalisation (see :mod:`emotag.models.audio`) is trained by drawing "file" statistics
  from 8-40 random clips of the same actor (70 % of examples) and evaluated with all of a test actor's
  clips as one file; figures without it are reported too.

Recipe choices, each measured with the 6-fold protocol above, two seeds per fold (UA of one network
averaged over seeds and folds / of the two seeds' averaged logits / of that average without file
statistics)::

    prosody only (16 features)                  0.596 / 0.617 ± 0.014 / -
    + spectral profile (32 features): shipped   0.612 / 0.625 ± 0.009 / 0.595
    + spectral profile + mixup (p 0.5)          0.608 / 0.623 ± 0.017 / 0.571

Cost control (2 shared CPU cores): augmentation is the expensive part (≈15 ms per clip on an idle core,
mostly the pitch shift), so an *augmentation bank* of ``n_variants`` randomly augmented copies of every
clip is built once and its features cached (float16 log-mel, prosody); epochs draw a random variant per
clip and add SpecAugment on top. Everything is seeded: the same seed gives the same weights (CPU, fixed
thread count).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag import metrics
from emotag.audiofeatures import N_PROSODY
from emotag.models.audio import AudioNetConfig
from emotag.timeline import LABEL_VALENCE_AROUSAL, LABELS
from emotag.training.audiodata import Clip, load_clips, read_manifest, read_ravdess, speaker_folds

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

Progress = Callable[[str], None]

N_CLASSES = len(LABELS)
#: Networks in the shipped branch (their logits are averaged; see the module docstring).
SHIPPED_MEMBERS = 2


@dataclass
class TrainConfig:
    """Hyper-parameters (defaults = the shipped model)."""

    n_variants: int = 8
    epochs: int = 36
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.1
    va_weight: float = 0.5
    file_stats_p: float = 0.7
    spec_time_masks: int = 2
    spec_time_width: int = 20
    spec_freq_masks: int = 2
    spec_freq_width: int = 8
    #: Share of batches trained on mixup pairs, and the Beta(alpha, alpha) of the mixing weight.
    mixup_p: float = 0.0
    mixup_alpha: float = 0.4
    threads: int = 2
    patience: int = 12
    #: Torch device for the networks ("cpu"; "cuda" works too, numerically slightly different).
    device: str = "cpu"
    #: Worker processes building the augmentation bank (results do not depend on it).
    workers: int = 1
    #: Network architecture.
    net: AudioNetConfig = field(default_factory=AudioNetConfig)


@dataclass
class Bank:
    """Cached features of augmented variants: ``mel[i][v]`` float16 ``(64, T)``; prosody ``(N, V, P)``."""

    mel: list[list[torch.Tensor]]
    prosody: npt.NDArray[np.float32]
    evidence: npt.NDArray[np.float32]


@dataclass
class EvalSet:
    """Features of evaluation clips (one version each)."""

    mel: list[torch.Tensor]
    prosody: npt.NDArray[np.float32]
    evidence: npt.NDArray[np.float32]


def _say(progress: Progress | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def targets_va(clips: Sequence[Clip]) -> npt.NDArray[np.float32]:
    """Valence/arousal targets: the label's circumplex point; strong intensity +0.15 arousal, calm -0.2."""
    out = np.zeros((len(clips), 2), np.float32)
    for i, c in enumerate(clips):
        v, a = LABEL_VALENCE_AROUSAL[c.label]
        if c.intensity == "strong":
            a += 0.15
        if c.source == "calm":
            a -= 0.2
            v += 0.1
        out[i] = (np.clip(v, -1, 1), np.clip(a, -1, 1))
    return out


def _features(waves: Sequence[npt.NDArray[np.float32]]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    from emotag.audiofeatures import features_from_batch, pad_batch

    order = np.argsort([w.shape[0] for w in waves], kind="stable")
    mel: list[Any] = [None] * len(waves)
    pros = np.zeros((len(waves), N_PROSODY), np.float32)
    ev = np.zeros((len(waves),), np.float32)
    for s in range(0, len(waves), 32):
        idx = order[s : s + 32]
        b, lens = pad_batch([waves[i] for i in idx])
        f = features_from_batch(b, lens)
        for j, i in enumerate(idx):
            t = int(f.mask[j].sum())
            mel[i] = f.mel[j, :, :t].half().clone()
        pros[idx] = f.prosody.numpy()
        ev[idx] = f.evidence.numpy()
    return mel, pros, ev


_POOL: list[Any] = []


def _bank_job(job: tuple[int, list[int], int, float]) -> tuple[int, list[int], list[Any], Any, Any]:
    """Augment clips ``idx`` of the global pool as variant ``v`` (one RNG per clip and variant)."""
    import torch

    from emotag.training.augment import augment

    torch.set_num_threads(1)
    v, idx, seed, strength = job
    aug = [augment(_POOL[i], np.random.default_rng([seed, v, i]), pool=_POOL, strength=strength) for i in idx]
    m, p, e = _features(aug)
    return v, idx, m, p, e


def build_bank(
    waves: Sequence[npt.NDArray[np.float32]],
    n_variants: int,
    seed: int,
    progress: Progress | None = None,
    workers: int = 1,
) -> Bank:
    """Augment every clip ``n_variants`` times (variant 0 light, the rest the full chain); cache features.

    Each (clip, variant) has its own seeded RNG, so the bank does not depend on ``workers``.
    """
    import torch

    n = len(waves)
    mel: list[list[Any]] = [[None] * n_variants for _ in range(n)]
    pros = np.zeros((n, n_variants, N_PROSODY), np.float32)
    ev = np.zeros((n, n_variants), np.float32)
    _POOL[:] = list(waves)
    step = 96
    jobs = [
        (v, list(range(s, min(n, s + step))), seed, 0.3 if v == 0 else 1.0)
        for v in range(n_variants)
        for s in range(0, n, step)
    ]
    t0 = time.time()
    threads = torch.get_num_threads()
    try:
        if workers > 1:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers) as pool:
                results = pool.imap_unordered(_bank_job, jobs)
                done = 0
                for v, idx, m, p, e in results:
                    for j, i in enumerate(idx):
                        mel[i][v] = m[j]
                    pros[idx, v] = p
                    ev[idx, v] = e
                    done += 1
                    if done % 15 == 0:
                        _say(
                            progress,
                            f"audio: augmentation bank {done}/{len(jobs)} ({time.time() - t0:.0f} s)",
                        )
        else:
            for done, job in enumerate(jobs, 1):
                v, idx, m, p, e = _bank_job(job)
                for j, i in enumerate(idx):
                    mel[i][v] = m[j]
                pros[idx, v] = p
                ev[idx, v] = e
                if done % 15 == 0:
                    _say(progress, f"audio: augmentation bank {done}/{len(jobs)} ({time.time() - t0:.0f} s)")
    finally:
        _POOL.clear()
        torch.set_num_threads(threads)
    return Bank(mel=mel, prosody=pros, evidence=ev)


def eval_set(waves: Sequence[npt.NDArray[np.float32]]) -> EvalSet:
    """Features of evaluation clips as they are."""
    m, p, e = _features(waves)
    return EvalSet(mel=m, prosody=p, evidence=e)


def _pad_mels(mels: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    t = max(int(m.shape[1]) for m in mels)
    out = torch.zeros((len(mels), mels[0].shape[0], t))
    mask = torch.zeros((len(mels), t), dtype=torch.bool)
    for i, m in enumerate(mels):
        out[i, :, : m.shape[1]] = m.float()
        mask[i, : m.shape[1]] = True
    return out, mask


def _spec_augment(
    mel: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig, g: torch.Generator
) -> torch.Tensor:
    import torch

    b, f, t = mel.shape
    mel = mel.clone()
    for i in range(b):
        ti = int(mask[i].sum())
        for _ in range(cfg.spec_time_masks):
            w = int(torch.randint(0, cfg.spec_time_width + 1, (1,), generator=g))
            if ti > w + 1:
                s = int(torch.randint(0, ti - w, (1,), generator=g))
                mel[i, :, s : s + w] = 0.0
        for _ in range(cfg.spec_freq_masks):
            w = int(torch.randint(0, cfg.spec_freq_width + 1, (1,), generator=g))
            s = int(torch.randint(0, f - w, (1,), generator=g))
            mel[i, s : s + w, :] = 0.0
    return mel


def _file_stats_for(
    rows: npt.NDArray[np.int64],
    speaker_rows: dict[str, npt.NDArray[np.int64]],
    speakers: Sequence[str],
    pros: npt.NDArray[np.float32],
    rng: np.random.Generator,
    p: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Per-row file statistics from a random subset (8-40 clips) of the same speaker's clips."""
    n = len(rows)
    fm = np.zeros((n, pros.shape[1]), np.float32)
    fs = np.ones((n, pros.shape[1]), np.float32)
    use = rng.random(n) < p
    for j, r in enumerate(rows):
        if not use[j]:
            continue
        pool = speaker_rows[speakers[r]]
        k = int(rng.integers(min(8, len(pool)), min(40, len(pool)) + 1))
        sub = rng.choice(pool, size=k, replace=False)
        fm[j] = pros[sub].mean(0)
        fs[j] = pros[sub].std(0)
    return fm, fs, use


def _prosody_batch(
    pros: npt.NDArray[np.float32],
    fm: npt.NDArray[np.float32] | None,
    fs: npt.NDArray[np.float32] | None,
    use: npt.NDArray[np.bool_] | None,
    pmean: torch.Tensor,
    pstd: torch.Tensor,
) -> torch.Tensor:
    """The network's voice-feature input; rows with ``use`` get their file statistics."""
    import torch

    from emotag.models.audio import prosody_input

    dev = pmean.device
    pt = torch.from_numpy(pros).to(dev)
    if fm is None or fs is None or use is None:
        return prosody_input(pt, pmean, pstd)
    with_f = prosody_input(pt, pmean, pstd, torch.from_numpy(fm).to(dev), torch.from_numpy(fs).to(dev))
    without = prosody_input(pt, pmean, pstd)
    u = torch.from_numpy(use).to(dev)[:, None]
    return torch.where(u, with_f, without)


def _forward_batch(
    net: torch.nn.Module,
    mel: torch.Tensor,
    mask: torch.Tensor,
    pros: npt.NDArray[np.float32],
    fm: npt.NDArray[np.float32] | None,
    fs: npt.NDArray[np.float32] | None,
    use: npt.NDArray[np.bool_] | None,
    pmean: torch.Tensor,
    pstd: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pin = _prosody_batch(pros, fm, fs, use, pmean, pstd)
    out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = net(
        mel.to(pmean.device), mask.to(pmean.device), pin
    )
    return out


def predict_logits(
    net: torch.nn.Module,
    es: EvalSet,
    rows: Sequence[int],
    speakers: Sequence[str],
    pmean: torch.Tensor,
    pstd: torch.Tensor,
    use_file_stats: bool = True,
) -> npt.NDArray[np.float32]:
    """Logits for evaluation rows; file statistics = all rows of the same speaker (as a whole media file)."""
    import torch

    net.eval()
    rows_a = np.asarray(rows)
    fm = fs = use = None
    if use_file_stats:
        fm = np.zeros((len(rows_a), es.prosody.shape[1]), np.float32)
        fs = np.ones_like(fm)
        by_spk: dict[str, list[int]] = {}
        for r in rows_a:
            by_spk.setdefault(speakers[r], []).append(int(r))
        for j, r in enumerate(rows_a):
            grp = by_spk[speakers[r]]
            fm[j] = es.prosody[grp].mean(0)
            fs[j] = es.prosody[grp].std(0)
        use = np.ones(len(rows_a), bool)
    order = np.argsort([int(es.mel[r].shape[1]) for r in rows_a], kind="stable")
    out = np.zeros((len(rows_a), N_CLASSES), np.float32)
    with torch.inference_mode():
        for s in range(0, len(rows_a), 64):
            idx = order[s : s + 64]
            mel, mask = _pad_mels([es.mel[rows_a[i]] for i in idx])
            lg, _, _ = _forward_batch(
                net,
                mel,
                mask,
                es.prosody[rows_a[idx]],
                None if fm is None else fm[idx],
                None if fs is None else fs[idx],
                None if use is None else use[idx],
                pmean,
                pstd,
            )
            out[idx] = lg.float().cpu().numpy()
    return out


def ensemble(nets: Sequence[torch.nn.Module]) -> torch.nn.Module:
    """One module whose outputs (logits, valence/arousal, embedding) are the mean of ``nets``' outputs."""
    import torch

    class Ensemble(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(nets)

        def forward(
            self, mel: torch.Tensor, mask: torch.Tensor, pros: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            outs = [m(mel, mask, pros) for m in self.members]
            logits, va, emb = (torch.stack([o[i] for o in outs]).mean(0) for i in range(3))
            return logits, va, emb

    return Ensemble().eval()


def softmax(z: npt.NDArray[np.float32], t: float = 1.0) -> npt.NDArray[np.float32]:
    z = z / t
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    out: npt.NDArray[np.float32] = (e / e.sum(1, keepdims=True)).astype(np.float32)
    return out


def fit_temperature(logits: npt.NDArray[np.float32], y: npt.NDArray[np.int64]) -> float:
    """Temperature minimising validation NLL (golden-section search on log T in [0.2, 10])."""

    def nll(log_t: float) -> float:
        p = softmax(logits, math.exp(log_t))
        return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

    a, b = math.log(0.2), math.log(10.0)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(60):
        if nll(c) < nll(d):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return float(math.exp((a + b) / 2))


def train_net(
    bank: Bank,
    clips: Sequence[Clip],
    train_rows: Sequence[int],
    val_set: EvalSet,
    val_rows: Sequence[int],
    pmean: npt.NDArray[np.float32],
    pstd: npt.NDArray[np.float32],
    cfg: TrainConfig,
    seed: int,
    progress: Progress | None = None,
    tag: str = "",
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train one network on ``train_rows`` of the bank, early-stopping on val UA; returns (net, info)."""
    import torch

    from emotag.models.audio import build_net

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    dev = torch.device(cfg.device)
    net = build_net(cfg.net).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    tr = np.asarray(train_rows)
    steps_per_epoch = math.ceil(len(tr) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    y_all = np.array([c.label_index for c in clips], np.int64)
    va_all = targets_va(clips)
    counts = np.bincount(y_all[tr], minlength=N_CLASSES).astype(np.float64)
    w = torch.tensor(counts.sum() / (N_CLASSES * np.maximum(counts, 1)), dtype=torch.float32, device=dev)
    ce = torch.nn.CrossEntropyLoss(weight=w, label_smoothing=cfg.label_smoothing)
    spk = [c.speaker for c in clips]
    speaker_rows: dict[str, Any] = {}
    for r in tr:
        speaker_rows.setdefault(spk[r], []).append(int(r))
    speaker_rows = {k: np.asarray(v) for k, v in speaker_rows.items()}
    pm_t, ps_t = torch.from_numpy(pmean).to(dev), torch.from_numpy(pstd).to(dev)
    y_val = y_all[np.asarray(val_rows)]
    best_ua, best_state, best_epoch, bad = -1.0, None, 0, 0
    nv = bank.prosody.shape[1]
    t0 = time.time()
    for epoch in range(cfg.epochs):
        net.train()
        variant = rng.integers(0, nv, size=len(tr))
        # Bucket by length: shuffle, then sort within chunks of 8 batches.
        perm = rng.permutation(len(tr))
        lens = np.array([int(bank.mel[tr[i]][variant[i]].shape[1]) for i in range(len(tr))])
        chunk = cfg.batch_size * 8
        batches = []
        for s in range(0, len(perm), chunk):
            part = perm[s : s + chunk]
            part = part[np.argsort(lens[part], kind="stable")]
            batches += [part[k : k + cfg.batch_size] for k in range(0, len(part), cfg.batch_size)]
        rng.shuffle(batches)
        # Variant prosody of this epoch, for file statistics drawn from the same speaker.
        epros = bank.prosody[np.arange(len(clips)), 0].copy()
        epros[tr] = bank.prosody[tr, variant]
        tot_loss = 0.0
        for bidx in batches:
            rows = tr[bidx]
            mel, mask = _pad_mels([bank.mel[r][v] for r, v in zip(rows, variant[bidx], strict=True)])
            mel = _spec_augment(mel, mask, cfg, g)
            fm, fs, use = _file_stats_for(rows, speaker_rows, spk, epros, rng, cfg.file_stats_p)
            pin = _prosody_batch(epros[rows], fm, fs, use, pm_t, ps_t)
            yt = torch.from_numpy(y_all[rows]).to(dev)
            vat = torch.from_numpy(va_all[rows]).to(dev)
            mel, mask = mel.to(dev), mask.to(dev)
            if cfg.mixup_p > 0 and rng.random() < cfg.mixup_p:
                # mixup (Zhang et al. 2018) inside a length bucket: spectrogram, voice features and targets
                lam = float(rng.beta(cfg.mixup_alpha, cfg.mixup_alpha))
                other = torch.from_numpy(rng.permutation(len(rows))).to(dev)
                mel = lam * mel + (1 - lam) * mel[other]
                mask = mask | mask[other]
                pin = lam * pin + (1 - lam) * pin[other]
                logits, va, _ = net(mel, mask, pin)
                loss = lam * ce(logits, yt) + (1 - lam) * ce(logits, yt[other])
                vat = lam * vat + (1 - lam) * vat[other]
            else:
                logits, va, _ = net(mel, mask, pin)
                loss = ce(logits, yt)
            loss = loss + cfg.va_weight * torch.nn.functional.mse_loss(va, vat)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss.detach()) * len(rows)
        vl = predict_logits(net, val_set, val_rows, spk, pm_t, ps_t)
        ua = metrics.unweighted_accuracy(y_val, vl.argmax(1), N_CLASSES)
        _say(
            progress,
            f"audio{tag}: epoch {epoch + 1}/{cfg.epochs} loss {tot_loss / len(tr):.3f} "
            f"val UA {ua:.3f} ({time.time() - t0:.0f} s)",
        )
        if ua > best_ua:
            best_ua, best_epoch, bad = ua, epoch + 1, 0
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    assert best_state is not None
    net = net.cpu()
    net.load_state_dict(best_state)
    net.eval()
    return net, {"best_val_ua": best_ua, "best_epoch": best_epoch, "seconds": time.time() - t0}


@dataclass
class Prepared:
    """Everything loaded once and shared by fold runs."""

    clips: list[Clip]
    bank: Bank
    clean: EvalSet
    pmean: npt.NDArray[np.float32]
    pstd: npt.NDArray[np.float32]
    folds: list[list[str]]


def prepare(
    data_dir: Path | None,
    *,
    seed: int = 0,
    audio_data: Path | None = None,
    cfg: TrainConfig | None = None,
    progress: Progress | None = None,
    k: int = 6,
) -> Prepared:
    """Read the clips, build the augmentation bank and the clean evaluation features."""
    import torch

    from emotag.training.audiodata import load_clip

    cfg = cfg or TrainConfig()
    torch.set_num_threads(cfg.threads)
    if audio_data is not None:
        clips = read_manifest(audio_data)
    else:
        if data_dir is None:
            from emotag.errors import DataError

            raise DataError(
                "no audio training data: pass --data (with ravdess/) or --audio-data MANIFEST.csv"
            )
        clips = read_ravdess(data_dir)
    _say(progress, f"audio: {len(clips)} clips from {len({c.speaker for c in clips})} speakers")
    waves = load_clips(clips, trim=True)
    bank = build_bank(waves, cfg.n_variants, seed, progress, workers=cfg.workers)
    clean = eval_set([load_clip(c) for c in clips])
    allp = bank.prosody.reshape(-1, bank.prosody.shape[-1])
    pmean = allp.mean(0).astype(np.float32)
    pstd = np.maximum(allp.std(0), 1e-3).astype(np.float32)
    n_speakers = len({c.speaker for c in clips})
    if n_speakers < 2:
        from emotag.errors import DataError

        raise DataError(
            f"audio training needs clips of at least 2 speakers (validation is by speaker), "
            f"got {n_speakers}; add a speaker column to the manifest"
        )
    folds = speaker_folds(clips, k=min(k, n_speakers), seed=seed)
    return select_features(Prepared(clips, bank, clean, pmean, pstd, folds), cfg.net.n_prosody)


def select_features(prep: Prepared, n_prosody: int) -> Prepared:
    """``prep`` reduced to the first ``n_prosody`` voice features (what a network of that width reads)."""
    n = n_prosody
    bank = Bank(mel=prep.bank.mel, prosody=prep.bank.prosody[..., :n], evidence=prep.bank.evidence)
    clean = EvalSet(mel=prep.clean.mel, prosody=prep.clean.prosody[:, :n], evidence=prep.clean.evidence)
    return Prepared(prep.clips, bank, clean, prep.pmean[:n], prep.pstd[:n], prep.folds)


def _fold_rows(prep: Prepared, test_fold: int) -> tuple[list[int], list[int], list[int]]:
    k = len(prep.folds)
    val_fold = (test_fold + 1) % k
    test_s = set(prep.folds[test_fold])
    val_s = set(prep.folds[val_fold])
    tr: list[int] = []
    va: list[int] = []
    te: list[int] = []
    for i, c in enumerate(prep.clips):
        (te if c.speaker in test_s else va if c.speaker in val_s else tr).append(i)
    return tr, va, te


def train_members(
    prep: Prepared,
    cfg: TrainConfig,
    train_rows: Sequence[int],
    val_rows: Sequence[int],
    seed: int,
    members: int,
    progress: Progress | None = None,
    tag: str = "",
) -> tuple[list[torch.nn.Module], list[dict[str, Any]]]:
    """``members`` networks on the same rows, seeded ``seed + 7919 * m``; returns (networks, their infos)."""
    nets, infos = [], []
    for m in range(members):
        net, info = train_net(
            prep.bank,
            prep.clips,
            train_rows,
            prep.clean,
            val_rows,
            prep.pmean,
            prep.pstd,
            cfg,
            seed + 7919 * m,
            progress,
            tag=tag + (f" member {m + 1}/{members}" if members > 1 else ""),
        )
        nets.append(net)
        infos.append(info)
    return nets, infos


def run_folds(
    prep: Prepared,
    cfg: TrainConfig,
    seed: int,
    progress: Progress | None = None,
    degraded: EvalSet | None = None,
    folds: Sequence[int] | None = None,
    members: int = 1,
) -> tuple[list[torch.nn.Module], list[float], dict[str, Any]]:
    """Train ``members`` networks per fold (averaged, as the shipped branch averages its members).

    Returns (one network or ensemble per fold, temperatures, report).
    """
    import torch

    spk = [c.speaker for c in prep.clips]
    y = np.array([c.label_index for c in prep.clips], np.int64)
    pm_t, ps_t = torch.from_numpy(prep.pmean), torch.from_numpy(prep.pstd)
    nets, temps, per_fold = [], [], []
    for f in folds if folds is not None else range(len(prep.folds)):
        tr, va, te = _fold_rows(prep, f)
        trained, infos = train_members(
            prep, cfg, tr, va, seed + 1000 * f, members, progress, tag=f" fold {f + 1}/{len(prep.folds)}"
        )
        net = trained[0] if members == 1 else ensemble(trained)
        info = infos[0] if members == 1 else {"member_info": infos}
        vl = predict_logits(net, prep.clean, va, spk, pm_t, ps_t)
        t = fit_temperature(vl, y[va])
        row: dict[str, Any] = {"fold": f, "test_speakers": prep.folds[f], "temperature": t, **info}
        if te:
            tl = predict_logits(net, prep.clean, te, spk, pm_t, ps_t)
            tl_nofile = predict_logits(net, prep.clean, te, spk, pm_t, ps_t, use_file_stats=False)
            row["test_ua"] = metrics.unweighted_accuracy(y[te], tl.argmax(1), N_CLASSES)
            row["test_ua_no_file_stats"] = metrics.unweighted_accuracy(y[te], tl_nofile.argmax(1), N_CLASSES)
            row["test_acc"] = float(np.mean(tl.argmax(1) == y[te]))
            row["test_ece_raw"] = metrics.expected_calibration_error(softmax(tl), y[te])
            row["test_ece_cal"] = metrics.expected_calibration_error(softmax(tl, t), y[te])
            if degraded is not None:
                dl = predict_logits(net, degraded, te, spk, pm_t, ps_t)
                row["degraded_ua"] = metrics.unweighted_accuracy(y[te], dl.argmax(1), N_CLASSES)
        _say(
            progress,
            f"audio: fold {f + 1} " + ", ".join(f"{k}={v:.3f}" for k, v in row.items() if type(v) is float),
        )
        per_fold.append(row)
        nets.append(net)
        temps.append(t)
    return nets, temps, {"folds": per_fold}


def _summary(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    vals = np.array([r[key] for r in rows if key in r], np.float64)
    if vals.size == 0:
        return {}
    return {
        "mean": float(vals.mean()),
        "std": float(vals.std()),
        "min": float(vals.min()),
        "max": float(vals.max()),
    }


def unseen_ensemble_logits(
    prep: Prepared, nets: Sequence[torch.nn.Module], net_folds: Sequence[int], es: EvalSet | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Per clip, the mean logits of the fold networks that never trained on its speaker.

    A network of fold ``f`` was tested on fold ``f`` and early-stopped on fold ``f+1``; it trained on the
    rest. This is the closest honest stand-in for the ensemble's own held-out logits, used to fit the
    ensemble's temperature (clips no network left out are skipped).
    """
    import torch

    es = es or prep.clean
    spk = [c.speaker for c in prep.clips]
    y = np.array([c.label_index for c in prep.clips], np.int64)
    pm_t, ps_t = torch.from_numpy(prep.pmean), torch.from_numpy(prep.pstd)
    tot = np.zeros((len(prep.clips), N_CLASSES), np.float32)
    cnt = np.zeros(len(prep.clips), np.float32)
    for f, net in zip(net_folds, nets, strict=True):
        _, va, te = _fold_rows(prep, f)
        rows = sorted(va + te)
        tot[rows] += predict_logits(net, es, rows, spk, pm_t, ps_t)
        cnt[rows] += 1
    keep = cnt > 0
    return (tot[keep] / cnt[keep, None]).astype(np.float32), y[keep]


def degraded_waves(
    clips: Sequence[Clip], seed: int, rows: Sequence[int] | None = None
) -> list[npt.NDArray[np.float32]]:
    """Every clip (or those in ``rows``) through :func:`~emotag.training.augment.degrade_real`, alternating
    mp3 and opus: the one degraded copy both audio branches' cross-validations score."""
    from emotag.training.audiodata import load_clip
    from emotag.training.augment import degrade_real

    rng = np.random.default_rng(seed + 77)
    waves = []
    for i, c in enumerate(clips):
        w = load_clip(c)
        if rows is None or i in rows:
            w = degrade_real(w, rng, codec="mp3" if i % 2 == 0 else "opus")
        waves.append(w)
    return waves


def degraded_set(prep: Prepared, seed: int, rows: Sequence[int] | None = None) -> EvalSet:
    """Evaluation features of every clip's degraded copy (:func:`degraded_waves`)."""
    return eval_set(degraded_waves(prep.clips, seed, rows))


def evaluate_audio_folds(
    data_dir: Path,
    *,
    seed: int = 0,
    audio_data: Path | None = None,
    cfg: TrainConfig | None = None,
    progress: Progress | None = None,
    prep: Prepared | None = None,
    with_degraded: bool = True,
    folds: Sequence[int] | None = None,
    members: int = 1,
) -> tuple[dict[str, Any], list[torch.nn.Module], list[float], Prepared]:
    """Speaker-independent k-fold figures (see the module docstring); also returns the fold networks.

    Args:
        folds: which folds to run (default all; fewer for quick experiments).
        with_degraded: also score every test fold on degraded copies (needs ffmpeg; a few minutes).
    """
    cfg = cfg or TrainConfig()
    prep = prep or prepare(data_dir, seed=seed, audio_data=audio_data, cfg=cfg, progress=progress)
    deg = None
    if with_degraded:
        _say(
            progress, "audio: building the degraded evaluation copy (mp3/opus, telephone band, reverb, noise)"
        )
        deg = degraded_set(prep, seed)
    nets, temps, rep = run_folds(prep, cfg, seed, progress, degraded=deg, folds=folds, members=members)
    rep["members"] = members
    rows = rep["folds"]
    rep["summary"] = {
        k: _summary(rows, k)
        for k in (
            "test_ua",
            "test_ua_no_file_stats",
            "test_acc",
            "test_ece_raw",
            "test_ece_cal",
            "degraded_ua",
        )
    }
    return rep, nets, temps, prep


def train_audio(
    data_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    audio_data: Path | None = None,
    progress: Progress | None = None,
    cfg: TrainConfig | None = None,
    members: int = SHIPPED_MEMBERS,
    with_folds: bool = False,
    prep: Prepared | None = None,
) -> dict[str, Any]:
    """Train the shipped audio branch into ``out_dir`` (``audio.safetensors`` + ``audio.json``).

    The speakers are cut into gender-balanced folds (:func:`~emotag.training.audiodata.speaker_folds`); the
    last fold's speakers are the validation speakers (early stopping, temperature, reported UA/ECE), the
    rest are training speakers. ``members`` networks (different seeds) are trained and their logits
    averaged. Returns the report (also stored in ``audio.json``).

    Args:
        data_dir: the shared data folder (with ``ravdess/``); ignored when ``audio_data`` is given.
        out_dir: model directory to write into.
        seed: seeds the split, the augmentation bank and the networks.
        audio_data: a manifest CSV (``audio,start,end,label``) to train on instead of RAVDESS.
        progress: called with one-line progress messages.
        cfg: hyper-parameters (default: the shipped ones).
        members: networks in the ensemble.
        with_folds: also run :func:`evaluate_audio_folds` (k more trainings) and store its report.
        prep: reuse an already built :func:`prepare` result (same data and seed).
    """
    import torch

    from emotag.models.audio import AudioBranch

    t0 = time.time()
    cfg = cfg or TrainConfig()
    prep = prep or prepare(data_dir, seed=seed, audio_data=audio_data, cfg=cfg, progress=progress)
    val_speakers = prep.folds[-1]
    vs = set(val_speakers)
    tr = [i for i, c in enumerate(prep.clips) if c.speaker not in vs]
    va = [i for i, c in enumerate(prep.clips) if c.speaker in vs]
    spk = [c.speaker for c in prep.clips]
    y = np.array([c.label_index for c in prep.clips], np.int64)
    pm_t, ps_t = torch.from_numpy(prep.pmean), torch.from_numpy(prep.pstd)
    nets, infos = train_members(prep, cfg, tr, va, seed, members, progress)
    vl = np.mean([predict_logits(n, prep.clean, va, spk, pm_t, ps_t) for n in nets], axis=0)
    vl_nf = np.mean(
        [predict_logits(n, prep.clean, va, spk, pm_t, ps_t, use_file_stats=False) for n in nets], axis=0
    )
    temperature = fit_temperature(vl, y[va])
    rep: dict[str, Any] = {
        "train_speakers": sorted({spk[i] for i in tr}),
        "validation_speakers": list(val_speakers),
        "members": infos,
        "temperature": temperature,
        "val_ua": metrics.unweighted_accuracy(y[va], vl.argmax(1), N_CLASSES),
        "val_ua_no_file_stats": metrics.unweighted_accuracy(y[va], vl_nf.argmax(1), N_CLASSES),
        "val_acc": float(np.mean(vl.argmax(1) == y[va])),
        "val_ece_raw": metrics.expected_calibration_error(softmax(vl), y[va]),
        "val_ece_cal": metrics.expected_calibration_error(softmax(vl, temperature), y[va]),
        "config": {k: v for k, v in cfg.__dict__.items() if k not in ("net", "device", "workers")},
    }
    if with_folds:
        cv, _, _, _ = evaluate_audio_folds(
            data_dir, seed=seed, cfg=cfg, progress=progress, prep=prep, members=members
        )
        rep["cv"] = {"summary": cv["summary"], "folds": cv["folds"]}
    rep["train_seconds"] = time.time() - t0
    rep["data"] = "user manifest" if audio_data is not None else "RAVDESS (CC BY-NC-SA 4.0), 24 actors"
    rep["seed"] = seed
    branch = AudioBranch(nets, cfg.net, prep.pmean, prep.pstd, temperature=temperature)
    branch.save(out_dir, extra={"report": rep})
    _say(
        progress,
        f"audio: val UA {rep['val_ua']:.3f}, ECE {rep['val_ece_raw']:.3f} -> {rep['val_ece_cal']:.3f}; "
        f"wrote {out_dir / 'audio.safetensors'} ({rep['train_seconds']:.0f} s)",
    )
    return rep
