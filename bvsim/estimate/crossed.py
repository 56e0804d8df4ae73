"""The bias-variance decomposition of a crossed design, with multiway-jackknife SEs.

In a crossed design (:mod:`bvsim.estimate.anova`) the training sets are not
independent: set ``k = a * n_noise + b`` shares its inputs draw ``a`` with every other
set of that ``a``, its noise draw ``b`` likewise, and every set shares the seeds. The
nested design's estimators and their delete-one-set jackknife would treat the
``n_inputs * n_noise`` sets as i.i.d. and understate every SE. Here the summary's
numbers come from the crossed random-effects estimators themselves:

* ``variance`` is the sum of the ANOVA terms (the variance of one prediction), split
  into ``variance_init``, the terms that contain the initialization (the variance over
  seeds with the rest fixed, as in the nested design), and ``variance_data``, the rest;
* ``bias2`` is the squared error of the grand mean minus its estimated variance, and
  ``mse_truth = bias2 + variance`` the mean over cells of the squared error;

so they equal ``anova.csv``'s rows exactly. Every SE is the multiway jackknife
(:func:`bvsim.estimate.anova.multiway_jackknife_se`) of the factors' delete-one-level
estimates, and a difference or ratio of two estimates from the same cells (two λ of a
sweep: they share every level of every factor) is the jackknife of the difference or
ratio of their replicates, paired by construction.

Replicates are kept as one array per estimate: the factors' delete-one-level values
concatenated (``sum(levels)`` entries, factor by factor), so per-λ rows stack into
arrays of shape (n_wd, sum(levels)).
"""

from __future__ import annotations

import numpy as np

from .anova import crossed_estimates, multiway_jackknife_df, multiway_jackknife_se

__all__ = [
    "POINT_KEYS",
    "cell_mean",
    "crossed_decompose",
    "crossed_prob_best",
    "crossed_summary",
    "level_means",
    "split_df",
    "split_se",
]

#: Estimates the summary takes from the crossed ANOVA (each with replicates).
_OVERALL = ("bias2", "variance", "variance_data", "variance_init", "mse_truth")


def split_se(replicates: np.ndarray, levels) -> float:
    """Multiway-jackknife SE from concatenated replicates.

    Parameters
    ----------
    replicates : ndarray of shape (sum(levels),)
        Delete-one-level estimates, factor after factor (as this module keeps them).
    levels : sequence of int
        The factors' level counts.

    Returns
    -------
    float
        NaN when a factor has fewer than 3 levels (as every crossed SE), or where a
        replicate is not finite.
    """
    per_factor = _per_factor(replicates, levels)
    return float("nan") if per_factor is None else multiway_jackknife_se(per_factor)


def split_df(replicates: np.ndarray, levels) -> float:
    """Satterthwaite's degrees of freedom of :func:`split_se`
    (:func:`bvsim.estimate.anova.multiway_jackknife_df`); NaN where :func:`split_se`
    is."""
    per_factor = _per_factor(replicates, levels)
    return float("nan") if per_factor is None else multiway_jackknife_df(per_factor)


def _per_factor(replicates: np.ndarray, levels) -> list[np.ndarray] | None:
    """Concatenated replicates split into one array per factor; None when a factor has
    fewer than 3 levels, the lengths disagree or a replicate is not finite."""
    reps = np.asarray(replicates, dtype=np.float64)
    if min(levels) < 3 or len(reps) != sum(levels) or not np.isfinite(reps).all():
        return None
    return np.split(reps, np.cumsum(levels)[:-1])


