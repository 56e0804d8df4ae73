"""How far float32 training in the Gram form (:mod:`bvsim.train.gram`) and with the
plain kernel each land from float64, for linear models from nearly square (p = n + 2,
where ``X X^T`` is ill-conditioned) to wide (p = 4 n).

Run: ``python scripts/gram_precision.py``. Prints, per shape, the largest difference of
the test predictions from the float64 run, relative to the largest prediction; the two
float64 paths agree to about 1e-14 (their difference is printed too).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bvsim import load_config
from bvsim.train.devices import setup_process
from bvsim.train.engine import TrainSpec
from bvsim.train.trainers import train_batched

sys.path.insert(0, str(Path(__file__).parent))
from bench import members  # noqa: E402

BASE = ["data.n_train=50", "data.n_test=100", "data.train_design=random",
        "sweep.weight_decay=[0.0, 0.001, 0.1]", "train.log_every=500"]  # fmt: skip
#: (features p, steps, learning rate): n = 50 training points each
SHAPES = [(52, 2000, 0.01), (52, 5000, 0.02), (100, 500, 0.005), (200, 3000, 0.002)]


def _error(pred: np.ndarray, exact: np.ndarray) -> float:
    return float(np.abs(pred - exact).max() / np.abs(exact).max())


def main() -> int:
    setup_process(1)
    print("   p  steps     lr   Gram f32  plain f32  Gram vs plain, f64")
    for p, steps, lr in SHAPES:
        over = [*BASE, f"data.dim={p}", f"train.steps={steps}", f"train.lr={lr}"]
        cfg64 = load_config(preset="linear", overrides=[*over, "train.dtype=float64"])
        spec64, inp = members(cfg64, 12)
        spec32 = TrainSpec.from_config(load_config(preset="linear", overrides=over))
        exact = train_batched(spec64, **inp).pred
        gram = _error(train_batched(spec32, **inp).pred, exact)
        plain = _error(train_batched(spec32, **inp, gram=False).pred, exact)
        both64 = _error(train_batched(spec64, **inp, gram=False).pred, exact)
        print(f"{p:4d} {steps:6d} {lr:6.3f}  {gram:9.1e}  {plain:9.1e}  {both64:9.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
