"""How often does the report's interval of a difference cover the truth?

The report calls a λ tied with the best when their difference lies within
``t(df) × paired SE`` (Student's t, two-sided 95 %). This simulation measures the
coverage of that interval against the conventional ± 2 SE:

* nested design: K training sets, normal per-set differences, df = K − 1;
* crossed design: a mean over a crossed array (the cells' differences between two λ)
  drawn from a Gaussian random-effects model, its multiway-jackknife SE, and
  Satterthwaite's df (:func:`bvsim.estimate.anova.multiway_jackknife_df`); against
  ± 2 SE and against t with the smallest factor's levels − 1 df (a cruder bound).

The crossed scenarios weigh the terms differently: every main effect 1 and every
interaction 0.1 (``main``); one factor 1, the rest 0.02 (``one``); the factor with the
fewest levels 1, the rest 0.02 (``fewest``); interactions 1 and main effects 0.05
(``interactions``, where the multiway jackknife is most conservative).

    python scripts/crossed_t_coverage.py [--reps 3000] [--out results/bench]

writes ``crossed_t_coverage.txt`` (a few minutes on one core).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from bvsim.estimate.anova import multiway_jackknife_df, multiway_jackknife_se
from bvsim.estimate.compare import t_multiplier

DESIGNS = [(8, 4, 3), (10, 4, 3), (5, 5, 5), (3, 3, 3), (8, 8), (40, 10)]
SCENARIOS = ("main", "one", "fewest", "interactions")


def components(levels: tuple[int, ...], scenario: str) -> dict:
    """The variance of every term (a tuple of factor axes) in ``scenario``."""
    axes = range(len(levels))
    terms = [t for r in range(1, len(levels) + 1) for t in itertools.combinations(axes, r)]
    if scenario == "main":
        return {t: 1.0 if len(t) == 1 else 0.1 for t in terms}
    if scenario == "one":
        return {t: 1.0 if t == (0,) else 0.02 for t in terms}
    if scenario == "fewest":
        small = int(np.argmin(levels))
        return {t: 1.0 if t == (small,) else 0.02 for t in terms}
    return {t: 0.05 if len(t) == 1 else 1.0 for t in terms}


def crossed(levels: tuple[int, ...], scenario: str, reps: int, seed: int = 0) -> dict:
    """Coverage of a crossed mean's ± 2 SE, ± t(Satterthwaite) SE and ± t(min n − 1) SE,
    and the median Satterthwaite df."""
    rng = np.random.default_rng(seed)
    comps = components(levels, scenario)
    hits = {"2 SE": 0, "t Satterthwaite": 0, "t min levels": 0}
    dfs = []
    for _ in range(reps):
        y = np.zeros(levels)
        for term, var in comps.items():
            shape = tuple(n if i in term else 1 for i, n in enumerate(levels))
            y = y + np.sqrt(var) * rng.standard_normal(shape)
        reps_ = [
            np.array([np.delete(y, lv, axis=ax).mean() for lv in range(n)])
            for ax, n in enumerate(levels)
        ]
        z = abs(y.mean()) / multiway_jackknife_se(reps_)  # the true mean is 0
        df = multiway_jackknife_df(reps_)
        dfs.append(df)
        hits["2 SE"] += z <= 2
        hits["t Satterthwaite"] += z <= t_multiplier(df)
        hits["t min levels"] += z <= t_multiplier(min(levels) - 1)
    out = {k: v / reps for k, v in hits.items()}
    out["median df"] = float(np.median(dfs))
    return out


def nested(k: int, reps: int, seed: int = 0) -> dict:
    """Coverage of a paired mean over ``k`` sets: ± 2 SE and ± t(k − 1) SE."""
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((reps, k))
    z = np.abs(d.mean(axis=1)) / (d.std(axis=1, ddof=1) / np.sqrt(k))
    return {"2 SE": float(np.mean(z <= 2)), "t": float(np.mean(z <= t_multiplier(k - 1)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    lines = [
        "Coverage of the report's 95 % interval of a difference (true difference 0), "
        f"{args.reps} simulated studies each (scripts/crossed_t_coverage.py).",
        "",
        "Nested design: K training sets, normal per-set differences.",
        "",
        "| K | ± 2 SE | ± t(K − 1) SE |",
        "|---:|---:|---:|",
    ]
    for k in (3, 4, 5, 10, 20, 50):
        c = nested(k, args.reps * 10)
        lines.append(f"| {k} | {c['2 SE']:.3f} | {c['t']:.3f} |")
    lines += [
        "",
        "Crossed design: a mean over the cells of a Gaussian random-effects model, "
        "multiway-jackknife SE.",
        "",
        "| levels | scenario | ± 2 SE | ± t(Satterthwaite) SE | ± t(min levels − 1) SE "
        "| median Satterthwaite df |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for levels in DESIGNS:
        for scenario in SCENARIOS:
            c = crossed(levels, scenario, args.reps)
            lines.append(
                f"| {' × '.join(map(str, levels))} | {scenario} | {c['2 SE']:.3f} | "
                f"{c['t Satterthwaite']:.3f} | {c['t min levels']:.3f} | {c['median df']:.1f} |"
            )
            print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "crossed_t_coverage.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
