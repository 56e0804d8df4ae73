"""Example: scikit-learn estimators through the same sweep, side by side.

Decomposes a ridge regression on polynomial features (its alpha swept) and a decision
tree (its cost-complexity pruning ccp_alpha swept) on the same sine problem.

    python scripts/examples/sklearn_estimator.py [--reps 50] [--out DIR]
"""

import argparse

import bvsim


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    models = {
        "tree": [
            "model.estimator=sklearn.tree:DecisionTreeRegressor",
            "model.param=ccp_alpha",
            "sweep.weight_decay=[0.0, 0.001, 0.003, 0.01, 0.03]",
        ],
        "knn": [
            "model.estimator=sklearn.neighbors:KNeighborsRegressor",
            "model.param=n_neighbors",
            "sweep.weight_decay=[1, 3, 9, 27]",
        ],
    }
    results = {}
    for name, over in models.items():
        cfg = bvsim.load_config(
            preset="sine",
            overrides=[
                "model.kind=sklearn",
                *over,
                f"sweep.n_reps={args.reps}",
                "sweep.n_seeds=1",
                f"name=sine-{name}",
            ],  # fmt: skip
        )
        out = None if args.out is None else f"{args.out}/{name}"
        results[name] = bvsim.run_sweep(cfg, out, n_jobs=-1)
        print(name)
        print(results[name].summary[["weight_decay", "bias2", "variance", "expected_error"]])
    return results


if __name__ == "__main__":
    main()
