"""Where the variance comes from: a random-effects ANOVA of a crossed design.

In a crossed design every level of every source of randomness meets every level of
the others: training inputs X (``n_inputs`` draws), label noise ε (``n_noise`` draws,
indexed by training slot so that one noise draw pairs with every X) and the
initialization P (``n_seeds``). The prediction at a test point is then

    y[a, b, c] = mu + sum over non-empty subsets S of the factors of u_S[levels in S],

with independent zero-mean random effects u_S of variance V_S (main effects V_X, V_ε,
V_P and interactions V_Xε, V_XP, V_εP, V_XεP), as in Adlam & Pennington (2020) and
Lin & Dobriban (2021). Training is deterministic given (X, ε, P), so a cell holds one
value and the highest interaction is identified (it has no separate residual).

Estimators. The plug-in variance of a factor's level means overstates its main
effect by the interactions divided by the other factors' level counts. The
unbiased estimators are the expected-mean-square (EMS) solutions of the balanced
random-effects model: with ``MS_T`` the mean square of term T (sum of squares of its
inclusion-exclusion effects over ``prod_{i in T} (n_i - 1)`` degrees of freedom),

    E[MS_T] = sum_{U superset of T} (prod_{i not in U} n_i) V_U,

which Möbius inversion solves exactly:

    V_T = sum_{U superset of T} (-1)^{|U| - |T|} MS_U / prod_{i not in T} n_i.

The variance of one prediction is the sum of all V_T; the grand mean's is
``sum_T V_T / prod_{i in T} n_i``, and bias² = (mean - f)² minus that (unbiased,
unclipped, like the nested design's). Negative component estimates are kept as they
are: clipping biases them.

Standard errors: there is no single i.i.d. unit in a crossed design (every X shares
its noise draws and seeds with every other X), so the SE adds the delete-one-level
jackknife variances of each factor (the multiway jackknife; Owen 2007 shows such
sums are conservative, overstating the variance by the interaction terms counted in
more than one factor). A variance component is estimated from its factor's levels,
so its SE is only as good as their number: in simulated studies (tests/estimate/test_anova.py)
|z| > 2 happens in about 5 % of studies for a main effect with 30-40 levels, but in
13-17 % for one with 5-10 levels (a variance estimate from few levels is skewed and
its SE noisy), while interactions, estimated from products of levels, are
conservative (|z| > 2 in 0-2 %).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .squared import jackknife_variance

__all__ = [
    "anova_summary",
    "anova_terms",
    "crossed_anova",
    "crossed_anova_blocks",
    "crossed_estimates",
    "multiway_jackknife_df",
    "multiway_jackknife_se",
]


def anova_terms(factors: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``factors``: main effects first, then interactions."""
    return [t for r in range(1, len(factors) + 1) for t in itertools.combinations(factors, r)]


def _terms(n_factors: int) -> list[tuple[int, ...]]:
    """The terms as tuples of factor axes, in the order of :func:`anova_terms`."""
    axes = range(n_factors)
    return [t for r in range(1, n_factors + 1) for t in itertools.combinations(axes, r)]


def _effect(y: np.ndarray, axes: tuple[int, ...], n_factors: int) -> np.ndarray:
    """Inclusion-exclusion effect of the factors on ``axes`` (broadcastable to ``y``)."""
    others = tuple(i for i in range(n_factors) if i not in axes)
    out = 0.0
    for r in range(len(axes) + 1):
        for kept in itertools.combinations(axes, r):
            drop = tuple(sorted({*others, *axes} - set(kept)))
            term = y.mean(axis=drop, keepdims=True) if drop else y
            out = out + (-1) ** (len(axes) - r) * term
    return out


def _per_point(y: np.ndarray, f: np.ndarray | None, n_factors: int) -> dict:
    """Variance components, variance, bias² and squared error per test point.

    ``y`` has shape (n_1, ..., n_F, n_points); keys are factor-axis tuples for the
    components and strings for the rest.
    """
    sizes = y.shape[:n_factors]
    axes = tuple(range(n_factors))
    terms = _terms(n_factors)
    ms = {}
    for t in terms:
        e = np.broadcast_to(_effect(y, t, n_factors), y.shape)
        ms[t] = np.square(e).sum(axis=axes) / math.prod(sizes[i] - 1 for i in t)
    out: dict = {}
    var_mean = 0.0
    for t in terms:
        v = sum((-1) ** (len(u) - len(t)) * ms[u] for u in terms if set(t) <= set(u))
        out[t] = v / math.prod(sizes[i] for i in axes if i not in t)
        var_mean = var_mean + out[t] / math.prod(sizes[i] for i in t)
    out["variance"] = sum(out[t] for t in terms)
    m = y.mean(axis=axes)
    out["mean_prediction"] = m
    if f is not None:
        out["bias2"] = np.square(m - f) - var_mean
        out["mse_truth"] = np.square(y - f).mean(axis=axes)
    return out


