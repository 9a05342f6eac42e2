"""How long a cached `rewardlab quickstart` takes with its fits in one process and in worker processes, in one run.

Every run is the command itself (a subprocess each, from start to exit, imports included), on the bundled demo data
with every embedding already cached (a first run fills the cache if needed, and is not timed). Each run reports its
wall seconds and its CPU seconds: user + system time of the command and every process it started, fold workers and
their forkserver included (this process becomes their subreaper, so each one is waited for and counted even after
the command has exited). On a shared machine the wall time follows the other processes' load; the CPU time much
less, so both are reported, with the load average before and after.

The baseline is ``--workers 1`` (every fit in the command's own process, as before worker processes); rewardlab's
default is ``--workers 0`` (one process per core). ``--baseline-src DIR`` adds the default run of another source tree
(a ``src`` folder of an older commit, put first on PYTHONPATH): a before/after in the same session. The tables (fit
times aside) must be identical: where a fit runs never changes what it computes. Each setting is run ``--repeats``
times, alternating, and the median is reported. The issue's target: a cached quickstart in ≤ 30 s on an idle 2-core
AVX2 machine.

    python benchmarks/quickstart_speed.py [--repeats 3] [--baseline-src /tmp/old/src] \\
        [--out benchmarks/results/quickstart_speed.json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from machine import describe_cpu

ROOT = Path(__file__).resolve().parent.parent
#: prctl option that makes orphaned descendants (a forkserver outliving the command) this process's children
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Setting:
    label: str
    workers: int
    src: Path | None = None  # a source tree put first on PYTHONPATH (None: the installed rewardlab)


def become_subreaper() -> bool:
    """Whether this process now adopts its orphaned descendants (Linux only), so their CPU time can be counted."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans() -> None:
    """Wait for every adopted descendant still running (a forkserver exits once its parent has)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_quickstart(setting: Setting, runs: Path, cache: Path | None) -> tuple[float, float, str]:
    """Wall seconds of one quickstart, its CPU seconds (all its processes), and its results table."""
    command = [sys.executable, "-m", "rewardlab.cli", "quickstart", "--quiet", "--workers", str(setting.workers),
               "--runs", str(runs)]
    if cache is not None:
        command += ["--cache-dir", str(cache)]
    env = dict(os.environ)
    if setting.src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(setting.src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    seconds, cpu, run_dir = timed_quickstart(command, env, runs)
    return seconds, cpu, without_fit_seconds((run_dir / "table.txt").read_text(encoding="utf-8"))


def timed_quickstart(command: list[str], env: dict[str, str], runs: Path) -> tuple[float, float, Path]:
    """Run one quickstart ``command`` writing under ``runs``: its wall seconds, its CPU seconds (the command and every
    process it started, reaped here) and the run folder it wrote."""
    before = set(runs.glob("*-quickstart"))
    cpu_before = children_cpu()
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    reap_orphans()
    cpu = children_cpu() - cpu_before
    (run_dir,) = set(runs.glob("*-quickstart")) - before
    return seconds, cpu, run_dir


def without_fit_seconds(table: str) -> str:
    """The table without its last column where that is a number of seconds (fit times differ from run to run)."""
    return "\n".join(re.sub(r"│\s*[\d.]+\s*│\s*$", "│", line) for line in table.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=None, help="Embedding cache (default: the user cache).")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="Also run the default setting from this source tree (put first on PYTHONPATH).")
    parser.add_argument("--skip-one-process", action="store_true",
                        help="Leave out --workers 1 (on a loaded machine its two threads per step wait for the cores "
                             "and one run can take minutes).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/quickstart_speed.json"))
    args = parser.parse_args()
    one_process, default = Setting("in one process (--workers 1)", 1), Setting("one process per core (default)", 0)
    settings = [default] if args.skip_one_process else [one_process, default]
    if args.baseline_src is not None:
        settings.append(Setting(f"default, from {args.baseline_src}", 0, args.baseline_src.resolve()))
    counted = become_subreaper()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        run_quickstart(default, runs, args.cache_dir)  # fills the cache if it is cold; not timed
        wall: dict[str, list[float]] = {s.label: [] for s in settings}
        cpu: dict[str, list[float]] = {s.label: [] for s in settings}
        tables: dict[str, str] = {}
        for _ in range(args.repeats):
            for setting in settings:
                seconds, cpu_seconds, tables[setting.label] = run_quickstart(setting, runs, args.cache_dir)
                wall[setting.label].append(seconds)
                cpu[setting.label].append(cpu_seconds)
                print(f"  {setting.label}: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU, load average "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
    load_after = os.getloadavg()
    same = len(set(tables.values())) == 1
    median_wall = {label: statistics.median(t) for label, t in wall.items()}
    median_cpu = {label: statistics.median(t) for label, t in cpu.items()}
    print(f"cached quickstart, {args.repeats} runs each, on {describe_cpu()}")
    print(f"load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.2f}' for x in load_after)}")
    if not counted:
        print("(not a subreaper here: CPU seconds leave out processes that outlived the command)")
    print(f"{'fits':<36}{'wall s':>8}{'CPU s':>8}{'wall runs (s)':>24}{'CPU runs (s)':>24}")
    for setting in settings:
        label = setting.label
        print(f"{label:<36}{median_wall[label]:>8.1f}{median_cpu[label]:>8.1f}"
              f"{', '.join(f'{t:.1f}' for t in wall[label]):>24}{', '.join(f'{t:.1f}' for t in cpu[label]):>24}")
    one, default_label = one_process.label, default.label
    if not args.skip_one_process:
        print(f"speed-up of the default over one process {median_wall[one] / median_wall[default_label]:.2f}x")
    print(f"identical tables: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "cpu": describe_cpu(), "repeats": args.repeats, "load_average_before": load_before,
        "load_average_after": load_after, "cpu_counts_descendants": counted,
        "settings": {s.label: {"workers": s.workers, "src": None if s.src is None else str(s.src),
                               "wall_seconds": wall[s.label], "cpu_seconds": cpu[s.label],
                               "median_wall": median_wall[s.label], "median_cpu": median_cpu[s.label]}
                     for s in settings},
        "speedup": None if args.skip_one_process else median_wall[one] / median_wall[default_label],
        "identical_tables": same}, indent=2) + "\n")
    if not same:
        sys.exit("the tables differ: where the fits ran changed the results")


if __name__ == "__main__":
    main()
