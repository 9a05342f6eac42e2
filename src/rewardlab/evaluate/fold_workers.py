"""Fold × learner fits of a cross-validation in worker processes.

The fits are independent, and one process cannot keep a small machine's cores busy: a reward head's minibatch steps
are small matrix products with Python between them, and LightGBM's rounds on a few thousand rows are short. So each
worker runs whole fits with one thread, and the workers fill the cores. Each fit keeps its seed, so the scores are
those of the in-process path (tests check it).

Workers never fork the parent (torch's thread pools do not survive a fork). Where the OS has one, they fork from a
forkserver that has imported torch, torch._dynamo and LightGBM and run nothing (`WORKER_PRELOAD`): those imports
cost about 5 s of CPU per process, paid once instead of once per worker. Elsewhere they are spawned. They get the
data once, when they start, rebuild the encoder from its spec and refuse one whose fingerprint differs from the
parent's.

Every fit's head runs on the job's ``device`` (`rewardlab.rewards.head_device`: torch heads; LightGBM stays on the
CPU), in a worker as in the parent; several workers share one GPU.
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import Encoder, make_encoder
from rewardlab.errors import ModelError

if TYPE_CHECKING:
    from rewardlab.evaluate.crossval import LearnerSpec

#: environment variables that size the thread pools of torch, OpenMP (LightGBM) and BLAS in a worker
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: what the forkserver imports before it forks the workers (torch._dynamo: every optimizer step imports it)
WORKER_PRELOAD = ["rewardlab.evaluate.fold_workers", "rewardlab.rewards.model", "torch._dynamo", "lightgbm"]


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this OS
        return os.cpu_count() or 1


def resolve_workers(workers: int, tasks: int) -> int:
    """``workers`` as asked (0: one per available core), never more than there are fits."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ModelError(f"workers must be 0 (one per core) or a positive number of processes, not {workers!r}")
    return max(1, min(workers or available_cores(), tasks))


def matching_encoder(spec: str, fingerprint: str, device: str = "cpu") -> Encoder | None:
    """The encoder ``spec`` builds with ``fingerprint``: on the CPU (a worker only checks it, the vectors are the
    parent's), else on ``device`` (on a GPU an int8 spec computes fp16 vectors, with their own fingerprint); None
    when neither gives that fingerprint."""
    for where in dict.fromkeys(["cpu", device]):
        encoder = make_encoder(spec, where)
        if encoder.fingerprint() == fingerprint:
            return encoder
    return None


def rebuilds_from_spec(encoder: Encoder, device: str = "cpu") -> bool:
    """Whether a worker can rebuild ``encoder`` from its spec alone, with the same fingerprint, on the CPU or
    ``device`` (an encoder made in code, not from a spec, cannot: its fits stay in the parent)."""
    try:
        return matching_encoder(encoder.spec, encoder.fingerprint(), device) is not None
    except Exception:  # noqa: BLE001 — any spec that does not rebuild means "no"; the fits still run, in-process
        return False


@dataclass(frozen=True)
class FoldJob:
    """What every fit of one cross-validation shares; sent once to each worker."""

    dataset: FeedbackDataset
    fold_of: dict[str, int]
    feature_rows: dict[str, np.ndarray]
    x_a: np.ndarray
    x_b: np.ndarray
    pair_fold: np.ndarray
    encoder_spec: str
    encoder_fingerprint: str
    model_args: dict[str, Any]
    #: where the heads fit, as resolved in the parent ("cpu", "cuda:0"; `rewardlab.rewards.head_device`)
    device: str = "cpu"


@dataclass(frozen=True)
class FitResult:
    fold: int
    learner: int
    score_a: np.ndarray
    score_b: np.ndarray
    seconds: float


def fold_training_set(job: FoldJob, fold: int) -> FeedbackDataset:
    """The data of every fold but ``fold``: what the learners held out on ``fold`` are trained on.

    Every learner's model records the data's fingerprint, and hashing a fold's text took 0.17 s of CPU per fit on
    the quickstart (a tenth of its fits' time, 25 fits): the fold's set is made here and never changed, so it is
    hashed at most once (when first asked), and each learner on it reads the same fingerprint."""
    train = job.dataset.subset({pid for pid, f in job.fold_of.items() if f != fold})
    setattr(train, "fingerprint", functools.cache(train.fingerprint))  # noqa: B010 — this set's own, not the class's
    return train


