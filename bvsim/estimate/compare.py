"""Paired comparisons across weight decays, and the SE of bias² under a zero bias.

Pure functions: arrays in, arrays out, no I/O (the estimation layer, like
:mod:`bvsim.estimate.squared`). Every λ of a run trains on the *same* training sets (and is
scored on the same test labels), so a difference between two λ is a paired mean over
training sets: with ``d_k = v_k(λ1) - v_k(λ2)`` its SE is ``sd_k(d_k) / sqrt(K)``, or
in general the jackknife of the difference of the leave-one-set-out estimates. Both
are the SE of a mean of *pseudo-values* (:func:`pseudo_values`), which for a plain
mean over sets are the per-set values themselves; so every paired function here takes
per-set values of shape ``(..., n_reps)`` with NaN where a training set is not usable
(diverged at that λ) and compares over the sets usable at both λ.
``sqrt(SE1**2 + SE2**2)`` is wrong in both directions: the correlation across λ can be
negative.

The corrected bias² is a U-statistic, degenerate when the true bias is 0: its
jackknife SE is then proportional to the estimate itself. :func:`bias2_null_se` is
its SE under bias² = 0 (README, "What is estimated, and how"), computed from the K×K
Gram matrix of the centred set means, which adds up over blocks of test points.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .squared import jackknife_se

__all__ = [
    "N_BOOTSTRAP",
    "bias2_null_se",
    "bias2_null_se_points",
    "jackknife_ratio",
    "one_se_index",
    "paired_df",
    "paired_difference",
    "paired_ratio",
    "paired_vs_best",
    "prob_best",
    "pseudo_values",
    "sign_test",
    "t_multiplier",
    "trace_cov_squared",
]

#: Bootstrap resamples of the training sets behind :func:`prob_best`.
N_BOOTSTRAP = 2000


def pseudo_values(estimate, loo: np.ndarray) -> np.ndarray:
    """Jackknife pseudo-values ``K * estimate - (K - 1) * loo`` along the last axis.

    Their mean is the jackknife (bias-corrected) estimate and ``sd / sqrt(K)`` its
    jackknife SE; for a plain mean over sets they are the per-set values.

    Parameters
    ----------
    estimate : float or ndarray of shape (...)
        The estimate from all ``K`` sets.
    loo : ndarray of shape (..., K)
        The leave-one-set-out estimates.

    Returns
    -------
    ndarray of shape (..., K)
    """
    loo = np.asarray(loo, dtype=np.float64)
    k = loo.shape[-1]
    return k * np.asarray(estimate, dtype=np.float64)[..., None] - (k - 1) * loo


def paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, int]:
    """Mean of ``a - b`` over the sets where both are finite, its SE and that count.

    Parameters
    ----------
    a, b : ndarray of shape (n_reps,)
        Per-set values (or pseudo-values) at two λ; NaN where a set is not usable.

    Returns
    -------
    diff : float
        ``mean_k (a_k - b_k)`` over the common sets (NaN if none).
    se : float
        ``sd_k(a_k - b_k) / sqrt(n)`` (NaN below 2 common sets).
    n : int
        Number of common sets.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return np.nan, np.nan, 0
    se = float(d.std(ddof=1) / np.sqrt(n)) if n >= 2 else np.nan
    return float(d.mean()), se, n


def paired_df(n):
    """Degrees of freedom of a paired difference's SE over ``n`` common sets
    (:func:`paired_difference`): ``n - 1``, NaN below 2 sets.

    Parameters
    ----------
    n : int or array_like of int

    Returns
    -------
    float or ndarray
    """
    n = np.asarray(n, dtype=np.float64)
    out = np.where(n >= 2, n - 1.0, np.nan)
    return float(out) if out.ndim == 0 else out


