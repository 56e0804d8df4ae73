"""The built-in batched MLP: many models trained as one tensor program.

Every member ``i`` of a batch is its own MLP (or linear model) with its own training
set, initialization and weight decay ``weight_decay[i]``. The parameters of all
members live in one flat tensor, layer after layer (see
:class:`~bvsim.train.engine.ParamLayout`); each layer's weight is a contiguous view of
shape (members, fan_in, fan_out), so the forward and backward passes are
``bmm``/``baddbmm`` calls (in the fastest layout for matrix-vector and outer products)
and the optimizer update of :class:`~bvsim.train.loop.TrainLoop` is a few element-wise
calls over the whole flat tensor. The backward pass is written out by hand (the chain
rule of a ReLU/tanh MLP, with optional dropout, under ``nn.MSELoss`` or
``nn.CrossEntropyLoss``); ``tests/train/test_engine.py`` proves every optimizer and
penalty against a plain per-model ``torch.optim`` loop in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from ..task import CLASSIFICATION
from .engine import ParamLayout, TrainSpec

__all__ = ["BatchedMLP", "dropout_masks"]


def _linear(h, w, b, h_t=None):
    """``h @ w + b`` for every member, in the fastest layout for the shapes.

    ``h`` (members, n, fan_in), ``w`` (members, fan_in, fan_out), ``b`` (members, 1,
    fan_out) or None. A matrix-vector product (fan_out = 1) runs as the row product
    ``w^T h^T`` (several times faster than ``bmm`` with a one-column operand on CPU),
    using ``h_t``, a contiguous copy of ``h^T``, when given (2-3x faster than the
    transposed view), and an outer product (fan_in = 1) as one broadcast ``addcmul``.
    """
    fi, fo = w.shape[1], w.shape[2]
    if fi == 1:
        return torch.addcmul(b, h, w) if b is not None else h * w
    if fo == 1:
        wt = w.transpose(1, 2)
        ht = h_t if h_t is not None else h.transpose(1, 2)
        z = torch.baddbmm(b, wt, ht) if b is not None else torch.bmm(wt, ht)
        return z.transpose(1, 2)
    return torch.baddbmm(b, h, w) if b is not None else torch.bmm(h, w)


def _accumulate_weight_grad(gw, h, g, beta):
    """``gw <- beta * gw + h^T g`` in place (beta = 0 ignores what gw held)."""
    if gw.shape[2] == 1:  # a column: accumulate its transpose as a row product
        gw.transpose(1, 2).baddbmm_(g.transpose(1, 2), h, beta=beta)
    else:
        gw.baddbmm_(h.transpose(1, 2), g, beta=beta)


def _input_grad(g, w):
    """``g @ w^T``: the gradient with respect to a layer's input."""
    if w.shape[2] == 1:  # outer product
        return g * w.transpose(1, 2)
    return torch.bmm(g, w.transpose(1, 2))


def _forward(views, x, activation, keep, masks=None, acts=None, x_t=None):
    """Forward pass; returns the output (members, n, n_out) and the inputs of every
    layer (all of them when ``keep``, else the input only).

    With dropout ``masks`` (one scaled mask per hidden layer), each hidden activation
    is multiplied by its mask; the activations before dropout go to ``acts``. ``x_t``
    is an optional contiguous copy of ``x^T`` (see :func:`_linear`).
    """
    hs = [x]
    h = x
    last = len(views) - 1
    for i, (w, b) in enumerate(views):
        z = _linear(h, w, b, x_t if i == 0 else None)
        if i == last:
            return z, hs
        h = torch.relu_(z) if activation == "relu" else torch.tanh_(z)
        if masks is not None:
            acts.append(h)
            h = h * masks[i]
        if keep:
            hs.append(h)
    raise AssertionError


_M1, _M2, _GOLDEN = -4658895280553007687, -7723592293110705685, -7046029254386353131


