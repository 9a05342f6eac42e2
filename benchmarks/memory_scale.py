"""Peak memory and time of embed → train → evaluate on a large comparison file, against a 1k-row baseline run
of the same steps in the same run (what the encoder, the imports and the model cost before the data does).

A deterministic TRL-format JSONL (prompt / chosen / rejected, short texts recombined from the shared HH-RLHF
test dialogues, or from the bundled demo where the shared data is absent) is written once. Each step runs as its
own `rewardlab` process, so its peak RSS (ru_maxrss of that child, read with os.wait4) is its own:

    embed DATA --encoder E            (fills a fresh cache)
    train DATA --head bt-linear       (on the cached embeddings)
    evaluate DATA --model M           (on the cached embeddings)

The table gives rows, seconds, rows/s, peak RSS and peak RSS beyond the baseline's same step. A step that runs
past --step-timeout is stopped and reported as such (its peak so far is still measured).

    python benchmarks/memory_scale.py                                  # 200k rows, hashing encoder
    python benchmarks/memory_scale.py --encoder minilm:int8 --rows 20000
    python benchmarks/memory_scale.py --out benchmarks/results/memory_scale.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_cpu  # noqa: E402

HH_FILE = Path(os.environ.get("REWARDLAB_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
               ) / "hh-rlhf-harmless-base-test" / "test.jsonl.gz"
BASELINE_ROWS = 1000
_TURN = re.compile(r"\n\n(Human|Assistant): ")
#: texts stay short (a sentence or two), as the issue's measurement had them
MAX_CHARS = 240
#: the steps, in order; ``--steps`` picks some (a step is named by its first word)
STEPS = ("embed", "train", "evaluate")


def _turns() -> tuple[list[str], list[str]]:
    """(human turns, assistant turns) of the HH-RLHF dialogues: the shared test split, else the bundled demo."""
    humans: list[str] = []
    assistants: list[str] = []
    if HH_FILE.exists():
        with gzip.open(HH_FILE, "rt", encoding="utf-8") as handle:
            dialogues = [json.loads(line)[side] for line in handle for side in ("chosen", "rejected")]
    else:
        from rewardlab.data import load_named

        demo = load_named("hh-harmless-demo")
        dialogues = [p.text for p in demo.prompts.values()] + [r.text for r in demo.responses.values()]
    for dialogue in dialogues:
        parts = _TURN.split(dialogue)
        for speaker, text in zip(parts[1::2], parts[2::2]):
            text = " ".join(text.split())[:MAX_CHARS]
            if text:
                (humans if speaker == "Human" else assistants).append(text)
    return sorted(set(humans)), sorted(set(assistants))


def write_comparisons(path: Path, rows: int, seed: int = 0) -> Path:
    """``rows`` TRL comparisons, two per prompt: each prompt joins two human turns, each response two assistant
    turns, so texts are realistic, short, and almost all distinct. Deterministic given ``seed``."""
    humans, assistants = _turns()
    rng = np.random.default_rng(seed)
    n_prompts = (rows + 1) // 2
    prompt_parts = rng.integers(0, len(humans), size=(n_prompts, 2))
    response_parts = rng.integers(0, len(assistants), size=(rows, 2, 2))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in range(rows):
            p = prompt_parts[row // 2]
            prompt = f"{humans[p[0]]} {humans[p[1]]}"
            chosen, rejected = (f"{assistants[a]} {assistants[b]}" for a, b in response_parts[row])
            if chosen == rejected:
                rejected += " Sorry."
            handle.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
    os.replace(tmp, path)
    return path


def _command() -> list[str]:
    script = Path(sys.executable).parent / "rewardlab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rewardlab.cli"]


def run_step(args: list[str], timeout: float) -> dict[str, Any]:
    """Run one `rewardlab` command; its seconds, peak RSS (MB) and whether it finished within ``timeout``."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(_command() + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, stop)
    timer.start()
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")  # drained as it runs, so the child never blocks on a pipe
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    ok = proc.returncode == 0 and not timed_out.is_set()
    if not ok and not timed_out.is_set():
        print(output[-2000:], file=sys.stderr)
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "finished": ok, "timed_out": timed_out.is_set(), "returncode": proc.returncode,
            "load_average_before": load, "load_average_after": os.getloadavg()[0]}


