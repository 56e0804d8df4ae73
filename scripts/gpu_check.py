"""One prepared GPU check: correctness against the CPU, then W1 timed end to end.

Run on a machine with a CUDA device, from the repository root:
``PYTHONPATH=. python3 scripts/gpu_check.py --out DIR [--n-reps 1000]`` (``--out``
defaults to ``$OUT``). Prints the card and its float32 numerics settings (bvsim pins
IEEE float32: :func:`bvsim.train.devices.pin_cuda_numerics`), the max deviation from
the CPU (float64 and float32), the card's float32 matmul peak and copy bandwidth, the
wall time of W1 (the course MLP, 2000 SGD steps) at n_reps training sets x 16 lambdas,
training plus estimation, with its shares of both roofs, the Gram form against the
plain kernel on W3, and the scaling law (W2's network, 200 steps, 1,024 to 131,072
members). ``--mixed N_REPS`` instead times W1 on the GPU, the CPU cores and both
(``gpu_mixed.json``).

Each section runs on its own: one that fails records ``<section>_error`` (its
traceback) and the next one runs. ``gpu_check_chunk<size|auto>.json`` in --out is
rewritten after every section, ``gpu_scaling.csv`` after every scaling row. Exits 1
if a section failed or the float64 GPU predictions deviate from the CPU's by more
than 1e-9.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bvsim import load_config
from bvsim.io.tables import summarize
from bvsim.run.sweep import train_sweep
from bvsim.train.devices import pin_cuda_numerics
from bvsim.train.engine import TrainSpec
from bvsim.train.trainers import train_batched

sys.path.insert(0, str(Path(__file__).parent))
import bench  # noqa: E402
import bench_scaling  # noqa: E402

SMOKE = ["train.steps=300", "train.log_every=100", "sweep.n_reps=10"]
#: The float64 smoke sweep on the GPU must match the CPU's predictions this closely.
FLOAT64_TOLERANCE = 1e-9
SCALING_COUNTS = [1024, 4096, 16384, 65536, 131072]
W1_LAMBDAS = [0.0, *np.logspace(-4, 0, 15).tolist()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-reps", type=int, default=1000)
    ap.add_argument(
        "--out", default=os.environ.get("OUT"), help="where the JSON and CSV go (default: $OUT)"
    )
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
    if not args.out:
        ap.error("--out DIR is required (or set $OUT)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "gpu_mixed.json" if args.mixed else f"gpu_check_chunk{args.chunk_size or 'auto'}.json"
    info: dict = {}
    path = out / name
    if not torch.cuda.is_available():
        info["cuda_error"] = "no CUDA device"
        _write(path, info)
        print("no CUDA device", file=sys.stderr)
        return 1
    info["numerics_before_pin"] = numerics_settings()
    pin_cuda_numerics()  # as every bvsim sweep on a CUDA device
    info |= {
        "card": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "numerics": numerics_settings(),
    }
    print(info, flush=True)
    _write(path, info)
    if args.mixed:
        sections = {f"mixed_{run}": mixed_run(run) for run in MIXED_RUNS}
        sections["mixed_compare"] = mixed_compare
    else:
        sections = {"check": check, "roofs": roofs, "w1": w1, "gram": gram, "scaling": scaling}
        if args.skip_check:
            del sections["check"]
    state: dict = {}  # what one section hands to the next
    for section, fn in sections.items():
        run_section(section, lambda fn=fn: fn(args, info, out, state), info, path)
    failed = [k for k in info if k.endswith("_error")]
    info["failed"] = failed
    _write(path, info)
    print(f"wrote {path}; " + (f"FAILED: {', '.join(failed)}" if failed else "all passed"),
          flush=True)  # fmt: skip
    return 1 if failed else 0


def _write(path: Path, info: dict) -> None:
    """Rewrite the JSON (through a temporary file: a kill leaves the last whole one)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")
    tmp.replace(path)


