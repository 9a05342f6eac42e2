"""Process vs outcome rewards on GSM8K: which picks the right solution out of a question's pool?

Protocol (issue 19, item 3). The shipped pools hold 4 GPT-3 solutions per GSM8K test question, each labelled
correct or not (outcome labels only). Split the questions in two (by prompt, leak-free). On the training half:

- ``orm``: an outcome head on whole solutions (their correctness labels);
- ``prm[computation]``: a step head on the automatic step labels alone (`rewardlab.data.step_labels`: every
  arithmetic statement re-computed, first wrong step 0, earlier checked steps 1, later steps unknown);
- ``prm[computation+outcome]``: the same plus what the outcome says (a correct solution's steps good, a wrong
  solution with no flagged step bad at its last step).

On the held-out half, each rule picks one solution per question; the number is best-of-4 accuracy (is the pick
correct), as an expectation over ties, with a 95% bootstrap CI over questions and differences paired by question:
PRMs under each aggregation (min, product, last, mean), the ORM, majority vote over final answers, a random pick,
the length controls (the longest or the shortest solution, in characters),
the oracle (some solution is correct), and the checker itself used as a verifier with no learning: ``step check``
picks a solution with no flagged step (uniformly among them), ``step check, then majority`` the most common answer
among the unflagged solutions (uniformly among tied candidates). A PRM on frozen sentence embeddings cannot redo
arithmetic, so whether it learns more than the checker knows is the question these two rows answer.

The automatic labels check computation, not reasoning; their reach is reported beside the result: how many steps
the checker could read, and how often the first flagged step falls in a solution labelled correct (a false alarm,
or a slip the answer survived) vs incorrect.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.candidates import CandidateSet, load_candidates
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.step_labels import check_solution, first_wrong_step, label_steps
from rewardlab.data.steps import check_split, step_prefixes
from rewardlab.data.types import Label
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder
from rewardlab.errors import InvalidValueError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.ray_tasks import EncoderHandle, map_here_or_on_ray
from rewardlab.optimize.step_selection import (
    STEP_AGGREGATIONS,
    aggregate_solutions,
    expected_pick_gold,
    extract_final_answer,
    majority_scores,
    majority_vote_gold,
)
from rewardlab.rewards.features import feature_texts
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.scoring import score_candidate_sets
from rewardlab.rewards.step_rewards import StepRewardModel
from rewardlab.studies.device import study_device, study_encoder
from rewardlab.studies.machine import cpu_model
from rewardlab.studies.settings import study_config

#: step-label sources a PRM is trained on: name -> whether outcome labels are added to the computation check
LABEL_MODES = {"computation": False, "computation+outcome": True}
#: Lightman et al. (2023), best-of-1860 on MATH with GPT-4-scale models: % of problems solved
LIGHTMAN_ANCHOR = {"prm": 78.2, "orm": 72.4, "majority": 69.6}

Log = Callable[[str], None]


@dataclass(frozen=True)
class PRMStudyConfig:
    """Everything the comparison depends on; the defaults are the README's run (`rewardlab experiment prm`)."""

    #: candidate pools with correctness gold: ``gsm8k`` (the shared pools) or a JSONL file
    candidates: str = "gsm8k"
    #: the first N pools only (quick runs); None: all
    limit: int | None = None
    encoder: str = DEFAULT_ENCODER
    features: str = "interaction"
    head: str = "outcome-mlp"
    split: str = "line"
    test_size: float = 0.5
    seed: int = 0
    n_resamples: int = 2000
    label_modes: tuple[str, ...] = tuple(LABEL_MODES)
    #: where the encoder runs and the torch heads fit (auto, cpu, cuda, cuda:N; None: the CPU); Ray tasks use the CPU
    device: str | None = None

    def __post_init__(self) -> None:
        """Refuse bad settings before any pool is read or model trained."""
        check_split(self.split)
        if not 0 < self.test_size < 1:
            raise InvalidValueError(f"test_size must be between 0 and 1, got {self.test_size}")
        unknown = sorted(set(self.label_modes) - set(LABEL_MODES))
        if unknown or not self.label_modes:
            raise InvalidValueError(f"label_modes must be some of {', '.join(LABEL_MODES)}, got {self.label_modes!r}")
        if self.limit is not None and self.limit < 2:
            raise InvalidValueError(f"limit must be at least 2 pools (one to train, one to test), got {self.limit}")


