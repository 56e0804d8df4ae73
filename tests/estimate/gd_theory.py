"""Test oracle (tests/run/test_steps.py): closed-form bias² and variance of a linear
model along full-batch gradient descent.

For a linear model without intercept on a fixed design X (n × p), trained by full-batch
SGD with momentum β (``torch.optim.SGD``) on MSELoss + coupled L2 weight decay λ, the
gradient is ``H w - c`` with ``H = (2/n) XᵀX + λI`` and ``c = (2/n) Xᵀy``. The update

    v ← β v + H w − c,    w ← w − lr v

is linear in (w, v), so after t steps ``w_t = P_t w_0 + Q_t c`` for matrices P_t, Q_t
that do not depend on the data. With y = f + ε (ε ~ N(0, σ² I)) and an initialization
w_0 of mean 0 and covariance τ² I (``nn.Linear``'s U(−1/√p, 1/√p): τ² = 1/(3p)),
drawn independently of ε:

    E w_t = Q_t (2/n) Xᵀ f,    Cov w_t = τ² P_t P_tᵀ + σ² (2/n)² Q_t XᵀX Q_tᵀ,

and at test inputs x_j: bias² = mean_j (x_jᵀ E w_t − f_j)², variance = mean_j
x_jᵀ Cov(w_t) x_j, the quantities bvsim estimates at every logged step
(``train.decompose_steps``) when each training set has one seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gd_linear_theory"]


def gd_linear_theory(
    x_train: np.ndarray,
    f_train: np.ndarray,
    x_test: np.ndarray,
    f_test: np.ndarray,
    noise_var: float,
    init_var: float,
    lr: float,
    momentum: float,
    weight_decay: float,
    log_steps,
) -> dict[str, np.ndarray]:
    """Bias² and variance of full-batch GD on a fixed linear design after each step.

    Parameters
    ----------
    x_train : ndarray of shape (n, p)
    f_train : ndarray of shape (n,)
        The noiseless truth at the training inputs.
    x_test : ndarray of shape (J, p)
    f_test : ndarray of shape (J,)
    noise_var : float
        σ², the training-label noise variance.
    init_var : float
        τ², the variance of each initial weight (mean 0, independent).
    lr, momentum, weight_decay : float
        As ``torch.optim.SGD(lr, momentum, weight_decay)``.
    log_steps : sequence of int
        Steps after which to report (0 = the initialization).

    Returns
    -------
    dict with ``step``, ``bias2``, ``variance`` and ``expected_mse_truth``
    (bias² + variance), each an ndarray of shape (len(log_steps),).
    """
    n, p = x_train.shape
    eye = np.eye(p)
    h = (2.0 / n) * x_train.T @ x_train + weight_decay * eye
    mean_c = (2.0 / n) * x_train.T @ f_train
    cov_c = noise_var * (2.0 / n) ** 2 * x_train.T @ x_train
    # state: w = P w0 + Q c, v = R w0 + S c
    pw, qw = eye.copy(), np.zeros((p, p))
    pv, qv = np.zeros((p, p)), np.zeros((p, p))
    wanted = sorted({int(s) for s in log_steps})
    out: dict[int, tuple[float, float]] = {}

    def record(step: int) -> None:
        mean_w = qw @ mean_c
        cov_w = init_var * pw @ pw.T + qw @ cov_c @ qw.T
        bias2 = float(np.mean(np.square(x_test @ mean_w - f_test)))
        variance = float(np.mean(np.einsum("jp,pq,jq->j", x_test, cov_w, x_test)))
        out[step] = (bias2, variance)

    if 0 in wanted:
        record(0)
    for step in range(1, max(wanted) + 1):
        # v <- beta v + H w - c ; w <- w - lr v
        pv = momentum * pv + h @ pw
        qv = momentum * qv + h @ qw - eye
        pw = pw - lr * pv
        qw = qw - lr * qv
        if step in wanted:
            record(step)
    steps = np.array([int(s) for s in log_steps])
    bias2 = np.array([out[int(s)][0] for s in steps])
    variance = np.array([out[int(s)][1] for s in steps])
    return {
        "step": steps,
        "bias2": bias2,
        "variance": variance,
        "expected_mse_truth": bias2 + variance,
    }
