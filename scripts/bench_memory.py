"""Peak memory of a sweep as the number of training sets grows (``make bench-memory``).

Runs ``bvsim sweep --preset smoke`` with 16 weight decays and K training sets in a
fresh process for each K, and records wall time and the peak resident memory of the
main process and of the largest worker. Writes results/bench/memory.csv and
memory.png.

    python scripts/bench_memory.py [--reps 1000 3000 10000] [--set data.n_test=2001 ...]
    python scripts/bench_memory.py --replot   # redraw memory.png from memory.csv
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PROBE = r"""
import json, resource, sys, threading, time
import psutil
import bvsim
peak = {"worker": 0}
stop = threading.Event()
def sample():  # workers live on after the sweep (loky reuses them): sample their RSS
    me = psutil.Process()
    while not stop.is_set():
        for child in me.children(recursive=True):
            try:
                peak["worker"] = max(peak["worker"], child.memory_info().rss)
            except psutil.Error:
                pass
        time.sleep(0.1)
threading.Thread(target=sample, daemon=True).start()
cfg = bvsim.load_config(preset="smoke", overrides=sys.argv[2:])
t = time.perf_counter()
bvsim.run_sweep(cfg, sys.argv[1], n_jobs=2, progress=False, figures=False)
wall = time.perf_counter() - t
stop.set()
print(json.dumps({
    "seconds": wall,
    "main_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_mib": peak["worker"] / 2**20,
}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--set", nargs="*", default=[], help="more config overrides, key=value")
    ap.add_argument("--replot", action="store_true", help="only redraw from memory.csv")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.replot:
        plot(pd.read_csv(out / "memory.csv"), out)
        return 0
    wd = [0.0, *np.logspace(-4, 0, 15).tolist()]
    rows = []
    for k in args.reps:
        with tempfile.TemporaryDirectory() as tmp:
            over = [f"sweep.n_reps={k}", f"sweep.weight_decay={wd}", *args.set]
            t = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", PROBE, tmp, *over], capture_output=True, text=True
            )
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return 1
            row = json.loads(done.stdout.strip().splitlines()[-1])
            chunks = sum(1 for _ in Path(tmp).rglob("sets_*.npz"))
        row |= {"n_reps": k, "members": k * len(wd) * 2, "chunks": chunks,
                "process_seconds": time.perf_counter() - t}  # fmt: skip
        rows.append(row)
        print(
            f"K = {k:6d}: {row['members']:7d} members, {row['seconds']:6.1f} s, "
            f"main {row['main_mib']:6.0f} MiB, largest worker {row['worker_mib']:6.0f} MiB",
            flush=True,
        )
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "memory.csv", index=False)
    plot(table, out)
    return 0


def plot(table: pd.DataFrame, out: Path) -> None:
    """memory.png: peak RSS of the main process and the largest worker against K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    main = "main process (reads blocks from the chunk files)"
    ax.plot(table["n_reps"], table["main_mib"], "o-", label=main)
    ax.plot(table["n_reps"], table["worker_mib"], "s-", label="largest worker (one chunk)")
    ax.set_xscale("log")
    ax.set_xlabel("training sets K (smoke model, 16 λ × 2 seeds each)")
    ax.set_ylabel("peak resident memory (MiB)")
    ax.set_title("Peak memory of a sweep vs K")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "memory.png", dpi=130, metadata={"Software": None})


if __name__ == "__main__":
    sys.exit(main())
