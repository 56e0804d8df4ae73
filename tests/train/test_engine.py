"""The batched engine equals a plain one-model-at-a-time torch.optim loop (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bvsim import load_config
from bvsim.train.devices import device_type_of, resolve_device, resolve_devices, setup_process
from bvsim.train.engine import TrainSpec
from bvsim.train.reference import train_one
from bvsim.train.trainers import train_batched
from tests.conftest import chunk_inputs

BASE = [
    "train.dtype=float64",
    "train.steps=120",
    "train.log_every=40",
    "data.n_train=9",
    "data.n_test=7",
    "model.hidden=[12, 8]",
    "sweep.weight_decay=[0.0, 0.05, 0.5]",
]

CASES = {
    "sgd-momentum": ["train.optimizer=sgd", "train.momentum=0.9"],
    "sgd-plain": ["train.optimizer=sgd", "train.momentum=0.0", "train.lr=0.1"],
    "sgd-no-bias-decay": ["train.decay_bias=false"],
    "sgd-minibatch": ["train.batch_size=4"],
    "sgd-tanh": ["model.activation=tanh"],
    "adam": ["train.optimizer=adam", "train.lr=0.01"],
    "adam-no-bias-decay-minibatch": [
        "train.optimizer=adam",
        "train.lr=0.01",
        "train.decay_bias=false",
        "train.batch_size=3",
    ],
    "linear-no-bias": [
        "model.kind=linear",
        "model.bias=false",
        "data.dim=3",
        "data.x_dist=gaussian",
        "data.test_design=sample",
        "data.truth=linear",
    ],  # fmt: skip
    "linear-bias": [
        "model.kind=linear",
        "data.dim=5",
        "data.x_dist=gaussian",
        "data.test_design=sample",
        "data.truth=linear",
    ],  # fmt: skip
    "linear-adam-minibatch": [
        "model.kind=linear",
        "data.dim=5",
        "data.x_dist=gaussian",
        "data.test_design=sample",
        "data.truth=linear",
        "train.optimizer=adam",
        "train.lr=0.01",
        "train.batch_size=4",
    ],  # fmt: skip
    "mlp-no-bias": ["model.bias=false"],
    "sgd-l1": ["train.penalty=l1"],
    "sgd-l1-no-bias-decay": ["train.penalty=l1", "train.decay_bias=false"],
    "sgd-decoupled": ["train.penalty=decoupled"],
    "adamw": ["train.optimizer=adam", "train.lr=0.01", "train.penalty=decoupled"],
    "dropout-relu": ["model.dropout=0.3"],
    "dropout-tanh-minibatch": [
        "model.dropout=0.5",
        "model.activation=tanh",
        "train.batch_size=4",
        "train.lr=0.01",
    ],
    "dropout-adamw": [
        "model.dropout=0.2",
        "train.optimizer=adam",
        "train.lr=0.01",
        "train.penalty=decoupled",
    ],  # fmt: skip
    "cross-entropy-3-classes": [
        "data.truth=gaussians",
        "data.n_classes=3",
        "data.dim=2",
        "data.test_design=sample",
    ],
    "cross-entropy-adamw-minibatch": [
        "data.truth=gaussians",
        "train.optimizer=adam",
        "train.lr=0.01",
        "train.penalty=decoupled",
        "train.batch_size=4",
        "data.test_design=sample",
    ],
    "adam-l1-no-bias-decay": [
        "train.optimizer=adam",
        "train.lr=0.01",
        "train.penalty=l1",
        "train.decay_bias=false",
    ],
}


def _run_both(cfg):
    inp = chunk_inputs(cfg)
    meta = inp.pop("meta")
    res = train_batched(**inp)
    ref_pred, ref_train = [], []
    for i, (wd, _, _) in enumerate(meta):
        pred, train = train_one(
            inp["spec"],
            inp["x"][i],
            inp["y"][i],
            inp["x_test"],
            float(wd),
            inp["init"][i],
            None if inp["schedule"] is None else inp["schedule"][i],
            None if inp["dropout_keys"] is None else int(inp["dropout_keys"][i]),
        )
        ref_pred.append(pred)
        ref_train.append(train)
    return res, np.array(ref_pred), np.array(ref_train)


@pytest.mark.parametrize("case", list(CASES))
def test_batched_equals_torch_optim_loop(case):
    base = BASE
    if "model.kind=linear" in CASES[case]:  # model.hidden has no effect there: refused
        base = [a for a in BASE if not a.startswith("model.hidden=")]
    cfg = load_config(preset="smoke", overrides=base + CASES[case])
    res, ref_pred, ref_train = _run_both(cfg)
    assert not res.diverged.any()
    np.testing.assert_allclose(res.pred, ref_pred, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.train_error, ref_train, rtol=0, atol=1e-10)
    # members differ: the comparison is not vacuous
    assert np.ptp(res.pred[:, 0]) > 1e-3


def test_float32_close_to_float64():
    cfg64 = load_config(preset="smoke", overrides=BASE)
    cfg32 = load_config(preset="smoke", overrides=[*BASE, "train.dtype=float32"])
    r64 = train_batched(**{k: v for k, v in chunk_inputs(cfg64).items() if k != "meta"})
    r32 = train_batched(**{k: v for k, v in chunk_inputs(cfg32).items() if k != "meta"})
    np.testing.assert_allclose(r32.pred, r64.pred, atol=1e-4)


def test_diverging_member_is_frozen_and_isolated():
    """lr so large that the undecayed members blow up; the others must not notice."""
    over = [*BASE, "train.lr=0.6", "train.momentum=0.9", "train.log_every=10"]
    cfg = load_config(preset="smoke", overrides=over)
    inp = chunk_inputs(cfg)
    meta = inp.pop("meta")
    res = train_batched(**inp)
    assert res.diverged.any(), "the test needs at least one diverging member"
    assert np.isnan(res.pred[res.diverged]).all()
    assert np.isnan(res.train_error[res.diverged]).all()
    assert (res.diverged_step[res.diverged] > 0).all()
    # a member trained alone gives the same answer as inside the diverging batch
    keep = np.flatnonzero(~res.diverged)
    assert keep.size
    alone = train_batched(**{k: (v[keep] if k not in ("spec", "x_test") and v is not None
                                  else v) for k, v in inp.items()})  # fmt: skip
    # (batch composition may change the last bits of a bmm, nothing more)
    np.testing.assert_allclose(alone.pred, res.pred[keep], rtol=0, atol=1e-12)
    assert len(meta) == res.pred.shape[0]


def test_dropout_keep_probability_is_one_device_tensor(monkeypatch):
    """The batched kernel builds its keep probability once as a tensor (on a GPU a
    float would be a host-to-device copy every step and layer), with the masks of the
    float: the same bits."""
    import bvsim.train.mlp as mlp

    masks, seen = mlp.dropout_masks, []

    def spy(keys, step, layer, n, width, keep, device, dtype):
        seen.append(keep)
        mask = masks(keys, step, layer, n, width, keep, device, dtype)
        assert torch.equal(mask, masks(keys, step, layer, n, width, 0.7, device, dtype))
        return mask

    monkeypatch.setattr(mlp, "dropout_masks", spy)
    cfg = load_config(preset="smoke", overrides=[*BASE, "model.dropout=0.3", "train.steps=5"])
    inp = chunk_inputs(cfg)
    inp.pop("meta")
    train_batched(**inp)
    assert len(seen) == 5 * 2  # every step, both hidden layers
    assert all(k is seen[0] for k in seen)
    assert isinstance(seen[0], torch.Tensor) and seen[0].dtype == torch.float64


def test_curves_logged_at_steps():
    cfg = load_config(preset="smoke", overrides=BASE)
    inp = chunk_inputs(cfg)
    inp.pop("meta")
    res = train_batched(**inp)
    assert list(res.log_steps) == [0, 40, 80, 120]
    assert np.isfinite(res.curve_train).all()
    np.testing.assert_allclose(res.curve_train[:, -1], res.train_error, rtol=1e-12)
    # training reduces the training loss of the unregularized members
    assert (res.curve_train[:, -1] < res.curve_train[:, 0]).mean() > 0.5


def test_flops_count_matches_layers():
    spec = TrainSpec.from_config(load_config(preset="seed-demo"))
    n = 10
    fwd = 2 * n * (1 * 200 + 200 * 200 + 200 * 200 + 200 * 1)
    assert spec.flops_per_step(n) == 3 * fwd - 2 * n * 200


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="expected cpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match=r"^--devices 'tpu': expected cpu"):
        resolve_devices(["cpu", "tpu"])  # the option is named
    assert resolve_devices(["cpu", "cpu"]) == ["cpu", "cpu"]
    assert [device_type_of(d) for d in ("cpu", "cuda", "cuda:1", torch.device("cuda:0"))] == [
        "cpu",
        "cuda",
        "cuda",
        "cuda",
    ]


@pytest.fixture
def cuda_flags():
    """The CUDA numerics flags, restored after the test (they are process-wide)."""
    cudnn = torch.backends.cudnn
    flags = [(torch.backends.cuda.matmul, "fp32_precision"), (cudnn, "deterministic")]
    flags += [(getattr(cudnn, op), "fp32_precision") for op in ("conv", "rnn")]
    flags += [(torch.backends.mkldnn.matmul, "fp32_precision")]
    legacy = torch.get_float32_matmul_precision()
    saved = [(obj, name, getattr(obj, name)) for obj, name in flags]
    yield
    torch.set_float32_matmul_precision(legacy)  # sets the cuda and CPU matmul flags too
    for obj, name, value in saved:
        setattr(obj, name, value)


def test_cuda_setup_pins_ieee_float32(cuda_flags):
    """A CUDA device gets IEEE float32 matmuls and cuDNN convolutions (no TF32) and
    deterministic cuDNN, through the new precision API only; the flags need no GPU."""
    cudnn = torch.backends.cudnn
    cudnn.conv.fp32_precision, cudnn.deterministic = "tf32", False  # torch's defaults
    setup_process(1, "cpu")  # the CPU leaves them as they are
    assert cudnn.conv.fp32_precision == "tf32" and not cudnn.deterministic
    setup_process(1, "cuda:0")
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert torch.get_float32_matmul_precision() == "highest"
    assert cudnn.conv.fp32_precision == "ieee" and cudnn.rnn.fp32_precision == "ieee"
    assert cudnn.deterministic
    assert not torch.are_deterministic_algorithms_enabled()


def test_cuda_setup_undoes_a_lowered_legacy_matmul_precision(cuda_flags, monkeypatch):
    """A process that asked for TF32 through the legacy setter gets "highest" back:
    with the new flag at ieee alone, every cuBLAS float32 matmul would raise (the two
    APIs disagree); a TF32 override in the environment is warned about."""
    torch.set_float32_matmul_precision("high")
    monkeypatch.setenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1")
    with pytest.warns(RuntimeWarning, match="TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1"):
        setup_process(1, "cuda")
    assert torch.get_float32_matmul_precision() == "highest"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu_float64():
    cfg = load_config(preset="smoke", overrides=BASE)
    inp = chunk_inputs(cfg)
    inp.pop("meta")
    cpu = train_batched(**inp, device="cpu")
    gpu = train_batched(**inp, device="cuda")
    np.testing.assert_allclose(gpu.pred, cpu.pred, rtol=0, atol=1e-9)
