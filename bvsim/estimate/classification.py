"""Bias-variance decompositions for classifiers, with Monte Carlo standard errors.

Pure functions: arrays in, arrays out, no I/O. Notation follows
:mod:`bvsim.estimate.squared`: member ``(k, s)`` is training set k (the i.i.d. unit) and
seed s; ``j`` indexes test points and ``c`` classes. Three losses:

* **Cross-entropy** (:func:`decompose_cross_entropy`; Heskes 1998, used by Yang et
  al. 2020). With ``pi[k, s, j]`` the predicted distributions, the *normalized
  geometric mean* ``pibar = softmax(abar)`` of ``abar = mean_{k,s} log pi`` is the
  central prediction, and with ``Z = sum_c exp(abar_c)`` (``<= 1``)

  - ``noise = H(p)`` (the Bayes floor),
  - ``bias = KL(p || pibar)``,
  - ``variance = mean_{k,s} KL(pibar || pi_ks) = -log Z``,

  which add up *exactly* to the expected cross-entropy ``mean_{k,s} CE(p, pi_ks)``:
  ``CE(p, q) = H(p) + KL(p || q)`` and ``mean KL(p || pi) = -sum p abar - H(p)
  = KL(p || pibar) - log Z``. Seed variance splits exactly, too: with ``pibar_k``
  the geometric mean of set k's seeds, ``variance = variance_data + variance_init``,
  ``variance_data = mean_k KL(pibar || pibar_k)``,
  ``variance_init = mean_k mean_s KL(pibar_k || pi_ks)``.

* **0-1 loss** (:func:`bvsim.estimate.zero_one.decompose_zero_one`; Domingos 2000,
  multiclass form): ``E[L] = c1 N + B + c2 V`` exactly; it lives in its own module
  and shares this module's input checks and jackknife summaries.

* **Brier score** (:func:`decompose_brier`): squared error of the probability
  vector, :func:`bvsim.estimate.squared.decompose` summed over classes, plus the noise
  ``sum_c p_c (1 - p_c)``.

Standard errors are delete-one-training-set jackknife estimates throughout.
"""

from __future__ import annotations

import numpy as np

from .squared import _parts as _sq_parts
from .squared import decompose, jackknife_se

__all__ = [
    "BRIER_COMPONENTS",
    "CE_COMPONENTS",
    "EPS",
    "decompose_brier",
    "decompose_cross_entropy",
    "per_set_cross_entropy",
]

#: Probabilities are clipped to ``[EPS, 1]`` (and renormalized) before taking logs.
EPS = 1e-12

#: Components returned by :func:`decompose_cross_entropy`, each with a ``*_se``.
CE_COMPONENTS = ("expected_loss", "noise", "bias", "variance", "variance_data", "variance_init")

#: Components returned by :func:`decompose_brier`, each with a ``*_se``.
BRIER_COMPONENTS = (
    "expected_loss",
    "noise",
    "bias2",
    "variance",
    "variance_data",
    "variance_init",
    "mse_truth",
)


# --------------------------------------------------------------------------- helpers


def _check_p_true(p_true, n_test, n_classes=None) -> np.ndarray | None:
    if p_true is None:
        return None
    p = np.asarray(p_true, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != n_test or (n_classes is not None and p.shape[1] != n_classes):
        want = f"({n_test}, {n_classes if n_classes is not None else 'n_classes'})"
        raise ValueError(f"p_true must have shape {want}, got {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("p_true must be finite and non-negative")
    if not np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-6):
        raise ValueError("rows of p_true must sum to 1")
    return p


def _log_proba(proba) -> np.ndarray:
    """Log of the member distributions, clipped to ``[EPS, 1]`` and renormalized."""
    q = np.asarray(proba, dtype=np.float64)
    if q.ndim != 4:
        raise ValueError(
            f"proba must have shape (n_reps, n_seeds, n_test, n_classes), got {q.shape}"
        )
    if not np.isfinite(q).all():
        raise ValueError("proba must be finite (drop diverged training sets first)")
    if (q < -1e-6).any() or (q > 1 + 1e-6).any():
        raise ValueError("proba must lie in [0, 1] (pass probabilities, not logits)")
    if not np.allclose(q.sum(axis=-1), 1.0, rtol=0, atol=1e-3):
        raise ValueError("proba must sum to 1 over the class axis")
    q = np.clip(q, EPS, 1.0)
    return np.log(q) - np.log(q.sum(axis=-1, keepdims=True))


def _logsumexp(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=-1, keepdims=True)
    return np.log(np.exp(a - top).sum(axis=-1)) + top[..., 0]


def _neg_entropy(p: np.ndarray) -> np.ndarray:
    """sum_c p log p with 0 log 0 = 0."""
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=-1)


