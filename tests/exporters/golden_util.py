"""Golden-file comparison: ``tests/golden/<format>/<case><suffix>``.

Golden files are regenerated only when ``EMOTAG_UPDATE_GOLDEN=1`` is set (then the test still fails, so a
regeneration is never silent in CI); review the diff with ``git diff tests/golden`` before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def check_golden(fmt: str, case: str, suffix: str, text: str) -> None:
    """Compare ``text`` byte for byte with the golden file (or write it under EMOTAG_UPDATE_GOLDEN=1)."""
    path = GOLDEN / fmt / f"{case}{suffix}"
    if os.environ.get("EMOTAG_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_bytes() if path.exists() else None
        path.write_bytes(text.encode("utf-8"))
        if old != text.encode("utf-8"):
            pytest.fail(f"golden file {path} (re)written; rerun without EMOTAG_UPDATE_GOLDEN")
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path}; create it with EMOTAG_UPDATE_GOLDEN=1 and review it")
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, f"output differs from {path}"
