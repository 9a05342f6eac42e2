"""Multi-objective rewards on QA-Feedback: does a reward built from relevance, factuality and completeness predict the
holistic preference as well as a direct Bradley-Terry model, and which objective decided each comparison?

Protocol (issue 19, item 1). QA-Feedback: 500 questions × 4 answers, six holistic preferences per question, and span
feedback on answer 1 only, read as three binary objective labels (`rewardlab.data.objectives_qa`: 1 = no error of that
kind). k-fold cross-validation by question (folds × seeds: each seed another fold assignment and initialisation); on
each fold, on the same feature rows:

- ``direct BT``: a Bradley-Terry head (``bt_head``) on the training questions' preferences;
- ``multi-objective, fixed``: `MultiObjectiveHead`, its three outputs learned from the training questions' objective
  labels (answers 2–4 masked), then one weight vector over them fitted to the same preferences;
- ``multi-objective, gated``: the same frozen outputs, weights from a gate over the prompt (ArmoRM's scalarization);
- ``objectives summed``: the same outputs with equal weights and no preference fitting, and the length controls.

Held out: pairwise accuracy on decided preferences (ties left out), each pair averaged over seeds, 95% CIs from a
bootstrap over questions and differences paired on the same pairs; per objective, AUC and accuracy (logit > 0 read as
"no error") of its output on the held-out answers 1, beside the direct BT reward and length read as the same detector.
"Which objective decided": per held-out pair, the objective whose weighted difference w_k·(o_k(a) − o_k(b)) has the
largest magnitude among those agreeing with the model's pick; shares over pairs, and the accuracy of each group.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.objectives_qa import OBJECTIVES, default_path, qa_objectives
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.evaluate.ray_tasks import map_here_or_on_ray
from rewardlab.evaluate.span_detection import auc_estimate
from rewardlab.rewards.features import MODE_PARTS, dataset_texts, featurize_dataset
from rewardlab.rewards.head_device import fit_head
from rewardlab.rewards.heads import make_head
from rewardlab.rewards.multi_objective import MultiObjectiveHead
from rewardlab.rewards.objective_labels import objective_matrix, prompt_columns
from rewardlab.rewards.training_set import build_training_set
from rewardlab.studies.device import study_device, study_encoder
from rewardlab.studies.fine_grained_metrics import deciders, pair_correct
from rewardlab.studies.fine_grained_spans import SpanSectionConfig, span_section
from rewardlab.studies.machine import cpu_model
from rewardlab.studies.settings import study_config

Log = Callable[[str], None]
#: the rules compared on the holistic preferences, in table order
MODELS = ("direct BT", "multi-objective, fixed", "multi-objective, gated", "objectives summed")
CONTROLS = ("longer answer", "shorter answer")


@dataclass(frozen=True)
class FineGrainedConfig:
    """Everything the comparison depends on; the defaults are the README's run (`rewardlab experiment fine-grained`)."""

    #: the QA-Feedback file (None: the shared copy)
    data: str | None = None
    #: the first N questions only (quick runs); None: all 500
    limit: int | None = None
    encoder: str = DEFAULT_ENCODER
    features: str = "interaction"
    bt_head: str = "bt-mlp"
    #: width of the multi-objective trunk (bt-mlp's is 256 too)
    hidden: int = 256
    folds: int = 5
    seeds: tuple[int, ...] = (0, 1, 2)
    n_resamples: int = 2000
    #: also the span rewards of item 2 (`studies.fine_grained_spans`), on the first seed's folds
    spans: bool = True
    #: where the encoder runs and the torch heads fit (auto, cpu, cuda, cuda:N; None: the CPU); Ray tasks use the CPU
    device: str | None = None

    def __post_init__(self) -> None:
        """Refuse bad settings before anything is read or trained."""
        if self.features not in MODE_PARTS or "p" not in MODE_PARTS[self.features]:
            raise InvalidValueError(f"features must be a mode with a prompt vector (the gate reads it): "
                                    f"{', '.join(m for m, p in MODE_PARTS.items() if 'p' in p)}; got {self.features!r}")
        if self.folds < 2:
            raise InvalidValueError(f"folds must be at least 2, got {self.folds}")
        if not self.seeds:
            raise InvalidValueError("seeds must name at least one seed")
        if self.limit is not None and self.limit < 2 * self.folds:
            raise InvalidValueError(f"limit must leave at least 2 questions per fold ({2 * self.folds}), got "
                                    f"{self.limit}")


