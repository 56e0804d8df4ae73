"""Command line: ``bvsim sweep | presets | plot | report``."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from joblib.parallel import BACKENDS

from .api import load_config, run_sweep
from .config import BvsimWarning, ConfigError, check_key, is_classification, list_presets
from .config.checks import MIN_SETS_FOR_TARGET
from .io.rundir import RunDirError, check_config_unchanged
from .io.tables import read_tables
from .present.common import noise_in_bias, num, pm, valid_mask, valid_rows
from .run.executor import check_n_jobs, streaming_backends
from .train.devices import resolve_sweep_devices
from .train.engine import layer_shapes
from .train.trainers import kind_note

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
#: Seconds for the whole exchange with a dask scheduler (connect and handshake).
SCHEDULER_TIMEOUT = 10.0
#: A dask scheduler address: [protocol://]host:port.
_ADDRESS = re.compile(
    r"(?:(?P<protocol>tcp|tls|ws|wss|ucx)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)"
    r":(?P<port>[0-9]{1,5})"
)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that the cleanup of Ctrl-C runs (workers
    stopped, the lock released, finished chunks kept)."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextmanager
def _sigterm_as_interrupt():
    """While a sweep runs, SIGTERM raises :class:`Terminated` instead of killing the
    process outright."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextmanager
def _warnings_as_lines():
    """While a command runs, a bvsim warning (:class:`~bvsim.config.BvsimWarning`, what
    the library says without stopping) is shown as one ``bvsim: warning: ...`` line on
    stderr, like the errors; any other warning as Python shows it. Python's filters
    still decide which are shown (``-W``, ``PYTHONWARNINGS``)."""
    with warnings.catch_warnings():
        show = warnings.showwarning

        def as_line(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, BvsimWarning):
                print(f"bvsim: warning: {message}", file=sys.stderr)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = as_line
        yield


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bvsim",
        description="Bias-variance Monte Carlo simulator over a weight-decay grid.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sweep", help="train the ensemble and write CSVs, figures, report")
    s.add_argument(
        "config",
        nargs="?",
        help="a TOML file: its keys override the preset's, or without --preset the "
        "defaults (without CONFIG and --preset the preset is seed-demo)",
    )
    s.add_argument("--preset", help="a shipped preset (see `bvsim presets`)")
    s.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one key, e.g. --set sweep.n_reps=100 (repeatable)",
    )
    s.add_argument(
        "--target-se",
        type=float,
        metavar="X",
        help="add training sets a chunk at a time until every paired SE against the best "
        "lambda, and the SE of the best lambda's expected error, are <= X, stopping no "
        f"earlier than {MIN_SETS_FOR_TARGET} sets (same as --set sweep.target_se=X; "
        f"sweep.n_reps is then the maximum and must be above {MIN_SETS_FOR_TARGET})",
    )
    s.add_argument("--out", help="run directory (default results/<name>)")
    s.add_argument("--device", default=None, help="cpu (default), cuda, cuda:N or auto")
    s.add_argument("--n-jobs", type=int, default=-1, help="worker processes (-1: all cores)")
    s.add_argument(
        "--devices",
        metavar="D1,D2,...",
        help="share chunks among several devices at once, e.g. cuda:0,cuda:1,cpu "
        "(one worker per entry)",
    )
    s.add_argument(
        "--backend",
        default=None,
        help="joblib backend for the chunks (loky, threading, dask, ...); default loky",
    )
    s.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running dask.distributed scheduler (implies --backend dask)",
    )
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run directory that holds another configuration (chunks too), or "
        "the files with bvsim's output names in a directory that is not a bvsim run",
    )
    s.add_argument("--no-figures", action="store_true", help="skip figures and report")

    sub.add_parser("presets", help="list the shipped presets")
    for name, what in (("plot", "redraw the figures"), ("report", "rewrite report.md")):
        q = sub.add_parser(name, help=f"{what} of a run from its CSVs (no training)")
        q.add_argument("run_dir")
    return p


def _check_writable(out: Path) -> None:
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ConfigError(f"--out {out}: {probe} is not a writable directory")


def _check_scheduler_address(address: str) -> None:
    match = _ADDRESS.fullmatch(address)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ConfigError(
            f"--scheduler {address!r}: expected a dask scheduler address "
            "[tcp://]HOST:PORT, e.g. tcp://10.0.0.5:8786"
        )


def _probe_scheduler(address: str, timeout: float) -> None:
    """Ask the service at ``address`` who it is, the whole exchange (connect, dask's
    handshake, one reply) within ``timeout`` seconds: a one-line ConfigError unless a
    dask scheduler answers."""
    from distributed.comm import connect  # deferred: dask is optional

    async def identify():
        comm = await connect(address, timeout=timeout / 2)  # leaves time for the reply
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    where = f"--scheduler {address}"
    try:
        reply = asyncio.run(asyncio.wait_for(identify(), timeout))
    except TimeoutError:
        raise ConfigError(
            f"{where}: no dask scheduler answered within {timeout:g} s (is it one?)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot connect ({err})") from None
    except Exception as err:  # a service that is not dask sends what dask cannot read
        raise ConfigError(
            f"{where}: not a dask scheduler (its answer: {type(err).__name__})"
        ) from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise ConfigError(f"{where}: not a dask scheduler (it answered {reply!r:.60})")


