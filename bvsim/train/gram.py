"""Linear least squares by gradient descent in its Gram form: one small matrix-vector
product a step instead of two with the data.

Full-batch SGD (with or without momentum) on the mean squared error of a linear model
``w`` (n training points, p features), with the l2 or the decoupled penalty, only
ever moves ``w`` along the initial weights ``w0`` and the span of the training inputs,
and its gradient ``(2/n) X^T (X w - y)`` needs the data only through ``X^T X`` or
``X X^T``. So each member runs in coordinates ``theta`` of size ``d = min(p, n + 1)``
with ``w = L theta``:

- *primal* (p <= n + 1): ``theta = w``, ``L = I``; the gradient is ``M theta - v`` with
  ``M = (2/n) X^T X`` (p x p) and ``v = (2/n) X^T y``.
- *dual* (p > n + 1): ``w = X^T a + c w0``, ``theta = (a, c)``, ``L = [X^T, w0]``; then
  ``X w - y = K a + c u - y`` with ``K = X X^T`` and ``u = X w0``, and the gradient in
  these coordinates is ``M theta - v`` with ``M = (2/n) [[K, u], [0, 0]]`` and
  ``v = (2/n) (y, 0)``. It starts at ``theta = (0, 1)``.

Both are linear maps of the plain update, so :class:`~bvsim.train.loop.TrainLoop`'s
SGD step, momentum buffer and penalty (``lam * theta`` maps to ``lam * w``; the
decoupled shrink likewise) apply to ``theta`` unchanged; the weights are rebuilt only
to log, check for divergence and finish. A step costs ``d^2`` multiply-adds instead of
``2 n p``; in exact arithmetic the iterates are those of the plain path, in floating
point they differ by rounding (``tests/train/test_gram.py`` holds both to the per-model
``torch.optim`` loop in float64). A bias, when decayed like the weights, is one more
feature of constant 1.
"""

from __future__ import annotations

import numpy as np
import torch

from ..task import REGRESSION
from .engine import TrainSpec

__all__ = ["GramLinear", "gram_applies"]


def gram_applies(spec: TrainSpec, minibatch: bool) -> bool:
    """Whether the Gram form trains ``spec`` (a linear model under full-batch SGD on
    the squared error, with the l2 or decoupled penalty on every parameter)."""
    return (
        spec.solver == "gd"
        and not minibatch
        and len(spec.shapes) == 1
        and spec.shapes[0][1] == 1
        and (not spec.bias or spec.decay_bias)
        and spec.optimizer == "sgd"
        and spec.penalty in ("l2", "decoupled")
        and spec.loss == REGRESSION.loss
    )


class GramLinear:
    """A :class:`~bvsim.train.loop.Trainer` for :func:`gram_applies` specs; arguments as
    :func:`bvsim.train.trainers.train_batched` (``init`` packed: the weights, then the
    bias)."""

    frozen_gradient_is_zero = True  # zero theta and zero M, v: zero gradient

    def __init__(self, spec: TrainSpec, x, y, x_test, y_test, weight_decay, init, device):
        def tensor(a):  # everything in the training dtype, the Gram matrices too
            return torch.tensor(np.asarray(a), dtype=spec.dtype, device=device)

        xt, yt, w0, xtest = tensor(x), tensor(y), tensor(init), tensor(x_test)
        if spec.bias:  # the bias as a feature of constant 1
            xt = torch.cat([xt, xt.new_ones(*xt.shape[:2], 1)], dim=2)
            xtest = torch.cat([xtest, xtest.new_ones(len(xtest), 1)], dim=1)
        m, n, p = xt.shape
        self.members, self.n_weights = m, spec.shapes[0][0]
        self.x_t = xt.transpose(1, 2).contiguous()  # (m, p, n): outputs as w^T X^T
        self.yt, self.ytest = yt, tensor(y_test)
        self.xtest_t = xtest.T.contiguous()  # (p, n_test), shared by the members
        if p > n + 1:  # dual
            mt = xt.new_zeros(m, n + 1, n + 1)  # M^T = [[K, 0], [u^T, 0]] (times 2/n)
            mt[:, :n, :n] = torch.bmm(xt, self.x_t)
            mt[:, n, :n] = torch.bmm(xt, w0.unsqueeze(-1)).squeeze(-1)
            v = torch.cat([yt, yt.new_zeros(m, 1)], dim=1)
            theta = xt.new_zeros(m, n + 1)
            theta[:, n] = 1.0
            self.basis = torch.cat([xt, w0.unsqueeze(1)], dim=1)  # w^T = theta^T L^T
        else:  # primal: M = (2/n) X^T X is symmetric, M^T = M
            mt = torch.bmm(self.x_t, xt)
            v = torch.bmm(yt.unsqueeze(1), xt).squeeze(1)
            theta, self.basis = w0, None
        self.mt = mt.mul_(2.0 / n)
        self.v = v.mul_(2.0 / n).unsqueeze(1)
        self.params = [theta]
        self.decay = [tensor(weight_decay).view(m, 1)]

    def blocks(self, tensors):
        return list(tensors)  # (members, d): one block, member first

    @torch.no_grad()
    def gradient(self, step, batch, bufs, momentum, active) -> None:
        """``buf <- momentum * buf + M theta - v`` as one row product per member."""
        buf = bufs[0].unsqueeze(1)
        buf.baddbmm_(self.params[0].unsqueeze(1), self.mt, beta=momentum or 0.0).sub_(self.v)

    def weights(self) -> torch.Tensor:
        """The members' parameters ``w = L theta``, (members, p) (the bias last)."""
        theta = self.params[0]
        if self.basis is None:
            return theta
        return torch.bmm(theta.unsqueeze(1), self.basis).squeeze(1)

    def _outputs(self, w):
        train = torch.bmm(w.unsqueeze(1), self.x_t).squeeze(1)
        return train, w @ self.xtest_t

    @torch.no_grad()
    def evaluate(self, with_pred: bool):
        out, out_t = self._outputs(self.weights())
        pred = out_t.double().cpu().numpy() if with_pred else None
        return self._mse(out, self.yt), self._mse(out_t, self.ytest), pred

    @staticmethod
    def _mse(out, y):
        return (out - y).square_().mean(1)

    def freeze(self, idx) -> None:
        """Zero the Gram data of members ``idx`` (their theta is zeroed by the loop)."""
        self.mt[idx] = 0
        self.v[idx] = 0

    @torch.no_grad()
    def finish(self):
        w = self.weights()
        out, out_t = self._outputs(w)
        train_error = self._mse(out, self.yt).double().cpu().numpy()
        wn = w[:, : self.n_weights].square().sum(1).sqrt().double().cpu().numpy()
        return out_t.double().cpu().numpy(), train_error, wn, w.float().cpu().numpy()
