"""How honest is the SE at which a ``sweep.target_se`` run stops?

The rule stops at the first K (at least ``MIN_SETS_FOR_TARGET``) whose estimated SE is
at most the target. The SE is estimated from the same sets, so the stop favours sets
whose spread happens to look small, and with skewed per-set losses (squared errors are)
a small sample's SE is low more often than not. This simulation measures the coverage
of mean ± 1.96 SE at the stop, for per-set losses drawn from a lognormal (sigma = 1),
against the coverage at a fixed number of sets.

    python scripts/target_se_coverage.py [--reps 10000] [--out results/bench]

writes ``target_se_coverage.txt`` (about a minute on one core).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bvsim.run.precision import MIN_SETS_FOR_TARGET

SIGMA = 1.0
MAX_SETS = 800


def coverage(reps: int, min_sets: int, target_k: int, seed: int = 0) -> dict:
    """Coverage of mean ± 1.96 SE when stopping at the first K >= ``min_sets`` with SE
    <= the true SE of ``target_k`` sets, and at ``target_k`` fixed sets."""
    rng = np.random.default_rng(seed)
    mu = np.exp(SIGMA**2 / 2)
    sd = np.sqrt((np.exp(SIGMA**2) - 1) * np.exp(SIGMA**2))
    target = sd / np.sqrt(target_k)
    n = np.arange(1, MAX_SETS + 1)
    stops, hit_stop, hit_fixed = [], 0, 0
    for _ in range(reps):
        x = rng.lognormal(0.0, SIGMA, MAX_SETS)
        c, c2 = np.cumsum(x), np.cumsum(x * x)
        se = np.sqrt((c2 - c * c / n) / np.maximum(n - 1, 1) / n)
        ok = np.flatnonzero((n >= min_sets) & (se <= target))
        k = ok[0] + 1 if len(ok) else MAX_SETS
        stops.append(k)
        hit_stop += abs(c[k - 1] / k - mu) < 1.96 * se[k - 1]
        kf = target_k
        hit_fixed += abs(c[kf - 1] / kf - mu) < 1.96 * se[kf - 1]
    return {
        "min_sets": min_sets,
        "target_k": target_k,
        "median_stop": int(np.median(stops)),
        "coverage_stop": hit_stop / reps,
        "coverage_fixed": hit_fixed / reps,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10000)
    ap.add_argument("--out", default="results/bench")
    args = ap.parse_args(argv)
    lines = [
        f"Coverage of mean ± 1.96 SE, per-set losses lognormal (sigma {SIGMA}), "
        f"{args.reps} simulated runs per row (scripts/target_se_coverage.py).",
        "target = the true SE of target_k sets; the rule stops at the first K >= min_sets "
        "whose estimated SE <= target.",
        "",
        "| min_sets | target_k | median stop K | coverage at the stop | coverage at target_k "
        "fixed sets |",
        "|---:|---:|---:|---:|---:|",
    ]
    for min_sets in sorted({10, MIN_SETS_FOR_TARGET}):
        for target_k in (30, 60, 120, 240):
            r = coverage(args.reps, min_sets, target_k)
            lines.append(
                f"| {r['min_sets']} | {r['target_k']} | {r['median_stop']} | "
                f"{r['coverage_stop']:.3f} | {r['coverage_fixed']:.3f} |"
            )
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "target_se_coverage.txt").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
