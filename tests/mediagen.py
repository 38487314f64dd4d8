"""Test media made at test time: espeak-ng speech, ffmpeg lavfi video/tones, subtitle files.

Nothing here is committed media: every function writes a fresh file from scratch with ``espeak-ng``
and ``ffmpeg`` (both system tools, required by the test suite), so tests assert real decoding of
real containers. Everything is kept small and fast: 160x120 video at low frame rates, ultrafast x264,
realtime VP8, 16 kHz mono audio.

Plain functions only (no pytest imports): ``tests/conftest.py`` wires session fixtures from them.

Cue tuples are ``(start_ms, end_ms, text)`` or ``(start_ms, end_ms, text, speaker)``; anything with
``start_ms``/``end_ms``/``text`` attributes (an :class:`emotag.timeline.Cue`) works as well.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000

#: The sentences ``long_speech`` loops: plain, varied words so ASR word-overlap checks are meaningful, and
#: about 55 s long in all, so that no 30-second Whisper window holds the same text twice (a window that
#: repeats itself fails Whisper's compression-ratio check and gets dropped or re-decoded at high temperature).
LONG_LINES: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog.",
    "I cannot believe you did that again.",
    "We will meet at the station tomorrow morning.",
    "Please open the window, it is very warm in here.",
    "My sister bought a new bicycle last summer.",
    "The museum is closed on Mondays and public holidays.",
    "He forgot his keys in the kitchen again.",
    "Could you tell me the way to the library?",
    "The children played football until it got dark.",
    "She sent the letter without reading it twice.",
    "Our flight was delayed by almost three hours.",
    "This soup needs a little more salt and pepper.",
    "They moved to a small village near the coast.",
    "I have never seen such a beautiful sunset.",
    "The meeting has been moved to Thursday afternoon.",
    "Turn left after the bridge and park behind the bakery.",
)


#: Short everyday lines, one voice or several saying them (the per-speaker voice tests).
SPEAKER_LINES: tuple[str, ...] = (
    "I can't believe you did this",
    "what a lovely morning",
    "where are my keys",
    "leave me alone",
    "we won the game",
    "the train is late again",
    "thank you so much",
    "I am so tired today",
)


def _run(cmd: Sequence[str]) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")


def _ffmpeg(*args: str) -> None:
    _run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args])


def read_wav(path: str | Path) -> np.ndarray:
    """Read a 16-bit PCM WAV (any rate, mono or first channel) as float32 in [-1, 1]."""
    with wave.open(str(path), "rb") as w:
        n = w.getnframes()
        ch = w.getnchannels()
        data = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        data = data.reshape(-1, ch)[:, 0]
    return data


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write float samples in [-1, 1] as 16-bit mono PCM WAV."""
    path = Path(path)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return path


def wav_duration_ms(path: str | Path) -> int:
    """Exact duration of a WAV file in milliseconds (rounded)."""
    with wave.open(str(path), "rb") as w:
        return round(w.getnframes() * 1000 / w.getframerate())


