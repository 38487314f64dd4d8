"""Exporters: turn a :class:`~emotag.timeline.Track` into editor and subtitle formats.

Design (see docs/STYLE.md §3):

* An exporter is any object with ``name``, ``suffix``, ``default_filename_suffix``, ``description``,
  ``frame_based`` and ``render(track, options) -> str`` (the :class:`Exporter` protocol). Returning a
  string, like OpenTimelineIO's ``write_to_string``, keeps exporters pure and golden-testable; this module
  alone touches the filesystem (:func:`export`), atomically and only after everything rendered.
* Built-ins are listed as import paths in :data:`BUILTINS` and imported on first use, the way llm's
  ``DEFAULT_PLUGINS`` and OTIO's ``PythonPlugin.module()`` do; third-party exporters come from the
  ``emotag.exporters`` entry-point group (discovered by :func:`emotag.registry.discover`, shared with the
  model registry) and go through the same loader. A broken extension is logged and
  skipped when listing (OTIO ``load_manifest``); asking for it by name raises :class:`ExportError` with the
  import failure, which says more than "unknown". ``EMOTAG_DISABLE_EXTENSIONS=1`` turns extensions off
  (cf. ``OTIO_DISABLE_ENTRYPOINTS_PLUGINS``). A built-in name always wins over an extension's.
* Adding a format (third party): 1. write a class with the protocol's attributes and ``render``;
  2. expose an instance (or the class; it is instantiated without arguments); 3. declare it in
  ``pyproject.toml`` as ``[project.entry-points."emotag.exporters"] myfmt = "pkg.module:EXPORTER"``;
  4. check it shows in ``emotag formats``.
* Frames are computed only here and in exporters, with exact Fraction rates (:mod:`emotag.timecode`), via
  :func:`timing`, so every frame-based format resolves rate, drop-frame and start timecode identically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from emotag import atomicfile
from emotag.errors import (
    EmotagError,
    ExportError,
    OutputError,
    OutputExistsError,
    UnknownExporterError,
)
from emotag.palette import DEFAULT_PALETTE, Palette, palette_from_mapping
from emotag.registry import DISABLE_ENV, Entry, discover
from emotag.selection import Region, merge_regions, select_cues
from emotag.timecode import (
    frames_to_tc,
    is_drop_frame_rate,
    rate_from_string,
    tc_is_drop,
    tc_to_frames,
)
from emotag.timeline import Media, TaggedCue, Track

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "ExportOptions",
    "Exporter",
    "TagStyle",
    "Timing",
    "available",
    "check_targets",
    "export",
    "export_many",
    "extensions",
    "get_exporter",
    "infer_format",
    "names",
    "registry_entries",
    "output_path",
    "render",
    "timing",
    "write_all",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "emotag.exporters"

#: Built-in formats: name -> ``module:attribute``; imported on first use only.
BUILTINS: Mapping[str, str] = {
    "srt": "emotag.exporters.srt:EXPORTER",
    "vtt": "emotag.exporters.vtt:EXPORTER",
    "ass": "emotag.exporters.ass:EXPORTER",
    "json": "emotag.exporters.jsonfmt:EXPORTER",
    "jsonl": "emotag.exporters.jsonfmt:JSONL_EXPORTER",
    "csv": "emotag.exporters.csvfmt:EXPORTER",
    "edl": "emotag.exporters.edl:EXPORTER",
    "resolve-edl": "emotag.exporters.resolve_edl:EXPORTER",
    "selects-edl": "emotag.exporters.edl:SELECTS_EXPORTER",
    "fcpxml": "emotag.exporters.fcpxml:EXPORTER",
    "fcp7xml": "emotag.exporters.fcp7xml:EXPORTER",
    "avid": "emotag.exporters.markerlists:AVID_EXPORTER",
    "audacity": "emotag.exporters.markerlists:AUDACITY_EXPORTER",
    "reaper": "emotag.exporters.markerlists:REAPER_EXPORTER",
    "audition": "emotag.exporters.markerlists:AUDITION_EXPORTER",
    "otio": "emotag.exporters.otiofmt:EXPORTER",
    "chapters": "emotag.exporters.chapters:EXPORTER",
}

TagStyle = Literal["prefix", "color", "none"]
TAG_STYLES: tuple[str, ...] = ("prefix", "color", "none")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Everything a user can ask of an export; every exporter reads the fields that apply to it.

    Attributes:
        fps: frame-rate override (the timeline's rate); needed for frame-based formats on audio-only media.
        start_tc: start timecode of the timeline (record side of EDLs, FCPXML ``tcStart``); the default is
            the media's own timecode, or each format's host default (Resolve 01:00:00:00).
        drop_frame: force drop-frame on/off; by default follows ``start_tc``'s separator, then the media.
        tag_style: how subtitles show the emotion: ``prefix`` (``[joy 0.82] ``), ``color`` (a
            ``<font color>``/class span) or ``none``.
        min_confidence: markers only for cues at least this confident.
        emotions: markers only for these labels (``None``: all).
        skip_neutral: no markers for neutral cues.
        mismatch_only: markers only for voice/words mismatches.
        mismatch_threshold: re-flag mismatches at this score instead of the model's calibrated threshold
            (higher: fewer, surer flags; ``None``: keep the flags the model set). Applies to every format.
        merge_gap_ms: merge consecutive same-emotion cues within this gap into one region (``None``: don't).
        palette: a :class:`~emotag.palette.Palette` or a ``{label: colour}`` mapping (see emotag.palette).
        handles_ms: handles added before and after each selected moment in ``selects-edl``.
        title: title of the EDL/sequence/project; defaults to the media's file stem.
    """

    fps: Fraction | None = None
    start_tc: str | None = None
    drop_frame: bool | None = None
    tag_style: TagStyle = "prefix"
    min_confidence: float = 0.0
    emotions: frozenset[str] | None = None
    skip_neutral: bool = False
    mismatch_only: bool = False
    mismatch_threshold: float | None = None
    merge_gap_ms: int | None = None
    palette: Palette | Mapping[str, Any] | None = None
    handles_ms: int = 1000
    title: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fps is not None and not isinstance(self.fps, Fraction):
            try:
                object.__setattr__(self, "fps", rate_from_string(self.fps))
            except ValueError as e:
                raise ExportError(f"--fps: {e}") from None
        if self.emotions is not None and not isinstance(self.emotions, frozenset):
            object.__setattr__(self, "emotions", frozenset(self.emotions))
        if self.tag_style not in TAG_STYLES:
            raise ExportError(f"unknown tag style {self.tag_style!r}; use one of {', '.join(TAG_STYLES)}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ExportError(f"--min-confidence must be between 0 and 1, got {self.min_confidence}")
        if self.mismatch_threshold is not None and not 0.0 <= self.mismatch_threshold <= 1.0:
            raise ExportError(f"--mismatch-threshold must be between 0 and 1, got {self.mismatch_threshold}")
        if self.merge_gap_ms is not None and self.merge_gap_ms < 0:
            raise ExportError(f"--merge-gap must not be negative, got {self.merge_gap_ms} ms")
        if self.handles_ms < 0:
            raise ExportError(f"handles must not be negative, got {self.handles_ms} ms")

    @property
    def colors(self) -> Palette:
        """The palette to use (the default one when none was given)."""
        if self.palette is None:
            return DEFAULT_PALETTE
        if isinstance(self.palette, Palette):
            return self.palette
        try:
            return palette_from_mapping(self.palette)
        except (ValueError, KeyError) as e:
            raise ExportError(f"bad palette: {e}") from None

    def flagged(self, track: Track) -> Track:
        """``track`` with its mismatch flags set by :attr:`mismatch_threshold` (unchanged when ``None``)."""
        thr = self.mismatch_threshold
        if thr is None:
            return track
        return replace(track, cues=tuple(replace(tc, mismatched=tc.mismatch >= thr) for tc in track.cues))

    def is_selected(self, tc: TaggedCue) -> bool:
        """Whether a cue passes the filters (confidence, emotions, neutral, mismatch)."""
        return bool(self.selected([tc]))

    def selected(self, cues: Iterable[TaggedCue]) -> list[TaggedCue]:
        """The cues that pass the filters, order kept."""
        return select_cues(
            cues,
            min_confidence=self.min_confidence,
            emotions=self.emotions,
            skip_neutral=self.skip_neutral,
            mismatch_only=self.mismatch_only,
        )

    def regions(self, track: Track) -> list[Region]:
        """Filtered cues merged into regions by ``merge_gap_ms`` (what marker formats export)."""
        return merge_regions(self.selected(track.cues), self.merge_gap_ms)

    def title_for(self, track: Track) -> str:
        """``title`` or the media's file stem."""
        return self.title or Path(track.media.path).stem or "emotag"


@runtime_checkable
class Exporter(Protocol):
    """What an export format provides (built-in or extension)."""

    @property
    def name(self) -> str:
        """Registry name, short and lowercase (``"srt"``, ``"resolve-edl"``)."""
        ...

    @property
    def suffix(self) -> str:
        """The file extension hosts expect (``".srt"``, ``".edl"``)."""
        ...

    @property
    def default_filename_suffix(self) -> str:
        """What :func:`output_path` appends to the media stem (``".emotag.resolve.edl"``)."""
        ...

    @property
    def description(self) -> str:
        """One line for ``emotag formats``."""
        ...

    @property
    def frame_based(self) -> bool:
        """Whether output times are frames/timecode (needs a frame rate)."""
        ...

    def render(self, track: Track, options: ExportOptions) -> str:
        """Return the whole file's text."""
        ...


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True, slots=True)
class Timing:
    """Resolved frame rate and timecode origins for one frame-based export.

    Attributes:
        fps: the exact frame rate.
        drop: whether timecode is drop-frame.
        record_start: frame number of the timeline start (``start_tc``) from 00:00:00:00.
        source_start: frame number of the media's own start timecode (0 if it has none).
    """

    fps: Fraction
    drop: bool
    record_start: int
    source_start: int

    def tc(self, frames: int) -> str:
        """Timeline timecode of a frame offset from the timeline start."""
        return frames_to_tc(self.record_start + frames, self.fps, self.drop)

    def src_tc(self, frames: int) -> str:
        """Source (media) timecode of a frame offset from the media start."""
        return frames_to_tc(self.source_start + frames, self.fps, self.drop)

    @property
    def start_tc(self) -> str:
        """The timeline start as timecode."""
        return self.tc(0)