def _ce_parts(abar, p, init):
    """Cross-entropy components from the mean log-probabilities ``abar[..., j, c]``.

    ``init`` (broadcastable to ``abar.shape[:-1]``) is the init variance; ``p`` the true
    distributions or None. Broadcasts over leading axes (used for leave-one-out).
    """
    log_z = _logsumexp(abar)  # <= 0 up to rounding
    variance = -log_z
    out = {"variance": variance, "variance_init": init, "variance_data": variance - init}
    if p is None:
        nan = np.full_like(variance, np.nan)
        out.update(expected_loss=nan, noise=nan, bias=nan)
        return out
    neg_h = _neg_entropy(p)
    cross = (p * abar).sum(axis=-1)  # sum_c p log-geometric-mean (unnormalized)
    out["noise"] = np.broadcast_to(-neg_h, variance.shape)
    out["bias"] = neg_h - cross + log_z  # KL(p || pibar), pibar = exp(abar - log Z)
    out["expected_loss"] = -cross  # mean_{k,s} CE(p, pi_ks)
    return out


def _ce_init(logp_ks: np.ndarray) -> np.ndarray:
    """Per-set init variance ``mean_s KL(pibar_k || pi_ks) = -log Z_k``, shape (K, J)."""
    return -_logsumexp(logp_ks.mean(axis=1))


def _ce_init_corrected(logp_ks: np.ndarray) -> np.ndarray:
    """Per-set init variance, delete-one-seed jackknife bias-corrected, shape (K, J)."""
    s = logp_ks.shape[1]
    a_k = logp_ks.mean(axis=1, keepdims=True)  # (K, 1, J, C)
    a_loo = (s * a_k - logp_ks) / (s - 1)  # (K, S, J, C)
    v_k = -_logsumexp(a_k[:, 0])
    v_loo = -_logsumexp(a_loo).mean(axis=1)
    return s * v_k - (s - 1) * v_loo


def _ce_corrected(full: dict, loo: dict | None, k: int, init_k: np.ndarray | None) -> dict:
    """The jackknife bias-corrected cross-entropy parts (see ``corrected`` in
    :func:`decompose_cross_entropy`); ``init_k`` the per-set corrected init variance
    (:func:`_ce_init_corrected`), None with one seed."""
    if k < 3:
        raise ValueError("corrected=True needs at least 3 training sets")
    corr = dict(full)
    for name in ("bias", "variance"):
        corr[name] = k * full[name] - (k - 1) * loo[name].mean(axis=0)
    corr["expected_loss"] = full["expected_loss"]  # linear: jackknife is the identity
    if init_k is not None:
        corr["variance_init"] = init_k.mean(axis=0)
    corr["variance_data"] = corr["variance"] - corr["variance_init"]
    return corr


def _summarize(full, loo, names, corrected_full=None):
    """Overall means and jackknife SEs from full-sample and leave-one-set-out parts;
    also the leave-one-out estimates summed over test points (None without them)."""
    est = corrected_full if corrected_full is not None else full
    overall, pointwise = {}, {}
    loo_sums = None if loo is None else {}
    for name in names:
        pointwise[name] = np.array(est[name], dtype=np.float64)  # own, writable copy
        overall[name] = float(np.mean(est[name]))
        if loo is None:
            pointwise[f"{name}_se"] = np.full(np.shape(est[name]), np.nan)
            overall[f"{name}_se"] = np.nan
        else:
            pointwise[f"{name}_se"] = jackknife_se(loo[name])
            loo_sums[name] = loo[name].sum(axis=-1)
            overall[f"{name}_se"] = float(jackknife_se(loo_sums[name] / loo[name].shape[-1]))
    return overall, pointwise, loo_sums


def _result(overall, pointwise, loo_sums, return_loo, noise_known: bool):
    """What a decomposition returns. A known noise (from the true class probabilities)
    is not estimated from the members: its SE is 0, not a jackknife."""
    if noise_known:
        pointwise["noise_se"] = np.zeros(len(pointwise["noise"]))
        overall["noise_se"] = 0.0
        if loo_sums is not None:
            loo_sums.pop("noise", None)
    return (overall, pointwise, loo_sums) if return_loo else (overall, pointwise)


# ------------------------------------------------------------------ cross-entropy


