"""A hostile run directory (issue #12, "never silently wrong"): 27 cases; 24 fail on
the code before the fix, 3 guard that exact ``%g`` axis names stay as they were.

- Resume key (defect 1, 2 cases): a CSV data file or a truth ``.py`` changed between
  runs recomputes every chunk, with a warning naming what changed.
- Chunk files (defect 2, 5 cases): one copied over another, one without a stored key
  (older bvsim), of another key, of a wrong shape or truncated is recomputed with a
  warning; the CSVs equal the undamaged run's.
- Choosing a directory (defect 3, 1 case) imports nothing its config.toml names.
- ``--overwrite --no-figures`` (defect 7, 1 case) removes every earlier output, keeps
  foreign files.
- Axis directories (defect 8, 1 + 5 cases): values ``%g`` writes alike get their own
  sub-runs; names read back exactly.
- Writes (defect 14, 1 + 1 + 6 + 1 cases): a file-size limit ends in one line with no
  half-written file and no run.json, and the rerun resumes; run.json comes after
  predictions.npz; ``plot``/``report`` refuse a CSV with rows lost, cut mid-line or
  garbage, and a run without run.json, in one line.
- Relative plugin paths (defect 16, 1 case) are saved absolute.
- Chunk file mode and an empty lock (defect 17, 2 cases).

Added since: a directory that is not a bvsim run (no config.toml) but holds files with
bvsim's output names is refused before any compute (1 case, fails on the code before
the fix, which deleted them); ``--overwrite`` replaces only those, and an empty
directory or one with other files is used, its files kept (3 cases that guard).
The lock (3 cases): two threads of one process, or a second process taking over a
stale lock at the same moment, cannot both hold it (2 fail on the code before the
fix); a killed holder's lock is taken over, a live one refused (guards).

CLI-level cases run ``bvsim.cli.main`` in-process on the ``smoke`` preset made tiny.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config
from bvsim.cli import main
from bvsim.config import ConfigError
from bvsim.io import rundir
from bvsim.run.store import load_arrays, save_atomic

TINY = ["--preset", "smoke", "--set", "sweep.n_reps=6", "--set", "sweep.chunk_size=2",
        "--set", "train.steps=20", "--n-jobs", "1"]  # fmt: skip


def _sweep(capsys, out: Path, *extra: str, figures: bool = False) -> tuple[int, str]:
    argv = ["sweep", *TINY, "--out", str(out), *extra]
    rc = main(argv if figures else [*argv, "--no-figures"])
    return rc, capsys.readouterr().err


def _meta(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def _csvs(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}


def _chunk_files(out: Path) -> list[Path]:
    return sorted((out / "chunks").rglob("sets_*.npz"))


# --- 1: the resume key covers the data and the truth code -----------------------------


def _csv_case(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": x[:, 0] - 2 * x[:, 1] + 3.0})
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)

    def change():
        df.assign(y=-df["y"]).to_csv(path, index=False)

    over = ["data.source=csv", f"data.path={path}", "data.target=y", "data.n_train=20"]
    return over, change, "data.path"


def _truth_case(tmp_path):
    path = tmp_path / "truth.py"
    path.write_text("import numpy as np\n\ndef f(x):\n    return np.sin(3 * x[:, 0])\n")

    def change():
        path.write_text("import numpy as np\n\ndef f(x):\n    return -np.sin(3 * x[:, 0])\n")

    return [f"data.truth={path}:f"], change, "data.truth"


@pytest.mark.parametrize("case", [_csv_case, _truth_case], ids=["csv_negated", "truth_edited"])
def test_changed_inputs_recompute_every_chunk(tmp_path, capsys, case):
    over, change, name = case(tmp_path)
    sets = [a for o in over for a in ("--set", o)]
    out = tmp_path / "run"
    assert _sweep(capsys, out, *sets)[0] == 0
    first = pd.read_csv(out / "summary.csv")
    change()
    rc, err = _sweep(capsys, out, *sets)
    assert rc == 0
    meta = _meta(out)
    assert meta["n_chunks_resumed"] == 0
    assert "earlier configuration/data" in err and f"{name} changed" in err
    assert sum(meta["chunks_ignored"].values()) == meta["n_chunks"]
    fresh = tmp_path / "fresh"
    assert _sweep(capsys, fresh, *sets)[0] == 0
    assert _csvs(out) == _csvs(fresh)  # the numbers of the changed inputs
    assert not pd.read_csv(out / "summary.csv").equals(first)


# --- 2: every chunk file is checked against what it should hold ------------------------


def _copy_over(files):
    shutil.copyfile(files[1], files[2])


def _drop_key(files):  # as written before chunk files kept their resume key
    arrays = load_arrays(files[2])
    arrays.pop("key", None), arrays.pop("inputs", None)
    save_atomic(files[2], arrays)


def _other_key(files):
    arrays = load_arrays(files[2])
    arrays["key"] = np.str_("0123456789abcdef")
    save_atomic(files[2], arrays)


def _wrong_shape(files):
    arrays = load_arrays(files[2])
    arrays["pred"] = arrays["pred"][..., :-1]
    save_atomic(files[2], arrays)


def _truncated(files):
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (_copy_over, "other training sets"),
        (_drop_key, "older bvsim"),
        (_other_key, "earlier configuration/data"),
        (_wrong_shape, "wrong shape"),
        (_truncated, "corrupt"),
    ],
    ids=["copied_over_another", "no_stored_key", "other_key", "wrong_shape", "truncated"],
)
def test_damaged_chunk_is_recomputed_with_a_warning(tmp_path, capsys, damage, why):
    out = tmp_path / "run"
    assert _sweep(capsys, out)[0] == 0
    before = _csvs(out)
    files = _chunk_files(out)
    assert len(files) == 3
    damage(files)
    rc, err = _sweep(capsys, out)
    assert rc == 0
    assert _meta(out)["n_chunks_resumed"] == 2
    assert "bvsim: warning: 1 chunk file(s)" in err and why in err
    assert _csvs(out) == before


# --- 3: choosing an output directory runs no code --------------------------------------


def test_stored_config_naming_a_plugin_is_not_imported(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "imported"
    plugin = tmp_path / "evil.py"
    plugin.write_text(f"open({str(marker)!r}, 'w').close()\n\ndef f(x):\n    return x[:, 0]\n")
    (out / "config.toml").write_text(f'name = "x"\nseed = 0\n\n[data]\ntruth = "{plugin}:f"\n')
    rc, err = _sweep(capsys, out)
    assert rc == 2 and "different configuration" in err
    assert not marker.exists()


# --- 7: --overwrite removes every earlier output, keeps foreign files -------------------


def test_overwrite_without_figures_leaves_no_earlier_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert _sweep(capsys, out, figures=True)[0] == 0
    assert (out / "report.md").exists() and list((out / "figures").glob("*.png"))
    (out / "notes.txt").write_text("mine")
    (out / "figures" / "mine.png").write_bytes(b"mine")
    rc, _ = _sweep(capsys, out, "--set", "train.lr=0.02", "--overwrite")
    assert rc == 0
    assert not (out / "report.md").exists()
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["mine.png"]
    assert (out / "notes.txt").read_text() == "mine"
    assert len(list((out / "chunks").iterdir())) == 1  # only this configuration's


# --- a directory that is not a bvsim run: its files with bvsim's names are not lost ----


def _foreign(out: Path) -> dict:
    """A user's directory (no config.toml) holding files with bvsim output names."""
    (out / "figures").mkdir(parents=True)
    files = {out / "report.md": "notes", out / "run.json": "{}",
             out / "figures" / "fits.png": "x", out / "notes.txt": "mine"}  # fmt: skip
    for path, text in files.items():
        path.write_text(text)
    return files


