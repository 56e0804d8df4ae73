"""The resume key describes the code and libraries that computed a chunk: a plugin
module edited inside a live Python process runs (and is keyed) as edited, and chunks of
another torch version or device type are recomputed."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bvsim import BvsimWarning, load_config, run_sweep
from bvsim.config.plugins import load_object
from bvsim.run.fingerprint import input_fingerprints

TINY = ["sweep.n_reps=4", "sweep.chunk_size=2", "train.steps=20", "train.log_every=10"]
SIN = "import numpy as np\n\ndef f(x):\n    return np.sin(3.0 * x[:, 0])\n"
COS = "import numpy as np\n\ndef f(x):\n    return np.cos(5.0 * x[:, 0])\n"


def _module(tmp_path, monkeypatch, text: str) -> tuple[str, Path]:
    """A fresh importable module ``name`` (on sys.path) holding ``text``."""
    name = f"bvsim_test_truth_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name, path


def _edit(path: Path, text: str) -> None:
    """Rewrite ``path`` with a later mtime (a file system's clock may be coarse)."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def _run(name: str, out: Path):
    cfg = load_config(preset="smoke", overrides=[*TINY, f"data.truth={name}:f"])
    return run_sweep(cfg, out, n_jobs=1, figures=False)


def _csvs(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}


def test_a_module_imported_before_its_edit_runs_as_edited(tmp_path, monkeypatch):
    name, path = _module(tmp_path, monkeypatch, SIN)
    __import__(name)  # a user's session imported it, then edited the file
    _edit(path, COS)
    f = load_object(f"{name}:f", "data.truth")
    x = np.linspace(-1, 1, 5)[:, None]
    np.testing.assert_allclose(f(x), np.cos(5.0 * x[:, 0]))


def test_a_module_edited_between_runs_of_one_process_is_retrained_and_keyed(tmp_path, monkeypatch):
    name, path = _module(tmp_path, monkeypatch, SIN)
    out = tmp_path / "run"
    _run(name, out)
    first = _csvs(out)
    _edit(path, COS)
    with pytest.warns(BvsimWarning, match="data.truth changed"):
        _run(name, out)
    meta = json.loads((out / "run.json").read_text())
    assert meta["n_chunks_resumed"] == 0
    assert _csvs(out) != first
    fresh = tmp_path / "fresh"
    _run(name, fresh)  # the same process: the edited code, computed from scratch
    assert _csvs(out) == _csvs(fresh)
    _run(name, out)  # and the chunks are keyed as the code that computed them
    assert json.loads((out / "run.json").read_text())["n_chunks_resumed"] == 2
    assert _csvs(out) == _csvs(fresh)


def test_the_key_names_torch_numpy_and_the_device_types():
    cfg = load_config(preset="smoke", overrides=TINY)
    inputs = input_fingerprints(cfg, "cpu+cuda")
    assert inputs["torch"] == torch.__version__ and inputs["numpy"] == np.__version__
    assert inputs["devices"] == "cpu+cuda"


def test_chunks_of_another_torch_version_are_recomputed(tmp_path, monkeypatch):
    cfg = load_config(preset="smoke", overrides=TINY)
    out = tmp_path / "run"
    run_sweep(cfg, out, n_jobs=1, figures=False)
    first = pd.read_csv(out / "summary.csv")
    monkeypatch.setattr(torch, "__version__", "2.99.0")
    with pytest.warns(BvsimWarning, match="torch changed"):
        run_sweep(cfg, out, n_jobs=1, figures=False)
    meta = json.loads((out / "run.json").read_text())
    assert meta["n_chunks_resumed"] == 0 and meta["inputs"]["torch"] == "2.99.0"
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), first)


def test_a_module_bvsim_imports_first_runs_once(tmp_path, monkeypatch):
    counter = tmp_path / "runs.txt"
    name, _ = _module(tmp_path, monkeypatch, f"open({str(counter)!r}, 'a').write('x')\n" + SIN)
    load_object(f"{name}:f", "data.truth")
    load_object(f"{name}:f", "data.truth")
    assert counter.read_text() == "x"  # imported once, not reloaded straight away
