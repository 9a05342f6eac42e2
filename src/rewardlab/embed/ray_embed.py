"""Embedding on a Ray cluster: the texts missing from the cache go through Ray Data over an actor pool.

Why it is shaped this way:

- Each actor builds the encoder once (from its spec) and checks that its fingerprint equals the driver's, so a
  worker with another onnxruntime or other weights fails loudly instead of filling the cache with other vectors.
- A Ray Data row is one *chunk*: the same length-sorted chunks of ``chunk_size`` texts as the serial path
  (`rewardlab.embed.embedding.embed_texts`), encoded by one ``encode`` call. Batch composition is therefore the
  serial path's, so even an encoder whose output depended on its batch neighbours (padding) would give the same
  vectors; the ones shipped (MiniLM int8/ONNX, hashing) do not depend on them anyway (tested).
- Vectors come back to the driver, which writes each chunk into the content-addressed cache as it arrives: workers
  need no shared filesystem, an interrupted run keeps what was done, and a chunk that Ray re-ran after a worker died
  is stored once (the driver keeps the first copy of each chunk id).
- Ray is imported only here, inside functions: the core never imports it (DESIGN.md).
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.embed.base import Encoder, make_encoder
from rewardlab.embed.cache import EmbeddingCache
from rewardlab.embed.embedding import EmbedStats, length_sorted_chunks, unique_index
from rewardlab.errors import EncoderError, RewardlabError

#: environment variables that size OpenMP, BLAS and rayon (tokenizers) thread pools in an actor
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS")
#: the `--ray` value that means "start a Ray instance on this machine" (also what a bare `--ray` gives)
LOCAL = "local"
CONNECT_TIMEOUT_S = 5.0


class RayClusterError(RewardlabError):
    """Ray is missing, or the cluster at an address cannot be reached or used."""


@dataclass(frozen=True)
class ChunkResult:
    """One chunk as a worker returned it: which texts (by chunk id), which worker process, how long ``encode`` took."""

    chunk: int
    texts: int
    worker: str  # "node-ip:pid"
    pid: int
    encode_seconds: float


@dataclass
class RayEmbedStats(EmbedStats):
    """`EmbedStats` plus what the cluster did: workers, chunks, time inside ``encode`` per worker."""

    workers: int = 0
    chunks: list[ChunkResult] = field(default_factory=list)
    duplicate_chunks: int = 0  # chunks Ray ran twice (a worker died after finishing one); stored once

    def encode_seconds_by_worker(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for chunk in self.chunks:
            totals[chunk.worker] = totals.get(chunk.worker, 0.0) + chunk.encode_seconds
        return totals


def require_ray() -> Any:
    """The ``ray`` module, or one clear line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayClusterError("--ray needs Ray: pip install 'rewardlab[ray]' (or pip install 'ray[data]')") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail fast, in one line, when nothing listens at ``host:port`` (ray.init would retry for a minute)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise RayClusterError(f"Ray address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379), 'auto' or '{LOCAL}'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RayClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} (start one with "
                              f"`ray start --head`, or give --ray local for a Ray instance on this machine)") from None


@contextmanager
def ray_session(address: str | None = LOCAL, num_cpus: int | None = None) -> Iterator[Any]:
    """Connected Ray for the duration: an existing connection is reused and left open; otherwise this connects to
    ``address`` (``local``/None: a new local instance, no dashboard, logs in a temporary folder) and disconnects."""
    ray = require_ray()
    if address not in (None, LOCAL, "auto"):
        _check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error", "configure_logging": True}
    temp: str | None = None
    try:
        if address in (None, LOCAL):
            temp = tempfile.mkdtemp(prefix="rewardlab-ray-")
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, _temp_dir=temp, **quiet)
        else:
            ray.init(address=address, **quiet)
    except RayClusterError:
        raise
    except Exception as exc:  # ConnectionError, RuntimeError, version mismatch... all one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayClusterError(f"cannot use the Ray cluster at {address}: {first}") from None
    try:
        yield ray
    except BaseException as exc:
        ray.shutdown()
        if temp is not None and not isinstance(exc, RewardlabError | KeyboardInterrupt):
            warnings.warn(f"the local Ray instance's logs are kept in {temp}", stacklevel=3)
        raise
    ray.shutdown()
    if temp is not None:  # a run that went well leaves no Ray session folders behind
        shutil.rmtree(temp, ignore_errors=True)


