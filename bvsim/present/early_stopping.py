"""The early-stopping finding of ``report.md``: early stopping at the smallest λ against
the best λ at the last step, from ``run.json``'s ``early_stopping`` (written with
``train.decompose_steps``, :func:`bvsim.io.steps.early_stopping`), with the paired SE
of their difference and its 95 % interval (Student's t)."""

from __future__ import annotations

import numpy as np

from .common import (
    critical_value,
    crossed_factors_of,
    lambda_text,
    paired_dof,
    pm,
    t_interval_text,
    z_score,
)

__all__ = ["early_stopping_finding"]

#: How the interval is set without degrees of freedom (a crossed run.json before diff_df).
_NORMAL = "a two-sided 95 % interval from the normal quantile: no degrees of freedom recorded"


def early_stopping_finding(meta: dict) -> str | None:
    """Early stopping at the smallest λ against the best λ at the last step (from
    ``run.json``'s ``early_stopping``, written with ``train.decompose_steps``), with
    the paired SE of their difference; None without it."""
    es = meta.get("early_stopping")
    if not es or not np.isfinite(es.get("diff", np.nan)):
        return None
    diff, se = es["diff"], es["diff_se"]
    z = z_score(diff, se)
    crossed = bool(crossed_factors_of(meta))
    paired = (
        "paired over the crossed factors' levels, multiway-jackknife SE"
        if crossed
        else f"paired over {es['n_common']} training sets"
    )
    dof = paired_dof(es.get("diff_df"), es.get("n_common"), crossed)  # diff_df: newer runs
    q = critical_value(dof)
    how = t_interval_text(dof, crossed) if np.isfinite(dof) else _NORMAL
    width = f"{q:.2f} paired SE, {how}"
    if es["best_step"] == es["last_step"] and es["best_weight_decay"] == es["weight_decay_min"]:
        verdict = "the same models (no step before the last and no larger λ does better)"
    elif not np.isfinite(z) or abs(z) < q:
        verdict = f"they are not distinguishable at this precision (|difference| < {width})"
    elif diff < 0:
        verdict = "early stopping is better"
    else:
        verdict = "weight decay is better"
    return (
        "Early stopping against weight decay (`steps.csv`): at λ = "
        f"{lambda_text(es['weight_decay_min'])} the best step is {es['best_step']} of "
        f"{es['last_step']} "
        f"(expected error {pm(es['early_stopping_error'], es['early_stopping_error_se'])}); "
        f"at the last step the best λ is {lambda_text(es['best_weight_decay'])} "
        f"({pm(es['weight_decay_error'], es['weight_decay_error_se'])}). Early stopping "
        f"minus weight decay: {pm(diff, se)} ({paired}): "
        f"{verdict}. Over the whole grid the least expected error is at step "
        f"{es['grid_best_step']}, λ = {lambda_text(es['grid_best_weight_decay'])} "
        f"({pm(es['grid_best_error'], es.get('grid_best_error_se', float('nan')))}); both "
        "minima are argmins of noisy estimates (optimistic, and other cells may be tied)."
    )
