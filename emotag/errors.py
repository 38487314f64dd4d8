"""The errors emotag raises. Each carries what went wrong and what to do, in one line.

Hierarchy::

    EmotagError                      base of everything emotag raises on purpose
    ├── InputError                   a user-supplied path is missing, a directory, or unreadable
    ├── MediaError                   ffmpeg cannot read the media, or it has no audio stream
    ├── SubtitleError                a subtitle file is unreadable, empty or malformed
    ├── OutputExistsError            an output file exists and ``force`` was not given
    ├── OutputError                  an output cannot be written (directory missing or read-only)
    ├── UnknownExporterError         an export format name is not registered
    ├── ExportError                  an export cannot be made as asked (e.g. no frame rate for a frame format)
    ├── UnknownModelError            a model name or directory cannot be resolved
    ├── ModelError                   a model failed to load or its weights fail verification
    ├── MissingDependencyError       an optional package is needed (says which extra to install)
    └── DataError                    training or evaluation data is missing or malformed

The CLI maps every one of them to a single stderr line and a non-zero exit code (see ``emotag.cli``).
"""

from __future__ import annotations

from collections.abc import Iterable


class EmotagError(Exception):
    """Base class: an error meant to be shown to the user as one line."""

    exit_code = 1


class InputError(EmotagError):
    """Raised when an input path does not exist, is a directory, or cannot be read."""

    exit_code = 2

    def __init__(self, path: str, problem: str, fix: str = "") -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}" + (f"; {fix}" if fix else ""))


class MediaError(EmotagError):
    """Raised when ffmpeg cannot decode a media file or it has no (selected) audio stream."""

    exit_code = 3

    def __init__(self, path: str, problem: str, fix: str = "") -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}" + (f"; {fix}" if fix else ""))


class SubtitleError(EmotagError):
    """Raised when a subtitle file or stream is unreadable, empty, or has malformed timings."""

    exit_code = 4

    def __init__(self, path: str, problem: str, fix: str = "") -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}" + (f"; {fix}" if fix else ""))


class OutputExistsError(EmotagError):
    """Raised when an output file exists and overwriting was not allowed."""

    exit_code = 5

    def __init__(self, path: str, instead: str = "-o DIR to write elsewhere") -> None:
        self.path = path
        super().__init__(f"{path}: output exists; pass --force to overwrite it or {instead}")


class OutputError(EmotagError):
    """Raised when an output cannot be written (missing or read-only directory, disk full)."""

    exit_code = 5

    def __init__(self, path: str, problem: str, fix: str = "choose a writable directory with -o DIR") -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: cannot write output ({problem}); {fix}")


class UnknownExporterError(EmotagError):
    """Raised when an export format is not registered; lists what is."""

    exit_code = 6

    def __init__(self, name: str, available: Iterable[str]) -> None:
        self.name = name
        self.available = sorted(available)
        super().__init__(f"unknown export format {name!r}; available: {', '.join(self.available)}")


class ExportError(EmotagError):
    """Raised when an export cannot be produced as asked (e.g. a frame-based format without a frame rate)."""

    exit_code = 6


class UnknownModelError(EmotagError):
    """Raised when a model name, Hugging Face id or directory cannot be resolved."""

    exit_code = 7

    def __init__(self, name: str, available: Iterable[str] = (), hint: str = "") -> None:
        self.name = name
        self.available = sorted(available)
        msg = f"unknown model {name!r}"
        if self.available:
            msg += f"; available: {', '.join(self.available)}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)


class ModelError(EmotagError):
    """Raised when a model fails to load, its weights fail verification, or inference fails."""

    exit_code = 7


class MissingDependencyError(EmotagError):
    """Raised when an optional dependency is needed; says what to install."""

    exit_code = 8

    def __init__(self, package: str, purpose: str, install: str) -> None:
        self.package = package
        self.purpose = purpose
        self.install = install
        super().__init__(f"{package} is needed for {purpose}; install it with: {install}")


class DataError(EmotagError):
    """Raised when training or evaluation data is missing or malformed."""

    exit_code = 9