@contextmanager
def _backend(backend: str | None, scheduler: str | None):
    """The joblib backend for the chunks; ``dask`` connects to ``scheduler`` (or starts
    a local cluster when none is given)."""
    if scheduler is not None:
        backend = backend or "dask"
        if backend != "dask":
            raise ConfigError(f"--scheduler needs --backend dask (got --backend {backend})")
        _check_scheduler_address(scheduler)
    if backend is None:
        yield
        return
    if backend == "dask":
        try:
            from dask.distributed import Client  # deferred: dask is optional
        except ImportError:
            raise ConfigError(
                "--backend dask needs dask.distributed: pip install 'bvsim[distributed]'"
            ) from None
        if scheduler:
            _probe_scheduler(scheduler, SCHEDULER_TIMEOUT)
        try:
            client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT}s") if scheduler else Client()
        except (OSError, TimeoutError) as err:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({err})") from None
        with client, joblib.parallel_config(backend="dask"):
            yield
        return
    usable = streaming_backends()
    if backend not in usable:
        what = "cannot stream chunks as they finish" if backend in BACKENDS else "unknown"
        raise ConfigError(f"--backend {backend}: {what}; usable: {', '.join(sorted(usable))}")
    with joblib.parallel_config(backend=backend):
        yield


def _devices(args) -> list[str] | None:
    """``--devices`` as a list (None without it; ``args.device`` then defaults to
    ``cpu``), every entry checked; both options at once are refused."""
    devices = None
    if args.devices is not None and args.device is not None:
        raise ConfigError(
            f"--device {args.device} and --devices {args.devices}: give one of them "
            "(--devices lists every device the sweep uses)"
        )
    args.device = args.device or "cpu"
    if args.devices:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
        if not devices:
            raise ConfigError(f"--devices {args.devices!r}: expected e.g. cuda:0,cpu")
    try:  # resolved here, so that a wrong one is a one-line error; passed down resolved
        args.device, devices = resolve_sweep_devices(args.device, devices)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return devices


def _terminal_table(s: pd.DataFrame, cfg) -> str:
    """The summary as the terminal shows it after a sweep: each term ± its SE, the best
    λ marked, and a line saying what the columns are where that is not plain."""
    ok = valid_mask(s)  # on the summary's own index (valid_rows renumbers)
    out = pd.DataFrame(index=s.index)
    if cfg.sweep.axis != "none":
        out[cfg.sweep.axis] = s[cfg.sweep.axis]
    out["weight_decay"] = [f"{v:g}" for v in s["weight_decay"]]
    folded = noise_in_bias(s)  # data from a file: the noise is unknown, inside bias2
    terms = ["bias2", "variance"] + ([] if folded else ["noise"]) + ["expected_error"]
    shown_se = False
    for name in terms:
        se = s[f"{name}_se"] if f"{name}_se" in s else pd.Series(float("nan"), s.index)
        if name == "noise":  # known (the generator's): no Monte Carlo error
            se = se.where(se > 0)
        out["bias2+noise" if folded and name == "bias2" else name] = [
            pm(v, e) if good else "—" for good, v, e in zip(ok, s[name], se, strict=True)
        ]
        shown_se = shown_se or bool((ok & np.isfinite(se.astype(float))).any())
    out["test_error"] = [num(v) for v in s["test_error"]]
    if "is_best" in s:
        out["best"] = ["*" if b else "" for b in s["is_best"].fillna(False).astype(bool)]
    notes = ["± one SE"] if shown_se else ["no SE in this run"]
    notes.append("* the best λ" + (" of each value" if cfg.sweep.axis != "none" else ""))
    if is_classification(cfg):
        noise = "" if folded else " (noise: the entropy)"
        notes.append(f"the terms of the expected cross-entropy, in nats{noise}")
    if folded:
        notes.append("bias2+noise: data from a file has an unknown noise, inside bias²")
    table = "\n".join(line.rstrip() for line in out.to_string(index=False).splitlines())
    return table + "\n" + "; ".join(notes)


