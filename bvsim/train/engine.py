"""The batched training engine: many models trained as one tensor program.

Every member ``i`` of a batch is its own MLP (or linear model) with its own training
set, initialization and weight decay ``weight_decay[i]``. The parameters of all
members live in one flat tensor, layer after layer (see :class:`ParamLayout`); each
layer's weight is a contiguous view of shape (members, fan_in, fan_out), so the
forward and backward passes are ``bmm``/``baddbmm`` calls (in the fastest layout for
matrix-vector and outer products) and the optimizer update is a few element-wise calls
over the whole flat tensor. The backward pass is written out by hand (the chain rule
of a ReLU/tanh MLP, with optional dropout, under ``nn.MSELoss`` or
``nn.CrossEntropyLoss``), and the optimizers follow ``torch.optim.SGD`` /
``torch.optim.Adam`` with l2 (``weight_decay``), l1 or decoupled decay exactly;
``tests/train/test_engine.py`` proves every combination against a plain per-model
``torch.optim`` loop in float64. This module is the only one that knows about devices.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ..config import Config, is_classification
from ..data.seeds import Stream, member_key, rng

__all__ = [
    "EngineResult",
    "ParamLayout",
    "adam_step",
    "apply_penalty",
    "TrainSpec",
    "STOP",
    "batch_schedule",
    "check_stop",
    "dropout_keys",
    "dropout_masks",
    "init_params",
    "layer_shapes",
    "resolve_device",
    "setup_process",
    "solve_ridge",
    "train_batched",
]


#: Set to stop every training loop of this process at its next step: a sweep whose
#: device threads must end before it exits (Ctrl-C, SIGTERM) sets it and clears it
#: when it starts again.
STOP = threading.Event()


def check_stop() -> None:
    """Raise KeyboardInterrupt in a training loop when :data:`STOP` is set."""
    if STOP.is_set():
        raise KeyboardInterrupt("training stopped")


def setup_process(n_threads: int | None = 1) -> None:
    """Per-process torch settings for training: flush denormals, cap threads.

    Strong weight decay drives weights into denormal floats, which are several times
    slower on CPUs; flushing them changes nothing measurable in the results.
    """
    torch.set_flush_denormal(True)
    if n_threads is not None and torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
    _keep_freed_memory()


def _keep_freed_memory() -> None:
    """Let glibc keep freed blocks instead of returning them to the OS.

    A training step allocates and frees activations of a few hundred KiB; above
    glibc's default mmap threshold each one is a fresh mmap whose pages fault in
    again. Raising the mmap and trim thresholds reuses them (measured: 8-15 % faster
    steps on W2 on this machine). A no-op where libc has no ``mallopt``.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 256 << 20)
    mallopt(m_trim_threshold, 512 << 20)


def resolve_device(device: str) -> torch.device:
    """``'cpu'``, ``'cuda'``, ``'cuda:N'`` or ``'auto'`` (cuda when available).

    Raises
    ------
    ValueError
        If a CUDA device is asked for and none is available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r}: expected cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {device!r}: no CUDA device is available here "
                "(use --device cpu, or auto to fall back)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device!r}: only {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type != "cpu":
        raise ValueError(f"--device {device!r}: expected cpu, cuda, cuda:N or auto")
    return dev


def layer_shapes(cfg: Config) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every layer, input to output (n_classes outputs for a
    classification task, else one)."""
    widths = [cfg.data.dim]
    if cfg.model.kind == "mlp":
        widths += list(cfg.model.hidden)
    widths.append(cfg.data.n_classes if is_classification(cfg) else 1)
    return list(zip(widths[:-1], widths[1:], strict=True))


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
            key = member_key(cfg.sweep.design, Stream.DROPOUT, k, s)
            seq = np.random.SeedSequence(cfg.seed, spawn_key=key)
            out[a, s] = seq.generate_state(1, dtype=np.uint64).view(np.int64)[0]
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
    """What the engine needs from the configuration, as plain values."""

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
            loss="cross_entropy" if is_classification(cfg) else "mse",
            decompose_steps=t.decompose_steps,
        )

    @property
    def n_params(self) -> int:
        return sum(fi * fo + (fo if self.bias else 0) for fi, fo in self.shapes)

    @property
    def log_steps(self) -> np.ndarray:
        """Steps after which curves are logged (0 = before training)."""
        steps = list(range(0, self.steps, self.log_every)) + [self.steps]
        return np.array(sorted(set(steps)))

    def flops_per_step(self, n: int) -> float:
        """Matmul FLOPs of one forward + backward step of one member on n points."""
        mm = sum(2 * n * fi * fo for fi, fo in self.shapes)
        # forward, weight gradient, input gradient (none for the first layer)
        return 3 * mm - 2 * n * self.shapes[0][0] * self.shapes[0][1]


