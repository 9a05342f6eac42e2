"""The pluralistic study's fits, each a function of (what the run shares, one unit of work) and nothing else.

A unit is one model: a seed × learner of the minority question, a seed × condition of the careless question, a seed
× learner on WMT, a seed on ConvAbuse (its per-annotator thresholds are refitted on that seed's reward). Each unit
keeps its own seed and returns only its own held-out results, so the units run one after the other in this process
or as Ray tasks (`rewardlab.evaluate.ray_tasks.map_here_or_on_ray`, with ``ray=ADDRESS``): the shared data goes to
the cluster once, the results come back in the serial order, and the numbers are the same bit for bit
(tests/studies/test_ray_pluralistic.py). The studies' modules average the results and bootstrap them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.evaluate.ray_tasks import EncoderHandle
from rewardlab.rewards.model import RewardModel

if TYPE_CHECKING:
    from rewardlab.studies.pluralistic import PluralisticConfig, TestPairs

UNIMODAL = "bt-mlp"
#: the minority question's reference learner: bt-mlp on the minority's labels alone (as if the groups were known)
MINORITY_ONLY = "bt-mlp-minority-only"


def _correct(margin: np.ndarray, says_a: np.ndarray) -> np.ndarray:
    return np.where(margin == 0, 0.5, (margin > 0) == says_a).astype(np.float64)


# ------------------------------------------------------------------------------------------ simulated: minority
@dataclass(frozen=True)
class MinorityJob:
    config: PluralisticConfig
    labels: Mapping[int, FeedbackDataset]  # seed -> the population's simulated comparisons
    group_of: Mapping[int, Mapping[str, str]]  # seed -> annotator -> group
    annotators: Sequence[str]
    pairs: TestPairs
    rows: Mapping[str, np.ndarray]
    encoder: EncoderHandle


@dataclass(frozen=True)
class MinorityFit:
    truth: np.ndarray  # (annotators, pairs): correct against each annotator's own preference (ties ½)
    label: np.ndarray  # (annotators, pairs): P(agreeing with each annotator's label), in expectation
    prob_a: np.ndarray | None  # P(a random annotator prefers a) per test pair; None for the minority-only reference
    mixture_k: int | None


def minority_fit(job: MinorityJob, unit: tuple[int, str]) -> MinorityFit:
    """One learner on one seed's labels, scored for every annotator on every test pair."""
    seed, learner = unit
    config, pairs, data, group_of = job.config, job.pairs, job.labels[seed], job.group_of[seed]
    labels = data
    if learner == MINORITY_ONLY:  # the grouping known: what the minority's own labels can teach
        labels = data.subset(set(data.prompts))
        labels.comparisons = [c for c in data.comparisons if c.meta.get("group") == "minority"]
    model = RewardModel.create(UNIMODAL if learner == MINORITY_ONLY else learner, encoder=job.encoder.encoder,
                               features="interaction", seed=seed).fit(labels, feature_rows=dict(job.rows),
                                                                       device=job.encoder.device)
    head: Any = model.head
    unimodal = learner in (UNIMODAL, MINORITY_ONLY)
    if unimodal:
        margin_all = model.predict(pairs.x_a) - model.predict(pairs.x_b)
    truth, label = [], []
    for annotator in job.annotators:
        sign = np.where(pairs.reversed & (group_of[annotator] == "minority"), -1.0, 1.0)
        margin = margin_all if unimodal else head.predict_for(pairs.x_a, annotator) - head.predict_for(pairs.x_b,
                                                                                                        annotator)
        says_a = expit(config.beta * sign * pairs.gold_diff)
        truth.append(_correct(margin, sign * pairs.gold_diff > 0))
        label.append(np.where(margin == 0, 0.5, np.where(margin > 0, says_a, 1 - says_a)))
    prob_a = None
    if learner == UNIMODAL:
        prob_a = np.asarray(expit(margin_all), dtype=np.float64)
    elif learner != MINORITY_ONLY:
        prob_a = np.asarray(head.prob_prefers(pairs.x_a, pairs.x_b), dtype=np.float64)
    k = int(head.fit_log.get("k", 0)) if "k" in head.fit_log else None
    return MinorityFit(np.array(truth, dtype=np.float64), np.array(label, dtype=np.float64), prob_a, k)


