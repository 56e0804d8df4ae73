"""The run directory: its file names (figures, axis sub-runs), its lock, what a new run
clears of an earlier one, and whether a configuration may write there.

Nothing here runs code named in a configuration: a stored run is judged by what its
``config.toml`` means (:func:`stored_keys`: the file parsed and checked as a sweep
loads it, without importing the files and code it names).
"""

from __future__ import annotations

import fcntl
import os
import time
import tomllib
from contextlib import contextmanager
from pathlib import Path

from ..config import (
    Config,
    ConfigError,
    axis_values,
    chunk_key,
    config_key,
    from_dict,
    text_key,
)
from ..run.store import PREDICTIONS, TMP_PREFIX

__all__ = [
    "ANOVA",
    "FIGURES",
    "FILES",
    "STEPS",
    "THEORY",
    "RunDirError",
    "LOCK_GRACE_SECONDS",
    "axis_dir_name",
    "axis_dir_names",
    "check_config_unchanged",
    "check_run_dir",
    "clear_outputs",
    "foreign_output",
    "run_lock",
    "stored_keys",
]


class RunDirError(Exception):
    """A run directory's file is unreadable, truncated or not what was written."""


#: The CSVs every run writes (``<name>.csv``; :mod:`bvsim.io.tables` writes and reads
#: them).
FILES = ("summary", "pointwise", "curves", "members", "weight_hist")
#: Written only when the configuration has a closed-form theory (bvsim.estimate.theory).
THEORY = "theory"
#: Written only by a crossed design (``sweep.design = "crossed"``): the ANOVA of the
#: variance per λ, and per λ and test point.
ANOVA = ("anova", "anova_pointwise")
#: Written only with ``train.decompose_steps`` (:func:`bvsim.io.steps.steps_table`).
STEPS = "steps"

#: The file names of every figure bvsim draws (``figures/<name>.png`` and ``.pdf``):
#: ``--overwrite`` removes these and leaves other files in ``figures/`` alone. Each is
#: declared, with its caption, its maker and its place in the report, in
#: :data:`bvsim.present.figure_table.FIGURE_TABLE`, which checks when imported that it
#: names exactly these (io/ may not import present/, so the names are kept here).
FIGURES = (
    "decomposition",
    "fits",
    "pointwise",
    "curves",
    "weight_norm",
    "weight_hist",
    "variance_split",
    "anova",
    "steps",
    "steps_heatmap",
    "axis_decomposition",
    "axis_heatmap",
    "axis_best",
    "axis_curves",
    "axis_anova",
)

#: Files a run writes at the top of its directory (besides figures/, chunks/, axis/).
_OUTPUTS = (
    *(f"{n}.csv" for n in (*FILES, THEORY, STEPS, *ANOVA)),
    PREDICTIONS,
    "report.md",
    "run.json",
)


def _figure_files(figures: Path) -> list[Path]:
    """Every figure file a run may write into its ``figures`` folder."""
    return [figures / f"{name}{suffix}" for name in FIGURES for suffix in (".png", ".pdf")]


def clear_outputs(out: Path, chunks: bool = False) -> None:
    """Remove what an earlier run wrote to ``out``: CSVs, ``predictions.npz``, the
    report, ``run.json``, figures, leftover temporary files (chunk directories too)
    and the sub-runs of a second axis; with ``chunks`` also ``config.toml`` and the
    chunk files. Files that bvsim did not write stay (and so do the folders holding
    them)."""
    for name in _OUTPUTS if not chunks else (*_OUTPUTS, "config.toml"):
        (out / name).unlink(missing_ok=True)
    _remove_temporary(out)
    figures = out / "figures"
    if figures.is_dir():
        for path in _figure_files(figures):
            path.unlink(missing_ok=True)
        _remove_temporary(figures)
        _remove_if_empty(figures)
    axis = out / "axis"
    if axis.is_dir():
        for sub in axis.iterdir():
            if sub.is_dir():
                clear_outputs(sub, chunks=chunks)
                _remove_if_empty(sub)
        _remove_if_empty(axis)
    if (out / "chunks").is_dir():
        for key_dir in (out / "chunks").iterdir():
            if key_dir.is_dir():
                _remove_temporary(key_dir)  # left by a killed sweep
                if chunks:
                    for path in key_dir.glob("sets_*.npz"):
                        path.unlink()
                    _remove_if_empty(key_dir)
        if chunks:
            _remove_if_empty(out / "chunks")


