"""How the CLI turns an :class:`~emotag.errors.EmotagError` into one stderr line and its exit code.

Shared by every command module (``cli``, ``cli_export``, ``cli_model``); ``--debug`` (stored on the root
context) re-raises the original error so its traceback shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from emotag.errors import EmotagError, OutputError


class CliFailure(click.ClickException):
    """A ClickException carrying an EmotagError's exit code, printed as ``emotag: error: …``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click documents per-instance exit codes

    def show(self, file: Any = None) -> None:
        click.echo(f"emotag: error: {self.format_message()}", err=True)


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """Whether ``--debug`` was given (False outside a click context)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return False
    root = ctx.find_root()
    return bool(isinstance(root.obj, dict) and root.obj.get("debug"))


@contextmanager
def guarded() -> Iterator[None]:
    """Turn an EmotagError raised inside into a :class:`CliFailure` (or re-raise it under ``--debug``)."""
    try:
        yield
    except EmotagError as exc:
        if debug_enabled():
            raise
        raise CliFailure(str(exc), exc.exit_code) from exc


def make_output_dir(directory: Path) -> None:
    """Create ``-o DIR`` (and its parents) when it does not exist yet, as ``emotag tag *.mov -o tagged/``
    promises; an existing directory is left as it is.

    Raises:
        OutputError: ``directory`` is an existing file, or it cannot be created (read-only parent, ...).
    """
    if directory.is_dir():
        return
    if directory.exists():
        raise OutputError(str(directory), "it is a file, not a directory", "pass a directory with -o DIR")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(str(directory), f"cannot create the directory: {exc.strerror or exc}") from exc