def no_fps_error(track: Track, fmt: str) -> ExportError:
    """The error for a frame-based format on media without a frame rate."""
    return ExportError(
        f"{track.media.path} is audio-only: pass --fps 25 (or the timeline's rate) for frame-based formats "
        f"({fmt})"
    )


def timing(track: Track, options: ExportOptions, fmt: str, default_start_tc: str | None = None) -> Timing:
    """Resolve fps, drop-frame and start timecodes for a frame-based export.

    Precedence: the options, then the media, then the format's host default. The record (timeline) start
    is ``options.start_tc``, else ``default_start_tc`` when the host has a fixed default (Resolve), else
    the media's own timecode, else 00:00:00:00. The source start is the media's own timecode.

    Args:
        track: the track being exported.
        options: the export options.
        fmt: the format name, for messages.
        default_start_tc: the host's timeline start when ``options.start_tc`` is unset.

    Raises:
        ExportError: no frame rate, drop-frame at a rate without it, or an invalid start timecode.
    """
    fps = options.fps or track.media.fps
    if fps is None:
        raise no_fps_error(track, fmt)
    if options.drop_frame is not None:
        drop = options.drop_frame
    elif options.start_tc is not None:
        drop = tc_is_drop(options.start_tc)
    elif default_start_tc is None and track.media.start_timecode:
        drop = tc_is_drop(track.media.start_timecode) or track.media.drop_frame
    else:
        drop = track.media.drop_frame
    if drop and not is_drop_frame_rate(fps):
        if options.drop_frame or (options.start_tc and tc_is_drop(options.start_tc)):
            raise ExportError(f"drop-frame timecode needs 29.97 or 59.94 fps, not {float(fps):g} ({fmt})")
        drop = False
    source_start = _media_start(track, fps, drop)
    record_tc = options.start_tc or default_start_tc
    if record_tc is None:  # the timeline starts where the media's own timecode does
        return Timing(fps=fps, drop=drop, record_start=source_start, source_start=source_start)
    try:
        record_start = tc_to_frames(record_tc, fps, drop)
    except ValueError as e:
        raise ExportError(f"{track.media.path}: bad start timecode: {e}") from None
    return Timing(fps=fps, drop=drop, record_start=record_start, source_start=source_start)


