"""A user's ``torch.nn.Module``, many copies trained as one program.

``model.module = "file.py:make_model"`` names a factory called with no arguments that
returns an ``nn.Module`` mapping x of shape (n, dim) to (n,) or (n, 1). Every member
(weight decay, training set k, seed s) is a copy with its own parameters, initialized
by the module's own code under ``torch.manual_seed`` of seed-tree node (INIT, k, s)
(the same for every lambda), with torch's default dtype float32 while the factory runs
(so a process's ``torch.set_default_dtype(torch.float64)`` changes no initial weight).

Two trainers, the same numbers (float64 tests against a per-model ``torch.optim``
loop, tests/train/test_module.py and test_module_faithful.py):

* A plain ``nn.Sequential`` of ``nn.Linear`` layers with one kind of activation
  (:func:`batched_spec`: these classes exactly, no hooks, no frozen parameter) goes to
  the built-in batched MLP kernel (:func:`bvsim.train.trainers.train_batched`),
  starting from the module's own initial weights (:func:`pack_members`), unless
  ``model.module_trainer = "func"``.
* Any other module: the copies' parameters are stacked (as ``stack_module_state``
  does), the per-member gradients come from ``vmap(grad(functional_call(...)))``,
  in the same training loop as the built-in MLP's (:mod:`bvsim.train.loop`: SGD with
  momentum or Adam; l2, l1 or decoupled decay; biases optionally undecayed).

A frozen parameter (``requires_grad = False``) keeps its initial value, as
``torch.optim`` leaves a parameter without gradient (no step, no decay). Modules with
buffers (batch norm statistics), random layers (dropout), gradient hooks (torch.func
does not run them) or no parameter to train are refused when the configuration loads.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ..config import Config
from ..config.plugins import load_object
from ..data.seeds import Stream, member_word
from .engine import EngineResult, TrainSpec
from .loop import TrainLoop

__all__ = [
    "activations_per_point",
    "batched_spec",
    "batched_note",
    "make_members",
    "member_seed",
    "pack_members",
    "StackedModules",
    "train_modules",
]


def _factory(cfg: Config):
    return load_object(cfg.model.module, "model.module")


#: torch's default dtype is one setting per process: builds in threads take turns
_DEFAULT_DTYPE_LOCK = threading.RLock()


@contextlib.contextmanager
def _float32_default():
    """torch's default dtype float32 inside (the factory's own ``nn.Linear`` etc. draw
    their initial values in it), the process's own restored after, so that a user's
    ``torch.set_default_dtype(torch.float64)`` does not change the initial weights."""
    with _DEFAULT_DTYPE_LOCK:
        before = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:
            yield
        finally:
            torch.set_default_dtype(before)


def _instance(cfg: Config) -> nn.Module:
    """One module from the factory, built under a float32 default dtype and without
    touching the global random state."""
    factory = _factory(cfg)  # imported first: a file's own set_default_dtype is undone
    with _DEFAULT_DTYPE_LOCK, torch.random.fork_rng(devices=[]), _float32_default():
        return factory()


def member_seed(cfg: Config, k: int, s: int) -> int:
    """The ``torch.manual_seed`` that initializes member (k, s)."""
    word = member_word(cfg.seed, cfg.sweep.design, Stream.INIT, k, s, np.uint64)
    return int(word % (2**63 - 1))


def _build(cfg: Config, seed: int, dtype: torch.dtype) -> nn.Module:
    """Member ``seed``'s module. The lock is outermost: a thread's RNG state restored
    by ``fork_rng`` must not land in the middle of another thread's seeded build."""
    factory = _factory(cfg)  # imported first: a file's own set_default_dtype is undone
    with _DEFAULT_DTYPE_LOCK, torch.random.fork_rng(devices=[]), _float32_default():
        torch.manual_seed(seed)
        module = factory()
    return module.to(dtype)


def batched_note(cfg: Config) -> str | None:
    """Where the module is a plain ``nn.Linear`` stack (:func:`batched_spec`), that it
    trains in the batched engine, and how to ask for ``torch.func`` instead."""
    if batched_spec(cfg) is None:
        return None
    return (
        f"{cfg.model.module} is a plain nn.Linear stack: trained by the batched engine "
        "from its own initial weights (--set model.module_trainer=func for torch.func)"
    )