def run_pipeline(data: Path, rows: int, encoder: str, work: Path, timeout: float,
                 fallback_model: Path | None = None, steps: tuple[str, ...] = STEPS) -> list[dict[str, Any]]:
    """embed, train bt-linear, evaluate --model on ``data`` (those of them in ``steps``), each its own process,
    sharing one cache: a fresh one when ``embed`` runs, else the one an earlier run left in ``work``. Where training
    did not finish, evaluate scores with ``fallback_model`` (the baseline's: its memory does not depend on the data a
    model was trained on), and says so."""
    cache = work / f"cache-{rows}"
    model = work / f"model-{rows}"
    if "embed" in steps:
        shutil.rmtree(cache, ignore_errors=True)
    elif not cache.is_dir():
        raise SystemExit(f"{cache} is missing: run the embed step first (--steps embed,...) with this --workdir")
    if "train" in steps:
        shutil.rmtree(model, ignore_errors=True)
    common = ["--encoder", encoder, "--cache-dir", str(cache), "--quiet"]
    commands = [
        ("embed", ["embed", str(data), *common]),
        ("train bt-linear", ["train", str(data), "--head", "bt-linear", "--out", str(model), "--overwrite", *common]),
    ]
    results = []

    def run(name: str, args: list[str], note: str = "") -> dict[str, Any]:
        result = run_step(args, timeout)
        results.append({"step": name, "rows": rows, **result, "note": note})
        state = "ok" if result["finished"] else ("TIMED OUT" if result["timed_out"] else "FAILED")
        print(f"  {name:<18} {rows:>8} rows {result['seconds']:>8.1f}s ({result['cpu_seconds']:.1f} CPU s) "
              f"{result['peak_rss_mb']:>9.0f} MB  {state} {note}", flush=True)
        return result

    for name, args in commands:
        if name.split()[0] in steps:
            run(name, args)
    if "evaluate" not in steps:
        return results
    trained = (model / "config.json").exists()
    scorer, note = (model, "") if trained else (fallback_model, "with the 1k-row model (training did not finish)")
    if scorer is not None:
        run("evaluate --model", ["evaluate", str(data), "--model", str(scorer), "--cache-dir", str(cache), "--quiet"],
            note)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--encoder", default="hashing")
    parser.add_argument("--step-timeout", type=float, default=900.0, help="seconds before a step is stopped")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data, caches and models here (default: a "
                                                                   "temporary directory)")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help="comma-separated steps to run (default: all); without embed, the caches of an earlier "
                             "run in --workdir are used")
    parser.add_argument("--label", default="", help="a note stored with the results, e.g. 'before'")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory_scale.json"))
    args = parser.parse_args()
    steps = tuple(s.strip() for s in args.steps.split(",") if s.strip())
    if not steps or set(steps) - set(STEPS):
        parser.error(f"--steps takes a comma-separated subset of {', '.join(STEPS)}")

    temp = None if args.workdir else tempfile.TemporaryDirectory()
    work = args.workdir or Path(temp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"CPU: {describe_cpu()}; encoder {args.encoder}")
        results = []
        for rows in (BASELINE_ROWS, args.rows):
            data = work / f"comparisons-{rows}.jsonl"
            if not data.exists():
                write_comparisons(data, rows)
            print(f"{rows} rows ({data.stat().st_size / 1e6:.1f} MB JSONL):", flush=True)
            results += run_pipeline(data, rows, args.encoder, work, args.step_timeout,
                                    work / f"model-{BASELINE_ROWS}", steps)
    finally:
        if temp is not None:
            temp.cleanup()

    baseline = {r["step"]: r for r in results if r["rows"] == BASELINE_ROWS}
    print(f"\n{'step':<18}{'rows':>9}{'seconds':>10}{'CPU s':>9}{'rows/s':>10}{'peak MB':>10}{'beyond 1k MB':>14}"
          "  status")
    for r in results:
        base = baseline.get(r["step"])
        r["beyond_baseline_mb"] = r["peak_rss_mb"] - base["peak_rss_mb"] if base else float("nan")
        status = "ok" if r["finished"] else ("timed out" if r["timed_out"] else f"failed ({r['returncode']})")
        print(f"{r['step']:<18}{r['rows']:>9}{r['seconds']:>10.1f}{r['cpu_seconds']:>9.1f}"
              f"{r['rows'] / r['seconds']:>10.0f}"
              f"{r['peak_rss_mb']:>10.0f}{r['beyond_baseline_mb']:>14.0f}  {status} {r['note']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": describe_cpu(), "encoder": args.encoder, "rows": args.rows,
                                    "baseline_rows": BASELINE_ROWS, "label": args.label,
                                    "step_timeout_s": args.step_timeout, "steps": list(steps),
                                    "load_average": os.getloadavg(), "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