@dataclass
class EngineResult:
    """Per-member outputs of :func:`train_batched` (numpy, float64 unless noted).

    Attributes
    ----------
    pred : ndarray of shape (members, n_test), or (members, n_test, n_classes)
        Final predictions at the test inputs (class probabilities for a classification
        task); NaN for diverged members.
    train_error : ndarray of shape (members,)
        Final full-batch training MSE; NaN for diverged members.
    weight_norm : ndarray of shape (members,)
        L2 norm of all weight matrices (biases excluded); NaN for diverged members.
    curve_train, curve_test : ndarray of shape (members, n_log)
        Training MSE and test MSE (against the member's noisy test labels) after the
        steps in ``log_steps``; NaN from divergence on.
    log_steps : ndarray of shape (n_log,)
    diverged : ndarray of bool, shape (members,)
    diverged_step : ndarray of int, shape (members,)
        First logged step at which the member was found diverged; -1 if never.
    params : ndarray of float32, shape (members, n_params)
        Final parameters, member-major as in the engine (zeros if diverged).
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

    *Layer-major* (inside the engine): one flat tensor holding, block after block, all
    members' W1 as (members, fan_in, fan_out), then all members' b1 as
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

    def weight_mask(self) -> np.ndarray:
        """Packed (n_params,): 1 where a parameter is a weight, 0 where a bias."""
        mask = np.zeros(self.n_params)
        for w, _, _ in self.slices:
            mask[w] = 1
        return mask

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
    """Forward pass; returns the output (members, n, 1) and the inputs of every layer.

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
    keep : tensor of shape (members, 1, 1) or float
        Keep probability 1 - dropout.

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


def _mse(out, y):
    return (out.squeeze(-1) - y).square_().mean(1)


def _cross_entropy(out, y):
    """Mean cross-entropy per member: logits (members, n, C), labels (members, n)."""
    logp = torch.log_softmax(out, dim=-1)
    return -torch.gather(logp, 2, y.long().unsqueeze(-1)).squeeze(-1).mean(1)