def fit_and_score(job: FoldJob, learners: list[LearnerSpec], train: FeedbackDataset, fold: int, learner: int,
                  encoder: Encoder) -> FitResult:
    """Fit learner ``learner`` on ``train`` (`fold_training_set` of ``fold``) and score the pairs of ``fold``."""
    from rewardlab.rewards.model import RewardModel  # torch loads only when a model is trained

    spec = learners[learner]
    started = time.perf_counter()
    model = RewardModel.create(spec.kind, encoder=encoder, ensemble=spec.ensemble, **job.model_args, **spec.params)
    model.fit(train, feature_rows=job.feature_rows, device=job.device)
    test = job.pair_fold == fold
    return FitResult(fold, learner, model.predict(job.x_a[test]), model.predict(job.x_b[test]),
                     time.perf_counter() - started)


# ---------------------------------------------------------------- in a worker process
_JOB: tuple[FoldJob, list[LearnerSpec], Encoder] | None = None
#: each fold's training set, made once per worker (a worker runs several learners on the same fold)
_TRAINING_SETS: dict[int, FeedbackDataset] = {}


def _start_worker(payload: bytes, threads: int) -> None:
    global _JOB
    # a forkserver started earlier kept the environment of its own start: the thread counts are set here too
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    job, learners = pickle.loads(payload)
    encoder = matching_encoder(job.encoder_spec, job.encoder_fingerprint, job.device)
    if encoder is None:
        raise ModelError(f"a worker's encoder {job.encoder_spec!r} does not have the parent's fingerprint "
                         f"{job.encoder_fingerprint}; run with workers=1")
    _JOB = (job, learners, encoder)


def _run_task(fold: int, learner: int) -> FitResult:
    if _JOB is None:
        raise ModelError("a fold worker ran a task before it was started")
    job, learners, encoder = _JOB
    if fold not in _TRAINING_SETS:
        _TRAINING_SETS[fold] = fold_training_set(job, fold)
    return fit_and_score(job, learners, _TRAINING_SETS[fold], fold, learner, encoder)


# ---------------------------------------------------------------- in the parent
@contextmanager
def _one_thread_per_worker(threads: int) -> Iterator[None]:
    """Spawned workers read their thread counts from the environment at start; the parent's is put back after."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _worker_context() -> BaseContext:
    """A forkserver context that preloads `WORKER_PRELOAD` where the OS has forkservers, else spawn."""
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    context = get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


def start_worker_server(workers: int) -> None:
    """Start the forkserver now, where the OS has one and ``workers`` > 1: it imports `WORKER_PRELOAD` (seconds of one
    core) while this process loads the data and its own models, instead of after, when the first fit would wait for
    it. `run_fits` then forks from it at once; without this call it starts the forkserver itself."""
    if workers <= 1 or "forkserver" not in get_all_start_methods():
        return
    from multiprocessing import forkserver

    _worker_context()  # sets the preload list on the forkserver that ensure_running starts
    with _one_thread_per_worker(max(1, available_cores() // workers)):
        forkserver.ensure_running()


def run_fits(job: FoldJob, learners: list[LearnerSpec], k: int, workers: int,
             on_result: Callable[[FitResult], None], alongside: Callable[[], None] | None = None) -> None:
    """Every (fold, learner) fit on ``workers`` processes; ``on_result`` gets each as it finishes (in any order).
    The longest fits (ensembles) start first, so no worker is left with one at the end. ``alongside`` runs in this
    process once the fits are sent (the results it delays are taken after it)."""
    tasks = sorted(((fold, i) for fold in range(k) for i in range(len(learners))),
                   key=lambda task: -(learners[task[1]].ensemble or 1))
    threads = max(1, available_cores() // workers)
    payload = pickle.dumps((job, learners), protocol=pickle.HIGHEST_PROTOCOL)
    with _one_thread_per_worker(threads), ProcessPoolExecutor(
            max_workers=workers, mp_context=_worker_context(), initializer=_start_worker,
            initargs=(payload, threads)) as pool:
        futures = [pool.submit(_run_task, fold, learner) for fold, learner in tasks]
        if alongside is not None:
            alongside()
        for future in as_completed(futures):
            on_result(future.result())


def job_model_args(features: str, seed: int, cache_dir: str | Path | None, augment: str | None,
                   annotator_weights: str) -> dict[str, Any]:
    """The `RewardModel.create` arguments every learner of a cross-validation shares (besides its own)."""
    return {"features": features, "seed": seed, "cache_dir": cache_dir, "augment": augment,
            "annotator_weights": annotator_weights}
