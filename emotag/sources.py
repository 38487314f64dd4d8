"""Decide where a media file's cues come from: a given file, a sidecar, an embedded stream, or ASR.

Order (first hit wins):

1. ``--subs FILE`` (``file:…``);
2. ``--subs-stream N``: embedded subtitle stream N, 0-based among subtitle streams like ffmpeg's ``0:s:N``
   (``embedded:N (codec, lang)``); an explicit choice beats a sidecar;
3. a sidecar next to the media (``sidecar:…``; see :func:`emotag.subtitles.find_sidecar`);
4. an embedded text stream: the ``--subs-lang`` one, else English and default-flagged first, forced-only
   streams last (``embedded:N (codec, lang)``);
5. ASR (``asr:faster-whisper tiny.en``), unless ``asr="none"``.

With ``--subs-lang`` only subtitles in that language (or an untagged ``NAME.srt``, whose language is unknown)
are taken; if there are subtitles but none in that language, that is an error listing what there is, rather
than a silent pick of another language.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from emotag.errors import SubtitleError
from emotag.subtitles import CueList, find_sidecar, normalize_language, read_cues, read_cues_from_string
from emotag.timeline import Cue

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from emotag.media import Probe, StreamInfo

__all__ = ["ASR_CHOICES", "CueSource", "find_cues"]

#: Values of ``asr``: a backend, ``auto``, or ``none`` to never transcribe.
ASR_CHOICES: tuple[str, ...] = ("auto", "faster-whisper", "whisper", "none")


@dataclass(frozen=True, slots=True)
class CueSource:
    """The cues of a media file and where they came from.

    Attributes:
        cues: cues sorted by start, numbered from 1.
        source: ``file:PATH``, ``sidecar:PATH``, ``embedded:N (codec, lang)`` or ``asr:BACKEND MODEL``.
        warnings: notes from reading them (fixed cues, encoding guesses, fallbacks).
        format: ``srt``, ``vtt``, ``ass``, ``ssa`` or ``asr``.
        encoding: the text encoding of a subtitle file; ``None`` for embedded streams and ASR.
    """

    cues: tuple[Cue, ...]
    source: str
    warnings: tuple[str, ...] = ()
    format: str = ""
    encoding: str | None = None


def find_cues(
    media_path: str | os.PathLike[str],
    probe: Probe,
    *,
    subs: str | os.PathLike[str] | None = None,
    subs_stream: int | None = None,
    subs_lang: str | None = None,
    asr: str = "auto",
    asr_model: str | None = None,
    language: str | None = None,
    audio: npt.NDArray[np.float32] | None = None,
    progress: Callable[[float], None] | None = None,
    encoding: str | None = None,
) -> CueSource:
    """Find the cues for a media file.

    Args:
        media_path: the media file.
        probe: its :func:`emotag.media.probe` result.
        subs: an explicit subtitle file.
        subs_stream: an embedded subtitle stream, 0-based among subtitle streams.
        subs_lang: wanted subtitle language (``en``, ``eng``, ``en-US``...).
        asr: ``auto``, ``faster-whisper``, ``whisper`` or ``none``.
        asr_model: ASR model name, local directory or checkpoint (``None``: the offline default).
        language: spoken language for ASR (``None``: ``subs_lang`` if given, else detected).
        audio: the decoded 16 kHz mono audio, if already loaded (loaded here only when ASR needs it).
        progress: ASR progress callback, fraction 0.0 to 1.0.
        encoding: force the text encoding of subtitle files.

    Returns:
        The :class:`CueSource`.

    Raises:
        InputError: ``subs`` is missing or unreadable.
        SubtitleError: unreadable/malformed subtitles, no such stream, bitmap-only stream chosen, no subtitles
            in ``subs_lang``, or none at all with ``asr="none"``.
        MediaError, ModelError, MissingDependencyError: from decoding or transcribing.
    """
    media = str(media_path)
    if asr not in ASR_CHOICES:
        raise SubtitleError(media, f"unknown --asr {asr!r}", f"choose one of {', '.join(ASR_CHOICES)}")

    if subs is not None:
        return _from_file(read_cues(subs, encoding=encoding), f"file:{subs}")

    if subs_stream is not None:
        return _from_stream(media, probe, _stream_by_ordinal(media, probe, subs_stream))

    want = normalize_language(subs_lang)
    sidecar = find_sidecar(media_path, lang=subs_lang)
    if sidecar is not None and (want is None or _sidecar_matches(media_path, sidecar, want)):
        return _from_file(read_cues(sidecar, encoding=encoding), f"sidecar:{sidecar}")

    warnings: list[str] = []
    streams = probe.subtitle_streams
    text_streams = [s for s in streams if s.is_text]
    candidates = [s for s in text_streams if want is None or normalize_language(s.language) == want]
    if candidates:
        chosen = min(candidates, key=lambda s: _stream_rank(s, want))
        return _from_stream(media, probe, chosen)

    if want is not None and (sidecar is not None or text_streams):
        found = [f"embedded {s.describe()}" for s in text_streams]
        if sidecar is not None:
            found.insert(0, f"sidecar {sidecar.name}")
        raise SubtitleError(
            media,
            f"has no subtitles in language {subs_lang!r} (found: {'; '.join(found)})",
            "drop --subs-lang, pick one with --subs-stream N or --subs FILE",
        )
    bitmap = [s for s in streams if not s.is_text]
    if bitmap:
        warnings.append(
            "embedded subtitles are bitmaps ("
            + ", ".join(s.describe() for s in bitmap)
            + ") and need OCR; "
            + ("transcribing the speech instead" if asr != "none" else "pass --subs FILE")
        )

    if asr == "none":
        raise SubtitleError(
            media,
            "has no subtitles (no --subs file, sidecar or embedded text stream) and --asr is none",
            f"pass --subs FILE, put {Path(media).stem}.srt next to it, or allow transcription (--asr auto)",
        )
    return _from_asr(media, probe, asr, asr_model, language or subs_lang, audio, progress, warnings)


# ---------------------------------------------------------------------------------------------- helpers


def _from_file(cl: CueList, source: str) -> CueSource:
    return CueSource(cl.cues, source, cl.warnings, cl.format, cl.encoding)


def _stream_by_ordinal(media: str, probe: Probe, ordinal: int) -> StreamInfo:
    streams = probe.subtitle_streams
    if not 0 <= ordinal < len(streams):
        listing = "; ".join(s.describe() for s in streams) or "none"
        raise SubtitleError(
            media,
            f"has no subtitle stream {ordinal} (subtitle streams: {listing})",
            "pick one of the listed streams with --subs-stream N, or pass --subs FILE",
        )
    return streams[ordinal]


def _stream_rank(s: StreamInfo, want: str | None) -> tuple[bool, bool, bool, int]:
    forced = s.forced or (s.title is not None and "forced" in s.title.lower())
    english = normalize_language(s.language) == (want or "en")
    return (forced, not english, not s.default, s.ordinal)


def _describe_source(s: StreamInfo) -> str:
    details = f"{s.codec}, {s.language}" if s.language else s.codec
    return f"embedded:{s.ordinal} ({details})"


def _from_stream(media: str, probe: Probe, st: StreamInfo) -> CueSource:
    from emotag.media import extract_subtitle_stream

    text = extract_subtitle_stream(media, st.ordinal, probe=probe)
    cl = read_cues_from_string(text, name=f"{media} (subtitle stream {st.ordinal})")
    return CueSource(cl.cues, _describe_source(st), cl.warnings, cl.format, None)


def _sidecar_matches(media_path: str | os.PathLike[str], sidecar: Path, want: str) -> bool:
    """Whether a sidecar is untagged (``NAME.srt``) or tagged with the wanted language."""
    middle = sidecar.name[len(Path(media_path).stem) + 1 : len(sidecar.name) - len(sidecar.suffix)]
    if not middle:
        return True
    return want in {normalize_language(t) for t in re.split(r"[.\s_]", middle) if t}


def _from_asr(
    media: str,
    probe: Probe,
    backend: str,
    model: str | None,
    language: str | None,
    audio: npt.NDArray[np.float32] | None,
    progress: Callable[[float], None] | None,
    warnings: list[str],
) -> CueSource:
    from emotag.asr import transcribe
    from emotag.media import load_audio

    if audio is None:
        audio = load_audio(media, probe=probe)
    tr = transcribe(
        audio, backend=backend, model=model, language=normalize_language(language), progress=progress
    )
    if not tr.cues:
        raise SubtitleError(
            media,
            "has no subtitles and no speech was recognised in it",
            "pass --subs FILE, or check the audio stream with --audio-stream N",
        )
    warnings.append(f"no subtitles found; transcribed with {tr.backend} {tr.model}")
    return CueSource(tr.cues, f"asr:{tr.backend} {tr.model}", tuple(warnings), "asr", None)
