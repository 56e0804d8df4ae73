"""What every torch trainer shares: the spec it trains by, where the parameters live,
what it returns, and each member's draws from the seed tree.

:class:`TrainSpec` is the configuration as plain values; :class:`ParamLayout` places
the parameters of all members of a batch in one flat tensor (packed per member at the
interface, layer-major inside the batched MLP); :class:`EngineResult` is the per-member
outcome every trainer returns (the MLP kernel and the user-module trainer through
:mod:`bvsim.train.loop`, closed-form ridge, scikit-learn estimators). The draws
(:func:`init_params`, :func:`dropout_keys`, :func:`batch_schedule`) depend only on the
seed tree, so they are the same on every device and in every chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..config import Config
from ..data.seeds import Stream, member_key, member_word, rng
from ..task import task_for

__all__ = [
    "EngineResult",
    "ParamLayout",
    "TrainSpec",
    "batch_schedule",
    "dropout_keys",
    "init_params",
    "layer_shapes",
    "logged_steps",
]


def layer_shapes(cfg: Config) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every layer, input to output (n_classes outputs for a
    classification task, else one)."""
    widths = [cfg.data.dim]
    if cfg.model.kind == "mlp":
        widths += list(cfg.model.hidden)
    widths.append(task_for(cfg).n_out(cfg))
    return list(zip(widths[:-1], widths[1:], strict=True))


def logged_steps(steps: int, log_every: int) -> np.ndarray:
    """Steps after which the training loop logs its curves: 0 (before training), every
    ``log_every``, and ``steps`` (:attr:`TrainSpec.log_steps`, a chunk's
    ``log_steps``)."""
    return np.append(np.arange(0, steps, log_every, dtype=np.int64), steps)


