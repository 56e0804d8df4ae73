r"""Closed form of the crossed design's ANOVA terms for ridge regression.

The ground truth of :mod:`bvsim.estimate.anova` for the linear model solved exactly
(``train.solver = "closed_form"``, ``model.kind = "linear"``, ``model.bias = false``):
there is no initialization, so the factors are the training inputs X and the label
noise ε. Conventions as in :mod:`bvsim.estimate.theory`: bvsim's λ is the coupled
weight decay, ridge α = nλ/2, per-sample λ_r = λ/2, minimum-norm least squares at λ = 0;
truth y = xᵀw* + ε, ‖w*‖² = r², ε ~ N(0, σ² I_n); test points x_j, j = 1..J.

The terms
---------
With S(X) = (XᵀX + αI)⁻¹ (the pseudo-inverse at α = 0) the fit is

    ŵ(X, ε) = A(X) w* + B(X) ε,   A = S XᵀX,   B = S Xᵀ,

linear in ε. The random-effects components that the EMS estimators target are the
functional-ANOVA (Hoeffding) components of ŷ_j = x_jᵀŵ over the independent factors
X and ε, each averaged over the test points:

- **Label noise, V_ε = 0 exactly**, at any n, p, λ. The ε main effect is
  x_jᵀ E_X[B(X)] ε, and E_X[B(X)] = 0 because X → −X leaves the law of a centred
  Gaussian design and S(X) unchanged and flips Xᵀ. (The measured value is 0 within
  its SE; the interaction below is what the noise does.)
- **X × ε interaction = the conditional variance** (Hastie, Montanari, Rosset &
  Tibshirani 2022): what is left of x_jᵀBε after its main effect (0),

      V_Xε = σ² E_X[x_jᵀ S XᵀX S x_j]  →  σ² γ (m − λ_r m′) · ‖x_j‖²/p,

  with γ = p/n and m, m′ the Marchenko–Pastur Stieltjes transform and its derivative
  at −λ_r (:func:`bvsim.estimate.theory.mp_stieltjes`).
- **X main effect = bvsim's variance minus the conditional variance**: the spread of
  the noise-free fit A(X)w* across designs,

      V_X = Var_X(x_jᵀ A(X) w*)  →  r² λ_r² (m′ − m²) · ‖x_j‖²/p,

  which is exactly the Jensen gap between the classical bias (conditional on X) and
  bvsim's bias (:func:`bvsim.estimate.theory.ridge_random_design_limit`).

So V_X + V_ε + V_Xε is bvsim's variance, and bias² (of the mean over X and ε) is the
same as in :mod:`bvsim.estimate.theory`: the limits at λ > 0 are those of
``theory.csv`` and add up to its ``variance_theory``.

Exact at λ = 0 (finite n, p)
----------------------------
Minimum-norm least squares has exact Gaussian moments (Wishart and Haar):

- n ≥ p: A = I (X has rank p), so V_X = 0 and bias² = 0; E(XᵀX)⁻¹ = I/(n − p − 1), so
  V_Xε = σ² ‖x_j‖²/(n − p − 1) for n ≥ p + 2 (infinite for n = p, p + 1).
- p > n: A = P, the projection onto the row space of X, Haar-distributed of rank n:
  E P = (n/p) I, and by invariance E[P_ik P_jl] = a δ_ik δ_jl + b (δ_ij δ_kl + δ_il δ_jk)
  with tr P = n and P² = P fixing b = n(p − n)/(p(p − 1)(p + 2)). Hence

      bias² = (1 − n/p)² (x_jᵀw*)²,
      V_X = b ‖x_j‖² r² + d (x_jᵀw*)²,   d = n(p − n)(p − 2)/(p²(p − 1)(p + 2)),

  and, since E tr(XXᵀ)⁻¹ = n/(p − n − 1), V_Xε = σ² ‖x_j‖² n/(p(p − n − 1)) for
  p ≥ n + 2 (infinite for p = n + 1). As p, n → ∞ these tend to the limits above
  (b p → (1/γ)(1 − 1/γ), d → 0, p/(n − p − 1) → γ/(1 − γ)); at finite n the limit is
  off by O(1/|n − p|): at n = 36, p = 40, V_Xε = 12 σ² exactly against 9 σ² in the
  limit, so the exact form is used wherever it holds.

At λ > 0 the finite-n moments of S have no elementary form and the proportional
limit is used (``theory_kind`` says which). A fixed design (``data.train_design =
"fixed"``: no X factor) has the one term V_ε = σ² tr(X_test S XᵀX S X_testᵀ)/J exactly
(:func:`bvsim.estimate.theory.ridge_fixed_design`).
"""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..config.values import FACTOR_INPUTS, FACTOR_NOISE
from .closed_form import has_theory, ridge_alpha, theory_kinds
from .linear_truth import true_coef
from .theory import (
    factors_at_test_points,
    ridge_fixed_design,
    ridge_random_design_limit,
    ridge_random_design_limit_classical,
    ridgeless_random_design_exact,
)

