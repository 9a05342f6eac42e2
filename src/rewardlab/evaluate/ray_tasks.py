"""Independent fits as Ray tasks: a cross-validation's fold × learner fits, a study's conditions.

Why it is shaped this way:

- What every fit shares (the dataset, the cached features, the learners) is put into Ray's object store once, and a
  worker process deserializes it once: a task gets the object's reference inside a list, so Ray does not resolve it
  per task, and the worker keeps the last shared object it fetched (with what it built from it, e.g. each fold's
  training set) for the next task of the same run.
- Each fit keeps its own seed and writes only its own scores, and the results are gathered in submission order, so
  the numbers are those of the serial path (tests compare them bit for bit).
- Each task holds ``cpus`` CPUs and runs torch, LightGBM and BLAS on that many threads: tasks side by side fill a
  node's cores instead of each one starting a thread per core.
- A task whose worker process dies is run again by Ray (its default retries), from the same shared object and seed,
  so a lost worker costs time, not numbers (tested).
- A `RewardlabError` raised in a task reaches the caller as itself (one clear line), not as Ray's wrapped traceback.
- Ray is imported only inside these functions: the core never imports it (DESIGN.md).
- A study writes each unit of work once, as a module-level function of (shared, item), and `map_here_or_on_ray` runs
  it here or on Ray; the encoder travels as an `EncoderHandle` (its spec and fingerprint, rebuilt in the worker).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import Encoder, make_encoder
from rewardlab.errors import ModelError
from rewardlab.evaluate.fold_workers import THREAD_VARIABLES  # the pools a task sizes, as a fold worker does

if TYPE_CHECKING:
    from rewardlab.evaluate.crossval import LearnerSpec
    from rewardlab.evaluate.fold_workers import FitResult, FoldJob

Item = TypeVar("Item")
Result = TypeVar("Result")


# ---------------------------------------------------------------- in a Ray worker process
#: (token, shared object) of the run whose task this worker ran last
_SHARED: tuple[str, Any] | None = None


def _shared(token: str, boxed: list[Any]) -> Any:
    """The run's shared object: fetched from the object store the first time this worker runs one of its tasks."""
    global _SHARED
    if _SHARED is None or _SHARED[0] != token:
        import ray

        _SHARED = (token, ray.get(boxed[0]))
    return _SHARED[1]


#: encoders built in this worker, by (spec, fingerprint): one build per process, whatever the run
_ENCODERS: dict[tuple[str, str], Encoder] = {}


def rebuilt_encoder(spec: str, fingerprint: str) -> Encoder:
    """The encoder ``spec`` builds in this process, once; a `ModelError` unless its fingerprint is the driver's."""
    key = (spec, fingerprint)
    if key not in _ENCODERS:
        encoder = make_encoder(spec)
        if encoder.fingerprint() != fingerprint:
            raise ModelError(f"a Ray worker's encoder {spec!r} has fingerprint {encoder.fingerprint()}, not the "
                             f"driver's {fingerprint} (different weights or library versions on that node)")
        _ENCODERS[key] = encoder
    return _ENCODERS[key]


def _run_task(function: Callable[[Any, Any], Any], token: str, boxed: list[Any], item: Any, cpus: int,
              settings: dict[str, str]) -> Any:
    os.environ.update(settings)  # the driver's REWARDLAB_* settings (cache and models folders), whatever the node has
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(cpus)))
    import torch

    torch.set_num_threads(cpus)
    return function(_shared(token, boxed), item)


# ---------------------------------------------------------------- in the driver
def map_on_ray(function: Callable[[Any, Item], Result], shared: Any, items: Sequence[Item], address: str | None,
               *, cpus: int = 1, on_result: Callable[[Item, Result], None] | None = None,
               alongside: Callable[[], None] | None = None) -> list[Result]:
    """``[function(shared, item) for item in items]``, each call a Ray task on ``cpus`` CPUs, on the cluster at
    ``address`` (`rewardlab.embed.ray_embed.ray_session`: 'local', 'auto' or HOST:PORT; an existing connection is
    reused). ``function`` must be a module-level function (workers import it). ``shared`` goes to the object store
    once. Results come back in the order of ``items``; ``on_result`` sees each in that order, as soon as it and
    every one before it are done. ``alongside`` runs here once the tasks are submitted (this process would only
    wait for them)."""
    from rewardlab.embed.ray_embed import RayClusterError, ray_session, rewardlab_settings, user_cause

    if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
        raise ModelError(f"a Ray task needs at least 1 CPU, not {cpus!r}")
    if not items:
        return []
    with ray_session(address) as ray:
        token = uuid.uuid4().hex
        boxed = [ray.put(shared)]  # in a list: Ray resolves only top-level references, per task
        task = ray.remote(num_cpus=cpus)(_run_task)
        refs = [task.remote(function, token, boxed, item, cpus, rewardlab_settings()) for item in items]
        results = []
        try:
            if alongside is not None:
                alongside()
            for item, ref in zip(items, refs):
                results.append(ray.get(ref))
                if on_result is not None:
                    on_result(item, results[-1])
        except BaseException as exc:
            for ref in refs[len(results):]:  # an error or an interrupt leaves no task running on the cluster
                ray.cancel(ref)
            if not isinstance(exc, Exception):
                raise
            cause = user_cause(exc)
            if cause is not None:
                raise cause from None
            raise RayClusterError(f"a fit on Ray failed: {_last_line(exc)}") from None
    return results