def per_set_cross_entropy(proba: np.ndarray, p_true: np.ndarray) -> np.ndarray:
    """Each training set's cross-entropy against the true class probabilities,
    averaged over its seeds and the test points: the per-set terms whose mean over
    sets is the ``expected_loss`` of :func:`decompose_cross_entropy` (same clipping).

    Parameters
    ----------
    proba : ndarray of shape (..., n_reps, n_seeds, n_test, n_classes)
        NaN where a member diverged (its set's value is then NaN).
    p_true : ndarray of shape (n_test, n_classes)

    Returns
    -------
    ndarray of shape (..., n_reps)
    """
    q = np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0)
    logq = np.log(q) - np.log(q.sum(axis=-1, keepdims=True))
    return -(p_true * logq).sum(axis=-1).mean(axis=(-2, -1))


def decompose_cross_entropy(
    proba: np.ndarray, p_true: np.ndarray | None, corrected: bool = False, *, return_loo=False
):
    """Exact decomposition of expected cross-entropy (Heskes 1998).

    Parameters
    ----------
    proba : ndarray of shape (n_reps, n_seeds, n_test, n_classes)
        Predicted class probabilities of member (training set k, seed s). Clipped to
        ``[EPS, 1]`` (``EPS = 1e-12``) and renormalized before logs, so the
        decomposition is exact for these clipped distributions.
    p_true : ndarray of shape (n_test, n_classes) or None
        True class probabilities ``p(y | x_j)``. A one-hot encoding of observed test
        labels is allowed: then ``noise`` is 0 and ``bias`` = ``-mean log pibar_y``
        estimates noise + bias (``E_y[CE(e_y, q)] = H(p) + KL(p || q)``) and
        ``expected_loss`` the expected test cross-entropy. With None only the
        variance parts are computed (the rest are NaN).
    corrected : bool, default False
        False: plug-in estimates. For finite K the plug-in variance is biased *low*
        and the plug-in bias biased *high*, both by O(1/K) (the geometric mean of K
        sets is closer to each member and noisier than the population one). True:
        delete-one-training-set jackknife bias correction ``K t - (K-1) mean_i t_(-i)``
        of ``bias`` and ``variance`` (both smooth functions of the mean over i.i.d.
        sets of ``mean_s log pi``, so the O(1/K) term is removed). ``expected_loss``
        is linear in that mean, so its correction is the identity, and therefore the
        corrected terms still satisfy ``noise + bias + variance == expected_loss``
        exactly. ``variance_init`` is corrected by a delete-one-seed jackknife within
        each set (needs ``n_seeds >= 2``; removes its O(1/S) low bias) and
        ``variance_data = variance - variance_init``. Corrected terms may be
        slightly negative when the true value is near 0.

    Returns
    -------
    overall : dict of str to float
        Each of :data:`CE_COMPONENTS` averaged over test points, with ``<name>_se``
        (delete-one-set jackknife of the plug-in, also for the corrected estimate: its
        O(1/K) correction leaves the SE as it is to first order; ``variance_init``'s
        from its corrected per-set values, ~S/(S-1) times the plug-in's). ``noise`` is
        not estimated from the members; its SE is 0.
    pointwise : dict of str to ndarray of shape (n_test,)
        The same per test point, plus ``mean_distribution`` (``pibar``, shape
        (n_test, n_classes)).
    loo_sums : dict of str to ndarray of shape (n_reps,), or None
        Only with ``return_loo``: the leave-one-set-out estimates summed over test
        points, for :func:`bvsim.estimate.squared.combine_point_blocks`.

    Notes
    -----
    ``variance_init`` is NaN and ``variance_data == variance`` when ``n_seeds == 1``.
    Components: ``expected_loss = mean_{k,s} CE(p, pi_ks) = noise + bias + variance``,
    ``noise = H(p)``, ``bias = KL(p || pibar)``, ``variance = mean_{k,s} KL(pibar ||
    pi_ks)``, ``variance_data = mean_k KL(pibar || pibar_k)``,
    ``variance_init = mean_{k,s} KL(pibar_k || pi_ks)``.
    """
    logp = _log_proba(proba)
    k, s, j, c = logp.shape
    if k < 2:
        raise ValueError(f"need at least 2 training sets, got {k}")
    p = _check_p_true(p_true, j, c)

    a_k = logp.mean(axis=1)  # (K, J, C)
    abar = a_k.mean(axis=0)
    init_k = _ce_init(logp) if s > 1 else np.zeros((k, j))
    full = _ce_parts(abar, p, init_k.mean(axis=0))
    # the corrected init variance is a mean over sets of per-set values (a factor of
    # about S / (S - 1) on the plug-in's): its SE is theirs, not the plug-in's
    init_corr = _ce_init_corrected(logp) if corrected and s > 1 else None
    init_se_k = init_k if init_corr is None else init_corr

    loo = None
    if k >= 3:
        a_loo = (k * abar - a_k) / (k - 1)
        init_loo = (k * init_se_k.mean(axis=0) - init_se_k) / (k - 1)
        loo = _ce_parts(a_loo, p, init_loo)

    corr = _ce_corrected(full, loo, k, init_corr) if corrected else None

    if s == 1:
        for d in (full, loo, corr):
            if d is not None:
                d["variance_init"] = np.full_like(d["variance"], np.nan)
    overall, pointwise, loo_sums = _summarize(full, loo, CE_COMPONENTS, corr)
    pointwise["mean_distribution"] = np.exp(abar - _logsumexp(abar)[:, None])
    return _result(overall, pointwise, loo_sums, return_loo, noise_known=p is not None)