def matching_encoder(spec: str, fingerprint: str, on_gpu: bool) -> tuple[Encoder, str]:
    """The encoder for ``spec`` whose fingerprint is the driver's, and its device: on a GPU actor the GPU build when
    it computes the same vector space (fp32 specs), else the CPU build; neither matching is an `EncoderError`."""
    devices = ["cuda", "cpu"] if on_gpu and "device" in inspect.signature(make_encoder).parameters else ["cpu"]
    build: Any = make_encoder  # takes device= once encoders have devices (embed/devices.py)
    seen = []
    for device in devices:
        encoder = build(spec) if device == "cpu" else build(spec, device=device)
        if encoder.fingerprint() == fingerprint:
            return encoder, device
        seen.append(f"{encoder.fingerprint()!r} on {device}")
    raise EncoderError(f"a Ray worker built encoder {spec!r} as {', '.join(seen)}, not the driver's {fingerprint!r} "
                       "(different weights or library versions on that node, or a GPU-only precision)")


class _ChunkEncoder:
    """The Ray Data actor: one encoder per actor process, built from the driver's spec and checked by fingerprint."""

    def __init__(self, spec: str, fingerprint: str, threads: int, settings: dict[str, str]) -> None:
        import ray

        os.environ.update(settings)  # the driver's REWARDLAB_* settings (models dir...), whatever env the node has
        # every thread pool sized to this actor's CPUs before a library starts one (OpenMP, BLAS, the tokenizers'
        # rayon pool): actors side by side on a node must not each start a thread per core
        os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
        encoder, self.device = matching_encoder(spec, fingerprint, on_gpu=bool(ray.get_gpu_ids()))
        if hasattr(encoder, "workers"):  # the CPU encoders run one text (or batch) per thread: one per CPU held
            encoder.workers = threads
        encoder.encode(["warm-up"])  # load now: the model load is start-up, not the first chunk's encode time
        if "torch" in sys.modules:  # torch encoders set a thread per core when they load; this actor holds fewer
            import torch

            torch.set_num_threads(threads)
        self.encoder = encoder
        self.worker = f"{ray.util.get_node_ip_address()}:{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors, seconds = [], []
        for texts in batch["texts"]:
            started = time.perf_counter()
            encoded = np.asarray(self.encoder.encode([str(t) for t in texts]), dtype=np.float32)
            seconds.append(time.perf_counter() - started)
            vectors.append(encoded.tobytes())
        n = len(batch["chunk"])
        return {"chunk": batch["chunk"], "vectors": np.array(vectors, dtype=object),
                "texts": np.array([len(t) for t in batch["texts"]]), "seconds": np.array(seconds),
                "worker": np.array([self.worker] * n, dtype=object), "pid": np.array([os.getpid()] * n)}


def rewardlab_settings() -> dict[str, str]:
    """The driver's ``REWARDLAB_*`` environment, for the workers (where built models live, for instance)."""
    return {name: value for name, value in os.environ.items() if name.startswith("REWARDLAB_")}


def embed_texts_ray(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    address: str | None = LOCAL,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    chunk_size: int = 256,
    workers: int | None = None,
    cpus_per_worker: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_chunk: Callable[[ChunkResult], None] | None = None,
) -> tuple[np.ndarray, RayEmbedStats]:
    """Like `embed_texts`, with the cache misses encoded on a Ray cluster (see the module docstring).

    ``workers``: actors in the pool, ``cpus_per_worker``: CPUs (and threads) of each (default: one actor per GPU when
    the cluster has GPUs, else one per CPU; see `pool_size`). ``on_chunk`` sees each chunk as it
    arrives (benchmarks, tests).
    """
    started = time.perf_counter()
    unique, inverse = unique_index(texts)
    if on_progress:
        on_progress(0, len(unique))
    cache = EmbeddingCache(encoder.fingerprint(), encoder.dim, cache_dir) if use_cache else None
    vectors = np.zeros((len(unique), encoder.dim), dtype=np.float32)  # one row per distinct text, as embed_unique
    found = cache.lookup(unique, vectors) if cache else np.zeros(len(unique), dtype=bool)
    hits = int(found.sum())
    chunks = length_sorted_chunks([unique[i] for i in np.flatnonzero(~found).tolist()], chunk_size)
    missing = sum(len(c) for c in chunks)
    if on_progress:
        on_progress(hits, len(unique))
    stats = RayEmbedStats(len(texts), len(unique), hits, missing, 0.0, cache.corrupt_packs if cache else 0)
    if chunks:
        with ray_session(address) as ray:
            row_of = {text: row for row, text in enumerate(unique)}
            stats.workers, done = _run_chunks(ray, chunks, encoder, workers, cpus_per_worker, cache, vectors, row_of,
                                              stats, hits, len(unique), on_progress, on_chunk)
    out = vectors[inverse]
    stats.seconds = time.perf_counter() - started
    return out, stats


