"""A sweep's worker processes die with it: after ``kill -9`` of the sweep's process
its loky workers exit within seconds instead of training on as orphans (holding
their memory and the sweep's stdout and stderr)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import joblib
import pytest

from bvsim import load_config, run_sweep
from bvsim.train.devices import exit_with_owner

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

WATCH_THREAD = "bvsim-exit-with-owner"


def _gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie not yet reaped counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _children(pid: int, marker: str) -> list[int]:
    """The live child processes of ``pid`` whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and marker in cmdline and not _gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if not _gone(p)]


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_loky_workers_exit_after_the_sweep_is_killed(tmp_path):
    over = ["sweep.chunk_size=1", "train.steps=8000"]  # 8 chunks of seconds each
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bvsim", "sweep", "--preset", "smoke", "--n-jobs", "2",
           "--no-figures", "--out", str(out), *(a for o in over for a in ("--set", o))]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            workers = _children(proc.pid, "popen_loky_posix") if len(workers) < 2 else workers
            if len(workers) == 2 and list(out.glob("chunks/*/sets_*.npz")):
                break  # both training: the first chunk is back
            time.sleep(0.1)
        assert len(workers) == 2, "the sweep should start two loky workers"
        assert proc.poll() is None and len(list(out.glob("chunks/*/sets_*.npz"))) < 8
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left = _wait_gone(workers, 10)
        assert not left, f"workers {left} outlived the killed sweep"
    finally:
        proc.kill()
        proc.wait()
        _kill_all(workers)


_WATCHER = """
import sys, time
from bvsim.train.devices import exit_with_owner
exit_with_owner(int(sys.argv[1]), interval=0.1)
print("watching", flush=True)
time.sleep(60)
"""


def test_a_worker_that_is_not_the_owners_child_exits_when_it_dies():
    """A worker started by another process (a manager in between) watches the owner's
    pid: a killed owner not yet reaped (a zombie) counts as dead."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    watcher = subprocess.Popen([sys.executable, "-c", _WATCHER, str(owner.pid)],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert watcher.stdout.readline().strip() == "watching"
        time.sleep(0.5)
        assert watcher.poll() is None, "a live owner leaves its worker alone"
        owner.kill()  # not waited for: a zombie until the finally
        assert watcher.wait(timeout=10) == 75
    finally:
        for p in (owner, watcher):
            p.kill()
            p.wait()


def test_no_watch_in_the_sweeps_own_process():
    """n_jobs=1 and the threading backend train in the sweep's process: nothing there
    watches it (it would be watching itself)."""
    exit_with_owner(None)
    exit_with_owner(os.getpid())
    cfg = load_config(preset="smoke", overrides=["train.steps=20", "sweep.n_reps=4"])
    run_sweep(cfg, n_jobs=1, progress=False, figures=False)
    with joblib.parallel_config(backend="threading"):
        run_sweep(cfg, n_jobs=2, progress=False, figures=False)
    assert WATCH_THREAD not in {t.name for t in threading.enumerate()}
