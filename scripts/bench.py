"""bvsim benchmark: the batched engine against the per-model torch.optim loop.

Run with ``make bench`` (or ``python scripts/bench.py [--quick]``). Every ratio is
measured in this one run, interleaved and as a median of repeats, so a shared, noisy
machine moves both sides alike. Writes ``results/bench/bench.csv`` and
``results/bench/bench.md`` (the table README carries).

Workloads (fixed, so numbers stay comparable over time); each member has its own
weight decay and its own training set, as in a real sweep:

- W1: the course MLP 1-200-200-200-1 ReLU, n_train 10, 2000 full-batch SGD steps
  (lr 0.01, momentum 0.9), coupled L2.
- W2: MLP 1-32-32-1, n_train 20, 2000 steps.
- W3: linear model, p = 100, n_train 50, 500 steps: the engine's Gram form (dual
  coordinates, :mod:`bvsim.train.gram`), the plain kernel, and the closed-form solver.
- Scaling: W2's network at 1 to 4096 members, 200 steps each (bench_scaling.py).
- Designs: a crossed and a nested run of the same model and members (bench_scaling.py).
- Modules: the W2 network as a user's ``nn.Module`` (recognised and trained by the
  engine, and through torch.func) against the engine, 4 lambdas x 64 sets end to
  end; and a small CNN (two 3x3 convolutions on 8x8 inputs) through torch.func.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bvsim import load_config
from bvsim.config.moot import GD_SOLVER_KEYS
from bvsim.data.generator import draw_training_sets, make_test_set
from bvsim.train.devices import setup_process
from bvsim.train.engine import ParamLayout, TrainSpec, init_params
from bvsim.train.gram import gram_applies
from bvsim.train.reference import train_one
from bvsim.train.trainers import train_batched

sys.path.insert(0, str(Path(__file__).parent))
import bench_scaling  # noqa: E402

W2_MODEL = ["model.hidden=[32, 32]", "data.n_train=20"]
WORKLOADS = {
    "W1": ("seed-demo", []),
    "W2": ("seed-demo", W2_MODEL),
    "W3": (
        "linear",
        [
            "data.dim=100",
            "data.n_train=50",
            "train.steps=500",
            "train.lr=0.005",
            "data.train_design=random",
        ],
    ),
}


def matmul_peak(repeats: int = 3) -> float:
    """float32 GFLOP/s of a 2048^3 torch.mm on this process's thread count."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * 2048**3 / min(times) / 1e9