def crossed_anova(pred: np.ndarray, f: np.ndarray | None, factors: tuple[str, ...]):
    """Random-effects ANOVA of predictions from a fully crossed design.

    Parameters
    ----------
    pred : ndarray of shape (n_1, ..., n_F, n_test)
        One prediction per cell (a level of every factor) and test point; finite.
        Every ``n_i >= 2`` (``>= 3`` for standard errors).
    f : ndarray of shape (n_test,) or None
        The noiseless truth; None skips bias² and squared error.
    factors : tuple of str
        The names of the leading axes, e.g. ``("inputs", "noise", "init")``.

    Returns
    -------
    overall : dict of str to float
        Averaged over test points, each with ``<name>_se``: one entry per term named
        by its factors joined with ``":"`` (``"inputs"``, ``"inputs:init"``, ...),
        ``variance`` (their sum, the variance of one prediction) and, with ``f``,
        ``bias2`` and ``mse_truth`` (``bias2 + variance`` exactly); also each term's
        share of the variance, ``<term>_share`` with ``<term>_share_se``.
    pointwise : dict of str to ndarray of shape (n_test,)
        The same per test point (without SEs), plus ``mean_prediction``.

    Notes
    -----
    Every component is unbiased under the random-effects model; ``bias2`` is the
    squared error of the grand mean minus its estimated variance. The SEs add the
    delete-one-level jackknife variance of each factor (conservative). One block of
    :func:`crossed_anova_blocks`.
    """
    y = np.asarray(pred, dtype=np.float64)
    n_factors = len(factors)
    if y.ndim != n_factors + 1:
        raise ValueError(f"pred must have {n_factors} factor axes and a test-point axis, "
                         f"got shape {y.shape}")  # fmt: skip
    if min(y.shape[:n_factors]) < 2:
        raise ValueError(f"every factor needs at least 2 levels, got {y.shape[:n_factors]}")
    if not np.isfinite(y).all():
        raise ValueError("pred must be finite (drop diverged cells' factor levels first)")
    return crossed_anova_blocks([(y, f)], factors)


def multiway_jackknife_se(replicates) -> float | np.ndarray:
    """The multiway-jackknife SE from each factor's delete-one-level estimates.

    ``sqrt(sum over factors of (n_i - 1) / n_i * sum over levels (est - mean)²)``: the
    sum of the delete-one-level jackknife variances of every factor (conservative,
    Owen 2007). A difference or ratio of two estimates from the same cells (two λ of a
    sweep) takes the difference or ratio of their replicates, level by level.

    Parameters
    ----------
    replicates : sequence of ndarray, one per factor, of shape (n_i, ...)
        The estimate with each level of that factor left out in turn; trailing axes
        (test points) give one SE each. NaN when empty.
    """
    if not replicates:
        return float("nan")
    var = 0.0
    for est in replicates:
        var = var + jackknife_variance(np.asarray(est, dtype=np.float64))
    se = np.sqrt(var)
    return float(se) if np.ndim(se) == 0 else se


def multiway_jackknife_df(replicates) -> float:
    """Satterthwaite's degrees of freedom of :func:`multiway_jackknife_se`.

    The SE² adds one jackknife variance ``v_i`` per factor, each from ``n_i`` levels
    (``n_i - 1`` degrees of freedom), so ``df = (sum v_i)² / sum (v_i² / (n_i - 1))``
    (Satterthwaite 1946): ``n - 1`` with one factor, near the smallest ``n_i - 1`` when
    that factor dominates, up to ``sum (n_i - 1)`` when all weigh alike. An interval
    ``estimate ± t(df) SE`` then covers about as asked where ``± 2 SE`` under-covers
    with few levels (``scripts/crossed_t_coverage.py``).

    Parameters
    ----------
    replicates : sequence of ndarray, one per factor, of shape (n_i,)
        As for :func:`multiway_jackknife_se` (one estimate, no trailing axes).

    Returns
    -------
    float
        NaN when empty, when a replicate is not finite or when every ``v_i`` is 0.
    """
    pieces, dof = [], []
    for est in replicates:
        est = np.asarray(est, dtype=np.float64)
        pieces.append(float(jackknife_variance(est)))
        dof.append(est.shape[0] - 1)
    v, d = np.array(pieces), np.array(dof, dtype=np.float64)
    if not len(v) or not np.isfinite(v).all() or (d < 1).any() or v.sum() <= 0:
        return float("nan")
    return float(v.sum() ** 2 / np.sum(v**2 / d))


