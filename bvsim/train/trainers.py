"""Which trainer trains a ``model.kind``, how large one of its members is, and which
user code it runs (checked before compute, part of the resume key): the one place the
kind is dispatched (:data:`KINDS`), and the one place that decides how the built-in
models' members are trained (:func:`train_batched`: closed-form ridge, the Gram form or
the MLP kernel).

Every trainer takes the members of some training sets as
:func:`bvsim.run.chunks.members_of` lays them out (``x``, ``y``, ``x_test``,
``y_test``, ``weight_decay``, one row per member), the training sets ``ks``, each
member's row ``a`` among the sets and ``s`` among the seeds, and returns an
:class:`~bvsim.train.engine.EngineResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..config import Config
from .engine import (
    EngineResult,
    ParamLayout,
    TrainSpec,
    batch_schedule,
    dropout_keys,
    init_params,
)
from .gram import GramLinear, gram_applies
from .loop import TrainLoop
from .mlp import BatchedMLP
from .module import (
    activations_per_point,
    batched_note,
    batched_spec,
    make_members,
    pack_members,
    train_modules,
)
from .module_checks import check_module
from .ridge import solve_ridge
from .sklearn import check_estimator, fit_estimators, random_states

__all__ = [
    "KINDS",
    "Kind",
    "ModelSizes",
    "check_kind",
    "kind_note",
    "model_sizes",
    "seed_tree_members",
    "train_batched",
    "train_members",
    "user_code",
]


@dataclass(frozen=True)
class ModelSizes:
    """What one member of a ``model.kind`` holds, per input point where it grows with
    the points: what chunks are sized by (:func:`bvsim.run.chunks.auto_chunk_size`) and
    what the memory check counts (:func:`bvsim.run.memory.memory_estimate`).
    They depend on the ``model`` section, ``data.dim`` and the task's outputs only.

    Attributes
    ----------
    n_params : int
        Parameters of one member (biases only where the model has them).
    widths : int
        Activation values per point that a training step holds for its backward pass
        (every layer's output).
    width : int
        Activation values per point that a forward pass without gradients holds at
        once: the widest layer for the batched MLP (one layer at a time); all of
        ``widths`` for a user's module, whose graph is not known.
    in_torch : bool
        Trained as one batched torch program. False for a scikit-learn estimator:
        one ``fit`` per member in numpy, whose own memory (a fitted forest, a kernel
        matrix) is not known, so it is not estimated; only the data and outputs are.
    key : str or None
        The configuration key that sizes the model, which a memory message may ask
        to lower (``model.hidden``, ``model.module``); None when the user has none.
    fixes_dim : bool
        The model fixes the inputs' dimension (a user's module takes ``data.dim``
        columns), so ``data.dim`` is no key to lower.
    """

    n_params: int
    widths: int
    width: int
    in_torch: bool = True
    key: str | None = None
    fixes_dim: bool = False


def seed_tree_members(cfg: Config, spec: TrainSpec, ks, a: np.ndarray, s: np.ndarray) -> dict:
    """The batched MLP's per-member extras for training sets ``ks`` (rows ``a`` of the
    sets, ``s`` of the seeds): packed initial parameters, minibatch orders and dropout
    streams, all from the seed tree."""
    n_sets, n_seeds = len(ks), cfg.sweep.n_seeds
    drawn = init_params(cfg, ks, n_seeds)
    init = ParamLayout(spec).pack([p.reshape(n_sets * n_seeds, *p.shape[2:]) for p in drawn])
    init = init.reshape(n_sets, n_seeds, -1)
    sched = batch_schedule(cfg, ks, n_seeds)
    dkeys = dropout_keys(cfg, ks, n_seeds) if spec.dropout > 0 else None
    return {
        "init": init[a, s],
        "schedule": None if sched is None else sched[a, s],
        "dropout_keys": None if dkeys is None else dkeys[a, s],
    }


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
    gram: bool = True,
) -> EngineResult:
    """Train ``members`` built-in models at once and evaluate them: closed-form ridge
    when ``spec.solver`` says so, a linear model under full-batch SGD in its Gram form
    (:mod:`bvsim.train.gram`) where that applies, else the MLP kernel
    (:class:`~bvsim.train.mlp.BatchedMLP`) in the training loop. The trainer of
    ``mlp`` and ``linear``, and of a ``module`` that is a stack of Linear layers.

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
        Each member's penalty coefficient lambda (``spec.penalty``; l2 is
        ``torch.optim``'s ``weight_decay``).
    init : ndarray of shape (members, n_params)
        Initial parameters, packed as :meth:`~bvsim.train.engine.ParamLayout.pack`
        does.
    schedule : ndarray of shape (members, n_epochs, n_train), optional
        Minibatch orders (see :func:`bvsim.train.engine.batch_schedule`); None for
        full batch.
    device : str or torch.device
    dropout_keys : ndarray of int64, shape (members,), optional
        Each member's dropout stream (see :func:`bvsim.train.mlp.dropout_masks`);
        needed when ``spec.dropout > 0``.
    gram : bool
        Use the Gram form where it applies (False: the MLP kernel, for comparisons).

    Returns
    -------
    EngineResult
    """
    device = torch.device(device)
    if spec.solver == "closed_form":
        return solve_ridge(spec, x, y, x_test, y_test, weight_decay, device)
    if gram and gram_applies(spec, schedule is not None):
        trainer = GramLinear(spec, x, y, x_test, y_test, weight_decay, init, device)
        return TrainLoop(spec, trainer, None, device).run()
    mlp = BatchedMLP(spec, x, y, x_test, y_test, weight_decay, init,
                     schedule is not None, device, dropout_keys)  # fmt: skip
    return TrainLoop(spec, mlp, schedule, device).run()


def _train_mlp(cfg, spec, members, ks, a, s, device) -> EngineResult:
    """``mlp`` and ``linear``: :func:`train_batched` from the seed tree's initial
    parameters, minibatch orders and dropout streams."""
    extras = seed_tree_members(cfg, spec, ks, a, s)
    return train_batched(spec, **members, **extras, device=device)


def _train_module(cfg, spec, members, ks, a, s, device) -> EngineResult:
    """``module``: a stack of Linear layers runs in the batched MLP from the module's
    own initial weights; any other module through ``torch.func``."""
    n_seeds = cfg.sweep.n_seeds
    modules = make_members(cfg, ks, n_seeds, spec.dtype)
    plain = batched_spec(cfg)
    if plain is not None:
        init = pack_members(modules).reshape(len(ks), n_seeds, -1)[a, s]
        res = train_batched(plain, **members, init=init, device=device)
        res.params = np.zeros((len(a), 0), dtype=np.float32)  # no weight histograms
        return res
    chosen = [modules[i * n_seeds + j] for i, j in zip(a, s, strict=True)]
    return train_modules(spec, chosen, **members, device=device)


def _train_sklearn(cfg, spec, members, ks, a, s, device) -> EngineResult:
    """``sklearn``: one fit per member on the CPU, seeded from the seed tree."""
    return fit_estimators(cfg, **members, seeds=random_states(cfg, ks, cfg.sweep.n_seeds)[a, s])


def _mlp_sizes(cfg: Config) -> ModelSizes:
    """``mlp`` and ``linear``: the layers of :class:`~bvsim.train.engine.TrainSpec`."""
    spec = TrainSpec.from_config(cfg)
    outs = [fan_out for _, fan_out in spec.shapes]
    key = "model.hidden" if cfg.model.kind == "mlp" else None
    return ModelSizes(spec.n_params, sum(outs), max(outs), key=key)


def _module_sizes(cfg: Config) -> ModelSizes:
    """``module``: one copy of the module, run on one point, tells its size."""
    n_params, per_point = activations_per_point(cfg)
    return ModelSizes(n_params, per_point, per_point, key="model.module", fixes_dim=True)


def _sklearn_sizes(cfg: Config) -> ModelSizes:
    """``sklearn``: nothing in torch; the estimator's own memory is not known."""
    return ModelSizes(0, 0, 0, in_torch=False)