def speak(
    text: str,
    path: str | Path,
    *,
    voice: str = "en-us",
    pitch: int = 50,
    speed: int = 160,
    amplitude: int = 100,
    trim: bool = True,
) -> Path:
    """Speak ``text`` with espeak-ng into a 16 kHz mono 16-bit WAV at ``path``.

    Args:
        text: what to say.
        path: output ``.wav``.
        voice: espeak-ng voice (``en-us``, ``en``, ``fr``...).
        pitch: 0-99.
        speed: words per minute.
        amplitude: 0-200.
        trim: cut espeak's leading/trailing silence so the file starts and ends on speech (±10 ms).

    Returns:
        ``path`` as a :class:`Path`.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        _run(
            [
                "espeak-ng",
                "-v",
                voice,
                "-p",
                str(pitch),
                "-s",
                str(speed),
                "-a",
                str(amplitude),
                "-w",
                str(raw),
                text,
            ]
        )
        _ffmpeg("-i", str(raw), "-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", str(path))
    if trim:
        x = read_wav(path)
        loud = np.flatnonzero(np.abs(x) > 0.01)
        if loud.size:
            pad = SAMPLE_RATE // 100
            x = x[max(0, loud[0] - pad) : loud[-1] + pad]
            write_wav(path, x)
    return path


def tone(path: str | Path, seconds: float, freq: float = 440, *, amplitude: float = 0.5) -> Path:
    """A pure sine tone, 16 kHz mono WAV (or any format ffmpeg infers from the suffix)."""
    path = Path(path)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    if path.suffix.lower() == ".wav":
        return write_wav(path, x)
    with tempfile.TemporaryDirectory() as tmp:
        return make_audio(path, write_wav(Path(tmp) / "t.wav", x))


def silence(path: str | Path, seconds: float) -> Path:
    """Digital silence, 16 kHz mono WAV."""
    return write_wav(path, np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32))


def melody(seed: int, seconds: float = 5.0, level: float = 0.1) -> np.ndarray:
    """A piano-like melody at 16 kHz (RMS ``level``): notes of 1/8 to 1/2 s on a major scale, 8 harmonics,
    each decaying. Voiced and coming and going like syllables, but every note holds its pitch."""
    rng = np.random.default_rng(seed)
    notes, total = [], 0.0
    while total < seconds:
        dur = float(rng.choice([0.125, 0.25, 0.25, 0.5]))
        f0 = 440.0 * 2 ** ((60 + int(rng.choice([0, 2, 4, 5, 7, 9, 11, 12])) - 69) / 12)
        t = np.arange(int(dur * SAMPLE_RATE)) / SAMPLE_RATE
        env = np.minimum(t / 0.01, 1.0) * np.exp(-4.0 * t)
        notes.append(env * sum(np.sin(2 * np.pi * f0 * k * t) / k**1.2 for k in range(1, 9)))
        total += dur
    x = np.concatenate(notes)[: int(seconds * SAMPLE_RATE)]
    return (level * x / np.sqrt(np.mean(x**2))).astype(np.float32)


def drum_loop(seconds: float = 5.0, level: float = 0.1) -> np.ndarray:
    """Kick and snare on eighth notes at 120 bpm, 16 kHz, RMS ``level``."""
    rng = np.random.default_rng(5)
    out = np.zeros(int(seconds * SAMPLE_RATE))
    t = np.arange(3000) / SAMPLE_RATE
    for k in range(int(seconds * 4)):
        hit = (
            np.sin(2 * np.pi * (60 + 80 * np.exp(-30 * t)) * t) * np.exp(-15 * t)
            if k % 2 == 0
            else 0.5 * rng.standard_normal(t.size) * np.exp(-25 * t)
        )
        s = int(k * 0.25 * SAMPLE_RATE)
        out[s : s + t.size] += hit[: out.size - s]
    return (level * out / np.sqrt(np.mean(out**2))).astype(np.float32)


def concat_speech(
    lines: Iterable[tuple[str, dict[str, Any]] | str],
    path: str | Path,
    gap_s: float = 0.4,
    *,
    lead_s: float = 0.3,
    tail_s: float = 0.3,
) -> list[tuple[int, int, str]]:
    """Speak each line and concatenate them with silent gaps into one 16 kHz mono WAV.

    Args:
        lines: ``(text, speak_kwargs)`` pairs (kwargs go to :func:`speak`: voice, pitch, speed,
            amplitude) or bare strings.
        path: output ``.wav``.
        gap_s: silence between lines.
        lead_s: silence before the first line.
        tail_s: silence after the last line.

    Returns:
        ``(start_ms, end_ms, text)`` of each line as actually placed in the file, so an SRT built from
        it matches the audio to the millisecond.
    """
    path = Path(path)
    gap = np.zeros(round(gap_s * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = [np.zeros(round(lead_s * SAMPLE_RATE), dtype=np.float32)]
    cues: list[tuple[int, int, str]] = []
    pos = parts[0].size
    with tempfile.TemporaryDirectory() as tmp:
        for i, item in enumerate(lines):
            text, kwargs = (item, {}) if isinstance(item, str) else item
            if i:
                parts.append(gap)
                pos += gap.size
            clip = read_wav(speak(text, Path(tmp) / f"l{i}.wav", **kwargs))
            start_ms, end_ms = round(pos * 1000 / SAMPLE_RATE), round((pos + clip.size) * 1000 / SAMPLE_RATE)
            cues.append((start_ms, end_ms, text))
            parts.append(clip)
            pos += clip.size
    parts.append(np.zeros(round(tail_s * SAMPLE_RATE), dtype=np.float32))
    write_wav(path, np.concatenate(parts))
    return cues


# --------------------------------------------------------------------------------------------- subtitles


def _norm_cues(cues: Iterable[Any]) -> list[tuple[int, int, str, str | None]]:
    out: list[tuple[int, int, str, str | None]] = []
    for c in cues:
        if isinstance(c, tuple | list):
            speaker = c[3] if len(c) > 3 else None
            out.append((int(c[0]), int(c[1]), str(c[2]), speaker))
        else:
            out.append((int(c.start_ms), int(c.end_ms), str(c.text), getattr(c, "speaker", None)))
    return out


def _write_text(path: Path, text: str, encoding: str, bom: bool) -> Path:
    data = text.encode(encoding)
    if bom:
        enc = encoding.lower().replace("_", "-")
        if enc in ("utf-8", "utf8"):
            data = b"\xef\xbb\xbf" + data
        elif enc in ("utf-16-le", "utf-16le"):
            data = b"\xff\xfe" + data
        elif enc in ("utf-16-be", "utf-16be"):
            data = b"\xfe\xff" + data
        # "utf-16" and "utf-8-sig" already write their own BOM
    path.write_bytes(data)
    return path


def _ssafile(cues: Iterable[Any]) -> Any:
    import pysubs2

    subs = pysubs2.SSAFile()
    for start, end, text, speaker in _norm_cues(cues):
        subs.append(pysubs2.SSAEvent(start=start, end=end, text=text, name=speaker or ""))
    return subs


def write_srt(cues: Iterable[Any], path: str | Path, encoding: str = "utf-8", bom: bool = False) -> Path:
    """Write cues as SubRip. Text is written as given (``<i>`` markup kept; ``\\n`` for line breaks).

    Written by hand rather than with pysubs2 so the bytes are exactly what the test asks for
    (pysubs2 would rewrite ASS overrides and drop cues it considers invalid, e.g. end < start).
    """
    blocks = []
    for i, (start, end, text, _speaker) in enumerate(_norm_cues(cues), 1):
        blocks.append(f"{i}\n{_srt_time(start)} --> {_srt_time(end)}\n{text}\n")
    return _write_text(Path(path), "\n".join(blocks), encoding, bom)


def _srt_time(ms: int, sep: str = ",") -> str:
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms_ = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms_:03d}"


def write_vtt(cues: Iterable[Any], path: str | Path, encoding: str = "utf-8", bom: bool = False) -> Path:
    """Write cues as WebVTT; a cue's speaker becomes a ``<v Name>`` voice span."""
    blocks = ["WEBVTT\n"]
    for start, end, text, speaker in _norm_cues(cues):
        body = f"<v {speaker}>{text}" if speaker else text
        blocks.append(f"{_srt_time(start, '.')} --> {_srt_time(end, '.')}\n{body}\n")
    return _write_text(Path(path), "\n".join(blocks), encoding, bom)


