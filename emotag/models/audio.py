"""The audio branch: a small CNN over per-utterance normalised log-mel plus a prosody vector.

Design, and why:

* Input features come from :mod:`emotag.audiofeatures` (log-mel z-scored per utterance, 16 prosody
  statistics plus a 16-band spectral profile, a speech-evidence score). The network is deliberately small
  (about 115 k parameters, 0.45 MB of float32 weights per network): RAVDESS has 24 actors, and a big
  network learns the actors and the two sentences.
  Measured CPU cost per 5 s cue: about 1 ms STFT + log-mel, 1.5 ms prosody, 1.6 ms network (one thread).
* CNN: a strided 3x3 conv then two conv blocks with 2x2 max-pooling (80 ms frames at the top), a temporal
  conv, then masked attention pooling plus masked standard-deviation pooling, so any cue length works and
  padding never leaks into the result. Cues longer than :data:`MAX_CHUNK_S` are cut into equal chunks
  whose logits and embeddings are averaged.
* Prosody (and the profile) is z-scored with training-set statistics and, when the caller passes
  ``file_stats`` (their mean/std over all cues of the same media file, see :meth:`AudioBranch.file_stats`),
  also relative to the file: that is the only speaker normaliser available without speaker ids. The network
  sees both vectors and a flag saying whether file statistics were given; training draws file statistics
  from random subsets of the same actor's clips 70 % of the time, so both modes are in-distribution.
* Heads: 7 logits (temperature-scaled, the temperature fitted on validation actors) and valence/arousal
  (tanh). Several networks can be stored in one file (``m0.``, ``m1.``...); their logits and embeddings
  are averaged.
* A user can swap in any Hugging Face audio-classification model (:class:`HFAudioBranch`), whose labels are
  mapped onto ours by :data:`LABEL_SYNONYMS`.

Weights are safetensors (never unpickled); the architecture, temperature and training report live in
``audio.json`` next to the model's ``config.json`` (the audio branch owns both files).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag import atomicfile
from emotag.audiofeatures import N_MELS, N_PROSODY, N_PROSODY_CORE, SAMPLE_RATE
from emotag.errors import MissingDependencyError, ModelError, UnknownModelError
from emotag.models.branches import BranchOutput
from emotag.timeline import LABEL_VALENCE_AROUSAL, LABELS

if TYPE_CHECKING:
    import numpy.typing as npt
    import torch

#: Cues longer than this are cut into equal chunks of at most this length (seconds).
MAX_CHUNK_S = 8.0
#: Inference batch size (cues of similar length are batched together).
BATCH_SIZE = 32
#: Minimum number of cues with speech for file statistics to be used.
MIN_FILE_CUES = 5
#: How many cues the file's statistics count as when a named speaker's own are shrunk towards them (see
#: :func:`shrink_stats`).
SPEAKER_PRIOR_CUES = 5
#: File name of the audio branch's config next to ``config.json``.
CONFIG_NAME = "audio.json"
#: ``--audio-model`` value selecting the model directory's Whisper-encoder branch.
WHISPER_SPEC = "whisper"
#: ``--audio-model`` value selecting the model directory's CNN branch (this module's :class:`AudioBranch`).
CNN_SPEC = "cnn"
WEIGHTS_NAME = "audio.safetensors"

#: Label names of other audio-emotion models mapped onto emotag's labels (lower-cased).
LABEL_SYNONYMS: Mapping[str, str] = {
    "hap": "joy",
    "happy": "joy",
    "happiness": "joy",
    "joy": "joy",
    "joyful": "joy",
    "exc": "joy",
    "ang": "anger",
    "angry": "anger",
    "anger": "anger",
    "mad": "anger",
    "sad": "sadness",
    "sadness": "sadness",
    "fea": "fear",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "sur": "surprise",
    "surprise": "surprise",
    "surprised": "surprise",
    "dis": "disgust",
    "disgust": "disgust",
    "disgusted": "disgust",
    "neu": "neutral",
    "neutral": "neutral",
    "calm": "neutral",
}


def map_label(name: str) -> str | None:
    """Map a foreign label name onto :data:`~emotag.timeline.LABELS` (``None`` if it has no twin)."""
    return LABEL_SYNONYMS.get(name.strip().lower())


@dataclass(frozen=True, slots=True)
class ProsodyStats:
    """Prosody mean and standard deviation over the cues of one media file (see ``file_stats``)."""

    mean: npt.NDArray[np.float32]
    std: npt.NDArray[np.float32]
    count: int


@dataclass(frozen=True, slots=True)
class VoiceAnalysis:
    """Per-waveform prosody ``(N, P)``, speech evidence ``(N,)`` and length in samples (see ``analyse``)."""

    prosody: npt.NDArray[np.float32]
    evidence: npt.NDArray[np.float32]
    lengths: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class AudioNetConfig:
    """Architecture of one :class:`AudioNet` (stored in ``audio.json``)."""

    channels: tuple[int, int, int] = (16, 32, 48)
    hidden: int = 128
    prosody_hidden: int = 32
    embedding: int = 64
    dropout: float = 0.3
    #: How many entries of the voice feature vector the network reads (16 = prosody only, as models
    #: trained before the spectral profile; :data:`~emotag.audiofeatures.N_PROSODY` = prosody + profile).
    n_prosody: int = N_PROSODY

    def to_json(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "hidden": self.hidden,
            "prosody_hidden": self.prosody_hidden,
            "embedding": self.embedding,
            "dropout": self.dropout,
            "n_prosody": self.n_prosody,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AudioNetConfig:
        ch = tuple(int(c) for c in d.get("channels", (16, 32, 48)))
        if len(ch) != 3:
            raise ModelError(f"audio config: 'channels' needs 3 entries, got {ch}")
        return cls(
            channels=(ch[0], ch[1], ch[2]),
            hidden=int(d.get("hidden", 128)),
            prosody_hidden=int(d.get("prosody_hidden", 32)),
            embedding=int(d.get("embedding", 64)),
            dropout=float(d.get("dropout", 0.3)),
            n_prosody=_n_prosody(d.get("n_prosody", N_PROSODY_CORE)),
        )


def _n_prosody(value: Any) -> int:
    n = int(value)
    if not 1 <= n <= N_PROSODY:
        raise ModelError(f"audio config: 'n_prosody' must be 1..{N_PROSODY}, got {n}")
    return n


def build_net(cfg: AudioNetConfig) -> torch.nn.Module:
    """A fresh, randomly initialised :class:`AudioNet` (defined inside so torch is imported lazily)."""
    import torch

    nn = torch.nn

    class AudioNet(nn.Module):
        """log-mel ``(B, 64, T)`` + mask + prosody ``(B, 2P+1)`` -> (logits, valence/arousal, embedding)."""

        def __init__(self) -> None:
            super().__init__()
            c1, c2, c3 = cfg.channels
            self.conv = nn.Sequential(
                nn.Conv2d(1, c1, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Conv2d(c1, c2, 3, padding=1, bias=False),
                nn.BatchNorm2d(c2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Conv2d(c2, c3, 3, padding=1, bias=False),
                nn.BatchNorm2d(c3),
                nn.ReLU(inplace=True),
                nn.MaxPool2d((2, 1)),
            )
            freq_out = N_MELS // 16
            self.temporal = nn.Sequential(
                nn.Conv1d(c3 * freq_out, cfg.hidden, 3, padding=1, bias=False),
                nn.BatchNorm1d(cfg.hidden),
                nn.ReLU(inplace=True),
            )
            self.att = nn.Conv1d(cfg.hidden, 1, 1)
            self.pros = nn.Sequential(
                nn.Linear(2 * cfg.n_prosody + 1, cfg.prosody_hidden), nn.ReLU(inplace=True)
            )
            self.emb = nn.Sequential(
                nn.Dropout(cfg.dropout),
                nn.Linear(2 * cfg.hidden + cfg.prosody_hidden, cfg.embedding),
                nn.ReLU(inplace=True),
            )
            self.drop = nn.Dropout(cfg.dropout)
            self.cls = nn.Linear(cfg.embedding, len(LABELS))
            self.va = nn.Linear(cfg.embedding, 2)

        def forward(
            self, mel: torch.Tensor, mask: torch.Tensor, pros: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x = self.conv(mel[:, None])  # (B, C, F', T')
            b, c, f, t = x.shape
            x = self.temporal(x.reshape(b, c * f, t))  # (B, H, T')
            # Frame t' of the top covers input frames [8t', 8t' + 8).
            m = mask[:, ::8][:, :t]
            if m.shape[1] < t:
                m = torch.nn.functional.pad(m, (0, t - m.shape[1]))
            m = m.clone()
            m[:, 0] = True
            a = self.att(x)[:, 0].masked_fill(~m, -1e4).softmax(-1)  # (B, T')
            mean = (x * a[:, None]).sum(-1)
            mf = m.to(x.dtype)[:, None]
            cnt = mf.sum(-1).clamp_min(1.0)
            mu = (x * mf).sum(-1) / cnt
            sd = (((x - mu[..., None]).square() * mf).sum(-1) / cnt + 1e-5).sqrt()
            h = torch.cat([mean, sd, self.pros(pros)], dim=-1)
            e = self.emb(h)
            hd = self.drop(e)
            return self.cls(hd), torch.tanh(self.va(hd)), e

    net: torch.nn.Module = AudioNet()
    return net


def prosody_input(
    pros: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    file_mean: torch.Tensor | None = None,
    file_std: torch.Tensor | None = None,
) -> torch.Tensor:
    """The network's prosody input: ``[global z, file-relative z (or 0), has-file flag]``, clipped to ±5.

    Args:
        pros: ``(B, P)`` raw prosody.
        mean, std: ``(P,)`` training-set statistics.
        file_mean, file_std: ``(P,)`` or ``(B, P)`` per-file statistics, or ``None``.
    """
    import torch

    g = ((pros - mean) / std).clamp(-5.0, 5.0)
    if file_mean is None or file_std is None:
        rel = torch.zeros_like(g)
        flag = torch.zeros_like(g[:, :1])
    else:
        fs = torch.maximum(file_std, 0.3 * std)
        rel = ((pros - file_mean) / fs).clamp(-5.0, 5.0)
        flag = torch.ones_like(g[:, :1])
    out: torch.Tensor = torch.cat([g, rel, flag], dim=-1)
    return out


def speech_stats(analysis: VoiceAnalysis) -> ProsodyStats | None:
    """Mean/std of the analysed vectors over cues with speech evidence ≥ 0.5 (``None`` under
    :data:`MIN_FILE_CUES` such cues): the per-file statistics every built-in audio branch normalises with."""
    keep = analysis.prosody[analysis.evidence >= 0.5]
    if keep.shape[0] < MIN_FILE_CUES:
        return None
    return ProsodyStats(
        mean=keep.mean(0).astype(np.float32), std=keep.std(0).astype(np.float32), count=int(keep.shape[0])
    )


def shrink_stats(own: ProsodyStats, pooled: ProsodyStats, prior: float = SPEAKER_PRIOR_CUES) -> ProsodyStats:
    """One speaker's statistics pulled towards the whole file's: weight ``n / (n + prior)`` on the speaker's
    own ``n`` cues, the rest on the file's (means and variances blended alike).

    Why: a speaker's own statistics beat the file's once the file mixes voices, but a few cues give noisy
    ones. Measured out of fold (``python bench/speaker_norm.py --folds DIR``: the 6 cross-validation folds'
    heads of an ``emotag train`` run, each on its held-out RAVDESS actors, the 3 eval actors left out; a
    speaker of ``k`` cues beside a whole speaker of the other gender in one file), unweighted accuracy on the
    small speaker's cues against the file's / its own / these shrunk statistics (``prior`` 5): 5 cues
    0.740 / 0.746 / 0.789, 8 cues 0.749 / 0.789 / 0.794, 12 cues 0.761 / 0.810 / 0.812, 30 cues 0.780 /
    0.826 / 0.824 (each clip alone: 0.755). ``prior`` 10 and 20 were lower at every size up to 30.
    """
    w = own.count / (own.count + max(0.0, float(prior)))
    mean = w * own.mean + (1.0 - w) * pooled.mean
    var = w * np.square(own.std) + (1.0 - w) * np.square(pooled.std)
    return ProsodyStats(mean=mean.astype(np.float32), std=np.sqrt(var).astype(np.float32), count=own.count)


def _chunks(w: npt.NDArray[np.float32], max_len: int) -> list[npt.NDArray[np.float32]]:
    if w.shape[0] <= max_len:
        return [w]
    n = math.ceil(w.shape[0] / max_len)
    size = math.ceil(w.shape[0] / n)
    return [w[i * size : (i + 1) * size] for i in range(n)]


def _va_from_probs(probs: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    va = np.array([LABEL_VALENCE_AROUSAL[lab] for lab in LABELS], dtype=np.float32)
    out = probs @ va
    return out[:, 0].astype(np.float32), out[:, 1].astype(np.float32)


class AudioBranch:
    """The built-in audio branch (an ensemble of one or more :class:`AudioNet` s).

    Args:
        nets: trained networks in eval mode (their logits are averaged).
        config: the architecture they share.
        prosody_mean, prosody_std: ``(P,)`` training-set prosody statistics.
        temperature: logit temperature fitted on validation actors.
        name: identifier reported to fusion.
    """

    def __init__(
        self,
        nets: Sequence[torch.nn.Module],
        config: AudioNetConfig,
        prosody_mean: npt.NDArray[np.float32],
        prosody_std: npt.NDArray[np.float32],
        temperature: float = 1.0,
        name: str = "emotag-audio-cnn",
    ) -> None:
        if not nets:
            raise ModelError("an audio branch needs at least one network")
        self.nets = list(nets)
        for n in self.nets:
            n.eval()
        self.config = config
        self.prosody_mean = np.asarray(prosody_mean, dtype=np.float32)
        self.prosody_std = np.maximum(np.asarray(prosody_std, dtype=np.float32), 1e-3)
        if self.prosody_mean.shape != (config.n_prosody,) or self.prosody_std.shape != (config.n_prosody,):
            raise ModelError(
                f"audio branch: prosody statistics have shape {self.prosody_mean.shape}, the network reads "
                f"{config.n_prosody} features; retrain with `emotag train`"
            )
        self.temperature = float(temperature)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding

    # ----------------------------------------------------------------- loading / saving
    @classmethod
    def from_dir(cls, model_dir: Path) -> AudioBranch:
        """Load ``audio.json`` + ``audio.safetensors`` from a model directory.

        Raises:
            ModelError: the files are missing or do not match the architecture.
        """
        from safetensors.torch import load_file

        cfg_path = model_dir / CONFIG_NAME
        w_path = model_dir / WEIGHTS_NAME
        if not cfg_path.is_file() or not w_path.is_file():
            raise ModelError(
                f"{model_dir}: audio branch files {CONFIG_NAME} / {WEIGHTS_NAME} missing; "
                "retrain with `emotag train` or pass --audio-model"
            )
        try:
            meta = json.loads(cfg_path.read_text(encoding="utf-8"))
            state = load_file(str(w_path))
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{w_path}: unreadable audio branch ({exc}); retrain with `emotag train`"
            ) from exc
        cfg = AudioNetConfig.from_json(meta.get("net", {}))
        n_models = int(meta.get("n_models", 1))
        nets = []
        for i in range(n_models):
            net = build_net(cfg)
            prefix = f"m{i}."
            sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            try:
                net.load_state_dict(sub, strict=True)
            except RuntimeError as exc:
                raise ModelError(f"{w_path}: weights do not fit the audio architecture ({exc})") from exc
            nets.append(net)
        if "prosody_mean" not in state or "prosody_std" not in state:
            raise ModelError(f"{w_path}: prosody statistics missing; retrain with `emotag train`")
        return cls(
            nets,
            cfg,
            state["prosody_mean"].numpy(),
            state["prosody_std"].numpy(),
            temperature=float(meta.get("temperature", 1.0)),
            name=str(meta.get("name", "emotag-audio-cnn")),
        )

    def save(self, model_dir: Path, extra: Mapping[str, Any] | None = None) -> None:
        """Write ``audio.safetensors`` and ``audio.json`` atomically into ``model_dir``."""
        import torch
        from safetensors.torch import save_file

        model_dir.mkdir(parents=True, exist_ok=True)
        state: dict[str, torch.Tensor] = {}
        for i, net in enumerate(self.nets):
            for k, v in net.state_dict().items():
                state[f"m{i}.{k}"] = v.detach().clone().contiguous()
        state["prosody_mean"] = torch.from_numpy(self.prosody_mean.copy())
        state["prosody_std"] = torch.from_numpy(self.prosody_std.copy())
        with atomicfile.replacing(model_dir / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "kind": "emotag-audio"})
        meta: dict[str, Any] = {
            "name": self._name,
            "kind": "cnn-logmel-prosody",
            "sample_rate": SAMPLE_RATE,
            "n_models": len(self.nets),
            "net": self.config.to_json(),
            "temperature": self.temperature,
            "labels": list(LABELS),
            "weights": WEIGHTS_NAME,
        }
        if extra:
            meta.update(extra)
        atomicfile.write_json(model_dir / CONFIG_NAME, meta)

    # ----------------------------------------------------------------- inference
    def analyse(self, waveforms: Sequence[npt.NDArray[np.float32]]) -> VoiceAnalysis:
        """Prosody and speech evidence of each waveform, in input order (long ones: their first 32 s).

        The pass :meth:`file_stats` needs; hand it to :meth:`infer` as ``analysis`` for the same
        waveforms and their prosody is not computed a second time.
        """
        import torch

        from emotag.audiofeatures import pad_batch, prosody_and_evidence

        n = len(waveforms)
        pros = np.zeros((n, self.config.n_prosody), np.float32)
        ev = np.zeros((n,), np.float32)
        max_len = int(MAX_CHUNK_S * SAMPLE_RATE)
        waves = [np.asarray(w, dtype=np.float32).reshape(-1)[: 4 * max_len] for w in waveforms]
        order = np.argsort([w.shape[0] for w in waves], kind="stable")
        with torch.inference_mode():
            for s in range(0, n, BATCH_SIZE):
                idx = order[s : s + BATCH_SIZE]
                b, lens = pad_batch([waves[i] for i in idx])
                p, e = prosody_and_evidence(b, lens)
                pros[idx] = p[:, : self.config.n_prosody].numpy()
                ev[idx] = e.numpy()
        lengths = np.array([np.size(w) for w in waveforms], np.int64)
        return VoiceAnalysis(prosody=pros, evidence=ev, lengths=lengths)

    def stats_from(self, analysis: VoiceAnalysis) -> ProsodyStats | None:
        """:meth:`file_stats` from an :meth:`analyse` result."""
        return speech_stats(analysis)

    def file_stats(self, waveforms: Sequence[npt.NDArray[np.float32]]) -> ProsodyStats | None:
        """Prosody statistics over all cues of one media file (only cues with speech evidence ≥ 0.5).

        Returns ``None`` when fewer than :data:`MIN_FILE_CUES` cues carry speech. Pass the result to
        :meth:`infer` for every batch of the same file.
        """
        return self.stats_from(self.analyse(waveforms))

    def infer(
        self,
        waveforms: Sequence[npt.NDArray[np.float32]],
        file_stats: ProsodyStats | None = None,
        analysis: VoiceAnalysis | None = None,
    ) -> BranchOutput:
        """Score 16 kHz mono waveforms.

        Args:
            waveforms: one float32 waveform per cue (any length; empty gives evidence 0).
            file_stats: :meth:`file_stats` of the whole media file, for per-file prosody normalisation.
            analysis: :meth:`analyse` of exactly these waveforms, if already computed: reused for every
                waveform that fits in one chunk instead of computing its prosody again.

        Returns:
            Calibrated probabilities, valence/arousal, embeddings and speech evidence per waveform.
        """
        import torch

        from emotag.audiofeatures import features_from_batch, pad_batch, prosody_and_evidence

        n = len(waveforms)
        emb_dim = self.embedding_dim
        if n == 0:
            z = np.zeros((0,), np.float32)
            return BranchOutput(
                np.zeros((0, len(LABELS)), np.float32), z, z, np.zeros((0, emb_dim), np.float32), z
            )
        max_len = int(MAX_CHUNK_S * SAMPLE_RATE)
        if analysis is not None and analysis.prosody.shape[0] != n:
            raise ModelError(f"audio branch: analysis of {analysis.prosody.shape[0]} waveforms for {n}")
        pieces: list[npt.NDArray[np.float32]] = []
        owner: list[int] = []
        known: list[int] = []  # row of `analysis` for a whole-waveform piece, else -1
        for i, w in enumerate(waveforms):
            arr = np.asarray(w, dtype=np.float32).reshape(-1)
            parts = _chunks(arr, max_len)
            whole = analysis is not None and len(parts) == 1 and int(analysis.lengths[i]) == arr.size
            for c in parts:
                pieces.append(c)
                owner.append(i)
                known.append(i if whole else -1)
        order = np.argsort([p.shape[0] for p in pieces], kind="stable")
        m = len(pieces)
        logits = np.zeros((m, len(LABELS)), np.float32)
        va = np.zeros((m, 2), np.float32)
        emb = np.zeros((m, emb_dim), np.float32)
        ev = np.zeros((m,), np.float32)
        mean_t = torch.from_numpy(self.prosody_mean)
        std_t = torch.from_numpy(self.prosody_std)
        fm = fs = None
        if file_stats is not None:
            fm = torch.from_numpy(np.asarray(file_stats.mean, np.float32))
            fs = torch.from_numpy(np.asarray(file_stats.std, np.float32))
        with torch.inference_mode():
            for s in range(0, m, BATCH_SIZE):
                idx = order[s : s + BATCH_SIZE]
                b, lens = pad_batch([pieces[i] for i in idx])
                if analysis is None:
                    f = features_from_batch(b, lens)
                else:  # prosody from the analysis; computed here only for chunks of long waveforms
                    f = features_from_batch(b, lens, with_prosody=False)
                    pros = np.zeros((len(idx), self.config.n_prosody), np.float32)
                    evid = np.zeros((len(idx),), np.float32)
                    rows = np.array([known[i] for i in idx])
                    have = rows >= 0
                    pros[have] = analysis.prosody[rows[have]]
                    evid[have] = analysis.evidence[rows[have]]
                    if not have.all():
                        miss = np.flatnonzero(~have)
                        bm, lm = pad_batch([pieces[idx[j]] for j in miss])
                        pm, em = prosody_and_evidence(bm, lm)
                        pros[miss] = pm[:, : self.config.n_prosody].numpy()
                        evid[miss] = em.numpy()
                    f = replace(f, prosody=torch.from_numpy(pros), evidence=torch.from_numpy(evid))
                pin = prosody_input(f.prosody[:, : self.config.n_prosody], mean_t, std_t, fm, fs)
                lg = torch.zeros((len(idx), len(LABELS)))
                v = torch.zeros((len(idx), 2))
                e = torch.zeros((len(idx), emb_dim))
                for net in self.nets:
                    a, bb, c = net(f.mel, f.mask, pin)
                    lg += a
                    v += bb
                    e += c
                k = float(len(self.nets))
                logits[idx] = (lg / k).numpy()
                va[idx] = (v / k).numpy()
                emb[idx] = (e / k).numpy()
                ev[idx] = f.evidence.numpy()
        # Average chunks back into cues (weights = chunk lengths).
        own = np.asarray(owner)
        wts = np.array([p.shape[0] for p in pieces], np.float32)
        out_logits = np.zeros((n, len(LABELS)), np.float32)
        out_va = np.zeros((n, 2), np.float32)
        out_emb = np.zeros((n, emb_dim), np.float32)
        out_ev = np.zeros((n,), np.float32)
        tot = np.zeros((n,), np.float32)
        np.add.at(out_logits, own, logits * wts[:, None])
        np.add.at(out_va, own, va * wts[:, None])
        np.add.at(out_emb, own, emb * wts[:, None])
        np.add.at(out_ev, own, ev * wts)
        np.add.at(tot, own, wts)
        tot = np.maximum(tot, 1.0)
        out_logits /= tot[:, None]
        out_va /= tot[:, None]
        out_emb /= tot[:, None]
        out_ev /= tot
        z = out_logits / self.temperature
        z = z - z.max(-1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(-1, keepdims=True)
        return BranchOutput(
            probs=probs.astype(np.float32),
            valence=np.clip(out_va[:, 0], -1, 1).astype(np.float32),
            arousal=np.clip(out_va[:, 1], -1, 1).astype(np.float32),
            embedding=out_emb.astype(np.float32),
            evidence=np.clip(out_ev, 0, 1).astype(np.float32),
        )


class HFAudioBranch:
    """Any Hugging Face audio-classification model as an audio branch.

    Labels are mapped with :data:`LABEL_SYNONYMS`; labels without a twin are dropped and the rest
    renormalised (a label of ours the model lacks gets probability 0). The embedding is the mean-pooled last
    hidden state; valence/arousal come from the probabilities via the circumplex; evidence from
    :func:`emotag.audiofeatures.speech_evidence`.
    """

    def __init__(self, model: Any, feature_extractor: Any, name: str) -> None:
        self.model = model.eval()
        self.fe = feature_extractor
        self._name = name
        id2label: Mapping[Any, str] = getattr(model.config, "id2label", {}) or {}
        self.index: list[tuple[int, int]] = []
        for k, lab in id2label.items():
            ours = map_label(str(lab))
            if ours is not None:
                self.index.append((int(k), LABELS.index(ours)))
        if not self.index:
            raise ModelError(
                f"{name}: none of the model's labels ({', '.join(map(str, id2label.values()))}) map onto "
                f"{', '.join(LABELS)}; choose an emotion-recognition model"
            )
        self._dim = int(getattr(model.config, "hidden_size", 0) or 0)

    @property
    def name(self) -> str:
        return self._name

    @property
    def embedding_dim(self) -> int:
        return self._dim

    def infer(self, waveforms: Sequence[npt.NDArray[np.float32]], file_stats: Any = None) -> BranchOutput:
        import torch

        from emotag.audiofeatures import speech_evidence

        n = len(waveforms)
        probs = np.zeros((n, len(LABELS)), np.float32)
        emb = np.zeros((n, self._dim), np.float32)
        waves = [np.asarray(w, np.float32).reshape(-1) for w in waveforms]
        waves = [w if w.size >= 400 else np.pad(w, (0, 400 - w.size)) for w in waves]
        with torch.inference_mode():
            for s in range(0, n, 8):
                chunk = waves[s : s + 8]
                inputs = self.fe(chunk, sampling_rate=SAMPLE_RATE, return_tensors="pt", padding=True)
                out = self.model(**inputs, output_hidden_states=True)
                p = out.logits.softmax(-1).numpy()
                for src, dst in self.index:
                    probs[s : s + len(chunk), dst] += p[:, src]
                if out.hidden_states:
                    emb[s : s + len(chunk)] = out.hidden_states[-1].mean(1).numpy()
        tot = probs.sum(-1, keepdims=True)
        probs = np.where(tot > 0, probs / np.maximum(tot, 1e-12), 1.0 / len(LABELS)).astype(np.float32)
        val, aro = _va_from_probs(probs)
        return BranchOutput(probs, val, aro, emb, speech_evidence(waves) if n else np.zeros((0,), np.float32))


def load_hf_audio_branch(spec: str) -> HFAudioBranch:
    """Load a Hugging Face audio-classification model (hub id or local directory).

    Raises:
        UnknownModelError: it cannot be found or downloaded.
        ModelError: it is not an audio classifier or its labels do not map onto ours.
    """
    try:
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
    except ImportError as exc:  # pragma: no cover - transformers is a core dependency
        raise MissingDependencyError("transformers", "--audio-model", "pip install transformers") from exc
    try:
        fe = AutoFeatureExtractor.from_pretrained(spec)  # type: ignore[no-untyped-call]
        model = AutoModelForAudioClassification.from_pretrained(spec)
    except OSError as exc:
        raise UnknownModelError(
            spec,
            hint="pass a Hugging Face audio-classification model id or a save_pretrained directory",
        ) from exc
    except ValueError as exc:
        raise ModelError(f"{spec}: not an audio-classification model ({exc})") from exc
    return HFAudioBranch(model, fe, name=f"hf:{spec}")


def audio_spec_in(config: Mapping[str, Any]) -> str:
    """The built-in audio branch a model directory's fusion was trained on, from its parsed
    ``config.json``: ``fusion.audio_branch`` (``"whisper"`` or ``"cnn"``); directories from before that
    choice existed (no such key) used the CNN."""
    fusion = config.get("fusion")
    spec = fusion.get("audio_branch", CNN_SPEC) if isinstance(fusion, Mapping) else CNN_SPEC
    return spec if spec in (CNN_SPEC, WHISPER_SPEC) else CNN_SPEC


def branch_config_name(spec: str) -> str:
    """The config file (beside ``config.json``) of a built-in audio branch: ``whisper_audio.json`` for
    :data:`WHISPER_SPEC`, else the CNN's ``audio.json``."""
    from emotag.models import whisper_audio

    return whisper_audio.CONFIG_NAME if spec == WHISPER_SPEC else CONFIG_NAME


def default_audio_spec(model_dir: Path) -> str:
    """:func:`audio_spec_in` of ``model_dir``'s ``config.json`` (the CNN when it is unreadable)."""
    try:
        cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return CNN_SPEC
    return audio_spec_in(cfg) if isinstance(cfg, Mapping) else CNN_SPEC


def load_audio_branch(spec: str | None, model_dir: Path) -> AudioBranch | HFAudioBranch:
    """The audio branch: one of the model directory's own, or a Hugging Face model.

    Args:
        spec: ``None`` for the directory's default (:func:`default_audio_spec`); ``"cnn"`` for its CNN
            branch; ``"whisper"`` for its Whisper-encoder branch (:mod:`emotag.models.whisper_audio`);
            otherwise a Hugging Face model id or a directory holding an audio-classification model.
        model_dir: the emotag model directory.
    """
    if spec is None:
        spec = default_audio_spec(model_dir)
    if spec == CNN_SPEC:
        return AudioBranch.from_dir(model_dir)
    if spec == WHISPER_SPEC:
        from emotag.models.whisper_audio import WhisperAudioBranch

        return WhisperAudioBranch.from_dir(model_dir)  # type: ignore[return-value]
    return load_hf_audio_branch(spec)
