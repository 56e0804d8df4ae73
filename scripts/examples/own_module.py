"""Example: your own torch.nn.Module, many copies trained at once with torch.func.

python scripts/examples/own_module.py [--reps 20] [--steps 500] [--out DIR]
"""

import argparse

from torch import nn

import bvsim


def make_model():
    """Called once per member (under its own seed); x of shape (n, 1) -> (n, 1)."""
    return nn.Sequential(
        nn.Linear(1, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 1)
    )


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cfg = bvsim.load_config(
        preset="smoke",
        overrides=[
            "model.kind=module",
            f"model.module={__file__}:make_model",
            "train.optimizer=adam",
            "train.lr=0.01",
            f"train.steps={args.steps}",
            f"sweep.n_reps={args.reps}",
            "sweep.n_seeds=1",
            "sweep.weight_decay=[0, 0.001, 0.01, 0.1]",
        ],
    )
    result = bvsim.run_sweep(cfg, args.out, n_jobs=-1)
    print(result.summary[["weight_decay", "bias2", "variance", "expected_error", "test_error"]])
    return result


if __name__ == "__main__":
    main()
