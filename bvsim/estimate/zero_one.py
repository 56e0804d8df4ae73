"""Domingos (2000) bias-variance decomposition of the 0-1 loss, any number of classes.

Pure numpy, notation as in :mod:`bvsim.estimate.classification` (member ``(k, s)``,
test point ``j``, class ``c``); standard errors are delete-one-training-set jackknife
estimates.
"""

from __future__ import annotations

import numpy as np

from .classification import _check_p_true, _result, _summarize

__all__ = ["ZERO_ONE_COMPONENTS", "decompose_zero_one"]

#: Components returned by :func:`decompose_zero_one`, each with a ``*_se``.
ZERO_ONE_COMPONENTS = (
    "expected_loss",
    "noise",
    "noise_term",
    "bias",
    "variance",
    "variance_term",
    "variance_unbiased",
    "variance_biased",
    "net_variance",
)


def _zero_one_parts(counts, n_members, p):
    """Domingos components from class counts ``counts[..., j, c]`` of ``n_members``."""
    q = counts / n_members
    main = np.argmax(counts, axis=-1)  # first maximum: ties go to the smallest label
    variance = 1.0 - np.take_along_axis(q, main[..., None], axis=-1)[..., 0]
    out = {"variance": variance}
    if p is None:
        nan = np.full_like(variance, np.nan)
        for name in ZERO_ONE_COMPONENTS:
            out.setdefault(name, nan)
        return out, main
    ystar = np.argmax(p, axis=-1)  # ties go to the smallest label
    noise = 1.0 - np.take_along_axis(p, ystar[:, None], axis=-1)[:, 0]
    q_star = np.take_along_axis(q, np.broadcast_to(ystar[:, None], q.shape[:-1] + (1,)), -1)
    q_star = q_star[..., 0]  # P(pred = y*)
    qp = (q * p).sum(axis=-1)  # P(pred = y)
    biased = main != ystar
    out.update(
        expected_loss=1.0 - qp,
        noise=np.broadcast_to(noise, variance.shape),
        noise_term=q_star - qp,  # c1 N
        bias=biased.astype(np.float64),
        variance_term=np.where(biased, -q_star, variance),  # c2 V
        variance_unbiased=np.where(biased, 0.0, variance),
        variance_biased=np.where(biased, variance, 0.0),
    )
    out["net_variance"] = out["variance_unbiased"] - out["variance_biased"]
    return out, main


