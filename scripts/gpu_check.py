"""One prepared GPU check: correctness against the CPU, then W1 timed end to end.

Run on a machine with a CUDA device, from the repository root:
``PYTHONPATH=. python3 scripts/gpu_check.py [--n-reps 1000] [--out DIR]``.
Prints the card, the max deviation from the CPU (float64 and float32), and the wall
time of W1 (the course MLP, 2000 SGD steps) at n_reps training sets x 16 lambdas,
training plus estimation; writes gpu_check.json to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bvsim import load_config
from bvsim.io.tables import summarize
from bvsim.run.sweep import train_sweep
from bvsim.train.engine import TrainSpec

SMOKE = ["train.steps=300", "train.log_every=100", "sweep.n_reps=10"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-reps", type=int, default=1000)
    ap.add_argument("--out", default=".")
    ap.add_argument("--chunk-size", type=int, default=0, help="training sets per chunk (0: auto)")
    ap.add_argument("--skip-check", action="store_true", help="time only")
    ap.add_argument(
        "--mixed",
        type=int,
        default=0,
        metavar="N_REPS",
        help="instead: W1 at N_REPS x 16 lambdas on the GPU alone, the CPU cores alone and "
        "both together (--devices cuda,cpu,...); compare summaries and times",
    )
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    info = {
        "card": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    print(info, flush=True)
    if args.mixed:
        return mixed(args, info)

    # 1. correctness: the smoke sweep on the GPU against the CPU
    dtypes = () if args.skip_check else ("float64", "float32")
    ref = (
        None
        if args.skip_check
        else train_sweep(load_config(preset="smoke", overrides=[*SMOKE, "train.dtype=float64"]))
    )
    for dtype in dtypes:
        cfg = load_config(preset="smoke", overrides=[*SMOKE, f"train.dtype={dtype}"])
        gpu = train_sweep(cfg, device="cuda", progress=False)
        dev = float(np.nanmax(np.abs(gpu.pred - ref.pred)))
        info[f"max_abs_dev_{dtype}_vs_cpu_float64"] = dev
        print(f"smoke {dtype} on cuda vs cpu float64: max |dpred| = {dev:.2e}", flush=True)

    # 2. W1 at n_reps x 16 lambdas, end to end (training + estimation)
    wd = [0.0, *np.logspace(-4, 0, 15).tolist()]
    cfg = load_config(
        preset="seed-demo",
        overrides=[
            f"sweep.n_reps={args.n_reps}",
            f"sweep.weight_decay={wd}",
            f"sweep.chunk_size={args.chunk_size}",
        ],
    )
    warm = load_config(preset="seed-demo", overrides=["sweep.n_reps=4", "train.steps=50"])
    train_sweep(warm, device="cuda", progress=False)
    torch.cuda.synchronize()
    t = time.perf_counter()
    raw = train_sweep(cfg, device="cuda", progress=False)
    summary = summarize(raw).summary
    wall = time.perf_counter() - t
    spec = TrainSpec.from_config(cfg)
    n_models = raw.info["n_members"]
    tflops = spec.flops_per_step(cfg.data.n_train) * spec.steps * n_models / wall / 1e12
    info |= {
        "w1_n_reps": args.n_reps,
        "w1_n_lambdas": len(wd),
        "w1_models": n_models,
        "w1_seconds": wall,
        "w1_models_per_s": n_models / wall,
        "w1_tflops": tflops,
        "w1_chunks": raw.info["n_chunks"],
        "w1_chunk_size": raw.info["chunk_size"],
        "w1_best_lambda": float(summary.loc[summary["is_best"], "weight_decay"].iloc[0]),
        "w1_n_diverged": int(summary["n_diverged"].sum()),
    }
    print(
        f"W1 {args.n_reps} x {len(wd)} lambdas = {n_models} models on {info['card']}: "
        f"{wall:.1f} s end to end ({n_models / wall:.0f} models/s, {tflops:.1f} TFLOP/s fp32,"
        f" {raw.info['n_chunks']} chunks)",
        flush=True,
    )
    print(summary[["weight_decay", "bias2", "variance", "expected_error", "test_error"]])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"gpu_check_chunk{raw.info['chunk_size']}.json").write_text(
        json.dumps(info, indent=2) + "\n"
    )
    return 0


def mixed(args, info) -> int:
    """GPU alone vs CPU cores alone vs both at once, on the same W1 sweep."""
    import os

    wd = [0.0, *np.logspace(-4, 0, 15).tolist()]
    cfg = load_config(
        preset="seed-demo", overrides=[f"sweep.n_reps={args.mixed}", f"sweep.weight_decay={wd}"]
    )
    n_cpu = os.cpu_count() or 2
    runs = {
        "gpu": {"device": "cuda"},
        "cpu": {"device": "cpu", "n_jobs": n_cpu},
        "gpu+cpu": {"devices": ["cuda"] + ["cpu"] * (n_cpu - 1)},
    }
    warm = load_config(preset="seed-demo", overrides=["sweep.n_reps=4", "train.steps=50"])
    train_sweep(warm, device="cuda", progress=False)
    summaries = {}
    for name, kw in runs.items():
        t = time.perf_counter()
        raw = train_sweep(cfg, progress=False, **kw)
        summaries[name] = summarize(raw).summary
        wall = time.perf_counter() - t
        info[f"mixed_{name}_seconds"] = wall
        info[f"mixed_{name}_chunks_per_device"] = raw.info["chunks_per_device"]
        print(f"{name:8s} {wall:7.1f} s  {raw.info['chunks_per_device']}", flush=True)
    cols = ["bias2", "variance", "expected_error", "test_error"]
    for name in ("gpu", "gpu+cpu"):
        dev = float((summaries[name][cols] - summaries["cpu"][cols]).abs().to_numpy().max())
        info[f"mixed_{name}_max_summary_dev_vs_cpu"] = dev
        print(f"max |summary({name}) - summary(cpu)| = {dev:.2e}", flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_mixed.json").write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
