"""Probe media and decode its audio to 16 kHz mono float32, through the system ffmpeg/ffprobe.

Why the ffmpeg binaries and not a Python decoder:

* ffprobe's JSON gives everything exporters need (exact ``r_frame_rate`` fractions, the ``timecode``
  tag of the video/format/``tmcd`` streams, per-stream language/title/default flags) for every container
  users bring (mp4/mov/mkv/webm/avi/mp3/m4a/flac/wav...). PyAV would do too, but ffmpeg is what
  moviepy and pydub (named on the design card) shell out to anyway.
* Audio is decoded **once**, resampled and downmixed by ffmpeg itself (``-ac 1 -ar 16000 -f f32le``)
  and read from the pipe straight into one preallocated numpy array sized from the probed duration
  (grown only if the probe under-estimated). A multi-hour file is therefore held in memory once,
  at 64 kB per second of audio, with no list of chunks to concatenate.

Measured on this host (2 shared cores, Debian ffmpeg 5.1; a 10-minute espeak-ng speech file, AAC 64 kb/s
``.m4a``, made by ``tests/mediagen.long_speech``; wall time and peak RSS of the Python process, which idles
at 30 MB with numpy imported; the result is 9.6 M float32 samples = 38 MB):

=========================================================================  ========  =========
loader (to 16 kHz mono float32)                                            time      peak RSS
=========================================================================  ========  =========
moviepy 2.1 ``AudioFileClip(p, fps=16000).to_soundarray()`` + mean         1.35 s    348 MB
pydub 0.25 ``AudioSegment.from_file(p).set_channels(1).set_frame_rate()``  0.43 s    163 MB
``load_audio`` (ffmpeg pipe into one preallocated array)                   0.41 s     70 MB
=========================================================================  ========  =========

moviepy decodes in stereo float64 chunks that it stacks; pydub holds the whole file as a WAV in memory,
copies it into an ``AudioSegment``, resamples in Python and copies again into an array. The direct pipe is
as fast as the best and holds the audio once, so it is what emotag uses; neither moviepy nor pydub is
needed here.

Timeline note: sample 0 of the returned array is the first decoded sample. Container start offsets are not
compensated; measured on generated files they are at most one AAC priming frame (64 ms at 16 kHz, AAC in
Matroska), where the file's subtitle timestamps are shifted by the same muxer, so cues and audio still agree.

Hand-written on purpose: frame-rate snapping (ffprobe reports e.g. ``2997/100`` or ``120000/4001`` for
some NTSC files; rates within 0.1 % of a standard rate are snapped to the exact ``30000/1001`` etc.) and
the truncation check (ffmpeg exits 0 on a truncated Matroska/MPEG-TS file and just stops early, so a
decode that falls well short of the probed duration is reported as a :class:`MediaError`).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from emotag.errors import InputError, MediaError, MissingDependencyError, SubtitleError
from emotag.timeline import Media

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "BITMAP_SUBTITLE_CODECS",
    "Probe",
    "StreamInfo",
    "check_readable",
    "extract_subtitle_stream",
    "load_audio",
    "probe",
    "to_mono",
]

#: Subtitle codecs that carry pictures, not text: they need OCR (or a sidecar file) before emotag reads them.
BITMAP_SUBTITLE_CODECS = frozenset(
    {
        "hdmv_pgs_subtitle",
        "pgssub",
        "dvd_subtitle",
        "dvdsub",
        "dvb_subtitle",
        "dvbsub",
        "xsub",
        "dvb_teletext",
    }
)

#: Frame rates that ffprobe's approximations are snapped to.
_STANDARD_RATES = tuple(
    Fraction(n, d)
    for n, d in (
        (24000, 1001),
        (24, 1),
        (25, 1),
        (30000, 1001),
        (30, 1),
        (48, 1),
        (50, 1),
        (60000, 1001),
        (60, 1),
        (100, 1),
        (120000, 1001),
        (120, 1),
    )
)

_INSTALL_FFMPEG = (
    "install ffmpeg (apt install ffmpeg, brew install ffmpeg, or https://ffmpeg.org/download.html)"
)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One audio or subtitle stream of a media file.

    Attributes:
        index: the absolute stream index (ffprobe's ``index``, ffmpeg's ``-map 0:N``).
        ordinal: position among streams of the same kind (``-map 0:a:N`` / ``0:s:N``), 0-based.
        kind: ``"audio"`` or ``"subtitle"``.
        codec: ffprobe's ``codec_name`` (``aac``, ``mov_text``, ``subrip``, ``hdmv_pgs_subtitle``...).
        language: the stream's ``language`` tag (``eng``, ``fre``...), ``None`` if absent or ``und``.
        title: the stream's ``title`` tag, if any.
        default: whether the stream carries the ``default`` disposition.
        forced: whether the stream carries the ``forced`` disposition (forced-only subtitles).
        is_text: for subtitles, whether the codec is text (not a bitmap needing OCR); ``False`` for audio.
        channels: audio channel count (0 for subtitles).
        sample_rate: audio sample rate in Hz (0 for subtitles).
        duration_ms: the stream's own duration when the container says, else ``None``.
    """

    index: int
    ordinal: int
    kind: str
    codec: str
    language: str | None = None
    title: str | None = None
    default: bool = False
    forced: bool = False
    is_text: bool = False
    channels: int = 0
    sample_rate: int = 0
    duration_ms: int | None = None

    def describe(self) -> str:
        """Short human form, e.g. ``2 (mov_text, eng, "English SDH")``."""
        bits = [self.codec]
        if self.language:
            bits.append(self.language)
        if self.title:
            bits.append(repr(self.title))
        if self.default:
            bits.append("default")
        return f"{self.ordinal} ({', '.join(bits)})"


