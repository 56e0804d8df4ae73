"""Hostile inputs (issue #12): each is refused before compute with one line, or stops cleanly.

41 hostile inputs are handled and proven here:

- 35 refused by the command line with ``bvsim: error: ...`` (one line, exit code 2),
  nothing created anywhere (``HOSTILE``): 25 defects of #12 (items 4, 5, 6, 9, 10, 11,
  15), 7 inputs refused already before it (unknown key, wrong type, bad enum,
  missing config file, missing CSV, nan, refused connection) and 3 CSV columns found
  later (a saved index, an unnamed target, a feature listed twice);
- 4 more through the Python API or the writer: ``n_jobs = 0`` in ``run_sweep``, a string
  with control characters written to ``config.toml`` and read back, the probe of a
  truth function at config load (already handled), and ``--n-jobs 40`` over 8 chunks
  capped by the chunks and cores, the effective value in ``run.json``;
- 2 signals to a sweep that is training (items 12, 13): SIGINT with two device threads
  and SIGTERM with loky workers each print a message and exit 130 / 143 with the lock
  released and no worker left running.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bvsim import load_config
from bvsim.cli import main
from bvsim.config import ConfigError, dumps_toml, from_dict

#: The smoke preset made tiny: a run that gets past the checks would finish in seconds.
TINY = ["--set", "sweep.n_reps=4", "--set", "train.steps=20", "--set", "train.log_every=10"]


def _csv(
    rows: int = 40,
    cell: str | None = None,
    only_target: bool = False,
    index: bool = False,
    unnamed_target: bool = False,
) -> str:
    """A regression CSV (a, b -> y); ``cell`` replaces column a of the third row;
    ``index``: a first column without a name, as pandas' to_csv() saves its index;
    ``unnamed_target``: no name for y."""
    if only_target:
        return "y\n" + "".join(f"{i * 0.1}\n" for i in range(rows))
    lines = [f"{',a' if index else 'a'},b,{'' if unnamed_target else 'y'}"]
    for i in range(rows):
        a = cell if (cell is not None and i == 2) else f"{i / rows:.3f}"
        lines.append(f"{f'{i},' if index else ''}{a},{(i * 7 % rows) / rows:.3f},{i * 0.05:.3f}")
    return "\n".join(lines) + "\n"


def _set(*assignments: str) -> list[str]:
    """``--set`` arguments for ``assignments``."""
    return [arg for a in assignments for arg in ("--set", a)]


CSV = _set("data.source=csv", "data.path={tmp}/data.csv")
TRUTH = _set('data.truth="{tmp}/truth.py:f"')

#: (id, extra arguments of `bvsim sweep --preset smoke`, files to write, message fragment)
HOSTILE = [
    # --- already refused before #12 -------------------------------------------------
    ("unknown_key", ["--set", "sweep.n_rep=3"], {}, "did you mean 'n_reps'"),
    ("wrong_type", ["--set", "train.lr=fast"], {}, "train.lr = 'fast': expected a number"),
    ("bad_enum", ["--set", "train.optimizer=lbfgs"], {}, "must be one of 'sgd', 'adam'"),
    ("missing_config_file", ["{tmp}/missing.toml"], {}, "file not found"),
    ("missing_csv", CSV, {}, "data.path"),
    ("nan", ["--set", "data.noise_std=nan"], {}, "not nan"),
    ("scheduler_refused", ["--scheduler", "tcp://127.0.0.1:{closed}"], {}, "cannot connect"),
    # --- 4: the run name is one safe path component ----------------------------------
    ("name_traversal", ["--set", 'name="../../x"'], {}, "single path component"),
    ("name_absolute", ["--set", 'name="/tmp/x"'], {}, "single path component"),
    ("name_empty", ["--set", 'name=""'], {}, "non-empty"),
    ("name_too_long", ["--set", f"name={'a' * 300}"], {}, "at most 100 characters"),
    ("name_newline", ["--set", r'name="a\nb"'], {}, "control"),
    # --- 5: numbers finite, representable in the training dtype; CSV cells sane -------
    ("lr_above_float32", ["--set", "train.lr=1e39"], {}, "not representable in train.dtype"),
    ("test_noise_inf", ["--set", "data.test_noise_std=inf"], {}, "finite number, not inf"),
    ("x_low_minus_inf", ["--set", "data.x_low=-inf"], {}, "data.x_low = -inf"),
    (
        "x_range_overflows",
        _set("train.dtype=float64", "data.x_low=-1e308", "data.x_high=1e308"),
        {},
        "the range overflows",
    ),
    ("csv_inf", CSV, {"data.csv": _csv(cell="inf")}, "non-finite value (line 4: inf)"),
    ("csv_1e308", CSV, {"data.csv": _csv(cell="1e308")}, "a value too large (line 4"),
    # --- 6: the truth function on the real test points and first training sets -------
    (
        "truth_nan_off_probe",  # the 7 probe points miss (0.1, 0.3)
        TRUTH,
        {
            "truth.py": "import numpy as np\n"
            "def f(x):\n    return np.where((x[:, 0] > 0.1) & (x[:, 0] < 0.3), np.nan, x[:, 0])\n"
        },
        "must be finite on the whole x range",
    ),
    (
        "truth_shape_off_probe",
        TRUTH,
        {
            "truth.py": "import numpy as np\n"
            "def f(x):\n    return x[:, 0] if len(x) == 7 else np.hstack([x, x])\n"
        },
        "returned shape (41, 2) for x of shape (41, 1)",
    ),
    # --- 9: a CSV pool against the n_train axis; a CSV with no feature ----------------
    (
        "csv_n_train_axis_subsample",
        [
            *CSV,
            *_set("data.resample=subsample", "sweep.axis=n_train", "sweep.axis_values=[5, 100]"),
        ],
        {"data.csv": _csv()},
        "sweep.axis_values = [5.0, 100.0] (n_train up to 100)",
    ),
    (
        "csv_n_train_axis_disjoint",
        [*CSV, *_set("data.resample=disjoint", "data.n_train=5", "sweep.axis=n_train")]
        + _set("sweep.axis_values=[5, 10]"),
        {"data.csv": _csv()},
        "(n_train up to 10) x sweep.n_reps = 4: disjoint sets need 40 rows",
    ),
    ("csv_only_target", CSV, {"data.csv": _csv(only_target=True)}, "no feature columns"),
    # pandas' to_csv() with its index: an unnamed first column ("Unnamed: 0")
    ("csv_saved_index", CSV, {"data.csv": _csv(index=True)}, "column 1 has no name"),
    ("csv_unnamed_target", CSV, {"data.csv": _csv(unnamed_target=True)}, "set data.target"),
    (
        "csv_features_twice",
        [*CSV, "--set", "data.features=['a','a']"],
        {"data.csv": _csv()},
        "data.features = ['a', 'a']: lists column(s) 'a' more than once",
    ),
    # --- 10: --scheduler -------------------------------------------------------------
    ("scheduler_bogus", ["--scheduler", "bogus"], {}, "expected a dask scheduler address"),
    ("scheduler_bad_port", ["--scheduler", "tcp://host:99999"], {}, "HOST:PORT"),
    ("scheduler_silent", ["--scheduler", "tcp://127.0.0.1:{silent}"], {}, "no dask scheduler"),
    # a service that is not dask; before, its reply was read as a frame of 3.07 EiB
    ("scheduler_http", ["--scheduler", "tcp://127.0.0.1:{http}"], {}, "not a dask scheduler"),
    # --- 11: --n-jobs ----------------------------------------------------------------
    ("n_jobs_zero", ["--n-jobs", "0"], {}, "--n-jobs 0: expected a number of workers >= 1"),
    # --- 15: a sweep that does not fit in memory -------------------------------------
    ("huge_n_test", ["--set", "data.n_test=100000000000"], {}, "lower data.n_test"),
    ("huge_n_train", ["--set", "data.n_train=1000000000000"], {}, "lower data.n_train"),
    ("huge_hidden", ["--set", "model.hidden=[10000000, 10000000]"], {}, "lower model.hidden"),
    ("huge_n_reps", ["--set", "sweep.n_reps=10000000000000"], {}, "lower sweep.n_reps"),
]


def test_the_count_in_the_docstring():
    """The docstring's counts follow the table (35 command lines + 6 other cases)."""
    assert len(HOSTILE) == 35 and "41 hostile inputs" in __doc__


