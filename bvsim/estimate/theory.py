r"""Closed-form bias² and variance of ridge regression: the ground truth for ``linear``.

Conventions
-----------
bvsim trains with ``nn.MSELoss`` and coupled weight decay λ, i.e. it minimizes
(1/n)‖y − Xw‖² + (λ/2)‖w‖². For a linear model without intercept the minimizer is
ridge regression ŵ = (XᵀX + αI)⁻¹Xᵀy with

    α = n λ / 2          (the "sum" penalty of (XᵀX + αI)),
    λ_r = α / n = λ / 2  (the per-sample penalty of the random-matrix literature, which
                          writes ŵ = (Σ̂ + λ_r I)⁻¹ Xᵀy / n with Σ̂ = XᵀX / n).

:func:`ridge_fixed_design` takes bvsim's λ (``weight_decay``);
:func:`ridge_random_design_limit` takes λ_r (``alpha_over_n``;
:func:`bvsim.estimate.closed_form.ridge_alpha` converts). At λ = 0 both use the
minimum-norm least-squares solution (the pseudo-inverse) when XᵀX is singular (p > n),
which is what ``train.solver = "closed_form"`` computes and what gradient descent
reaches from a zero initialization (from bvsim's random initialization it keeps the
initial weights' component in the null space of X, so only the closed-form solver is
comparable there).

Truth y = xᵀw* + ε, ε ~ N(0, σ²), ‖w*‖² = r²; test points x_j, j = 1..J. bvsim's
decomposition, with E over training sets (the noise, and X when it is redrawn):

    bias² = mean_j (E[ŷ(x_j)] − x_jᵀw*)²,   variance = mean_j Var[ŷ(x_j)].

Fixed design (exact, any X)
---------------------------
Write X = U diag(d) Vᵀ (thin SVD). Then E ŵ = V diag(d²/(d²+α)) Vᵀ w* and
Cov ŵ = σ² V diag(d²/(d²+α)²) Vᵀ, so with S = (XᵀX + αI)⁻¹ (pseudo-inverse at α = 0)

    bias² = mean_j (x_jᵀ (I − S XᵀX) w*)²  = mean_j (α x_jᵀ S w*)²  when α > 0,
    variance = (σ²/J) tr(X_test S XᵀX S X_testᵀ).

Random design, x ~ N(0, I_p): proportional limit p, n → ∞, p/n → γ
-------------------------------------------------------------------
The eigenvalue law of Σ̂ = XᵀX/n tends to Marchenko–Pastur with ratio γ (with an atom
1 − 1/γ at 0 when γ > 1). Its Stieltjes transform m(z) = ∫ dμ(s)/(s − z) solves
γ z m² − (1 − γ − z) m + 1 = 0; at z = −λ_r < 0, with a = 1 − γ + λ_r and
s = √(a² + 4γλ_r),

    m = m(−λ_r) = (s − a) / (2γλ_r) = 2 / (a + s),
    m' = m'(−λ_r) = ∫ dμ(s)/(s + λ_r)² = m (1 + γ m) / s    (implicit differentiation).

With R = (Σ̂ + λ_r I)⁻¹: ŵ − w* = −λ_r R w* + R Xᵀε/n. Test x ~ N(0, I) is
independent of ŵ, so the out-of-sample risk is E‖ŵ − w*‖², and traces of R converge:
(1/p) tr R → m, (1/p) tr R² → m', (1/p) tr RΣ̂R = (1/p) tr(R − λ_r R²) → m − λ_r m'.

*Total* (split-independent): E‖ŵ − w*‖² → r² λ_r² m' + σ² γ (m − λ_r m').

*Classical split* (Dobriban & Wager 2018; Hastie, Montanari, Rosset & Tibshirani 2022),
conditional on X, averaging only the noise:
B = E_X ‖E_ε[ŵ | X] − w*‖² → r² λ_r² m' and V = E_X tr Cov_ε(ŵ | X) → σ² γ (m − λ_r m')
(for w* with equal entries, which is rotation-invariant in the limit, or an isotropic
prior). This is *not* what bvsim estimates when X is redrawn.

*bvsim's split* averages over X too. Gaussian X is rotation-invariant, so
E_X[R Σ̂] = c_n I exactly, with c_n = 1 − λ_r E (1/p) tr R → c = 1 − λ_r m: the mean
predictor is c·x w*, a shrunken truth. Hence

    bias²_bvsim = (1 − c)² r² = λ_r² m² r²,
    variance_bvsim = total − bias²_bvsim = r² λ_r² (m' − m²) + σ² γ (m − λ_r m').

The extra r² λ_r² (m' − m²) ≥ 0 (Jensen) is the spread of the shrinkage R Σ̂ across
designs: the classical bias minus bvsim's bias, counted by bvsim as variance. The
covariance of ŵ is isotropic up to O(1/p) (its excess along w* is O(r²/p)), so at a
test point x_j, Var ŷ(x_j) → (‖x_j‖²/p) · variance_bvsim; and
E ŷ(x_j) − f(x_j) = −(1 − c) f(x_j). :func:`ridge_theory` therefore evaluates the limit
at the run's own test points: bias² × mean_j f_j² / r², variance × mean_j ‖x_j‖² / p
(both factors → 1 for many test points; the first fluctuates by ≈ √(2/J) and matters).

Ridgeless limit λ_r → 0:

- γ < 1: m → 1/(1 − γ), λ_r m → 0, so c → 1, bias² → 0 (both splits) and
  variance → σ² γ / (1 − γ).
- γ > 1: λ_r m → 1 − 1/γ and λ_r² m' → 1 − 1/γ (the atom at 0), ∫_{s>0} dμ/s =
  1/(γ(γ − 1)). Classical: B = r² (1 − 1/γ), V = σ² / (γ − 1). bvsim: c = 1/γ (the
  minimum-norm fit projects w* onto a random n-dimensional subspace, E P = (n/p) I),
  bias² = r² (1 − 1/γ)², variance = r² (1 − 1/γ)/γ + σ² / (γ − 1).
- γ = 1: the variance diverges (σ² > 0).

At finite n the limit drifts by O(1/n), most near the interpolation threshold n = p
(e.g. at λ = 0, p < n the exact Gaussian value is σ² p / (n − p − 1) against
σ² p / (n − p): at p = 40, n = 44 the limit is 25 % low).

Random design, exact at λ = 0 (finite n, p)
-------------------------------------------
Minimum-norm least squares has exact Gaussian moments (Wishart and Haar;
:mod:`bvsim.estimate.anova_theory` derives them term by term), at the run's own test
points x_j (the test x need not be Gaussian: only the training design is averaged):

- n ≥ p: ŵ = w* + (XᵀX)⁻¹Xᵀε, so bias² = 0 and, with E(XᵀX)⁻¹ = I/(n − p − 1),
  variance = σ² mean_j ‖x_j‖² / (n − p − 1) for n ≥ p + 2 (infinite for n = p, p + 1).
- n < p: ŵ = P w* + X⁺ε, P the projection onto the row space of X, Haar-distributed of
  rank n, E P = (n/p) I: bias² = (1 − n/p)² mean_j f_j², and with
  b = n(p − n)/(p(p − 1)(p + 2)), d = b (p − 2)/p and E tr(XXᵀ)⁻¹ = n/(p − n − 1),
  variance = r² (b mean_j ‖x_j‖² + d mean_j f_j²) + σ² mean_j ‖x_j‖² n/(p(p − n − 1))
  for p ≥ n + 2 (infinite for p = n + 1).

:func:`ridge_theory` uses these at λ = 0 (``kind = "random_design_exact"``) and the limit
only at λ > 0 (``kind = "random_design_limit"``), where the finite-n moments of
(XᵀX + αI)⁻¹ have no elementary form.
"""

