"""Where a benchmark workload's training time goes: ``torch.profiler`` over one
``train_batched`` run of a ``make bench`` workload (after one warm-up run).

Run: ``python scripts/profile_step.py W2 256`` (workload, members); prints the
operators by their own CPU time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from torch.profiler import profile

from bvsim import load_config
from bvsim.train.devices import setup_process
from bvsim.train.trainers import train_batched

sys.path.insert(0, str(Path(__file__).parent))
from bench import WORKLOADS, members  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("members", type=int)
    ap.add_argument("--rows", type=int, default=20)
    args = ap.parse_args(argv)
    setup_process(1)
    preset, over = WORKLOADS[args.workload]
    spec, inp = members(load_config(preset=preset, overrides=over), args.members)
    train_batched(spec, **inp)
    with profile() as prof:
        train_batched(spec, **inp)
    print(f"{args.workload}, {args.members} members, {spec.steps} steps, one thread")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