# --------------------------------------------------------------------------- Brier


def decompose_brier(proba: np.ndarray, onehot_or_p_true: np.ndarray, *, return_loo=False):
    """Bias-variance decomposition of the Brier score (squared error of the
    probability vector), via :func:`bvsim.estimate.squared.decompose` summed over classes.

    ``E_y ||pi - e_y||^2 = ||pi - p||^2 + sum_c p_c (1 - p_c)``, so with ``mse_truth
    = mean_{k,s} ||pi_ks - p||^2 = bias2 + variance`` (the corrected bias² and
    unbiased variance of :mod:`bvsim.estimate.squared`, summed over classes),
    ``expected_loss = noise + bias2 + variance`` exactly.

    Parameters
    ----------
    proba : ndarray of shape (n_reps, n_seeds, n_test, n_classes)
        Predicted class probabilities (used as given, no clipping).
    onehot_or_p_true : ndarray of shape (n_test, n_classes), or int labels (n_test,)
        True class probabilities, or observed test labels (one-hot or integer): then
        ``noise`` is 0 and ``bias2`` estimates noise + bias².

    Returns
    -------
    overall : dict of str to float
        Each of :data:`BRIER_COMPONENTS` averaged over test points, with ``<name>_se``
        (delete-one-training-set jackknife of the class sum; ``noise_se`` is 0).
    pointwise : dict of str to ndarray of shape (n_test,)
        The same per test point, plus ``mean_distribution`` (shape (n_test,
        n_classes)).
    loo_sums : dict of str to ndarray of shape (n_reps,), or None
        Only with ``return_loo``: the leave-one-set-out estimates summed over test
        points, for :func:`bvsim.estimate.squared.combine_point_blocks`.
    """
    pred = np.asarray(proba, dtype=np.float64)
    if pred.ndim != 4:
        raise ValueError(
            f"proba must have shape (n_reps, n_seeds, n_test, n_classes), got {pred.shape}"
        )
    k, s, j, c = pred.shape
    target = np.asarray(onehot_or_p_true)
    if target.ndim == 1:
        if not np.issubdtype(target.dtype, np.integer) or target.min() < 0 or target.max() >= c:
            raise ValueError(f"integer labels must lie in [0, {c})")
        target = np.eye(c)[target]
    p = _check_p_true(target, j, c)

    flat = pred.reshape(k, s, j * c)
    _, point = decompose(flat, p.reshape(-1))
    names = ("bias2", "variance", "variance_data", "variance_init", "mse_truth")
    full = {n: point[n].reshape(j, c).sum(axis=1) for n in names}
    loo = None
    if k >= 3:
        # per-point SEs need the class sum of each leave-one-set-out estimate: the
        # same closed-form leave-one-out statistics as estimators.decompose, all at once
        a = pred.mean(axis=1)  # (K, J, C)
        within = pred.var(axis=1, ddof=1) if s > 1 else np.zeros_like(a)
        m = a.mean(axis=0)
        dev = a - m
        ss = np.square(dev).sum(axis=0)
        w = within.mean(axis=0)
        parts = _sq_parts(
            k - 1,
            s,
            m - dev / (k - 1),
            p,
            ss - np.square(dev) * k / (k - 1),
            (k * w - within) / (k - 1),
        )
        loo = {n: parts[n].sum(axis=-1) for n in names}
    noise = (p * (1.0 - p)).sum(axis=1)
    full["noise"] = noise
    full["expected_loss"] = full["mse_truth"] + noise
    if loo is not None:
        loo["noise"] = np.broadcast_to(noise, (k, j))
        loo["expected_loss"] = loo["mse_truth"] + noise
    if s == 1:
        for d in (full, loo):
            if d is not None:
                d["variance_init"] = np.full_like(d["variance"], np.nan)
    overall, pointwise, loo_sums = _summarize(full, loo, BRIER_COMPONENTS)
    pointwise["mean_distribution"] = point["mean_prediction"].reshape(j, c)
    return _result(overall, pointwise, loo_sums, return_loo, noise_known=True)
