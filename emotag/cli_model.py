"""``emotag train``, ``emotag eval`` and ``emotag models``: the model commands.

Registered onto the main click group by :func:`register` (called from :mod:`emotag.cli`). Heavy modules
(torch, transformers, the training code) are imported inside the commands, so ``emotag --help`` stays fast.
Library errors are turned into one-line CLI failures by :func:`_emotag_errors` (the main group's handler does
the same; this keeps the commands usable when registered on another group). Progress goes to stderr via
tqdm and is silent under the group's ``--quiet``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from emotag.cli_errors import guarded


def _quiet(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("quiet"))


class _Bars:
    """``progress(stage, done, total)`` callback drawing one tqdm bar per stage on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        key = stage.split(":", 1)[0]  # one bar per step ("text: epoch 2" and "text: caching" share one)
        bar = self.bars.get(key)
        if bar is None:
            bar = self.bars[key] = tqdm(total=total or None, desc=stage, leave=False)
        bar.set_description(stage, refresh=False)
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def parse_label_map(text: str | None) -> dict[str, str] | None:
    """Parse ``old=new,old2=new2`` (an empty ``new`` drops that label)."""
    if not text:
        return None
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not old=new", param_hint="--label-map")
        old, new = item.split("=", 1)
        out[old.strip().lower()] = new.strip().lower()
    return out


def register(group: click.Group) -> None:
    """Add ``train``, ``eval`` and ``models`` to ``group``."""
    group.add_command(train_command)
    group.add_command(eval_command)
    group.add_command(models_command)


@click.command("train")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/data"),
    show_default=True,
    help="Folder with ravdess/, goemotions/, meld/, emorynlp/.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("emotag-model"),
    show_default=True,
    help="Model directory to write (use it with --model DIR).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--text-encoder", help="Hugging Face id or directory of the text encoder (default: packaged MiniLM)."
)
@click.option(
    "--audio-data",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="MANIFEST.csv of your own labelled speech to train the audio branch on (replaces RAVDESS).",
)
@click.option(
    "--paired",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="MANIFEST.csv of real paired audio+text+label data, added to fusion training.",
)
@click.option(
    "--steps",
    default="text,audio,whisper-audio,fusion",
    show_default=True,
    help="Which steps to run, comma-separated; the others must already be in --out "
    "(e.g. 'whisper-audio,fusion' retrains the default voice branch, the Whisper-encoder heads, and fusion "
    "over an existing text branch; 'audio' trains the CNN voice branch).",
)
@click.option(
    "--ffn-keep",
    type=click.IntRange(1, 1535),
    default=None,
    help="whisper-audio: cut the voice encoder's feed-forward blocks to this many of their 1,536 neurons "
    "(output maps refitted; 768 took a quarter off the encoder's CPU in our measurements; default: whole).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Let a run of every step replace the model already in --out (refused otherwise, so a trained "
    "model is not lost by accident; --steps updates parts of it without this).",
)
@click.pass_context
def train_command(
    ctx: click.Context,
    data_dir: Path,
    out_dir: Path,
    seed: int,
    text_encoder: str | None,
    audio_data: Path | None,
    paired: Path | None,
    steps: str,
    ffn_keep: int | None,
    force: bool,
) -> None:
    """Train the text branch, the audio branch and fusion; write a model directory."""
    from emotag.training import train

    chosen = tuple(x.strip() for x in steps.split(",") if x.strip())
    unknown = sorted(set(chosen) - {"text", "audio", "whisper-audio", "fusion"})
    if unknown or not chosen:
        raise click.BadParameter(
            f"unknown step(s) {', '.join(unknown) or '(none)'}; use text, audio, whisper-audio, fusion",
            param_hint="--steps",
        )
    missing = [
        f"{out_dir / f}"
        for step, f in (("text", "text.safetensors"), ("audio", "audio.safetensors"))
        if step not in chosen and not (out_dir / f).is_file()
    ]
    if missing:
        raise click.BadParameter(
            f"{missing[0]} is missing; add its step or point --out at a trained model", param_hint="--steps"
        )
    every_step = {"text", "audio", "whisper-audio", "fusion"} <= set(chosen)
    if every_step and (out_dir / "config.json").is_file() and not force:
        with guarded():
            from emotag.errors import OutputExistsError

            raise OutputExistsError(str(out_dir), "name another --out (or retrain parts of it with --steps)")

    bars = _Bars(_quiet(ctx))
    try:
        with guarded():
            report = train(
                data_dir,
                out_dir,
                seed=seed,
                text_encoder=text_encoder,
                audio_data=audio_data,
                paired=paired,
                progress=bars,
                steps=tuple(x for x in ("text", "audio", "whisper-audio", "fusion") if x in chosen),
                ffn_keep=ffn_keep,
            )
    finally:
        bars.close()
    click.echo(report.summary())


