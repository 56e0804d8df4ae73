"""A configuration ``load_config`` checked carries the digests of the files it checked
(the CSV, the user's module, truth or estimator file); a sweep checks it again when one
of them changed since, with the one-line errors ``load_config`` gives, before anything
is created or trained. Unchanged files are not checked again."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import bvsim.api
import bvsim.run.executor
import bvsim.run.preflight
from bvsim import ConfigError, load_config, run_sweep


@pytest.fixture
def no_training(monkeypatch):
    """Training any member fails the test."""

    def train_members(*args, **kwargs):
        raise AssertionError("trained before the edited file was checked")

    monkeypatch.setattr(bvsim.run.executor, "train_members", train_members)


@pytest.fixture
def calls(monkeypatch):
    """The prefixes check_user_code is called with, as it is called."""
    seen = []
    check = bvsim.run.preflight.check_user_code

    def counting(cfg, prefix=""):
        seen.append(prefix)
        return check(cfg, prefix)

    monkeypatch.setattr(bvsim.run.preflight, "check_user_code", counting)
    monkeypatch.setattr(bvsim.api, "check_user_code", counting)
    return seen


def _lines() -> list[str]:
    gen = np.random.default_rng(0)
    x = gen.uniform(-1, 1, 40)
    y = np.sin(3 * x) + 0.1 * gen.standard_normal(40)
    return ["x,y\n", *(f"{a:.6f},{b:.6f}\n" for a, b in zip(x, y, strict=True))]


def _edit(path: Path, text: str) -> None:
    """Rewrite ``path`` with a later mtime (a file system's clock may be coarse)."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def _csv_config(tmp_path: Path, *extra: str):
    path = tmp_path / "dr.csv"
    path.write_text("".join(_lines()))
    over = ["sweep.n_reps=3", "train.steps=10", "data.source=csv", f"data.path={path}"]
    return path, load_config(preset="smoke", overrides=[*over, "data.n_train=20", *extra])


@pytest.mark.parametrize(
    ("edit", "extra", "needle"),
    [
        (lambda ls: [*ls[:5], "0.5,\n", *ls[5:]], [], r"column 'y' has a missing value \(line 6\)"),
        (lambda ls: [*ls[:5], "0.5,abc\n", *ls[5:]], [], r"column 'y' is not numeric \(line 6"),
        (lambda ls: ls[:15], ["data.resample=subsample"], r" = 20: subsampling .* at most the 10 "),
    ],
    ids=["nan-row", "text", "cut-short"],
)
def test_a_csv_edited_after_load_config_is_checked_before_compute(
    tmp_path, no_training, edit, extra, needle
):
    """A NaN row trained every member to 'diverged' (all estimates NaN, no error), a
    word reached a raw 'could not convert string to float', a file cut below n_train
    rows trained anyway."""
    path, cfg = _csv_config(tmp_path, *extra)
    _edit(path, "".join(edit(_lines())))
    where = rf"data.(path = '{re.escape(str(path))}'|n_train)"
    with pytest.raises(ConfigError, match=rf"^config: {where}.*{needle}"):
        run_sweep(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # nothing created before the check
    with pytest.raises(ConfigError) as info:
        run_sweep(cfg, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith("(data.path changed since the configuration was loaded and checked)")


def test_unchanged_files_are_not_checked_again_and_an_edit_once(tmp_path, calls):
    path, cfg = _csv_config(tmp_path)
    assert len(calls) == 1
    run_sweep(cfg, progress=False)
    assert len(calls) == 1  # the digests are the same: not checked again
    lines = _lines()
    lines[3] = "0.25,0.5\n"  # still a good file: checked again, then trained
    _edit(path, "".join(lines))
    first = bvsim.run.preflight.checked_user_code(cfg)
    assert calls[1:] == ["config: "]
    assert bvsim.run.preflight.checked_user_code(first) is first
    run_sweep(first, progress=False)
    assert len(calls) == 2  # the new digests are marked: once per version of the file


def test_a_module_edited_after_load_config_is_checked_before_compute(tmp_path, no_training):
    """BatchNorm added to a module factory after load_config reached a raw traceback
    from the training instead of the one-line 'has buffers' error."""
    module = tmp_path / "net.py"
    module.write_text(
        "from torch import nn\n\n\ndef make():\n"
        "    return nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1))\n"
    )
    over = ["sweep.n_reps=2", "train.steps=5", "model.kind=module", f"model.module={module}:make"]
    cfg = load_config(preset="smoke", overrides=over)
    _edit(module, module.read_text().replace("nn.Tanh()", "nn.BatchNorm1d(4)"))
    with pytest.raises(ConfigError, match=r"^config: model.module = .*has buffers") as info:
        run_sweep(cfg, tmp_path / "run", progress=False)
    assert "\n" not in str(info.value)
    assert "model.module changed since" in str(info.value)
    assert not (tmp_path / "run").exists()