# ------------------------------------------------------------------------------------------ simulated: careless
@dataclass(frozen=True)
class CarelessJob:
    labels: Mapping[tuple[int, float], FeedbackDataset]  # (seed, careless flip rate) -> comparisons
    pairs: TestPairs
    rows: Mapping[str, np.ndarray]
    encoder: EncoderHandle


def careless_fit(job: CarelessJob, unit: tuple[int, str]) -> tuple[np.ndarray, dict[str, float] | None]:
    """BT-MLP on one seed's labels under one condition (clean, none, dawid-skene): correct against gold per test
    pair, and with Dawid–Skene each annotator's estimated reliability."""
    seed, condition = unit
    model = RewardModel.create("bt-mlp", encoder=job.encoder.encoder, features="interaction", seed=seed,
                               annotator_weights="dawid-skene" if condition == "dawid-skene" else "none")
    model.fit(job.labels[(seed, 0.0 if condition == "clean" else 0.5)], feature_rows=dict(job.rows),
              device=job.encoder.device)
    hits = _correct(model.predict(job.pairs.x_a) - model.predict(job.pairs.x_b), job.pairs.gold_diff > 0)
    reliability = None
    if condition == "dawid-skene":
        info = model.train_info["annotator_quality"]["annotators"]
        reliability = {a: round(v["reliability"]["value"], 3) for a, v in info.items()}
    return hits, reliability


# ------------------------------------------------------------------------------------------------------------- WMT
@dataclass(frozen=True)
class WmtJob:
    train: FeedbackDataset
    rows: Mapping[str, np.ndarray]
    aware: Sequence[str]
    x_a: np.ndarray  # the held-out decided comparisons
    x_b: np.ndarray
    says_a: np.ndarray
    raters: np.ndarray
    split_a: np.ndarray  # pairs two or more raters compared, for the split calibration
    split_b: np.ndarray
    encoder: EncoderHandle


@dataclass(frozen=True)
class WmtFit:
    hits: np.ndarray  # correct against the held-out comparison's own rater (ties in the reward ½)
    prob_a: np.ndarray | None  # P(a rater prefers a) on the shared pairs (the baseline and annotator-aware heads)
    mixture_k: int | None
    reliability: dict[str, Any] | None  # the weighting's annotator quality (weighted learners, seed 0)


def wmt_fit(job: WmtJob, unit: tuple[int, str]) -> WmtFit:
    """One learner of `pluralistic_real.wmt_learners` on one seed, scored on the held-out comparisons."""
    from rewardlab.studies.pluralistic_real import fit_comparisons, margins

    seed, learner = unit
    model = fit_comparisons(learner, job.train, dict(job.rows), job.encoder.encoder, seed, job.encoder.device)
    is_aware = learner in job.aware
    hits = _correct(margins(model, job.x_a, job.x_b, job.raters, is_aware), job.says_a)
    prob_a = None
    if learner == UNIMODAL:
        prob_a = expit(model.predict(job.split_a) - model.predict(job.split_b))
    elif is_aware:
        prob_a = np.asarray(model.head.prob_prefers(job.split_a, job.split_b))  # type: ignore[attr-defined]
    k = int(model.head.fit_log["k"]) if "k" in model.head.fit_log else None
    reliability = None
    if "+" in learner and seed == 0:
        quality = model.train_info["annotator_quality"]
        reliability = {"overlapping_items": quality["overlapping_items"],
                       "annotators": {a: v["reliability"] for a, v in quality["annotators"].items()}}
    return WmtFit(hits, prob_a, k, reliability)