@dataclass(frozen=True)
class Kind:
    """What the rest of the package asks of a ``model.kind``: its trainer, its size
    (which also decides how its chunks are sized: :attr:`ModelSizes.in_torch`), and
    the user's code it runs, if any."""

    #: trains the members of some training sets (arguments as :func:`train_members`)
    train: Callable[..., EngineResult]
    #: the size of one member (:class:`ModelSizes`)
    sizes: Callable[[Config], ModelSizes]
    #: the ``model`` key naming the user's code it runs (``module``, ``estimator``),
    #: whose source the resume key includes; None: bvsim's own code only
    code_key: str | None = None
    #: checks that user code before any compute (``check(cfg, prefix)``, raising
    #: ConfigError)
    check: Callable[[Config, str], None] | None = None
    #: a line to tell the user before training, or None (``note(cfg)``)
    note: Callable[[Config], str | None] | None = None


#: ``model.kind`` -> its trainer, sizes and user code.
KINDS: dict[str, Kind] = {
    "mlp": Kind(_train_mlp, _mlp_sizes),
    "linear": Kind(_train_mlp, _mlp_sizes),
    "module": Kind(_train_module, _module_sizes, "module", check_module, batched_note),
    "sklearn": Kind(_train_sklearn, _sklearn_sizes, "estimator", check_estimator),
}


def model_sizes(cfg: Config) -> ModelSizes:
    """The size of one member of ``cfg.model.kind`` (:class:`ModelSizes`)."""
    return KINDS[cfg.model.kind].sizes(cfg)


def user_code(cfg: Config) -> tuple[str, str] | None:
    """The user's code ``cfg.model.kind`` runs: its key (``model.module``,
    ``model.estimator``) and the spec there; None for bvsim's own models or where the
    key is unset."""
    name = KINDS[cfg.model.kind].code_key
    spec = getattr(cfg.model, name) if name else None
    return (f"model.{name}", spec) if spec else None


def check_kind(cfg: Config, prefix: str = "") -> None:
    """Check the user's code of ``cfg.model.kind`` before any compute (a no-op for
    bvsim's own models)."""
    check = KINDS[cfg.model.kind].check
    if check is not None:
        check(cfg, prefix)


def kind_note(cfg: Config) -> str | None:
    """What to tell the user about how ``cfg.model.kind`` will train, or None."""
    note = KINDS[cfg.model.kind].note
    return note(cfg) if note is not None else None


def train_members(
    cfg: Config, members: dict, ks, a: np.ndarray, s: np.ndarray, device
) -> EngineResult:
    """Train the members of training sets ``ks`` with the trainer of ``cfg.model.kind``."""
    spec = TrainSpec.from_config(cfg)
    return KINDS[cfg.model.kind].train(cfg, spec, members, ks, a, s, device)