def _check_labels(labels_pred, p_true, n_classes):
    """Hard predictions as int64 ``(K, S, J)``, the checked ``p_true`` and the class count."""
    y = np.asarray(labels_pred)
    if y.ndim != 3:
        raise ValueError(f"labels_pred must have shape (n_reps, n_seeds, n_test), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError("labels_pred must hold integer class labels")
        y = y.astype(np.int64)
    if y.shape[0] < 2:
        raise ValueError(f"need at least 2 training sets, got {y.shape[0]}")
    if p_true is not None:
        n_classes = np.shape(p_true)[-1]
    elif n_classes is None:
        n_classes = int(y.max()) + 1
    p = _check_p_true(p_true, y.shape[2], n_classes)
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels_pred must lie in [0, {n_classes})")
    return y, p, n_classes


def _coefficients(full, main, q, p, n_classes) -> dict:
    """Domingos' ``c1`` and ``c2`` per test point from the member frequencies ``q[j, c]``,
    and the optimal prediction."""
    ystar = np.argmax(p, axis=-1)
    q_star = q[np.arange(len(ystar)), ystar]
    noise, var = full["noise"], full["variance"]
    with np.errstate(divide="ignore", invalid="ignore"):
        # N = 0: P(y = c | y != y*) is undefined; take it uniform over c != y*
        c1_limit = q_star - (1.0 - q_star) / (n_classes - 1)
        c1 = np.where(noise > 0, full["noise_term"] / noise, c1_limit)
        c2_biased = np.where(var > 0, -q_star / var, -1.0)
    c2 = np.where(main != ystar, c2_biased, 1.0)
    return {"c1": c1, "c2": c2, "optimal_prediction": ystar}


def decompose_zero_one(
    labels_pred: np.ndarray,
    p_true: np.ndarray | None,
    n_classes: int | None = None,
    *,
    return_loo=False,
):
    """Domingos (2000) decomposition of the expected 0-1 loss, any number of classes.

    At each test point, with ``q_c = P(pred = c)`` over members (k, s) and ``p_c =
    P(y = c | x)`` (label independent of the prediction):

    * main prediction ``y_m = argmax_c q_c`` (the mode; ties: smallest label),
    * optimal prediction ``y* = argmax_c p_c`` (ties: smallest label),
    * ``N = 1 - p_{y*}``, ``B = 1[y_m != y*]``, ``V = P(pred != y_m) = 1 - q_{y_m}``,
    * ``E[L] = P(pred != y) = 1 - sum_c q_c p_c`` (exact, from ``p_true``).

    Then ``E[L] = c1 N + B + c2 V`` exactly, with

    * ``c1 = P(pred = y*) - P(pred != y*) P(y = pred | y != y*, pred != y*)``, i.e.
      ``c1 N = q_{y*} - sum_c q_c p_c`` (since ``P(y = c | y != y*) = p_c / N``);
      when ``N = 0`` (``c1 N = 0`` regardless) we report ``c1`` with ``P(y = c | y !=
      y*)`` taken uniform, ``c1 = q_{y*} - (1 - q_{y*}) / (n_classes - 1)``;
    * ``c2 = 1`` if ``B = 0``, else ``c2 = -P(pred = y* | pred != y_m) = -q_{y*} / V``
      (``c2 = -1`` when ``B = 1`` and ``V = 0``, where ``c2 V = 0`` regardless).

    For two classes these reduce to ``c1 = 2 P(pred = y*) - 1`` and ``c2 = -1`` if
    ``B = 1`` (Domingos' Theorem 2).

    Parameters
    ----------
    labels_pred : ndarray of int, shape (n_reps, n_seeds, n_test)
        Hard predictions of member (training set k, seed s).
    p_true : ndarray of shape (n_test, n_classes) or None
        True class probabilities. None: only ``variance`` (unweighted) and the main
        prediction are computed, the rest are NaN. A one-hot of observed labels
        gives ``noise = 0`` and a bias that absorbs the noise.
    n_classes : int, optional
        Number of classes when ``p_true`` is None (default: ``max label + 1``).

    Returns
    -------
    overall : dict of str to float
        Each of :data:`ZERO_ONE_COMPONENTS` averaged over test points, with
        ``<name>_se`` (delete-one-training-set jackknife; the SE of ``noise`` is 0):
        ``expected_loss``, ``noise`` (mean N), ``noise_term`` (mean c1 N), ``bias``
        (mean B), ``variance`` (mean V, unweighted), ``variance_term`` (mean c2 V),
        ``variance_unbiased`` (mean (1 - B) V), ``variance_biased`` (mean B V) and
        ``net_variance`` (their difference, Domingos' net variance; equals
        ``variance_term`` for two classes). ``noise_term + bias + variance_term ==
        expected_loss`` exactly.
    pointwise : dict of str to ndarray of shape (n_test,)
        The same per point, plus ``main_prediction``, ``optimal_prediction``, ``c1``
        and ``c2``.
    loo_sums : dict of str to ndarray of shape (n_reps,), or None
        Only with ``return_loo``: the leave-one-set-out estimates summed over test
        points, for :func:`bvsim.estimate.squared.combine_point_blocks`.

    Notes
    -----
    These are plug-in estimates; the mode of finitely many members is itself noisy,
    which biases ``B`` and ``V`` at points where two classes nearly tie. No bias
    correction is offered (the mode is not smooth in the member frequencies, so the
    jackknife correction does not apply), and for the same reason the jackknife SEs
    of ``bias`` and the variance parts are only indicative where the mode is close to
    a tie.
    """
    y, p, n_classes = _check_labels(labels_pred, p_true, n_classes)
    k, s, j = y.shape

    counts = (y[..., None] == np.arange(n_classes)).sum(axis=1, dtype=np.float64)  # (K, J, C)
    total = counts.sum(axis=0)
    full, main = _zero_one_parts(total, k * s, p)
    loo = _zero_one_parts(total - counts, (k - 1) * s, p)[0] if k >= 3 else None
    overall, pointwise, loo_sums = _summarize(full, loo, ZERO_ONE_COMPONENTS)
    pointwise["main_prediction"] = main
    if p is not None:
        pointwise.update(_coefficients(full, main, total / (k * s), p, n_classes))
    return _result(overall, pointwise, loo_sums, return_loo, noise_known=p is not None)