def test_directory_with_foreign_outputs_is_refused_before_any_compute(tmp_path, capsys):
    out = tmp_path / "paper"
    files = _foreign(out)
    rc, err = _sweep(capsys, out)
    assert rc == 2
    assert err.startswith("bvsim: error: ") and err.count("\n") == 1
    assert str(out) in err and "not a bvsim run directory" in err and "--overwrite" in err
    assert any(str(path) in err for path in files)
    for path, text in files.items():
        assert path.read_text() == text
    assert sorted(p.name for p in out.iterdir()) == ["figures", "notes.txt", "report.md",
                                                     "run.json"]  # fmt: skip
    # one file with a bvsim name is enough, a chunks/ or axis/ folder too
    for name in ("summary.csv", "figures/anova.pdf", "chunks", "axis"):
        other = tmp_path / name.replace("/", "_")
        (other / name).parent.mkdir(parents=True)
        (other / name).mkdir() if "." not in name else (other / name).write_text("mine")
        rc, err = _sweep(capsys, other)
        assert rc == 2 and name in err, name


def test_overwrite_replaces_only_files_with_bvsim_names(tmp_path, capsys):
    out = tmp_path / "paper"
    _foreign(out)
    rc, err = _sweep(capsys, out, "--overwrite")
    assert rc == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "report.md").exists()  # --no-figures: replaced by nothing
    assert not (out / "figures").exists()
    assert "finished" in json.loads((out / "run.json").read_text())


