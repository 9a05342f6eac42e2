"""`rewardlab annotate serve` under load, on SQLite and PostgreSQL, with and without a kill -9 in the middle.

For each backend: a fresh database (a SQLite file; PostgreSQL: a throwaway server from initdb on 127.0.0.1),
1 admin + N annotators, one pairwise project (overlap k, items enough for every annotator's submissions).
The real server runs as a subprocess. N concurrent annotators (asyncio, one httpx client each) each do S times
POST /next + POST /labels. Measured: submissions/s, p50/p99 latency of `next` and `labels`, HTTP errors.
Checked in the database afterwards: every acknowledged label (200, created=true) is stored with the assignment
it was submitted for (lost = 0), and no assignment, (item, annotator) pair or item has too many labels.

--kill (default): the same load again on a fresh database, with SIGKILL to the server's process group after
about a third of the submissions; then restart on the same database, check every acknowledged label survived,
and let each annotator submit a few more. Exits non-zero on errors, lost, duplicated or missing labels.

    .venv/bin/python benchmarks/annotate_load.py [--backends sqlite,postgresql] [--annotators 50]
        [--submissions 40] [--overlap 3] [--workers 1] [--kill/--no-kill]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa

from rewardlab.collect.local_postgres import HOST, create_database, free_port, throwaway_postgres
from rewardlab.collect.store import items, labels, make_engine, open_store

AFTER_RESTART = 2  # submissions per annotator once the killed server is back


@contextmanager
def database_factory(backend: str, tmp: Path) -> Iterator[Callable[[str], str]]:
    """Yields name -> URL of a fresh, empty database: SQLite files, or databases on a throwaway PostgreSQL."""
    if backend == "sqlite":
        yield lambda name: str(tmp / f"{name}.db")
        return
    with throwaway_postgres() as server:
        yield lambda name: create_database(server, name)


def setup_project(url: str, annotators: int, submissions: int, overlap: int) -> tuple[int, list[str], int]:
    """Admin, annotators (all members) and a pairwise project; returns (project id, tokens, items)."""
    store = open_store(url)
    store.create_user("admin", "admin")
    tokens = [store.create_user(f"annotator{i:03d}") for i in range(annotators)]
    project_id = store.create_project("load", "pairwise", "Pick the better answer.", overlap)
    for i in range(annotators):
        store.add_member(project_id, f"annotator{i:03d}")
    n_items = math.ceil(annotators * submissions * 1.05 / overlap)  # 5% spare: nobody runs out
    store.import_items(project_id, [(f"item{i:05d}", {
        "prompt": f"Question {i}: how should one approach problem number {i}?",
        "responses": [f"A careful answer {i}, step by step. " * 3, f"A quick answer {i}."]}) for i in range(n_items)])
    store.engine.dispose()
    return project_id, tokens, n_items


class Server:
    """`python -m rewardlab.cli annotate serve` in its own session, so SIGKILL reaches every uvicorn process."""

    def __init__(self, url: str, workers: int, log: Path) -> None:
        self.url, self.workers, self.log = url, workers, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> None:
        port = free_port()
        self.base = f"http://{HOST}:{port}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "rewardlab.cli", "annotate", "serve", "--db", self.url,
                                          "--host", HOST, "--port", str(port), "--workers", str(self.workers)],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/api/health", timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after 60 s:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.proc = None


@dataclass
class Load:
    next_ms: list[float] = field(default_factory=list)
    label_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    acked: dict[int, int] = field(default_factory=dict)  # label id -> assignment id it was submitted for
    seconds: float = 0.0
    cut_off: int = 0  # annotators stopped by the kill


async def annotator(base: str, project_id: int, token: str, n: int, load: Load, killed: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                                 trust_env=False) as client:
        for _ in range(n):
            try:
                started = time.perf_counter()
                reply = await client.post(f"/api/projects/{project_id}/next")
                load.next_ms.append((time.perf_counter() - started) * 1000)
                if reply.status_code != 200:
                    load.errors[f"next HTTP {reply.status_code}: {reply.text[:120]}"] += 1
                    continue
                if reply.json()["done"]:
                    load.errors["next: no item left"] += 1
                    return
                assignment_id = reply.json()["assignment"]["assignment_id"]
                started = time.perf_counter()
                reply = await client.post("/api/labels", json={"assignment_id": assignment_id, "seconds": 1.0,
                                                               "value": {"choice": rng.choice(("a", "b", "tie"))}})
                load.label_ms.append((time.perf_counter() - started) * 1000)
                if reply.status_code != 200:
                    load.errors[f"labels HTTP {reply.status_code}: {reply.text[:120]}"] += 1
                elif not reply.json()["created"]:
                    load.errors["labels created=false on a fresh assignment"] += 1
                else:
                    load.acked[int(reply.json()["label_id"])] = assignment_id
            except httpx.TransportError as exc:
                if killed.is_set():  # expected: the server is gone
                    load.cut_off += 1
                    return
                load.errors[f"transport {type(exc).__name__}"] += 1


async def run_load(server: Server, project_id: int, tokens: list[str], n: int, kill_after: int | None = None) -> Load:
    load, killed = Load(), asyncio.Event()

    async def killer() -> None:
        while kill_after is not None and len(load.acked) < kill_after:
            await asyncio.sleep(0.002)
        killed.set()
        server.stop(signal.SIGKILL)

    started = time.perf_counter()
    tasks = [asyncio.create_task(annotator(server.base, project_id, t, n, load, killed, i)) for i, t in enumerate(tokens)]
    watcher = asyncio.create_task(killer()) if kill_after is not None else None
    await asyncio.gather(*tasks)
    load.seconds = time.perf_counter() - started
    if watcher is not None and not watcher.done():
        watcher.cancel()
    return load


@dataclass
class Check:
    stored: int
    lost: int  # acknowledged, not in the table (or stored under another assignment)
    duplicated: int  # extra labels per assignment + per (item, annotator) + items over overlap


def verify(url: str, project_id: int, overlap: int, acked: dict[int, int]) -> Check:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(labels.c.id, labels.c.assignment_id, labels.c.item_id, labels.c.user_id)
                            .where(labels.c.project_id == project_id)).all()
        over_assigned = conn.execute(sa.select(sa.func.count()).select_from(items).where(
            items.c.project_id == project_id, items.c.assigned > overlap)).scalar_one()
    engine.dispose()
    stored = {r.id: r.assignment_id for r in rows}
    lost = sum(1 for label_id, assignment_id in acked.items() if stored.get(label_id) != assignment_id)
    extra = sum(c - 1 for c in Counter(r.assignment_id for r in rows).values() if c > 1)
    extra += sum(c - 1 for c in Counter((r.item_id, r.user_id) for r in rows).values() if c > 1)
    extra += sum(c - overlap for c in Counter(r.item_id for r in rows).values() if c > overlap)
    return Check(len(rows), lost, extra + int(over_assigned))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


HEADER = (f"{'backend':<11}{'phase':<8}{'subm':>6}{'sec':>7}{'subm/s':>8}{'next p50':>10}{'next p99':>10}"
          f"{'label p50':>11}{'label p99':>11}{'errors':>8}{'lost':>6}{'dup':>5}")


def row(backend: str, phase: str, load: Load, check: Check) -> str:
    n = len(load.acked)
    return (f"{backend:<11}{phase:<8}{n:>6}{load.seconds:>7.2f}{n / load.seconds:>8.1f}{pct(load.next_ms, 50):>10.1f}"
            f"{pct(load.next_ms, 99):>10.1f}{pct(load.label_ms, 50):>11.1f}{pct(load.label_ms, 99):>11.1f}"
            f"{sum(load.errors.values()):>8}{check.lost:>6}{check.duplicated:>5}")


def bench_backend(backend: str, args: argparse.Namespace, tmp: Path) -> tuple[list[str], list[str], bool]:
    """Returns (table rows, notes, ok)."""
    rows, notes, ok = [], [], True
    phases = ["clean", "kill"] if args.kill else ["clean"]
    with database_factory(backend, tmp) as new_database:
        for phase in phases:
            url = new_database(f"load_{phase}")
            project_id, tokens, n_items = setup_project(url, args.annotators, args.submissions, args.overlap)
            server = Server(url, args.workers, tmp / f"{backend}-{phase}.log")
            server.start()
            kill_after = args.annotators * args.submissions // 3 if phase == "kill" else None
            try:
                load = asyncio.run(run_load(server, project_id, tokens, args.submissions, kill_after))
            finally:
                server.stop()
            check = verify(url, project_id, args.overlap, load.acked)
            rows.append(row(backend, phase, load, check))
            notes += [f"{backend}/{phase}: {count} × {error}" for error, count in load.errors.items()]
            ok &= not load.errors and check.lost == 0 and check.duplicated == 0
            if phase != "kill":
                continue
            server.start()  # same database, after kill -9
            try:
                survived = verify(url, project_id, args.overlap, load.acked)
                notes.append(f"{backend}/kill -9 after {kill_after} acks ({load.cut_off} annotators cut off): acknowledged "
                             f"{len(load.acked)}, present {len(load.acked) - survived.lost}, missing {survived.lost}; "
                             f"{survived.stored} labels stored")
                more = asyncio.run(run_load(server, project_id, tokens, AFTER_RESTART))
            finally:
                server.stop()
            final = verify(url, project_id, args.overlap, {**load.acked, **more.acked})
            notes.append(f"{backend}/after restart: {len(more.acked)} of {AFTER_RESTART * len(tokens)} new submissions "
                         f"acknowledged, {sum(more.errors.values())} errors; overall lost {final.lost}, "
                         f"duplicated {final.duplicated}, {final.stored} labels on {n_items} items")
            notes += [f"{backend}/after restart: {count} × {error}" for error, count in more.errors.items()]
            ok &= (survived.lost == 0 and final.lost == 0 and final.duplicated == 0 and not more.errors
                   and len(more.acked) == AFTER_RESTART * len(tokens))
    return rows, notes, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--submissions", type=int, default=40, help="per annotator")
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--kill", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the load with a kill -9 of the server in the middle")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := set(backends) - {"sqlite", "postgresql"}:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    print(f"{args.annotators} annotators × {args.submissions} submissions, overlap {args.overlap}, "
          f"{args.workers} uvicorn worker(s); latencies in ms")
    all_rows, all_notes, ok = [], [], True
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"rewardlab-load-{backend}-") as tmp:
            os.chmod(tmp, 0o755)  # the postgres user must reach its data directory
            rows, notes, backend_ok = bench_backend(backend, args, Path(tmp))
        all_rows += rows
        all_notes += notes
        ok &= backend_ok
    print(HEADER)
    print("\n".join(all_rows))
    for note in all_notes:
        print(note)
    print(f"{'OK' if ok else 'FAILED'} in {time.perf_counter() - started:.1f} s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
