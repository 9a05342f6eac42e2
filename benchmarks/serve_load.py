"""`rewardlab serve` under load, beside in-process scoring of the same texts in the same run.

A reward model (bt-linear on the bundled HH-RLHF demo, encoder ``--encoder``; or ``--model DIR``) is served by
the real command (`rewardlab serve`, a separate process on 127.0.0.1). ``--clients`` concurrent clients each send
``--requests`` requests of ``--texts`` (prompt, response) pairs to /score, one after another on a kept-alive
connection. Every pair is unique (no cache hits anywhere: the comparison is of embedding + scoring work).

Baselines, in this process, on exactly the same pairs, with no embedding cache either:

- in-process per request: `RewardModel` featurize + head, one call per request's pairs (what a trainer calling
  the model itself would do with the same batches), timed before and after the served run and averaged;
- in-process, one call: all pairs at once (the best case: one big encoder pass).

Reports throughput (pairs/s), request latency p50 / p99, errors (non-200 or failed requests), the served/in-process
ratios, whether the served rewards equal the per-request in-process ones, and the server's micro-batches; prints a
table and writes JSON. The issue's full load is ``--clients 32 --requests 200 --texts 8``; the defaults are small
enough for about a minute on 2 busy cores.

    python benchmarks/serve_load.py [--encoder minilm:int8] [--clients 8] [--requests 6] [--texts 8]
        [--model DIR] [--max-wait-ms 5] [--out benchmarks/results/serve_load.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def make_pairs(n: int, limit: int) -> list[tuple[str, str]]:
    """``n`` distinct (prompt, response) pairs from the HH-RLHF demo; a tag makes every text unique, so neither side
    is helped by repeated texts."""
    from rewardlab.data import load_named

    dataset = load_named("hh-harmless-demo", limit)
    prompts = [p.text for p in dataset.prompts.values()]
    responses = [r.text for r in dataset.responses.values()]
    return [(f"{prompts[k % len(prompts)]} [{k}]", f"{responses[(k * 7) % len(responses)]} ({k})") for k in range(n)]


def train_model(encoder: str, folder: Path, limit: int) -> Path:
    from rewardlab.data import load_named
    from rewardlab.rewards.model import RewardModel

    dataset = load_named("hh-harmless-demo", limit)
    RewardModel.create("bt-linear", encoder=encoder, max_epochs=30).fit(dataset).save(folder)
    return folder


def in_process_score(model: Any, pairs: list[tuple[str, str]]) -> np.ndarray:
    """What `RewardModel.score` computes, without the on-disk embedding cache (which would add a pack file per call)."""
    from rewardlab.rewards.features import featurize_texts

    x, _ = featurize_texts([p for p, _ in pairs], [r for _, r in pairs], model.encoder, model.features, use_cache=False)
    return np.asarray(model.predict_stats(x)["score"])


def per_request(model: Any, requests: list[list[tuple[str, str]]]) -> tuple[float, list[list[float]]]:
    """(seconds, rewards): one in-process call per request."""
    started = time.perf_counter()
    rewards = [[float(v) for v in in_process_score(model, pairs)] for pairs in requests]
    return time.perf_counter() - started, rewards


def one_call(model: Any, requests: list[list[tuple[str, str]]]) -> float:
    started = time.perf_counter()
    in_process_score(model, [pair for pairs in requests for pair in pairs])
    return time.perf_counter() - started


def start_server(model_dir: Path, port: int, max_wait_ms: float, env: dict[str, str],
                 extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    import httpx

    command = [sys.executable, "-c", "from rewardlab.cli import app; app()", "serve", str(model_dir), "--port",
               str(port), "--max-wait-ms", str(max_wait_ms), "--max-items", "100000", "--request-timeout", "600",
               "--max-queue", "10000000", *extra]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.communicate()[1][-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not start within 180 s")
        time.sleep(0.2)


async def load(base: str, per_client: list[list[list[tuple[str, str]]]]) -> tuple[float, list[float], int,
                                                                                     list[list[list[float] | None]]]:
    """Every client sends its requests in turn: (wall seconds, latencies, errors, rewards per client and request)."""
    import httpx

    latencies: list[float] = []
    errors = 0

    async def client(requests: list[list[tuple[str, str]]]) -> list[list[float] | None]:
        nonlocal errors
        out: list[list[float] | None] = []
        async with httpx.AsyncClient(base_url=base, timeout=600) as http:
            for pairs in requests:
                started = time.perf_counter()
                try:
                    reply = await http.post("/score", json={"items": [{"prompt": p, "response": r} for p, r in pairs]})
                    ok = reply.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                if ok:
                    out.append(reply.json()["rewards"])
                else:
                    errors += 1
                    out.append(None)
        return out

    started = time.perf_counter()
    results = await asyncio.gather(*(client(requests) for requests in per_client))
    return time.perf_counter() - started, latencies, errors, list(results)


def ray_serve_rows(model_dir: Path, port: int, max_wait_ms: float, env: dict[str, str], warmup: list[tuple[str, str]],
                   per_client: list[list[list[tuple[str, str]]]], expected: list[list[float]], n: int
                   ) -> dict[str, dict[str, Any]]:
    """The same load against `serve --ray-serve` with 1 and then 2 replicas (a fresh local Ray instance each)."""
    import httpx

    rows: dict[str, dict[str, Any]] = {}
    for replicas in (1, 2):
        server = start_server(model_dir, port, max_wait_ms, env, ("--ray-serve", "--replicas", str(replicas)))
        try:
            httpx.post(f"http://127.0.0.1:{port}/score",
                       json={"items": [{"prompt": p, "response": r} for p, r in warmup]}, timeout=120)
            wall, latencies, errors, served = asyncio.run(load(f"http://127.0.0.1:{port}", per_client))
        finally:
            server.terminate()
            server.wait(timeout=60)
        flat = [r for client in served for r in client]
        lat = np.asarray(latencies) * 1000
        rows[f"{replicas}"] = {"seconds": wall, "pairs_per_s": n / wall, "p50_ms": float(np.percentile(lat, 50)),
                               "p99_ms": float(np.percentile(lat, 99)), "errors": errors,
                               "rewards_identical_to_in_process": all(s == e for s, e in zip(flat, expected))}
    return rows


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="minilm:int8", help="encoder of the model trained for the run")
    parser.add_argument("--model", type=Path, default=None, help="serve this trained model instead of training one")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=6, help="requests per client")
    parser.add_argument("--texts", type=int, default=8, help="(prompt, response) pairs per request")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--train-rows", type=int, default=60, help="demo rows the benchmark's model trains on")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--ray-serve", action="store_true", help="also serve with --ray-serve, 1 and 2 replicas "
                                                                  "(needs pip install 'rewardlab[ray]')")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_load.json"))
    args = parser.parse_args()

    import httpx

    from rewardlab.rewards.model import RewardModel

    run_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rewardlab-serve-load-") as tmp:
        env = {**os.environ, "REWARDLAB_CACHE_DIR": str(Path(tmp) / "cache")}
        os.environ["REWARDLAB_CACHE_DIR"] = env["REWARDLAB_CACHE_DIR"]
        model_dir = args.model or train_model(args.encoder, Path(tmp) / "model", args.train_rows)
        model = RewardModel.load(model_dir)
        n = args.clients * args.requests * args.texts
        pairs = make_pairs(n + 4, 10_000)
        warmup, pairs = pairs[:4], pairs[4:]
        requests = [pairs[i:i + args.texts] for i in range(0, n, args.texts)]
        per_client = [requests[c * args.requests:(c + 1) * args.requests] for c in range(args.clients)]
        model.score([p for p, _ in warmup], [r for _, r in warmup])  # load the encoder outside the timings

        print(f"{args.clients} clients × {args.requests} requests × {args.texts} pairs = {n} pairs; model "
              f"{model.kind} on {model.encoder.spec} ({model.features}); CPU {cpu_model()}, {os.cpu_count()} cores",
              flush=True)
        # in-process before and after the served run, averaged: the machine's other load drifts during a run
        before_s, expected = per_request(model, requests)

        server = start_server(model_dir, args.port, args.max_wait_ms, env)
        base = f"http://127.0.0.1:{args.port}"
        try:
            httpx.post(f"{base}/score", json={"items": [{"prompt": p, "response": r} for p, r in warmup]}, timeout=120)
            wall, latencies, errors, served = asyncio.run(load(base, per_client))
            metrics = httpx.get(f"{base}/metrics", timeout=30).text
        finally:
            server.terminate()
            server.wait(timeout=30)
        ray_rows = (ray_serve_rows(model_dir, args.port, args.max_wait_ms, env, warmup, per_client, expected, n)
                    if args.ray_serve else {})
        after_s, _ = per_request(model, requests)
        one_call_s = one_call(model, requests)
        per_request_s = (before_s + after_s) / 2

    flat_served = [r for client in served for r in client]
    diffs = [float(np.max(np.abs(np.subtract(s, e)))) for s, e in zip(flat_served, expected) if s is not None and e]
    identical = all(s == e for s, e in zip(flat_served, expected))
    lat = np.asarray(latencies) * 1000
    batches = metric(metrics, "rewardlab_batches_total")
    result = {
        "clients": args.clients, "requests_per_client": args.requests, "pairs_per_request": args.texts, "pairs": n,
        "encoder": model.encoder.spec, "features": model.features, "max_wait_ms": args.max_wait_ms,
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "served": {"seconds": wall, "pairs_per_s": n / wall, "p50_ms": float(np.percentile(lat, 50)),
                   "p99_ms": float(np.percentile(lat, 99)), "errors": errors, "requests": len(latencies),
                   "micro_batches": batches, "mean_batch_pairs": n / batches if batches else None,
                   "largest_batch_pairs": metric(metrics, "rewardlab_largest_batch_pairs")},
        "in_process_per_request": {"seconds": per_request_s, "pairs_per_s": n / per_request_s,
                                   "seconds_before": before_s, "seconds_after": after_s},
        "in_process_one_call": {"seconds": one_call_s, "pairs_per_s": n / one_call_s},
        "ratio_vs_per_request": per_request_s / wall,
        "ratio_vs_one_call": one_call_s / wall,
        "rewards_identical_to_in_process": identical,
        "max_abs_reward_diff": max(diffs) if diffs else None,
        "run_seconds": time.perf_counter() - run_started,
    }
    if ray_rows:
        result["ray_serve_replicas"] = ray_rows
        result["ray_serve_2_vs_1"] = ray_rows["2"]["pairs_per_s"] / ray_rows["1"]["pairs_per_s"]
    rows = [("served (rewardlab serve)", wall, "", f"{result['served']['p50_ms']:.0f} / {result['served']['p99_ms']:.0f}",
             str(errors)),
            ("in-process, per request", per_request_s, f"{result['ratio_vs_per_request']:.2f}", "", ""),
            ("in-process, one call", one_call_s, f"{result['ratio_vs_one_call']:.2f}", "", "")]
    print(f"{'variant':<28}{'seconds':>9}{'pairs/s':>10}{'served ÷':>10}{'p50 / p99 ms':>16}{'errors':>8}")
    for replicas, row in ray_rows.items():
        rows.append((f"Ray Serve, {replicas} replica{'s' if replicas != '1' else ''}", row["seconds"], "",
                     f"{row['p50_ms']:.0f} / {row['p99_ms']:.0f}", str(row["errors"])))
    for name, seconds, ratio, latency, errs in rows:
        print(f"{name:<28}{seconds:>9.2f}{n / seconds:>10.1f}{ratio:>10}{latency:>16}{errs:>8}")
    print(f"micro-batches: {batches:.0f} (mean {result['served']['mean_batch_pairs'] or 0:.1f} pairs, largest "
          f"{result['served']['largest_batch_pairs']:.0f}); served rewards identical to in-process per request: "
          f"{identical} (max |diff| {result['max_abs_reward_diff']})")
    if ray_rows:
        same = ", ".join(f"{k} replica(s): {v['rewards_identical_to_in_process']}" for k, v in ray_rows.items())
        print(f"Ray Serve 2 replicas ÷ 1: {result['ray_serve_2_vs_1']:.2f}× pairs/s; rewards identical to in-process: "
              f"{same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"→ {args.out} ({result['run_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