def write_ass(cues: Iterable[Any], path: str | Path, encoding: str = "utf-8", bom: bool = False) -> Path:
    """Write cues as ASS with pysubs2; a cue's speaker goes to the ``Name`` field, ``\\n`` to ``\\N``."""
    subs = _ssafile((s, e, t.replace("\n", "\\N"), sp) for s, e, t, sp in _norm_cues(cues))
    return _write_text(Path(path), subs.to_string("ass"), encoding, bom)


def write_subs(cues: Iterable[Any], path: str | Path, **kwargs: Any) -> Path:
    """Write cues in the format the suffix names (``.srt``, ``.vtt``, ``.ass``/``.ssa``)."""
    suffix = Path(path).suffix.lower()
    writer = {".srt": write_srt, ".vtt": write_vtt, ".ass": write_ass, ".ssa": write_ass}[suffix]
    return writer(cues, path, **kwargs)


# ------------------------------------------------------------------------------------------------- media

_AUDIO_CODECS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    ".m4a": ["-c:a", "aac", "-b:a", "64k"],
    ".aac": ["-c:a", "aac", "-b:a", "64k"],
    ".flac": ["-c:a", "flac"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".ogg": ["-c:a", "libvorbis"],
    ".opus": ["-c:a", "libopus", "-b:a", "32k"],
}