@dataclass
class FoldOutputs:
    """One seed's held-out outputs for every item (each item is held out in exactly one fold)."""

    reward: dict[str, np.ndarray]
    objectives: np.ndarray  # (n_items, K) logits
    weights: dict[str, np.ndarray]  # scalarization -> (n_items, K)
    fit_logs: list[dict[str, Any]]


@dataclass(frozen=True)
class FoldJob:
    """What every (seed, fold) fit shares: the data, its feature rows and training set, each seed's folds."""

    dataset: FeedbackDataset
    rows: Mapping[str, np.ndarray]
    config: FineGrainedConfig
    columns: tuple[int, int]
    x: np.ndarray  # the training set's rows, in `build_training_set` order
    item_prompt: Sequence[str]  # each row's prompt id
    fold_of: Mapping[int, Mapping[str, int]]  # seed -> prompt id -> fold
    device: str | None = None  # where the heads fit (a resolved name; None: the CPU, and always on Ray)


@dataclass(frozen=True)
class FoldFit:
    """One (seed, fold): the held-out rows and every rule's outputs on them."""

    held: np.ndarray  # (n_items,) bool
    reward: dict[str, np.ndarray]
    objectives: np.ndarray
    weights: dict[str, np.ndarray]
    fit_log: dict[str, Any]


def fit_fold(job: FoldJob, unit: tuple[int, int]) -> FoldFit:
    """Train every rule on the other folds of questions and predict the held-out one."""
    seed, fold = unit
    config, dataset, rows, fold_of = job.config, job.dataset, job.rows, job.fold_of[seed]
    train = dataset.subset({pid for pid, f in fold_of.items() if f != fold})
    train_set = build_training_set(train, {rid: rows[rid] for rid in train.responses})
    labels = objective_matrix(train, train_set.response_ids, OBJECTIVES)
    held = np.array([fold_of[pid] == fold for pid in job.item_prompt])
    x = job.x[held]
    bt = fit_head(make_head(config.bt_head, seed=seed), train_set, None, job.device)
    fixed = MultiObjectiveHead(OBJECTIVES, "fixed", hidden=config.hidden, seed=seed).fit(train_set, labels=labels,
                                                                                          device=job.device)
    gated = fixed.rescalarized(train_set, "gated", list(job.columns))
    objectives = fixed.predict_objectives(x)
    reward = {"direct BT": bt.predict(x), "multi-objective, fixed": fixed.predict(x),
              "multi-objective, gated": gated.predict(x), "objectives summed": objectives.sum(1)}
    return FoldFit(held, reward, objectives, {"fixed": fixed.predict_weights(x), "gated": gated.predict_weights(x)},
                   {"seed": seed, "fold": fold, "direct BT": bt.fit_log, "multi-objective, fixed": fixed.fit_log,
                    "multi-objective, gated": gated.fit_log})


