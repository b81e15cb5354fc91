"""The shared file helpers: atomic writes and the JSON fallback."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cod_monitor._io import atomic_write, json_default


def test_json_default_keeps_numbers_numbers():
    record = {"int": np.int64(3), "f32": np.float32(0.25), "arr": np.arange(3),
              "flag": np.bool_(True), "path": Path("/tmp/x")}
    back = json.loads(json.dumps(record, default=json_default))
    assert back == {"int": 3, "f32": 0.25, "arr": [0, 1, 2], "flag": True, "path": "/tmp/x"}
    # what default=str, used before, wrote
    assert json.loads(json.dumps({"int": np.int64(3)}, default=str)) == {"int": "3"}


def test_atomic_write_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write(path, "first")
    atomic_write(path, b"second")
    assert path.read_text() == "second"
    assert os.listdir(tmp_path) == ["summary.json"]
    # the permissions of a plain open(path, "w"), not mkstemp's 0600
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    plain.unlink()


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write(path, "old")
    with pytest.raises(TypeError):
        atomic_write(path, 12345)  # neither str nor bytes
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["summary.json"]
