"""The plain way: one ``nn.Module`` and one ``torch.optim`` optimizer per model.

This is how a tutorial trains, and the ground truth the batched engine is proven
against (``tests/test_engine.py``) and timed against (``scripts/bench.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .engine import TrainSpec

__all__ = ["build_module", "train_one"]


def build_module(spec: TrainSpec, init: np.ndarray) -> nn.Sequential:
    """An ``nn.Sequential`` MLP holding the packed parameters ``init`` (n_params,)."""
    layers: list[nn.Module] = []
    off = 0
    last = len(spec.shapes) - 1
    for i, (fi, fo) in enumerate(spec.shapes):
        lin = nn.Linear(fi, fo, bias=spec.bias, dtype=spec.dtype)
        with torch.no_grad():
            # the engine stores W as (fan_in, fan_out); nn.Linear as (out, in)
            w = torch.tensor(init[off : off + fi * fo]).view(fi, fo).T
            lin.weight.copy_(w)
            off += fi * fo
            if spec.bias:
                lin.bias.copy_(torch.tensor(init[off : off + fo]))
                off += fo
        layers.append(lin)
        if i < last:
            layers.append(nn.ReLU() if spec.activation == "relu" else nn.Tanh())
    return nn.Sequential(*layers)


def train_one(
    spec: TrainSpec,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    weight_decay: float,
    init: np.ndarray,
    schedule: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Train one model with ``torch.optim`` and return (test predictions, train MSE).

    Parameters
    ----------
    x : ndarray of shape (n_train, dim)
    y : ndarray of shape (n_train,)
    x_test : ndarray of shape (n_test, dim)
    init : ndarray of shape (n_params,)
    schedule : ndarray of shape (n_epochs, n_train), optional
    """
    model = build_module(spec, init)
    if spec.bias and not spec.decay_bias:
        decay = [p for name, p in model.named_parameters() if name.endswith("weight")]
        rest = [p for name, p in model.named_parameters() if name.endswith("bias")]
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": rest, "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    if spec.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum)
    else:
        opt = torch.optim.Adam(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps)
    loss_fn = nn.MSELoss()
    xt = torch.tensor(x, dtype=spec.dtype)
    yt = torch.tensor(y, dtype=spec.dtype).unsqueeze(1)  # (n, 1): no broadcasting
    per_epoch = math.ceil(len(x) / spec.batch_size) if schedule is not None else 1
    for t in range(spec.steps):
        if schedule is None:
            xb, yb = xt, yt
        else:
            e, j = divmod(t, per_epoch)
            idx = torch.as_tensor(schedule[e, j * spec.batch_size : (j + 1) * spec.batch_size])
            xb, yb = xt[idx], yt[idx]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
    with torch.no_grad():
        train = loss_fn(model(xt), yt).item()
        pred = model(torch.tensor(x_test, dtype=spec.dtype)).squeeze(1).double().numpy()
    return pred, train