def _serve(handler) -> tuple[int, socket.socket]:
    """A TCP server on loopback answering every connection with ``handler(conn)``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def loop():
        conns = []
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed
                for c in conns:
                    c.close()
                return
            conns.append(conn)
            handler(conn)

    threading.Thread(target=loop, daemon=True).start()
    return server.getsockname()[1], server


@pytest.fixture
def ports():
    """Ports of a service that never answers, one that answers HTTP, and a closed one."""
    silent, s1 = _serve(lambda conn: None)
    http, s2 = _serve(lambda conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 8))
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()
    yield {"silent": silent, "http": http, "closed": closed}
    s1.close()
    s2.close()


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("case_id, args, files, needle", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input_is_one_line_before_compute(
    case_id, args, files, needle, tmp_path, monkeypatch, capsys, ports
):
    import bvsim.cli

    monkeypatch.setattr(bvsim.cli, "SCHEDULER_TIMEOUT", 2.0, raising=False)
    work = tmp_path / "a" / "b"  # name = "../../x" would land in tmp_path/a/x
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    argv = ["sweep", "--preset", "smoke", *TINY]
    argv += [a.format(tmp=tmp_path, **ports) for a in args]
    before = _tree(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bvsim: error: ") and err.count("\n") == 1, err
    assert needle in err
    assert _tree(tmp_path) == before  # no results/, no chunks/, nothing outside either


def test_control_characters_in_strings_round_trip_through_config_toml():
    import tomllib

    from bvsim.config import load_config as load_keys  # the keys only: no file is read

    csv = ["data.source=csv", "data.path=data.csv"]  # data.target is a key of the CSV source
    cfg = load_keys(preset="smoke", overrides=[*csv, 'data.target="a\\nb\\u0001c\\td"'])

    assert from_dict(tomllib.loads(dumps_toml(cfg))) == cfg


def test_api_refuses_n_jobs_zero(tmp_path):
    from bvsim import run_sweep

    cfg = load_config(preset="smoke", overrides=TINY[1::2])
    with pytest.raises(ConfigError, match="n_jobs = 0"):
        run_sweep(cfg, tmp_path / "run", n_jobs=0)
    assert not (tmp_path / "run").exists()


def test_truth_probe_at_config_load_still_refuses(tmp_path):
    (tmp_path / "t.py").write_text("def f(x):\n    raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="boom"):
        load_config(preset="smoke", overrides=[f'data.truth="{tmp_path}/t.py:f"'])


def test_n_jobs_capped_by_chunks_and_cores_and_reported(tmp_path):
    import joblib

    out = tmp_path / "run"
    argv = ["sweep", "--preset", "smoke", *TINY, "--set", "sweep.n_reps=8"]
    argv += ["--set", "sweep.chunk_size=1", "--n-jobs", "40", "--out", str(out), "--no-figures"]
    assert main(argv) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["n_chunks"] == 8
    assert info["n_jobs"] == min(8, joblib.cpu_count())


# --- signals: a real process, stopped while it trains ---------------------------------

LONG = ["--set", "sweep.n_reps=64", "--set", "sweep.chunk_size=4", "--set", "train.steps=20000"]


def _start(out: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "bvsim", "sweep", "--preset", "smoke", *LONG]
    argv += ["--out", str(out), "--no-figures", *extra]

    def default_sigint():  # a background shell may have left SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(
        argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(out.glob("chunks/*")):  # made just before the first chunk trains
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    time.sleep(1.0)  # well inside training
    return proc


def _children(pid: int) -> list[int]:
    psutil = pytest.importorskip("psutil")
    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _gone(pids, timeout=10.0) -> list[int]:
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [
            p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
        ]
        time.sleep(0.1)
    return alive


@pytest.mark.parametrize(
    "case_id, sig, extra, rc, needle",
    [
        ("sigint_two_device_threads", signal.SIGINT, ["--devices", "cpu,cpu"], 130, "interrupted"),
        ("sigterm_loky_workers", signal.SIGTERM, ["--n-jobs", "2"], 143, "terminated (SIGTERM)"),
    ],
    ids=["sigint_two_device_threads", "sigterm_loky_workers"],
)
def test_signal_stops_cleanly(case_id, sig, extra, rc, needle, tmp_path):
    out = tmp_path / "run"
    proc = _start(out, *extra)
    workers = _children(proc.pid)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == rc, err
    assert needle in err and "Run the same command again to resume" in err
    assert "Traceback" not in err and "terminate called" not in err
    assert not (out / ".lock").exists()
    assert _gone(workers) == []  # no worker left computing
