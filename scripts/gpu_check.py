"""One prepared GPU check: correctness against the CPU, then W1 timed end to end.

Run on a machine with a CUDA device, from the repository root:
``PYTHONPATH=. python3 scripts/gpu_check.py [--n-reps 1000] [--out DIR]``.
Prints the card, the max deviation from the CPU (float64 and float32), the card's
float32 matmul peak and copy bandwidth, the wall time of W1 (the course MLP, 2000 SGD
steps) at n_reps training sets x 16 lambdas, training plus estimation, with its shares
of both roofs, the Gram form against the plain kernel on W3, and the scaling law
(W2's network, 200 steps, 1,024 to 131,072 members); writes gpu_check_chunk*.json and
gpu_scaling.csv to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bvsim import load_config
from bvsim.io.tables import summarize
from bvsim.run.sweep import train_sweep
from bvsim.train.engine import TrainSpec
from bvsim.train.mlp import train_batched

sys.path.insert(0, str(Path(__file__).parent))
import bench  # noqa: E402
import bench_scaling  # noqa: E402

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
    info["matmul_peak_tflops"] = device_matmul_peak("cuda") / 1e3
    info["copy_gbytes_per_s"] = device_copy_bandwidth("cuda")
    print(f"float32 matmul peak {info['matmul_peak_tflops']:.1f} TFLOP/s (TF32 off), copy "
          f"bandwidth {info['copy_gbytes_per_s']:.0f} GB/s", flush=True)  # fmt: skip
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
        "w1_share_of_matmul_peak": tflops / info["matmul_peak_tflops"],
        "w1_gbytes_per_s": bench.bytes_per_step(spec, cfg.data.n_train)
        * spec.steps
        * n_models
        / wall
        / 1e9,
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
    info["w1_share_of_copy_bandwidth"] = info["w1_gbytes_per_s"] / info["copy_gbytes_per_s"]
    print(f"W1: {info['w1_share_of_matmul_peak']:.1%} of the matmul peak, "
          f"{info['w1_gbytes_per_s']:.0f} GB/s moved = {info['w1_share_of_copy_bandwidth']:.1%}"
          " of the copy bandwidth", flush=True)  # fmt: skip
    print(summary[["weight_decay", "bias2", "variance", "expected_error", "test_error"]])
    info |= gram_rows("cuda", 16384)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rows = scaling_rows("cuda", [1024, 4096, 16384, 65536, 131072])
    pd.DataFrame(rows).to_csv(Path(args.out) / "gpu_scaling.csv", index=False)
    (Path(args.out) / f"gpu_check_chunk{raw.info['chunk_size']}.json").write_text(
        json.dumps(info, indent=2) + "\n"
    )
    return 0


def _timed(fn, device) -> tuple[float, object]:
    """(seconds, result) of ``fn()``, the device synchronized before and after."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t, out


def device_matmul_peak(device, n: int = 8192, repeats: int = 5) -> float:
    """GFLOP/s of a float32 n^3 ``torch.mm`` on ``device`` (TF32 as the process has it:
    off unless set), the best of ``repeats``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b), device)[0] for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def device_copy_bandwidth(device, n_bytes: int = 2**30, repeats: int = 5) -> float:
    """GB/s of a float32 ``Tensor.copy_`` of ``n_bytes`` on ``device`` (read + write)."""
    a = torch.ones(n_bytes // 4, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    best = min(_timed(lambda: b.copy_(a), device)[0] for _ in range(repeats))
    return 2 * n_bytes / best / 1e9


def gram_rows(device, n_members: int) -> dict:
    """W3 (linear, p = 100, n = 50, 500 steps) on ``device``: the Gram form against the
    plain kernel, models/s, and the largest difference of their predictions."""
    preset, over = bench.WORKLOADS["W3"]
    spec, inp = bench.members(load_config(preset=preset, overrides=over), n_members)
    out, preds = {}, {}
    for name, gram in (("gram", True), ("plain", False)):
        train_batched(spec, **inp, device=device, gram=gram)  # warm
        sec, res = _timed(lambda g=gram: train_batched(spec, **inp, device=device, gram=g),
                          device)  # fmt: skip
        preds[name] = res.pred
        out[f"w3_{name}_models_per_s"] = n_members / sec
    out["w3_gram_vs_plain"] = out["w3_gram_models_per_s"] / out["w3_plain_models_per_s"]
    out["w3_gram_max_abs_dpred_float32"] = float(np.nanmax(np.abs(preds["gram"] - preds["plain"])))
    print(f"W3 {n_members} members on {device}: Gram form {out['w3_gram_models_per_s']:.0f} "
          f"models/s, plain kernel {out['w3_plain_models_per_s']:.0f} "
          f"({out['w3_gram_vs_plain']:.1f}x); max |dpred| "
          f"{out['w3_gram_max_abs_dpred_float32']:.1e}",
          flush=True)  # fmt: skip
    return out


def scaling_rows(device, counts, steps: int = 200) -> list[dict]:
    """The scaling law on ``device``: ``train_batched`` on W2's network, ``steps`` steps
    per member, for each member count (its device memory peak too)."""
    over = [*bench_scaling.SCALING_MODEL, f"train.steps={steps}", f"train.log_every={steps}"]
    cfg = load_config(preset="seed-demo", overrides=over)
    rows = []
    cuda = torch.device(device).type == "cuda"
    for c in counts:
        spec, inp = bench.members(cfg, c)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        train_batched(spec, **inp, device=device)  # warm
        sec, _ = _timed(lambda sp=spec, i=inp: train_batched(sp, **i, device=device), device)
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else np.nan
        rows.append({"members": c, "seconds": sec, "us_per_member_step": sec / c / steps * 1e6,
                     "peak_device_mib": peak})  # fmt: skip
        print(f"scaling {c:7d} members: {sec:7.3f} s, {rows[-1]['us_per_member_step']:.3f} "
              f"us per member-step, peak {peak:.0f} MiB", flush=True)  # fmt: skip
    return rows


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
