"""The plain way: one ``nn.Module`` and one ``torch.optim`` optimizer per model.

This is how a tutorial trains, and the ground truth the batched MLP is proven
against (``tests/train/test_engine.py``) and timed against (``scripts/bench.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..task import CLASSIFICATION
from .engine import TrainSpec
from .mlp import dropout_masks


class _MaskedDropout(nn.Module):
    """Dropout whose mask is set from outside (the batched MLP's counter-based masks);
    the identity in eval mode, as ``nn.Dropout``."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, h):
        return h * self.mask if self.training else h


__all__ = ["build_module", "fit_module", "train_one"]


def build_module(spec: TrainSpec, init: np.ndarray) -> nn.Sequential:
    """An ``nn.Sequential`` MLP holding the packed parameters ``init`` (n_params,)."""
    layers: list[nn.Module] = []
    off = 0
    last = len(spec.shapes) - 1
    for i, (fi, fo) in enumerate(spec.shapes):
        lin = nn.Linear(fi, fo, bias=spec.bias, dtype=spec.dtype)
        with torch.no_grad():
            # the batched MLP stores W as (fan_in, fan_out); nn.Linear as (out, in)
            w = torch.tensor(init[off : off + fi * fo]).view(fi, fo).T
            lin.weight.copy_(w)
            off += fi * fo
            if spec.bias:
                lin.bias.copy_(torch.tensor(init[off : off + fo]))
                off += fo
        layers.append(lin)
        if i < last:
            layers.append(nn.ReLU() if spec.activation == "relu" else nn.Tanh())
            if spec.dropout > 0:
                layers.append(_MaskedDropout())
    return nn.Sequential(*layers)


def train_one(
    spec: TrainSpec,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    weight_decay: float,
    init: np.ndarray,
    schedule: np.ndarray | None = None,
    dropout_key: int | None = None,
) -> tuple[np.ndarray, float]:
    """Train one model with ``torch.optim`` and return (test predictions, train MSE).

    Parameters
    ----------
    x : ndarray of shape (n_train, dim)
    y : ndarray of shape (n_train,)
    x_test : ndarray of shape (n_test, dim)
    init : ndarray of shape (n_params,)
    schedule : ndarray of shape (n_epochs, n_train), optional
    dropout_key : int, optional
        The member's dropout stream, when ``spec.dropout > 0``.
    """
    model = build_module(spec, init)
    return fit_module(model, spec, x, y, x_test, weight_decay, schedule, dropout_key)


def _optimizer(model: nn.Module, spec: TrainSpec, weight_decay: float):
    """The decayed parameters (all, or all but the biases when ``spec.decay_bias`` is
    false) and the ``torch.optim`` optimizer of ``spec`` over them. A frozen parameter
    (``requires_grad = False``) is in neither: never stepped, never decayed."""
    trained = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    decayed = [p for name, p in trained if spec.decay_bias or not name.endswith("bias")]
    rest = [p for _, p in trained if all(p is not q for q in decayed)]
    # l2 and AdamW's decoupled decay are torch.optim's own weight_decay; l1 is a term of
    # the loss; decoupled SGD (SGDW) shrinks the weights by hand before each step.
    torch_decay = weight_decay if spec.penalty == "l2" else 0.0
    if spec.penalty == "decoupled" and spec.optimizer == "adam":
        torch_decay = weight_decay
    groups = [{"params": decayed, "weight_decay": torch_decay}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    if spec.optimizer == "sgd":
        return decayed, torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum)
    adam = torch.optim.AdamW if spec.penalty == "decoupled" else torch.optim.Adam
    return decayed, adam(groups, lr=spec.lr, betas=spec.betas, eps=spec.eps)


def fit_module(
    model: nn.Module,
    spec: TrainSpec,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    weight_decay: float,
    schedule: np.ndarray | None = None,
    dropout_key: int | None = None,
) -> tuple[np.ndarray, float]:
    """Train ``model`` in place with ``torch.optim``; (test predictions, final training
    loss: MSE, or cross-entropy for classification).

    Parameters whose name ends in ``bias`` are not decayed when ``spec.decay_bias``
    is false.
    """
    decayed, opt = _optimizer(model, spec, weight_decay)
    classify = spec.loss == CLASSIFICATION.loss
    xt = torch.tensor(x, dtype=spec.dtype)
    if classify:
        loss_fn = nn.CrossEntropyLoss()
        yt = torch.tensor(y).long()

        def shape(out):
            return out
    else:
        loss_fn = nn.MSELoss()
        yt = torch.tensor(y, dtype=spec.dtype).unsqueeze(1)  # (n, 1): no broadcasting

        def shape(out):
            return out.reshape(-1, 1)

    per_epoch = math.ceil(len(x) / spec.batch_size) if schedule is not None else 1
    drops = [mod for mod in model.modules() if isinstance(mod, _MaskedDropout)]
    for t in range(spec.steps):
        if schedule is None:
            xb, yb = xt, yt
        else:
            e, j = divmod(t, per_epoch)
            idx = torch.as_tensor(schedule[e, j * spec.batch_size : (j + 1) * spec.batch_size])
            xb, yb = xt[idx], yt[idx]
        for layer, mod in enumerate(drops):
            keys = torch.tensor([dropout_key], dtype=torch.int64)
            width = spec.shapes[layer][1]
            mask = dropout_masks(keys, t + 1, layer, len(xb), width, 1 - spec.dropout,
                                 "cpu", spec.dtype)  # fmt: skip
            mod.mask = mask[0]
        opt.zero_grad()
        loss = loss_fn(shape(model(xb)), yb)
        if spec.penalty == "l1":
            loss = loss + weight_decay * sum(p.abs().sum() for p in decayed)
        loss.backward()
        if spec.penalty == "decoupled" and spec.optimizer == "sgd":
            with torch.no_grad():
                for p in decayed:
                    p.mul_(1 - spec.lr * weight_decay)
        opt.step()
    model.eval()
    with torch.no_grad():
        train = loss_fn(shape(model(xt)), yt).item()
        out = model(torch.tensor(x_test, dtype=spec.dtype))
        if classify:  # class probabilities (n_test, C)
            pred = torch.softmax(out, dim=-1).double().numpy()
        else:
            pred = out.reshape(-1).double().numpy()
    return pred, train