def _sweep(args) -> int:
    if args.config is None and args.preset is None:
        args.preset = "seed-demo"
    overrides = list(args.overrides)
    if args.target_se is not None:
        check_key("sweep.target_se", args.target_se, "--target-se: ")  # not as --set's
        overrides.append(f"sweep.target_se={args.target_se!r}")
    if args.out is not None and not args.out.strip():
        raise ConfigError(
            f"--out {args.out!r}: an empty path; give a directory, or leave --out out "
            "for results/<name>"
        )
    cfg = load_config(args.config, preset=args.preset, overrides=overrides)
    check_n_jobs(args.n_jobs, "--n-jobs")
    out = Path(args.out) if args.out else Path("results") / cfg.name
    _check_writable(out)
    devices = _devices(args)
    note = kind_note(cfg)
    if note:
        print(f"bvsim: {note}", file=sys.stderr)
    try:
        with _sigterm_as_interrupt(), _backend(args.backend, args.scheduler):
            result = run_sweep(
                cfg,
                out,
                device=args.device,
                n_jobs=args.n_jobs,
                overwrite=args.overwrite,
                figures=not args.no_figures,
                devices=devices,
            )
    except KeyboardInterrupt as err:
        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        kept = out / "chunks"  # a second axis keeps them in each value's sub-run
        if cfg.sweep.axis != "none":
            kept = out / "axis" / f"{cfg.sweep.axis}=*" / "chunks"
        print(
            f"\nbvsim: {what}; finished chunks are kept in {kept}. "
            "Run the same command again to resume.",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if isinstance(err, Terminated) else EXIT_INTERRUPTED
    s = result.summary
    print(_terminal_table(s, cfg))
    n_div = int(s["n_diverged"].sum())
    if n_div:
        print(f"bvsim: {n_div} member(s) diverged and were excluded (see n_diverged).")
    meta = result.tables.meta
    if "stop_reason" in meta:  # sweep.target_se: how many sets it took, and why it stopped
        print(f"bvsim: {meta['n_reps_done']} of {cfg.sweep.n_reps} training sets; "
              f"{meta['stop_reason']}")  # fmt: skip
    resumed, n_sets = meta.get("n_sets_resumed", 0), meta.get("n_sets")
    over = " over all axis values" if cfg.sweep.axis != "none" else ""
    from_files = f"; {resumed} of {n_sets} training sets{over} from chunk files" if resumed else ""
    print(f"bvsim: wrote {out}/ ({meta['train_seconds']:.1f} s training{from_files})")
    if valid_rows(s).empty:  # no λ has an estimate (diverged, too few sets, broken crossing)
        print(
            f"bvsim: error: every member at every weight decay diverged or failed: {out}/ "
            "holds no estimate (see members.csv and the warnings above)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return 0


def _preset_row(name: str) -> list[str]:
    """A preset's line in ``bvsim presets``: name, data, model, fit, the grid."""
    cfg = load_config(preset=name)
    d = cfg.data
    data = f"csv {d.path.split(':')[-1]}" if d.source == "csv" else f"truth {d.truth}"
    shapes = layer_shapes(cfg)
    widths = "-".join(str(w) for w in [shapes[0][0], *(fo for _, fo in shapes)])
    model = {"mlp": f"MLP {widths}", "linear": f"linear {widths}"}.get(
        cfg.model.kind, cfg.model.kind
    )
    fit = "exact ridge" if cfg.train.solver == "closed_form" else (
        f"{cfg.train.steps} {cfg.train.optimizer} steps"
    )  # fmt: skip
    n_axis = len(cfg.sweep.axis_values)
    axis = f" x {n_axis} {cfg.sweep.axis}" if cfg.sweep.axis != "none" else ""
    grid = (
        f"{len(cfg.sweep.weight_decay)} lambdas{axis} x {cfg.sweep.n_reps} sets x "
        f"{cfg.sweep.n_seeds} seed(s)"
    )
    return [name, data, model, fit, grid]


def _presets() -> int:
    """``bvsim presets``: one line per shipped preset, each column as wide as its
    longest entry (so a long name such as double-descent-crossed keeps them in line),
    two spaces apart (the entries hold single spaces)."""
    rows = [_preset_row(name) for name in list_presets()]
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(v.ljust(w) for v, w in zip(row[:-1], widths, strict=True)), row[-1]]))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with _warnings_as_lines():
        return _command(args)


def _command(args) -> int:
    try:
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "presets":
            return _presets()
        tables = read_tables(args.run_dir)
        axis = tables.meta.get("axis")  # a second-axis run: its own figures and report
        if args.command == "plot":  # deferred: matplotlib and seaborn, loaded only to draw
            from .present.figures import plot_all, plot_axis

            paths = (
                plot_axis(tables, args.run_dir, axis) if axis else plot_all(tables, args.run_dir)
            )
            for path in paths:
                print(path)
        else:  # deferred: present, loaded only to draw or to report
            from .present.axis_report import write_axis_report
            from .present.report import write_report

            check_config_unchanged(args.run_dir, tables.meta)  # its "Reproduce" names it
            if axis:
                print(write_axis_report(tables, args.run_dir, axis))
            else:
                print(write_report(tables, args.run_dir))
        return 0
    except (ConfigError, FileNotFoundError) as err:
        print(f"bvsim: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # a write failed: disk full, file size limit, permissions
        print(f"bvsim: error: {_os_error(err)}", file=sys.stderr)
        return EXIT_FAILURE
    except RunDirError as err:
        print(f"bvsim: error: {err}", file=sys.stderr)
        return EXIT_FAILURE


def _os_error(err: OSError) -> str:
    return f"{err.filename}: {err.strerror}" if err.filename else str(err)


if __name__ == "__main__":
    sys.exit(main())