def pool_size(ray: Any, workers: int | None, cpus_per_worker: int | None) -> tuple[int, int, float]:
    """(actors, CPUs per actor, GPUs per actor). On a GPU cluster: one actor per GPU. Otherwise, by default, one actor
    per CPU, each on one thread: processes side by side share no interpreter lock, and benchmarks/embed_scale.py
    measured 2 actors × 1 core at or above 1 actor × 2 cores once each actor's thread pools were sized to its CPUs
    (it costs one model copy per CPU in memory). ``workers`` alone shares each node's CPUs among that many actors;
    ``cpus_per_worker`` sets the CPUs (and threads) of each."""
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise RayClusterError("--ray workers must be at least 1")
    if cpus_per_worker is not None and (isinstance(cpus_per_worker, bool) or cpus_per_worker < 1):
        raise RayClusterError("CPUs per Ray worker must be at least 1")
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return workers or gpus, cpus_per_worker or 1, 1.0
    node_cpus = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
    node_cpus = [cpus for cpus in node_cpus if cpus > 0] or [max(1, int(resources.get("CPU", 1)))]
    per_actor = cpus_per_worker or (min(min(node_cpus), max(1, sum(node_cpus) // workers)) if workers else 1)
    return workers or max(1, sum(cpus // per_actor for cpus in node_cpus)), per_actor, 0.0


def _run_chunks(ray: Any, chunks: list[list[str]], encoder: Encoder, workers: int | None, cpus_per_worker: int | None,
                cache: EmbeddingCache | None, vectors: np.ndarray, row_of: dict[str, int], stats: RayEmbedStats,
                hits: int, total: int, on_progress: Callable[[int, int], None] | None,
                on_chunk: Callable[[ChunkResult], None] | None) -> tuple[int, int]:
    import ray.data

    size, threads, gpus = pool_size(ray, workers, cpus_per_worker)
    size = min(size, len(chunks))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-run INFO lines or progress-bar advice in the output
    # longest chunks first (they are length-sorted): the slowest work starts early instead of forming the tail
    rows = [{"chunk": i, "texts": chunks[i]} for i in reversed(range(len(chunks)))]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        _ChunkEncoder, fn_constructor_args=(encoder.spec, encoder.fingerprint(), threads, rewardlab_settings()),
        batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=size),
        num_cpus=0 if gpus else threads, num_gpus=gpus or None)
    # Ray Data's actors default to max_restarts=-1 and max_task_retries=-1: a dead worker's actor is restarted and
    # its chunk runs again (tests/embed/test_ray_embed.py kills one mid-run)
    done = hits
    seen: set[int] = set()
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for i in range(len(batch["chunk"])):
                chunk_id = int(batch["chunk"][i])
                if chunk_id in seen:
                    stats.duplicate_chunks += 1
                    continue
                seen.add(chunk_id)
                chunk = chunks[chunk_id]
                encoded = np.frombuffer(batch["vectors"][i], dtype=np.float32).reshape(len(chunk), encoder.dim)
                if cache:
                    cache.put_many(chunk, encoded)  # per chunk, so an interrupted run keeps its work
                vectors[[row_of[text] for text in chunk]] = encoded
                result = ChunkResult(chunk_id, len(chunk), str(batch["worker"][i]), int(batch["pid"][i]),
                                     float(batch["seconds"][i]))
                stats.chunks.append(result)
                done += len(chunk)
                if on_chunk:
                    on_chunk(result)
                if on_progress:
                    on_progress(done, total)
    except RewardlabError:
        raise
    except Exception as exc:
        cause = user_cause(exc)
        if cause is not None:
            raise cause from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayClusterError(f"embedding on Ray failed: {first}") from None
    if len(seen) != len(chunks):
        raise RayClusterError(f"embedding on Ray returned {len(seen)} of {len(chunks)} chunks")
    return size, done


def user_cause(exc: BaseException) -> RewardlabError | None:
    """A `RewardlabError` raised inside a worker (e.g. a fingerprint mismatch), found in Ray's wrapped chain."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        inner = getattr(current, "cause", None)  # Ray's RayTaskError(X) is an X too, but X's own instance is here
        if isinstance(current, RewardlabError) and not isinstance(inner, BaseException):
            return current
        stack += [current.__cause__, current.__context__, inner]
    return None