# ------------------------------------------------------------------------------------------------------- ConvAbuse
@dataclass(frozen=True)
class ConvAbuseJob:
    train: FeedbackDataset
    rows: Mapping[str, np.ndarray]
    levels: np.ndarray
    x_train: np.ndarray  # the training ratings' feature rows, levels (indices) and annotators
    train_level: np.ndarray
    train_annotator: np.ndarray
    x_test: np.ndarray  # the held-out ratings' feature rows, annotators, levels (indices) and items
    annotators: np.ndarray
    observed: np.ndarray
    item: np.ndarray
    shared_items: Sequence[str]  # held-out items rated by two or more annotators
    encoder: EncoderHandle


@dataclass(frozen=True)
class ConvAbuseFit:
    scores: dict[str, dict[str, np.ndarray]]  # metric -> "population" / "annotator" -> per held-out rating
    tv: dict[str, np.ndarray]  # "population" / "annotator" -> total variation per shared item
    head_thresholds: list[float]
    population: np.ndarray
    population_scale: float
    annotator_thresholds: dict[str, dict[str, Any]]


def convabuse_fit(job: ConvAbuseJob, seed: int) -> ConvAbuseFit:
    """The ordinal reward of one seed, its pooled refit (the control) and each annotator's thresholds and scale,
    scored on every held-out rating."""
    from rewardlab.rewards.torch_training import predict_net
    from rewardlab.studies.pluralistic_real import ORDINAL_HEAD, fit_annotator_thresholds, level_probabilities

    model = RewardModel.create(ORDINAL_HEAD, encoder=job.encoder.encoder, features="interaction", seed=seed)
    model.fit(job.train, feature_rows=dict(job.rows), device=job.encoder.device)
    head: Any = model.head
    described = head.label_model_params()
    head_thresholds = np.array(described["thresholds"], dtype=np.float64)
    reward_train, reward_test = predict_net(head.net_, job.x_train), predict_net(head.net_, job.x_test)
    # the control: the same refit on every training rating at once, so a gain is the annotators' and not the refit's
    # (the head's own thresholds come from an early-stopped fit)
    population, population_scale = fit_annotator_thresholds(reward_train, job.train_level, head_thresholds)
    probabilities = {"population": level_probabilities(population_scale * reward_test, population),
                     "annotator": np.zeros((len(job.item), len(job.levels)))}
    fitted: dict[str, dict[str, Any]] = {}
    for annotator in np.unique(job.annotators):
        mine = job.train_annotator == annotator
        theta, scale = (population, population_scale) if not mine.any() else fit_annotator_thresholds(
            reward_train[mine], job.train_level[mine], population, population_scale)
        rows_of = job.annotators == annotator
        probabilities["annotator"][rows_of] = level_probabilities(scale * reward_test[rows_of], theta)
        fitted[annotator] = {"thresholds": [round(float(t), 3) for t in theta], "scale": round(scale, 3),
                             "train_ratings": int(mine.sum())}
    abusive_levels = job.levels <= -1
    scores: dict[str, dict[str, np.ndarray]] = {"exact": {}, "abusive": {}, "log_likelihood": {}}
    tv: dict[str, np.ndarray] = {}
    for name, p in probabilities.items():
        scores["exact"][name] = (p.argmax(1) == job.observed).astype(float)
        says_abusive = p[:, abusive_levels].sum(1) > 0.5
        scores["abusive"][name] = (says_abusive == abusive_levels[job.observed]).astype(float)
        scores["log_likelihood"][name] = np.log(p[np.arange(len(p)), job.observed])
        distance = []
        for rid in job.shared_items:
            mine = job.item == rid
            split = np.bincount(job.observed[mine], minlength=len(job.levels)) / mine.sum()
            distance.append(0.5 * np.abs(p[mine].mean(0) - split).sum())
        tv[name] = np.array(distance)
    return ConvAbuseFit(scores, tv, described["thresholds"], population, population_scale, fitted)
