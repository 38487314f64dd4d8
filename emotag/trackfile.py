"""The saved form of a :class:`~emotag.timeline.Track`: versioned JSON that round-trips exactly.

``emotag tag`` writes ``name.emotag.json`` next to the tagged SRT; ``emotag export`` reads it back and renders
any other format without running the model again. So this file is the lossless record of a run, and
``track_from_dict(track_to_dict(t)) == t`` holds for every Track (floats are written with Python's
shortest round-tripping ``repr``, the frame rate as an exact ``"30000/1001"`` string).

Schema ``emotag.track/1`` (top level)::

    schema        "emotag.track/1"
    emotag        version of emotag that wrote it
    media         {path, duration_ms, fps ("30000/1001" or null), sample_rate, start_timecode,
                   drop_frame, has_video, width, height}
    model, source model name and where the cues came from
    labels        the label order (always emotag.timeline.LABELS)
    warnings      notes gathered while tagging
    cues          list of per-cue objects (below)

Per cue: ``index, start_ms, end_ms, start, end`` (SRT-style ``HH:MM:SS,mmm`` strings, for people; the
integer fields are authoritative), ``text`` (original markup), ``plain``, ``speaker``, ``label``,
``confidence``, ``probs {label: p}``, ``valence``, ``arousal``, ``text_evidence`` and ``audio_evidence``
(``{probs, valence, arousal, label}`` or null), ``mismatch``, ``mismatched``. Readers ignore unknown keys,
so later minor additions stay readable; a different major schema is refused with a clear error.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from emotag.errors import DataError, InputError
from emotag.timecode import ms_to_srt, rate_to_string
from emotag.timeline import LABELS, Cue, Emotion, Media, TaggedCue, Track

__all__ = ["SCHEMA", "dumps", "load_track", "loads", "track_from_dict", "track_to_dict"]

#: Schema identifier written into every file; the number after ``/`` changes on breaking changes.
SCHEMA = "emotag.track/1"


def emotag_version() -> str:
    """The installed emotag version, or the package's ``__version__``, or ``"0+unknown"``."""
    from importlib import metadata

    try:
        return metadata.version("emotag")
    except metadata.PackageNotFoundError:
        pass
    try:
        import emotag

        return str(getattr(emotag, "__version__", "0+unknown"))
    except Exception:  # pragma: no cover - emotag/__init__ failing to import is not our problem here
        return "0+unknown"


def _emotion_to_dict(emotion: Emotion) -> dict[str, Any]:
    return {
        "probs": emotion.as_dict(),
        "valence": emotion.valence,
        "arousal": emotion.arousal,
        "label": emotion.label,
    }


def _cue_to_dict(tc: TaggedCue) -> dict[str, Any]:
    cue = tc.cue
    return {
        "index": cue.index,
        "start_ms": cue.start_ms,
        "end_ms": cue.end_ms,
        "start": ms_to_srt(cue.start_ms),
        "end": ms_to_srt(max(cue.end_ms, 0)),
        "text": cue.text,
        "plain": cue.plain,
        "speaker": cue.speaker,
        "label": tc.label,
        "confidence": tc.confidence,
        "probs": tc.emotion.as_dict(),
        "valence": tc.emotion.valence,
        "arousal": tc.emotion.arousal,
        "text_evidence": None if tc.text is None else _emotion_to_dict(tc.text),
        "audio_evidence": None if tc.audio is None else _emotion_to_dict(tc.audio),
        "mismatch": tc.mismatch,
        "mismatched": tc.mismatched,
    }


def track_to_dict(track: Track) -> dict[str, Any]:
    """Turn a Track into the JSON-ready ``emotag.track/1`` dict.

    Args:
        track: the tagged track.

    Returns:
        A dict of plain JSON types (str, int, float, bool, None, list, dict).
    """
    m = track.media
    return {
        "schema": SCHEMA,
        "emotag": emotag_version(),
        "media": {
            "path": m.path,
            "duration_ms": m.duration_ms,
            "fps": None if m.fps is None else rate_to_string(m.fps),
            "sample_rate": m.sample_rate,
            "start_timecode": m.start_timecode,
            "drop_frame": m.drop_frame,
            "has_video": m.has_video,
            "width": m.width,
            "height": m.height,
        },
        "model": track.model,
        "source": track.source,
        "labels": list(track.labels),
        "warnings": list(track.warnings),
        "cues": [_cue_to_dict(tc) for tc in track.cues],
    }