def run_section(name: str, fn, info: dict, path: Path) -> bool:
    """Run ``fn()``; on an exception record ``<name>_error`` (the traceback) in
    ``info`` and go on. ``info`` is written to ``path`` either way. True if it ran."""
    t = time.perf_counter()
    ok = True
    try:
        fn()
    except Exception:
        ok = False
        info[f"{name}_error"] = traceback.format_exc()
        print(f"section {name} failed:\n{info[f'{name}_error']}", file=sys.stderr, flush=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # an out-of-memory section leaves room for the next
    info[f"{name}_section_seconds"] = time.perf_counter() - t
    _write(path, info)
    return ok


def _read(get):
    """``get()``, or the error text where torch refuses (mixed TF32 APIs, no attribute)."""
    try:
        return get()
    except Exception as err:
        return f"error: {type(err).__name__}: {err}"


def numerics_settings() -> dict:
    """The float32 numerics settings the process runs with, read through torch's new
    precision API only (torch 2.9+ raises when the legacy and new TF32 APIs are mixed)."""
    cudnn_conv = getattr(torch.backends.cudnn, "conv", None)
    return {
        "cuda_matmul_fp32_precision": _read(lambda: torch.backends.cuda.matmul.fp32_precision),
        "float32_matmul_precision": _read(torch.get_float32_matmul_precision),
        "cudnn_conv_fp32_precision": _read(lambda: cudnn_conv.fp32_precision)
        if hasattr(cudnn_conv, "fp32_precision")
        else None,
        "cudnn_deterministic": _read(lambda: torch.backends.cudnn.deterministic),
        "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE"),
        "NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE"),
    }


def _numerics_label(settings: dict) -> str:
    return (
        f"matmul fp32_precision {settings['cuda_matmul_fp32_precision']}, "
        f"float32_matmul_precision {settings['float32_matmul_precision']}, "
        f"cudnn conv {settings['cudnn_conv_fp32_precision']}, "
        f"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE={settings['TORCH_ALLOW_TF32_CUBLAS_OVERRIDE']}"
    )


def check(args, info, out, state) -> None:
    """Correctness: the smoke sweep on the GPU against the CPU in float64."""
    ref = train_sweep(
        load_config(preset="smoke", overrides=[*SMOKE, "train.dtype=float64"]), progress=False
    )
    for dtype in ("float64", "float32"):
        cfg = load_config(preset="smoke", overrides=[*SMOKE, f"train.dtype={dtype}"])
        gpu = train_sweep(cfg, device="cuda", progress=False)
        dev = float(np.nanmax(np.abs(gpu.pred - ref.pred)))
        info[f"max_abs_dev_{dtype}_vs_cpu_float64"] = dev
        info[f"diverged_equal_{dtype}"] = bool(np.array_equal(gpu.diverged, ref.diverged))
        print(f"smoke {dtype} on cuda vs cpu float64: max |dpred| = {dev:.2e}", flush=True)
        if dtype == "float64" and not dev <= FLOAT64_TOLERANCE:  # NaN fails too
            info["check_float64_error"] = f"max |dpred| {dev:.3e} > {FLOAT64_TOLERANCE:g}"


def roofs(args, info, out, state) -> None:
    """The card's float32 matmul peak and copy bandwidth, after a warm-up sweep."""
    warm = load_config(preset="seed-demo", overrides=["sweep.n_reps=4", "train.steps=50"])
    train_sweep(warm, device="cuda", progress=False)
    info["matmul_peak_tflops"] = device_matmul_peak("cuda") / 1e3
    info["copy_gbytes_per_s"] = device_copy_bandwidth("cuda")
    info["numerics_at_matmul_peak"] = settings = numerics_settings()
    print(f"float32 matmul peak {info['matmul_peak_tflops']:.1f} TFLOP/s "
          f"({_numerics_label(settings)}), copy bandwidth {info['copy_gbytes_per_s']:.0f} GB/s",
          flush=True)  # fmt: skip


def w1(args, info, out, state) -> None:
    """W1 at n_reps x 16 lambdas, end to end (training + estimation)."""
    cfg = load_config(
        preset="seed-demo",
        overrides=[
            f"sweep.n_reps={args.n_reps}",
            f"sweep.weight_decay={W1_LAMBDAS}",
            f"sweep.chunk_size={args.chunk_size}",
        ],
    )
    torch.cuda.synchronize()
    t = time.perf_counter()
    raw = train_sweep(cfg, device="cuda", progress=False)
    summary = summarize(raw).summary
    wall = time.perf_counter() - t
    spec = TrainSpec.from_config(cfg)
    n_models = raw.info["n_members"]
    tflops = spec.flops_per_step(cfg.data.n_train) * spec.steps * n_models / wall / 1e12
    gbytes = bench.bytes_per_step(spec, cfg.data.n_train) * spec.steps * n_models / wall / 1e9
    info |= {
        "w1_n_reps": args.n_reps,
        "w1_n_lambdas": len(W1_LAMBDAS),
        "w1_models": n_models,
        "w1_seconds": wall,
        "w1_models_per_s": n_models / wall,
        "w1_tflops": tflops,
        "w1_gbytes_per_s": gbytes,
        "w1_chunks": raw.info["n_chunks"],
        "w1_chunk_size": raw.info["chunk_size"],
        "w1_best_lambda": float(summary.loc[summary["is_best"], "weight_decay"].iloc[0]),
        "w1_n_diverged": int(summary["n_diverged"].sum()),
    }
    print(
        f"W1 {args.n_reps} x {len(W1_LAMBDAS)} lambdas = {n_models} models on {info['card']}: "
        f"{wall:.1f} s end to end ({n_models / wall:.0f} models/s, {tflops:.1f} TFLOP/s fp32,"
        f" {raw.info['n_chunks']} chunks)",
        flush=True,
    )
    if "matmul_peak_tflops" in info and "copy_gbytes_per_s" in info:  # the roofs ran
        info["w1_share_of_matmul_peak"] = tflops / info["matmul_peak_tflops"]
        info["w1_share_of_copy_bandwidth"] = gbytes / info["copy_gbytes_per_s"]
        print(f"W1: {info['w1_share_of_matmul_peak']:.1%} of the matmul peak, {gbytes:.0f} "
              f"GB/s moved = {info['w1_share_of_copy_bandwidth']:.1%} of the copy bandwidth",
              flush=True)  # fmt: skip
    print(summary[["weight_decay", "bias2", "variance", "expected_error", "test_error"]])