def _remove_temporary(folder: Path) -> None:
    for path in folder.glob(f"{TMP_PREFIX}*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (a file bvsim did not write) or gone
        pass


def axis_dir_name(axis: str, value: float | str) -> str:
    """Sub-directory of one value of the second axis, e.g. ``n_train=20``.

    The value as ``%g`` where that reads back as the same number (the names of earlier
    runs), otherwise its shortest exact form (``noise_std=0.1000001``): distinct values
    get distinct names, and ``float(name.split("=")[1])`` gives the value back. A
    categorical axis's value is its name (``penalty=l1``).
    """
    if isinstance(value, str):
        return f"{axis}={value}"
    value = float(value)
    if value.is_integer():
        text = f"{int(value)}"
    else:
        text = f"{value:g}"
        if float(text) != value:
            text = repr(value)
    return f"{axis}={text}"


def axis_dir_names(cfg: Config) -> list[str]:
    """The sub-run directory of each second-axis value; a ConfigError (before any
    compute) if two values would share one."""
    names = [axis_dir_name(cfg.sweep.axis, v) for v in axis_values(cfg)]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(
                f"sweep.axis_values = {list(cfg.sweep.axis_values)!r}: two values share "
                f"the sub-run directory {name!r}; make them differ"
            )
    return names


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


#: Seconds an empty or unreadable lock file counts as held (its owner may be between
#: creating it and writing its pid), judged by the file's modification time.
LOCK_GRACE_SECONDS = 5.0


#: What a lock file of this bvsim holds after the pid: a lock file with it that this
#: process could ``flock`` is stale whatever its pid (which may have been reused).
FLOCK_MARK = "flock"


def _lock_holder(lock: Path) -> int | None:
    """The pid in ``lock``; None when it is empty or unreadable (and 0 when it is gone)."""
    try:
        return int(lock.read_text().split()[0])
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, IndexError):
        return None


def _flock_written(lock: Path) -> bool:
    """Whether ``lock`` was written by a bvsim that locks with ``flock``."""
    try:
        return lock.read_text().split()[1:2] == [FLOCK_MARK]
    except OSError:
        return False


def _wait_for_holder(lock: Path) -> int:
    """The pid in ``lock``, waiting while the file is younger than the grace period
    and holds no pid yet; 0 when it stays empty or unreadable past that (stale)."""
    while (pid := _lock_holder(lock)) is None:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return 0
        if age > LOCK_GRACE_SECONDS:
            return 0
        time.sleep(min(0.1, LOCK_GRACE_SECONDS))
    return pid


@contextmanager
def run_lock(out: Path):
    """Hold ``out/.lock`` while a sweep writes into ``out``.

    The lock is an exclusive ``fcntl.flock`` on that file, which holds the holder's
    pid for the message: the kernel grants it to one open file at a time (two
    processes, or two threads of one process, cannot both hold it) and drops it when
    its holder dies, so a lock left by a dead process is simply taken, whatever pid it
    names (written with :data:`FLOCK_MARK`; the pid may have been reused). A lock held
    is refused with the holder's pid. A lock file of an older bvsim (the pid alone)
    that nobody holds but that names a live process other than this one is refused
    too, and so is one that is empty or unreadable while younger than
    :data:`LOCK_GRACE_SECONDS` (its writer may not have written its pid yet).
    """
    lock = out / ".lock"
    fd = _take_lock(out, lock)
    try:
        yield
    finally:
        # remove the file while still holding it (one that replaced it is not ours),
        # then let go: a sweep waiting on the old file sees it unlinked and retries
        if _same_file(lock, fd):
            lock.unlink(missing_ok=True)
        os.close(fd)


def _in_use(out: Path, lock: Path, pid: int) -> ConfigError:
    return ConfigError(
        f"{out} is in use by another sweep (pid {pid}); wait for it, or use "
        f"another --out (remove {lock} only if that process is gone)"
    )


def _same_file(lock: Path, fd: int) -> bool:
    """Whether ``lock`` is still the file open as ``fd`` (not removed or replaced)."""
    try:
        st, held = os.stat(lock), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def _take_lock(out: Path, lock: Path) -> int:
    """Open and ``flock`` ``lock``, write our pid into it and return its descriptor; a
    ConfigError naming the holder's pid while another sweep holds it."""
    deadline = time.monotonic() + LOCK_GRACE_SECONDS + 1.0
    while True:
        try:
            fd, created = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666), True
        except FileExistsError:
            try:
                fd, created = os.open(lock, os.O_RDWR), False
            except FileNotFoundError:  # released meanwhile: try again
                continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _lock_holder(lock)
            if pid and _pid_alive(pid):
                raise _in_use(out, lock, pid) from None
            if time.monotonic() > deadline:  # held, but naming no live process
                raise ConfigError(f"{out}: could not take the lock {lock}") from None
            time.sleep(0.05)  # its holder has not written its pid yet: look again
            continue
        except BaseException:
            os.close(fd)
            raise
        if not _same_file(lock, fd):  # removed by its holder before we got it
            os.close(fd)
            continue
        try:
            if not created and not _flock_written(lock):  # nobody holds it: a
                pid = _wait_for_holder(lock)  # pid-only lock (older bvsim) of a live process?
                if pid and pid != os.getpid() and _pid_alive(pid):
                    raise _in_use(out, lock, pid)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {FLOCK_MARK}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return fd