def copy_bandwidth(n_bytes: int, repeats: int = 3) -> float:
    """GB/s of a float32 ``Tensor.copy_`` of ``n_bytes`` (counting the read and the
    write): 256 MiB measures main memory, a few MiB the caches a chunk lives in."""
    a = torch.ones(n_bytes // 4)
    b = torch.empty_like(a)
    b.copy_(a)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        b.copy_(a)
        times.append(time.perf_counter() - t)
    return 2 * n_bytes / min(times) / 1e9


def bytes_per_step(spec, n: int) -> float:
    """Bytes one member moves in one full-batch step of the engine, as implemented
    (:class:`bvsim.train.mlp.BatchedMLP`), counting each tensor read or written once
    per kernel that touches it (no cache reuse between kernels).

    Per layer (fan_in fi, fan_out fo, n points): the forward product reads W, b and
    its input and writes its output (fi fo + fo + n fi + n fo), the activation reads
    and writes it in place (2 n fo); the backward folds the momentum into the weight
    gradient (reads input and output gradient, reads and writes the buffer:
    n fi + n fo + 2 fi fo, and the same for the bias: n fo + 2 fo), and for every
    layer but the first the input gradient reads g and W and writes g_in, and the
    activation's backward reads g_in and the activation and writes the result
    (n fo + fi fo + n fi + 3 n fi). The update reads the buffer and the parameters
    and writes the buffer (the L2 penalty), then reads both and writes the
    parameters: 6 P for SGD (Adam adds its two moment buffers: about 19 P more).
    """
    floats = 0
    for i, (fi, fo) in enumerate(spec.shapes):
        b = fo if spec.bias else 0
        floats += fi * fo + b + n * fi + n * fo  # forward product
        if i < len(spec.shapes) - 1:
            floats += 2 * n * fo  # activation in place
        floats += n * fi + n * fo + 2 * fi * fo  # weight gradient into the buffer
        if spec.bias:
            floats += n * fo + 2 * fo
        if i > 0:
            floats += n * fo + fi * fo + n * fi + 3 * n * fi  # input gradient, activation
    floats += 6 * spec.n_params + (19 * spec.n_params if spec.optimizer == "adam" else 0)
    return floats * torch.finfo(spec.dtype).bits / 8


def gram_cost(spec, n: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one member's full-batch step in the Gram form
    (:mod:`bvsim.train.gram`), as implemented, with the one-time Gram matrix spread over
    the steps (logging excluded, as for the plain count). A step: the row product
    ``theta^T M^T`` into the momentum buffer reads M^T (d^2), theta and the buffer and
    writes the buffer (2 d^2 FLOPs, d^2 + 3 d floats); subtracting v, the l2 penalty
    and the update each read two vectors and write one (9 d). Once: the dual form's
    ``X X^T`` and ``X w0`` (2 n^2 p + 2 n p FLOPs), the primal's ``X^T X`` and ``X^T y``
    (2 n p^2 + 2 n p), reading X and writing M^T (n p + d^2 floats)."""
    p = spec.shapes[0][0] + (1 if spec.bias else 0)
    dual = p > n + 1
    d = n + 1 if dual else p
    setup_flops = 2 * n * p * (n if dual else p) + 2 * n * p
    flops = 2.0 * d * d + setup_flops / spec.steps
    floats = d * d + 12 * d + (n * p + d * d) / spec.steps
    return flops, floats * torch.finfo(spec.dtype).bits / 8


def members(cfg, n_members: int, offset: int = 0):
    """Inputs for ``n_members`` members: each its own training set and weight decay."""
    spec = TrainSpec.from_config(cfg)
    test = make_test_set(cfg)
    ks = np.arange(offset, offset + n_members)
    sets = draw_training_sets(cfg, test, ks)
    init = ParamLayout(spec).pack([p[:, 0] for p in init_params(cfg, ks, 1)])
    wd = np.asarray(cfg.sweep.weight_decay)
    weight_decay = wd[np.arange(n_members) % len(wd)]
    return spec, {
        "x": sets.x,
        "y": sets.y,
        "x_test": test.x,
        "y_test": sets.y_test,
        "weight_decay": weight_decay,
        "init": init,
    }


def time_engine(spec, inp, gram: bool = True) -> float:
    t = time.perf_counter()
    train_batched(spec, **inp, gram=gram)
    return time.perf_counter() - t


def time_loop(spec, inp) -> float:
    t = time.perf_counter()
    for i in range(len(inp["x"])):
        train_one(
            spec, inp["x"][i], inp["y"][i], inp["x_test"], inp["weight_decay"][i], inp["init"][i]
        )
    return time.perf_counter() - t


def bench_workloads(quick: bool, repeats: int) -> list[dict]:
    plan = {  # workload: (models in the loop, member counts for the engine)
        "W1": (2, [8, 32]) if quick else (3, [8, 16, 64]),
        "W2": (4, [64, 512]) if quick else (8, [64, 256, 1024]),
        "W3": (8, [64, 512]) if quick else (16, [64, 256, 1024]),
    }
    rows = []
    peak_runs, dram_runs, cache_runs = [], [], []
    for name, (preset, over) in WORKLOADS.items():
        cfg = load_config(preset=preset, overrides=over)
        n_loop, counts = plan[name]
        spec, loop_inp = members(cfg, n_loop)
        n = cfg.data.n_train
        plain = (spec.flops_per_step(n) * spec.steps, bytes_per_step(spec, n) * spec.steps)
        cost = plain
        kind = "gd"
        if gram_applies(spec, minibatch=False):  # W3: the engine trains it in the Gram form
            cost, kind = tuple(c * spec.steps for c in gram_cost(spec, n)), "gd (Gram form)"
        drawn = {c: members(cfg, c)[1] for c in counts}  # each count's inputs, drawn once
        # (label, spec, inputs, members, Gram form allowed, (FLOPs, bytes) per model)
        variants = [(f"bvsim {kind}, {c} members", spec, drawn[c], c, True, cost)
                    for c in counts]  # fmt: skip
        if kind != "gd":
            c = counts[0]
            variants.append((f"bvsim gd (plain kernel), {c} members", spec,
                             drawn[c], c, False, plain))  # fmt: skip
            no_loop = [o for o in over if o.split("=")[0] not in GD_SOLVER_KEYS]
            exact = TrainSpec.from_config(
                load_config(preset=preset, overrides=[*no_loop, "train.solver=closed_form"])
            )
            c = counts[-1]
            variants.append((f"bvsim closed_form, {c} members", exact, drawn[c], c,
                             True, (np.nan, np.nan)))  # fmt: skip
        costs = {"loop": plain} | {v[0]: v[5] for v in variants}
        times = {"loop": []} | {v[0]: [] for v in variants}
        for _ in range(repeats):  # interleaved: loop, then each engine variant
            peak_runs.append(matmul_peak(1))
            dram_runs.append(copy_bandwidth(256 * 2**20, 1))
            cache_runs.append(copy_bandwidth(4 * 2**20, 1))
            times["loop"].append(time_loop(spec, loop_inp) / n_loop)
            for label, vspec, inp, c, gram, _ in variants:
                times[label].append(time_engine(vspec, inp, gram) / c)
        loop_rate = 1 / statistics.median(times["loop"])
        peak = statistics.median(peak_runs)
        for label, per_model in times.items():
            rate = 1 / statistics.median(per_model)
            flops_model, moved = costs[label]
            gflops = flops_model * rate / 1e9
            rows.append(
                {
                    "workload": name,
                    "method": "per-model torch.optim loop" if label == "loop" else label,
                    "models_per_s": rate,
                    "speedup_vs_loop": rate / loop_rate,
                    "gflops": gflops,
                    "share_of_peak": gflops / peak,
                    "peak_gflops": peak,
                    "gbytes_per_s": moved * rate / 1e9,
                    "flop_per_byte": flops_model / moved,
                }
            )
            print(
                f"{name} {rows[-1]['method']:34s} {rate:10.1f} models/s "
                f"{rate / loop_rate:8.1f}x  {gflops:6.1f} GFLOP/s "
                f"({100 * gflops / peak:4.1f}% of {peak:.0f}, the peak so far)",
                flush=True,
            )
    # one peak for every row: the median of all the mm (and copy) runs interleaved above
    peak = statistics.median(peak_runs)
    dram, cache = statistics.median(dram_runs), statistics.median(cache_runs)
    for row in rows:
        row["share_of_peak"], row["peak_gflops"] = row["gflops"] / peak, peak
        row["dram_gbytes_per_s"], row["cache_gbytes_per_s"] = dram, cache
        row["share_of_dram"] = row["gbytes_per_s"] / dram
        row["share_of_cache"] = row["gbytes_per_s"] / cache
        # the roofline: the smaller of the two ceilings at this arithmetic intensity
        fpb = row["flop_per_byte"]  # (NaN for the closed-form solver)
        row["roof_dram_gflops"] = min(peak, fpb * dram) if np.isfinite(fpb) else np.nan
        row["roof_cache_gflops"] = min(peak, fpb * cache) if np.isfinite(fpb) else np.nan
    print(f"matmul peak, median of {len(peak_runs)} runs: {peak:.0f} GFLOP/s; copy "
          f"bandwidth {dram:.1f} GB/s (256 MiB), {cache:.1f} GB/s (4 MiB)")  # fmt: skip
    return rows


class TorchRegressor:
    """A scikit-learn style wrapper (fit/predict) of the W2 torch model for mlxtend."""

    def __init__(self, spec, weight_decay, init, **_):
        self.spec, self.weight_decay, self.init = spec, weight_decay, init

    def get_params(self, deep=False):
        return {"spec": self.spec, "weight_decay": self.weight_decay, "init": self.init}

    def set_params(self, **params):
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, x, y):
        self.x_, self.y_ = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return self

    def predict(self, x):
        pred, _ = train_one(self.spec, self.x_, self.y_, np.asarray(x), self.weight_decay,
                            self.init)  # fmt: skip
        return pred


def bench_mlxtend(n_wd: int, n_reps: int) -> dict | None:
    """One whole decomposition (W2, n_wd lambdas x n_reps training sets): mlxtend's
    bootstrap loop around the torch model against ``bvsim`` on the same work."""
    try:
        from mlxtend.evaluate import bias_variance_decomp
    except ImportError:
        print("mlxtend not installed (pip install -e '.[bench]'): skipping", flush=True)
        return None
    wd = [0.0, *np.logspace(-4, 0, n_wd - 1).tolist()]
    over = [*W2_MODEL, f"sweep.n_reps={n_reps}", f"sweep.weight_decay={wd}"]
    cfg = load_config(preset="seed-demo", overrides=over)
    spec = TrainSpec.from_config(cfg)
    test = make_test_set(cfg)
    sets = draw_training_sets(cfg, test, [0])
    init = ParamLayout(spec).pack([p[:, 0] for p in init_params(cfg, [0], 1)])[0]
    t = time.perf_counter()
    for lam in wd:
        bias_variance_decomp(
            TorchRegressor(spec, lam, init),
            sets.x[0],
            sets.y[0],
            test.x,
            sets.y_test[0],
            loss="mse",
            num_rounds=n_reps,
            random_seed=0,
        )
    t_mlxtend = time.perf_counter() - t
    from bvsim.io.tables import summarize
    from bvsim.run.sweep import train_sweep

    t = time.perf_counter()
    summarize(train_sweep(cfg, n_jobs=1, progress=False))
    t_bvsim = time.perf_counter() - t
    row = {
        "workload": f"W2 decomposition {n_wd} lambda x {n_reps} sets",
        "method": "mlxtend bias_variance_decomp",
        "seconds": t_mlxtend,
        "bvsim_seconds": t_bvsim,
        "speedup": t_mlxtend / t_bvsim,
    }
    print(
        f"{row['workload']}: mlxtend {t_mlxtend:.1f} s, bvsim {t_bvsim:.2f} s "
        f"-> {row['speedup']:.0f}x",
        flush=True,
    )
    return row


#: The small CNN of the user-module row: the one the module tests size chunks for.
SMALL_CNN = f"{Path(__file__).resolve().parents[1] / 'tests/fixtures/user_code.py'}:make_small_cnn"


def w2_module():
    """The W2 network as a user's module (a factory for ``model.module``)."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1)
    )


def bench_modules(quick: bool, repeats: int) -> list[dict]:
    """A user's module against the built-in engine, end to end (``train_sweep``, one
    worker): the W2 network as ``model.kind = "mlp"``, as a module (recognised and
    trained by the engine) and as a module through torch.func; and a small CNN."""
    from bvsim.run.sweep import train_sweep

    n_reps = 16 if quick else 64
    common = [*W2_MODEL, "sweep.weight_decay=[0, 0.001, 0.01, 0.1]", f"sweep.n_reps={n_reps}"]
    module = ["model.kind=module", f"model.module={Path(__file__).resolve()}:w2_module"]
    variants = {
        "W2 built-in engine (model.kind = mlp)": common,
        "W2 as a user's module (auto: engine)": [*common, *module],
        "W2 as a user's module (torch.func)": [*common, *module, "model.module_trainer=func"],
        "small CNN as a user's module (torch.func)": [
            "data.dim=64", "data.truth=linear", "data.x_dist=gaussian",
            "data.test_design=sample", "data.n_train=20", "train.lr=0.01",
            "sweep.weight_decay=[0, 0.001, 0.01, 0.1]", f"sweep.n_reps={n_reps // 4}",
            "model.kind=module", f"model.module={SMALL_CNN}",
            "train.steps=500",
        ],
    }  # fmt: skip
    cfgs = {k: load_config(preset="seed-demo", overrides=v) for k, v in variants.items()}
    times = {k: [] for k in variants}
    for _ in range(repeats):  # interleaved
        for label, cfg in cfgs.items():
            t = time.perf_counter()
            train_sweep(cfg, n_jobs=1, progress=False)
            times[label].append(time.perf_counter() - t)
    rows = []
    engine = statistics.median(times[next(iter(times))])
    for label, cfg in cfgs.items():
        sec = statistics.median(times[label])
        n = len(cfg.sweep.weight_decay) * cfg.sweep.n_reps * cfg.sweep.n_seeds
        # the engine's time is a yardstick only for the same network and work
        ratio = sec / engine if label.startswith("W2") else np.nan
        rows.append({"workload": label, "seconds": sec, "models": n,
                     "models_per_s": n / sec, "time_vs_engine": ratio})  # fmt: skip
        print(f"{label:45s} {n:5d} models {sec:7.2f} s  {n / sec:7.1f} models/s "
              f"{ratio:5.2f}x the engine's time", flush=True)  # fmt: skip
    return rows


def bench_default_sweep() -> dict:
    """Wall time and peak memory of the default ``make sweep`` (seed-demo, all cores)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bvsim", "sweep", "--preset", "seed-demo", "--out", tmp,
             "--no-figures"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        wall = time.perf_counter() - t
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"default sweep (seed-demo, 2 workers): {wall:.0f} s, peak RSS {rss_mib:.0f} MiB")
    return {"seconds": wall, "peak_rss_mib": rss_mib}


def _roofs(rows) -> dict:
    """(workload, FLOP/byte) -> (a method, roof from memory, roof from cache)."""
    return {
        (r["workload"], round(r["flop_per_byte"], 2)): (
            r["method"],
            r["roof_dram_gflops"],
            r["roof_cache_gflops"],
        )
        for r in rows
        if not np.isnan(r["flop_per_byte"])
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--skip-sweep", action="store_true", help="skip the default-sweep timing")
    ap.add_argument("--skip-mlxtend", action="store_true")
    args = ap.parse_args(argv)
    setup_process(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    date = time.strftime("%Y-%m-%d")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"bvsim bench {date}: {cpu}, torch {torch.__version__}, 1 thread", flush=True)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    rows = bench_workloads(args.quick, repeats=3 if not args.quick else 1)
    table = pd.DataFrame(rows)
    table.to_csv(out / "bench.csv", index=False)
    modules = bench_modules(args.quick, repeats=3 if not args.quick else 1)
    pd.DataFrame(modules).to_csv(out / "bench_modules.csv", index=False)
    scaling, caches = bench_scaling.bench_scaling(args.quick, repeats=3 if not args.quick else 1)
    pd.DataFrame(scaling).to_csv(out / "bench_scaling.csv", index=False)
    crossed = bench_scaling.bench_crossed(repeats=3 if not args.quick else 1)
    pd.DataFrame(crossed).to_csv(out / "bench_crossed.csv", index=False)
    extra = []
    if not args.skip_mlxtend:
        mlx = bench_mlxtend(8, 50 if not args.quick else 10)
        if mlx:
            extra.append(
                f"| {mlx['workload']} | mlxtend `bias_variance_decomp` {mlx['seconds']:.1f} s "
                f"vs `bvsim` {mlx['bvsim_seconds']:.2f} s | **{mlx['speedup']:.0f}x** |"
            )
    if not args.skip_sweep:
        sw = bench_default_sweep()
        extra.append(
            f"| default `make sweep` (seed-demo, 500 models, 2 workers) | "
            f"{sw['seconds']:.0f} s wall, peak RSS {sw['peak_rss_mib']:.0f} MiB | |"
        )
    md = [
        f"Measured {date} on {cpu} ({platform.machine()}), torch {torch.__version__}, "
        "one thread per process, by `make bench`.",
        "",
        "| workload | method | models/s | vs loop | GFLOP/s | % of matmul peak | GB/s "
        "moved | % of memory copy (cache copy) | FLOP/byte |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gd = not np.isnan(r["gflops"])
        g = f"{r['gflops']:.1f}" if gd else ""
        share = f"{100 * r['share_of_peak']:.0f}%" if gd else ""
        gb = f"{r['gbytes_per_s']:.1f}" if gd else ""
        mem = f"{100 * r['share_of_dram']:.0f}% ({100 * r['share_of_cache']:.0f}%)" if gd else ""
        md.append(
            f"| {r['workload']} | {r['method']} | {r['models_per_s']:.1f} | "
            f"{r['speedup_vs_loop']:.1f}x | {g} | {share} | {gb} | {mem} | "
            f"{r['flop_per_byte']:.2f} |".replace("nan", "")
        )
    md += [
        "",
        "Matmul peak (float32 2048^3 `torch.mm`, 1 thread; median of the runs interleaved "
        "with the workloads above): "
        f"{rows[0]['peak_gflops']:.0f} GFLOP/s. Copy bandwidth (float32 `copy_`, read + "
        f"write, interleaved the same way): {rows[0]['dram_gbytes_per_s']:.1f} GB/s for "
        f"256 MiB (main memory), {rows[0]['cache_gbytes_per_s']:.1f} GB/s for 4 MiB "
        "(cache). GB/s moved = the bytes a step must move as implemented "
        "(`bytes_per_step` in scripts/bench.py; `gram_cost` for the Gram form, whose "
        "FLOPs are those it runs) x steps x models/s. Roofline ceilings, "
        "min(matmul peak, FLOP/byte x bandwidth), from main memory / from cache: "
        + "; ".join(
            f"{w} {'Gram form ' if 'Gram' in m else ''}({fb:.2f} FLOP/byte) {rd:.0f} / "
            f"{rc:.0f} GFLOP/s"
            for (w, fb), (m, rd, rc) in _roofs(rows).items()
        )
        + ".",
    ]
    md += [
        "",
        "A user's module against the built-in engine (`train_sweep`, one worker, "
        "2000 SGD steps; the CNN 500 steps):",
        "",
        "| workload | models | seconds | models/s | time vs the engine |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['workload']} | {r['models']} | {r['seconds']:.2f} | "
            f"{r['models_per_s']:.1f} | "
            + ("" if np.isnan(r["time_vs_engine"]) else f"{r['time_vs_engine']:.2f}x")
            + " |"
            for r in modules
        ),
    ]
    md += bench_scaling.markdown(scaling, caches, crossed)
    if extra:
        md += ["", "| end to end | time | speed-up |", "|---|---|---:|", *extra]
    md += [
        "",
        f"The whole run took {(time.perf_counter() - started) / 60:.0f} min; the load "
        f"average (1 min) was {load_before:.2f} at its start and {os.getloadavg()[0]:.2f} "
        f"at its end, on {os.cpu_count()} cores.",
    ]
    (out / "bench.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
