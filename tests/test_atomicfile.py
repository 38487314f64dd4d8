"""emotag.atomicfile: whole or nothing, no temporary file left behind, the permissions open() would give."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from emotag import atomicfile


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_text("old", encoding="utf-8")
    atomicfile.write_json(target, {"b": 1, "a": [1.5, "x"]})
    assert json.loads(target.read_text(encoding="utf-8")) == {"b": 1, "a": [1.5, "x"]}
    assert target.read_text(encoding="utf-8").endswith("}\n")
    assert _entries(tmp_path) == ["a.json"]


def test_an_error_while_writing_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "weights.safetensors"
    target.write_bytes(b"old weights")
    with pytest.raises(RuntimeError, match="disk"), atomicfile.replacing(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old weights"
    assert _entries(tmp_path) == ["weights.safetensors"]


def test_data_that_is_not_json_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "card.json"
    with pytest.raises(TypeError):
        atomicfile.write_json(target, {"x": object()})
    assert _entries(tmp_path) == []
    atomicfile.write_json(target, {"x": np.float32(0.5)}, default=float)
    assert json.loads(target.read_text(encoding="utf-8")) == {"x": 0.5}


def test_a_named_writer_gets_a_path_in_the_same_folder(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    target = tmp_path / "heads.safetensors"
    with atomicfile.replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp))
    assert load_file(str(target))["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert _entries(tmp_path) == ["heads.safetensors"]


def test_permissions_follow_the_umask_and_an_existing_file_keeps_its_own(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.txt"
        atomicfile.write_text(fresh, "x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # not mkstemp's 0600
        os.umask(0o077)
        private = tmp_path / "private.txt"
        atomicfile.write_bytes(private, b"x")
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        fresh.chmod(0o640)
        atomicfile.write_text(fresh, "y")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640 and fresh.read_text(encoding="utf-8") == "y"
    finally:
        os.umask(old)


def test_a_missing_folder_is_an_oserror_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        atomicfile.write_text(tmp_path / "missing" / "a.txt", "x")
    assert _entries(tmp_path) == []
