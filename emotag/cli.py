"""The ``emotag`` command line: the only module that prints, prompts or exits.

Every :class:`~emotag.errors.EmotagError` becomes one line on stderr (``emotag: error: …``) and its class's
exit code; ``--debug`` shows the traceback instead. Exit codes:

====  =====================================================================
0     success
1     an unexpected internal error (rerun with ``--debug`` and report it)
2     bad input path (missing, a directory, unreadable) or bad command-line usage
3     media cannot be decoded or has no audio stream
4     subtitles unreadable, empty or malformed
5     output exists (use ``--force``) or cannot be written
6     unknown export format or an export that cannot be made as asked
7     model cannot be found, loaded or run
8     an optional dependency is missing
9     training/evaluation data missing or malformed
130   interrupted (Ctrl-C)
====  =====================================================================

In a multi-file ``emotag tag`` call one bad file does not stop the others; the exit code is that of the first
failure and a summary names every file that failed. Heavy modules are imported inside the commands, so
``emotag --help`` answers at once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from emotag import __version__
from emotag.cli_errors import CliFailure, debug_enabled, guarded, make_output_dir
from emotag.errors import EmotagError

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


class EmotagGroup(click.Group):
    """A click group that turns EmotagError (and anything unexpected) into one stderr line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except EmotagError as exc:
            if debug_enabled(ctx):
                raise
            raise CliFailure(str(exc), exc.exit_code) from exc
        except KeyboardInterrupt:
            if debug_enabled(ctx):
                raise
            raise CliFailure("interrupted", EXIT_INTERRUPTED) from None
        except Exception as exc:
            if debug_enabled(ctx):
                raise
            raise CliFailure(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                EXIT_INTERNAL,
            ) from exc


def warn(message: str) -> None:
    """Print a warning line on stderr unless ``--quiet``."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().obj and ctx.find_root().obj.get("quiet"):
        return
    click.echo(f"emotag: warning: {message}", err=True)


def info(message: str) -> None:
    """Print a status line on stderr unless ``--quiet``."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().obj and ctx.find_root().obj.get("quiet"):
        return
    click.echo(message, err=True)


@click.group(cls=EmotagGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emotag")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, warnings or summaries on stderr.")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, debug: bool) -> None:
    """Tag the emotion of every subtitle cue in a video or audio file, and export editor markers.

    \b
    Typical use:
      emotag tag interview.mp4                     # interview.emotag.srt + .json beside it
      emotag tag *.mov -o tagged/ --export srt,resolve-edl,fcpxml
      emotag tag podcast.mp3 -o - | jq .cues[0]    # JSON on stdout
      emotag export interview.emotag.json --to avid --fps 25
    """
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet
    ctx.obj["debug"] = debug


class _Progress:
    """tqdm bars on stderr, one per pipeline stage; silent with --quiet."""

    _LABELS = {
        "decode": "decoding audio",
        "transcribe": "transcribing",
        "analyse": "reading voices",
        "score": "scoring cues",
    }

    def __init__(self, name: str, quiet: bool) -> None:
        self.name = name
        self.quiet = quiet
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet or stage == "decode":
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            unit = "cue" if stage in ("analyse", "score") else "‰"
            desc = f"{self.name}: {self._LABELS.get(stage, stage)}"
            bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
            self.bars[stage] = bar
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _export_decorator() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    from emotag.cli_export import export_options

    return export_options