@dataclass(frozen=True, slots=True)
class Probe:
    """What ffprobe says about a media file: the core :class:`Media` plus its audio/subtitle streams.

    Attributes:
        media: the probed media as the rest of emotag sees it.
        audio_streams: audio streams in file order.
        subtitle_streams: subtitle streams in file order.
        format_name: ffprobe's ``format_name`` (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``...).
    """

    media: Media
    audio_streams: tuple[StreamInfo, ...] = ()
    subtitle_streams: tuple[StreamInfo, ...] = ()
    format_name: str = ""

    @property
    def path(self) -> str:
        return self.media.path

    @property
    def duration_ms(self) -> int:
        return self.media.duration_ms

    @property
    def fps(self) -> Fraction | None:
        return self.media.fps

    @property
    def has_video(self) -> bool:
        return self.media.has_video

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_streams)

    @property
    def text_subtitle_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.subtitle_streams if s.is_text)


# ------------------------------------------------------------------------------------------------ checks


def check_readable(path: str | os.PathLike[str], *, what: str = "media file") -> Path:
    """Raise :class:`InputError` unless ``path`` is an existing, readable regular file.

    Args:
        path: the user-supplied path.
        what: how to name the file in the fix (``media file``, ``subtitle file``).

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        InputError: missing, a directory, not a regular file, or unreadable.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(str(path), "no such file", f"check the path of the {what}")
    if p.is_dir():
        raise InputError(str(path), "is a directory", f"pass a {what}, not a folder")
    if not p.is_file():
        raise InputError(str(path), "is not a regular file", f"pass a {what}")
    try:
        with p.open("rb") as fh:
            fh.read(1)
    except PermissionError:
        raise InputError(str(path), "permission denied", "make it readable (chmod +r) or copy it") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot be read ({exc.strerror or exc})", f"check the {what}") from None
    return p


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise MissingDependencyError(name, "reading audio and video files", _INSTALL_FFMPEG)
    return exe


def _ffmpeg_url(path: Path) -> str:
    # "file:" stops ffmpeg reading "a:b.mp4" as protocol "a" and "-x.mp4" as an option.
    return "file:" + str(path)


def _ffmpeg_input(exe: str, path: Path, stream_map: str) -> list[str]:
    """The common head of every ffmpeg call here: quiet, no stdin, one input, one mapped stream."""
    return [exe, "-nostdin", "-hide_banner", "-v", "error", "-i", _ffmpeg_url(path), "-map", stream_map]


def _last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no error message"


# ------------------------------------------------------------------------------------------------- probe


def probe(path: str | os.PathLike[str]) -> Probe:
    """Probe a media file with ffprobe.

    Args:
        path: a video or audio file.

    Returns:
        The :class:`Probe`: core :class:`Media` (duration of the first audio stream, else the container;
        exact frame rate; start timecode) plus audio and subtitle streams.

    Raises:
        InputError: the path is missing, a directory or unreadable.
        MediaError: ffprobe cannot parse it (corrupt, truncated, not media).
        MissingDependencyError: ffprobe is not installed.
    """
    p = check_readable(path)
    exe = _tool("ffprobe")
    proc = subprocess.run(
        [exe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", _ffmpeg_url(p)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise MediaError(
            str(path),
            f"ffmpeg cannot read it ({_last_line(stderr)})",
            "check that it is a complete audio/video file, or re-export it",
        )
    try:
        info = json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError:
        raise MediaError(str(path), "ffprobe returned unreadable output", "re-export the file") from None
    return _parse_probe(str(path), info)


_probe = probe  # reachable from functions whose ``probe`` parameter shadows the name


def _parse_probe(path: str, info: dict[str, Any]) -> Probe:
    streams: list[dict[str, Any]] = list(info.get("streams") or [])
    fmt: dict[str, Any] = dict(info.get("format") or {})
    if not streams:
        raise MediaError(path, "ffmpeg finds no audio or video streams in it", "pass an audio or video file")

    audio: list[StreamInfo] = []
    subs: list[StreamInfo] = []
    video: dict[str, Any] | None = None
    timecode: str | None = None
    for st in streams:
        kind = st.get("codec_type")
        tags = {str(k).lower(): v for k, v in (st.get("tags") or {}).items()}
        disp = st.get("disposition") or {}
        if kind == "video" and not disp.get("attached_pic") and video is None:
            video = st
        if kind in ("video", "data") and timecode is None and tags.get("timecode"):
            timecode = str(tags["timecode"])
        if kind not in ("audio", "subtitle"):
            continue
        lang = tags.get("language")
        codec = str(st.get("codec_name") or "unknown")
        same = audio if kind == "audio" else subs
        same.append(
            StreamInfo(
                index=int(st.get("index", 0)),
                ordinal=len(same),
                kind=str(kind),
                codec=codec,
                language=None if not lang or lang == "und" else str(lang),
                title=str(tags["title"]) if tags.get("title") else None,
                default=bool(disp.get("default")),
                forced=bool(disp.get("forced")),
                is_text=kind == "subtitle" and codec not in BITMAP_SUBTITLE_CODECS,
                channels=int(st.get("channels") or 0),
                sample_rate=int(st.get("sample_rate") or 0),
                duration_ms=_stream_duration_ms(st, tags),
            )
        )
    fmt_tags = {str(k).lower(): v for k, v in (fmt.get("tags") or {}).items()}
    if timecode is None and fmt_tags.get("timecode"):
        timecode = str(fmt_tags["timecode"])

    duration_ms = audio[0].duration_ms if audio and audio[0].duration_ms else None
    if duration_ms is None:
        duration_ms = _seconds_ms(fmt.get("duration"))
    if duration_ms is None and video is not None:
        vtags = {str(k).lower(): v for k, v in (video.get("tags") or {}).items()}
        duration_ms = _stream_duration_ms(video, vtags)

    fps = _frame_rate(video) if video is not None else None
    media = Media(
        path=path,
        duration_ms=duration_ms or 0,
        fps=fps,
        start_timecode=timecode,
        drop_frame=timecode is not None and (";" in timecode or "." in timecode),
        has_video=video is not None,
        width=int(video["width"]) if video is not None and video.get("width") else None,
        height=int(video["height"]) if video is not None and video.get("height") else None,
    )
    return Probe(media, tuple(audio), tuple(subs), str(fmt.get("format_name") or ""))


def _seconds_ms(value: Any) -> int | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return round(seconds * 1000)


def _stream_duration_ms(st: dict[str, Any], tags: dict[str, Any]) -> int | None:
    ms = _seconds_ms(st.get("duration"))
    if ms is not None:
        return ms
    # Matroska/WebM keep per-stream durations in a DURATION tag ("00:00:04.064000000").
    raw = tags.get("duration")
    if isinstance(raw, str) and raw.count(":") == 2:
        try:
            h, m, s = raw.split(":")
            return round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000) or None
        except ValueError:
            return None
    return None


def _parse_rate(value: Any) -> Fraction | None:
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def _frame_rate(video: dict[str, Any]) -> Fraction | None:
    r = _parse_rate(video.get("r_frame_rate"))
    avg = _parse_rate(video.get("avg_frame_rate"))
    # r_frame_rate is exact for constant-rate video; it is a timebase-like 90000/1 or 1000/1 for some VFR
    # files, where the average is the better answer.
    rate = r if r is not None and r <= 240 else avg
    if rate is None:
        return None
    for std in _STANDARD_RATES:
        if abs(rate - std) / std < Fraction(1, 1000):
            return std
    return rate


# ------------------------------------------------------------------------------------------------- audio


def _resolve_audio_stream(path: str, pr: Probe, stream: int | None) -> StreamInfo:
    if not pr.audio_streams:
        raise MediaError(path, "has no audio stream", "pick a file with sound or pass --audio-stream")
    n = 0 if stream is None else stream
    if not 0 <= n < len(pr.audio_streams):
        listing = ", ".join(s.describe() for s in pr.audio_streams)
        raise MediaError(
            path,
            f"has no audio stream {n} (audio streams: {listing})",
            f"pass --audio-stream between 0 and {len(pr.audio_streams) - 1}",
        )
    return pr.audio_streams[n]


def load_audio(
    path: str | os.PathLike[str],
    *,
    stream: int | None = None,
    sample_rate: int = 16000,
    probe: Probe | None = None,
) -> npt.NDArray[np.float32]:
    """Decode one audio stream of a media file to mono float32 at ``sample_rate``.

    ffmpeg decodes, downmixes and resamples in one pass; samples are read from its pipe straight into a
    preallocated array sized from the probed duration (grown by half if the probe under-estimated).

    Args:
        path: the media file.
        stream: which audio stream, 0-based among audio streams (``-map 0:a:N``); ``None`` = the first.
        sample_rate: output rate in Hz.
        probe: a :func:`probe` result for ``path`` to reuse (probed here if ``None``).

    Returns:
        A 1-D ``float32`` array in [-1, 1].

    Raises:
        InputError: the path is missing, a directory or unreadable.
        MediaError: no (such) audio stream, ffmpeg fails to decode, or the file is truncated.
        MissingDependencyError: ffmpeg is not installed.
    """
    import numpy as np

    pr = probe if probe is not None else _probe(path)
    p = check_readable(path)
    st = _resolve_audio_stream(str(path), pr, stream)
    exe = _tool("ffmpeg")
    expected_ms = st.duration_ms or pr.duration_ms
    capacity = max(sample_rate, math.ceil((expected_ms / 1000 + 1.0) * sample_rate))
    buf = np.empty(capacity, dtype=np.float32)
    raw = buf.view(np.uint8)
    nbytes = 0
    cmd = [
        *_ffmpeg_input(exe, p, f"0:a:{st.ordinal}"),
        "-vn",
        "-sn",
        "-dn",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-c:a",
        "pcm_f32le",
        "-f",
        "f32le",
        "pipe:1",
    ]
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL)
        stdout = cast(io.BufferedReader, proc.stdout)
        try:
            while True:
                if nbytes + 4 > raw.size:  # the probe under-estimated: grow by half, once in a while
                    grown = np.empty(buf.size + buf.size // 2 + sample_rate, dtype=np.float32)
                    grown.view(np.uint8)[:nbytes] = raw[:nbytes]
                    buf, raw = grown, grown.view(np.uint8)
                got = stdout.readinto(raw.data[nbytes:])
                if not got:
                    break
                nbytes += got
        finally:
            stdout.close()
            rc = proc.wait()
        errf.seek(0)
        stderr = errf.read().decode("utf-8", "replace")
    n = nbytes // 4
    if rc != 0:
        raise MediaError(
            str(path),
            f"ffmpeg cannot decode its audio ({_last_line(stderr)})",
            "check that the file is complete, or re-export it",
        )
    got_ms = n * 1000 // sample_rate
    if expected_ms and expected_ms - got_ms > max(1000, expected_ms // 50):
        hint = f": {_last_line(stderr)}" if stderr.strip() else ""
        raise MediaError(
            str(path),
            f"audio ends at {got_ms / 1000:.1f} s but the file says {expected_ms / 1000:.1f} s"
            f" (truncated?{hint})",
            "re-download or re-export the file",
        )
    if n == 0:
        raise MediaError(str(path), "decodes to no audio samples", "check that it plays, or pick another")
    out = buf[:n]
    if buf.size - n > max(sample_rate * 2, n // 10):
        out = out.copy()  # release a badly over-sized buffer
    np.clip(out, -1.0, 1.0, out=out)  # lossy decoders overshoot full scale a little
    return out


def to_mono(samples: npt.ArrayLike, sample_rate: int, target_rate: int = 16000) -> npt.NDArray[np.float32]:
    """Bring an in-memory waveform to the form :func:`load_audio` returns (mono float32 at ``target_rate``).

    Args:
        samples: ``(n,)`` or ``(n, channels)`` array; integer PCM is scaled to [-1, 1].
        sample_rate: its rate in Hz.
        target_rate: the wanted rate.

    Returns:
        A 1-D ``float32`` array.
    """
    import numpy as np

    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    if sample_rate != target_rate:
        from scipy.signal import resample_poly

        g = math.gcd(int(sample_rate), int(target_rate))
        x = resample_poly(x, target_rate // g, sample_rate // g).astype(np.float32)
    return np.ascontiguousarray(x)


# --------------------------------------------------------------------------------------------- subtitles


def extract_subtitle_stream(path: str | os.PathLike[str], ordinal: int, *, probe: Probe | None = None) -> str:
    """Extract an embedded text subtitle stream as subtitle text.

    ASS/SSA streams come out as ASS (keeping styles and the speaker ``Name`` field); every other text codec
    (mov_text, subrip, webvtt...) comes out as SRT, which ffmpeg converts markup into (``<i>``, ``<b>``).

    Args:
        path: the media file.
        ordinal: which subtitle stream, 0-based among subtitle streams (``-map 0:s:N``).
        probe: a :func:`probe` result to reuse.

    Returns:
        The subtitle file's text (SRT or ASS).

    Raises:
        SubtitleError: no such stream, a bitmap stream (PGS/VobSub/DVB), or ffmpeg fails to extract it.
    """
    pr = probe if probe is not None else _probe(path)
    p = check_readable(path)
    if not 0 <= ordinal < len(pr.subtitle_streams):
        listing = ", ".join(s.describe() for s in pr.subtitle_streams) or "none"
        raise SubtitleError(
            str(path),
            f"has no subtitle stream {ordinal} (subtitle streams: {listing})",
            "pick one of the listed streams with --subs-stream",
        )
    st = pr.subtitle_streams[ordinal]
    if not st.is_text:
        raise SubtitleError(
            str(path),
            f"subtitle stream {st.describe()} is a bitmap format that needs OCR",
            "pass a text subtitle file with --subs (e.g. made with an OCR tool such as Subtitle Edit)",
        )
    fmt = "ass" if st.codec in ("ass", "ssa") else "srt"
    exe = _tool("ffmpeg")
    proc = subprocess.run(
        [
            *_ffmpeg_input(exe, p, f"0:s:{ordinal}"),
            "-f",
            fmt,
            "pipe:1",
        ],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise SubtitleError(
            str(path),
            f"cannot extract subtitle stream {st.describe()} "
            f"({_last_line(proc.stderr.decode('utf-8', 'replace'))})",
            "extract it with another tool and pass it with --subs",
        )
    return proc.stdout.decode("utf-8", "replace")