def train_batched(
    spec: TrainSpec,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    weight_decay: np.ndarray,
    init: np.ndarray,
    schedule: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    dropout_keys: np.ndarray | None = None,
) -> EngineResult:
    """Train ``members`` models at once and evaluate them.

    Parameters
    ----------
    spec : TrainSpec
    x : ndarray of shape (members, n_train, dim)
    y : ndarray of shape (members, n_train)
    x_test : ndarray of shape (n_test, dim)
        Shared by all members.
    y_test : ndarray of shape (members, n_test)
        Noisy test labels, for the logged test curves.
    weight_decay : ndarray of shape (members,)
        Each member's coupled L2 coefficient (``torch.optim`` ``weight_decay``).
    init : ndarray of shape (members, n_params)
        Initial parameters, packed as :meth:`ParamLayout.pack` does.
    schedule : ndarray of shape (members, n_epochs, n_train), optional
        Minibatch orders (see :func:`batch_schedule`); None for full batch.
    device : str or torch.device
    dropout_keys : ndarray of int64, shape (members,), optional
        Each member's dropout stream (see :func:`dropout_masks`); needed when
        ``spec.dropout > 0``.

    Returns
    -------
    EngineResult
    """
    device = torch.device(device)
    if spec.solver == "closed_form":
        return solve_ridge(spec, x, y, x_test, y_test, weight_decay, device)
    dt = spec.dtype
    layout = ParamLayout(spec)
    m, n, _ = x.shape

    def tensor(a):  # always a copy: the engine writes into x, y and flat
        return torch.tensor(np.asarray(a), dtype=dt, device=device)

    xt, yt = tensor(x), tensor(y)
    # a first layer with one output (a linear model) runs as the row product w^T x^T:
    # with a fixed batch, keep x^T contiguous once instead of transposing every step
    xt_t = None
    if schedule is None and spec.shapes[0][0] > 1 and spec.shapes[0][1] == 1:
        xt_t = xt.transpose(1, 2).contiguous()
    xtest = tensor(x_test).unsqueeze(0).expand(m, -1, -1)
    ytest = tensor(y_test)
    flat = layout.to_layer_major(tensor(init))
    views = layout.layers(flat, m)
    # weight decay per member, broadcast over each parameter block; biases get none
    # when they are not decayed
    lam = tensor(weight_decay).view(m, 1, 1)
    decayed = [True] * len(views) * (2 if spec.bias else 1)
    if spec.bias and not spec.decay_bias:
        decayed = [True, False] * len(views)
    # buffer for the gradient (adam) or the momentum (sgd): same layout as flat
    buf = torch.zeros_like(flat)
    buf_views = layout.layers(buf, m)
    decay_pairs = [
        (b, p)
        for b, p, d in zip(layout.blocks(buf, m), layout.blocks(flat, m), decayed, strict=True)
        if d
    ]

    def add_penalty():
        """The penalty's part of the update, block by block (lam is per member)."""
        for b, p in decay_pairs:
            apply_penalty(spec.penalty, spec.lr, b, p, lam)

    state = [flat, buf]
    if spec.optimizer == "adam":
        exp_avg = torch.zeros_like(flat)
        exp_avg_sq = torch.zeros_like(flat)
        state += [exp_avg, exp_avg_sq]
    sched = None
    if schedule is not None:
        sched = torch.as_tensor(schedule, device=device)
        per_epoch = math.ceil(n / spec.batch_size)

    log_steps = spec.log_steps
    curve_train = np.full((m, len(log_steps)), np.nan)
    curve_test = np.full((m, len(log_steps)), np.nan)
    pred_steps = None
    if spec.decompose_steps:
        n_out = spec.shapes[-1][1]
        tail = (n_out,) if spec.loss == "cross_entropy" else ()
        pred_steps = np.full((m, len(log_steps), len(x_test), *tail), np.nan)
    diverged = np.zeros(m, dtype=bool)
    diverged_step = np.full(m, -1, dtype=np.int64)
    beta = spec.momentum if spec.optimizer == "sgd" else 0.0
    classify = spec.loss == "cross_entropy"
    loss_of = _cross_entropy if classify else _mse
    active = torch.ones(m, dtype=dt, device=device)
    minus_one = torch.full((1, 1, 1), -1.0, dtype=dt, device=device)
    dropping = spec.dropout > 0 and len(spec.shapes) > 1
    if dropping:
        if dropout_keys is None:
            raise ValueError("spec.dropout > 0 needs dropout_keys")
        dkeys = torch.as_tensor(np.asarray(dropout_keys, dtype=np.int64), device=device)
        keep_prob = 1.0 - spec.dropout
    relu = spec.activation == "relu"

    def check_and_log(step, li):
        with torch.no_grad():
            out, _ = _forward(views, xt, spec.activation, keep=False, x_t=xt_t)
            train = loss_of(out, yt)
            out_t, _ = _forward(views, xtest, spec.activation, keep=False)
            test = loss_of(out_t, ytest)
        train_np = train.double().cpu().numpy()
        bad = ~np.isfinite(train_np) | (train_np > spec.diverge_threshold)
        finite = torch.stack(
            [torch.isfinite(v).flatten(1).all(1) for v in layout.blocks(flat, m)]
        ).all(0)
        bad |= ~finite.cpu().numpy()
        new = bad & ~diverged
        if new.any():
            idx = torch.as_tensor(np.flatnonzero(new), device=device)
            # Freeze: zero parameters, optimizer state and data. A zero member with
            # zero data has zero gradient and zero decay, so it never moves again
            # and never touches another member.
            for t in state:
                for v in layout.blocks(t, m):
                    v[idx] = 0
            xt[idx] = 0
            if xt_t is not None:
                xt_t[idx] = 0
            yt[idx] = 0
            active[idx] = 0
            diverged[new] = True
            diverged_step[new] = step
        if li is not None:
            curve_train[:, li] = np.where(diverged, np.nan, train_np)
            curve_test[:, li] = np.where(diverged, np.nan, test.double().cpu().numpy())
            if pred_steps is not None:
                pred_steps[:, li] = _predictions(out_t, classify)
                pred_steps[diverged, li] = np.nan

    log_index = {int(s): i for i, s in enumerate(log_steps)}
    check_and_log(0, log_index[0])
    with torch.no_grad():
        for step in range(1, spec.steps + 1):
            check_stop()
            if sched is None:
                xb, yb = xt, yt
            else:
                t = step - 1
                e, j = divmod(t, per_epoch)
                idx = sched[:, e, j * spec.batch_size : (j + 1) * spec.batch_size]
                xb = torch.gather(xt, 1, idx.unsqueeze(-1).expand(-1, -1, xt.shape[2]))
                yb = torch.gather(yt, 1, idx)
            nb = xb.shape[1]
            masks = acts = None
            if dropping:
                masks = [
                    dropout_masks(dkeys, step, i, nb, fo, keep_prob, device, dt)
                    for i, (_, fo) in enumerate(spec.shapes[:-1])
                ]
                acts = []
            out, hs = _forward(
                views, xb, spec.activation, keep=True, masks=masks, acts=acts, x_t=xt_t
            )
            if classify:  # d CrossEntropyLoss / d logits: (softmax - onehot) / n
                g = torch.softmax(out, dim=-1)
                g.scatter_add_(2, yb.long().unsqueeze(-1), minus_one.expand(m, nb, 1))
                g.mul_(active.view(m, 1, 1) / nb)  # frozen members: no gradient
            else:  # d MSELoss / d out for targets of shape (n, 1): 2 (out - y) / n
                g = out.squeeze(-1).sub_(yb).mul_(2.0 / nb).unsqueeze(-1)
            for i in range(len(views) - 1, -1, -1):
                w, b = views[i]
                gw, gb = buf_views[i]
                h = hs[i]
                # momentum (sgd) folded in: buf <- beta * buf + h^T g
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
            if spec.optimizer == "sgd":
                # buf already holds beta * buf + grad; torch adds lam * p to grad
                # before the momentum, which is the same sum.
                add_penalty()
                flat.add_(buf, alpha=-spec.lr)
            else:
                add_penalty()
                adam_step(spec, step, flat, buf, exp_avg, exp_avg_sq)
            if step in log_index:
                check_and_log(step, log_index[step])

        out, _ = _forward(views, xt, spec.activation, keep=False, x_t=xt_t)
        train_error = loss_of(out, yt).double().cpu().numpy()
        out_t, _ = _forward(views, xtest, spec.activation, keep=False)
        pred = _predictions(out_t, classify)
        wn = sum(w.square().sum((1, 2)) for w, _ in views).sqrt().double().cpu().numpy()
        params = layout.to_packed(flat, m).float().cpu().numpy()

    return EngineResult(
        pred=pred,
        train_error=train_error,
        weight_norm=wn,
        curve_train=curve_train,
        curve_test=curve_test,
        log_steps=log_steps,
        diverged=diverged,
        diverged_step=diverged_step,
        params=params,
        pred_steps=pred_steps,
    )


def _predictions(out_t: torch.Tensor, classify: bool) -> np.ndarray:
    """Test predictions from the outputs (members, n_test, n_out): the outputs of a
    regression, the class probabilities (softmax) of a classification."""
    if classify:  # predicted class probabilities, (members, n_test, C)
        return torch.softmax(out_t, dim=-1).double().cpu().numpy()
    return out_t.squeeze(-1).double().cpu().numpy()


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
    descent reaches from a zero initialization. Arguments as :func:`train_batched`.
    """
    if len(spec.shapes) != 1 or spec.bias:
        raise ValueError("the closed-form solver handles linear models without bias only")
    device = torch.device(device)
    m, n, p = x.shape
    xt = torch.tensor(np.asarray(x), dtype=spec.dtype, device=device)
    yt = torch.tensor(np.asarray(y), dtype=spec.dtype, device=device).unsqueeze(-1)
    alpha = torch.tensor(np.asarray(weight_decay) * n / 2, dtype=spec.dtype, device=device)
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
