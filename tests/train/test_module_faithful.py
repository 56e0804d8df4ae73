"""A user's module trains as written: what changes a call (its own ``forward``, hooks,
frozen parameters) keeps it out of the batched engine, and torch's default dtype
changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bvsim import ConfigError, load_config
from bvsim.data.generator import draw_training_sets, make_test_set
from bvsim.run.sweep import train_sweep
from bvsim.train.engine import TrainSpec
from bvsim.train.module import _build, batched_spec, member_seed
from bvsim.train.reference import fit_module

FIX = "tests/fixtures/user_code.py"
TINY = ["sweep.n_reps=2", "train.steps=20", "model.kind=module"]


def _cfg(factory, *extra):
    return load_config(preset="smoke", overrides=[*TINY, f"model.module={FIX}:{factory}", *extra])


def _pred(factory, *extra):
    return train_sweep(_cfg(factory, *extra), progress=False).pred


def _equals_reference(cfg, raw, k=1, s=0):
    """Member (k, s) at the largest weight decay equals the per-model torch.optim loop."""
    spec = TrainSpec.from_config(cfg)
    test = make_test_set(cfg)
    sets = draw_training_sets(cfg, test, [0, 1])
    w = len(cfg.sweep.weight_decay) - 1
    module = _build(cfg, member_seed(cfg, k, s), spec.dtype)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    pred, _ = fit_module(module, spec, sets.x[k], sets.y[k], test.x, cfg.sweep.weight_decay[w])
    np.testing.assert_allclose(raw.pred[w, k, s], pred, rtol=0, atol=1e-10)
    return before, dict(module.named_parameters())


@pytest.mark.parametrize(
    "factory",
    [
        "make_scaled_subclass",
        "make_forward_hooked",
        "make_layer_pre_hooked",
        "make_linear_subclass",
        "make_instance_forward",
    ],
)
def test_a_changed_stack_trains_as_written(factory):
    """A Sequential subclass with its own forward, forward hooks (container or layer),
    a Linear subclass, a forward set on an instance: ``auto`` trains them through
    torch.func, as written (it trained the plain stack instead, silently)."""
    assert batched_spec(_cfg("make_plain_stack")) is not None  # the control: the engine
    assert batched_spec(_cfg(factory)) is None
    auto, func = _pred(factory), _pred(factory, "model.module_trainer=func")
    np.testing.assert_array_equal(auto, func)
    assert np.isfinite(auto).all()
    assert np.abs(auto - _pred("make_plain_stack")).max() > 1e-3
    cfg = _cfg(factory, "train.dtype=float64")
    _equals_reference(cfg, train_sweep(cfg, progress=False))


def test_a_global_forward_hook_keeps_the_stack_out_of_the_engine():
    """torch's global module hooks run in every call torch.func makes, never in the
    engine."""
    handle = torch.nn.modules.module.register_module_forward_hook(lambda _m, _i, out: out)
    try:
        assert batched_spec(_cfg("make_plain_stack")) is None
    finally:
        handle.remove()
    assert batched_spec(_cfg("make_plain_stack")) is not None


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["train.penalty=decoupled"],
        ["train.optimizer=adam", "train.lr=0.01", "train.penalty=l1"],
    ],
)
def test_frozen_parameters_keep_their_initial_values(extra):
    """A parameter with requires_grad = False is neither stepped nor decayed, as
    torch.optim leaves it (both trainers; it was trained anyway)."""
    cfg = _cfg("make_frozen_first_layer", "train.dtype=float64", *extra)
    assert batched_spec(cfg) is None
    raw = train_sweep(cfg, progress=False)
    before, after = _equals_reference(cfg, raw)
    assert torch.equal(before["0.weight"], after["0.weight"])  # the reference froze it
    assert not torch.equal(before["0.bias"], after["0.bias"])  # and trained the rest
    func = _pred("make_frozen_first_layer", "train.dtype=float64", *extra,
                 "model.module_trainer=func")  # fmt: skip
    np.testing.assert_array_equal(raw.pred, func)
    plain = _pred("make_plain_stack", "train.dtype=float64", *extra)
    assert np.abs(raw.pred - plain).max() > 1e-3


@pytest.mark.parametrize(
    "factory, needle",
    [
        ("make_all_frozen", "every parameter is frozen"),
        ("make_backward_hooked", "a backward hook on '1'"),
        ("make_tensor_hooked", "a hook on parameter '0.weight'"),
        # the second hostile review: silently wrong numbers, or tracebacks after load
        ("make_tied_layer", "uses a layer or a parameter in two places (weight tying)"),
        ("make_tied_weight", "uses a layer or a parameter in two places (weight tying)"),
        ("make_random_features", "holds the tensor 'proj', neither a parameter nor a buffer"),
        ("make_shared", "returns the same module object on every call"),
        ("make_scripted", "a TorchScript module"),
        ("make_noisy", "cannot be trained as stacked copies through torch.func"),
        ("make_freezing_in_forward", "cannot be trained as stacked copies through torch.func"),
    ],
)
def test_what_torch_func_cannot_train_is_refused_at_load(factory, needle):
    with pytest.raises(ConfigError) as info:
        _cfg(factory)
    assert needle in str(info.value)


FLOAT64_AT_IMPORT = """
import torch
from torch import nn

torch.set_default_dtype(torch.float64)


def factory():
    return nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 1))
"""


@pytest.mark.parametrize(
    "over",
    [
        [f"model.module={FIX}:make_net"],  # torch.func
        [f"model.module={FIX}:make_relu_net"],  # the batched engine
        ["model.kind=mlp", "train.batch_size=8", "model.dropout=0.2"],
    ],
)
def test_torchs_default_dtype_changes_nothing(over):
    """torch.set_default_dtype(torch.float64) before a sweep: the same bytes (a module
    raised 'mat1 and mat2 must have the same dtype' when sized, and its copies drew
    other initial weights)."""
    cfg = load_config(preset="smoke", overrides=[*TINY, *over])
    alone = train_sweep(cfg, progress=False)
    torch.set_default_dtype(torch.float64)
    try:
        again = train_sweep(cfg, progress=False)
    finally:
        torch.set_default_dtype(torch.float32)
    np.testing.assert_array_equal(alone.pred, again.pred)
    np.testing.assert_array_equal(alone.train_error, again.train_error)


def test_a_module_file_that_sets_float64_at_import(tmp_path):
    """The file's own torch.set_default_dtype(torch.float64): the same numbers as
    make_net, the same network without it."""
    path = tmp_path / "f64.py"
    path.write_text(FLOAT64_AT_IMPORT)
    try:
        got = train_sweep(_cfg_file(f"{path}:factory"), progress=False).pred
    finally:
        torch.set_default_dtype(torch.float32)
    np.testing.assert_array_equal(got, _pred("make_net"))


def _cfg_file(spec):
    return load_config(preset="smoke", overrides=[*TINY, f"model.module={spec}"])