@pytest.mark.parametrize("content", [[], ["notes.txt", "data/raw.csv"]], ids=["empty", "other"])
def test_directory_with_other_files_only_is_used_and_they_stay(tmp_path, capsys, content):
    out = tmp_path / "paper"
    out.mkdir()
    for name in content:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("mine")
    rc, err = _sweep(capsys, out, figures=True)
    assert rc == 0, err
    assert (out / "run.json").exists() and (out / "report.md").exists()
    for name in content:
        assert (out / name).read_text() == "mine"
    rc, err = _sweep(capsys, out)  # now a bvsim run: resumed, the files still there
    assert rc == 0 and _meta(out)["n_chunks_resumed"] == 3, err
    for name in content:
        assert (out / name).read_text() == "mine"


# --- 8: second-axis directory names -----------------------------------------------------


def test_axis_values_that_format_alike_get_their_own_sub_runs(tmp_path, capsys):
    out = tmp_path / "run"
    rc, err = _sweep(
        capsys, out, "--set", "sweep.axis=noise_std", "--set", "sweep.axis_values=[0.1, 0.1000001]"
    )
    assert rc == 0, err
    subs = sorted(p.name for p in (out / "axis").iterdir())
    assert subs == ["noise_std=0.1", "noise_std=0.1000001"]
    for sub in subs:
        assert (out / "axis" / sub / "run.json").exists()
    assert sorted(pd.read_csv(out / "summary.csv")["noise_std"].unique()) == [0.1, 0.1000001]


@pytest.mark.parametrize(
    ("value", "name"),
    [(20, "n_train=20"), (0.1, "n_train=0.1"), (1e-05, "n_train=1e-05"),
     (0.1000001, "n_train=0.1000001"), (1 / 3, "n_train=0.3333333333333333")],
)  # fmt: skip
def test_axis_dir_names_are_exact_and_keep_their_g_form(value, name):
    assert rundir.axis_dir_name("n_train", value) == name
    assert float(name.split("=")[1]) == value


# --- 14: write failures, half-written and damaged runs ---------------------------------


def test_file_size_limit_ends_in_one_line_and_no_finished_run(tmp_path, capsys):
    out = tmp_path / "run"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, hard))  # chunks fit, CSVs do not
    try:
        rc, err = _sweep(capsys, out)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert rc == 1
    assert err.startswith("bvsim: error: ") and err.count("\n") == 1
    assert "not written" in err
    assert not (out / "run.json").exists()
    assert not list(out.rglob(".tmp-*"))
    for path in out.glob("*.csv"):  # those written are whole
        pd.read_csv(path)
    # once there is room again, the same command finishes from the kept chunks
    rc, _ = _sweep(capsys, out)
    assert rc == 0 and _meta(out)["n_chunks_resumed"] == 3


def test_run_json_is_written_after_predictions(tmp_path, capsys, monkeypatch):
    import errno

    from bvsim.io import tables

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "predictions.npz")

    monkeypatch.setattr(tables, "write_npz", full)
    rc, err = _sweep(capsys, tmp_path / "run")
    assert rc == 1 and "No space left" in err
    assert not (tmp_path / "run" / "run.json").exists()


def _drop_last_line(path):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))


def _cut_mid_line(path):
    text = path.read_text()
    path.write_text(text[: len(text) - 12])


def _garbage(path):
    path.write_bytes(b"\x00\xff\xfe garbage \x81\x82\n\x00\x00")