@cli.command("tag")
@click.argument("media", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    type=str,
    default=None,
    help="Directory for the outputs, created if missing (default: beside each media file), or '-' for JSON "
    "on stdout.",
)
@click.option("--subs", type=click.Path(path_type=Path), help="Subtitle file to use (SRT, WebVTT, ASS/SSA).")
@click.option("--subs-stream", type=int, help="Embedded subtitle stream to use (0 = first subtitle stream).")
@click.option("--subs-lang", help="Preferred subtitle language for sidecars and streams (en, eng, de, ...).")
@click.option("--audio-stream", type=int, help="Audio stream to analyse (0 = first audio stream).")
@click.option(
    "--asr",
    type=click.Choice(["auto", "faster-whisper", "whisper", "none"]),
    default="auto",
    show_default=True,
    help="Transcriber used when no subtitles exist ('none' fails instead).",
)
@click.option("--asr-model", help="ASR model: a size name (tiny.en, small, ...) or a local model path.")
@click.option("--language", help="Spoken language hint for ASR (en, de, ...).")
@click.option("--model", "model", help="Emotion model: a directory from 'emotag train' or a registered name.")
@click.option("--text-model", help="Hugging Face id or directory replacing the text branch.")
@click.option(
    "--audio-model",
    help="Audio branch: 'whisper' (the model's Whisper-encoder branch, the default model's own), 'cnn' (its "
    "small CNN: about a third less CPU per cue, less accurate, late fusion only) or a Hugging Face id or "
    "directory.",
)
@click.option(
    "--fusion", type=click.Choice(["early", "late", "hybrid"]), help="Fusion method (default: the model's)."
)
@click.option(
    "--modality",
    type=click.Choice(["both", "text", "audio"]),
    default="both",
    show_default=True,
    help="Score from voice and words, or one of them alone.",
)
@click.option(
    "--context", type=int, default=2, show_default=True, help="Previous cues the text branch reads."
)
@click.option("--batch-size", type=int, default=32, show_default=True, help="Cues per model call.")
@click.option(
    "--group-by",
    type=click.Choice(["speaker", "file", "none"]),
    default="speaker",
    show_default=True,
    help="Read each voice against the cues of its speaker (where the subtitles name one: WebVTT <v>, "
    "ASS Name, or labels like '[SPEAKER_00]: ' or 'JOHN: '; other cues against the whole file), of the "
    "whole file, or on its own.",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@_export_decorator()
@click.pass_context
def tag_command(
    ctx: click.Context,
    /,
    media: Sequence[Path],
    output: str | None,
    subs: Path | None,
    subs_stream: int | None,
    subs_lang: str | None,
    audio_stream: int | None,
    asr: str,
    asr_model: str | None,
    language: str | None,
    model: str | None,
    text_model: str | None,
    audio_model: str | None,
    fusion: str | None,
    modality: str,
    context: int,
    batch_size: int,
    group_by: str,
    force: bool,
    **export_kwargs: Any,
) -> None:
    """Tag MEDIA files (video or audio) and write emotion-tagged subtitles and markers.

    Subtitles come from --subs, else a sidecar file (name.srt, name.en.vtt, ...), else an embedded text
    stream, else a Whisper transcript. Outputs are written as NAME.emotag.srt and NAME.emotag.json (plus every
    --export format) beside the media or under -o DIR; nothing existing is overwritten without --force.
    """
    from emotag.cli_export import options_from_cli
    from emotag.pipeline import TagOptions

    quiet = bool(ctx.obj.get("quiet"))
    to_stdout = output == "-"
    out_dir = None if output in (None, "-") else Path(output)
    if subs is not None and len(media) > 1:
        raise click.UsageError("--subs names one subtitle file, so it works with one MEDIA file only")
    export_opts, formats = options_from_cli(**export_kwargs)
    if to_stdout:
        formats = ["json"]
    elif not formats:
        formats = ["srt", "json"]
    if not to_stdout:
        _refuse_shared_targets(media, formats, out_dir)
        if out_dir is not None:
            with guarded():
                make_output_dir(out_dir)
    opts = TagOptions(
        subs=None if subs is None else str(subs),
        subs_stream=subs_stream,
        subs_lang=subs_lang,
        audio_stream=audio_stream,
        asr=asr,
        asr_model=asr_model,
        language=language,
        context=context,
        batch_size=batch_size,
        group_by=group_by,
    )
    loaded: dict[str, Any] = {}

    def get_model() -> Any:
        if "model" not in loaded:
            from emotag.models import load_model

            loaded["model"] = load_model(
                model, text_model=text_model, audio_model=audio_model, fusion=fusion, modality=modality
            )
        return loaded["model"]

    failures: list[tuple[Path, EmotagError]] = []
    for path in media:
        try:
            _tag_one(
                path, opts, get_model, formats, export_opts, out_dir, to_stdout, force, quiet, len(media)
            )
        except EmotagError as exc:
            if ctx.find_root().obj.get("debug"):
                raise
            click.echo(f"emotag: error: {exc}", err=True)
            failures.append((path, exc))
    if failures:
        if len(media) > 1 and not quiet:
            names = ", ".join(str(p) for p, _ in failures)
            click.echo(
                f"emotag: {len(media) - len(failures)} of {len(media)} files tagged; failed: {names}",
                err=True,
            )
        ctx.exit(failures[0][1].exit_code)


def _refuse_shared_targets(media: Sequence[Path], formats: Sequence[str], out_dir: Path | None) -> None:
    """Before any work: two MEDIA files whose outputs would land on the same file (``a.mp4`` from two
    folders into one ``-o DIR``, or one file named twice) are a usage error, not a silent overwrite."""
    from emotag import exporters

    owner: dict[Path, Path] = {}
    for path in media:
        for fmt in formats:
            target = exporters.output_path(path, fmt, out_dir)
            first = owner.setdefault(target.resolve(), path)
            if first is path:
                continue
            if first.resolve() == path.resolve():
                raise click.UsageError(f"{path} is named twice; name each MEDIA file once")
            raise click.UsageError(
                f"{first} and {path} would both write {target}; tag them into different -o directories"
            )


def _tag_one(
    path: Path,
    opts: Any,
    get_model: Callable[[], Any],
    formats: Sequence[str],
    export_opts: Any,
    out_dir: Path | None,
    to_stdout: bool,
    force: bool,
    quiet: bool,
    n_files: int,
) -> None:
    from emotag import exporters, media
    from emotag.pipeline import tag
    from emotag.timeline import speaker_key

    started = time.perf_counter()
    probed = media.probe(path)  # fails fast on a missing, unreadable or undecodable file
    targets: list[tuple[str, Path]] = []
    inputs = [path] if opts.subs is None else [path, Path(opts.subs)]
    if not to_stdout:
        targets = [(fmt, exporters.output_path(path, fmt, out_dir)) for fmt in formats]
        exporters.check_targets([p for _, p in targets], force=force, inputs=inputs)
        exporters.preflight(probed.media, formats, export_opts)
    progress = _Progress(path.name, quiet)
    try:
        track = tag(path, model=get_model(), options=opts, progress=progress, probe=probed)
    finally:
        progress.close()
    for message in track.warnings:
        warn(f"{path}: {message}")
    if to_stdout:
        from emotag.trackfile import dumps

        text = dumps(export_opts.flagged(track), indent=None if n_files > 1 else 2)
        click.echo(text)
        return
    rendered = [(p, exporters.render(track, fmt, export_opts)) for fmt, p in targets]
    written = exporters.write_all(rendered, force=force, inputs=inputs)
    elapsed = time.perf_counter() - started
    speakers = len({speaker_key(tc.cue.speaker) for tc in track} - {None})
    named = f" ({speakers} speaker{'s' if speakers != 1 else ''} named)" if speakers else ""
    info(
        f"{path}: {len(track)} cues{named} from {track.source} in {elapsed:.1f} s → "
        + ", ".join(str(p) for p in written)
    )


@cli.command("extensions")
def extensions_command() -> None:
    """List exporters and models with where they come from (built-in or an installed extension)."""
    from emotag.exporters import registry_entries as exporter_entries
    from emotag.models import registry_entries as model_entries

    for kind, entries in (("exporter", exporter_entries()), ("model", model_entries())):
        for entry in sorted(entries.values(), key=lambda e: e.name):
            click.echo(f"{kind:9} {entry.name:16} {entry.source:24} {entry.target}")


def _register_subcommands() -> None:
    from emotag import cli_export, cli_model

    cli_export.register(cli)
    cli_model.register(cli)


_register_subcommands()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=None if argv is None else list(argv), prog_name="emotag")
