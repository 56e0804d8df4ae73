"""Closed-form ridge: the exact minimizers of the penalized squared loss of linear
models without bias, for every member at once (``train.solver = "closed_form"``)."""

from __future__ import annotations

import numpy as np
import torch

from ..estimate.closed_form import ridge_alpha
from .engine import EngineResult, TrainSpec

__all__ = ["solve_ridge"]


def solve_ridge(
    spec: TrainSpec,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    weight_decay: np.ndarray,
    device: str | torch.device = "cpu",
) -> EngineResult:
    """Exact minimizers of MSELoss + (lambda/2)|w|^2 for linear models without bias.

    That is ridge regression with alpha = n lambda / 2, the point the optimizer path
    converges to: ``w = (X^T X + alpha I)^-1 X^T y``, computed in the dual form
    ``X^T (X X^T + alpha I)^-1 y`` when p > n (the same vector, a smaller system). At
    lambda = 0 with p > n this is the minimum-norm interpolator, which gradient
    descent reaches from a zero initialization. Arguments as
    :func:`bvsim.train.trainers.train_batched`.
    """
    if len(spec.shapes) != 1 or spec.bias:
        raise ValueError("the closed-form solver handles linear models without bias only")
    device = torch.device(device)
    m, n, p = x.shape
    xt = torch.tensor(np.asarray(x), dtype=spec.dtype, device=device)
    yt = torch.tensor(np.asarray(y), dtype=spec.dtype, device=device).unsqueeze(-1)
    alpha = torch.tensor(ridge_alpha(np.asarray(weight_decay), n), dtype=spec.dtype, device=device)
    xtr = xt.transpose(1, 2)
    if p <= n:
        gram = torch.bmm(xtr, xt)
        rhs = torch.bmm(xtr, yt)
    else:
        gram = torch.bmm(xt, xtr)
        rhs = yt
    gram.diagonal(dim1=1, dim2=2).add_(alpha.view(m, 1))
    sol, info = torch.linalg.solve_ex(gram, rhs)
    bad = info != 0
    if bad.any():  # singular systems (lambda = 0, rank-deficient X): minimum norm
        sol[bad] = torch.linalg.pinv(gram[bad]) @ rhs[bad]
    w = sol if p <= n else torch.bmm(xtr, sol)  # (m, p, 1)
    with torch.no_grad():
        train = (torch.bmm(xt, w) - yt).squeeze(-1).square().mean(1)
        xte = torch.tensor(np.asarray(x_test), dtype=spec.dtype, device=device)
        pred = torch.matmul(xte, w).squeeze(-1)
        test = pred - torch.tensor(np.asarray(y_test), dtype=spec.dtype, device=device)
        test = test.square().mean(1)
    train_np = train.double().cpu().numpy()
    test_np = test.double().cpu().numpy()
    diverged = ~np.isfinite(train_np)
    return EngineResult(
        pred=pred.double().cpu().numpy(),
        train_error=train_np.copy(),
        weight_norm=w.squeeze(-1).norm(dim=1).double().cpu().numpy(),
        curve_train=np.where(diverged, np.nan, train_np)[:, None],
        curve_test=np.where(diverged, np.nan, test_np)[:, None],
        log_steps=np.array([spec.steps]),
        diverged=diverged,
        diverged_step=np.where(diverged, 0, -1),
        params=w.squeeze(-1).float().cpu().numpy(),
    )