def make_audio(path: str | Path, wav: str | Path) -> Path:
    """Encode a WAV into an audio-only file whose format the suffix names (mp3, m4a, flac, wav, ogg, opus)."""
    path = Path(path)
    codec = _AUDIO_CODECS[path.suffix.lower()]
    _ffmpeg("-i", str(wav), "-map", "0:a", *codec, str(path))
    return path


def _video_args(container: str) -> tuple[list[str], list[str]]:
    if container == ".webm":
        return (
            ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "100k"],
            ["-c:a", "libopus", "-b:a", "32k"],
        )
    if container == ".avi":
        return (["-c:v", "mpeg4", "-q:v", "10"], ["-c:a", "libmp3lame", "-b:a", "64k"])
    return (
        ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"],
        ["-c:a", "aac", "-b:a", "64k"],
    )


def _default_subs_codec(container: str) -> str:
    return {".mp4": "mov_text", ".m4v": "mov_text", ".mov": "mov_text", ".webm": "webvtt"}.get(
        container, "subrip"
    )


def make_video(
    path: str | Path,
    audio_wav: str | Path | None,
    *,
    subs: str | Path | Sequence[str | Path] | None = None,
    subs_codec: str | Sequence[str] | None = None,
    lang: str | Sequence[str | None] | None = "eng",
    subs_title: str | Sequence[str | None] | None = None,
    default_sub: int | None = None,
    second_audio: str | Path | None = None,
    fps: str = "25",
    size: str = "160x120",
    duration_s: float | None = None,
    timecode: str | None = None,
    pattern: str = "testsrc2",
) -> Path:
    """Make a small video file: lavfi test pattern + audio + optional embedded subtitle streams.

    Args:
        path: output; container from the suffix (``.mp4``, ``.mov``, ``.mkv``, ``.webm``, ``.avi``).
        audio_wav: the first audio stream (``None`` for a video without sound).
        subs: one subtitle file or several (each becomes a stream, in order).
        subs_codec: ``mov_text`` (mp4/mov), ``subrip``/``ass`` (mkv), ``webvtt`` (webm/mkv), one for all
            streams or one per stream; default: the container's natural text codec.
        lang: ISO 639-2 language tag(s) per subtitle stream (one value applies to all).
        subs_title: optional stream title(s).
        default_sub: ordinal of the subtitle stream to flag as default (others are cleared).
        second_audio: optional second audio stream (e.g. a tone, for ``--audio-stream 1`` tests).
        fps: video frame rate as ffmpeg reads it (``"25"``, ``"30000/1001"``).
        size: ``WxH``.
        duration_s: length; default the first audio's length (or 2 s without audio).
        timecode: start timecode to write (``01:00:00:00`` or ``01:00:00;00`` drop-frame).
        pattern: lavfi source, ``testsrc2`` or ``color``.

    Returns:
        ``path`` as a :class:`Path`.
    """
    path = Path(path)
    container = path.suffix.lower()
    vcodec, acodec = _video_args(container)
    sub_files = [] if subs is None else ([subs] if isinstance(subs, str | Path) else list(subs))
    if duration_s is None:
        duration_s = wav_duration_ms(audio_wav) / 1000 if audio_wav is not None else 2.0
    src = f"testsrc2=size={size}:rate={fps}" if pattern == "testsrc2" else f"color=c=blue:s={size}:r={fps}"
    args: list[str] = ["-f", "lavfi", "-i", src]
    maps: list[str] = ["-map", "0:v"]
    n_in = 1
    if audio_wav is not None:
        args += ["-i", str(audio_wav)]
        maps += ["-map", f"{n_in}:a"]
        n_in += 1
    if second_audio is not None:
        args += ["-i", str(second_audio)]
        maps += ["-map", f"{n_in}:a"]
        n_in += 1
    for sf in sub_files:
        args += ["-i", str(sf)]
        maps += ["-map", f"{n_in}:s"]
        n_in += 1
    meta: list[str] = []
    if sub_files:
        codecs: list[str] = (
            [str(c) for c in subs_codec]
            if isinstance(subs_codec, list | tuple)
            else [str(subs_codec or _default_subs_codec(container))] * len(sub_files)
        )
        for i, codec in enumerate(codecs):
            meta += [f"-c:s:{i}", codec]
        langs = list(lang) if isinstance(lang, list | tuple) else [lang] * len(sub_files)
        titles = list(subs_title) if isinstance(subs_title, list | tuple) else [subs_title] * len(sub_files)
        for i, (lg, title) in enumerate(zip(langs, titles, strict=False)):
            if lg:
                meta += [f"-metadata:s:s:{i}", f"language={lg}"]
            if title:
                meta += [f"-metadata:s:s:{i}", f"title={title}"]
            if default_sub is not None:
                meta += [f"-disposition:s:{i}", "default" if i == default_sub else "0"]
    if timecode:
        meta += ["-timecode", timecode]
    audio_args = acodec if (audio_wav is not None or second_audio is not None) else []
    _ffmpeg(*args, *maps, *vcodec, "-g", "50", *audio_args, *meta, "-t", f"{duration_s:.3f}", str(path))
    return path


