"""Relative file paths: those written in a TOML file are read from the file's directory,
those of --set (and the Python API) from the current directory; a run's saved
config.toml names them absolute and reproduces the run from anywhere."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bvsim import load_config
from bvsim.cli import main
from bvsim.config import load as load_module

CSV_TOML = """name = "rel"
[data]
source = "csv"
path = "d.csv"
n_train = 12
[model]
hidden = [4]
[train]
steps = 20
log_every = 10
[sweep]
weight_decay = [0.0, 0.1]
n_reps = 4
chunk_size = 2
n_seeds = 1
"""


def _csv(path: Path, seed: int) -> None:
    gen = np.random.default_rng(seed)
    x = gen.uniform(-1, 1, size=(40, 2))
    y = np.sin(3 * x[:, 0]) + 0.3 * gen.standard_normal(40)
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}).to_csv(path, index=False)


def _dirs(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """sub/ (cfg.toml and its d.csv) and other/ (another d.csv), the current directory."""
    sub, other = tmp_path / "sub", tmp_path / "other"
    sub.mkdir()
    other.mkdir()
    _csv(sub / "d.csv", 1)
    _csv(other / "d.csv", 2)
    (sub / "cfg.toml").write_text(CSV_TOML)
    monkeypatch.chdir(other)
    return sub, other


def test_a_data_path_in_a_file_is_read_from_its_directory(tmp_path, monkeypatch):
    sub, other = _dirs(tmp_path, monkeypatch)
    cfg = load_config("../sub/cfg.toml", preset="smoke")
    assert cfg.data.path == str((sub / "d.csv").resolve())
    over = load_config("../sub/cfg.toml", preset="smoke", overrides=["data.path=d.csv"])
    assert over.data.path == str((other / "d.csv").resolve())  # --set: the current directory


def test_plugin_files_in_a_file_are_read_from_its_directory(tmp_path, monkeypatch):
    sub, _ = _dirs(tmp_path, monkeypatch)
    (sub / "plug.toml").write_text(
        '[data]\ntruth = "truth.py:f"\n[model]\nkind = "sklearn"\nestimator = "lib/est.py:Est"\n'
    )
    (sub / "net.toml").write_text('[model]\nkind = "module"\nmodule = "pkg.mod:make"\n')
    # the pure loader: no user code is imported
    cfg = load_module.load_config("../sub/plug.toml", preset="smoke")
    root = sub.resolve()
    assert cfg.data.truth == f"{root / 'truth.py'}:f"
    assert cfg.model.estimator == f"{root / 'lib' / 'est.py'}:Est"
    net = load_module.load_config("../sub/net.toml", preset="smoke")
    assert net.model.module == "pkg.mod:make"  # a module name, not a file
    api = load_module.from_dict({"data": {"truth": "truth.py:f"}})  # the API: the cwd
    assert api.data.truth == f"{Path.cwd().resolve() / 'truth.py'}:f"


def test_a_saved_config_reproduces_its_run_from_anywhere(tmp_path, monkeypatch, capsys):
    sub, other = _dirs(tmp_path, monkeypatch)
    assert main(["sweep", "../sub/cfg.toml", "--n-jobs", "1", "--no-figures", "--out", "run"]) == 0
    meta = json.loads((other / "run" / "run.json").read_text())
    digest = hashlib.sha256((sub / "d.csv").read_bytes()).hexdigest()
    assert meta["inputs"]["data.path"] == f"sha256:{digest}"  # sub/d.csv, not other/d.csv
    monkeypatch.chdir(tmp_path)
    run = "other/run"
    assert main(["sweep", f"{run}/config.toml", "--n-jobs", "1", "--no-figures", "--out", run]) == 0
    meta = json.loads((other / "run" / "run.json").read_text())
    assert meta["n_chunks_resumed"] == meta["n_chunks"] == 2