def cross_validate(dataset: FeedbackDataset, rows: Mapping[str, np.ndarray], config: FineGrainedConfig,
                   columns: tuple[int, int], log: Log, ray: str | None = None,
                   device: str | None = None) -> list[FoldOutputs]:
    """Per seed, every rule trained on k − 1 folds of questions and predicting the held-out fold, for each fold; the
    seed × fold fits here or as Ray tasks (``ray``: a Ray address), with the same numbers."""
    data = build_training_set(dataset, dict(rows))
    job = FoldJob(dataset, rows, config, columns, data.x, [dataset.responses[rid].prompt_id for rid in data.response_ids],
                  {seed: dataset.fold_of_prompt(config.folds, seed) for seed in config.seeds}, device)
    units = [(seed, fold) for seed in config.seeds for fold in range(config.folds)]
    fits = map_here_or_on_ray(fit_fold, job, units, ray,
                              on_result=lambda unit, _: log(f"seed {unit[0]}, fold {unit[1] + 1}/{config.folds} done"))
    k = len(OBJECTIVES)
    runs = []
    for seed in config.seeds:
        out = FoldOutputs({name: np.zeros(len(data.x)) for name in MODELS}, np.zeros((len(data.x), k)),
                          {"fixed": np.zeros((len(data.x), k)), "gated": np.zeros((len(data.x), k))}, [])
        for (fit_seed, _), fit in zip(units, fits):
            if fit_seed != seed:
                continue
            for name in MODELS:
                out.reward[name][fit.held] = fit.reward[name]
            out.objectives[fit.held] = fit.objectives
            for scalarization in ("fixed", "gated"):
                out.weights[scalarization][fit.held] = fit.weights[scalarization]
            out.fit_logs.append(fit.fit_log)
        runs.append(out)
    return runs