def make_no_audio_video(path: str | Path, seconds: float = 2.0, **kwargs: Any) -> Path:
    """A video with no audio stream at all."""
    return make_video(path, None, duration_s=seconds, **kwargs)


def truncate(path: str | Path, out: str | Path, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``path``'s bytes to ``out`` (a truncated/corrupt media file)."""
    data = Path(path).read_bytes()
    out = Path(out)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def garbage(path: str | Path, n_bytes: int = 4096, seed: int = 0) -> Path:
    """Random bytes (for 'not media' / 'binary subtitle' tests)."""
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes())
    return path


def long_speech(
    path: str | Path,
    minutes: float,
    *,
    srt: str | Path | None = None,
    lines: Sequence[str] = LONG_LINES,
    gap_s: float = 0.6,
) -> tuple[Path, Path, list[tuple[int, int, str]]]:
    """A long speech file made cheaply: speak ``lines`` once, then loop that clip with ``-stream_loop``.

    Args:
        path: output (any audio/video suffix ffmpeg can write audio to; ``.wav`` is fastest).
        minutes: target length.
        srt: where to write the matching SRT (default ``path`` with ``.srt``).
        lines: sentences in the loop.
        gap_s: silence between sentences.

    Returns:
        ``(media_path, srt_path, cues)`` with cues placed exactly as in the looped audio.
    """
    path = Path(path)
    srt_path = Path(srt) if srt is not None else path.with_suffix(".srt")
    target_ms = round(minutes * 60_000)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.wav"
        base = concat_speech(list(lines), clip, gap_s=gap_s, lead_s=gap_s / 2, tail_s=gap_s / 2)
        with wave.open(str(clip), "rb") as w:
            clip_samples = w.getnframes()
        loops = -(-target_ms * SAMPLE_RATE // (clip_samples * 1000))  # ceil
        out_args = _AUDIO_CODECS.get(path.suffix.lower(), ["-c:a", "aac", "-b:a", "64k"])
        _ffmpeg(
            "-stream_loop",
            str(loops - 1),
            "-i",
            str(clip),
            "-t",
            f"{target_ms / 1000:.3f}",
            *out_args,
            str(path),
        )
    cues: list[tuple[int, int, str]] = []
    for k in range(loops):
        offset = k * clip_samples * 1000 / SAMPLE_RATE
        for s, e, t in base:
            start, end = round(s + offset), round(e + offset)
            if end <= target_ms:
                cues.append((start, end, t))
    write_srt(cues, srt_path)
    return path, srt_path, cues


def have_tools() -> bool:
    """Whether ffmpeg, ffprobe and espeak-ng are on PATH (tests skip cleanly otherwise)."""
    return all(shutil.which(t) for t in ("ffmpeg", "ffprobe", "espeak-ng"))