def crossed_estimates(blocks, factors: tuple[str, ...], point_keys=()) -> tuple:
    """Per-point ANOVA estimates of consecutive blocks of test points, averaged, with
    each factor's delete-one-level estimates (the replicates of
    :func:`multiway_jackknife_se`).

    Every estimate averaged over the test points is a mean of per-point values, and so
    is each delete-one-level estimate, so blocks combine exactly and memory is bounded
    by one block.

    Parameters
    ----------
    blocks : iterable of (pred, f)
        ``pred`` of shape (n_1, ..., n_F, n_block), ``f`` of shape (n_block,) or None,
        for consecutive blocks of test points (the same cells in every block).
    factors : tuple of str
    point_keys : tuple of str
        Estimates whose per-point replicates are kept too (e.g. ``"bias2"``).

    Returns
    -------
    overall : dict of str to float
        Each estimate averaged over the test points (terms named as in
        :func:`crossed_anova`, ``variance``, ``bias2``, ``mse_truth``).
    pointwise : dict of str to ndarray of shape (n_test,)
        The same per point, plus ``mean_prediction``.
    replicates : dict of str to list of ndarray
        Per estimate, one array (n_i,) per factor of its delete-one-level values
        averaged over the test points (all NaN below 3 levels of some factor: leaving
        one of 2 levels out leaves no variance to estimate, so every SE is NaN); for
        ``point_keys``, under ``(key, "points")``, arrays (n_i, n_test).
    """
    n_factors = len(factors)
    names = {t: ":".join(factors[i] for i in t) for t in _terms(n_factors)}
    sums: dict = {}
    loo_sums: dict = {}  # (axis, name) -> array (n_levels,) of per-point sums
    loo_points: dict = {}  # (axis, name) -> list of arrays (n_levels, n_block)
    pieces: dict = {}
    n_points, sizes = 0, None
    for pred, f in blocks:
        y = np.asarray(pred, dtype=np.float64)
        sizes = y.shape[:n_factors]
        if min(sizes) < 2 or not np.isfinite(y).all():
            raise ValueError("every factor needs >= 2 levels and every prediction finite")
        per = {names.get(k, k): v for k, v in _per_point(y, f, n_factors).items()}
        for k, v in per.items():
            pieces.setdefault(k, []).append(v)
            if k != "mean_prediction":
                sums[k] = sums.get(k, 0.0) + float(np.sum(v))
        n_points += y.shape[-1]
        if min(sizes) < 3:
            continue
        for axis in range(n_factors):
            loo = [
                _per_point(np.delete(y, lv, axis=axis), f, n_factors) for lv in range(sizes[axis])
            ]
            for k in loo[0]:
                if k == "mean_prediction":
                    continue
                name = names.get(k, k)
                arr = loo_sums.setdefault((axis, name), np.zeros(sizes[axis]))
                arr += [float(np.sum(part[k])) for part in loo]
                if name in point_keys:
                    loo_points.setdefault((axis, name), []).append(np.stack([p[k] for p in loo]))
    pointwise = {k: np.concatenate(v) for k, v in pieces.items()}
    overall = {k: v / n_points for k, v in sums.items()}
    replicates = {k: [] for k in overall}
    for (_axis, name), arr in loo_sums.items():
        replicates[name].append(arr / n_points)
    for (_axis, name), parts in loo_points.items():
        replicates.setdefault((name, "points"), []).append(np.concatenate(parts, axis=1))
    if sizes is not None and min(sizes) < 3:  # no replicates: NaN of each factor's length
        replicates = {k: [np.full(n, np.nan) for n in sizes] for k in overall}
        for name in point_keys:
            replicates[(name, "points")] = [np.full((n, n_points), np.nan) for n in sizes]
    return overall, pointwise, replicates


def crossed_anova_blocks(blocks, factors: tuple[str, ...]) -> tuple[dict, dict]:
    """:func:`crossed_anova` of a test set given a block of test points at a time
    (:func:`crossed_estimates`), with the multiway-jackknife SE of every estimate and
    the share of each term in the variance (term / variance) with its SE
    (``<term>_share``, ``<term>_share_se``).

    Parameters
    ----------
    blocks : iterable of (pred, f)
        ``pred`` of shape (n_1, ..., n_F, n_block), ``f`` of shape (n_block,) or None,
        for consecutive blocks of test points (the same cells in every block).
    factors : tuple of str

    Returns
    -------
    overall, pointwise : dict
        As :func:`crossed_anova` returns them for all points at once, plus the shares.
    """
    overall, pointwise, reps = crossed_estimates(blocks, factors)
    return anova_summary(overall, reps, factors), pointwise


def anova_summary(overall: dict, reps: dict, factors: tuple[str, ...]) -> dict:
    """The ``overall`` of :func:`crossed_anova_blocks` from the estimates and replicates
    of :func:`crossed_estimates` (one pass over the predictions serves it and
    :func:`bvsim.estimate.crossed.crossed_summary`): every estimate with its
    multiway-jackknife SE and Satterthwaite df (``<name>_se``, ``<name>_df``), and each
    term's share of the variance with its SE and df (``<term>_share``, ``_share_se``,
    ``_share_df``)."""
    out = dict(overall)
    for k in overall:
        out[f"{k}_se"] = multiway_jackknife_se(reps[k])
        out[f"{k}_df"] = multiway_jackknife_df(reps[k])
    for t in (":".join(t) for t in anova_terms(factors)):
        out[f"{t}_share"] = overall[t] / overall["variance"]
        ratios = [a / b for a, b in zip(reps[t], reps["variance"], strict=True)]
        out[f"{t}_share_se"] = multiway_jackknife_se(ratios)
        out[f"{t}_share_df"] = multiway_jackknife_df(ratios)
    return out