def compare(dataset: FeedbackDataset, rows: Mapping[str, np.ndarray], config: FineGrainedConfig, encoder_dim: int,
            log: Log = lambda _: None, ray: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Every number of the study from the featurized ``dataset``: accuracies, objectives, deciders, weights; ``ray``:
    the seed × fold fits run as Ray tasks on that cluster."""
    data = build_training_set(dataset, dict(rows))
    labels = objective_matrix(dataset, data.response_ids, OBJECTIVES)
    columns = prompt_columns(config.features, encoder_dim)
    assert columns is not None  # checked by the config
    runs = cross_validate(dataset, rows, config, columns, log, ray, device)
    decided = data.pair_target != 0.5
    a, b, target = data.pair_a[decided], data.pair_b[decided], data.pair_target[decided]
    pairs = GroupBootstrap(data.group[a], config.n_resamples, config.seeds[0])
    correct = {name: np.mean([pair_correct(run.reward[name], a, b, target) for run in runs], axis=0)
               for name in MODELS}
    correct["longer answer"] = pair_correct(data.length, a, b, target)
    correct["shorter answer"] = pair_correct(-data.length, a, b, target)
    accuracy = {name: pairs.mean(v).as_dict() for name, v in correct.items()}
    minus_bt = {name: pairs.mean(v - correct["direct BT"]).as_dict() for name, v in correct.items()
                if name != "direct BT"}
    gated_minus_fixed = pairs.mean(correct["multi-objective, gated"] - correct["multi-objective, fixed"]).as_dict()
    decider_record: dict[str, Any] = {}
    for scalarization in ("fixed", "gated"):
        model = f"multi-objective, {scalarization}"
        shares = np.mean([deciders(run.objectives, run.weights[scalarization], a, b) for run in runs], axis=0)
        decider_record[scalarization] = {
            name: {"share": pairs.mean(shares[:, k]).as_dict(),
                   "accuracy": pairs.ratio(shares[:, k] * correct[model], shares[:, k]).as_dict()}
            for k, name in enumerate(OBJECTIVES)}
    labelled = np.isfinite(labels).any(1)
    logits = np.mean([run.objectives for run in runs], axis=0)[labelled]
    bt_reward = np.mean([run.reward["direct BT"] for run in runs], axis=0)[labelled]
    objectives: dict[str, Any] = {}
    for k, name in enumerate(OBJECTIVES):
        y, have = labels[labelled, k], np.isfinite(labels[labelled, k])
        sub = GroupBootstrap(data.group[labelled][have], config.n_resamples, config.seeds[0])
        objectives[name] = {
            "clean_share": sub.mean(y[have]).as_dict(),
            "auc": auc_estimate(logits[have, k], y[have] > 0.5, sub).as_dict(),
            "accuracy": sub.mean(((logits[have, k] > 0) == (y[have] > 0.5)).astype(float)).as_dict(),
            "bt_reward_auc": auc_estimate(bt_reward[have], y[have] > 0.5, sub).as_dict(),
            "length_auc": auc_estimate(data.length[labelled][have], y[have] > 0.5, sub).as_dict()}
    weights: dict[str, Any] = {}
    questions = GroupBootstrap(data.group, config.n_resamples, config.seeds[0])
    for scalarization in ("fixed", "gated"):
        w = np.mean([run.weights[scalarization] for run in runs], axis=0)
        share = w / w.sum(1, keepdims=True)
        weights[scalarization] = {name: {"share": questions.mean(share[:, k]).as_dict(),
                                         "spread": float(share[:, k].std()), "scale": float(w.sum(1).mean())}
                                  for k, name in enumerate(OBJECTIVES)}
    return {"questions": len(dataset.prompts), "answers": len(data.x), "pairs": len(data.pair_a),
            "decided_pairs": int(decided.sum()), "ties": int((~decided).sum()),
            "objective_labels": {name: int(np.isfinite(labels[:, k]).sum()) for k, name in enumerate(OBJECTIVES)},
            "accuracy": accuracy, "minus_bt": minus_bt, "gated_minus_fixed": gated_minus_fixed,
            "deciders": decider_record, "objectives": objectives, "weights": weights,
            "training": [log_ for run in runs for log_ in run.fit_logs]}


def make_config(settings: Mapping[str, Any] | None = None, path: str | Path | None = None) -> FineGrainedConfig:
    """The study's settings: ``settings`` over a JSON file of them (a past record's ``config``) over the defaults."""
    return study_config(FineGrainedConfig, settings, path)


def run_study(config: FineGrainedConfig = FineGrainedConfig(), cache_dir: str | None = None,
              log: Log = lambda _: None, on_embed: Callable[[int, int], None] | None = None,
              ray: str | None = None) -> dict[str, Any]:
    """Read QA-Feedback with its objective labels, embed (cached), cross-validate; the JSON record a report is built
    from (`studies.fine_grained_report`). ``ray`` (a Ray address): the answers' texts missing from the cache are
    embedded on that cluster first, and the cross-validation's seed × fold fits (and the span section's folds) run
    there as Ray tasks; the numbers are the same."""
    started = time.perf_counter()
    device = study_device(config.device, ray)  # a GPU that is not here fails before any data is read
    dataset = qa_objectives(config.data, config.limit)
    log(f"{len(dataset.prompts)} questions, {len(dataset.responses)} answers, {len(dataset.comparisons)} preferences")
    encoder = study_encoder(config.encoder, device)
    if ray is not None:
        from rewardlab.embed.ray_embed import embed_texts_ray

        embed_texts_ray(dataset_texts(dataset, config.features, encoder), encoder, address=ray, cache_dir=cache_dir,
                        on_progress=on_embed)
    rows, _ = featurize_dataset(dataset, encoder, config.features, cache_dir=cache_dir, on_progress=on_embed)
    embedded = time.perf_counter()
    result = compare(dataset, rows, config, encoder.dim, log, ray, device)
    if config.spans:
        log("span rewards: detection and the span-aggregate reward, on the first seed's folds")
        spans = span_section(config.data if config.data is not None else default_path(),
                             SpanSectionConfig(encoder=config.encoder, folds=config.folds, seed=config.seeds[0],
                                               n_resamples=config.n_resamples),
                             fold_of=dataset.fold_of_prompt(config.folds, config.seeds[0]), cache_dir=cache_dir,
                             log=log, limit=config.limit, encoder=encoder, ray=ray, device=device)
        result["spans"] = spans.as_dict()
    done = time.perf_counter()
    return {"config": asdict(config), **result,
            "timing": {"total_seconds": round(done - started, 1), "embed_seconds": round(embedded - started, 1),
                       "fit_seconds": round(done - embedded, 1), "cpu": cpu_model(), "cores": os.cpu_count() or 1}}
