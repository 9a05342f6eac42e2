"""k-fold cross-validation by prompt for several learners on one set of cached features.

Every comparison is scored exactly once, by the models that did not see its prompt; metrics and paired
differences are computed on these pooled out-of-fold scores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import Encoder
from rewardlab.embed.embedding import EmbedStats
from rewardlab.errors import DataError, InvalidValueError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.fold_workers import (
    FitResult,
    FoldJob,
    fit_and_score,
    fold_training_set,
    job_model_args,
    rebuilds_from_spec,
    resolve_workers,
    run_fits,
)
from rewardlab.evaluate.length_controls import (
    LengthAudit,
    LengthControls,
    PairLengths,
    fit_length_head_on,
    length_audit,
    length_controls,
    response_lengths,
    reward_length_spearman,
)
from rewardlab.evaluate.pairwise import pairwise_correct, pairwise_metrics
from rewardlab.rewards.augment import parse_augment
from rewardlab.rewards.features import featurize_dataset
from rewardlab.rewards.training_set import OUTCOME_TARGET

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LearnerSpec:
    """A learner to compare: a head kind, optionally an ensemble of it, plus head parameters."""

    name: str
    kind: str
    ensemble: int = 0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CrossValResult:
    learners: list[LearnerSpec]
    k: int
    seed: int
    pair_group: np.ndarray
    pair_target: np.ndarray
    pair_fold: np.ndarray
    scores: dict[str, tuple[np.ndarray, np.ndarray]]
    fit_seconds: dict[str, float]
    embed_stats: EmbedStats
    metrics: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    vs_reference: dict[str, Estimate] = field(default_factory=dict)
    fold_accuracy: dict[str, list[float]] = field(default_factory=dict)
    #: (prompt id, response a, response b) of each pair, in the order of the arrays above
    pair_ids: list[tuple[str, str, str]] = field(default_factory=list)
    #: lengths of both sides and the length-only head's out-of-fold scores (fitted per fold on the training pairs)
    pair_lengths: PairLengths | None = None
    length_weights: list[float] = field(default_factory=list)
    length: LengthControls | None = None
    length_audit: dict[str, LengthAudit] = field(default_factory=dict)
    #: the augmentation spec every training fold got (None: none)
    augment: str | None = None

    @property
    def reference(self) -> str:
        return self.learners[0].name


def check_folds(k: Any, dataset: FeedbackDataset) -> None:
    """``k`` folds by prompt are possible: an integer from 2 to the number of distinct prompts (duplicated prompts
    count once: they share a fold). Otherwise an `InvalidValueError` that says how many prompts there are."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise InvalidValueError(f"the number of folds must be an integer, not {k!r}")
    if k < 2:
        raise InvalidValueError(f"cross-validation needs at least 2 folds, not {k} (--folds)")
    n_prompts = len(set(dataset.prompt_groups().values()))
    if k > n_prompts:
        raise InvalidValueError(f"cannot make {k} folds by prompt: {dataset.name} has {n_prompts} distinct prompt(s) "
                                f"(duplicated prompts count once); use --folds between 2 and {n_prompts}"
                                if n_prompts >= 2 else
                                f"cannot cross-validate by prompt: {dataset.name} has {n_prompts} distinct prompt(s), "
                                "and every fold needs its own")


