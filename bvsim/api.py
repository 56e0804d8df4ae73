"""The public entry points: load a configuration (with every check, user code
included), then train, estimate, tabulate, draw and report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import config
from .config import Config, axis_configs, dumps_toml
from .io.rundir import axis_dir_names, check_run_dir, clear_outputs, run_lock
from .io.steps import add_steps
from .io.tables import Tables, combine_axis, summarize, write_marker, write_run, write_tables
from .run.preflight import check_user_code, checked_user_code, preflight
from .run.result import SweepResult
from .run.store import write_text_atomic
from .run.sweep import train_sweep
from .train.devices import resolve_sweep_devices

__all__ = ["RunResult", "load_config", "run_sweep"]


def load_config(
    path: str | Path | None = None,
    *,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Config:
    """Load a configuration: preset (base), then file, then ``--set`` overrides.

    Every check runs here, before anything is computed: the keys and values
    (:func:`bvsim.config.load_config`) and what the configuration names outside
    itself (its CSV file, truth function, module or estimator:
    :func:`bvsim.run.preflight.check_user_code`).

    Parameters
    ----------
    path : str or Path, optional
        A TOML file. Keys it sets override the preset's.
    preset : str, optional
        Name of a shipped preset (see :func:`bvsim.list_presets`).
    overrides : list of str
        ``"section.key=value"`` assignments, value parsed as TOML (bare words are
        strings).

    Raises
    ------
    ConfigError
        On any unknown key, wrong type or bad value, or a file or plugin that cannot
        serve, naming the key, the value and what is allowed.
    """
    return config.load_config(
        path, preset=preset, overrides=overrides, check_user_code=check_user_code
    )


@dataclass
class RunResult:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    raw : SweepResult or list of SweepResult
        Raw per-member arrays (predictions of shape (n_wd, n_reps, n_seeds, n_test));
        one per value of a second sweep axis. With a run directory the predictions
        and curves stay in the chunk files (:class:`bvsim.run.store.ChunkStack`:
        ``raw.pred[i]`` reads weight decay ``i``, ``np.asarray(raw.pred)`` all), so
        they can be read only while ``out/chunks`` holds this run's files: once a later
        run into ``out`` replaced them (other data or code) or removed them, a read is a
        :class:`bvsim.run.store.ChunkReplacedError`. With
        ``train.decompose_steps`` also ``raw.pred_steps``, the predictions after every
        logged step, shape (n_wd, n_reps, n_seeds, n_log, n_test[, n_classes]).
    tables : Tables
        The tidy tables (``summary``, ``pointwise``, ``curves``, ``members``, ...;
        ``steps`` with ``train.decompose_steps``).
    out : Path or None
        The run directory, when one was written.
    """

    raw: SweepResult | list[SweepResult]
    tables: Tables
    out: Path | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """One row per weight decay (and second-axis value): bias2, variance, noise,
        errors, each with SE."""
        return self.tables.summary


def run_sweep(
    cfg: Config,
    out: str | Path | None = None,
    *,
    device: str = "cpu",
    n_jobs: int = 1,
    overwrite: bool = False,
    figures: bool = True,
    progress: bool | None = None,
    devices: list[str] | None = None,
) -> RunResult:
    """Run a whole sweep: train every member, decompose, write outputs.

    Parameters
    ----------
    cfg : Config
        From :func:`bvsim.load_config`, or any other (:func:`bvsim.config.from_dict`,
        :func:`dataclasses.replace`): the files and code it names are then checked here
        before anything is created or trained (:func:`bvsim.run.preflight.preflight`),
        and the run trains and keys it with a CSV source's columns and size filled in.
    out : path, optional
        Run directory for CSVs, figures, report and resumable chunks. Re-running with
        the same configuration resumes (chunk files of other data or code are
        recomputed); a different configuration is refused unless ``overwrite``, and so
        is a directory without a bvsim ``config.toml`` that holds files with the names
        of bvsim's outputs (:func:`bvsim.io.rundir.check_run_dir`). The earlier run's
        outputs are removed first (see :func:`clear_outputs`); ``run.json`` is written
        last.
    overwrite : bool
        Replace a directory holding another configuration, chunks included, or files
        with bvsim's output names in a directory that is not a bvsim run (other files
        stay).
    device : str
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
    n_jobs : int
        joblib workers over chunks (-1: all cores). Results do not depend on it.
    figures : bool
        Draw the figures and write ``report.md`` (only with ``out``).
    devices : list of str, optional
        Several devices at once, e.g. ``["cuda:0", "cpu", "cpu"]``; see
        :func:`bvsim.run.sweep.train_sweep`.
    """
    cfg = checked_user_code(cfg)  # unless load_config checked it: before any compute
    dirs = None
    if out is not None and axis_configs(cfg)[0][0] is not None:  # each value's sub-run
        dirs = [Path(out) / "axis" / name for name in axis_dir_names(cfg)]
    device, devices = resolve_sweep_devices(device, devices)  # once: passed down
    cfg = preflight(cfg, n_jobs=n_jobs, device=device, devices=devices, out=out, run_dirs=dirs)
    train = {"device": device, "n_jobs": n_jobs, "progress": progress, "devices": devices}
    return _run_one(cfg, out, train, overwrite=overwrite, figures=figures)


