"""The Gram form of linear gradient descent equals the per-model torch.optim loop and
the plain kernel (float64), in both its primal (p <= n + 1) and dual (p > n + 1)
coordinates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from bvsim import load_config
from bvsim.config.moot import GD_SOLVER_KEYS
from bvsim.run.sweep import train_sweep
from bvsim.train.engine import TrainSpec
from bvsim.train.gram import GramLinear, gram_applies
from bvsim.train.trainers import train_batched
from tests.conftest import chunk_inputs
from tests.train.test_engine import _run_both

LINEAR = [
    "model.kind=linear",
    "model.bias=false",
    "data.x_dist=gaussian",
    "data.test_design=sample",
    "data.truth=linear",
    "data.n_train=9",
    "data.n_test=7",
    "train.dtype=float64",
    "train.steps=150",
    "train.log_every=50",
    "train.lr=0.02",
    "sweep.weight_decay=[0.0, 0.05, 0.5]",
]

CASES = {  # name: (overrides, dual)
    "dual": (["data.dim=20"], True),
    "dual-bias": (["data.dim=20", "model.bias=true"], True),
    "dual-no-momentum": (["data.dim=20", "train.momentum=0.0", "train.lr=0.05"], True),
    # the smallest dual: p = dim + bias = 11 = n + 2
    "dual-smallest-bias": (["data.dim=10", "model.bias=true"], True),
    "dual-decoupled": (["data.dim=20", "train.penalty=decoupled"], True),
    "primal": (["data.dim=6"], False),
    "primal-no-momentum": (["data.dim=6", "train.momentum=0.0", "train.lr=0.05"], False),
    "primal-fixed-design": (["data.dim=6", "data.train_design=fixed"], False),
    "primal-decoupled-bias": (["data.dim=6", "train.penalty=decoupled", "model.bias=true"], False),
    "square-dim-n-plus-1": (["data.dim=10"], False),
}


def _cfg(case):
    return load_config(preset="smoke", overrides=LINEAR + CASES[case][0])


@pytest.mark.parametrize("case", list(CASES))
def test_gram_equals_torch_optim_loop(case):
    cfg = _cfg(case)
    inp = chunk_inputs(cfg)
    inp.pop("meta")
    spec = inp["spec"]
    assert gram_applies(spec, minibatch=False)
    trainer = GramLinear(spec, inp["x"], inp["y"], inp["x_test"], inp["y_test"],
                         inp["weight_decay"], inp["init"], "cpu")  # fmt: skip
    assert (trainer.basis is not None) == CASES[case][1]
    res, ref_pred, ref_train = _run_both(cfg)
    assert not res.diverged.any()
    np.testing.assert_allclose(res.pred, ref_pred, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.train_error, ref_train, rtol=0, atol=1e-10)
    assert np.ptp(res.pred[:, 0]) > 1e-3  # members differ: not vacuous


@pytest.mark.parametrize("case", ["dual-bias", "primal-decoupled-bias"])
def test_gram_equals_plain_kernel_everywhere(case):
    """Curves, weight norms, parameters and per-step predictions agree too."""
    inp = chunk_inputs(_cfg(case))
    inp.pop("meta")
    inp["spec"] = dataclasses.replace(inp["spec"], decompose_steps=True)
    fast, plain = train_batched(**inp), train_batched(**inp, gram=False)
    for name in ("pred", "train_error", "weight_norm", "curve_train", "curve_test",
                 "pred_steps"):  # fmt: skip
        np.testing.assert_allclose(getattr(fast, name), getattr(plain, name), rtol=0,
                                   atol=1e-10, err_msg=name)  # fmt: skip
    np.testing.assert_allclose(fast.params, plain.params, rtol=0, atol=1e-6)  # float32


@pytest.mark.parametrize("dim", [20, 6])
def test_gram_float32_differs_from_the_plain_kernel_by_rounding(dim):
    """In float32 both paths round differently; both stay within float32 rounding of
    the float64 answer, and of each other."""
    over = [*LINEAR, f"data.dim={dim}"]
    inp64 = chunk_inputs(load_config(preset="smoke", overrides=over))
    inp32 = chunk_inputs(load_config(preset="smoke", overrides=[*over, "train.dtype=float32"]))
    inp64.pop("meta"), inp32.pop("meta")
    exact = train_batched(**inp64).pred
    gram, plain = train_batched(**inp32).pred, train_batched(**inp32, gram=False).pred
    scale = np.abs(exact).max()
    assert np.abs(gram - exact).max() < 1e-5 * scale
    assert np.abs(plain - exact).max() < 1e-5 * scale
    assert np.abs(gram - plain).max() < 1e-5 * scale


@pytest.mark.parametrize("case", ["dual", "primal"])
def test_gram_diverging_member_is_frozen_and_isolated(case):
    """lr x lambda past the stability limit 2 (1 + momentum) for the largest lambda."""
    over = [*LINEAR, *CASES[case][0], "sweep.weight_decay=[0.0, 0.05, 300.0]",
            "train.log_every=10"]  # fmt: skip
    cfg = load_config(preset="smoke", overrides=over)
    inp = chunk_inputs(cfg)
    inp.pop("meta")
    res = train_batched(**inp)
    assert res.diverged.any(), "the test needs at least one diverging member"
    assert np.isnan(res.pred[res.diverged]).all()
    assert np.isnan(res.curve_train[res.diverged, -1]).all()
    keep = np.flatnonzero(~res.diverged)
    assert keep.size
    alone = train_batched(**{k: (v[keep] if k not in ("spec", "x_test") and v is not None
                                  else v) for k, v in inp.items()})  # fmt: skip
    np.testing.assert_allclose(alone.pred, res.pred[keep], rtol=0, atol=1e-12)
    plain = train_batched(**inp, gram=False)
    np.testing.assert_array_equal(plain.diverged, res.diverged)
    np.testing.assert_array_equal(plain.diverged_step, res.diverged_step)
    assert (res.params[res.diverged] == 0).all()  # frozen at zero, as the plain kernel
    np.testing.assert_array_equal(plain.params[plain.diverged], res.params[res.diverged])


def make_linear_module():
    """A user's linear model (20 inputs, no bias) as ``model.module``."""
    return torch.nn.Sequential(torch.nn.Linear(20, 1, bias=False))