def level_means(cells: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean of a cell array and its delete-one-level means, factor by factor.

    Parameters
    ----------
    cells : ndarray of shape (n_1, ..., n_F)
        One value per cell (e.g. a member's test error).

    Returns
    -------
    mean : float
    replicates : ndarray of shape (n_1 + ... + n_F,)
        The mean with each level of each factor left out in turn (see
        :func:`split_se`).
    """
    c = np.asarray(cells, dtype=np.float64)
    total, n = c.sum(), c.size
    reps = []
    for axis, n_i in enumerate(c.shape):
        level_sums = c.sum(axis=tuple(i for i in range(c.ndim) if i != axis))
        reps.append((total - level_sums) / (n - n // n_i))
    return float(total / n), np.concatenate(reps)


def cell_mean(values: np.ndarray, levels) -> tuple[float, float, np.ndarray]:
    """The mean of per-member values of a crossed design (any shape that reshapes to
    the cells, ``levels``: (n_1, ..., n_F)), its multiway-jackknife SE and its
    concatenated delete-one-level replicates."""
    mean, reps = level_means(np.asarray(values).reshape(tuple(levels)))
    return mean, split_se(reps, levels), reps


def _concat(reps: list) -> np.ndarray:
    return np.concatenate(reps) if reps else np.zeros(0)


def crossed_decompose(blocks, factors: tuple[str, ...], init: str = "init") -> tuple:
    """bias², variance (split into data and initialization) and the squared error
    against the truth of a crossed design, with multiway-jackknife SEs.

    Parameters
    ----------
    blocks : iterable of (pred, f)
        ``pred`` of shape (n_1, ..., n_F, n_block), ``f`` of shape (n_block,), for
        consecutive blocks of test points (:func:`bvsim.estimate.anova.crossed_estimates`).
    factors : tuple of str
        The names of the leading axes (only factors with at least 2 levels).
    init : str
        The initialization factor's name; ``variance_init`` is NaN without it.

    Returns
    -------
    overall : dict of str to float
        Each of ``bias2``, ``variance``, ``variance_data``, ``variance_init`` and
        ``mse_truth`` averaged over the test points, with ``<name>_se``.
    pointwise : dict of str to ndarray of shape (n_test,)
        ``mean_prediction``, ``bias2``, ``variance`` and their ``_se``.
    replicates : dict of str to ndarray of shape (sum(levels),)
        The same five estimates' concatenated delete-one-level values (all NaN when
        some factor has fewer than 3 levels: leaving one of 2 levels out leaves no
        variance to estimate, so every SE is then NaN).
    """
    estimates = crossed_estimates(blocks, factors, point_keys=POINT_KEYS)
    return crossed_summary(*estimates, factors, init)


#: The estimates whose per-point replicates :func:`crossed_summary` needs (pass them as
#: ``point_keys`` to :func:`bvsim.estimate.anova.crossed_estimates`).
POINT_KEYS = ("bias2", "variance")


def crossed_summary(
    overall: dict, pointwise: dict, reps: dict, factors: tuple[str, ...], init: str = "init"
) -> tuple:
    """:func:`crossed_decompose` from the output of
    :func:`bvsim.estimate.anova.crossed_estimates` (with ``point_keys=POINT_KEYS``): one
    pass over the predictions serves it and the ANOVA table
    (:func:`bvsim.estimate.anova.anova_summary`); its arguments are left unchanged."""
    overall = dict(overall)
    init_terms = [t for t in overall if init in t.split(":") and t not in _OVERALL]
    flat = {k: _concat(reps[k]) for k in ("bias2", "variance", "mse_truth")}
    if init in factors:
        overall["variance_init"] = sum(overall[t] for t in init_terms)
        flat["variance_init"] = sum(_concat(reps[t]) for t in init_terms)
    else:
        overall["variance_init"] = np.nan
        flat["variance_init"] = np.full(len(flat["variance"]), np.nan)
    overall["variance_data"] = overall["variance"] - (
        overall["variance_init"] if init in factors else 0.0
    )
    flat["variance_data"] = flat["variance"] - (flat["variance_init"] if init in factors else 0)
    levels = [len(r) for r in reps["variance"]]
    out = {k: float(overall[k]) for k in _OVERALL}
    for k in _OVERALL:
        out[f"{k}_se"] = split_se(flat[k], levels) if levels else float("nan")
    point = {"mean_prediction": pointwise["mean_prediction"]}
    for k in ("bias2", "variance"):
        point[k] = pointwise[k]
        point_reps = reps.get((k, "points"), [])
        point[f"{k}_se"] = (
            multiway_jackknife_se(point_reps) if point_reps else np.full(len(point[k]), np.nan)
        )
    return out, point, flat


def crossed_prob_best(cells: np.ndarray, n_boot: int, seed) -> np.ndarray:
    """How often each λ is the argmin of the mean cell error when every factor's levels
    are resampled independently with replacement (the pigeonhole bootstrap, Owen 2007),
    the same resample for every λ.

    Parameters
    ----------
    cells : ndarray of shape (n_wd, n_1, ..., n_F)
        Each cell's expected error at each λ (its mean over cells is the summary's
        ``expected_error``); a row with a NaN never wins.
    n_boot : int
    seed : int or numpy.random.SeedSequence

    Returns
    -------
    ndarray of shape (n_wd,)
    """
    c = np.asarray(cells, dtype=np.float64)
    n_wd, sizes = c.shape[0], c.shape[1:]
    wins = np.zeros(n_wd)
    finite = np.isfinite(c.reshape(n_wd, -1)).all(axis=1)
    if not finite.any():
        return wins
    c = np.where(finite.reshape(-1, *(1,) * len(sizes)), c, 0.0)
    gen = np.random.default_rng(seed)
    batch = max(1, min(n_boot, 2**22 // max(1, c.size)))
    done = 0
    while done < n_boot:
        b = min(batch, n_boot - done)
        means = np.broadcast_to(c, (b, *c.shape))  # (b, n_wd, n_1, ..., n_F)
        for n_i in sizes:  # weight the leading factor's levels by their resampled counts
            w = gen.multinomial(n_i, np.full(n_i, 1.0 / n_i), size=b) / n_i  # (b, n_i)
            means = np.einsum("bwi...,bi->bw...", means, w)
        means = np.where(finite, means.reshape(b, n_wd), np.inf)
        np.add.at(wins, means.argmin(axis=1), 1)
        done += b
    return wins / n_boot
