"""The multimodal model: a text branch and an audio branch, fused per cue.

:class:`MultimodalModel` implements :class:`~emotag.models.base.EmotionModel`. For each batch it sends the
segments that have text (with their conversational context) through the text branch once, the segments that
have usable audio through the audio branch once, scatters both outputs back to the full batch (a missing
modality is uniform with zero evidence, so fusion leans on the other), and fuses them with
:class:`~emotag.fusion.FusionModel`. With ``modality="text"`` or ``"audio"`` only that branch runs and its own
calibrated output is returned unchanged (no fusion), which is also what ``emotag eval`` reports as "each
modality alone".

No torch import here: the branches import it inside their own modules.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag.errors import ModelError
from emotag.fusion import FUSION_METHODS, FusionInput, FusionModel, FusionOutput
from emotag.models.base import SAMPLE_RATE, Prediction, Segment
from emotag.models.branches import concat_rows, take_rows, unsort_rows
from emotag.timeline import LABELS, Emotion, speaker_key

if TYPE_CHECKING:
    from emotag.models.branches import AudioBranchLike, BranchOutput, TextBranchLike

#: Modalities a model can run on.
MODALITIES: tuple[str, ...] = ("both", "text", "audio")
#: Audio shorter than this (seconds) counts as absent: too short to carry prosody.
MIN_AUDIO_S = 0.25
#: Largest batch handed to the text branch (length-sorted; smaller batches pad less).
TEXT_SUB_BATCH = 32
#: Context cues counted in the sort key (the packaged text branch reads the last three).
TEXT_CONTEXT_CUES = 3
_UNIFORM = Emotion(tuple(1.0 / len(LABELS) for _ in LABELS), 0.0, 0.0)


_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="emotag-branch")
    return _EXECUTOR


def _emotion(probs: np.ndarray, valence: float, arousal: float) -> Emotion:
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, None)
    total = p.sum()
    p = p / total if total > 0 else np.full(len(LABELS), 1.0 / len(LABELS))
    return Emotion(tuple(float(x) for x in p), float(np.clip(valence, -1, 1)), float(np.clip(arousal, -1, 1)))


class MultimodalModel:
    """Text branch + audio branch + fusion, behind the :class:`EmotionModel` protocol.

    Args:
        text_branch: anything with ``infer(texts, contexts) -> BranchOutput`` (``None`` for audio-only).
        audio_branch: anything with ``infer(waveforms) -> BranchOutput`` (``None`` for text-only).
        fusion: fusion parameters; :meth:`FusionModel.untrained` when the model ships none.
        name: the model's name as written into outputs.
        method: fusion method (``None`` = the fusion's default).
        modality: ``"both"``, ``"text"`` or ``"audio"``.
        batch_size: largest batch handed to a branch at once.
        min_audio_s: audio shorter than this counts as absent.
        parallel_branches: run the text and audio branches at the same time in two threads (measured with
            one torch thread each, 512 five-second cues: 93-99 cues/s against 57-64 one after the other).
    """

    def __init__(
        self,
        text_branch: TextBranchLike | None,
        audio_branch: AudioBranchLike | None,
        fusion: FusionModel,
        *,
        name: str = "emotag-default-1",
        method: str | None = None,
        modality: str = "both",
        batch_size: int = 64,
        min_audio_s: float = MIN_AUDIO_S,
        parallel_branches: bool = True,
    ) -> None:
        if modality not in MODALITIES:
            raise ModelError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
        if modality in ("both", "text") and text_branch is None:
            raise ModelError(f"modality {modality!r} needs a text branch, and this model has none")
        if modality in ("both", "audio") and audio_branch is None:
            raise ModelError(f"modality {modality!r} needs an audio branch, and this model has none")
        self._text = text_branch
        self._audio = audio_branch
        self._name = name
        self.modality = modality
        self.batch_size = max(1, int(batch_size))
        self.parallel_branches = parallel_branches
        self.min_samples = int(round(min_audio_s * SAMPLE_RATE))
        text_dim = text_branch.embedding_dim if text_branch is not None else 0
        audio_dim = audio_branch.embedding_dim if audio_branch is not None else 0
        self._text_dim, self._audio_dim = text_dim, audio_dim
        method = fusion.check_method(method) if method is not None else fusion.method
        if method != "late" and (
            (fusion.text_dim and fusion.text_dim != text_dim)
            or (fusion.audio_dim and fusion.audio_dim != audio_dim)
        ):
            # A swapped-in branch of another embedding width: only late fusion (probabilities) applies.
            method = "late"
        if method not in fusion.methods:
            method = "late"
        self.fusion = fusion
        self.method = method
        self._file_stats: Any = None
        #: id(segment) -> (segment, analysis, row, statistics): the bound file's voice pass and the
        #: statistics each segment is normalised with (see for_file).
        self._analysis: dict[int, tuple[Segment, Any, int, Any]] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def text_branch(self) -> TextBranchLike | None:
        return self._text

    @property
    def audio_branch(self) -> AudioBranchLike | None:
        return self._audio

    # ----------------------------------------------------------------------------------------- running

    def _run_text(self, segments: Sequence[Segment], rows: list[int]) -> BranchOutput | None:
        if not rows or self._text is None:
            return None

        # Sort by the length of text *and* context (what the encoder actually reads) and feed small batches:
        # padding then stays short. Measured on MELD dev lines with 3 context cues: 66 vs 37 cues per
        # CPU-second for the packaged text branch (which sorts only by cue text inside one call).
        def length(r: int) -> int:
            return len(segments[r].text) + sum(len(c) for c in segments[r].context[-TEXT_CONTEXT_CUES:])

        order = sorted(range(len(rows)), key=lambda k: length(rows[k]))
        step = min(self.batch_size, TEXT_SUB_BATCH)
        outs = []
        for i in range(0, len(order), step):
            chunk = [rows[k] for k in order[i : i + step]]
            texts = [segments[r].text.strip() for r in chunk]
            contexts = [tuple(segments[r].context) for r in chunk]
            outs.append(self._text.infer(texts, contexts))
        return unsort_rows(outs, order)

    def _has_audio(self, segment: Segment) -> bool:
        """Whether a segment has enough audio for the audio branch (shorter counts as absent)."""
        return segment.audio is not None and np.size(segment.audio) >= self.min_samples

    def for_file(
        self, segments: Sequence[Segment], progress: Callable[[int, int], None] | None = None
    ) -> MultimodalModel:
        """This model bound to one media file's speaker statistics (see :meth:`AudioBranch.file_stats`).

        The audio branch reads each voice relative to the statistics of all speech cues of the same file,
        a stand-in for per-speaker normalisation that measured +3 to +6.5 points of unweighted accuracy on
        held-out RAVDESS actors. Segments whose :attr:`~emotag.models.base.Segment.speaker` is named are
        read relative to that speaker's own cues instead, shrunk towards the file's
        (:func:`~emotag.models.audio.shrink_stats`): in files of two held-out RAVDESS actors, per speaker
        beat per file by 1.5-5 points (``python bench/speaker_norm.py``). A speaker with too few speech
        cues for statistics of their own keeps the file's. The pipeline calls this once per file with
        every segment; the returned copy is used for that file's batches, so the model itself stays
        stateless. The voices are read :data:`ANALYSE_CHUNK` cues at a time; ``progress(done, total)``
        hears of each.
        """
        stats_of = getattr(self._audio, "file_stats", None)
        if self.modality == "text" or not callable(stats_of):
            return self
        with_audio = [s for s in segments if self._has_audio(s)]
        waves = [np.asarray(s.audio, dtype=np.float32).reshape(-1) for s in with_audio]
        bound = copy.copy(self)
        analyse = getattr(self._audio, "analyse", None)
        stats_from = getattr(self._audio, "stats_from", None)
        if waves and callable(analyse) and callable(stats_from):
            # One prosody pass serves both the file statistics and, later, each cue's own input.
            analysis = _analyse_in_chunks(analyse, waves, progress)
            bound._file_stats = stats_from(analysis)
            names = [s.speaker for s in with_audio]
            row_stats = _speaker_stats(stats_from, analysis, names, bound._file_stats)
            bound._analysis = {id(s): (s, analysis, k, row_stats[k]) for k, s in enumerate(with_audio)}
        else:
            bound._file_stats = stats_of(waves) if waves else None
        return bound

    def _analysis_for(self, segments: Sequence[Segment], chunk: Sequence[int]) -> Any:
        """The bound file's :meth:`analyse` rows for these segments, or ``None`` if any is unknown."""
        if not self._analysis:
            return None
        rows, source = [], None
        for r in chunk:
            hit = self._analysis.get(id(segments[r]))
            if hit is None or hit[0] is not segments[r] or (source is not None and hit[1] is not source):
                return None
            source = hit[1]
            rows.append(hit[2])
        if source is None:
            return None
        return take_rows(source, rows)

    def _stats_for(self, segment: Segment) -> Any:
        """The statistics this bound model reads ``segment``'s voice against (the file's by default)."""
        hit = self._analysis.get(id(segment))
        return hit[3] if hit is not None and hit[0] is segment else self._file_stats

    def _run_audio(self, segments: Sequence[Segment], rows: list[int]) -> BranchOutput | None:
        if not rows or self._audio is None:
            return None
        # Rows read against the same statistics (one speaker, or the file) go through the branch together.
        stats = [self._stats_for(segments[r]) for r in rows]
        group = [id(st) for st in stats]
        order = sorted(range(len(rows)), key=lambda k: group[k])
        outs: list[BranchOutput] = []
        for _, same in itertools.groupby(order, key=lambda k: group[k]):
            members = list(same)
            for i in range(0, len(members), self.batch_size):
                chunk = members[i : i + self.batch_size]
                outs.append(self._infer_audio(segments, [rows[j] for j in chunk], stats[chunk[0]]))
        return unsort_rows(outs, order)

    def _infer_audio(self, segments: Sequence[Segment], chunk: list[int], stats: Any) -> BranchOutput:
        assert self._audio is not None
        waves = [np.asarray(segments[r].audio, dtype=np.float32).reshape(-1) for r in chunk]
        analysis = self._analysis_for(segments, chunk)
        if analysis is not None:
            return self._audio.infer(waves, file_stats=stats, analysis=analysis)  # type: ignore[call-arg]
        if stats is not None:
            return self._audio.infer(waves, file_stats=stats)  # type: ignore[call-arg]
        return self._audio.infer(waves)

    def branch_inputs(self, segments: Sequence[Segment]) -> FusionInput:
        """Run the branches the modality asks for and assemble the fusion input."""
        n = len(segments)
        text_rows = (
            [i for i, s in enumerate(segments) if s.text and s.text.strip()]
            if self.modality != "audio"
            else []
        )
        audio_rows = (
            [i for i, s in enumerate(segments) if self._has_audio(s)] if self.modality != "text" else []
        )
        if self.parallel_branches and text_rows and audio_rows:
            # torch releases the GIL inside its kernels: the two branches overlap on two cores
            pool = _executor()
            ft = pool.submit(self._run_text, segments, text_rows)
            fa = pool.submit(self._run_audio, segments, audio_rows)
            t, a = ft.result(), fa.result()
        else:
            t = self._run_text(segments, text_rows)
            a = self._run_audio(segments, audio_rows)
        return FusionInput.assemble(
            n, t, text_rows, a, audio_rows, text_dim=self._text_dim, audio_dim=self._audio_dim
        )

    def fuse(self, x: FusionInput, method: str | None = None) -> FusionOutput:
        """Fuse an assembled input with ``method`` (default: this model's method)."""
        return self.fusion.fuse(x, method or self.method)

    def predict(self, segments: Sequence[Segment]) -> list[Prediction]:
        """Score a batch of segments (see class docstring)."""
        if not segments:
            return []
        x = self.branch_inputs(segments)
        return self.predictions(x)

    def predictions(self, x: FusionInput, method: str | None = None) -> list[Prediction]:
        """Turn an assembled input into predictions (fusing when the modality is ``both``)."""
        n = len(x)
        text_em = [
            _emotion(x.text_probs[i], x.text_valence[i], x.text_arousal[i]) if x.text_present[i] else None
            for i in range(n)
        ]
        audio_em = [
            _emotion(x.audio_probs[i], x.audio_valence[i], x.audio_arousal[i]) if x.audio_present[i] else None
            for i in range(n)
        ]
        if self.modality == "text":
            return [Prediction(t or _UNIFORM, t, None) for t in text_em]
        if self.modality == "audio":
            return [Prediction(a or _UNIFORM, None, a) for a in audio_em]
        out = self.fuse(x, method)
        return [
            Prediction(
                _emotion(out.probs[i], out.valence[i], out.arousal[i]),
                text_em[i],
                audio_em[i],
                float(out.mismatch[i]),
                bool(out.mismatched[i]),
            )
            for i in range(n)
        ]

    def with_modality(self, modality: str) -> MultimodalModel:
        """The same branches and fusion, run on another modality."""
        return MultimodalModel(
            self._text if modality != "audio" else None,
            self._audio if modality != "text" else None,
            self.fusion,
            name=self._name,
            method=self.method,
            modality=modality,
            batch_size=self.batch_size,
            min_audio_s=self.min_samples / SAMPLE_RATE,
            parallel_branches=self.parallel_branches,
        )

    def __repr__(self) -> str:
        return f"MultimodalModel(name={self._name!r}, modality={self.modality!r}, method={self.method!r})"


__all__ = ["MODALITIES", "MultimodalModel", "FUSION_METHODS"]


#: Cues whose voices :meth:`MultimodalModel.for_file` reads per call of the branch's ``analyse``.
ANALYSE_CHUNK = 128


def _speaker_stats(
    stats_from: Callable[[Any], Any], analysis: Any, speakers: Sequence[str | None], file_stats: Any
) -> list[Any]:
    """The statistics each analysed row is read against: its named speaker's own, shrunk towards the
    file's, where the speaker has enough speech cues for them, else the file's."""
    from emotag.models.audio import ProsodyStats, VoiceAnalysis, shrink_stats

    out = [file_stats] * len(speakers)
    if not isinstance(file_stats, ProsodyStats) or not isinstance(analysis, VoiceAnalysis):
        return out
    rows: dict[str, list[int]] = {}
    for k, name in enumerate(speakers):
        key = speaker_key(name)
        if key is not None:
            rows.setdefault(key, []).append(k)
    for idx in rows.values():
        own = stats_from(take_rows(analysis, idx))
        if isinstance(own, ProsodyStats):
            shrunk = shrink_stats(own, file_stats)
            for k in idx:
                out[k] = shrunk
    return out


def _analyse_in_chunks(
    analyse: Callable[[Sequence[Any]], Any],
    waves: Sequence[np.ndarray],
    progress: Callable[[int, int], None] | None,
) -> Any:
    """``analyse(waves)``, :data:`ANALYSE_CHUNK` waveforms at a time, reporting ``progress(done, total)``.

    Chunks are joined row-wise when the analysis is a :class:`~emotag.models.audio.VoiceAnalysis` (the
    built-in branches'); a branch whose analysis is anything else then reads all its voices in one call.
    """
    from emotag.models.audio import VoiceAnalysis

    total = len(waves)
    if progress is not None:
        progress(0, total)
    first = analyse(waves[:ANALYSE_CHUNK])
    if total > ANALYSE_CHUNK and not isinstance(first, VoiceAnalysis):
        first = analyse(waves)  # an analysis that cannot be joined row by row: every voice in one call
    parts = [first]
    if isinstance(first, VoiceAnalysis):
        for start in range(ANALYSE_CHUNK, total, ANALYSE_CHUNK):
            if progress is not None:
                progress(start, total)
            parts.append(analyse(waves[start : start + ANALYSE_CHUNK]))
    if progress is not None:
        progress(total, total)
    return concat_rows(parts)