def _media_start(track: Track, fps: Fraction, drop: bool) -> int:
    """The media's own timecode as a frame count: read in its own counting (its separator) when that
    exists at ``fps``, else in the export's; 0 when the media has none."""
    media_tc = track.media.start_timecode
    if not media_tc:
        return 0
    for counting in (None, drop):
        try:
            return tc_to_frames(media_tc, fps, counting)
        except ValueError:
            continue
    raise ExportError(
        f"{track.media.path}: its timecode {media_tc!r} does not exist at {float(fps):g} fps; "
        "pass --fps with the media's own rate"
    )


# --------------------------------------------------------------------------- registry

_loaded: dict[str, Exporter] = {}


def registry_entries() -> dict[str, Entry]:
    """Every registered format as an :class:`emotag.registry.Entry` (nothing imported)."""
    return discover(ENTRY_POINT_GROUP, BUILTINS)


def _check(obj: Any, origin: str) -> Exporter:
    if isinstance(obj, type):
        obj = obj()
    missing = [
        a
        for a in ("name", "suffix", "default_filename_suffix", "description", "frame_based")
        if not hasattr(obj, a)
    ]
    if missing or not callable(getattr(obj, "render", None)):
        raise TypeError(f"{origin} is not an exporter (missing {', '.join(missing) or 'render()'})")
    return obj  # type: ignore[no-any-return]


