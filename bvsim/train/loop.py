"""The training loop every batched torch trainer runs.

A trainer (the batched MLP kernel of :mod:`bvsim.train.mlp`, the user-module trainer
of :mod:`bvsim.train.module`) supplies its parameters, the gradients of a batch for
all members, and its losses and predictions (:class:`Trainer`). :class:`TrainLoop`
owns the rest: the step schedule and minibatch indices, the optimizer update (SGD with
momentum or Adam, with the l2, l1 or decoupled penalty, as ``torch.optim`` does it),
the curves logged every ``log_every`` steps, divergence detection and the freezing of
diverged members, the stop flag, and the :class:`~bvsim.train.engine.EngineResult`.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch

from .devices import check_stop
from .engine import EngineResult, TrainSpec

__all__ = ["TrainLoop", "Trainer", "adam_step", "apply_penalty"]


class Trainer(Protocol):
    """What a trainer gives :class:`TrainLoop`.

    Attributes
    ----------
    members : int
    params : list of tensor
        The tensors the optimizer updates in place; the loop keeps a buffer (the
        gradient, with SGD's momentum folded in) and, for Adam, the two moments, each
        the same shape as its parameter tensor.
    decay : list of tensor or None
        Per block of ``blocks(params)``, its weight decay, broadcasting per member
        (None: the block is not decayed).
    frozen_gradient_is_zero : bool
        True when the gradient of a frozen member (parameters and optimizer state
        zeroed by the loop, data zeroed by :meth:`freeze`, ``active`` 0) is zero, so it
        never moves again; otherwise the loop multiplies every update by ``active``.
    """

    members: int
    params: list[torch.Tensor]
    decay: list[torch.Tensor | None]
    frozen_gradient_is_zero: bool

    def blocks(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """Views of tensors shaped as ``params``, member first: (members, ...)."""

    def gradient(self, step, batch, bufs, momentum, active) -> None:
        """Write ``momentum * buf + gradient`` of the mean loss over the training
        points ``batch`` (members, batch size) (None: all of them) into ``bufs``; a
        momentum of None overwrites the buffers with the gradient. ``active`` (members,)
        is 1 for members in training, 0 for frozen ones."""

    def evaluate(self, with_pred: bool):
        """(training loss, test loss against the noisy test labels) as tensors of
        shape (members,), and the test predictions (numpy, members first) when
        ``with_pred``, else None."""

    def freeze(self, idx: torch.Tensor) -> None:
        """Zero what the trainer holds for members ``idx`` besides the parameters."""

    def finish(self):
        """Final (pred, train_error, weight_norm, params) as numpy, members first."""


def apply_penalty(penalty: str, lr: float, buf, p, lam) -> None:
    """The penalty's part of one update of parameter block ``p`` (in place).

    ``buf`` holds the gradient (plus momentum for SGD); ``lam`` broadcasts per member.
    l2 adds lam * p to it (torch ``weight_decay``), l1 adds lam * sign(p), decoupled
    shrinks p by (1 - lr * lam) before the step (AdamW, SGDW).
    """
    if penalty == "l2":
        buf.addcmul_(lam, p)
    elif penalty == "l1":
        buf.addcmul_(lam, p.sign())
    else:
        p.mul_(1 - lr * lam)


def adam_step(spec: TrainSpec, step: int, p, grad, avg, avg_sq, rate=None) -> None:
    """One ``torch.optim.Adam`` update of ``p`` from ``grad`` (in place); ``rate``
    (per member, 0 or 1) freezes diverged members."""
    b1, b2 = spec.betas
    avg.lerp_(grad, 1 - b1)
    avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    bc1 = 1 - b1**step
    denom = (avg_sq.sqrt() / math.sqrt(1 - b2**step)).add_(spec.eps)
    p.addcdiv_(avg if rate is None else avg * rate, denom, value=-spec.lr / bc1)


class TrainLoop:
    """Train a trainer's members for ``spec.steps`` steps; :meth:`run` returns the
    :class:`~bvsim.train.engine.EngineResult`.

    ``schedule`` (members, n_epochs, n_train) holds the minibatch orders (see
    :func:`bvsim.train.engine.batch_schedule`); None trains full batch.
    """

    def __init__(self, spec: TrainSpec, trainer: Trainer, schedule=None, device="cpu"):
        self.spec, self.trainer = spec, trainer
        device = torch.device(device)
        m, params = trainer.members, trainer.params
        self.bufs = [torch.zeros_like(p) for p in params]
        self.state = [params, self.bufs]  # zeroed for a diverged member
        if spec.optimizer == "adam":
            self.avg = [torch.zeros_like(p) for p in params]
            self.avg_sq = [torch.zeros_like(p) for p in params]
            self.state += [self.avg, self.avg_sq]
        self.penalties = [
            (b, p, lam)
            for b, p, lam in zip(
                trainer.blocks(self.bufs), trainer.blocks(params), trainer.decay, strict=True
            )
            if lam is not None
        ]
        self.active = torch.ones(m, dtype=spec.dtype, device=device)
        self.rates = [
            None if trainer.frozen_gradient_is_zero else self.active.view(m, *[1] * (p.dim() - 1))
            for p in params
        ]
        self.momentum = spec.momentum if spec.optimizer == "sgd" else None
        self.sched = None if schedule is None else torch.as_tensor(schedule, device=device)
        self.device = device
        self.log_steps = spec.log_steps
        self.curve_train = np.full((m, len(self.log_steps)), np.nan)
        self.curve_test = np.full((m, len(self.log_steps)), np.nan)
        self.pred_steps = None  # (members, n_log, ...) when spec.decompose_steps
        self.diverged = np.zeros(m, dtype=bool)
        self.diverged_step = np.full(m, -1, dtype=np.int64)

    def run(self) -> EngineResult:
        log_index = {int(s): i for i, s in enumerate(self.log_steps)}
        self._log(0, log_index[0])
        for step in range(1, self.spec.steps + 1):
            check_stop()
            self.trainer.gradient(step, self._batch(step), self.bufs, self.momentum, self.active)
            self._update(step)
            if step in log_index:
                self._log(step, log_index[step])
        with torch.no_grad():
            pred, train_error, weight_norm, params = self.trainer.finish()
        return EngineResult(
            pred=pred,
            train_error=train_error,
            weight_norm=weight_norm,
            curve_train=self.curve_train,
            curve_test=self.curve_test,
            log_steps=self.log_steps,
            diverged=self.diverged,
            diverged_step=self.diverged_step,
            params=params,
            pred_steps=self.pred_steps,
        )

    def _batch(self, step: int) -> torch.Tensor | None:
        """Indices (members, batch size) of step ``step``'s minibatch, None for all."""
        if self.sched is None:
            return None
        b = self.spec.batch_size
        per_epoch = math.ceil(self.sched.shape[2] / b)
        e, j = divmod(step - 1, per_epoch)
        return self.sched[:, e, j * b : (j + 1) * b]

    @torch.no_grad()
    def _update(self, step: int) -> None:
        """One optimizer step of every member from the gradients in ``bufs``."""
        spec = self.spec
        for b, p, lam in self.penalties:
            apply_penalty(spec.penalty, spec.lr, b, p, lam)
        for i, (p, b, rate) in enumerate(
            zip(self.trainer.params, self.bufs, self.rates, strict=True)
        ):
            if spec.optimizer == "sgd":
                # b already holds momentum * b + grad; torch adds lam * p to grad
                # before the momentum, which is the same sum.
                if rate is None:
                    p.add_(b, alpha=-spec.lr)
                else:
                    p.addcmul_(rate, b, value=-spec.lr)
            else:
                adam_step(spec, step, p, b, self.avg[i], self.avg_sq[i], rate)

    def _log(self, step: int, li: int) -> None:
        """Log the curves after ``step`` (column ``li``); find and freeze members that
        diverged (loss not finite or above ``spec.diverge_threshold``, or a parameter
        not finite)."""
        trainer, m = self.trainer, self.trainer.members
        with torch.no_grad():
            train, test, pred = trainer.evaluate(self.spec.decompose_steps)
            finite = torch.stack(
                [torch.isfinite(v).reshape(m, -1).all(1) for v in trainer.blocks(trainer.params)]
            ).all(0)
        train_np = train.double().cpu().numpy()
        bad = ~np.isfinite(train_np) | (train_np > self.spec.diverge_threshold)
        bad |= ~finite.cpu().numpy()
        new = bad & ~self.diverged
        if new.any():
            self._freeze(new, step)
        self.curve_train[:, li] = np.where(self.diverged, np.nan, train_np)
        self.curve_test[:, li] = np.where(self.diverged, np.nan, test.double().cpu().numpy())
        if pred is not None:
            if self.pred_steps is None:
                self.pred_steps = np.full((m, len(self.log_steps), *pred.shape[1:]), np.nan)
            self.pred_steps[:, li] = pred
            self.pred_steps[self.diverged, li] = np.nan

    @torch.no_grad()
    def _freeze(self, new: np.ndarray, step: int) -> None:
        """Freeze newly diverged members: zero their parameters, optimizer state and
        (the trainer's part) data, and their ``active`` rate. A frozen member never
        moves again and never touches another member."""
        self.diverged[new] = True
        self.diverged_step[new] = step
        idx = torch.as_tensor(np.flatnonzero(new), device=self.device)
        for tensors in self.state:
            for v in self.trainer.blocks(tensors):
                v[idx] = 0
        self.trainer.freeze(idx)
        self.active[idx] = 0