def _run_one(
    cfg: Config, out, train: dict, *, overwrite: bool, figures: bool, finish: bool = True
) -> RunResult:
    """:func:`run_sweep` once its preflight has passed; that preflight covered every
    value of a second axis, so the values' runs come back here, not through
    :func:`run_sweep` (no second preflight). ``train`` holds :func:`train_sweep`'s
    device, n_jobs, progress and devices. ``finish`` False leaves the figures, report
    and ``run.json`` to the caller (a second axis draws the figures of all its values
    at once, then finishes each)."""
    subs = axis_configs(cfg)
    if out is None:
        if subs[0][0] is None:
            raw = train_sweep(cfg, **train)
            return RunResult(raw=raw, tables=_tables(raw))
        parts = [(v, _run_one(sub, None, train, overwrite=False, figures=False)) for v, sub in subs]
        return _combined(cfg, parts, None)
    out = Path(out)
    names = axis_dir_names(cfg) if subs[0][0] is not None else []
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        what = (
            "exists and is not a directory"
            if out.exists()
            else "a link to a missing path"
            if out.is_symlink()
            else "a parent is not a directory"
        )
        raise config.ConfigError(f"out = {out}: {what}") from None
    with run_lock(out):
        check_run_dir(out, cfg, overwrite)
        for (_, sub), name in zip(subs if names else [], names, strict=True):
            check_run_dir(out / "axis" / name, sub, overwrite)  # before any compute
        clear_outputs(out, chunks=overwrite)
        # the directory now belongs to this configuration; run.json, written last,
        # marks the run finished
        write_text_atomic(out / "config.toml", dumps_toml(cfg))
        preset = _unchanged_preset(cfg)  # before any compute: it loads the preset
        if names:
            parts = [
                (v, _run_one(sub, out / "axis" / name, train, overwrite=overwrite,
                             figures=figures, finish=False))
                for (v, sub), name in zip(subs, names, strict=True)
            ]  # fmt: skip
            _finish_runs([r for _, r in parts], figures, train["n_jobs"])
            return _combined(cfg, parts, out, figures, preset=preset)
        raw = train_sweep(cfg, chunk_dir=out / "chunks", **train)
        tables = _tables(raw)
        if preset is not None:
            tables.meta["preset"] = preset  # the report's "Reproduce" names it
        write_run(raw, tables, out)
        result = RunResult(raw=raw, tables=tables, out=out)
        if finish:
            _finish_runs([result], figures)
    return result


def _unchanged_preset(cfg: Config) -> str | None:
    """The name of the shipped preset that ``cfg`` is, unchanged: its ``config.toml``
    text is the preset's, loaded as a sweep loads it (a CSV preset's columns filled
    in); else None."""
    if cfg.name not in config.list_presets():
        return None
    return cfg.name if dumps_toml(cfg) == dumps_toml(load_config(preset=cfg.name)) else None


def _tables(raw: SweepResult) -> Tables:
    """A one-axis sweep's tables: the estimates (:func:`bvsim.io.tables.summarize`) and,
    with ``train.decompose_steps``, the decomposition at every logged step."""
    return add_steps(summarize(raw), raw)


def _finish_runs(results: list[RunResult], figures: bool, n_jobs: int = 1) -> None:
    """Figures (of all the runs at once, ``n_jobs`` processes), each run's report, then
    each run's ``run.json``, the file that marks it finished."""
    if figures:  # deferred: matplotlib and seaborn, loaded only to draw
        from .present.figures import plot_runs
        from .present.report import write_report

        plot_runs([(r.tables, r.out) for r in results], n_jobs=n_jobs)
        for r in results:
            write_report(r.tables, r.out)
    for r in results:
        write_marker(r.tables, r.out)


def _same_inputs(cfg: Config, parts) -> None:
    """Refuse to stack the values of a second axis that were made from different
    versions of a file they share (the CSV data, a user's truth or model code, edited
    between two values' runs): each run is right for its own bytes, the stack of them
    would not be one study. Each value's chunks stay, under their own resume key."""
    inputs = [result.raw.info.get("inputs") or {} for _, result in parts]
    # every file a run's resume key digests (the configuration differs by value)
    names = dict.fromkeys(["data.path", *(k for i in inputs for k in i if k != "config")])
    for name in names:
        seen: dict = {}
        for (value, result), keyed in zip(parts, inputs, strict=True):
            digest = keyed.get(name)
            if name == "data.path" and digest is None:  # a run without a directory
                digest = result.raw.test.data_digest
            if digest is not None:
                seen.setdefault(digest, value)
        if len(seen) > 1:
            a, b = list(seen.values())[:2]
            raise config.ConfigError(
                f"{name} changed during the sweep: the runs of {cfg.sweep.axis} = {a!r} "
                f"and {cfg.sweep.axis} = {b!r} were made from different versions of it; "
                "restore it and rerun (the runs made from it as it is then resume)"
            )


def _combined(
    cfg: Config, parts, out: Path | None, figures: bool = True, preset: str | None = None
) -> RunResult:
    """Stack the tables of a second-axis sweep, with the axis value as a column;
    ``preset``: the shipped preset it is unchanged (``run.json``, the report's
    "Reproduce")."""
    _same_inputs(cfg, parts)
    tables = combine_axis(cfg, [(v, r.tables) for v, r in parts])
    if preset is not None:
        tables.meta["preset"] = preset
    if out is not None:
        write_tables(tables, out)
        if figures:  # deferred: matplotlib and seaborn, loaded only to draw
            from .present.axis_report import write_axis_report
            from .present.figures import plot_axis

            plot_axis(tables, out, cfg.sweep.axis)
            write_axis_report(tables, out, cfg.sweep.axis)
        write_marker(tables, out)
    return RunResult(raw=[r.raw for _, r in parts], tables=tables, out=out)
