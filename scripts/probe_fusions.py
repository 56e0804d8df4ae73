"""The untried CPU fusions of the engine's SGD step, measured (a probe, not integrated).

One process, one thread, every variant timed interleaved (median of repeats) against
a step that mirrors ``bvsim.train.mlp.BatchedMLP``'s (same helpers, imported
read-only), on the MLP workloads of ``scripts/bench.py``:

- **folded bias**: every layer with fan_in > 1 keeps [W; b] as one (fan_in + 1,
  fan_out) block and its input a ones column, so the forward product adds the bias
  and one weight-gradient product gives the bias gradient too (no broadcast copy of
  b, no ``g.sum`` and its momentum pass). The first layer (fan_in = 1) stays an
  outer product, which is faster unfolded.
- **fused update**: the momentum buffer's penalty term and the parameter update
  (``buf += lam * p; p -= lr * buf``: two passes over the parameters in eager mode) as
  one ``torch.compile``'d function over all blocks; also ``torch._foreach_*`` (the
  same two passes in fewer calls). Reports compile time in a fresh process and in a
  second one that shares the on-disk Inductor cache.
- the same, combined; a whole W2 run (2000 steps); the final parameters' max abs
  difference from the mirror in float64 and float32; and the ``torch.profiler`` top
  of the engine on W2 and W3.

    python scripts/probe_fusions.py [--members 256] [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench import W2_MODEL, WORKLOADS, members  # noqa: E402

from bvsim import load_config  # noqa: E402
from bvsim.train.devices import setup_process  # noqa: E402
from bvsim.train.engine import ParamLayout  # noqa: E402
from bvsim.train.mlp import (  # noqa: E402
    _accumulate_weight_grad,
    _forward,
    _input_grad,
    _linear,
)
from bvsim.train.trainers import train_batched  # noqa: E402


def update_blocks(params, bufs, lam, lr: float):
    """``buf += lam * p; p -= lr * buf`` block by block (all decayed, as in W1 and W2),
    in the engine's order of operations: what ``torch.compile`` fuses. The blocks come
    as separate views; slicing them out of the flat tensors inside the compiled
    function instead made Inductor write one masked kernel over the whole of both
    tensors: the W2 step took 2.3x the eager one (results/bench/probe_fusions.txt)."""
    for p, b in zip(params, bufs, strict=True):
        b.addcmul_(lam, p)
        p.add_(b, alpha=-lr)


class Net:
    """Flat layer-major parameters and momentum of ``m`` members and one SGD step,
    either as the engine does it or with the biases folded into the products."""

    def __init__(self, spec, inp, dtype, folded: bool, update: str = "eager"):
        self.spec, self.folded, dt = spec, folded, dtype
        self.x = torch.tensor(inp["x"], dtype=dt)
        self.y = torch.tensor(inp["y"], dtype=dt)
        m, n, _ = self.x.shape
        self.m, self.n = m, n
        self.lam = torch.tensor(inp["weight_decay"], dtype=dt).view(m, 1)
        packed = torch.tensor(inp["init"], dtype=dt)
        layout = ParamLayout(spec)
        assert spec.bias and spec.decay_bias and spec.activation == "relu"
        if not folded:
            self.flat = layout.to_layer_major(packed)
            self.shapes = [s for _, s in layout._blocks()]
        else:  # W0, b0, then [W; b] of every later layer
            parts, self.shapes = [], []
            for i, (w, (fi, fo), b) in enumerate(layout.slices):
                pw, pb = packed[:, w].view(m, fi, fo), packed[:, b].view(m, 1, fo)
                if i == 0 and fi == 1:
                    parts += [pw.reshape(-1), pb.reshape(-1)]
                    self.shapes += [(fi, fo), (1, fo)]
                else:
                    parts.append(torch.cat([pw, pb], 1).reshape(-1))
                    self.shapes.append((fi + 1, fo))
            self.flat = torch.cat(parts)
            # each later layer's input with a ones column; its first fan_in columns
            # receive the activation in place
            self.h_aug = [torch.ones(m, n, fi + 1, dtype=dt) for fi, _ in spec.shapes[1:]]
        self.buf = torch.zeros_like(self.flat)
        self.p, self.b = self._views(self.flat), self._views(self.buf)
        self.lam3 = self.lam.view(m, 1, 1)
        self.update = {
            "eager": self._eager,
            "foreach": self._foreach,
            "compiled": lambda: COMPILED(self.p, self.b, self.lam3, spec.lr),
        }[update]
        if not folded:  # (W, b) of every layer
            self.views = list(zip(self.p[0::2], self.p[1::2], strict=True))

    def _views(self, flat):
        out, off = [], 0
        for r, c in self.shapes:
            out.append(flat[off : off + self.m * r * c].view(self.m, r, c))
            off += self.m * r * c
        return out

    def _eager(self):
        """The engine's update: the penalty block by block, then one pass over flat."""
        for b, p in zip(self.b, self.p, strict=True):
            b.addcmul_(self.lam3, p)
        self.flat.add_(self.buf, alpha=-self.spec.lr)

    def _foreach(self):
        torch._foreach_addcmul_(self.b, [self.lam3] * len(self.b), self.p)
        self.flat.add_(self.buf, alpha=-self.spec.lr)

    def step(self):
        beta = self.spec.momentum
        if self.folded:
            self._folded_backward(self._folded_forward(), beta)
        else:
            views = self.views
            out, hs = _forward(views, self.x, "relu", keep=True)
            g = out.squeeze(-1).sub_(self.y).mul_(2.0 / self.n).unsqueeze(-1)
            for i in range(len(views) - 1, -1, -1):  # the engine's backward
                gw, gb = self.b[2 * i], self.b[2 * i + 1]
                _accumulate_weight_grad(gw, hs[i], g, beta)
                gb.mul_(beta).add_(g.sum(1, keepdim=True))
                if i > 0:
                    g = torch.ops.aten.threshold_backward(_input_grad(g, views[i][0]), hs[i], 0)
        self.update()

    def _folded_forward(self):
        w0, b0 = self.p[0], self.p[1]
        z = torch.addcmul(b0, self.x, w0)
        for i, h in enumerate(self.h_aug):
            torch.clamp_min(z, 0, out=h[..., :-1])
            z = _linear(h, self.p[2 + i], None)
        return z

    def _folded_backward(self, out, beta):
        g = out.squeeze(-1).sub_(self.y).mul_(2.0 / self.n).unsqueeze(-1)
        for i in range(len(self.h_aug) - 1, -1, -1):
            h, wa = self.h_aug[i], self.p[2 + i]
            _accumulate_weight_grad(self.b[2 + i], h, g, beta)  # weight and bias at once
            g = torch.ops.aten.threshold_backward(_input_grad(g, wa[:, :-1]), h[..., :-1], 0)
        _accumulate_weight_grad(self.b[0], self.x, g, beta)
        self.b[1].mul_(beta).add_(g.sum(1, keepdim=True))

    def packed(self) -> torch.Tensor:
        """Parameters as (members, n_params) packed, W1 b1 W2 b2 ... per member."""
        rows = []
        for i, (v, (r, c)) in enumerate(zip(self.p, self.shapes, strict=True)):
            if self.folded and i >= 2:
                rows += [v[:, :-1].reshape(self.m, -1), v[:, -1:].reshape(self.m, -1)]
            else:
                rows.append(v.reshape(self.m, r * c))
        return torch.cat(rows, 1)


