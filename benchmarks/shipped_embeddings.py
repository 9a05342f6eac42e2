"""What shipping the demo's vectors with the package saves a first `rewardlab quickstart`, and what it costs in bytes.

Three runs of the command itself (a subprocess each, imports included), each with its own empty cache folder
(``REWARDLAB_CACHE_DIR``: embeddings, and the built ONNX graph under ``models/``), so nothing is reused from the user:

- cold, nothing shipped (the baseline; ``REWARDLAB_SHIPPED_EMBEDDINGS=off``): builds the int8 graph, embeds the demo;
- cold, shipped vectors (the candidate): the same empty folder, the package's pack found;
- cached: the baseline's folder run again (what every later run costs), for reference.

Each run reports wall and CPU seconds (user + system of the command and every process it started, fold workers
included: this process becomes their subreaper), the texts it embedded (``record.json``), and whether it built the
ONNX graph (``models/`` empty before, not after). On a shared machine wall time follows the others' load; CPU time much
less, so both are shown, with the load average. The results tables of all runs (fit times aside) must be
identical: the shipped vectors are the ones the encoder computes. Also printed: the bytes the pack adds to the
package, as a file and deflated as in a wheel.

    python benchmarks/shipped_embeddings.py [--repeats 1] [--limit N] [--out benchmarks/results/shipped_embeddings.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from machine import describe_cpu
from quickstart_speed import become_subreaper, timed_quickstart, without_fit_seconds

from rewardlab.embed.shipped import PACKAGED_DIR, SHIPPED_ENV


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    misses: int
    unique: int
    built_graph: bool
    table: str


def run_quickstart(cache: Path, runs: Path, shipped: bool, limit: int | None) -> Run:
    """One quickstart with ``cache`` as its whole cache folder (embeddings and built graphs)."""
    command = [sys.executable, "-m", "rewardlab.cli", "quickstart", "--quiet", "--runs", str(runs)]
    if limit is not None:
        command += ["--limit", str(limit)]
    env = {k: v for k, v in os.environ.items() if k not in ("REWARDLAB_MODELS_DIR", SHIPPED_ENV)}
    env["REWARDLAB_CACHE_DIR"] = str(cache)
    if not shipped:
        env[SHIPPED_ENV] = "off"
    models = cache / "models"
    had_graph = models.is_dir() and any(models.iterdir())
    wall, cpu, run_dir = timed_quickstart(command, env, runs)
    embedding = json.loads((run_dir / "record.json").read_text(encoding="utf-8"))["embedding"]
    built = not had_graph and models.is_dir() and any(models.iterdir())
    table = without_fit_seconds((run_dir / "table.txt").read_text(encoding="utf-8"))
    return Run(wall, cpu, int(embedding["cache_misses"]), int(embedding["unique"]), built, table)


def pack_bytes() -> dict[str, int]:
    """The shipped pack's size as a file, and deflated (level 6, as a wheel's zip stores it)."""
    packs = sorted(PACKAGED_DIR.glob("*.safetensors"))
    raw = sum(p.stat().st_size for p in packs)
    deflated = sum(len(zlib.compress(p.read_bytes(), 6)) for p in packs)
    return {"packs": len(packs), "file_bytes": raw, "deflated_bytes": deflated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="Runs of each setting (a cold run takes minutes).")
    parser.add_argument("--limit", type=int, default=None, help="Quickstart on the first N pairs (a quick check).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/shipped_embeddings.json"))
    args = parser.parse_args()
    counted = become_subreaper()
    load_before = os.getloadavg()
    labels = ("cold, nothing shipped", "cold, shipped vectors", "cached (second run)")
    results: dict[str, list[Run]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            runs = Path(tmp) / f"runs-{repeat}"
            runs.mkdir()
            cold, shipped = Path(tmp) / f"cold-{repeat}", Path(tmp) / f"shipped-{repeat}"
            for label, cache, uses_shipped in ((labels[0], cold, False), (labels[1], shipped, True),
                                               (labels[2], cold, False)):
                run = run_quickstart(cache, runs, uses_shipped, args.limit)
                results[label].append(run)
                print(f"  {label}: {run.wall:.1f} s wall, {run.cpu:.1f} s CPU, embedded {run.misses} of "
                      f"{run.unique} texts, built the ONNX graph: {run.built_graph}; load average "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
    load_after = os.getloadavg()
    size = pack_bytes()
    wall = {label: statistics.median(r.wall for r in runs) for label, runs in results.items()}
    cpu = {label: statistics.median(r.cpu for r in runs) for label, runs in results.items()}
    same = len({r.table for runs in results.values() for r in runs}) == 1
    print(f"quickstart{'' if args.limit is None else f' --limit {args.limit}'}, {args.repeats} run(s) each, "
          f"on {describe_cpu()}")
    print(f"load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.2f}' for x in load_after)}")
    if not counted:
        print("(not a subreaper here: CPU seconds leave out processes that outlived the command)")
    print(f"{'run':<26}{'wall s':>8}{'CPU s':>8}{'embedded':>10}{'graph':>7}")
    for label, runs in results.items():
        print(f"{label:<26}{wall[label]:>8.1f}{cpu[label]:>8.1f}{runs[0].misses:>10}"
              f"{'built' if runs[0].built_graph else '-':>7}")
    base, candidate, cached = labels
    print(f"cold run, nothing shipped / shipped: {wall[base] / wall[candidate]:.2f}x wall, "
          f"{cpu[base] / cpu[candidate]:.2f}x CPU; shipped / cached: {wall[candidate] / wall[cached]:.2f}x wall, "
          f"{cpu[candidate] / cpu[cached]:.2f}x CPU")
    print(f"the pack adds {size['file_bytes'] / 1e6:.2f} MB to the package ({size['deflated_bytes'] / 1e6:.2f} MB "
          f"deflated, as in a wheel)")
    print(f"identical tables: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "cpu": describe_cpu(), "repeats": args.repeats, "limit": args.limit, "load_average_before": load_before,
        "load_average_after": load_after, "cpu_counts_descendants": counted, "pack": size,
        "runs": {label: {"wall_seconds": [r.wall for r in runs], "cpu_seconds": [r.cpu for r in runs],
                         "median_wall": wall[label], "median_cpu": cpu[label], "embedded": [r.misses for r in runs],
                         "unique": runs[0].unique, "built_graph": [r.built_graph for r in runs]}
                 for label, runs in results.items()},
        "identical_tables": same}, indent=2) + "\n")
    if not same:
        sys.exit("the tables differ: the shipped vectors are not the ones the encoder computes")


if __name__ == "__main__":
    main()