def test_a_users_linear_module_runs_in_the_gram_form():
    """``model.kind = "module"`` with one Linear layer: the engine's Gram form, equal to
    the same model through torch.func (which never uses it)."""
    linear = [k for k in LINEAR if k != "model.bias=false"]  # the module's own: none
    module = [*linear, "data.dim=20", "sweep.n_reps=2", "model.kind=module",
              f"model.module={Path(__file__).resolve()}:make_linear_module"]  # fmt: skip
    auto = train_sweep(load_config(preset="smoke", overrides=module), progress=False)
    func = train_sweep(
        load_config(preset="smoke", overrides=[*module, "model.module_trainer=func"]),
        progress=False,
    )
    np.testing.assert_allclose(auto.pred, func.pred, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "over",
    [
        ["train.penalty=l1"],
        ["train.optimizer=adam"],
        ["model.bias=true", "train.decay_bias=false"],
        ["train.solver=closed_form"],
        ["model.kind=mlp", "model.hidden=[4]"],
    ],
)
def test_gram_does_not_apply(over):
    base = LINEAR
    if "train.solver=closed_form" in over:  # the loop's keys are refused there
        base = [o for o in LINEAR if o.split("=")[0] not in GD_SOLVER_KEYS]
    spec = TrainSpec.from_config(load_config(preset="smoke", overrides=[*base, *over]))
    assert not gram_applies(spec, minibatch=False)


def test_gram_does_not_apply_to_minibatches_or_classes():
    spec = TrainSpec.from_config(load_config(preset="smoke", overrides=LINEAR))
    assert gram_applies(spec, minibatch=False)
    assert not gram_applies(spec, minibatch=True)
    assert not gram_applies(dataclasses.replace(spec, loss="cross_entropy"), minibatch=False)