def gram(args, info, out, state) -> None:
    info |= gram_rows("cuda", 16384)


def scaling(args, info, out, state) -> None:
    """The scaling law; ``gpu_scaling.csv`` rewritten after every row."""
    rows: list[dict] = []

    def keep(row):
        rows.append(row)
        pd.DataFrame(rows).to_csv(out / "gpu_scaling.csv", index=False)

    scaling_rows("cuda", SCALING_COUNTS, on_row=keep)


def _timed(fn, device) -> tuple[float, object]:
    """(seconds, result) of ``fn()``, the device synchronized before and after."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t, out


def device_matmul_peak(device, n: int = 8192, repeats: int = 5) -> float:
    """GFLOP/s of a float32 n^3 ``torch.mm`` on ``device`` (TF32 as the process has it,
    see :func:`numerics_settings`: off once bvsim pinned it), the best of ``repeats``."""
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


def scaling_rows(device, counts, steps: int = 200, on_row=None) -> list[dict]:
    """The scaling law on ``device``: ``train_batched`` on W2's network, ``steps`` steps
    per member, for each member count (its device memory peak too); ``on_row(row)``
    is called as each row is made."""
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
        if on_row is not None:
            on_row(rows[-1])
        print(f"scaling {c:7d} members: {sec:7.3f} s, {rows[-1]['us_per_member_step']:.3f} "
              f"us per member-step, peak {peak:.0f} MiB", flush=True)  # fmt: skip
    return rows


MIXED_RUNS = ("gpu", "cpu", "gpu+cpu")


def mixed_run(name: str):
    """The section of one run of ``--mixed``: W1 at N_REPS x 16 lambdas on the GPU
    alone, the CPU cores alone or both at once."""

    def run(args, info, out, state) -> None:
        cfg = load_config(
            preset="seed-demo",
            overrides=[f"sweep.n_reps={args.mixed}", f"sweep.weight_decay={W1_LAMBDAS}"],
        )
        n_cpu = os.cpu_count() or 2
        kw = {
            "gpu": {"device": "cuda"},
            "cpu": {"device": "cpu", "n_jobs": n_cpu},
            "gpu+cpu": {"devices": ["cuda"] + ["cpu"] * (n_cpu - 1)},
        }[name]
        if "warm" not in state and name != "cpu":
            warm = load_config(preset="seed-demo", overrides=["sweep.n_reps=4", "train.steps=50"])
            train_sweep(warm, device="cuda", progress=False)
            state["warm"] = True
        t = time.perf_counter()
        raw = train_sweep(cfg, progress=False, **kw)
        state.setdefault("summaries", {})[name] = summarize(raw).summary
        wall = time.perf_counter() - t
        info[f"mixed_{name}_seconds"] = wall
        info[f"mixed_{name}_chunks_per_device"] = raw.info["chunks_per_device"]
        print(f"{name:8s} {wall:7.1f} s  {raw.info['chunks_per_device']}", flush=True)

    return run


def mixed_compare(args, info, out, state) -> None:
    """The summaries of the GPU runs against the CPU-only one."""
    summaries = state.get("summaries", {})
    cols = ["bias2", "variance", "expected_error", "test_error"]
    for name in ("gpu", "gpu+cpu"):
        dev = float((summaries[name][cols] - summaries["cpu"][cols]).abs().to_numpy().max())
        info[f"mixed_{name}_max_summary_dev_vs_cpu"] = dev
        print(f"max |summary({name}) - summary(cpu)| = {dev:.2e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