def _last_line(exc: BaseException) -> str:
    """What went wrong, in one line: Ray's task errors end with the worker's own exception line."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else type(exc).__name__


# ---------------------------------------------------------------- cross-validation fits
@dataclass
class _FoldRun:
    """What every (fold, learner) task of one cross-validation shares; each fold's training set is made once per worker
    process, when its first task needs it."""

    job: FoldJob
    learners: list[LearnerSpec]
    _trains: dict[int, FeedbackDataset] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:  # only the data travels, never what a worker built
        return {"job": self.job, "learners": self.learners, "_trains": {}}

    def encoder(self) -> Encoder:
        return rebuilt_encoder(self.job.encoder_spec, self.job.encoder_fingerprint)

    def training_set(self, fold: int) -> FeedbackDataset:
        from rewardlab.evaluate.fold_workers import fold_training_set

        if fold not in self._trains:
            self._trains[fold] = fold_training_set(self.job, fold)
        return self._trains[fold]


def _fit_fold(run: _FoldRun, task: tuple[int, int]) -> FitResult:
    from rewardlab.evaluate.fold_workers import fit_and_score

    fold, learner = task
    return fit_and_score(run.job, run.learners, run.training_set(fold), fold, learner, run.encoder())


def fold_tasks(learners: Sequence[LearnerSpec], k: int) -> list[tuple[int, int]]:
    """Every (fold, learner), the longest fits (ensembles) first so that no worker is left with one at the end;
    ties keep (fold, learner) order."""
    return sorted(((fold, i) for fold in range(k) for i in range(len(learners))),
                  key=lambda task: -(learners[task[1]].ensemble or 1))


def run_fits_ray(job: FoldJob, learners: list[LearnerSpec], k: int, address: str | None,
                 on_result: Callable[[FitResult], None], alongside: Callable[[], None] | None = None) -> None:
    """Every (fold, learner) fit of a cross-validation as a Ray task of one CPU; ``on_result`` gets each in a fixed
    order (`fold_tasks`). The scores are the in-process ones (each fit keeps its seed). ``alongside`` runs in this
    process while the tasks run."""
    map_on_ray(_fit_fold, _FoldRun(job, learners), fold_tasks(learners, k), address,
               on_result=lambda _, fit: on_result(fit), alongside=alongside)


# ---------------------------------------------------------------- a study's independent units, here or on Ray
class EncoderHandle:
    """An encoder a study's shared object carries to its tasks: in this process the instance itself; pickled for a
    Ray worker, its spec and fingerprint, rebuilt there once per process (`rebuilt_encoder`), so the model's weights
    never travel and a worker with other weights fails loudly. ``device`` is where the units' torch heads fit in this
    process (a study's ``--device``; None: the CPU); a Ray task always fits on the CPU (it holds CPUs, not a GPU), so
    the device does not travel."""

    def __init__(self, encoder: Encoder, device: str | None = None) -> None:
        self.encoder = encoder
        self.device = device

    def __reduce__(self) -> tuple[Callable[[str, str], EncoderHandle], tuple[str, str]]:
        return _rebuilt_handle, (self.encoder.spec, self.encoder.fingerprint())


def _rebuilt_handle(spec: str, fingerprint: str) -> EncoderHandle:
    return EncoderHandle(rebuilt_encoder(spec, fingerprint))


def map_here_or_on_ray(function: Callable[[Any, Item], Result], shared: Any, items: Sequence[Item], ray: str | None,
                       *, cpus: int = 1, on_result: Callable[[Item, Result], None] | None = None) -> list[Result]:
    """``[function(shared, item) for item in items]``: one after the other in this process (``ray`` None), or as Ray
    tasks of ``cpus`` CPUs on the cluster at ``ray`` (`map_on_ray`). Either way the results, and what ``on_result``
    sees, come in the order of ``items``, so a study writes one loop body for both paths. Here too each call runs
    on ``cpus`` torch threads, as a task does: a torch forward over a large batch splits its sums by thread count
    (bt-mlp-annotator's all-annotator forward differs in the last bits between 1 and 2 threads), so the same
    thread count is what makes the two paths' numbers equal bit for bit."""
    if ray is not None:
        return map_on_ray(function, shared, items, ray, cpus=cpus, on_result=on_result)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(cpus)
    try:
        results = []
        for item in items:
            results.append(function(shared, item))
            if on_result is not None:
                on_result(item, results[-1])
        return results
    finally:
        torch.set_num_threads(threads)