def _no_marker(path):
    (path.parent / "run.json").unlink()


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.parametrize(
    "damage", [_drop_last_line, _cut_mid_line, _garbage], ids=["rows_lost", "cut", "garbage"]
)
def test_plot_and_report_refuse_a_damaged_csv(tmp_path, capsys, command, damage):
    out = tmp_path / "run"
    assert _sweep(capsys, out)[0] == 0
    damage(out / "summary.csv")
    rc = main([command, str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("bvsim: error: ") and err.count("\n") == 1 and "summary.csv" in err


def test_plot_refuses_an_unfinished_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert _sweep(capsys, out)[0] == 0
    _no_marker(out / "summary.csv")
    assert main(["plot", str(out)]) == 2
    assert "not a finished run (missing run.json)" in capsys.readouterr().err


# --- 16: plugin paths are saved absolute ----------------------------------------------


def test_relative_plugin_path_is_saved_absolute(tmp_path, capsys, monkeypatch):
    (tmp_path / "truth.py").write_text("import numpy as np\n\ndef f(x):\n    return x[:, 0]\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert _sweep(capsys, out, "--set", "data.truth=truth.py:f")[0] == 0
    assert f'truth = "{tmp_path / "truth.py"}:f"' in (out / "config.toml").read_text()
    monkeypatch.chdir(tmp_path.parent)  # the report's "Reproduce" command, elsewhere
    assert load_config(out / "config.toml").data.truth == f"{tmp_path / 'truth.py'}:f"


# --- 17: chunk file permissions, an empty lock -----------------------------------------


def test_chunk_files_have_the_mode_of_every_other_output(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert _sweep(capsys, tmp_path / "run")[0] == 0
    finally:
        os.umask(old)
    modes = {p.stat().st_mode & 0o777 for p in _chunk_files(tmp_path / "run")}
    assert modes == {(tmp_path / "run" / "config.toml").stat().st_mode & 0o777} == {0o644}


def test_empty_lock_is_held_for_a_grace_period(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setattr(rundir, "LOCK_GRACE_SECONDS", 2.0, raising=False)
    lock = tmp_path / ".lock"
    lock.write_text("")  # created by a sweep that has not written its pid yet
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    writer = threading.Timer(0.3, lambda: lock.write_text(f"{holder.pid}\n"))
    writer.start()
    try:
        with pytest.raises(ConfigError, match=f"pid {holder.pid}"), rundir.run_lock(tmp_path):
            pass
    finally:
        writer.join()
        holder.kill()
        holder.wait()
    lock.write_text("")
    old = time.time() - 60
    os.utime(lock, (old, old))  # empty for long: stale, taken over
    with rundir.run_lock(tmp_path):
        assert lock.read_text().split()[0] == str(os.getpid())


# --- the lock: one holder at a time, threads and racing processes included -------------

_HOLDER = """
import sys, time
from pathlib import Path
from bvsim.config import ConfigError
from bvsim.io import rundir
rundir.LOCK_GRACE_SECONDS = 0.5
try:
    with rundir.run_lock(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
except ConfigError as err:
    print("refused", err, flush=True)
"""


def _holder(out: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-c", _HOLDER, str(out), str(seconds)],
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip


def test_two_threads_of_one_process_cannot_both_hold_the_lock(tmp_path):
    held, release = threading.Event(), threading.Event()

    def hold():
        with rundir.run_lock(tmp_path):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(30)
        with pytest.raises(ConfigError, match=f"in use by another sweep \\(pid {os.getpid()}\\)"):
            with rundir.run_lock(tmp_path):
                pass
    finally:
        release.set()
        thread.join()
    assert not (tmp_path / ".lock").exists()
    with rundir.run_lock(tmp_path):  # free again
        pass


def test_stale_lock_taken_over_by_two_processes_at_once_has_one_holder(tmp_path, monkeypatch):
    """A stale lock (its pid dead) and a second sweep that takes it over between our
    reading that pid and taking it: the old read-unlink-create takeover let both hold
    the lock; with flock the second one is refused."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".lock").write_text(f"{dead.pid}\n")
    other = {}
    alive = rundir._pid_alive

    def racing(pid):
        if not other:  # the other sweep moves in right now, before our takeover
            other["proc"] = proc = _holder(tmp_path, 20)
            other["line"] = proc.stdout.readline()
        return alive(pid)

    monkeypatch.setattr(rundir, "_pid_alive", racing)
    try:
        with rundir.run_lock(tmp_path):
            ours = True
    except ConfigError:
        ours = False
    finally:
        if "proc" in other:
            other["proc"].kill()
            other["proc"].wait()
    assert other["line"]
    theirs = other["line"].startswith("held")
    assert ours != theirs, other["line"]  # exactly one of the two held it


def test_lock_of_a_killed_holder_is_taken_over_and_a_live_one_refused(tmp_path):
    proc = _holder(tmp_path, 30)
    try:
        assert proc.stdout.readline().startswith("held")
        with pytest.raises(ConfigError, match=f"\\(pid {proc.pid}\\)"):
            with rundir.run_lock(tmp_path):
                pass
    finally:
        proc.kill()  # SIGKILL: its lock file stays, with its pid
        proc.wait()
    assert (tmp_path / ".lock").read_text().split()[0] == str(proc.pid)
    with rundir.run_lock(tmp_path):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_a_stale_flock_lock_naming_a_reused_live_pid_is_taken(tmp_path):
    """A killed sweep's lock file names its pid; once that pid belongs to another live
    process (containers reuse pids), the unheld flock still proves the lock stale."""
    live = os.getppid()  # alive, and not this process
    (tmp_path / ".lock").write_text(f"{live} {rundir.FLOCK_MARK}\n")
    with rundir.run_lock(tmp_path):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
    (tmp_path / ".lock").write_text(f"{live}\n")  # an older bvsim's: pid only
    with pytest.raises(ConfigError, match=f"\\(pid {live}\\)"):
        with rundir.run_lock(tmp_path):
            pass