_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOKS = tuple(f"_global{name}" for name in _HOOKS)


_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh"}


def _runs_as_written(module: nn.Module) -> bool:
    """Whether calling ``module`` runs exactly its class's ``forward`` on its own
    parameters: no hooks (its own, its layers', torch's global module hooks), no
    ``forward`` set on an instance, no parameter frozen (``requires_grad = False``)."""
    if any(getattr(nn.modules.module, name, None) for name in _GLOBAL_HOOKS):
        return False
    for m in module.modules():
        if any(getattr(m, name, None) for name in _HOOKS) or "forward" in vars(m):
            return False
    return all(p.requires_grad for p in module.parameters())


def batched_spec(cfg: Config) -> TrainSpec | None:
    """The batched MLP's spec for the configured module, or None when the MLP kernel
    cannot train it exactly (then torch.func does).

    The kernel takes an ``nn.Sequential`` itself (not a subclass, which may have its
    own ``forward``) of ``nn.Linear`` layers, all with or all without bias, separated
    by one kind of activation (``nn.ReLU`` or ``nn.Tanh``), with a single output, the
    layers of exactly these classes and without extra parameters, and nothing that
    changes what a call computes or trains (:func:`_runs_as_written`);
    ``model.module_trainer = "func"`` declines it.
    """
    if cfg.model.module_trainer != "auto":
        return None
    module = _instance(cfg)
    if type(module) is not nn.Sequential or module._parameters or not _runs_as_written(module):
        return None
    layers = list(module)
    linears, acts = layers[0::2], layers[1::2]
    if len(acts) != len(linears) - 1 or not all(type(m) is nn.Linear for m in linears):
        return None
    if any(set(m._parameters) != {"weight", "bias"} for m in linears):
        return None  # a parameter registered besides the layer's own
    kinds = {_ACTIVATIONS.get(type(a)) for a in acts}
    if any(a._parameters for a in acts):
        return None
    if None in kinds or len(kinds) > 1 or len({m.bias is not None for m in linears}) > 1:
        return None
    shapes = tuple((m.in_features, m.out_features) for m in linears)
    if shapes[0][0] != cfg.data.dim or shapes[-1][1] != 1:
        return None
    return dataclasses.replace(
        TrainSpec.from_config(cfg),
        shapes=shapes,
        bias=linears[0].bias is not None,
        activation=kinds.pop() if kinds else "relu",  # no activation: a linear model
    )


def pack_members(modules: list[nn.Module]) -> np.ndarray:
    """Initial parameters of Linear stacks, packed as
    :class:`bvsim.train.engine.ParamLayout` packs them (W as (fan_in, fan_out), then b,
    per layer).

    Returns
    -------
    ndarray of shape (len(modules), n_params), float64
    """
    rows = []
    for module in modules:
        parts = []
        for layer in module:
            if isinstance(layer, nn.Linear):
                parts.append(layer.weight.detach().double().T.reshape(-1))
                if layer.bias is not None:
                    parts.append(layer.bias.detach().double())
        rows.append(torch.cat(parts).numpy())
    return np.stack(rows)


def activations_per_point(cfg: Config) -> tuple[int, int]:
    """(parameters, activation values per input point) of one copy of the module,
    from one forward pass on one point: what a chunk of copies holds per member."""
    module = _instance(cfg).to(torch.float32)  # sizes only; training casts it too
    sizes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()))
             for m in module.modules() if not list(m.children())]  # fmt: skip
    try:
        with torch.no_grad():
            module(torch.zeros(1, cfg.data.dim, dtype=torch.float32))
    finally:
        for h in hooks:
            h.remove()
    return sum(p.numel() for p in module.parameters()), max(sum(sizes), 1)


def make_members(cfg: Config, ks, n_seeds: int, dtype: torch.dtype) -> list[nn.Module]:
    """The initialized modules of members (k, s), in (set, seed) order."""
    return [_build(cfg, member_seed(cfg, k, s), dtype) for k in ks for s in range(n_seeds)]


