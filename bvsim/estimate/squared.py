"""Estimators of the bias-variance decomposition with Monte Carlo standard errors.

Pure functions: arrays in, arrays out, no I/O. Notation (README, "What is estimated,
and how"): predictions ``pred[k, s, j]`` of training set k (the i.i.d. unit), seed s,
test point j; noiseless truth ``f[j]``; test-noise variance ``noise_var``. With

* ``a[k, j] = mean_s pred[k, s, j]`` and ``m[j] = mean_k a[k, j]``,
* ``B[j] = var_k(a[k, j], ddof=1)`` (between training sets),
* ``W[j] = mean_k var_s(pred[k, s, j], ddof=1)`` (within a training set; 0 if S = 1),

the estimators are, per test point,

* ``variance_init = W`` (unbiased for E_k Var_s),
* ``variance_data = B - W / S`` (unbiased for Var_k E_s),
* ``variance = B + (1 - 1/S) W`` (their sum),
* ``bias2 = (m - f)^2 - B / K`` (the plug-in minus its estimated excess Var(m)),

so that ``bias2 + variance == mean_{k,s} (pred - f)^2`` exactly. Standard errors
are delete-one-training-set jackknife estimates (for plain means this equals the CLT
standard error over k).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COMPONENTS",
    "combine_point_blocks",
    "decompose",
    "jackknife_se",
    "jackknife_variance",
    "mean_se",
    "per_set_squared_error",
    "repeated_x_noise",
    "valid_training_sets",
]

#: Components returned by :func:`decompose`, each with a ``*_se`` partner.
COMPONENTS = ("bias2", "variance", "variance_data", "variance_init", "mse_truth")


def valid_training_sets(pred: np.ndarray) -> np.ndarray:
    """Training sets whose every member is finite (none diverged).

    Parameters
    ----------
    pred : ndarray of shape (n_reps, n_seeds, n_test, ...)

    Returns
    -------
    ok : ndarray of bool, shape (n_reps,)
    """
    return np.isfinite(pred).reshape(len(pred), -1).all(axis=1)


def jackknife_variance(loo: np.ndarray) -> np.ndarray:
    """Jackknife variance ``(n - 1) / n * sum_i (loo_i - mean loo)²`` from the ``n``
    leave-one-out estimates along axis 0 (0 for one estimate): the square of
    :func:`jackknife_se`, and one factor's share of
    :func:`bvsim.estimate.anova.multiway_jackknife_se`.

    Parameters
    ----------
    loo : ndarray of shape (n, ...)
    """
    n = loo.shape[0]
    return (n - 1) / n * np.square(loo - loo.mean(axis=0)).sum(axis=0)


def jackknife_se(loo: np.ndarray) -> np.ndarray:
    """Jackknife standard error from leave-one-out estimates along axis 0 (NaN below 2).

    Parameters
    ----------
    loo : ndarray of shape (n_reps, ...)
    """
    if loo.shape[0] < 2:
        return np.full(loo.shape[1:], np.nan)
    return np.sqrt(jackknife_variance(loo))


def mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error (ddof=1, over axis 0) of i.i.d. rows.

    Parameters
    ----------
    values : ndarray of shape (n_reps, ...)
    """
    k = values.shape[0]
    mean = values.mean(axis=0)
    if k < 2:
        return mean, np.full(mean.shape, np.nan)
    return mean, values.std(axis=0, ddof=1) / np.sqrt(k)


def _parts(k, s, m, f, ss, w):
    """Per-point components from summary statistics (broadcasting over any axes)."""
    b = ss / (k - 1)
    within = (1 - 1 / s) * w
    variance = b + within
    bias2 = np.square(m - f) - b / k
    return {
        "bias2": bias2,
        "variance": variance,
        "variance_data": b - w / s,
        "variance_init": w if s > 1 else np.full_like(b, np.nan),
        "mse_truth": bias2 + variance,
    }