def cross_validate(
    dataset: FeedbackDataset,
    learners: list[LearnerSpec],
    encoder: Encoder,
    *,
    features: str = "interaction",
    k: int = 5,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    n_resamples: int = 2000,
    augment: str | None = None,
    annotator_weights: str = "none",
    workers: int = 1,
    ray: str | None = None,
    device: torch.device | str | None = None,
    on_embed_progress: Callable[[int, int], None] | None = None,
    on_fit_progress: Callable[[int, int], None] | None = None,
    alongside: Callable[[], None] | None = None,
) -> CrossValResult:
    """Fit every learner on k-1 folds and score the held-out fold; ``on_fit_progress(fits done, k × learners)``
    after each fit. ``augment`` (a `rewardlab.rewards.augment` spec) is given to every learner's model, so synthetic
    pairs are made inside each training fold only: test pairs are never augmented, and never lend a response.
    ``annotator_weights`` (dawid-skene, agreement, none) likewise estimates annotator reliabilities on each training
    fold alone (`rewardlab.rewards.annotator_quality`).

    ``workers`` > 1 (0: one per core) runs the fits in that many processes, one thread each
    (`rewardlab.evaluate.fold_workers`); the scores are the in-process ones. Augmented runs and encoders that cannot be
    rebuilt from their spec stay in-process (the workers would embed into one cache at once, or not at all).
    ``ray`` (a Ray address: 'local', 'auto', HOST:PORT) runs each fit as a Ray task instead
    (`rewardlab.evaluate.ray_tasks`), with the same exceptions and the same scores.
    ``fit_seconds`` sums each learner's fits wherever they ran.

    ``device`` is where the heads fit and score (`rewardlab.rewards.head_device`: torch heads; None is the CPU), in
    this process and in the workers alike; the encoder runs where it was built. Fits on Ray are one-CPU tasks, so
    their heads fit on the CPU.

    ``alongside`` is other work of the caller's (the quickstart's final model), called once: while worker processes
    fit, this process would only wait, so it runs then, on one torch thread (the workers have the cores' threads);
    with the fits in this process or on Ray, after them."""
    if not dataset.comparisons:
        raise DataError("cross-validation of pairwise accuracy needs comparisons", source=dataset.name)
    check_folds(k, dataset)  # before the (slow) embedding
    if augment is not None:
        parse_augment(augment)  # a bad spec fails before the (slow) embedding
    head_device = _device_name(device)  # a GPU that is not here fails before the embedding too
    feats, embed_stats = featurize_dataset(dataset, encoder, features, cache_dir=cache_dir,
                                           on_progress=on_embed_progress)
    groups = dataset.prompt_groups()
    fold_of = dataset.fold_of_prompt(k, seed)
    comparisons = dataset.comparisons
    pair_fold = np.array([fold_of[c.prompt_id] for c in comparisons])
    x_a = np.stack([feats[c.a] for c in comparisons])
    x_b = np.stack([feats[c.b] for c in comparisons])
    scores = {spec.name: (np.zeros(len(comparisons)), np.zeros(len(comparisons))) for spec in learners}
    fit_seconds = dict.fromkeys((spec.name for spec in learners), 0.0)
    length_a = response_lengths(dataset, [c.a for c in comparisons])
    length_b = response_lengths(dataset, [c.b for c in comparisons])
    length_score_a, length_score_b = np.zeros(len(comparisons)), np.zeros(len(comparisons))
    job = FoldJob(dataset, fold_of, feats, x_a, x_b, pair_fold, encoder.spec, encoder.fingerprint(),
                  job_model_args(features, seed, cache_dir, augment, annotator_weights), head_device)
    trains = [fold_training_set(job, fold) for fold in range(k)]
    length_weights = []
    for fold, train in enumerate(trains):
        test = pair_fold == fold
        length_head = fit_length_head_on(train)
        length_score_a[test], length_score_b[test] = length_head.score(length_a[test]), length_head.score(length_b[test])
        length_weights.append(length_head.weight)
    done = 0

    def record(fit: FitResult) -> None:
        nonlocal done
        name = learners[fit.learner].name
        test = pair_fold == fit.fold
        scores[name][0][test], scores[name][1][test] = fit.score_a, fit.score_b
        fit_seconds[name] += fit.seconds
        done += 1
        if on_fit_progress:
            on_fit_progress(done, k * len(learners))

    n_workers = resolve_workers(workers, k * len(learners))
    if ray is not None and augment is None and rebuilds_from_spec(encoder):
        from rewardlab.evaluate.ray_tasks import run_fits_ray

        run_fits_ray(dataclasses.replace(job, device="cpu"), learners, k, ray, record,
                     alongside=_on_one_thread(alongside))
    elif n_workers > 1 and augment is None and rebuilds_from_spec(encoder, head_device):
        run_fits(job, learners, k, n_workers, record, alongside=_on_one_thread(alongside))
    else:
        for fold, train in enumerate(trains):
            for index in range(len(learners)):
                record(fit_and_score(job, learners, train, fold, index, encoder))
        if alongside is not None:
            alongside()
    pair_target = np.array([OUTCOME_TARGET[c.outcome] for c in comparisons])
    result = CrossValResult(
        learners=learners,
        k=k,
        seed=seed,
        pair_group=np.array([groups[c.prompt_id] for c in comparisons]),
        pair_target=pair_target,
        pair_fold=pair_fold,
        scores=scores,
        fit_seconds=fit_seconds,
        embed_stats=embed_stats,
        pair_ids=[(c.prompt_id, c.a, c.b) for c in comparisons],
        pair_lengths=PairLengths(length_a, length_b, pair_target, length_score_a, length_score_b),
        length_weights=length_weights,
        augment=augment,
    )
    summarize(result, n_resamples)
    return result


def _device_name(device: torch.device | str | None) -> str:
    """``device`` resolved once, in this process, as the name every fit uses ("cpu", "cuda:0")."""
    if device is None:
        return "cpu"
    from rewardlab.rewards.torch_training import fit_device  # torch loads only when a device is asked for

    return str(fit_device(device))


def _on_one_thread(work: Callable[[], None] | None) -> Callable[[], None] | None:
    """``work`` with torch on one thread, or None for None."""
    if work is None:
        return None

    def run() -> None:
        from rewardlab.rewards.torch_training import one_thread  # torch loads only when there is work for it

        with one_thread():
            work()

    return run


def summarize(result: CrossValResult, n_resamples: int = 2000) -> None:
    """Fill in metrics with CIs, per-fold accuracies and paired differences to the first learner, and the length
    controls on the same resamples."""
    bootstrap = GroupBootstrap(result.pair_group, n_resamples=n_resamples, seed=result.seed)
    decided = result.pair_target != 0.5
    correct = {}
    for spec in result.learners:
        score_a, score_b = result.scores[spec.name]
        result.metrics[spec.name] = pairwise_metrics(score_a, score_b, result.pair_target, bootstrap)
        correct[spec.name] = pairwise_correct(score_a, score_b, result.pair_target)
        result.fold_accuracy[spec.name] = [
            float(correct[spec.name][(result.pair_fold == f) & decided].mean()) for f in range(result.k)
        ]
    reference = correct[result.reference]
    for spec in result.learners[1:]:
        result.vs_reference[spec.name] = bootstrap.mean(correct[spec.name] - reference, decided)
    pairs = result.pair_lengths
    if pairs is None:
        return
    result.length = length_controls(pairs, bootstrap, result.length_weights,
                                    "BT on the log-length difference, fitted per fold on that fold's training pairs")
    ids_a, ids_b = [a for _, a, _ in result.pair_ids], [b for _, _, b in result.pair_ids]
    for spec in result.learners:
        score_a, score_b = result.scores[spec.name]
        rho = reward_length_spearman(ids_a, ids_b, score_a, score_b, pairs.length_a, pairs.length_b, result.pair_fold)
        result.length_audit[spec.name] = length_audit(score_a, score_b, pairs, bootstrap, rho)