def _load(entry: Entry) -> Exporter:
    key = f"{entry.name}={entry.target}"
    if key not in _loaded:
        _loaded[key] = _check(entry.load(), entry.target)
    return _loaded[key]


def available() -> dict[str, Exporter]:
    """All usable exporters by name: built-ins first, then extensions (broken ones logged and skipped).

    Returns:
        ``{name: exporter}``.
    """
    out: dict[str, Exporter] = {}
    for name, entry in registry_entries().items():
        if entry.source == "built-in":
            out[name] = _load(entry)
            continue
        try:
            out[name] = _load(entry)
        except Exception as e:  # an extension may fail in any way; it must not break emotag
            log.warning(
                "skipping exporter extension %r (%s): %s: %s", name, entry.target, type(e).__name__, e
            )
    return out


def names() -> list[str]:
    """Registered format names (built-ins and extensions) without importing any exporter."""
    return list(registry_entries())


def extensions() -> list[Entry]:
    """Installed exporter extensions (for ``emotag extensions``)."""
    return [e for e in registry_entries().values() if e.source != "built-in"]


def get_exporter(name: str) -> Exporter:
    """The exporter registered as ``name`` (case-insensitive), imported on first use.

    Raises:
        UnknownExporterError: no such format (the message lists the available ones).
        ExportError: the format is an extension that fails to load.
    """
    key = name.strip().lower()
    entries = registry_entries()
    if key not in entries:
        raise UnknownExporterError(name, entries)
    entry = entries[key]
    if entry.source == "built-in":
        return _load(entry)
    try:
        return _load(entry)
    except Exception as e:
        raise ExportError(
            f"export format {key!r} comes from extension {entry.target!r} ({entry.source}), which failed to "
            f"load ({type(e).__name__}: {e}); reinstall it or set {DISABLE_ENV}=1"
        ) from None