def paired_ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """``mean(num) / mean(den)`` over the common sets, with its jackknife SE.

    Parameters
    ----------
    num, den : ndarray of shape (n_reps,)
        Per-set values whose means form the ratio (e.g. one λ's error and another's);
        NaN where not usable.

    Returns
    -------
    ratio, se : float
        The ratio of the means over the sets where both are finite, and the jackknife
        SE of the ratio of their leave-one-set-out means (NaN below 3 sets).
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    ok = np.isfinite(num) & np.isfinite(den)
    num, den = num[ok], den[ok]
    n = len(num)
    if n == 0:
        return np.nan, np.nan
    ratio = float(num.mean() / den.mean())
    if n < 3:
        return ratio, np.nan
    loo = (num.sum() - num) / (den.sum() - den)
    return ratio, float(jackknife_se(loo))


def jackknife_ratio(num: float, den: float, num_loo, den_loo) -> tuple[float, float]:
    """A ratio of two estimates from the same sets (a share of the error), with the
    jackknife SE of the ratio of their leave-one-set-out estimates.

    Parameters
    ----------
    num, den : float
        The two estimates from all sets.
    num_loo, den_loo : ndarray of shape (n_reps,)
        Their leave-one-set-out estimates.

    Returns
    -------
    ratio, se : float
    """
    ratio = num / den if den != 0 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = np.asarray(num_loo, dtype=np.float64) / np.asarray(den_loo, dtype=np.float64)
    return float(ratio), float(jackknife_se(loo)) if len(loo) >= 2 else np.nan


def paired_vs_best(loss: np.ndarray, best: int | None = None) -> dict:
    """Each λ's paired difference from the best λ, with its SE.

    Parameters
    ----------
    loss : ndarray of shape (n_wd, n_reps)
        Per-set losses (e.g. each training set's expected error at each λ), NaN
        where a set is not usable at that λ.
    best : int, optional
        Row of the best λ; by default the row with the smallest mean over its
        usable sets.

    Returns
    -------
    dict with
        ``best`` (int, -1 if no row has a usable set), ``mean`` (n_wd,) the mean over
        each row's usable sets, ``diff`` (n_wd,) the paired mean of ``loss[i] -
        loss[best]`` over the sets usable at both, ``diff_se`` (n_wd,) its SE
        ``sd / sqrt(n)`` (0 at the best itself), ``n_common`` (n_wd,) the number of
        sets compared, ``n_worse`` and ``n_better`` (n_wd,) how many of them have
        ``loss[i] > loss[best]`` and ``loss[i] < loss[best]`` (ties are neither; for a
        sign test, :func:`sign_test`), and ``best_se`` (float) the SE of the best row's
        mean.
    """
    loss = np.asarray(loss, dtype=np.float64)
    n_wd = loss.shape[0]
    finite = np.isfinite(loss)
    count = finite.sum(axis=1)
    mean = np.where(finite, loss, 0.0).sum(axis=1) / np.where(count > 0, count, 1)
    mean[count == 0] = np.nan
    out = {
        "best": -1,
        "mean": mean,
        "diff": np.full(n_wd, np.nan),
        "diff_se": np.full(n_wd, np.nan),
        "n_common": np.zeros(n_wd, dtype=int),
        "n_worse": np.zeros(n_wd, dtype=int),
        "n_better": np.zeros(n_wd, dtype=int),
        "best_se": np.nan,
    }
    if best is None:
        if not (count > 0).any():
            return out
        best = int(np.nanargmin(mean))
    out["best"] = best
    for i in range(n_wd):
        out["diff"][i], out["diff_se"][i], out["n_common"][i] = paired_difference(
            loss[i], loss[best]
        )
        out["n_worse"][i] = int(np.sum(loss[i] > loss[best]))  # NaN compares False
        out["n_better"][i] = int(np.sum(loss[i] < loss[best]))
    if out["n_common"][best] >= 2:
        out["diff_se"][best] = 0.0
    b = loss[best][finite[best]]
    out["best_se"] = float(b.std(ddof=1) / np.sqrt(len(b))) if len(b) >= 2 else np.nan
    return out


def t_multiplier(df, level: float = 0.95):
    """How many SE a two-sided ``level`` interval spans: Student's t quantile
    ``t(df, (1 + level) / 2)``.

    A mean over K training sets has K - 1 degrees of freedom (a crossed design's SE,
    Satterthwaite's, :func:`bvsim.estimate.anova.multiway_jackknife_df`): with few of
    them the SE is itself uncertain and ± 2 SE covers less than 95 % (86 % at 4 sets;
    within 2 points of 95 % from 14 sets on).

    Parameters
    ----------
    df : float or array_like
        Degrees of freedom, not necessarily whole; NaN or below 1 gives NaN.
    level : float

    Returns
    -------
    float or ndarray
        1.96 for infinite df, 2.09 for 19, 3.18 for 3 at the default level.
    """
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(df) & (df >= 1) | np.isposinf(df)
    out = np.full(df.shape, np.nan)
    out[ok] = stats.t.ppf((1 + level) / 2, df[ok])
    return float(out) if out.ndim == 0 else out


def sign_test(n_worse: int, n_better: int) -> float:
    """Two-sided exact sign test of ``n_worse`` positive against ``n_better`` negative
    paired differences (ties dropped, as the sign test does).

    The p-value of a paired difference being as often positive as negative: a robust
    check of a paired mean difference whose SE a few extreme sets dominate (a heavy
    tail, where the mean may not even exist), at the price of testing the median, not
    the mean.

    Returns
    -------
    float
        ``min(1, 2 * P(X >= max(n_worse, n_better)))`` for X ~ Binomial(n_worse +
        n_better, 1/2); NaN when both are 0.
    """
    n = n_worse + n_better
    if n <= 0:
        return np.nan
    k = max(n_worse, n_better)
    # log P(X = j) = log C(n, j) - n log 2, summed in log space (no overflow at any n)
    log_p = [
        math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) - n * math.log(2)
        for j in range(k, n + 1)
    ]
    top = max(log_p)
    tail = math.exp(top) * math.fsum(math.exp(v - top) for v in log_p)
    return float(min(1.0, 2 * tail))


def one_se_index(weight_decay: np.ndarray, diff: np.ndarray, diff_se: np.ndarray) -> int:
    """The one-SE rule: the largest λ whose paired difference from the best is at
    most one paired SE.

    Parameters
    ----------
    weight_decay, diff, diff_se : ndarray of shape (n_wd,)
        From :func:`paired_vs_best` (the best has ``diff = diff_se = 0``).

    Returns
    -------
    int
        Index into the arrays (-1 if no λ qualifies, or if no λ but the best has a
        paired SE: with nothing to compare, the rule does not apply, and the best
        alone would be marked for want of an SE).
    """
    diff, diff_se = np.asarray(diff, dtype=np.float64), np.asarray(diff_se, dtype=np.float64)
    if np.count_nonzero(np.isfinite(diff_se)) < 2:  # the best's own 0 at most
        return -1
    ok = np.isfinite(diff) & np.isfinite(diff_se) & (diff <= diff_se)
    if not ok.any():
        return -1
    wd = np.where(ok, np.asarray(weight_decay, dtype=np.float64), -np.inf)
    return int(np.argmax(wd))


def prob_best(loss: np.ndarray, n_boot: int = N_BOOTSTRAP, seed=0) -> np.ndarray:
    """How often each λ is the argmin when the training sets are resampled.

    The bootstrap resamples training sets with replacement, the same sets for every
    λ (paired), takes each λ's mean over its usable resampled sets and counts which λ
    has the smallest.

    Parameters
    ----------
    loss : ndarray of shape (n_wd, n_reps)
        Per-set losses, NaN where not usable.
    n_boot : int
        Number of bootstrap resamples.
    seed : int or numpy.random.SeedSequence
        Seed of the resampling (a run derives it from its root seed).

    Returns
    -------
    ndarray of shape (n_wd,)
        Share of the resamples in which each λ has the smallest mean (sums to 1 when
        some λ has a usable set).
    """
    loss = np.asarray(loss, dtype=np.float64)
    n_wd, k = loss.shape
    finite = np.isfinite(loss)
    wins = np.zeros(n_wd)
    if k == 0 or not finite.any():
        return wins
    gen = np.random.default_rng(seed)
    values, mask = np.where(finite, loss, 0.0).T, finite.T.astype(np.float64)
    batch = max(1, min(n_boot, 2**22 // k))  # bounded memory: batch × n_reps counts
    done = 0
    while done < n_boot:
        b = min(batch, n_boot - done)
        counts = gen.multinomial(k, np.full(k, 1.0 / k), size=b).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (counts @ values) / (counts @ mask)  # (b, n_wd)
        means[~np.isfinite(means)] = np.inf
        np.add.at(wins, means.argmin(axis=1), 1)
        done += b
    return wins / n_boot


def trace_cov_squared(gram: np.ndarray) -> float:
    """Unbiased estimate of ``tr(Σ²) = ‖Σ‖²_F`` from the Gram matrix of centred rows.

    With ``D`` the (K, J) centred i.i.d. rows (set means minus their mean) and
    ``S = DᵀD / (K - 1)`` their sample covariance, the plug-in ``‖S‖²_F`` overstates
    ``‖Σ‖²_F`` by about ``(tr Σ)² / (K - 1)``, a lot when Σ has many directions and K
    is small. This is the estimator of Himeno & Yamada (2014), unbiased without
    assuming normality::

        (K-1) / (K (K-2) (K-3)) * [(K-1)(K-2) tr(S²) + (tr S)² - K Q],
        Q = sum_k ‖d_k‖⁴ / (K - 1),

    all of it from ``G = DDᵀ`` (``tr(S²) = ‖G‖²_F / (K-1)²``, ``‖d_k‖² = G_kk``),
    which adds up over blocks of columns. Where it is not positive (possible in
    small samples) the plug-in ``‖S‖²_F`` is returned instead.

    Parameters
    ----------
    gram : ndarray of shape (K, K)
        ``D @ D.T`` (summed over blocks of test points). ``K >= 4``.

    Returns
    -------
    float
    """
    g = np.asarray(gram, dtype=np.float64)
    k = g.shape[0]
    plug_in = float(np.square(g).sum()) / (k - 1) ** 2
    if k < 4:
        return plug_in
    norms = np.diag(g)
    tr_s = norms.sum() / (k - 1)
    q = np.square(norms).sum() / (k - 1)
    est = (k - 1) / (k * (k - 2) * (k - 3)) * ((k - 1) * (k - 2) * plug_in + tr_s**2 - k * q)
    return float(est) if est > 0 else plug_in


def bias2_null_se(gram: np.ndarray, n_points: int, n_reps: int | None = None) -> float:
    """SE of the mean corrected bias² over test points when the true bias is 0.

    Under bias² = 0 the corrected bias² is the degenerate U-statistic
    ``(1/J) (1/(K(K-1))) sum_{k != l} d_k · d_l``, with variance
    ``2 ‖Σ‖²_F / (K (K-1) J²)``, Σ the J×J between-set covariance of the set means
    (means over seeds). So ``SE₀ = (1/J) sqrt(2 ‖Σ‖²_F / (K (K-1)))``, with
    ``‖Σ‖²_F`` from :func:`trace_cov_squared`.

    Parameters
    ----------
    gram : ndarray of shape (K', K')
        ``D @ D.T`` with ``D`` the centred set means, summed over blocks of test
        points; it may come from the first ``K' <= K`` sets only (an unbiased
        ``‖Σ‖²_F`` needs no more), in bounded memory.
    n_points : int
        Number of test points J that ``gram`` adds up over.
    n_reps : int, optional
        Number of sets K the bias² was estimated from (default ``K'``).

    Returns
    -------
    float
        NaN below 2 sets.
    """
    k_gram = np.asarray(gram).shape[0]
    k = k_gram if n_reps is None else int(n_reps)
    if k < 2 or k_gram < 2:
        return np.nan
    return float(np.sqrt(2 * trace_cov_squared(gram) / (k * (k - 1))) / n_points)


def bias2_null_se_points(dev: np.ndarray) -> np.ndarray:
    """Per test point, the SE of the corrected bias² when the true bias is 0.

    :func:`bias2_null_se` with one point: ``SE₀_j = sqrt(2 σ_j⁴ / (K (K-1)))``, σ_j²
    the between-set variance of the set means at point j, with σ_j⁴ estimated as in
    :func:`trace_cov_squared` (unbiased; the plug-in ``B_j²`` where that is not
    positive).

    Parameters
    ----------
    dev : ndarray of shape (K, J)
        Centred set means (set mean over seeds minus the mean over sets).

    Returns
    -------
    ndarray of shape (J,)
    """
    dev = np.asarray(dev, dtype=np.float64)
    k = dev.shape[0]
    if k < 2:
        return np.full(dev.shape[1:], np.nan)
    sq = np.square(dev)
    b = sq.sum(axis=0) / (k - 1)  # between-set variance B_j
    plug_in = np.square(b)
    if k >= 4:
        q = np.square(sq).sum(axis=0) / (k - 1)
        est = (k - 1) / (k * (k - 2) * (k - 3)) * (((k - 1) * (k - 2) + 1) * plug_in - k * q)
        sigma4 = np.where(est > 0, est, plug_in)
    else:
        sigma4 = plug_in
    return np.sqrt(2 * sigma4 / (k * (k - 1)))