@dataclass
class PRMComparison:
    """Best-of-n accuracy per rule on the held-out questions, paired differences, and the labeller's reach."""

    config: PRMStudyConfig
    questions: dict[str, int]
    accuracy: dict[str, Estimate]
    minus_orm: dict[str, Estimate]
    minus_majority: dict[str, Estimate]
    labeller: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "questions": self.questions,
                "accuracy": {k: v.as_dict() for k, v in self.accuracy.items()},
                "minus_orm": {k: v.as_dict() for k, v in self.minus_orm.items()},
                "minus_majority": {k: v.as_dict() for k, v in self.minus_majority.items()},
                "labeller": self.labeller, "training": self.training, "lightman_anchor": LIGHTMAN_ANCHOR,
                "seconds": round(self.seconds, 1)}


def outcome_dataset(sets: Sequence[CandidateSet], name: str = "gsm8k-pools") -> FeedbackDataset:
    """The pools as feedback: each solution with a correctness `Label` (gold > 0.5)."""
    dataset = FeedbackDataset(name)
    for s in sets:
        pid = dataset.add_prompt(s.prompt)
        for text, gold in zip(s.responses, s.require_gold()):
            dataset.add(Label(dataset.add_response(pid, text), bool(gold > 0.5)))
    return dataset


def labeller_reach(sets: Sequence[CandidateSet], split: str, bootstrap_seed: int = 0,
                   n_resamples: int = 2000) -> dict[str, Any]:
    """What the automatic labeller could check on every solution of ``sets``, and where its flags fall: the share
    of correct solutions it flags (false alarms, or slips the answer survived) and of incorrect ones, by question."""
    steps = checked = statements = 0
    flagged, correct, group = [], [], []
    for q, s in enumerate(sets):
        for text, gold in zip(s.responses, s.require_gold()):
            checks = check_solution(text, split)
            steps += len(checks)
            checked += sum(c.status in ("ok", "wrong") for c in checks)
            statements += sum(len(c.statements) for c in checks)
            flagged.append(first_wrong_step(checks) is not None)
            correct.append(gold > 0.5)
            group.append(q)
    f, c = np.array(flagged, dtype=float), np.array(correct, dtype=bool)
    boot = GroupBootstrap(np.array(group), n_resamples, bootstrap_seed)
    return {"solutions": len(f), "steps": steps, "checked_steps": checked, "statements": statements,
            "flagged_solutions": int(f.sum()),
            "flag_rate_correct": boot.mean(f, c).as_dict(), "flag_rate_incorrect": boot.mean(f, ~c).as_dict(),
            "share_of_flags_in_correct": boot.mean(c.astype(float), f.astype(bool)).as_dict()}


def step_separation(test_sets: Sequence[CandidateSet], step_probs: Sequence[np.ndarray],
                    config: PRMStudyConfig) -> dict[str, Any]:
    """Does the PRM reproduce the checker on held-out solutions? Its mean P(good) on the steps the checker passed
    minus on the first wrong steps it flagged, with a CI by question (0: the PRM cannot tell them apart)."""
    values, good, group = [], [], []
    flat = iter(step_probs)
    for q, s in enumerate(test_sets):
        for text in s.responses:
            probs = next(flat)
            for check in check_solution(text, config.split):
                if check.status in ("ok", "wrong"):
                    values.append(float(probs[check.step.index]))
                    good.append(check.status == "ok")
                    group.append(q)
    boot = GroupBootstrap(np.array(group), config.n_resamples, config.seed)
    ok = np.array(good, dtype=bool)
    return {"good_minus_wrong": boot.mean_difference(np.array(values), ok, ~ok).as_dict(),
            "good_steps": int(ok.sum()), "wrong_steps": int((~ok).sum())}


@dataclass(frozen=True)
class PRMFitJob:
    """What the ORM's and each PRM's fit share: they are independent, so they run here or as Ray tasks."""

    config: PRMStudyConfig
    train: FeedbackDataset
    test_sets: Sequence[CandidateSet]
    cache_dir: str | None
    encoder: EncoderHandle


