"""Example: your own truth function f(x), with bvsim's MLP, noise and decomposition.

python scripts/examples/own_truth.py [--reps 30] [--steps 1000] [--out DIR]
"""

import argparse

import numpy as np

import bvsim


def truth(x):
    """f(x) for x of shape (n, dim); returns shape (n,)."""
    return np.abs(x[:, 0]) - 0.5


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    cfg = bvsim.load_config(
        preset="smoke",
        overrides=[
            f"data.truth={__file__}:truth",  # a file path and a function name
            f"sweep.n_reps={args.reps}",
            f"train.steps={args.steps}",
            "sweep.weight_decay=[0, 0.001, 0.01, 0.1]",
        ],
    )
    result = bvsim.run_sweep(cfg, args.out, n_jobs=-1)
    print(result.summary[["weight_decay", "bias2", "bias2_se", "variance", "variance_se"]])
    return result


if __name__ == "__main__":
    main()