__all__ = [
    "anova_theory",
    "has_anova_theory",
    "ridge_anova_limit",
    "ridgeless_anova_exact",
]

#: The term names of the crossed design's factors (bvsim.config.crossed_factors).
INPUTS, NOISE = FACTOR_INPUTS, FACTOR_NOISE
BOTH = f"{INPUTS}:{NOISE}"


def ridge_anova_limit(
    gamma, coef_norm2, noise_var, alpha_over_n, bias_factor=1.0, variance_factor=1.0
):
    """The ANOVA terms of ridge on x ~ N(0, I_p) in the limit p/n → γ.

    Parameters
    ----------
    gamma : float
        p/n.
    coef_norm2 : float
        r² = ‖w*‖².
    noise_var : float
        σ², the training-label noise variance.
    alpha_over_n : float or ndarray
        λ_r = bvsim's λ / 2 (≥ 0).
    bias_factor, variance_factor : float
        :func:`bvsim.estimate.theory.factors_at_test_points` (1 for the population).

    Returns
    -------
    dict
        ``inputs`` = r² λ_r² (m′ − m²), ``label_noise`` = 0, ``inputs:label_noise`` =
        σ² γ (m − λ_r m′) (both × ``variance_factor``) and ``bias2`` = r² λ_r² m²
        (× ``bias_factor``), each shaped like ``alpha_over_n``.
    """
    bias2, v_inputs = ridge_random_design_limit(gamma, coef_norm2, 0.0, alpha_over_n)
    _, v_both = ridge_random_design_limit_classical(gamma, coef_norm2, noise_var, alpha_over_n)
    zero = np.zeros_like(np.asarray(v_inputs, float))
    return {
        INPUTS: v_inputs * variance_factor,
        NOISE: zero[()],
        BOTH: v_both * variance_factor,
        "bias2": bias2 * bias_factor,
    }


def ridgeless_anova_exact(n, p, coef_norm2, noise_var, bias_factor=1.0, variance_factor=1.0):
    """The ANOVA terms of minimum-norm least squares (λ = 0) on x ~ N(0, I_p), exact
    at finite n and p (see the module docstring).

    Parameters
    ----------
    n, p : int
        Training points and features.
    coef_norm2, noise_var, bias_factor, variance_factor : float
        As :func:`ridge_anova_limit`.

    Returns
    -------
    dict
        ``inputs``, ``label_noise`` (0), ``inputs:label_noise`` (inf for
        p − 1 ≤ n ≤ p + 1 with σ² > 0) and ``bias2``, floats.
    """
    factors = (bias_factor, variance_factor)
    # bvsim's variance without label noise is the X main effect; with a zero w* what
    # is left is the noise's part, the X × ε interaction (the label-noise main effect
    # is 0: see the module docstring).
    bias2, v_inputs = ridgeless_random_design_exact(n, p, coef_norm2, 0.0, *factors)
    _, v_both = ridgeless_random_design_exact(n, p, 0.0, noise_var, *factors)
    return {INPUTS: v_inputs, NOISE: 0.0, BOTH: v_both, "bias2": bias2}