#: One compiled function; Dynamo specializes it per block shapes and dtype.
COMPILED = torch.compile(update_blocks, fullgraph=True, dynamic=False)
torch._dynamo.config.cache_size_limit = 64
VARIANTS = {  # name: (folded, update)
    "mirror of the engine": (False, "eager"),
    "foreach update": (False, "foreach"),
    "fused update (compiled)": (False, "compiled"),
    "folded bias": (True, "eager"),
    "folded bias + fused update": (True, "compiled"),
}


def run(net: Net, steps: int) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        net.step()
    return time.perf_counter() - t


def time_steps(spec, inp, steps: int, repeats: int) -> dict[str, float]:
    """µs per step of each variant, and of ``train_batched`` itself (its logging
    included), interleaved; medians of ``repeats``."""
    times = {"engine (train_batched)": [], **{k: [] for k in VARIANTS}}
    nets = {k: Net(spec, inp, torch.float32, *v) for k, v in VARIANTS.items()}
    for net in nets.values():
        run(net, 2)  # warm-up (and compile)
    short = dataclasses.replace(spec, steps=steps)
    for _ in range(repeats):
        t = time.perf_counter()
        train_batched(short, **inp)
        times["engine (train_batched)"].append(time.perf_counter() - t)
        for k, net in nets.items():
            times[k].append(run(net, steps))
    return {k: statistics.median(v) / steps * 1e6 for k, v in times.items()}