def n_logged_steps(steps: int, log_every: int) -> int:
    """``len(logged_steps(steps, log_every))`` without building it: a run's sizes are
    computed before any check of their memory (a train.steps of 1e13 is refused by
    it, not built)."""
    return -(-steps // log_every) + 1


def init_params(cfg: Config, ks, n_seeds: int) -> list[np.ndarray]:
    """Initial parameters of members (k, s), as ``torch.nn.Linear`` draws them.

    Weights and biases are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default for
    ``nn.Linear``), drawn in float64 from seed-tree node (INIT, k, s) (in the crossed
    design (CROSSED, INIT, s), the same for every training set; see
    :func:`bvsim.data.seeds.member_key`): the same for every lambda (common random
    numbers) and every device.

    Returns
    -------
    params : list of ndarray
        Per layer, the weight of shape (n_sets, n_seeds, fan_in, fan_out), then (if the
        model has biases) the bias of shape (n_sets, n_seeds, fan_out).
    """
    shapes = layer_shapes(cfg)
    bias = cfg.model.bias
    out = []
    for fi, fo in shapes:
        out.append(np.empty((len(ks), n_seeds, fi, fo)))
        if bias:
            out.append(np.empty((len(ks), n_seeds, fo)))
    for a, k in enumerate(ks):
        for s in range(n_seeds):
            gen = rng(cfg.seed, *member_key(cfg.sweep.design, Stream.INIT, k, s))
            i = 0
            for fi, fo in shapes:
                bound = 1.0 / math.sqrt(fi)
                out[i][a, s] = gen.uniform(-bound, bound, size=(fi, fo))
                i += 1
                if bias:
                    out[i][a, s] = gen.uniform(-bound, bound, size=fo)
                    i += 1
    return out


def dropout_keys(cfg: Config, ks, n_seeds: int) -> np.ndarray:
    """int64 keys of the dropout streams of members (k, s), shape (n_sets, n_seeds)."""
    out = np.empty((len(ks), n_seeds), dtype=np.int64)
    for a, k in enumerate(ks):
        for s in range(n_seeds):
            word = member_word(cfg.seed, cfg.sweep.design, Stream.DROPOUT, k, s, np.uint64)
            out[a, s] = word.view(np.int64)
    return out


def batch_schedule(cfg: Config, ks, n_seeds: int) -> np.ndarray | None:
    """Minibatch indices of members (k, s), or None for full-batch training.

    Each epoch is a fresh permutation of the training points split into consecutive
    batches (the last one of an epoch may be smaller, as ``DataLoader`` with
    ``shuffle=True``); the order comes from seed-tree node (BATCH, k, s).

    Returns
    -------
    schedule : ndarray of shape (n_sets, n_seeds, n_epochs, n_train) or None
    """
    n, b = cfg.data.n_train, cfg.train.batch_size
    if b == 0 or b >= n:
        return None
    per_epoch = math.ceil(n / b)
    n_epochs = math.ceil(cfg.train.steps / per_epoch)
    out = np.empty((len(ks), n_seeds, n_epochs, n), dtype=np.int64)
    for a, k in enumerate(ks):
        for s in range(n_seeds):
            gen = rng(cfg.seed, *member_key(cfg.sweep.design, Stream.BATCH, k, s))
            out[a, s] = gen.permuted(np.tile(np.arange(n), (n_epochs, 1)), axis=1)
    return out


@dataclass(frozen=True)
class TrainSpec:
    """What a torch trainer needs from the configuration, as plain values."""

    shapes: tuple[tuple[int, int], ...]
    bias: bool
    activation: str
    optimizer: str
    lr: float
    momentum: float
    betas: tuple[float, float]
    eps: float
    steps: int
    batch_size: int
    decay_bias: bool
    log_every: int
    diverge_threshold: float
    dtype: torch.dtype
    solver: str = "gd"
    penalty: str = "l2"
    dropout: float = 0.0
    loss: str = "mse"
    #: Also keep the test predictions at every logged step (``EngineResult.pred_steps``).
    decompose_steps: bool = False

    @classmethod
    def from_config(cls, cfg: Config) -> TrainSpec:
        t = cfg.train
        return cls(
            shapes=tuple(layer_shapes(cfg)),
            bias=cfg.model.bias,
            activation=cfg.model.activation,
            optimizer=t.optimizer,
            lr=t.lr,
            momentum=t.momentum,
            betas=(t.betas[0], t.betas[1]),
            eps=t.eps,
            steps=t.steps,
            batch_size=t.batch_size,
            decay_bias=t.decay_bias,
            log_every=t.log_every,
            diverge_threshold=t.diverge_threshold,
            dtype=torch.float64 if t.dtype == "float64" else torch.float32,
            solver=t.solver,
            penalty=t.penalty,
            dropout=cfg.model.dropout,
            loss=task_for(cfg).loss,
            decompose_steps=t.decompose_steps,
        )

    @property
    def n_params(self) -> int:
        return sum(fi * fo + (fo if self.bias else 0) for fi, fo in self.shapes)

    @property
    def log_steps(self) -> np.ndarray:
        """Steps after which curves are logged (0 = before training)."""
        return logged_steps(self.steps, self.log_every)

    def flops_per_step(self, n: int) -> float:
        """Matmul FLOPs of one forward + backward step of one member on n points."""
        mm = sum(2 * n * fi * fo for fi, fo in self.shapes)
        # forward, weight gradient, input gradient (none for the first layer)
        return 3 * mm - 2 * n * self.shapes[0][0] * self.shapes[0][1]


@dataclass
class EngineResult:
    """Per-member outputs of a trainer (numpy, float64 unless noted).

    Attributes
    ----------
    pred : ndarray of shape (members, n_test), or (members, n_test, n_classes)
        Final predictions at the test inputs (class probabilities for a classification
        task); NaN for diverged members.
    train_error : ndarray of shape (members,)
        Final full-batch training loss (MSE; cross-entropy for a classification task);
        NaN for diverged members.
    weight_norm : ndarray of shape (members,)
        L2 norm of all weight matrices (biases excluded); NaN for diverged members.
    curve_train, curve_test : ndarray of shape (members, n_log)
        Training and test loss (as ``train_error``; the test loss against the member's
        noisy test labels) after the steps in ``log_steps``; NaN from divergence on.
    log_steps : ndarray of shape (n_log,)
    diverged : ndarray of bool, shape (members,)
    diverged_step : ndarray of int, shape (members,)
        First logged step at which the member was found diverged; -1 if never.
    params : ndarray of float32, shape (members, n_params)
        Final parameters, packed as :meth:`ParamLayout.pack` (the batched MLP: zeros
        for a diverged member); shape (members, 0) from trainers that keep none (a
        user's module or estimator).
    pred_steps : ndarray of shape (members, n_log, n_test[, n_classes]), optional
        The test predictions after each step of ``log_steps`` (``spec.decompose_steps``),
        NaN from divergence on; the last one is ``pred``. None when not asked for.

    Every trainer builds one; the final values of diverged members are set to NaN here
    (in place), so no trainer can report them.
    """

    pred: np.ndarray
    train_error: np.ndarray
    weight_norm: np.ndarray
    curve_train: np.ndarray
    curve_test: np.ndarray
    log_steps: np.ndarray
    diverged: np.ndarray
    diverged_step: np.ndarray
    params: np.ndarray
    pred_steps: np.ndarray | None = None

    def __post_init__(self):
        for name in ("pred", "train_error", "weight_norm"):
            getattr(self, name)[self.diverged] = np.nan


class ParamLayout:
    """Where each layer's parameters live, in two layouts.

    *Packed* (the interface): one row per member, shape (members, n_params), each row
    the concatenation of W1 (fan_in x fan_out, row-major), b1, W2, b2, ... as
    :func:`init_params` draws them and ``EngineResult.params`` returns them.

    *Layer-major* (inside the batched MLP): one flat tensor holding, block after
    block, all members' W1 as (members, fan_in, fan_out), then all members' b1 as
    (members, 1, fan_out), and so on. Every block is contiguous, so ``bmm`` and
    in-place ``baddbmm_`` run on it directly, and one element-wise call over the flat
    tensor updates every parameter of every member.
    """

    def __init__(self, spec: TrainSpec):
        self.slices = []  # packed: (weight slice, (fan_in, fan_out), bias slice or None)
        off = 0
        for fi, fo in spec.shapes:
            w = slice(off, off + fi * fo)
            off += fi * fo
            b = None
            if spec.bias:
                b = slice(off, off + fo)
                off += fo
            self.slices.append((w, (fi, fo), b))
        self.n_params = off

    def _blocks(self):
        for w, (fi, fo), b in self.slices:
            yield w, (fi, fo)
            if b is not None:
                yield b, (1, fo)

    def pack(self, params: list[np.ndarray]) -> np.ndarray:
        """Pack per-layer arrays of shape (members, ...) into (members, n_params)."""
        m = params[0].shape[0]
        return np.concatenate([p.reshape(m, -1) for p in params], axis=1)

    def to_layer_major(self, packed: torch.Tensor) -> torch.Tensor:
        """(members, n_params) packed -> flat layer-major (members * n_params,)."""
        return torch.cat([packed[:, sl].reshape(-1) for sl, _ in self._blocks()])

    def blocks(self, flat: torch.Tensor, m: int) -> list[torch.Tensor]:
        """Views of a layer-major flat tensor: each block as (members, rows, cols)."""
        out, off = [], 0
        for _, (r, c) in self._blocks():
            out.append(flat[off : off + m * r * c].view(m, r, c))
            off += m * r * c
        return out

    def layers(self, flat: torch.Tensor, m: int):
        """[(W of shape (members, fan_in, fan_out), b of shape (members, 1, fan_out)
        or None), ...] as views of a layer-major flat tensor."""
        blocks = iter(self.blocks(flat, m))
        return [(next(blocks), next(blocks) if b is not None else None)
                for _, _, b in self.slices]  # fmt: skip

    def to_packed(self, flat: torch.Tensor, m: int) -> torch.Tensor:
        """Flat layer-major -> (members, n_params) packed."""
        return torch.cat([v.reshape(m, -1) for v in self.blocks(flat, m)], dim=1)
