"""A user's torch module trained with torch.func equals the per-model torch.optim loop."""

from __future__ import annotations

import numpy as np
import pytest

from bvsim import ConfigError, load_config, run_sweep
from bvsim.data.generator import draw_training_sets, make_test_set
from bvsim.run.sweep import train_sweep
from bvsim.train.engine import TrainSpec
from bvsim.train.module import _build, member_seed
from bvsim.train.reference import fit_module

FIX = "tests/fixtures/user_code.py"
BASE = [
    "model.kind=module",
    f"model.module={FIX}:make_net",
    "train.dtype=float64",
    "train.steps=80",
    "train.log_every=40",
    "sweep.n_reps=2",
    "sweep.n_seeds=2",
    "sweep.weight_decay=[0.0, 0.05]",
]


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["train.penalty=l1", "train.decay_bias=false"],
        ["train.optimizer=adam", "train.lr=0.01", "train.penalty=decoupled"],
        ["train.optimizer=adam", "train.lr=0.01"],
    ],
)
def test_vmap_equals_per_model_loop(extra):
    cfg = load_config(preset="smoke", overrides=[*BASE, *extra])
    raw = train_sweep(cfg, progress=False)
    spec = TrainSpec.from_config(cfg)
    test = make_test_set(cfg)
    sets = draw_training_sets(cfg, test, [0, 1])
    for w, lam in enumerate(cfg.sweep.weight_decay):
        for k in range(2):
            for s in range(2):
                module = _build(cfg, member_seed(cfg, k, s), spec.dtype)
                pred, train = fit_module(module, spec, sets.x[k], sets.y[k], test.x, lam)
                np.testing.assert_allclose(raw.pred[w, k, s], pred, rtol=0, atol=1e-10)
                assert raw.train_error[w, k, s] == pytest.approx(train, abs=1e-10)
    assert np.ptp(raw.pred[0, :, :, 0]) > 1e-3  # members differ


@pytest.mark.parametrize("extra", [[], ["train.optimizer=adam", "train.lr=0.01"]])
def test_plain_linear_stack_runs_in_the_engine_and_equals_torch_func(extra):
    """A Linear/ReLU Sequential is recognised and trained by the batched engine from
    the module's own initial weights: the same numbers as torch.func and as the
    per-model torch.optim loop (float64)."""
    from bvsim.train.module import batched_spec

    over = [*BASE, f"model.module={FIX}:make_relu_net", *extra]
    cfg = load_config(preset="smoke", overrides=over)
    assert batched_spec(cfg).shapes == ((1, 8), (8, 6), (6, 1))
    func = load_config(preset="smoke", overrides=[*over, "model.module_trainer=func"])
    assert batched_spec(func) is None
    engine, vmapped = train_sweep(cfg, progress=False), train_sweep(func, progress=False)
    np.testing.assert_allclose(engine.pred, vmapped.pred, rtol=0, atol=1e-10)
    np.testing.assert_allclose(engine.curve_test, vmapped.curve_test, rtol=0, atol=1e-10)
    spec = TrainSpec.from_config(cfg)
    test = make_test_set(cfg)
    sets = draw_training_sets(cfg, test, [0, 1])
    module = _build(cfg, member_seed(cfg, 1, 1), spec.dtype)
    pred, _ = fit_module(module, spec, sets.x[1], sets.y[1], test.x, 0.05)
    np.testing.assert_allclose(engine.pred[1, 1, 1], pred, rtol=0, atol=1e-10)


def test_module_chunks_are_sized_by_the_module():
    from bvsim.run.chunks import auto_chunk_size
    from bvsim.train.module import activations_per_point

    def cfg(*over):
        return load_config(preset="smoke", overrides=[*BASE[:1], *over, "sweep.n_reps=400"])

    small = cfg(f"model.module={FIX}:make_net")
    assert auto_chunk_size(small) > 400 // 8  # more than the old fixed eighth of the sets
    relu = cfg(f"model.module={FIX}:make_relu_net")  # sized as the engine sizes the same net
    mlp = load_config(preset="smoke", overrides=["model.hidden=[8, 6]", "sweep.n_reps=400"])
    assert auto_chunk_size(relu) == auto_chunk_size(mlp)
    cnn = cfg("data.dim=64", "data.test_design=sample", "data.truth=linear",
              f"model.module={FIX}:make_small_cnn")  # fmt: skip
    n_params, per_point = activations_per_point(cnn)
    assert n_params == 4 * 9 + 4 + 4 * 4 * 9 + 4 + 256 + 1
    members = auto_chunk_size(cnn) * len(cnn.sweep.weight_decay) * cnn.sweep.n_seeds
    assert members * max(cnn.data.n_train, cnn.data.n_test) * per_point <= 2**24  # bounded


def test_module_sweep_end_to_end(tmp_path):
    over = [*BASE[:2], "train.steps=100", "sweep.n_reps=4"]
    result = run_sweep(load_config(preset="smoke", overrides=over), tmp_path, progress=False)
    assert (tmp_path / "figures" / "decomposition.png").exists()
    assert result.summary["bias2"].notna().all()


@pytest.mark.parametrize(
    "factory, needle",
    [
        ("make_batchnorm_net", "has buffers"),
        ("make_dropout_net", "has dropout layers"),
        ("make_not_a_module", "not a torch.nn.Module"),
        ("make_wrong_output", "expected (7,) or (7, 1)"),
        ("make_integer_output", "must be a floating tensor that depends on the parameters"),
        ("nope", "has no attribute"),
    ],
)
def test_bad_modules_fail_at_load(factory, needle):
    with pytest.raises(ConfigError) as info:
        load_config(
            preset="smoke", overrides=["model.kind=module", f"model.module={FIX}:{factory}"]
        )
    assert needle in str(info.value)


def test_a_half_precision_module_loads_and_is_sized():
    """A float16 factory: its size is taken in float32 (it raised 'Float and Half')."""
    from bvsim.train.module import activations_per_point

    cfg = load_config(
        preset="smoke", overrides=["model.kind=module", f"model.module={FIX}:make_half_net"]
    )
    n_params, per_point = activations_per_point(cfg)
    assert n_params == 1 * 8 + 8 + 8 * 1 + 1 and per_point >= 8
