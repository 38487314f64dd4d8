"""``tag()``: the one place that orchestrates media → cues → evidence → fusion → a tagged track.

Each stage is a plain function of plain data, called once, in order:

1. :func:`emotag.media.probe` and :func:`emotag.media.load_audio` (decoded once, 16 kHz mono float32);
2. :func:`emotag.sources.find_cues` (``--subs`` file → sidecar → embedded stream → ASR);
3. :func:`segments` slices each cue's audio (with a little padding) and gathers its text context;
4. the model scores batches of segments (text branch, audio branch, fusion);
5. the results are assembled into an immutable :class:`~emotag.timeline.Track`.

The library never prints: progress goes to an optional ``progress(stage, done, total)`` callable (pyannote's
hook idea), warnings into ``Track.warnings``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING

from emotag.errors import ModelError
from emotag.models.base import SAMPLE_RATE, EmotionModel, Prediction, Segment, bind_to_file
from emotag.timeline import Cue, TaggedCue, Track

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from emotag.media import Probe

#: ``progress(stage, done, total)``: stage is ``"decode"``, ``"transcribe"``, ``"analyse"`` or ``"score"``.
Progress = Callable[[str, int, int], None]

#: Audio added before and after each cue so onsets and trailing syllables are not clipped.
PAD_MS = 100
#: Cues shorter than this get their audio window widened symmetrically to this length.
MIN_AUDIO_MS = 400
#: Audio handed to the model per cue is capped at this length (a longer cue is scored on its first 30 s;
#: subtitle cues are 1–7 s, so this only bounds memory for pathological files).
MAX_AUDIO_MS = 30_000
#: Voice normalisation choices (``TagOptions.group_by``, ``emotag tag --group-by``).
GROUP_BY: tuple[str, ...] = ("speaker", "file", "none")


@dataclass(frozen=True, slots=True)
class TagOptions:
    """Everything :func:`tag` can be told, grouped (faster-whisper's ``TranscriptionOptions`` idea).

    Attributes:
        subs: an explicit subtitle file (SRT, WebVTT, ASS/SSA); wins over everything else.
        subs_stream: ordinal (0-based) of the embedded subtitle stream to use.
        subs_lang: preferred subtitle language (``en``, ``eng``, ``de``) for sidecars and streams.
        audio_stream: ordinal (0-based) of the audio stream to decode.
        asr: ``"auto"``, ``"faster-whisper"``, ``"whisper"`` or ``"none"`` (never transcribe).
        asr_model: ASR model name or local directory/checkpoint; ``None`` for the offline default.
        language: spoken language hint for ASR.
        context: how many previous cues the text branch may read as context.
        batch_size: cues per model call.
        group_by: how the voices are normalised (see :data:`GROUP_BY`): ``"speaker"`` (each speaker the
            subtitles name on their own, the other cues against the whole file), ``"file"`` (every cue
            against the whole file) or ``"none"`` (each cue alone).
    """

    subs: str | None = None
    subs_stream: int | None = None
    subs_lang: str | None = None
    audio_stream: int | None = None
    asr: str = "auto"
    asr_model: str | None = None
    language: str | None = None
    context: int = 2
    batch_size: int = 32
    group_by: str = "speaker"


def tag(
    path: str | PathLike[str],
    *,
    model: EmotionModel | str | PathLike[str] | None = None,
    text_model: str | None = None,
    audio_model: str | None = None,
    fusion: str | None = None,
    modality: str = "both",
    options: TagOptions | None = None,
    progress: Progress | None = None,
    probe: Probe | None = None,
    **option_overrides: object,
) -> Track:
    """Tag every subtitle cue of a media file with its emotion.

    Args:
        path: any file ffmpeg reads (mp4, mov, mkv, webm, wav, mp3, m4a, flac, ...).
        model: an :class:`~emotag.models.base.EmotionModel`, a model directory or registered name;
            ``None`` loads the packaged default.
        text_model: Hugging Face id or directory replacing the text branch.
        audio_model: Hugging Face id or directory replacing the audio branch.
        fusion: ``"early"``, ``"late"`` or ``"hybrid"``; ``None`` for the model's default.
        modality: ``"both"``, ``"text"`` or ``"audio"``.
        options: a :class:`TagOptions`; keyword arguments named like its fields override it.
        progress: optional ``progress(stage, done, total)`` callable.
        probe: the file's :func:`emotag.media.probe` result when the caller already has it.

    Returns:
        The tagged :class:`~emotag.timeline.Track`, cues sorted by start.

    Raises:
        InputError, MediaError, SubtitleError, ModelError, MissingDependencyError: with one-line messages.
    """
    from emotag import media, sources

    opts = _merge_options(options, option_overrides)
    _check_group_by(opts.group_by)
    media_path = media.check_readable(path)
    probed = probe if probe is not None else media.probe(media_path)
    if progress:
        progress("decode", 0, 1)
    audio = media.load_audio(media_path, stream=opts.audio_stream, sample_rate=SAMPLE_RATE, probe=probed)
    if progress:
        progress("decode", 1, 1)

    def asr_progress(fraction: float) -> None:
        if progress:
            progress("transcribe", int(fraction * 1000), 1000)

    found = sources.find_cues(
        media_path,
        probed,
        subs=opts.subs,
        subs_stream=opts.subs_stream,
        subs_lang=opts.subs_lang,
        asr=opts.asr,
        asr_model=opts.asr_model,
        language=opts.language,
        audio=audio,
        progress=asr_progress,
    )
    emotion_model = _resolve_model(model, text_model, audio_model, fusion, modality)
    warnings = list(found.warnings)
    tagged = list(
        score(
            found.cues,
            audio,
            emotion_model,
            context=opts.context,
            batch_size=opts.batch_size,
            group_by=opts.group_by,
            progress=progress,
        )
    )
    # The decoded length is exact; ffprobe's container duration includes MP3/AAC encoder padding.
    media_info = dataclasses.replace(probed.media, duration_ms=len(audio) * 1000 // SAMPLE_RATE)
    late = past_the_end(found.cues, media_info.duration_ms)
    if late:
        warnings.append(late)
    return Track(
        media=media_info,
        cues=tuple(tagged),
        model=emotion_model.name,
        source=found.source,
        warnings=tuple(warnings),
    )


def past_the_end(cues: Sequence[Cue], duration_ms: int) -> str | None:
    """A warning when cues start at or after the end of the audio (``None`` when none do).

    Such cues have no voice to hear, so they are scored on their words alone; subtitles made for another
    cut of the footage, or shifted by an offset, show up this way.
    """
    from emotag.timecode import ms_to_srt

    late = [c for c in cues if c.start_ms >= duration_ms]
    if not late:
        return None
    first = min(late, key=lambda c: c.start_ms)
    return (
        f"{len(late)} cue(s) start after the audio ends at {ms_to_srt(duration_ms)} (first: cue "
        f"{first.index} at {ms_to_srt(first.start_ms)}) and were scored on their words alone; check that the "
        "subtitles belong to this cut and are not shifted"
    )


def score(
    cues: Sequence[Cue],
    audio: npt.NDArray[np.float32] | None,
    model: EmotionModel,
    *,
    context: int = 2,
    batch_size: int = 32,
    group_by: str = "speaker",
    progress: Progress | None = None,
) -> Iterator[TaggedCue]:
    """Score cues against a waveform, lazily, a batch at a time (usable without any media file).

    Args:
        cues: the cues, in playback order.
        audio: the whole file's 16 kHz mono waveform, or ``None`` for text-only scoring.
        model: the emotion model.
        context: number of preceding cues given to the text branch as context.
        batch_size: cues per model call.
        group_by: voice normalisation, one of :data:`GROUP_BY` (see :class:`TagOptions`).
        progress: optional ``progress(stage, done, total)`` callable: ``"analyse"`` while the model reads
            the file's voices (models with ``for_file``), then ``"score"``.

    Yields:
        One :class:`~emotag.timeline.TaggedCue` per cue, in order.
    """
    _check_group_by(group_by)
    segs = segments(cues, audio, context=context, speakers=group_by == "speaker")
    if group_by != "none":  # models that normalise voices per file (and per named speaker)
        model = bind_to_file(model, segs, _stage(progress, "analyse"))
    total = len(cues)
    if progress:
        progress("score", 0, total)
    for start in range(0, total, max(1, batch_size)):
        batch = segs[start : start + batch_size]
        predictions = model.predict(batch)
        if len(predictions) != len(batch):
            raise ModelError(
                f"model {model.name!r} returned {len(predictions)} results for {len(batch)} cues"
            )
        for cue, pred in zip(cues[start : start + batch_size], predictions, strict=True):
            yield _tagged(cue, pred)
        if progress:
            progress("score", min(total, start + batch_size), total)


def _check_group_by(group_by: str) -> None:
    if group_by not in GROUP_BY:
        raise ValueError(f"unknown voice grouping {group_by!r}; choose one of {', '.join(GROUP_BY)}")


def _stage(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    """``progress`` narrowed to one stage: ``(done, total)`` -> ``progress(stage, done, total)``."""
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(stage, done, total)


def segments(
    cues: Sequence[Cue], audio: npt.NDArray[np.float32] | None, *, context: int = 2, speakers: bool = True
) -> list[Segment]:
    """Build the model's view of each cue: its words, padded audio slice, previous cues' words, speaker.

    Zero-length cues get a :data:`MIN_AUDIO_MS` window centred on their time; overlapping cues (two
    speakers) simply share audio. Context is the plain text of the ``context`` cues that start before
    this one (overlaps included), oldest first. A cue's words are its plain text without the label naming
    its speaker (:attr:`~emotag.timeline.Cue.spoken`). With ``speakers`` each segment carries its cue's
    speaker name (``None`` where the subtitles name nobody).
    """
    out: list[Segment] = []
    texts = [c.spoken for c in cues]
    for i, cue in enumerate(cues):
        wave = None if audio is None else slice_audio(audio, cue.start_ms, cue.end_ms)
        ctx = tuple(t for t in texts[max(0, i - context) : i] if t) if context > 0 else ()
        out.append(Segment(text=texts[i], audio=wave, context=ctx, speaker=cue.speaker if speakers else None))
    return out


def slice_audio(audio: npt.NDArray[np.float32], start_ms: int, end_ms: int) -> npt.NDArray[np.float32] | None:
    """The cue's audio with :data:`PAD_MS` padding, widened to :data:`MIN_AUDIO_MS`; ``None`` if outside."""
    start, end = start_ms - PAD_MS, max(end_ms, start_ms) + PAD_MS
    if end - start < MIN_AUDIO_MS:
        mid = (start + end) // 2
        start, end = mid - MIN_AUDIO_MS // 2, mid + MIN_AUDIO_MS // 2
    end = min(end, start + MAX_AUDIO_MS)
    lo = max(0, start * SAMPLE_RATE // 1000)
    hi = min(len(audio), end * SAMPLE_RATE // 1000)
    if hi - lo < SAMPLE_RATE // 20:  # under 50 ms of real audio: the cue lies past the end of the file
        return None
    return audio[lo:hi]


def _tagged(cue: Cue, pred: Prediction) -> TaggedCue:
    return TaggedCue(
        cue=cue,
        emotion=pred.emotion,
        text=pred.text,
        audio=pred.audio,
        mismatch=pred.mismatch,
        mismatched=pred.mismatched,
    )


def _resolve_model(
    model: EmotionModel | str | PathLike[str] | None,
    text_model: str | None,
    audio_model: str | None,
    fusion: str | None,
    modality: str,
) -> EmotionModel:
    if model is not None and not isinstance(model, (str, PathLike)):
        return model
    from emotag.models import load_model

    return load_model(
        None if model is None else str(model),
        text_model=text_model,
        audio_model=audio_model,
        fusion=fusion,
        modality=modality,
    )


def _merge_options(options: TagOptions | None, overrides: dict[str, object]) -> TagOptions:
    opts = options or TagOptions()
    fields = {f.name for f in dataclasses.fields(TagOptions)}
    unknown = set(overrides) - fields
    if unknown:
        raise TypeError(f"tag() got unexpected options: {', '.join(sorted(unknown))}")
    return dataclasses.replace(opts, **overrides)  # type: ignore[arg-type]