def _clear_cache() -> None:
    """Forget loaded exporters (tests use it after changing ``sys.path``)."""
    _loaded.clear()


def infer_format(path: str | os.PathLike[str]) -> str:
    """Pick the format from a file name: ``x.emotag.resolve.edl`` -> ``resolve-edl``, ``x.srt`` -> ``srt``.

    The longest matching ``default_filename_suffix`` wins (with or without its ``.emotag`` part), then the
    first format whose plain ``suffix`` matches, in :data:`BUILTINS` order (``.edl`` -> ``edl``,
    ``.csv`` -> ``csv``, ``.txt`` -> ``avid``, ``.xml`` -> ``fcp7xml``).

    Raises:
        UnknownExporterError: no format uses that suffix.
    """
    filename = Path(path).name.lower()
    exporters = available()
    candidates: list[tuple[int, str]] = []
    for name, exp in exporters.items():
        full = exp.default_filename_suffix.lower()
        for suffix in (full, full.replace(".emotag", "", 1)):
            if suffix and suffix != exp.suffix.lower() and filename.endswith(suffix):
                candidates.append((len(suffix), name))
    if candidates:
        return max(candidates, key=lambda c: c[0])[1]
    for name, exp in exporters.items():
        if filename.endswith(exp.suffix.lower()):
            return name
    raise UnknownExporterError(f"(suffix of {Path(path).name})", exporters)