class _Reader:
    """Typed field access with one-line DataErrors that say where the problem is."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, problem: str) -> DataError:
        return DataError(f"{self.origin}: {where}: {problem}; re-create it with `emotag tag`")

    def obj(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected an object, got {type(value).__name__}")
        return value

    def get(self, d: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in d:
            raise self.fail(where, f"missing field {key!r}")
        return d[key]

    def int_(self, d: Mapping[str, Any], key: str, where: str) -> int:
        v = self.get(d, key, where)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(where, f"{key!r} must be an integer, got {v!r}")
        return v

    def float_(self, d: Mapping[str, Any], key: str, where: str) -> float:
        v = self.get(d, key, where)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(where, f"{key!r} must be a number, got {v!r}")
        return float(v)

    def bool_(self, d: Mapping[str, Any], key: str, where: str, default: bool | None = None) -> bool:
        if key not in d and default is not None:
            return default
        v = self.get(d, key, where)
        if not isinstance(v, bool):
            raise self.fail(where, f"{key!r} must be true or false, got {v!r}")
        return v

    def str_(self, d: Mapping[str, Any], key: str, where: str) -> str:
        v = self.get(d, key, where)
        if not isinstance(v, str):
            raise self.fail(where, f"{key!r} must be a string, got {v!r}")
        return v

    def opt_str(self, d: Mapping[str, Any], key: str, where: str) -> str | None:
        v = d.get(key)
        if v is not None and not isinstance(v, str):
            raise self.fail(where, f"{key!r} must be a string or null, got {v!r}")
        return v

    def opt_int(self, d: Mapping[str, Any], key: str, where: str) -> int | None:
        v = d.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise self.fail(where, f"{key!r} must be an integer or null, got {v!r}")
        return v

    def probs(self, value: Any, where: str) -> tuple[float, ...]:
        d = self.obj(value, where)
        out = []
        for label in LABELS:
            if label not in d:
                raise self.fail(where, f"probs lacks label {label!r}")
            p = d[label]
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p):
                raise self.fail(where, f"probability of {label!r} must be a number, got {p!r}")
            out.append(float(p))
        return tuple(out)

    def emotion(self, d: Mapping[str, Any], where: str) -> Emotion:
        try:
            return Emotion(
                self.probs(self.get(d, "probs", where), where),
                self.float_(d, "valence", where),
                self.float_(d, "arousal", where),
            )
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    def opt_emotion(self, d: Mapping[str, Any], key: str, where: str) -> Emotion | None:
        v = d.get(key)
        if v is None:
            return None
        return self.emotion(self.obj(v, f"{where}.{key}"), f"{where}.{key}")


def track_from_dict(d: Mapping[str, Any], origin: str = "track") -> Track:
    """Rebuild a Track from an ``emotag.track/1`` dict (inverse of :func:`track_to_dict`).

    Args:
        d: the parsed JSON object.
        origin: the file name to put in error messages.

    Returns:
        The Track, equal to the one that was saved.

    Raises:
        DataError: when the schema is missing or different, or a field is missing or mistyped.
    """
    r = _Reader(origin)
    d = r.obj(d, "top level")
    schema = d.get("schema")
    if not isinstance(schema, str) or not schema.startswith("emotag.track/"):
        raise DataError(
            f'{origin}: not an emotag track file (no "schema": {SCHEMA!r}); pass the .emotag.json '
            "written by `emotag tag`"
        )
    if schema.split("/", 1)[1].split(".")[0] != SCHEMA.split("/", 1)[1]:
        raise DataError(f"{origin}: schema {schema!r} is not supported by this emotag (reads {SCHEMA!r})")
    labels = r.get(d, "labels", "top level")
    if not isinstance(labels, list) or tuple(labels) != LABELS:
        raise r.fail("labels", f"expected {list(LABELS)}, got {labels!r}")

    md = r.obj(r.get(d, "media", "top level"), "media")
    fps_raw = md.get("fps")
    fps: Fraction | None
    if fps_raw is None:
        fps = None
    else:
        try:
            fps = Fraction(str(fps_raw))
        except (ValueError, ZeroDivisionError):
            raise r.fail("media", f'fps must be a rate like "30000/1001", got {fps_raw!r}') from None
        if fps <= 0:
            raise r.fail("media", f"fps must be positive, got {fps_raw!r}")
    media = Media(
        path=r.str_(md, "path", "media"),
        duration_ms=r.int_(md, "duration_ms", "media"),
        fps=fps,
        sample_rate=r.opt_int(md, "sample_rate", "media") or 16000,
        start_timecode=r.opt_str(md, "start_timecode", "media"),
        drop_frame=r.bool_(md, "drop_frame", "media", default=False),
        has_video=r.bool_(md, "has_video", "media", default=False),
        width=r.opt_int(md, "width", "media"),
        height=r.opt_int(md, "height", "media"),
    )

    cues_raw = r.get(d, "cues", "top level")
    if not isinstance(cues_raw, list):
        raise r.fail("cues", "must be a list")
    cues = []
    for i, raw in enumerate(cues_raw):
        where = f"cues[{i}]"
        c = r.obj(raw, where)
        try:
            cue = Cue(
                index=r.int_(c, "index", where),
                start_ms=r.int_(c, "start_ms", where),
                end_ms=r.int_(c, "end_ms", where),
                text=r.str_(c, "text", where),
                speaker=r.opt_str(c, "speaker", where),
            )
        except ValueError as e:
            raise r.fail(where, str(e)) from None
        cues.append(
            TaggedCue(
                cue=cue,
                emotion=r.emotion(c, where),
                text=r.opt_emotion(c, "text_evidence", where),
                audio=r.opt_emotion(c, "audio_evidence", where),
                mismatch=r.float_(c, "mismatch", where) if "mismatch" in c else 0.0,
                mismatched=r.bool_(c, "mismatched", where, default=False),
            )
        )
    warnings = d.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise r.fail("warnings", "must be a list of strings")
    return Track(
        media=media,
        cues=tuple(cues),
        model=r.str_(d, "model", "top level"),
        source=r.str_(d, "source", "top level"),
        labels=LABELS,
        warnings=tuple(warnings),
    )


def dumps(track: Track, indent: int | None = 2) -> str:
    """The Track as UTF-8 JSON text (non-ASCII kept), ending with a newline.

    Args:
        track: the track.
        indent: pretty-print indent; ``None`` writes one line (for several tracks on stdout).
    """
    return json.dumps(track_to_dict(track), ensure_ascii=False, indent=indent, allow_nan=False) + "\n"


def loads(text: str, origin: str = "track") -> Track:
    """Parse JSON text written by :func:`dumps`.

    Raises:
        DataError: when the text is not JSON or not an emotag track.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"{origin}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); pass the .emotag.json "
            "written by `emotag tag`"
        ) from None
    return track_from_dict(data, origin)


def load_track(path: str | os.PathLike[str]) -> Track:
    """Read a ``.emotag.json`` file back into a Track.

    Args:
        path: the file ``emotag tag`` wrote.

    Returns:
        The Track.

    Raises:
        InputError: the file is missing, a directory, unreadable or not UTF-8.
        DataError: the file is not an emotag track (bad JSON, wrong schema, missing fields).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(str(p), "no such file", "pass the .emotag.json written by `emotag tag`")
    if p.is_dir():
        raise InputError(str(p), "is a directory", "pass the .emotag.json file inside it")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(str(p), "is not UTF-8 text", "pass the .emotag.json from `emotag tag`") from None
    except OSError as e:
        raise InputError(str(p), f"cannot be read ({e.strerror or e})") from None
    return loads(text, str(p))