def check_run_dir(out: Path, cfg: Config, overwrite: bool) -> None:
    """Refuse a run directory that holds results of a different configuration, or
    files with the names of bvsim's outputs but no bvsim ``config.toml``.

    Compares what the stored ``config.toml`` means with ``cfg`` (:func:`stored_keys`
    against :func:`config_key`: the same configuration written otherwise, ``lr = 5e-2``
    for ``lr = 0.05``, is the same); nothing named in the stored file is imported or
    run. A directory without ``config.toml`` is not a bvsim run: a file there with the
    name of an output (``summary.csv``, ``run.json``, ``figures/fits.png``,
    ``chunks/``, ...) is someone else's, and the run would replace it, so it is refused
    unless ``overwrite``. An empty directory, or one with other files only, may be used
    (those files stay). A configuration that differs from the stored one only in
    ``sweep.n_reps`` is the same run with more (or fewer) training sets: accepted, and
    its chunks serve the new run (:func:`bvsim.config.chunk_key`; what they cover is
    said once they are read: :func:`bvsim.run.resume.warn_unused_chunk_files`).
    """
    saved = out / "config.toml"
    if overwrite:
        return
    if not saved.exists():
        found = foreign_output(out)
        if found is not None:
            raise ConfigError(
                f"{out} is not a bvsim run directory (no config.toml) but holds "
                f"{found}, which a run would replace; use another --out, or --overwrite "
                "to replace the files with bvsim's output names (other files stay)"
            )
        return
    try:
        same = config_key(cfg) in stored_keys(saved)
        more_or_fewer_sets = chunk_key(cfg) in stored_keys(saved, chunks=True)
    except (OSError, UnicodeDecodeError):
        same = more_or_fewer_sets = False
    if not (same or more_or_fewer_sets):
        raise ConfigError(
            f"{out} holds results of a different configuration ({saved}); "
            "use --overwrite to replace them or --out for a new directory"
        )


def foreign_output(out: Path) -> Path | None:
    """The first path in ``out`` with the name of something a run writes there and
    :func:`clear_outputs` would remove (a top-level output, a figure, ``chunks/``,
    ``axis/``), or None."""
    candidates = [out / name for name in _OUTPUTS]
    candidates += [*_figure_files(out / "figures"), out / "chunks", out / "axis"]
    for path in candidates:
        if path.exists() or path.is_symlink():
            return path
    return None


def stored_keys(saved: Path, chunks: bool = False) -> set[str]:
    """The keys (:func:`config_key`; ``chunks``: :func:`chunk_key`) of the configuration
    in the ``config.toml`` file ``saved``: what it means (the file parsed and checked
    as a sweep loads it, so that the same configuration written otherwise has the same
    key; the checks that read the files or run the code it names are left out: nothing
    is imported) and, for a file that no longer loads (one written by an older bvsim),
    the key of its text."""
    text = saved.read_text().removeprefix("\ufeff")
    keys = {text_key(text, chunks)}
    key = chunk_key if chunks else config_key
    try:
        # as bvsim wrote it: a key without effect (an older bvsim wrote those) is put
        # back to its default rather than refused (config.moot), as a rerun reads it
        keys.add(key(from_dict(tomllib.loads(text), str(saved), user_raw={})))
    except ValueError:  # malformed TOML or a ConfigError: only its text can match
        pass
    return keys


def check_config_unchanged(run_dir: str | Path, meta: dict) -> None:
    """Refuse a finished run whose ``config.toml`` no longer means the configuration
    that made its results (``run.json``'s ``config_key``): a report would then point
    its "Reproduce" command at a file that did not produce the CSVs. A run without
    ``config.toml``, or whose ``run.json`` predates ``config_key``, is not judged."""
    saved = Path(run_dir) / "config.toml"
    recorded = meta.get("config_key")
    if not recorded or not saved.exists():
        return
    try:
        keys = stored_keys(saved)
    except (OSError, UnicodeDecodeError):
        keys = set()
    if recorded not in keys:
        raise RunDirError(
            f"{saved} was changed after this run: it is not the configuration that made "
            f"the results in {run_dir} (run.json config_key {recorded}); restore it, or "
            f"run the changed one into a new directory (bvsim sweep {saved} --out NEW_DIR)"
        )
