"""Write a file whole or not at all: a temporary file beside the target, then ``os.replace``.

Every file emotag writes goes through here: exporters' outputs, ``emotag eval --predictions``, model
weights, configs and cards. A crash, a full disk or an error while rendering leaves the old file as it was
and no temporary file behind.

Written by hand: the standard library has no atomic write, and the library that had one
(``atomicwrites``) is archived by its author. What it adds to ``tempfile.mkstemp`` + ``os.replace``:
the temporary file is removed on any failure, and the file gets the permissions a plain ``open()`` would
give it (an existing file keeps its own) instead of ``mkstemp``'s owner-only 0600, which would lock
colleagues and other tools on shared storage out of the markers and models.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process umask, read without changing it where the system tells (Linux), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(path: Path) -> int:
    """The permissions ``path`` gets: its own when it exists (an overwrite keeps them), else what a plain
    ``open()`` would give it (0666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path in ``path``'s directory to write the new file to, for writers that want a file
    name (``safetensors.save_file``). When the block ends without an error the temporary file replaces
    ``path`` (with the permissions of :func:`file_mode`); on any error it is removed and ``path`` is left
    as it was.

    Raises:
        OSError: the temporary file cannot be created, or the replacement fails.
    """
    target = Path(path)
    mode = file_mode(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (see :func:`replacing`).

    Raises:
        OSError: the file cannot be written.
    """
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` whole or not at all (see :func:`replacing`).

    Raises:
        OSError: the file cannot be written.
    """
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any], **dump_options: Any) -> None:
    """Write ``data`` as indented JSON (and a final newline) to ``path`` whole or not at all;
    ``dump_options`` go to :func:`json.dumps` (``default=`` for values JSON lacks).

    Raises:
        OSError: the file cannot be written.
        TypeError, ValueError: ``data`` is not JSON (nothing written).
    """
    write_text(path, json.dumps(data, indent=2, **dump_options) + "\n")


__all__ = ["file_mode", "replacing", "write_bytes", "write_json", "write_text"]
