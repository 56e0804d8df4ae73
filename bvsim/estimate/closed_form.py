"""Which closed form of ridge a configuration has, and at which λ: decided once for
``theory.csv`` (:func:`bvsim.estimate.theory.ridge_theory`) and the theory column of
``anova.csv`` (:func:`bvsim.estimate.anova_theory.anova_theory`), with the one
conversion of bvsim's weight decay λ to ridge's α (:func:`ridge_alpha`; the
closed-form solver, :mod:`bvsim.train.ridge`, takes it too). The formulas are in
:mod:`bvsim.estimate.theory` and :mod:`bvsim.estimate.anova_theory`.
"""

from __future__ import annotations

import numpy as np

from ..config import Config

__all__ = ["KINDS", "has_theory", "ridge_alpha", "theory_kinds"]

#: ``kind`` values of :func:`theory_kinds` (``theory.csv``, ``anova.csv``), and their
#: legend labels. A random design's table is exact at λ = 0 and the limit at λ > 0; the
#: decomposition figure draws each kind apart (the exact λ = 0 value as a point), one
#: legend entry each.
KINDS = {
    "fixed_design_exact": "theory (exact, fixed design)",
    "random_design_exact": "theory (exact, λ = 0)",
    "random_design_limit": "theory (Marchenko–Pastur limit)",
}


def ridge_alpha(weight_decay, n=1):
    """Ridge's α = n λ / 2 for bvsim's coupled weight decay λ: the minimizer of
    (1/n)‖y − Xw‖² + (λ/2)‖w‖² is ridge (XᵀX + αI)⁻¹Xᵀy. With the default ``n = 1``,
    the per-sample λ_r = α/n = λ/2 that the random-design limits take
    (``alpha_over_n``).

    Parameters
    ----------
    weight_decay : float or ndarray
        bvsim's λ.
    n : int
        The number of training points.
    """
    return n * weight_decay / 2


def has_theory(cfg: Config) -> str | None:
    """Which theory applies to ``cfg``: ``"fixed_design_exact"``,
    ``"random_design_limit"`` or None.

    Linear truth, linear model without intercept or dropout, the l2 penalty (coupled
    weight decay, i.e. ridge); then a fixed design (exact, for any x distribution, so a
    fixed uniform or grid design has it too) or a random Gaussian design (the
    Marchenko–Pastur limit; :func:`theory_kinds` replaces it by the exact finite-n value
    at λ = 0, whose rows are ``"random_design_exact"``).
    """
    d, m = cfg.data, cfg.model
    if d.source != "generator":  # data from a file: no w*, no noise level, no design
        return None
    if d.truth != "linear" or m.kind != "linear" or m.bias or m.dropout > 0:
        return None
    if cfg.train.penalty != "l2":
        return None
    if d.train_design == "fixed":
        return "fixed_design_exact"
    return "random_design_limit" if d.x_dist == "gaussian" else None


def theory_kinds(kind: str, weight_decay, x_design=None) -> np.ndarray:
    """The closed form each λ takes (an object array of :data:`KINDS` keys) for a
    design with ``kind`` (:func:`has_theory`): ``"fixed_design_exact"`` at every λ, or
    for a random Gaussian design ``"random_design_exact"`` at λ = 0 (minimum-norm least
    squares, exact at the run's n and p) and ``"random_design_limit"`` at λ > 0 (the
    Marchenko–Pastur limit).

    Raises
    ------
    ValueError
        For a fixed design without ``x_design`` (the shared training x).
    """
    lam = np.asarray(weight_decay, float)
    if kind == "fixed_design_exact":
        if x_design is None:
            raise ValueError("a fixed design's theory needs x_design (the shared training x)")
        return np.full(lam.shape, kind, dtype=object)
    kinds = np.full(lam.shape, "random_design_limit", dtype=object)
    kinds[lam == 0] = "random_design_exact"
    return kinds
