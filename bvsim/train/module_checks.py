"""What a user's module (``model.kind = "module"``) must be for the stacked training
of :mod:`bvsim.train.module` to train it as written, checked once when the
configuration loads (:func:`check_module`): a module, of the right output, with
parameters to train, without what the stacked copies cannot carry (buffers, dropout,
gradient hooks, weight tying, tensor attributes, one shared object, TorchScript), and
one step of ``vmap(grad(functional_call))`` on two copies that runs."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ..config import Config, ConfigError
from .module import _GLOBAL_HOOKS, _HOOKS, _factory, _instance

__all__ = ["check_module"]


def _gradient_hooks(module: nn.Module) -> list[str]:
    """Where ``module`` has hooks on its gradients: module backward hooks (its own,
    its layers', torch's global ones) and hooks on parameter tensors."""
    found = [
        f"a backward hook on {repr(name) if name else 'the module'}"
        for name, m in module.named_modules()
        if any(getattr(m, n, None) for n in _HOOKS[2:])
    ]
    if any(getattr(nn.modules.module, n, None) for n in _GLOBAL_HOOKS[2:]):
        found.append("a global module backward hook")
    for name, p in module.named_parameters():
        if p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None):
            found.append(f"a hook on parameter {name!r}")
    return found


def check_module(cfg: Config, prefix: str = "") -> None:
    """Refuse, before any compute, a factory that does not give a usable module."""
    key = f"{prefix}model.module"
    if not cfg.model.module:
        raise ConfigError(f"{key}: model.kind = 'module' needs model.module = 'file.py:factory'")
    _factory(cfg)  # an import error names the file
    try:
        module = _instance(cfg)
    except Exception as err:
        raise ConfigError(
            f"{key} = {cfg.model.module!r}: calling it failed: {type(err).__name__}: {err} "
            "(the factory is called with no arguments)"
        ) from None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"{key} = {cfg.model.module!r}: returned {type(module).__name__}, "
                          "not a torch.nn.Module")  # fmt: skip
    buffers = [name for name, _ in module.named_buffers()]
    if buffers:
        raise ConfigError(
            f"{key} = {cfg.model.module!r}: has buffers ({', '.join(buffers)}), e.g. batch "
            "norm statistics, which the stacked training does not carry; use a module "
            "without buffers (LayerNorm instead of BatchNorm)"
        )
    if any(isinstance(m, nn.modules.dropout._DropoutNd) for m in module.modules()):
        raise ConfigError(
            f"{key} = {cfg.model.module!r}: has dropout layers; their masks would depend "
            "on the chunking: use model.kind = 'mlp' with model.dropout instead"
        )
    if not list(module.parameters()):
        raise ConfigError(f"{key} = {cfg.model.module!r}: the module has no parameters")
    problem = _structure_problem(module) or _copies_problem(cfg, module)
    if problem:
        raise ConfigError(f"{key} = {cfg.model.module!r}: {problem}")
    hooked = _gradient_hooks(module)
    if hooked:
        raise ConfigError(
            f"{key} = {cfg.model.module!r}: has gradient hooks ({', '.join(hooked)}), which "
            "the stacked training (torch.func) does not run; remove them"
        )
    if not any(p.requires_grad for p in module.parameters()):
        raise ConfigError(f"{key} = {cfg.model.module!r}: every parameter is frozen "
                          "(requires_grad = False): nothing would train")  # fmt: skip
    probe = torch.linspace(-1, 1, 7 * cfg.data.dim, dtype=torch.float64)
    try:
        out = module.to(torch.float64)(probe.reshape(7, cfg.data.dim))
    except Exception as err:
        raise ConfigError(
            f"{key} = {cfg.model.module!r}: forward on x of shape (7, {cfg.data.dim}) "
            f"failed: {type(err).__name__}: {err}"
        ) from None
    if not (isinstance(out, torch.Tensor) and out.is_floating_point() and out.requires_grad):
        got = type(out).__name__ if not isinstance(out, torch.Tensor) else f"dtype {out.dtype}"
        how = "" if not isinstance(out, torch.Tensor) or out.requires_grad else ", no gradient"
        raise ConfigError(
            f"{key} = {cfg.model.module!r}: the output ({got}{how}) must be a floating "
            "tensor that depends on the parameters (training follows its gradient)"
        )
    if tuple(out.shape) not in ((7,), (7, 1)):
        raise ConfigError(
            f"{key} = {cfg.model.module!r}: output shape {tuple(out.shape)} for x of shape "
            f"(7, {cfg.data.dim}); expected (7,) or (7, 1)"
        )
    problem = _func_problem(module, cfg.data.dim)
    if problem:
        raise ConfigError(f"{key} = {cfg.model.module!r}: {problem}")
    t = cfg.train
    if t.batch_size or t.solver != "gd" or cfg.model.dropout:
        raise ConfigError(
            f"{key}: a user module trains full batch (train.batch_size = 0), with "
            "train.solver = 'gd' and no model.dropout"
        )


def _structure_problem(module: nn.Module) -> str | None:
    """What the stacked training (one copy of the module's structure, each member's
    own parameters) cannot carry: a script module, one that cannot be copied, a layer
    or parameter used twice (weight tying: each use would train as its own), a tensor
    attribute that is neither parameter nor buffer (every member would share member
    0's)."""
    if isinstance(module, torch.jit.ScriptModule):
        return "a TorchScript module (torch.jit.script): give the plain nn.Module"
    try:
        copy.deepcopy(module)
    except Exception as err:
        return f"cannot be copied ({type(err).__name__}: {err}); old-style weight_norm?"
    n_params = len(list(module.named_parameters(remove_duplicate=False)))
    n_layers = len(list(module.named_modules(remove_duplicate=False)))
    if n_params != len(list(module.parameters())) or n_layers != len(list(module.modules())):
        return ("uses a layer or a parameter in two places (weight tying), which the "
                "stacked training would train as separate copies: not supported")  # fmt: skip
    for name, m in module.named_modules():
        held = [k for k, v in vars(m).items() if isinstance(v, torch.Tensor)]
        if held:
            where = f"{name}.{held[0]}" if name else held[0]
            return (f"holds the tensor {where!r}, neither a parameter nor a buffer: every "
                    "member would share the first member's; register it as a parameter "
                    "(requires_grad = False if fixed: each member then draws its own)")  # fmt: skip
    return None


def _copies_problem(cfg: Config, module: nn.Module) -> str | None:
    """A factory returning the same object on every call: every member would be one
    module (identical copies, a shared initialization)."""
    if _instance(cfg) is module:
        return ("returns the same module object on every call: each member needs its "
                "own (build it inside the factory)")  # fmt: skip
    return None


def _func_problem(module: nn.Module, dim: int) -> str | None:
    """One gradient of two stacked float64 copies through ``vmap(grad(functional_call))``
    on a probe batch, as :class:`bvsim.train.module.StackedModules` takes it: a forward
    that draws random numbers or changes ``requires_grad`` fails here, not in training."""
    named = dict(module.named_parameters())

    def two(p):
        return torch.stack([p.detach().to(torch.float64)] * 2)

    params = {k: two(p) for k, p in named.items() if p.requires_grad}
    fixed = {k: two(p) for k, p in named.items() if k not in params}
    base = copy.deepcopy(module).to("meta")
    x = torch.linspace(-1, 1, 7 * dim, dtype=torch.float64).reshape(7, dim)

    def loss(p, f):
        return torch.mean(torch.square(functional_call(base, {**p, **f}, (x,))))

    try:
        vmap(grad(loss))(params, fixed)
    except Exception as err:
        what = " ".join(f"{type(err).__name__}: {err}".split())[:240]
        return f"cannot be trained as stacked copies through torch.func ({what})"
    return None