_PREDICTIONS_FIX = "pass a --predictions path in a writable directory"


@contextlib.contextmanager
def _predictions_fix() -> Iterator[None]:
    """Tell an ``OutputError`` of the ``--predictions`` file with the fix that fits it (the exporters'
    default names ``-o DIR``, which ``eval`` does not have)."""
    from emotag.errors import OutputError

    try:
        yield
    except OutputError as exc:
        raise OutputError(exc.path, exc.problem, _PREDICTIONS_FIX) from None


def _check_predictions_target(path: Path, force: bool, manifest: Path) -> None:
    """Refuse an existing ``--predictions`` file (without ``--force``), the manifest itself (even with it),
    or an unwritable place."""
    from emotag.errors import OutputExistsError
    from emotag.exporters import check_targets

    with _predictions_fix():
        check_targets([path], force=True, inputs=[manifest])
    if path.exists() and not force:
        raise OutputExistsError(str(path), "name another --predictions file")


@click.command("eval")
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--modality",
    type=click.Choice(["both", "text", "audio"]),
    default="both",
    show_default=True,
    help="Which branches to evaluate ('both' also reports each alone and the mismatch rate).",
)
@click.option("--model", "model", help="Model directory (from 'emotag train') or registered name.")
@click.option(
    "--fusion", type=click.Choice(["early", "late", "hybrid"]), help="Fusion method (default: the model's)."
)
@click.option(
    "--audio-model",
    help="Audio branch: 'whisper' or 'cnn' (the model directory's own two; default: the one its fusion was "
    "trained on) or a Hugging Face id/dir.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--label-map", help="Label synonyms, e.g. happy=joy,calm=neutral,other= (empty drops the label)."
)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option(
    "--group-by",
    type=click.Choice(["auto", "speaker", "file", "manifest", "none"]),
    default="auto",
    show_default=True,
    help="Rows that share the per-speaker voice normalisation: the 'speaker' column where filled, else "
    "the audio file, and clips that are neither in one group (auto); 'manifest' puts all rows in one "
    "group; 'none' scores every row alone.",
)
@click.option(
    "--predictions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every scored row (true label, fused and per-modality predictions, confidences, "
    "mismatch, probabilities) to this CSV, for error analysis.",
)
@click.option("--force", is_flag=True, help="Overwrite the --predictions file if it exists.")
@click.pass_context
def eval_command(
    ctx: click.Context,
    manifest: Path,
    modality: str,
    model: str | None,
    fusion: str | None,
    audio_model: str | None,
    as_json: bool,
    label_map: str | None,
    batch_size: int,
    group_by: str,
    predictions: Path | None,
    force: bool,
) -> None:
    """Score a labelled MANIFEST.csv (columns audio, start, end, text, label[, speaker]); print metrics."""
    from emotag.evaluation import evaluate, format_report, predictions_csv

    mapping = parse_label_map(label_map)
    bars = _Bars(_quiet(ctx))
    try:
        with guarded():
            if predictions is not None:  # refused before any work, never half-written or overwritten
                _check_predictions_target(predictions, force, manifest)
            from emotag.models import load_model

            loaded = load_model(model, fusion=fusion, modality=modality, audio_model=audio_model)
            report = evaluate(
                manifest,
                model=loaded,
                modality=modality,
                label_map=mapping,
                batch_size=batch_size,
                progress=bars,
                group_by=group_by,
            )
    finally:
        bars.close()
    if predictions is not None:
        with guarded(), _predictions_fix():
            from emotag.exporters import write_text_atomic

            write_text_atomic(predictions, predictions_csv(report))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(format_report(report))


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models_command(as_json: bool) -> None:
    """List the available emotion models (labels, size, model card summary)."""
    from dataclasses import asdict

    from emotag.models import list_models

    with guarded():
        infos = list_models()
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    for info in infos:
        size = f"{info.size_bytes / 1e6:.1f} MB" if info.size_bytes else "-"
        click.echo(f"{info.name}  [{info.source}]  {size}")
        if info.path:
            click.echo(f"  path:     {info.path}")
        if info.labels:
            click.echo(f"  labels:   {', '.join(info.labels)}")
        if info.summary:
            click.echo(f"  summary:  {info.summary}")
        if info.licences:
            click.echo(f"  licences: {info.licences}")
