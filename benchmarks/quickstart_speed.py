"""How long a cached `rewardlab quickstart` takes with its fits in one process and in worker processes, in one run.

Both runs are the command itself (a subprocess each, wall clock from start to exit, imports included), on the
bundled demo data with every embedding already cached (a first run fills the cache if needed, and is not timed).
The baseline is ``--workers 1`` (every fit in the command's own process, as before worker processes); rewardlab's
default is ``--workers 0`` (one process per core). The two tables (fit times aside) must be identical: the workers
change where a fit runs, not what it computes. Each setting is run ``--repeats`` times, alternating, and the median is reported.
The issue's target: a cached quickstart in ≤ 30 s on an idle 2-core AVX2 machine.

    python benchmarks/quickstart_speed.py [--repeats 3] [--out benchmarks/results/quickstart_speed.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe_cpu

ROOT = Path(__file__).resolve().parent.parent


def run_quickstart(workers: int, runs: Path, cache: Path | None) -> tuple[float, str]:
    """Wall seconds of one quickstart, and its results table (table.txt of the run it wrote)."""
    command = [sys.executable, "-m", "rewardlab.cli", "quickstart", "--quiet", "--workers", str(workers),
               "--runs", str(runs)]
    if cache is not None:
        command += ["--cache-dir", str(cache)]
    before = set(runs.glob("*-quickstart"))
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    (run_dir,) = set(runs.glob("*-quickstart")) - before
    return seconds, without_fit_seconds((run_dir / "table.txt").read_text(encoding="utf-8"))


def without_fit_seconds(table: str) -> str:
    """The table without its last column where that is a number of seconds (fit times differ from run to run)."""
    return "\n".join(re.sub(r"│\s*[\d.]+\s*│\s*$", "│", line) for line in table.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None, help="Embedding cache (default: the user cache).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quickstart_speed.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        run_quickstart(0, runs, args.cache_dir)  # fills the cache if it is cold; not timed
        times: dict[int, list[float]] = {1: [], 0: []}
        tables: dict[int, str] = {}
        for _ in range(args.repeats):
            for workers in times:
                seconds, tables[workers] = run_quickstart(workers, runs, args.cache_dir)
                times[workers].append(seconds)
    same = tables[1] == tables[0]
    median = {w: statistics.median(t) for w, t in times.items()}
    print(f"cached quickstart, {args.repeats} runs each, on {describe_cpu()}")
    print(f"{'fits':<32}{'median s':>10}{'runs (s)':>28}")
    for workers, label in ((1, "in one process (--workers 1)"), (0, "one process per core (default)")):
        print(f"{label:<32}{median[workers]:>10.1f}{', '.join(f'{t:.1f}' for t in times[workers]):>28}")
    print(f"speed-up {median[1] / median[0]:.2f}x; identical tables: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": describe_cpu(), "seconds": {"workers_1": times[1], "workers_0": times[0]},
                                    "median": {"workers_1": median[1], "workers_0": median[0]},
                                    "speedup": median[1] / median[0], "identical_tables": same}, indent=2) + "\n")
    if not same:
        sys.exit("the tables differ: worker processes changed the results")


if __name__ == "__main__":
    main()