def fit_rule(job: PRMFitJob, unit: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The ORM (``unit`` "ORM") or the PRM on one label mode: trained on the training questions, its best-of-n values
    on the held-out ones (one per aggregation for a PRM), and what its training logged."""
    config, test_sets, encoder = job.config, job.test_sets, job.encoder.encoder
    gold = [s.require_gold() for s in test_sets]
    if unit == "ORM":
        orm = RewardModel.create(config.head, encoder, config.features, seed=config.seed,
                                 cache_dir=job.cache_dir).fit(job.train, device=job.encoder.device)
        orm_scores, _ = score_candidate_sets(orm, test_sets)
        return ({"ORM": np.array([expected_pick_gold(r, g) for r, g in zip(orm_scores, gold)])},
                {"labels": len(job.train.labels), **orm.head.fit_log})
    labelled, stats = label_steps(job.train.subset(set(job.train.prompts)), config.split, LABEL_MODES[unit])
    prm = StepRewardModel.create(config.head, encoder, config.features, config.split, seed=config.seed,
                                 cache_dir=job.cache_dir).fit(labelled, device=job.encoder.device)
    info = {**prm.train_info, **prm.head.fit_log, "labeller": stats.as_dict()}
    prompts = [s.prompt for s in test_sets for _ in s.responses]
    probs = prm.step_probabilities(prompts, [r for s in test_sets for r in s.responses])
    info["held_out_step_separation"] = step_separation(test_sets, probs, config)
    bounds = np.cumsum([0] + [len(s) for s in test_sets])
    values = {}
    for how in STEP_AGGREGATIONS:
        scores = aggregate_solutions(probs, how)
        values[f"PRM[{unit}] {how}"] = np.array([expected_pick_gold(scores[a:b], g)
                                                for a, b, g in zip(bounds[:-1], bounds[1:], gold)])
    return values, info


def study_texts(sets: Sequence[CandidateSet], config: PRMStudyConfig, encoder: Encoder) -> list[str]:
    """Every text the ORM and the PRMs embed, and a few more: each whole solution and each of its step prefixes,
    with its question (a PRM trains on the labelled steps only)."""
    prompts = [s.prompt for s in sets for _ in s.responses]
    responses = [r for s in sets for r in s.responses]
    prefixes = [step_prefixes(r, config.split) for r in responses]
    return (feature_texts(prompts, responses, config.features, encoder)
            + feature_texts([p for p, steps in zip(prompts, prefixes) for _ in steps],
                            [step for steps in prefixes for step in steps], config.features, encoder))


def compare_on_gsm8k(sets: Sequence[CandidateSet], config: PRMStudyConfig = PRMStudyConfig(),
                     cache_dir: str | None = None, log: Log = lambda _: None, ray: str | None = None,
                     encoder: Encoder | None = None, device: str | None = None) -> PRMComparison:
    """Train the ORM and the PRMs on one half of the questions and compare their best-of-n picks on the other;
    ``ray``: the ORM and each PRM are Ray tasks on that cluster (the same numbers); ``device``: where they fit here
    (a `study_device` result)."""
    started = time.perf_counter()
    dataset = outcome_dataset(sets)
    train, test = dataset.split(by="prompt", test_size=config.test_size, seed=config.seed)
    test_sets = [s for s in sets if s.prompt_id in test.prompts]
    gold = [s.require_gold() for s in test_sets]
    log(f"{len(train.prompts)} training questions, {len(test_sets)} held out")
    values: dict[str, np.ndarray] = {
        "random": np.array([g.mean() for g in gold]),
        "majority vote": np.array([majority_vote_gold([extract_final_answer(r) for r in s.responses], g)
                                   for s, g in zip(test_sets, gold)]),
        "oracle": np.array([g.max() for g in gold]),
    }
    flagged = [np.array([first_wrong_step(check_solution(r, config.split)) is not None for r in s.responses])
               for s in test_sets]
    votes = [majority_scores([extract_final_answer(r) for r in s.responses]) for s in test_sets]
    lengths = [np.array([len(r) for r in s.responses], dtype=float) for s in test_sets]
    values["longest"] = np.array([expected_pick_gold(n, g) for n, g in zip(lengths, gold)])
    values["shortest"] = np.array([expected_pick_gold(-n, g) for n, g in zip(lengths, gold)])
    values["step check"] = np.array([expected_pick_gold(-f.astype(float), g) for f, g in zip(flagged, gold)])
    values["step check, then majority"] = np.array([expected_pick_gold(v - 100.0 * f, g)
                                                    for f, v, g in zip(flagged, votes, gold)])
    training: dict[str, Any] = {}
    units = ["ORM", *config.label_modes]
    log(f"training the ORM and {len(config.label_modes)} PRMs" + (f" as Ray tasks ({ray})" if ray else ""))

    def rule_name(unit: str) -> str:
        return unit if unit == "ORM" else f"PRM[{unit}]"

    def trained(unit: str, fit: tuple[dict[str, np.ndarray], dict[str, Any]]) -> None:
        log(f"trained the {rule_name(unit)}" + ("" if unit == "ORM" else f" on {fit[1]['step_examples']} step labels"))

    handle = EncoderHandle(encoder or study_encoder(config.encoder, device), device)
    job = PRMFitJob(config, train, test_sets, cache_dir, handle)
    for unit, (rule_values, info) in zip(units, map_here_or_on_ray(fit_rule, job, units, ray, on_result=trained)):
        values.update(rule_values)
        training[rule_name(unit)] = info
    boot = GroupBootstrap(np.arange(len(test_sets)), config.n_resamples, config.seed)
    accuracy = {name: boot.mean(v) for name, v in values.items()}
    minus_orm = {name: boot.mean(v - values["ORM"]) for name, v in values.items() if name != "ORM"}
    minus_majority = {name: boot.mean(v - values["majority vote"]) for name, v in values.items()
                      if name != "majority vote"}
    return PRMComparison(config, {"train": len(train.prompts), "test": len(test_sets)}, accuracy, minus_orm,
                         minus_majority, labeller_reach(sets, config.split, config.seed, config.n_resamples), training,
                         time.perf_counter() - started)


def make_config(settings: Mapping[str, Any] | None = None, path: str | Path | None = None) -> PRMStudyConfig:
    """The study's settings: ``settings`` over a JSON file of them (a past record's ``config``) over the defaults."""
    return study_config(PRMStudyConfig, settings, path)


def run_study(config: PRMStudyConfig = PRMStudyConfig(), cache_dir: str | None = None,
              log: Log = lambda _: None, ray: str | None = None,
              on_embed: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Load the pools and run the comparison; the JSON record a report is built from (`studies.prm_report`).
    ``ray`` (a Ray address): the texts missing from the cache are embedded on that cluster first, and the ORM and
    each PRM are fitted there as Ray tasks; the numbers are the same."""
    started = time.perf_counter()
    device = study_device(config.device, ray)  # a GPU that is not here fails before any data is read
    sets = load_candidates(config.candidates, config.limit)
    log(f"{len(sets)} candidate pools from {config.candidates}")
    encoder = study_encoder(config.encoder, device)
    if ray is not None:
        from rewardlab.embed.ray_embed import embed_texts_ray

        embed_texts_ray(study_texts(sets, config, encoder), encoder, address=ray, cache_dir=cache_dir,
                        on_progress=on_embed)
    result = compare_on_gsm8k(sets, config, cache_dir, log, ray, encoder, device)
    return {**result.as_dict(), "pools": len(sets), "pool_size": max((len(s) for s in sets), default=0),
            "timing": {"total_seconds": round(time.perf_counter() - started, 1), "cpu": cpu_model(),
                       "cores": os.cpu_count() or 1}}


def comparison_rows(result: PRMComparison) -> list[tuple[str, str, str, str]]:
    """(rule, best-of-n accuracy, minus ORM, minus majority vote) as printed, every number with its CI."""
    def signed(e: Estimate | None) -> str:
        return "—" if e is None else f"{e.value:+.3f} [{e.low:+.3f}, {e.high:+.3f}]"

    return [(name, str(acc), signed(result.minus_orm.get(name)), signed(result.minus_majority.get(name)))
            for name, acc in result.accuracy.items()]