def has_anova_theory(cfg: Config) -> str | None:
    """``"random_design"`` or ``"fixed_design"`` when the crossed ANOVA of ``cfg`` has
    a closed form, else None.

    A crossed design (``sweep.axis = "none"``: one part of a second-axis sweep) of
    closed-form ridge with a theory in :func:`bvsim.estimate.closed_form.has_theory`, and
    every factor it has with at least 2 levels: a random Gaussian design needs
    ``n_inputs >= 2`` and ``n_noise >= 2`` (with one level a factor's terms would fold
    into the others' and into bias²); a fixed design has the label noise alone.
    """
    sw = cfg.sweep
    if sw.design != "crossed" or sw.axis != "none" or cfg.train.solver != "closed_form":
        return None
    kind = has_theory(cfg)
    if kind == "random_design_limit" and sw.n_inputs >= 2 and sw.n_noise >= 2:
        return "random_design"
    if kind == "fixed_design_exact" and sw.n_noise >= 2:
        return "fixed_design"
    return None


def _values(terms: dict, noise_var: float, names) -> dict[str, float]:
    """anova.csv's closed-form values at one λ: the terms ``names``, variance, bias2,
    noise, expected_error."""
    variance = float(sum(terms[t] for t in names))
    values = {t: float(terms[t]) for t in names}
    values |= {"variance": variance, "bias2": float(terms["bias2"]), "noise": noise_var}
    values["expected_error"] = variance + values["bias2"] + noise_var
    return values


def anova_theory(cfg: Config, test, x_design=None) -> list[tuple[float, str, dict]] | None:
    """The closed-form value of every row of ``anova.csv`` (:func:`has_anova_theory`;
    laid out by :func:`bvsim.io.theory.anova_theory_table`).

    Parameters
    ----------
    cfg : Config
        A one-axis configuration (a part of a second-axis sweep).
    test : bvsim.data.generator.TestSet
        The run's test set (``x``, ``noise_var``): the limits are evaluated at its
        points (:func:`bvsim.estimate.theory.factors_at_test_points`).
    x_design : ndarray of shape (n_train, dim), optional
        The shared training inputs of a fixed design; needed only then.

    Returns
    -------
    list or None
        Per λ, ``(λ, kind, values)``: ``values`` maps each term (``inputs``,
        ``label_noise``, ``inputs:label_noise``; a fixed design: ``label_noise``),
        ``variance``, ``bias2``, ``noise`` and ``expected_error`` to its value, in that
        order. ``kind`` is ``random_design_exact`` at λ = 0 (minimum-norm least
        squares, :func:`ridgeless_anova_exact`), ``random_design_limit`` at λ > 0
        (:func:`ridge_anova_limit`; the same limit as ``theory.csv``), or
        ``fixed_design_exact``. None when there is no closed form.
    """
    kind = has_anova_theory(cfg)
    if kind is None:
        return None
    d = cfg.data
    noise_var = float(test.noise_var)
    coef = true_coef(d)
    lams = [float(v) for v in cfg.sweep.weight_decay]
    kinds = theory_kinds(has_theory(cfg), lams, x_design)
    if kind == "fixed_design":
        bias2, var = ridge_fixed_design(x_design, test.x, coef, d.noise_std**2, np.array(lams))
        return [
            (wd, k, _values({NOISE: v, "bias2": b}, noise_var, [NOISE]))
            for wd, k, b, v in zip(lams, kinds, bias2, var, strict=True)
        ]
    bf, vf = factors_at_test_points(test.x, coef)
    args = (d.coef_norm2, d.noise_std**2)
    out = []
    for wd, k in zip(lams, kinds, strict=True):
        if k == "random_design_exact":
            terms = ridgeless_anova_exact(d.n_train, d.dim, *args, bf, vf)
        else:
            terms = ridge_anova_limit(d.dim / d.n_train, *args, ridge_alpha(wd), bf, vf)
        out.append((wd, k, _values(terms, noise_var, [INPUTS, NOISE, BOTH])))
    return out
