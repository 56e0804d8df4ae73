"""Cross-check bvsim against mlxtend's ``bias_variance_decomp`` on the same CSV.

Same data (bvsim's fixed test split of the file), same model (a scikit-learn
estimator), same resampling (bootstrap training sets of the whole training pool, as
mlxtend draws them), independent random draws. mlxtend reports plug-in numbers:

* ``avg_expected_loss`` = mean (ŷ − y)² over rounds and test points,
* ``avg_bias`` = mean_j (m_j − y_j)²: against the noisy labels, so it includes the
  noise, and with no finite-sample correction,
* ``avg_var`` = mean_j mean_k (ŷ_kj − m_j)² (ddof = 0).

bvsim's corrected estimators map onto these as: expected loss = ``test_error``,
plug-in bias = ``bias2 + variance / K`` (its ``bias2`` is bias² + noise here, with the
Var(m) excess removed), plug-in variance = ``variance (K − 1) / K``. The two should agree
within Monte Carlo error. mlxtend's 0-1 parts do not add up to its loss; bvsim's do
(see ``bvsim.estimate.classification``).

    python scripts/compare_mlxtend.py [--path bvsim-data:diabetes.csv] [--rounds 200]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import bvsim
from bvsim.data.csv import load_split


def compare(path="bvsim-data:diabetes.csv", target="", alpha=1.0, rounds=200, seed=0):
    """Run both on the same work; returns {quantity: (bvsim, bvsim_se, mlxtend)}."""
    from mlxtend.evaluate import bias_variance_decomp
    from sklearn.linear_model import Ridge

    over = [
        "data.source=csv",
        f"data.path={path}",
        "model.kind=sklearn",
        "model.estimator=sklearn.linear_model:Ridge",
        "model.param=alpha",
        f"sweep.weight_decay=[{alpha}]",
        f"sweep.n_reps={rounds}",
        "sweep.n_seeds=1",
        f"seed={seed}",
        "data.resample=bootstrap",
    ]
    if target:
        over.append(f"data.target={target}")
    cfg = bvsim.load_config(preset="smoke", overrides=over)
    x_pool, y_pool, x_test, y_test = load_split(cfg)
    cfg = bvsim.load_config(preset="smoke", overrides=[*over, f"data.n_train={len(y_pool)}"])
    s = bvsim.run_sweep(cfg, n_jobs=1, progress=False).summary.iloc[0]
    k = rounds
    ours = {
        "expected_loss": (s["test_error"], s["test_error_se"]),
        "bias_incl_noise_plugin": (s["bias2"] + s["variance"] / k, s["bias2_se"]),
        "variance_plugin": (s["variance"] * (k - 1) / k, s["variance_se"]),
    }
    loss, bias, var = bias_variance_decomp(
        Ridge(alpha=alpha), x_pool, y_pool, x_test, y_test, loss="mse",
        num_rounds=rounds, random_seed=seed + 1,
    )  # fmt: skip
    theirs = {"expected_loss": loss, "bias_incl_noise_plugin": bias, "variance_plugin": var}
    return {q: (ours[q][0], ours[q][1], theirs[q]) for q in ours}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--path", default="bvsim-data:diabetes.csv")
    ap.add_argument("--target", default="")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args(argv)
    rows = compare(args.path, args.target, args.alpha, args.rounds)
    print(f"{'quantity':24s} {'bvsim':>10s} {'± SE':>9s} {'mlxtend':>10s} {'diff/SE':>8s}")
    worst = 0.0
    for q, (ours, se, theirs) in rows.items():
        z = (ours - theirs) / (se * np.sqrt(2))  # two independent estimates
        worst = max(worst, abs(z))
        print(f"{q:24s} {ours:10.5f} {se:9.5f} {theirs:10.5f} {z:8.2f}")
    print(f"largest |difference| / combined SE: {worst:.2f}")
    return 0 if worst < 4 else 1


if __name__ == "__main__":
    sys.exit(main())