def differences(spec, inp, steps: int) -> dict[str, dict[str, float]]:
    """Max abs difference of the final parameters from the mirror's, after ``steps``."""
    out = {}
    for dt in (torch.float64, torch.float32):
        ref = Net(spec, inp, dt, False)
        run(ref, steps)
        out[str(dt)] = {}
        for k, v in list(VARIANTS.items())[1:]:
            net = Net(spec, inp, dt, *v)
            run(net, steps)
            out[str(dt)][k] = (net.packed() - ref.packed()).abs().max().item()
        eng = train_batched(dataclasses.replace(spec, steps=steps, dtype=dt), **inp).params
        out[str(dt)]["engine (float32 output)"] = float(
            np.abs(eng - ref.packed().float().numpy()).max()
        )
    return out


CACHE_PROBE = r"""
import sys, time, torch
sys.path.insert(0, sys.argv[1])
from probe_fusions import COMPILED
torch.set_num_threads(1)
m, shapes = 256, [(1, 32), (1, 32), (32, 32), (1, 32), (32, 1), (1, 1)]
ps = [torch.randn(m, *s) for s in shapes]; bs = [torch.zeros(m, *s) for s in shapes]
t = time.perf_counter()
COMPILED(ps, bs, torch.rand(m, 1, 1), 0.01)
print(time.perf_counter() - t)
"""


def compile_cache() -> list[float]:
    """Compile time of the fused update (W2 shapes) in two fresh processes sharing a
    new on-disk Inductor cache: the second should find the first one's kernels."""
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"TORCHINDUCTOR_CACHE_DIR": tmp}
        here = str(Path(__file__).parent)
        return [
            float(
                subprocess.run(
                    [sys.executable, "-c", CACHE_PROBE, here],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()[-1]
            )  # fmt: skip
            for _ in range(2)
        ]


def profile_top(name: str, m: int, steps: int, top: int = 8) -> list[str]:
    preset, over = WORKLOADS[name]
    cfg = load_config(preset=preset, overrides=over)
    spec, inp = members(cfg, m)
    spec = dataclasses.replace(spec, steps=steps)
    train_batched(spec, **inp)
    with torch.profiler.profile() as prof:
        train_batched(spec, **inp)
    ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ev)
    lines = [f"{name}: {e.key} {100 * e.self_cpu_time_total / total:.1f}%" for e in ev[:top]]
    copies: dict[str, float] = {}  # whose copies: the outermost op above each copy_
    for e in prof.events():
        if e.name == "aten::copy_":
            top_op = e
            while top_op.cpu_parent is not None:
                top_op = top_op.cpu_parent
            copies[top_op.name] = copies.get(top_op.name, 0) + e.self_cpu_time_total
    for k, v in sorted(copies.items(), key=lambda kv: -kv[1])[:4]:
        lines.append(f"{name}: aten::copy_ under {k} {100 * v / total:.1f}%")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=256)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--whole-run", type=int, default=2000, help="steps of the whole run")
    ap.add_argument("--workloads", nargs="+", default=["W2", "W1"], choices=["W2", "W1"])
    ap.add_argument("--no-profile", action="store_true", help="skip the profiler and cache")
    args = ap.parse_args(argv)
    setup_process(1)
    if not args.no_profile:
        for line in profile_top("W2", args.members, 200) + profile_top("W3", args.members, 200):
            print(line, flush=True)
        compile_s = compile_cache()
        print(f"compile time of the fused update, fresh cache / second process: {compile_s}")
    plan = {"W2": (args.members, W2_MODEL), "W1": (8, [])}
    for name in args.workloads:
        m, over = plan[name]
        spec, inp = members(load_config(preset="seed-demo", overrides=over), m)
        t = time.perf_counter()
        Net(spec, inp, torch.float32, False, "compiled").step()
        first = time.perf_counter() - t
        print(f"{name}, {m} members: first step with the compiled update {first:.1f} s")
        us = time_steps(spec, inp, args.steps, args.repeats)
        base = us["mirror of the engine"]
        for k, v in us.items():
            print(f"{name} {k:32s} {v:9.0f} us/step  {base / v:5.2f}x the mirror", flush=True)
        if name == "W2":
            whole = time_steps(spec, inp, args.whole_run, 1)
            for k, v in whole.items():
                sec = v * args.whole_run / 1e6
                ratio = whole["mirror of the engine"] / v
                print(f"W2 whole run, {args.whole_run} steps: {k:32s} {sec:6.2f} s {ratio:5.2f}x")
        for dt, d in differences(spec, inp, args.whole_run if name == "W2" else 200).items():
            for k, v in d.items():
                print(f"{name} {dt} max |{k} - mirror| = {v:.3g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