def output_path(
    media_path: str | os.PathLike[str], fmt: str, out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where a format's output goes by default: ``interview.mp4`` -> ``interview.emotag.srt``.

    A trailing ``.emotag`` in the stem is dropped, so re-exporting ``interview.emotag.json`` gives
    ``interview.emotag.edl``, not ``interview.emotag.emotag.edl``.

    Args:
        media_path: the media (or track JSON) path.
        fmt: the format name.
        out_dir: directory to put it in; default is the media's directory.
    """
    media = Path(media_path)
    stem = media.stem
    if media.suffix.lower() == ".json" and stem.lower().endswith(".emotag"):
        stem = stem[: -len(".emotag")]
    directory = Path(out_dir) if out_dir is not None else media.parent
    return directory / (stem + get_exporter(fmt).default_filename_suffix)


def render(track: Track, fmt: str, options: ExportOptions | None = None) -> str:
    """Render ``track`` as format ``fmt``.

    Raises:
        UnknownExporterError: unknown format.
        ExportError: the request cannot be met (e.g. a frame-based format without a frame rate).
    """
    options = options or ExportOptions()
    exporter = get_exporter(fmt)
    if exporter.frame_based and (options.fps or track.media.fps) is None:
        raise no_fps_error(track, exporter.name)
    track = options.flagged(track)
    try:
        return exporter.render(track, options)
    except EmotagError:
        raise
    except ValueError as e:  # timecode/rate problems surface as ValueError from emotag.timecode
        raise ExportError(f"{track.media.path}: cannot export {exporter.name}: {e}") from None


def _check_target(path: Path, force: bool) -> None:
    if path.is_dir():
        raise OutputError(str(path), "it is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(str(path), f"directory {str(parent)!r} does not exist")
    if path.exists() and not force:
        raise OutputExistsError(str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(str(path), f"directory {str(parent)!r} is not writable")


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` whole or not at all (:func:`emotag.atomicfile.write_text`).

    Raises:
        OutputError: the file cannot be written.
    """
    try:
        atomicfile.write_text(path, text)
    except OSError as e:
        raise OutputError(str(path), e.strerror or str(e)) from None


def export(
    track: Track,
    path: str | os.PathLike[str],
    fmt: str | None = None,
    options: ExportOptions | None = None,
    *,
    force: bool = False,
) -> Path:
    """Render and write one file atomically.

    Everything is rendered before the filesystem is touched; the file appears whole (temp file in the same
    directory, then ``os.replace``) or not at all.

    Args:
        track: the track.
        path: the output file.
        fmt: the format; inferred from ``path``'s suffix when ``None``.
        options: export options.
        force: overwrite an existing file.

    Returns:
        The path written.

    Raises:
        UnknownExporterError, ExportError: the format or request is invalid (nothing written).
        OutputExistsError: ``path`` exists and ``force`` is false.
        OutputError: the directory is missing or not writable.
    """
    return export_many(track, [(Path(path), fmt)], options, force=force)[0]


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (links included; a path that does not exist names no file yet)."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_targets(
    paths: Iterable[str | os.PathLike[str]],
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> None:
    """Refuse targets before any work is done: existing files without ``force``, missing or read-only dirs,
    two formats writing the same file, and, even with ``force``, a target that is one of the ``inputs``
    (the track being re-exported, the subtitles being read): a source file is never overwritten.

    Raises:
        OutputExistsError: a target exists and ``force`` is false.
        OutputError: a directory is missing or not writable; a target is a directory, a duplicate or an
            input.
    """
    sources = [Path(p) for p in inputs]
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        resolved = path.resolve()
        if resolved in seen:
            raise OutputError(str(path), "two formats would write the same file")
        seen.add(resolved)
        if any(_same_file(path, src) for src in sources):
            raise OutputError(
                str(path), "it is an input of this run", "write elsewhere with -o DIR or another name"
            )
        _check_target(path, force)


def write_all(
    rendered: Sequence[tuple[str | os.PathLike[str], str]],
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> list[Path]:
    """Write already-rendered texts, each atomically, after checking every target first.

    Args:
        rendered: ``(path, text)`` pairs.
        force: overwrite existing files.
        inputs: files the run read: never overwritten, even with ``force`` (see :func:`check_targets`).

    Returns:
        The paths written, in order.

    Raises:
        OutputExistsError, OutputError: as :func:`check_targets` (nothing written then), or on I/O failure.
    """
    paths = [Path(p) for p, _ in rendered]
    check_targets(paths, force=force, inputs=inputs)
    for path, (_, text) in zip(paths, rendered, strict=True):
        write_text_atomic(path, text)
    return paths


def export_many(
    track: Track,
    targets: Sequence[tuple[str | os.PathLike[str], str | None]],
    options: ExportOptions | None = None,
    *,
    force: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
) -> list[Path]:
    """Render several formats, check every target, then write them all (all-or-nothing up to I/O errors).

    Args:
        track: the track.
        targets: ``(path, format or None)`` pairs; ``None`` infers the format from the suffix.
        options: export options shared by all formats.
        force: overwrite existing files.
        inputs: files this run read (the track file): never overwritten, even with ``force``.

    Returns:
        The paths written, in order.

    Raises:
        Same as :func:`export`; no file is written when any format fails to render or any target is refused.
    """
    rendered = []
    for raw_path, fmt in targets:
        rendered.append((Path(raw_path), render(track, fmt or infer_format(raw_path), options)))
    return write_all(rendered, force=force, inputs=inputs)


def preflight(media: Media, formats: Iterable[str], options: ExportOptions | None = None) -> None:
    """Check, before any model runs, that every format can be exported for this media.

    Resolves each format's exporter (unknown names fail here) and, for frame-based formats, the frame rate,
    drop-frame mode and start timecodes against the probed media, so ``emotag tag x.wav --export edl``
    fails in a second instead of after scoring the whole file.

    Raises:
        UnknownExporterError: a format is not registered.
        ExportError: a frame-based format without a frame rate, or inconsistent timecode options.
    """
    options = options or ExportOptions()
    empty = Track(media=media, cues=(), model="", source="")
    for fmt in formats:
        if get_exporter(fmt).frame_based:
            timing(empty, options, fmt)
