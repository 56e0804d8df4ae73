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

__all__ = ["anova_terms", "crossed_anova", "crossed_anova_blocks", "ensemble_variance"]


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


def ensemble_variance(components: dict, over: str, size: int) -> float:
    """Variance of the average of ``size`` independent draws of factor ``over`` (the
    other factors fixed): every term that contains ``over`` shrinks by ``size``.

    Parameters
    ----------
    components : dict of str to float
        Term values as :func:`crossed_anova` names them (``"inputs:init"``, ...); its
        whole ``overall`` dict may be passed (SEs, shares and totals are skipped).
    over : str
        The factor averaged over, e.g. ``"init"`` for an ensemble of initializations.
    size : int
    """
    total = 0.0
    for name, value in components.items():
        if name.endswith(("_se", "_share")) or name in ("variance", "bias2", "mse_truth"):
            continue
        total += value / size if over in name.split(":") else value
    return total


def crossed_anova_blocks(blocks, factors: tuple[str, ...]) -> tuple[dict, dict]:
    """:func:`crossed_anova` of a test set given a block of test points at a time.

    Every estimate averaged over the test points is a mean of per-point values, and so
    is each delete-one-level estimate, so blocks combine exactly and memory is bounded
    by one block. Adds the share of each term in the variance (term / variance) with
    its multiway-jackknife SE (``<term>_share``, ``<term>_share_se``).

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
    n_factors = len(factors)
    names = {t: ":".join(factors[i] for i in t) for t in _terms(n_factors)}
    terms = list(names.values())
    sums: dict = {}
    loo_sums: dict = {}  # (axis, name) -> array (n_levels,) of per-point sums
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
            for level in range(sizes[axis]):
                part = _per_point(np.delete(y, level, axis=axis), f, n_factors)
                for k, v in part.items():
                    if k == "mean_prediction":
                        continue
                    arr = loo_sums.setdefault((axis, names.get(k, k)), np.zeros(sizes[axis]))
                    arr[level] += float(np.sum(v))
    pointwise = {k: np.concatenate(v) for k, v in pieces.items()}
    overall = {k: v / n_points for k, v in sums.items()}
    can_jackknife = sizes is not None and min(sizes) >= 3

    def jack(estimates) -> float:
        """Multiway jackknife SE from per-axis delete-one-level estimates."""
        if not can_jackknife:
            return float("nan")
        var = 0.0
        for est in estimates:
            n = len(est)
            var += (n - 1) / n * float(np.square(est - est.mean()).sum())
        return float(np.sqrt(var))

    def loo(name):
        return [loo_sums[(axis, name)] / n_points for axis in range(n_factors)]

    out = dict(overall)
    for k in overall:
        out[f"{k}_se"] = jack(loo(k)) if can_jackknife else float("nan")
    for t in terms:
        out[f"{t}_share"] = overall[t] / overall["variance"]
        ratios = []
        if can_jackknife:
            ratios = [a / b for a, b in zip(loo(t), loo("variance"), strict=True)]
        out[f"{t}_share_se"] = jack(ratios)
    return out, pointwise
