"""Two ``make bench`` sections: how the engine's speed scales with the number of
members (the scaling law, against this machine's cache sizes), and a crossed design
against a nested one of the same model and the same number of members.

Imported by ``scripts/bench.py``; runs alone too::

    python scripts/bench_scaling.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bvsim import load_config
from bvsim.train.devices import setup_process
from bvsim.train.engine import TrainSpec
from bvsim.train.trainers import train_batched

#: The scaling law's workload: W2's network (1-32-32-1, 20 points), 200 steps per member.
SCALING_MODEL = ["model.hidden=[32, 32]", "data.n_train=20", "train.steps=200",
                 "train.log_every=200"]  # fmt: skip
SCALING_MEMBERS = [1, 4, 16, 64, 256, 1024, 4096]

#: The crossed-vs-nested pair: the sine-crossed model (1-64-64-1 tanh, 40 points), 4
#: lambdas, 500 steps; 8 x draws x 4 noise draws x 3 seeds against 32 sets x 3 seeds.
DESIGN_COMMON = ["sweep.weight_decay=[0, 0.001, 0.01, 0.1]", "train.steps=500"]
DESIGNS = {
    "nested (32 sets x 3 seeds)": ("sine", ["sweep.n_reps=32", "sweep.n_seeds=3"]),
    "crossed (8 x x 4 noise x 3 seeds)": ("sine-crossed", []),
}


def cache_sizes(root: str | Path = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, int]:
    """Bytes of each data or unified cache level of CPU 0 (``{"L1": ..., "L2": ...,
    "L3": ...}``), read from sysfs; empty where sysfs does not say."""
    out = {}
    for index in sorted(Path(root).glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = int((index / "level").read_text())
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        n = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        out[f"L{level}"] = n
    return out


def working_set_bytes(spec: TrainSpec, n: int) -> int:
    """Bytes one member keeps live during a step of the engine: parameters and the
    optimizer buffer (two more for Adam), and per layer its input and its output
    (n points each; the backward's gradient of the same size reuses them in turn)."""
    state = (4 if spec.optimizer == "adam" else 2) * spec.n_params
    acts = sum(n * fi + n * fo for fi, fo in spec.shapes)
    return (state + acts) * spec.dtype.itemsize


def _fits(nbytes: float, caches: dict[str, int]) -> str:
    for level in sorted(caches):
        if nbytes <= caches[level]:
            return level
    return "memory"


def bench_scaling(quick: bool, repeats: int) -> tuple[list[dict], dict[str, int]]:
    """Wall time of ``train_batched`` against the number of members, same work per
    member (the W2 network, 200 steps), interleaved over the sizes."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench import members

    cfg = load_config(preset="seed-demo", overrides=SCALING_MODEL)
    sizes = SCALING_MEMBERS[:-2] if quick else SCALING_MEMBERS
    inputs = {c: members(cfg, c) for c in sizes}
    times = {c: [] for c in sizes}
    spec, inp = inputs[sizes[0]]
    train_batched(spec, **inp)  # warm-up: the first call pays one-off setup
    for _ in range(repeats):
        for c, (spec, inp) in inputs.items():
            t = time.perf_counter()
            train_batched(spec, **inp)
            times[c].append(time.perf_counter() - t)
    caches = cache_sizes()
    spec = inputs[sizes[0]][0]
    per_member = working_set_bytes(spec, cfg.data.n_train)
    rows = []
    for c in sizes:
        sec = statistics.median(times[c])
        rows.append({"members": c, "seconds": sec, "us_per_member_step": sec / c / spec.steps * 1e6,
                     "working_set_kib": c * per_member / 1024,
                     "fits_in": _fits(c * per_member, caches)})  # fmt: skip
    best = min(r["us_per_member_step"] for r in rows)
    for r in rows:
        r["vs_best"] = r["us_per_member_step"] / best
        print(f"{r['members']:5d} members {r['seconds']:7.3f} s {r['us_per_member_step']:7.2f} "
              f"us/member-step ({r['vs_best']:.2f}x the best) working set "
              f"{r['working_set_kib']:9.0f} KiB ({r['fits_in']})", flush=True)  # fmt: skip
    return rows, caches


def bench_crossed(repeats: int) -> list[dict]:
    """A crossed and a nested run of the same model and number of members, end to end
    (``train_sweep``, one worker), interleaved: models/s of each and their ratio."""
    from bvsim.run.sweep import train_sweep

    cfgs = {
        k: load_config(preset=p, overrides=[*DESIGN_COMMON, *o]) for k, (p, o) in DESIGNS.items()
    }
    times = {k: [] for k in cfgs}
    for _ in range(repeats):
        for label, cfg in cfgs.items():
            t = time.perf_counter()
            train_sweep(cfg, n_jobs=1, progress=False)
            times[label].append(time.perf_counter() - t)
    rows = []
    for label, cfg in cfgs.items():
        n = len(cfg.sweep.weight_decay) * cfg.sweep.n_reps * cfg.sweep.n_seeds
        sec = statistics.median(times[label])
        rows.append({"design": label, "models": n, "seconds": sec, "models_per_s": n / sec})
    for r in rows:
        r["vs_nested"] = r["models_per_s"] / rows[0]["models_per_s"]
        print(
            f"{r['design']:36s} {r['models']:4d} models {r['seconds']:6.2f} s "
            f"{r['models_per_s']:7.1f} models/s {r['vs_nested']:.2f}x nested",
            flush=True,
        )
    return rows


def markdown(scaling: list[dict], caches: dict[str, int], crossed: list[dict]) -> list[str]:
    """The two sections of bench.md."""
    c = ", ".join(f"{k} {v / 2**20:g} MiB" for k, v in caches.items()) or "unknown"
    md = ["", "Scaling law: `train_batched` on the W2 network (1-32-32-1, 20 points), 200 "
          f"steps per member, one thread; caches of this CPU (sysfs): {c}.", "",
          "| members | seconds | µs per member-step | vs the best | working set | fits in |",
          "|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in scaling:
        md.append(
            f"| {r['members']} | {r['seconds']:.3f} | {r['us_per_member_step']:.2f} | "
            f"{r['vs_best']:.2f}x | {r['working_set_kib']:.0f} KiB | {r['fits_in']} |"
        )
    md += ["", "Crossed against nested design, same model (sine-crossed's 1-64-64-1 tanh, 40 "
           "points, 500 steps), 4 λ, 384 members each, end to end (`train_sweep`, one "
           "worker), interleaved:", "", "| design | models | seconds | models/s | vs nested |",
           "|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in crossed:
        md.append(f"| {r['design']} | {r['models']} | {r['seconds']:.2f} | "
                  f"{r['models_per_s']:.1f} | {r['vs_nested']:.2f}x |")  # fmt: skip
    return md


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    setup_process(1)
    repeats = 1 if args.quick else 3
    scaling, caches = bench_scaling(args.quick, repeats)
    crossed = bench_crossed(repeats)
    print("\n".join(markdown(scaling, caches, crossed)))
    pd.DataFrame(scaling).to_csv(sys.stdout, index=False)
    return 0 if np.isfinite([r["seconds"] for r in scaling]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
