"""Checks before compute that need more than the configuration's own keys.

* :func:`check_user_code`: what the configuration names outside itself (its CSV file,
  the user's truth function, module or estimator), each checked by the part that owns
  it; :func:`bvsim.load_config` runs it while loading and marks the configuration
  checked with the digests of those files. :func:`checked_user_code` runs it on a
  configuration not so marked (one from :func:`bvsim.config.from_dict`,
  :class:`bvsim.Config` or :func:`dataclasses.replace`), and again on one whose files
  no longer have those digests (edited since), so that every route into a sweep is
  checked, once per version of the files.
* :func:`preflight`: that check, the machine's share of a sweep (``n_jobs`` and the joblib backend:
  :mod:`bvsim.run.executor`; memory: :mod:`bvsim.run.memory`; disk space:
  :mod:`bvsim.run.disk`) and the truth function on the real points;
  :func:`bvsim.run_sweep` runs it before anything is created or trained.

Each problem is a :class:`ConfigError` naming what to change.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from ..config import Config, ConfigError, axis_configs, dumps_toml, from_dict
from ..config.schema import mark_user_code_checked, user_code_checked
from ..data.csv import check_csv
from ..data.generator import check_truth, check_truth_function
from ..train.devices import device_type_of
from ..train.trainers import check_kind
from .chunks import chunk_device_type
from .disk import check_disk
from .executor import check_joblib_backend, check_n_jobs
from .fingerprint import user_digests
from .memory import check_memory, gpu_batch_config

__all__ = ["check_user_code", "checked_user_code", "preflight"]


def check_user_code(cfg: Config, prefix: str = "") -> Config:
    """Check the files and code a configuration names, in the parts that own them:
    the CSV source (which fills in its columns and size), the truth function (tried
    on a probe batch), the module factory and the estimator class. Returns the
    configuration with the CSV source's defaults filled in, marked checked with the
    digests of the files it read (:func:`bvsim.run.fingerprint.user_digests`)."""
    if cfg.data.source == "csv":
        cfg = dataclasses.replace(cfg, data=check_csv(cfg, prefix))
    else:
        check_truth_function(cfg, prefix)
    check_kind(cfg, prefix)
    return mark_user_code_checked(cfg, user_digests(cfg))


def checked_user_code(cfg: Config) -> Config:
    """``cfg`` if it was checked (:func:`bvsim.load_config` marks the configurations
    it returns) and the files it names still have the digests they had then; checked
    again (:func:`check_user_code`, the messages start ``config:``) where one of them
    changed since; else checked whole: written out and read back as a file is
    (:func:`bvsim.config.from_dict`: every key, value, cross-key rule and key without
    effect, then :func:`check_user_code`), marked checked. A configuration changed
    with ``dataclasses.replace`` or built with ``Config(...)``, and a CSV or plugin
    file edited after :func:`bvsim.load_config`, so meet the checks a file's does before
    anything trains. Returns the configuration to train, a CSV source's columns and
    size filled in."""
    checked = user_code_checked(cfg)
    if checked is not None:
        try:  # the digests as the files are now (a stat each while they are unchanged)
            now = user_digests(cfg)
        except Exception:  # a file that no longer reads: the check says why, in one line
            now = {}
        if now == checked:
            return cfg
        changed = [k for k in dict.fromkeys([*checked, *now]) if checked.get(k) != now.get(k)]
        try:
            return check_user_code(cfg, "config: ")
        except ConfigError as err:
            what = ", ".join(changed) or "a file it names"
            raise type(err)(f"{err} ({what} changed since the configuration was loaded and "
                            "checked)") from None  # fmt: skip
    try:
        raw = tomllib.loads(dumps_toml(cfg))
    except (TypeError, ValueError, AttributeError) as err:  # a value TOML cannot hold
        raise ConfigError(f"config: a value that a configuration cannot hold ({err})") from None
    return from_dict(raw, "config", check_user_code)


def preflight(
    cfg: Config,
    *,
    n_jobs: int = 1,
    device: str = "cpu",
    devices: list[str] | None = None,
    out: str | Path | None = None,
    run_dirs: list | None = None,
) -> Config:
    """Every check that needs more than the configuration file, once, before compute:
    the user's files and code unless they were checked (:func:`checked_user_code`),
    ``n_jobs``, the joblib backend in effect, memory, the disk space of the run
    directory ``out`` (:func:`bvsim.run.disk.check_disk`; none without ``out``,
    ``run_dirs`` its sub-runs of a second axis), and the user's truth function on the
    real points, for each value of a second sweep axis.

    ``device`` is a resolved device (``cpu``, ``cuda`` or ``cuda:N``). With
    ``devices`` (several at once, resolved) the machine's memory is checked for the
    CPU-sized units and each GPU in the list for the batch it takes.

    Returns the configuration to train (:func:`checked_user_code`).
    """
    cfg = checked_user_code(cfg)
    check_n_jobs(n_jobs)
    if not devices:  # several devices run in threads of their own, not through joblib
        check_joblib_backend()
    subs = [sub for _, sub in axis_configs(cfg)]
    gpus = list(dict.fromkeys(d for d in devices or [] if device_type_of(d) == "cuda"))
    for sub in subs:
        if devices:  # the host holds CPU-sized units (chunk_device_type)
            check_memory(sub, "cpu")
            for gpu in gpus:
                check_memory(gpu_batch_config(sub), gpu, host=False)
        else:
            check_memory(sub, device)
    if out is not None:  # chunks sized as the sweep cuts them
        check_disk(cfg, out, run_dirs, chunk_device_type(device, devices))
    for sub in subs:
        check_truth(sub)
    return cfg