from __future__ import annotations

import numpy as np

from ..config import Config
from .closed_form import has_theory, ridge_alpha, theory_kinds
from .linear_truth import true_coef

__all__ = [
    "mp_stieltjes",
    "ridge_fixed_design",
    "ridge_random_design_limit",
    "ridge_random_design_limit_classical",
    "ridgeless_random_design_exact",
    "factors_at_test_points",
    "ridge_theory",
]


def ridge_fixed_design(x, x_test, coef, noise_var, weight_decay):
    """Exact bias² and variance of ridge on a fixed design (only the noise redrawn).

    The estimator is the minimizer of (1/n)‖y − Xw‖² + (λ/2)‖w‖², i.e. ridge with
    α = nλ/2; at λ = 0 with XᵀX singular it is the minimum-norm least-squares solution.

    Parameters
    ----------
    x : ndarray of shape (n, p)
        The training design, shared by every training set.
    x_test : ndarray of shape (m, p)
        Test inputs.
    coef : ndarray of shape (p,)
        The true coefficients w*.
    noise_var : float
        Training-label noise variance σ².
    weight_decay : float or ndarray of shape (L,)
        bvsim's λ (not α).

    Returns
    -------
    bias2, variance : float or ndarray of shape (L,)
        mean_j (E ŷ(x_j) − x_jᵀw*)² and mean_j Var ŷ(x_j), shaped like ``weight_decay``.
    """
    x, x_test = np.asarray(x, float), np.asarray(x_test, float)
    coef = np.asarray(coef, float)
    lam = np.asarray(weight_decay, float)
    n = x.shape[0]
    alpha = ridge_alpha(lam, n)[..., None]  # (..., 1)
    u, d, vt = np.linalg.svd(x, full_matrices=False)  # vt: (k, p)
    keep = d > d.max(initial=0.0) * max(x.shape) * np.finfo(float).eps
    d2 = np.where(keep, d**2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # alpha = 0 and d = 0 (null space): the pseudo-inverse contributes nothing
        shrink = np.where(keep, d2 / (d2 + alpha), 0.0)  # (..., k) E ŵ in the V basis
        gain = np.where(keep, d / (d2 + alpha), 0.0)  # (..., k) ŵ = V diag(gain) Uᵀ y
    zt = x_test @ vt.T  # (m, k): test points in the V basis
    # E ŷ_j − f_j = x_jᵀ (V diag(shrink) Vᵀ − I) w* = zt (shrink ∘ Vᵀw*) − x_jᵀ w*
    mean_err = (zt * shrink[..., None, :]) @ (vt @ coef) - x_test @ coef  # (..., m)
    bias2 = np.mean(np.square(mean_err), axis=-1)
    variance = noise_var * np.mean(np.square(zt * gain[..., None, :]).sum(-1), axis=-1)
    return bias2[()], variance[()]


def mp_stieltjes(gamma, lam):
    """Stieltjes transform of the Marchenko–Pastur law and its derivative at z = −λ.

    μ is the limiting eigenvalue law of XᵀX/n for x ~ N(0, I_p), p/n → γ (an atom
    1 − 1/γ at 0 when γ > 1); m(z) = ∫ dμ(s)/(s − z).

    Parameters
    ----------
    gamma : float or ndarray
        Aspect ratio p/n (> 0).
    lam : float or ndarray
        λ > 0 (broadcast against ``gamma``).

    Returns
    -------
    m, dm : ndarray
        m(−λ) = ∫ dμ/(s + λ) and m'(−λ) = ∫ dμ/(s + λ)², both positive.
    """
    g, lam = np.broadcast_arrays(np.asarray(gamma, float), np.asarray(lam, float))
    a = 1 - g + lam
    s = np.sqrt(a * a + 4 * g * lam)
    # two exact forms of the same root; each is free of cancellation on its side of a = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(a >= 0, 2 / (a + s), (s - a) / (2 * g * lam))
    dm = m * (1 + g * m) / s
    return m[()], dm[()]


def _limit_parts(gamma, alpha_over_n):
    """λ_r m, λ_r² m', σ²-free variance factor γ (m − λ_r m'), including λ_r = 0."""
    g, lam = np.broadcast_arrays(np.asarray(gamma, float), np.asarray(alpha_over_n, float))
    if np.any(g <= 0) or np.any(lam < 0):
        raise ValueError("need gamma > 0 and alpha_over_n >= 0")
    pos = lam > 0
    safe = np.where(pos, lam, 1.0)
    m, dm = mp_stieltjes(g, safe)
    lm = np.where(pos, safe * m, np.where(g > 1, 1 - 1 / g, 0.0))
    l2dm = np.where(pos, safe**2 * dm, np.where(g > 1, 1 - 1 / g, 0.0))
    with np.errstate(divide="ignore"):
        v0 = np.where(g < 1, g / (1 - g), np.where(g > 1, 1 / (g - 1), np.inf))
    vfac = np.where(pos, g * (m - safe * dm), v0)
    return lm, l2dm, vfac


def _times(noise_var, factor):
    """σ² × factor, with 0 × inf = 0 (no noise, no noise variance)."""
    noise_var = np.asarray(noise_var, float)
    with np.errstate(invalid="ignore"):
        return np.where(noise_var == 0, 0.0, noise_var * factor)


def ridge_random_design_limit(gamma, coef_norm2, noise_var, alpha_over_n):
    """bvsim's bias² and variance of ridge for x ~ N(0, I_p), in the limit p/n → γ.

    bvsim averages over training sets *including* the design, so bias² = ‖E ŵ − w*‖²
    and variance = E‖ŵ − E ŵ‖² (test x ~ N(0, I_p)); see the module docstring for the
    derivation and :func:`ridge_random_design_limit_classical` for the split
    conditional on X. Their sums agree.

    Parameters
    ----------
    gamma : float or ndarray
        p/n (> 0).
    coef_norm2 : float
        r² = ‖w*‖².
    noise_var : float
        σ², the training-label noise variance.
    alpha_over_n : float or ndarray
        λ_r = α/n = bvsim's λ / 2 (≥ 0; 0 is the ridgeless / minimum-norm limit).

    Returns
    -------
    bias2, variance : ndarray
        r² λ_r² m² and r² λ_r² (m' − m²) + σ² γ (m − λ_r m'), m = m(−λ_r); broadcast
        over ``gamma`` and ``alpha_over_n``. The variance is inf at γ = 1, λ_r = 0.
    """
    lm, l2dm, vfac = _limit_parts(gamma, alpha_over_n)
    bias2 = coef_norm2 * lm**2
    variance = coef_norm2 * (l2dm - lm**2) + _times(noise_var, vfac)
    return bias2[()], variance[()]


def ridge_random_design_limit_classical(gamma, coef_norm2, noise_var, alpha_over_n):
    """The classical (conditional on X) split of the same limit: Hastie et al. 2022.

    Parameters
    ----------
    As :func:`ridge_random_design_limit`.

    Returns
    -------
    bias2, variance : ndarray
        E_X‖E_ε[ŵ | X] − w*‖² → r² λ_r² m' and E_X tr Cov_ε(ŵ | X) → σ² γ (m − λ_r m').
        At λ_r = 0 and γ > 1: r² (1 − 1/γ) and σ²/(γ − 1).
    """
    _, l2dm, vfac = _limit_parts(gamma, alpha_over_n)
    return (coef_norm2 * l2dm)[()], _times(noise_var, vfac)[()]


def ridgeless_random_design_exact(
    n, p, coef_norm2, noise_var, bias_factor=1.0, variance_factor=1.0
):
    """bvsim's bias² and variance of minimum-norm least squares (λ = 0) for x ~ N(0, I_p),
    exact at finite n and p (see the module docstring).

    Parameters
    ----------
    n, p : int
        Training points and features.
    coef_norm2 : float
        r² = ‖w*‖².
    noise_var : float
        σ², the training-label noise variance.
    bias_factor, variance_factor : float
        :func:`factors_at_test_points` (1 for the population x ~ N(0, I_p)): with them
        the values are exact at those test points.

    Returns
    -------
    bias2, variance : float
        n ≥ p: 0 and σ² p/(n − p − 1) × ``variance_factor``; n < p: (1 − n/p)² r² ×
        ``bias_factor`` and r² (b p × ``variance_factor`` + d × ``bias_factor``) +
        σ² n/(p − n − 1) × ``variance_factor``. The variance is inf for
        p − 1 ≤ n ≤ p + 1 when σ² > 0 (its noise part has no finite mean there).
    """
    n, p = int(n), int(p)
    if n < 1 or p < 1:
        raise ValueError("need n >= 1 and p >= 1")
    r2, s2 = float(coef_norm2), float(noise_var)
    if n >= p:  # X has rank p: ŵ = w* + (XᵀX)⁻¹Xᵀε
        bias2, spread = 0.0, 0.0
        trace = p / (n - p - 1) if n >= p + 2 else np.inf  # E tr (XᵀX)⁻¹
    else:  # ŵ = P w* + X⁺ε, P a Haar projection of rank n
        b = n * (p - n) / (p * (p - 1) * (p + 2))  # p > n >= 1, so p >= 2
        d = b * (p - 2) / p
        bias2 = (1 - n / p) ** 2 * r2 * bias_factor
        spread = r2 * (b * p * variance_factor + d * bias_factor)  # Var_X of P w*
        trace = n / (p - n - 1) if p >= n + 2 else np.inf  # E tr (XXᵀ)⁻¹
    noise = 0.0 if s2 == 0 else s2 * variance_factor * trace
    return float(bias2), float(spread + noise)


def factors_at_test_points(x_test, coef):
    """Factors that move a population (x ~ N(0, I)) limit onto a finite test set.

    Parameters
    ----------
    x_test : ndarray of shape (m, p)
    coef : ndarray of shape (p,)

    Returns
    -------
    bias_factor : float
        mean_j (x_jᵀw*)² / ‖w*‖² (1 when w* = 0): bias² at the test points is
        (1 − c)² mean_j f_j².
    variance_factor : float
        mean_j ‖x_j‖² / p: the covariance of ŵ is isotropic in the limit.
    """
    x_test, coef = np.asarray(x_test, float), np.asarray(coef, float)
    r2 = float(coef @ coef)
    bias_factor = float(np.mean(np.square(x_test @ coef)) / r2) if r2 > 0 else 1.0
    return bias_factor, float(np.mean(np.square(x_test).sum(1)) / x_test.shape[1])


def ridge_theory(cfg: Config, test, x_design=None) -> dict[str, np.ndarray] | None:
    """Theoretical bias² and variance at every λ of the sweep (``theory.csv``:
    :func:`bvsim.io.theory.theory_table`).

    Parameters
    ----------
    cfg : Config
        A one-axis configuration.
    test : bvsim.data.generator.TestSet
        The run's test set: its inputs ``x``.
    x_design : ndarray of shape (n_train, dim), optional
        The shared training inputs of a fixed design (``has_theory(cfg) ==
        "fixed_design_exact"``), e.g. training set 0's; needed only then.

    Returns
    -------
    dict or None
        ``weight_decay``, ``bias2``, ``variance`` (float arrays, one value per λ) and
        ``kind`` (an object array): ``"fixed_design_exact"``; or, for a random Gaussian
        design, ``"random_design_exact"`` at λ = 0 (minimum-norm least squares, exact
        at the run's n and p: :func:`ridgeless_random_design_exact`) and
        ``"random_design_limit"`` at λ > 0 (the Marchenko–Pastur limit, off by O(1/n),
        most near n = p), as :func:`bvsim.estimate.closed_form.theory_kinds` picks
        them. None when no theory applies (:func:`~bvsim.estimate.closed_form.has_theory`).
        Both random-design forms are evaluated at the run's own test points
        (:func:`factors_at_test_points`).
    """
    if cfg.sweep.axis != "none":
        raise ValueError(
            "theory_table takes a one-axis configuration: call it per "
            "bvsim.config.axis_configs(cfg) entry (the tables of a second-axis sweep stack them)"
        )
    kind = has_theory(cfg)
    if kind is None:
        return None
    d = cfg.data
    lam = np.asarray(cfg.sweep.weight_decay, float)
    coef = true_coef(d)
    kinds = theory_kinds(kind, lam, x_design)
    if kind == "fixed_design_exact":
        bias2, variance = ridge_fixed_design(x_design, test.x, coef, d.noise_std**2, lam)
    else:
        bias2, variance = ridge_random_design_limit(
            d.dim / d.n_train, d.coef_norm2, d.noise_std**2, ridge_alpha(lam)
        )
        factors = factors_at_test_points(test.x, coef)
        bias2, variance = bias2 * factors[0], variance * factors[1]
        zero = kinds == "random_design_exact"
        if zero.any():  # exact at finite n, p: the limit is off by O(1/|n − p|) there
            b0, v0 = ridgeless_random_design_exact(
                d.n_train, d.dim, d.coef_norm2, d.noise_std**2, *factors
            )
            bias2, variance = np.where(zero, b0, bias2), np.where(zero, v0, variance)
    return {
        "weight_decay": lam,
        "bias2": np.broadcast_to(bias2, lam.shape).astype(float),
        "variance": np.broadcast_to(variance, lam.shape).astype(float),
        "kind": kinds,
    }