def _splitmix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finalizer on int64 tensors (wrapping arithmetic, logical shifts)."""
    z = z + _GOLDEN
    z = (z ^ ((z >> 30) & ((1 << 34) - 1))) * _M1
    z = (z ^ ((z >> 27) & ((1 << 37) - 1))) * _M2
    return z ^ ((z >> 31) & ((1 << 33) - 1))


def dropout_masks(keys, step: int, layer: int, n: int, width: int, keep, device, dtype):
    """Scaled dropout masks (inverted dropout, as ``nn.Dropout`` in training mode).

    A counter-based generator: the mask of member ``i`` at (step, layer, row, column)
    is a hash of the member's key and those numbers, so it is the same on every
    device and in every chunk, and the per-model reference loop can draw it too.

    Parameters
    ----------
    keys : int64 tensor of shape (members,)
    keep : tensor of shape (members, 1, 1) or (), or float
        Keep probability 1 - dropout. A tensor of ``dtype`` on ``device`` is used as
        it is; a float becomes one (on a GPU a host-to-device copy, so the batched
        kernel builds its tensor once).

    Returns
    -------
    mask : tensor of shape (members, n, width)
        0 for dropped units, 1/keep for kept ones.
    """
    base = _splitmix64(keys.view(-1, 1, 1) ^ _splitmix64(torch.tensor(step * 64 + layer)))
    idx = torch.arange(n * width, device=device, dtype=torch.int64).view(1, n, width)
    u = ((_splitmix64(base + idx) >> 40) & ((1 << 24) - 1)).to(dtype) / float(1 << 24)
    keep = torch.as_tensor(keep, dtype=dtype, device=device)
    return (u < keep).to(dtype) / keep


def _mse(out, y):
    return (out.squeeze(-1) - y).square_().mean(1)


def _cross_entropy(out, y):
    """Mean cross-entropy per member: logits (members, n, C), labels (members, n)."""
    logp = torch.log_softmax(out, dim=-1)
    return -torch.gather(logp, 2, y.long().unsqueeze(-1)).squeeze(-1).mean(1)


def _predictions(out_t: torch.Tensor, classify: bool) -> np.ndarray:
    """Test predictions from the outputs (members, n_test, n_out): the outputs of a
    regression, the class probabilities (softmax) of a classification."""
    if classify:  # predicted class probabilities, (members, n_test, C)
        return torch.softmax(out_t, dim=-1).double().cpu().numpy()
    return out_t.squeeze(-1).double().cpu().numpy()


class BatchedMLP:
    """The MLP kernel as a :class:`~bvsim.train.loop.Trainer`: the parameters as one
    layer-major flat tensor, the backward pass by hand.

    Arguments as :func:`bvsim.train.trainers.train_batched`, which runs it in
    :class:`~bvsim.train.loop.TrainLoop`; ``minibatch`` says whether the loop will pass
    minibatch indices. It copies ``x``, ``y`` and ``init``: it writes into them.
    """

    #: zero parameters on zero data (freeze) give a zero MSE gradient; the
    #: cross-entropy gradient is multiplied by ``active``
    frozen_gradient_is_zero = True

    def __init__(self, spec: TrainSpec, x, y, x_test, y_test, weight_decay, init,
                 minibatch: bool, device, dropout_keys=None):  # fmt: skip
        dt = spec.dtype
        self.spec, self.layout = spec, ParamLayout(spec)
        self.members = m = x.shape[0]

        def tensor(a):
            return torch.tensor(np.asarray(a), dtype=dt, device=device)

        self.xt, self.yt = tensor(x), tensor(y)
        # a first layer with one output (a linear model) runs as the row product
        # w^T x^T: with a fixed batch, keep x^T contiguous once instead of every step
        self.xt_t = None
        if not minibatch and spec.shapes[0][0] > 1 and spec.shapes[0][1] == 1:
            self.xt_t = self.xt.transpose(1, 2).contiguous()
        self.xtest = tensor(x_test).unsqueeze(0).expand(m, -1, -1)
        self.ytest = tensor(y_test)
        self.flat = self.layout.to_layer_major(tensor(init))
        self.params = [self.flat]
        self.views = self.layout.layers(self.flat, m)
        # weight decay per member, broadcast over each parameter block; biases get
        # none when they are not decayed
        lam = tensor(weight_decay).view(m, 1, 1)
        decayed = [True] * len(self.views) * (2 if spec.bias else 1)
        if spec.bias and not spec.decay_bias:
            decayed = [True, False] * len(self.views)
        self.decay = [lam if d else None for d in decayed]
        self.classify = spec.loss == CLASSIFICATION.loss
        self.loss_of = _cross_entropy if self.classify else _mse
        self.minus_one = torch.full((1, 1, 1), -1.0, dtype=dt, device=device)
        self.dkeys = None
        if spec.dropout > 0 and len(spec.shapes) > 1:
            if dropout_keys is None:
                raise ValueError("spec.dropout > 0 needs dropout_keys")
            self.dkeys = torch.as_tensor(np.asarray(dropout_keys, dtype=np.int64), device=device)
            # the keep probability as a device scalar, built once: not a copy every step
            self.keep = torch.full((), 1.0 - spec.dropout, dtype=dt, device=device)
        self._buf = self._buf_views = None

    def blocks(self, tensors):
        return [v for t in tensors for v in self.layout.blocks(t, self.members)]

    @torch.no_grad()
    def gradient(self, step, batch, bufs, momentum, active) -> None:
        spec, m = self.spec, self.members
        if self._buf is not bufs[0]:
            self._buf, self._buf_views = bufs[0], self.layout.layers(bufs[0], m)
        xb, yb = self.xt, self.yt
        if batch is not None:
            xb = torch.gather(self.xt, 1, batch.unsqueeze(-1).expand(-1, -1, self.xt.shape[2]))
            yb = torch.gather(self.yt, 1, batch)
        nb = xb.shape[1]
        masks = acts = None
        if self.dkeys is not None:
            masks = [
                dropout_masks(self.dkeys, step, i, nb, fo, self.keep, xb.device, spec.dtype)
                for i, (_, fo) in enumerate(spec.shapes[:-1])
            ]
            acts = []
        out, hs = _forward(self.views, xb, spec.activation, keep=True, masks=masks, acts=acts,
                           x_t=self.xt_t)  # fmt: skip
        if self.classify:  # d CrossEntropyLoss / d logits: (softmax - onehot) / n
            g = torch.softmax(out, dim=-1)
            g.scatter_add_(2, yb.long().unsqueeze(-1), self.minus_one.expand(m, nb, 1))
            g.mul_(active.view(m, 1, 1) / nb)  # frozen members: no gradient
        else:  # d MSELoss / d out for targets of shape (n, 1): 2 (out - y) / n
            g = out.squeeze(-1).sub_(yb).mul_(2.0 / nb).unsqueeze(-1)
        self._backward(g, hs, masks, acts, momentum or 0.0)

    def _backward(self, g, hs, masks, acts, beta) -> None:
        """Backpropagate the output gradient ``g`` through every layer, folding the
        momentum in: buf <- beta * buf + gradient (beta = 0 overwrites buf)."""
        relu = self.spec.activation == "relu"
        for i in range(len(self.views) - 1, -1, -1):
            w, _ = self.views[i]
            gw, gb = self._buf_views[i]
            h = hs[i]
            _accumulate_weight_grad(gw, h, g, beta)
            if gb is not None:
                if beta:
                    gb.mul_(beta).add_(g.sum(1, keepdim=True))
                else:
                    gb.copy_(g.sum(1, keepdim=True))
            if i > 0:
                g = _input_grad(g, w)
                act = h
                if masks is not None:  # through dropout, then the activation
                    g = g * masks[i - 1]
                    act = acts[i - 1]
                if relu:
                    g = torch.ops.aten.threshold_backward(g, act, 0)
                else:
                    g.mul_(1 - act.square())

    def evaluate(self, with_pred: bool):
        act = self.spec.activation
        out, _ = _forward(self.views, self.xt, act, keep=False, x_t=self.xt_t)
        out_t, _ = _forward(self.views, self.xtest, act, keep=False)
        pred = _predictions(out_t, self.classify) if with_pred else None
        return self.loss_of(out, self.yt), self.loss_of(out_t, self.ytest), pred

    def freeze(self, idx) -> None:
        """Zero the data of members ``idx``: with zero parameters, a zero member on
        zero data has zero gradient (cross-entropy: ``active`` zeroes it)."""
        self.xt[idx] = 0
        if self.xt_t is not None:
            self.xt_t[idx] = 0
        self.yt[idx] = 0

    def finish(self):
        views, act = self.views, self.spec.activation
        out, _ = _forward(views, self.xt, act, keep=False, x_t=self.xt_t)
        train_error = self.loss_of(out, self.yt).double().cpu().numpy()
        out_t, _ = _forward(views, self.xtest, act, keep=False)
        wn = sum(w.square().sum((1, 2)) for w, _ in views).sqrt().double().cpu().numpy()
        params = self.layout.to_packed(self.flat, self.members).float().cpu().numpy()
        return _predictions(out_t, self.classify), train_error, wn, params
