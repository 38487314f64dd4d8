"""Click pieces for exporting: shared export options, ``emotag export`` and ``emotag formats``.

``emotag.cli`` owns the group and the error handling; this module only adds options and commands, so the
exporter layer stays in one place. Option values are validated in click callbacks (so mistakes are
usage errors, exit 2, with the option named) and turned into one :class:`~emotag.exporters.ExportOptions`
by :func:`options_from_cli`. Library errors are raised as :class:`~emotag.errors.EmotagError` and turned
into one stderr line by :func:`emotag.cli_errors.guarded`, shared by every command module.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import click

from emotag.cli_errors import guarded, make_output_dir
from emotag.errors import EmotagError, UnknownExporterError

__all__ = ["export_options", "options_from_cli", "register", "selection_options"]

F = TypeVar("F", bound=Callable[..., Any])

_OPTION_KEYS = (
    "min_confidence",
    "emotions",
    "skip_neutral",
    "mismatch_only",
    "mismatch_threshold",
    "merge_gap",
    "fps",
    "start_tc",
    "drop_frame",
    "tag_style",
    "palette",
    "handles",
    "title",
)


# --------------------------------------------------------------------------- option callbacks


def _parse_formats(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> list[str]:
    if not value:
        return []
    from emotag.exporters import get_exporter

    out: list[str] = []
    for part in value.split(","):
        name = part.strip().lower()
        if not name:
            continue
        try:
            exporter = get_exporter(name)
        except UnknownExporterError as e:
            raise click.BadParameter(str(e), ctx=ctx, param=param) from None
        except EmotagError as e:
            raise click.BadParameter(str(e), ctx=ctx, param=param) from None
        if exporter.name not in out:
            out.append(exporter.name)
    return out


def _parse_emotions(ctx: click.Context, param: click.Parameter, value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    from emotag.timeline import LABELS

    chosen = {v.strip().lower() for v in value.split(",") if v.strip()}
    unknown = sorted(chosen - set(LABELS))
    if unknown:
        raise click.BadParameter(f"unknown emotion(s) {', '.join(unknown)}; labels: {', '.join(LABELS)}")
    return frozenset(chosen)


def _parse_fps(ctx: click.Context, param: click.Parameter, value: str | None) -> Fraction | None:
    if value is None:
        return None
    from emotag.timecode import nominal_fps, rate_from_string

    try:
        rate = rate_from_string(value)
        nominal_fps(rate)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return rate


def _parse_tc(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    import re

    if not re.fullmatch(r"\d{1,2}:\d{2}:\d{2}[:;.]\d{2,3}", value.strip()):
        raise click.BadParameter(f"{value!r} is not a timecode (HH:MM:SS:FF, or HH:MM:SS;FF for drop-frame)")
    return value.strip()


def _ms_or_seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip().lower()
    try:
        if text.endswith("ms"):
            ms = int(text[:-2])
        elif text.endswith("s"):
            ms = round(float(text[:-1]) * 1000)
        else:
            ms = int(text)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration (milliseconds, e.g. 1500, or 1.5s)") from None
    if ms < 0:
        raise click.BadParameter("must not be negative")
    return ms


def selection_options(f: F) -> F:
    """Add the options shared by ``emotag tag`` and ``emotag export`` (everything but ``--export``)."""
    decorators = [
        click.option(
            "--min-confidence",
            type=click.FloatRange(0.0, 1.0),
            default=0.0,
            show_default=True,
            help="Markers only for cues at least this confident (subtitles keep all cues).",
        ),
        click.option(
            "--emotions",
            callback=_parse_emotions,
            metavar="LIST",
            help="Markers only for these emotions, comma-separated (e.g. anger,sadness).",
        ),
        click.option("--skip-neutral", is_flag=True, help="No markers for neutral cues."),
        click.option(
            "--mismatch-only",
            is_flag=True,
            help="Markers only where voice and words disagree (sarcasm candidates).",
        ),
        click.option(
            "--mismatch-threshold",
            type=click.FloatRange(0.0, 1.0),
            default=None,
            metavar="SCORE",
            help="Flag a voice/words mismatch from this score on, instead of the model's calibrated "
            "threshold (higher: fewer, surer flags). Applies to every output.",
        ),
        click.option(
            "--merge-gap",
            callback=_ms_or_seconds,
            metavar="MS",
            help="Merge consecutive same-emotion cues at most this far apart into one marker "
            "(ms, or e.g. 2s).",
        ),
        click.option(
            "--fps",
            callback=_parse_fps,
            metavar="RATE",
            help="Timeline frame rate for frame-based formats (25, 29.97, 24000/1001, ...); "
            "required for audio-only media.",
        ),
        click.option(
            "--start-tc",
            callback=_parse_tc,
            metavar="TC",
            help="Timeline start timecode (default: the media's own; Resolve 01:00:00:00).",
        ),
        click.option(
            "--drop-frame/--non-drop-frame",
            "drop_frame",
            default=None,
            help="Force drop-frame or non-drop timecode at 29.97/59.94 (default: from --start-tc or "
            "the media).",
        ),
        click.option(
            "--tag-style",
            type=click.Choice(["prefix", "color", "none"]),
            default="prefix",
            show_default=True,
            help="How subtitles show the emotion.",
        ),
        click.option(
            "--palette",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help='JSON emotion colours, e.g. {"joy": "#FFD700", "anger": {"rgb": "#FF0000", "avid": "red"}}.',
        ),
        click.option(
            "--handles",
            callback=_ms_or_seconds,
            metavar="MS",
            help="Handles around each moment in selects-edl (default 1000 ms).",
        ),
        click.option("--title", help="Title of EDLs and sequences (default: the media's name)."),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def export_options(f: F) -> F:
    """Add ``--export FORMATS`` and the selection options to a command (used by ``emotag tag``)."""
    f = selection_options(f)
    return click.option(
        "--export",
        "export",
        callback=_parse_formats,
        metavar="FORMATS",
        help="Formats to write, comma-separated (default: srt,json); see `emotag formats`.",
    )(f)


def options_from_cli(**kwargs: Any) -> tuple[Any, list[str]]:
    """Build ExportOptions from the values the options above produced.

    Unrelated keyword arguments are ignored, so a command may pass all its parameters.

    Returns:
        ``(ExportOptions, formats)``; ``formats`` is the parsed ``--export`` list (empty when absent).

    Raises:
        InputError: the palette file is missing or invalid.
        ExportError: inconsistent values (e.g. drop-frame at 25 fps is caught at export time).
    """
    from emotag.exporters import ExportOptions
    from emotag.palette import load_palette

    palette_path = kwargs.get("palette")
    handles = kwargs.get("handles")
    formats = kwargs.get("export") or []
    if isinstance(formats, str):
        formats = _parse_formats(None, None, formats)
    options = ExportOptions(
        fps=kwargs.get("fps"),
        start_tc=kwargs.get("start_tc"),
        drop_frame=kwargs.get("drop_frame"),
        tag_style=kwargs.get("tag_style") or "prefix",
        min_confidence=float(kwargs.get("min_confidence") or 0.0),
        emotions=kwargs.get("emotions"),
        skip_neutral=bool(kwargs.get("skip_neutral")),
        mismatch_only=bool(kwargs.get("mismatch_only")),
        mismatch_threshold=kwargs.get("mismatch_threshold"),
        merge_gap_ms=kwargs.get("merge_gap"),
        palette=None if palette_path is None else load_palette(palette_path),
        handles_ms=1000 if handles is None else int(handles),
        title=kwargs.get("title"),
    )
    return options, list(formats)


# --------------------------------------------------------------------------- commands


@click.command("export")
@click.argument("track_file", metavar="TRACK.json", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "to",
    callback=_parse_formats,
    metavar="FORMATS",
    help="Formats to write, comma-separated; inferred from -o's suffix when omitted.",
)
@click.option(
    "-o",
    "--output",
    type=str,
    default=None,
    metavar="PATH|DIR",
    help="Output file (one format), directory (created if missing; end a new one with '/'), or '-' for "
    "stdout (one format). Default: beside TRACK.json.",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@selection_options
def export_command(track_file: Path, to: list[str], output: str | None, force: bool, **kwargs: Any) -> None:
    """Re-export a saved track (NAME.emotag.json from `emotag tag`) to other formats; the model is not run.

    \b
    Examples:
      emotag export talk.emotag.json --to resolve-edl,fcpxml
      emotag export talk.emotag.json --to avid --fps 25 -o markers/
      emotag export talk.emotag.json -o talk.edl --merge-gap 2s --skip-neutral
    """
    from emotag import exporters
    from emotag.trackfile import load_track

    with guarded():
        options, _ = options_from_cli(**kwargs)
        track = load_track(track_file)
        if output == "-":
            if len(to) != 1:
                raise click.UsageError("-o - (stdout) needs exactly one format in --to")
            click.echo(exporters.render(track, to[0], options), nl=False)
            return
        out = Path(output) if output is not None else None
        targets: list[tuple[Path, str | None]]
        file_target = output is not None and not output.endswith(("/", "\\")) and not Path(output).is_dir()
        if out is not None and file_target:
            if len(to) > 1:
                raise click.UsageError("several formats need -o DIR (a directory), not a file name")
            targets = [(out, to[0] if to else None)]
        else:
            if not to:
                raise click.UsageError("pass --to FORMAT[,FORMAT] (see `emotag formats`)")
            if out is not None:
                make_output_dir(out)
            targets = [(exporters.output_path(track_file, fmt, out), fmt) for fmt in to]
        written = exporters.export_many(track, targets, options, force=force, inputs=[track_file])
    for path in written:
        click.echo(str(path))


@click.command("formats")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
def formats_command(as_json: bool) -> None:
    """List export formats: name, file suffix, whether frame-based (needs --fps on audio), description."""
    from emotag import exporters

    with guarded():
        found = exporters.available()
        entries = exporters.registry_entries()
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "suffix": exp.suffix,
            "filename": exp.default_filename_suffix,
            "frame_based": bool(exp.frame_based),
            "description": exp.description,
            "source": entries[name].source if name in entries else "built-in",
        }
        for name, exp in found.items()
    ]
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    fwidth = max(len(r["filename"]) for r in rows)
    for r in rows:
        frames = "frames" if r["frame_based"] else "ms"
        extra = "" if r["source"] == "built-in" else f"  [{r['source']}]"
        click.echo(f"{r['name']:<{width}}  {r['filename']:<{fwidth}}  {frames:<6}  {r['description']}{extra}")
    click.echo(
        "\nOptions for `emotag tag --export` and `emotag export --to`: --min-confidence, --emotions, "
        "--skip-neutral, --mismatch-only, --mismatch-threshold, --merge-gap, --fps, --start-tc, "
        "--drop-frame, --tag-style, --palette, --handles, --title. 'frames' formats need a frame rate: "
        "the video's, or --fps."
    )


def register(group: click.Group) -> None:
    """Add ``export`` and ``formats`` to the CLI group."""
    group.add_command(export_command)
    group.add_command(formats_command)