class StackedModules:
    """Copies of a user's module as a :class:`~bvsim.train.loop.Trainer`: their
    parameters stacked member first (as ``stack_module_state`` does), the per-member
    gradients of the MSE loss from ``vmap(grad(functional_call(...)))``. Full batch.

    Arguments as :func:`train_modules`.
    """

    #: a zeroed copy of an arbitrary module may still have a gradient: the loop
    #: multiplies its updates by ``active``
    frozen_gradient_is_zero = False

    def __init__(self, spec: TrainSpec, modules, x, y, x_test, y_test, weight_decay, device):
        dt = spec.dtype
        self.members = m = len(modules)
        named = [dict(mod.named_parameters()) for mod in modules]
        stacked = {  # stacked copies (as stack_module_state, without copying modules)
            k: torch.stack([p[k].detach() for p in named]).to(device=device, dtype=dt)
            for k in named[0]
        }
        # a frozen parameter (requires_grad = False) keeps its initial value, as
        # torch.optim leaves a parameter without gradient: no step, no decay
        self.stacked = {k: v for k, v in stacked.items() if named[0][k].requires_grad}
        self.fixed = {k: v for k, v in stacked.items() if k not in self.stacked}
        self.args = (self.stacked, self.fixed)  # the first arguments of the functions
        self.params = list(self.stacked.values())
        base = copy.deepcopy(modules[0]).to("meta")

        def tensor(a):
            return torch.tensor(np.asarray(a), dtype=dt, device=device)

        self.xt, self.yt, self.xte, self.yte = tensor(x), tensor(y), tensor(x_test), tensor(y_test)

        def predict(p, fixed, xx):
            return functional_call(base, {**p, **fixed}, (xx,)).reshape(-1)

        def loss(p, fixed, xx, yy):
            return torch.mean(torch.square(predict(p, fixed, xx) - yy))

        self.grad_fn = vmap(grad(loss))
        self.loss_fn = vmap(loss)
        self.test_fn = vmap(loss, in_dims=(0, 0, None, 0))
        self.pred_fn = vmap(predict, in_dims=(0, 0, None))
        lam = tensor(weight_decay)
        self.decay = [  # an undecayed bias: lambda times 0
            lam.view(m, *([1] * (p.dim() - 1)))
            * (0.0 if (not spec.decay_bias and k.endswith("bias")) else 1.0)
            for k, p in self.stacked.items()
        ]

    def blocks(self, tensors):
        return list(tensors)

    def gradient(self, step, batch, bufs, momentum, active) -> None:
        if batch is not None:
            raise ValueError("a user module trains full batch")
        grads = self.grad_fn(*self.args, self.xt, self.yt)
        with torch.no_grad():
            for k, b in zip(self.stacked, bufs, strict=True):
                if momentum is None:
                    b.copy_(grads[k])
                else:
                    b.mul_(momentum).add_(grads[k])

    def evaluate(self, with_pred: bool):
        train = self.loss_fn(*self.args, self.xt, self.yt)
        test = self.test_fn(*self.args, self.xte, self.yte)
        pred = (self.pred_fn(*self.args, self.xte).double().cpu().numpy()
                if with_pred else None)  # fmt: skip
        return train, test, pred

    def freeze(self, idx) -> None:
        """Nothing besides the parameters: ``active`` freezes the updates."""

    def finish(self):
        m = self.members
        pred = self.pred_fn(*self.args, self.xte).double().cpu().numpy()
        train_error = self.loss_fn(*self.args, self.xt, self.yt).double().cpu().numpy()
        weights = [p for k, p in {**self.stacked, **self.fixed}.items() if not k.endswith("bias")]
        norm = torch.sqrt(sum(p.square().reshape(m, -1).sum(1) for p in weights))
        return pred, train_error, norm.double().cpu().numpy(), np.zeros((m, 0), dtype=np.float32)


def train_modules(
    spec: TrainSpec,
    modules: list[nn.Module],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    weight_decay: np.ndarray,
    device: str | torch.device = "cpu",
) -> EngineResult:
    """Train ``members`` copies at once (one module per member, already initialized)
    in the training loop of :mod:`bvsim.train.loop`.

    Parameters as :func:`bvsim.train.trainers.train_batched`; ``modules`` has one
    entry per member (the same object may appear for several members: it is copied).
    """
    device = torch.device(device)
    trainer = StackedModules(spec, modules, x, y, x_test, y_test, weight_decay, device)
    return TrainLoop(spec, trainer, device=device).run()
