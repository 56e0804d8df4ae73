"""How much would fused element-wise kernels buy on W2? A probe, not a benchmark row.

Times, in one process on one thread, a W2 SGD step (MLP 1-32-32-1, n_train 20, 256
members, momentum, coupled L2) three ways: bvsim's engine (``train_batched``), the
same step written as one functional function in eager PyTorch, and that function
compiled by ``torch.compile`` (Inductor fuses the element-wise work around the
batched matrix products). Prints microseconds per step, the compile time, and the
share of the engine's time spent in batched matrix products (``torch.profiler``).

    python scripts/probe_compile.py [--members 256] [--steps 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench import W2_MODEL, members  # noqa: E402

from bvsim import load_config  # noqa: E402
from bvsim.train.devices import setup_process  # noqa: E402
from bvsim.train.trainers import train_batched  # noqa: E402


def w2_step(x, y, lam, lr, beta, params, bufs):
    """One full-batch SGD step (momentum, coupled L2) of every member; functional."""
    w1, b1, w2, b2, w3, b3 = params
    n = x.shape[1]
    h1 = torch.relu(torch.addcmul(b1, x, w1))
    h2 = torch.relu(torch.baddbmm(b2, h1, w2))
    out = torch.baddbmm(b3, w3.transpose(1, 2), h2.transpose(1, 2)).transpose(1, 2)
    g = ((out.squeeze(-1) - y) * (2.0 / n)).unsqueeze(-1)
    gz2 = g * w3.transpose(1, 2) * (h2 > 0)
    gz1 = torch.bmm(gz2, w2.transpose(1, 2)) * (h1 > 0)
    grads = (
        torch.bmm(x.transpose(1, 2), gz1),
        gz1.sum(1, keepdim=True),
        torch.bmm(h1.transpose(1, 2), gz2),
        gz2.sum(1, keepdim=True),
        torch.bmm(h2.transpose(1, 2), g),
        g.sum(1, keepdim=True),
    )
    new_bufs = [beta * b + gr + lam * p for p, b, gr in zip(params, bufs, grads, strict=True)]
    new_params = [p - lr * b for p, b in zip(params, new_bufs, strict=True)]
    return new_params, new_bufs


def per_step(fn, steps: int) -> float:
    fn(10)
    t = time.perf_counter()
    fn(steps)
    return (time.perf_counter() - t) / steps * 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args(argv)
    setup_process(1)
    cfg = load_config(preset="seed-demo", overrides=W2_MODEL)
    spec, inp = members(cfg, args.members)
    x = torch.tensor(inp["x"], dtype=torch.float32)
    y = torch.tensor(inp["y"], dtype=torch.float32)
    lam = torch.tensor(inp["weight_decay"], dtype=torch.float32).view(-1, 1, 1)
    m = args.members
    shapes = [(1, 32), (1, 32), (32, 32), (1, 32), (32, 1), (1, 1)]
    params0 = [torch.randn(m, *s) * 0.2 for s in shapes]

    def loop(step_fn):
        def run(steps):
            params, bufs = list(params0), [torch.zeros_like(p) for p in params0]
            for _ in range(steps):
                params, bufs = step_fn(x, y, lam, spec.lr, spec.momentum, params, bufs)

        return run

    def engine(steps):
        train_batched(dataclasses.replace(spec, steps=steps), **inp)

    t = time.perf_counter()
    compiled = torch.compile(w2_step, fullgraph=True, dynamic=False)
    loop(compiled)(1)
    compile_s = time.perf_counter() - t
    rows = {"bvsim engine": [], "functional, eager": [], "functional, torch.compile": []}
    for _ in range(3):  # interleaved repeats, best of 3
        rows["bvsim engine"].append(per_step(engine, args.steps))
        rows["functional, eager"].append(per_step(loop(w2_step), args.steps))
        rows["functional, torch.compile"].append(per_step(loop(compiled), args.steps))
    print(f"W2, {m} members, 1 thread; compile took {compile_s:.1f} s")
    for name, times in rows.items():
        print(f"{name:28s} {min(times):8.0f} us/step")
    with torch.profiler.profile() as prof:
        engine(args.steps)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    gemm = sum(e.self_cpu_time_total for e in events if "bmm" in e.key)
    print(f"engine time in batched matrix products (bmm, baddbmm): {100 * gemm / total:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
