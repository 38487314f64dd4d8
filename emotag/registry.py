"""Entry-point discovery shared by the exporter and model registries.

Built-ins and third-party extensions go through one code path (as llm's ``DEFAULT_PLUGINS`` do): a
registry is a mapping from short lowercase names to *import paths* (``"emotag.exporters.srt:EXPORTER"``);
extensions add names through the entry-point groups ``emotag.exporters`` and ``emotag.models``. Nothing is
imported until a name is asked for (OpenTimelineIO's ``PythonPlugin.module()``), so ``emotag --help`` never
pays for torch and a broken extension only matters when someone selects it. Setting
``EMOTAG_DISABLE_EXTENSIONS=1`` ignores all entry points (like ``OTIO_DISABLE_ENTRYPOINTS_PLUGINS``).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

log = logging.getLogger(__name__)

DISABLE_ENV = "EMOTAG_DISABLE_EXTENSIONS"


@dataclass(frozen=True, slots=True)
class Entry:
    """A registered name and where its object lives.

    Attributes:
        name: the short id users type (``srt``, ``resolve-edl``).
        target: ``"module.path:attribute"``.
        source: ``"built-in"`` or the distribution that declared the entry point.
    """

    name: str
    target: str
    source: str = "built-in"

    def load(self) -> Any:
        """Import and return the object (raises ImportError/AttributeError as they come)."""
        module_name, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
        return obj


def extensions_disabled() -> bool:
    """Whether ``EMOTAG_DISABLE_EXTENSIONS`` is set to a true value."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def discover(group: str, builtins: Mapping[str, str]) -> dict[str, Entry]:
    """Built-in entries plus the entry points of ``group`` (built-ins win on a name clash).

    Args:
        group: entry-point group, e.g. ``"emotag.exporters"``.
        builtins: name → ``"module:attribute"`` for emotag's own implementations.

    Returns:
        name → :class:`Entry`, nothing imported yet.
    """
    entries = {name: Entry(name, target) for name, target in builtins.items()}
    if extensions_disabled():
        return entries
    try:
        eps = metadata.entry_points(group=group)
    except Exception as exc:  # a broken installed distribution must not take emotag down
        log.warning("could not read entry points of %s: %s", group, exc)
        return entries
    for ep in eps:
        if ep.name in entries:
            log.warning("extension %s (%s) ignored: the name is taken by a built-in", ep.name, ep.value)
            continue
        dist = getattr(ep, "dist", None)
        source = f"{dist.name} {dist.version}" if dist is not None else "entry point"
        entries[ep.name] = Entry(ep.name, ep.value, source)
    return entries