def decompose(pred: np.ndarray, f: np.ndarray, *, return_loo: bool = False):
    """Bias-variance decomposition of squared error against the noiseless truth.

    Parameters
    ----------
    pred : ndarray of shape (n_reps, n_seeds, n_test)
        Predictions; every entry finite (drop diverged sets first, see
        :func:`valid_training_sets`). ``n_reps >= 2``.
    f : ndarray of shape (n_test,)

    Returns
    -------
    overall : dict of str to float
        Each of :data:`COMPONENTS` averaged over the test points, with ``<name>_se``.
    pointwise : dict of str to ndarray of shape (n_test,)
        The same per test point, plus ``mean_prediction``.
    loo_sums : dict of str to ndarray of shape (n_reps,), or None
        Only with ``return_loo``: each component's leave-one-set-out estimates summed
        over the test points (None below 3 sets), for :func:`combine_point_blocks`.
    """
    pred = np.asarray(pred, dtype=np.float64)
    k, s, _ = pred.shape
    if k < 2:
        raise ValueError(f"need at least 2 training sets, got {k}")
    a = pred.mean(axis=1)  # (K, J)
    within = pred.var(axis=1, ddof=1) if s > 1 else np.zeros_like(a)  # (K, J)
    m = a.mean(axis=0)
    dev = a - m
    ss = np.square(dev).sum(axis=0)
    w = within.mean(axis=0)
    full = _parts(k, s, m, f, ss, w)

    overall, pointwise = {}, {"mean_prediction": m}
    loo_sums = {} if k >= 3 else None
    if k >= 3:
        # leave training set i out, for all i at once (shapes (K, J))
        m_loo = m - dev / (k - 1)
        ss_loo = ss - np.square(dev) * k / (k - 1)
        w_loo = (k * w - within) / (k - 1)
        loo = _parts(k - 1, s, m_loo, f, ss_loo, w_loo)
    for name in COMPONENTS:
        pointwise[name] = full[name]
        overall[name] = float(full[name].mean())
        if k >= 3:
            pointwise[f"{name}_se"] = jackknife_se(loo[name])
            loo_sums[name] = loo[name].sum(axis=1)
            overall[f"{name}_se"] = float(jackknife_se(loo_sums[name] / len(m)))
        else:
            pointwise[f"{name}_se"] = np.full_like(m, np.nan)
            overall[f"{name}_se"] = np.nan
    return (overall, pointwise, loo_sums) if return_loo else (overall, pointwise)


def combine_point_blocks(blocks) -> tuple[dict, dict]:
    """One decomposition over all test points from decompositions of blocks of them.

    Every estimate is a mean over test points, and its SE the jackknife of the
    leave-one-set-out estimates averaged over the points, so blocks of points (with
    the same training sets) combine exactly: a sweep decomposes a large test set a
    block at a time in bounded memory. A single block gives back its own result.

    Parameters
    ----------
    blocks : list of (overall, pointwise, loo_sums)
        From :func:`decompose` (or a :mod:`bvsim.estimate.classification` decomposition) with
        ``return_loo=True``, for consecutive blocks of test points.

    Returns
    -------
    overall, pointwise : dict
        As the decomposition returns them for all points at once.
    """
    pointwise = {key: np.concatenate([b[1][key] for b in blocks]) for key in blocks[0][1]}
    overall = dict(blocks[0][0])
    n_points = sum(len(next(iter(b[1].values()))) for b in blocks)
    for key in overall:
        if not key.endswith("_se"):
            overall[key] = float(np.sum(pointwise[key]) / n_points)
    if all(b[2] is not None for b in blocks):
        for name in set.intersection(*(set(b[2]) for b in blocks)):
            loo_mean = sum(b[2][name] for b in blocks) / n_points
            overall[f"{name}_se"] = float(jackknife_se(loo_mean))
    return overall, pointwise


def per_set_squared_error(pred: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Each training set's squared error against the truth, averaged over its seeds and
    the test points: the per-set terms whose mean over sets is ``bias2 + variance``.

    Parameters
    ----------
    pred : ndarray of shape (..., n_reps, n_seeds, n_test)
        NaN where a member diverged (its set's value is then NaN).
    f : ndarray of shape (n_test,)

    Returns
    -------
    ndarray of shape (..., n_reps)
    """
    return np.square(np.asarray(pred, dtype=np.float64) - f).mean(axis=(-2, -1))


def repeated_x_noise(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """Noise variance estimated from rows that share the same x: the pooled
    within-group variance of a real-valued target ``y`` (ddof = 1 in each group), NaN
    with no repeated x.

    Parameters
    ----------
    x : ndarray of shape (n, dim)
    y : ndarray of shape (n,)

    Returns
    -------
    noise_var : float
    noise_var_se : float
        Its delete-one-group jackknife SE (valid for any noise with a finite fourth
        moment, noisy itself under heavy tails; NaN with fewer than 2 groups).
    n_groups : int
        Groups of two or more rows with identical features.
    """
    _, group = np.unique(x, axis=0, return_inverse=True)
    group = group.ravel()
    sizes = np.bincount(group)
    if not (sizes >= 2).any():
        return float("nan"), float("nan"), 0
    sums = np.bincount(group, weights=y)
    sq = np.bincount(group, weights=y * y)
    keep = sizes >= 2
    ss = sq[keep] - sums[keep] ** 2 / sizes[keep]  # within-group sum of squares
    df = sizes[keep] - 1
    g = len(ss)
    se = float("nan")
    if g >= 2:  # the ratio of sums without each group in turn
        loo = (ss.sum() - ss) / (df.sum() - df)
        se = float(np.sqrt((g - 1) / g * np.square(loo - loo.mean()).sum()))
    return float(ss.sum() / df.sum()), se, g
