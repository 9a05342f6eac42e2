"""The best-of-n noise study: which learner turns noisy simulated preferences into the best best-of-n picks?

Prompts of a candidate source (AlpacaEval by default) are split 70/30. Training prompts are annotated by
simulated Bradley-Terry annotators at several rationalities β and budgets, with same-prompt or
cross-prompt pairs; each learner is trained on each dataset over several seeds, and its picks on the
test prompts are scored against gold with the unbiased best-of-n estimator. A second part trains
ensembles and compares conservative aggregates with a single model along the KL(BoN) axis.

Everything heavy is cached: embeddings by the embedding cache, and nothing else needs to be.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.collect.simulate import PAIRINGS, SimulatedAnnotator, agreement_with_gold, simulate_comparisons
from rewardlab.data.candidates import CandidateSet, candidates_dataset, load_candidates, split_by_pool
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder
from rewardlab.errors import DataError, InvalidValueError
from rewardlab.evaluate.best_of_n import (
    BestOfNResult,
    average_results,
    best_of_n,
    fit_overoptimization,
    kl_best_of_n,
    summarize_best_of_n,
)
from rewardlab.evaluate.bootstrap import GroupBootstrap
from rewardlab.optimize.selection import conservative_scores, soft_best_of_n_kl, soft_best_of_n_probs
from rewardlab.rewards.features import dataset_texts, featurize_dataset
from rewardlab.rewards.model import RewardModel
from rewardlab.studies.bon_noise_findings import findings
from rewardlab.studies.bon_noise_fits import Condition, Fit, FitJob, ensemble_condition, run_fits
from rewardlab.studies.bon_noise_length import (
    length_rules_cell,
    length_rules_reference,
    pool_length_spearman,
    rounded_estimate,
    study_length_rules,
)
from rewardlab.studies.device import study_device, study_encoder
from rewardlab.studies.settings import study_config

HEADLINE_NS: tuple[int | str, ...] = (1, 4, 16, "max")
#: soft best-of-n temperatures, in units of each model's reward std over the test pool
SOFT_TEMPERATURES = (4.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02)
ENSEMBLE_AGGREGATES = ("mean", "min", "lcb")


LABEL_SCALES = ("auto", "gold", "judge-logit")
#: judge probabilities are clipped to [ε, 1 − ε] before the logit: beyond ±9 nats a judge's odds are noise
JUDGE_EPSILON = 1e-4


def label_utilities(sets: Sequence[CandidateSet], scale: str) -> list[CandidateSet]:
    """The candidate sets with gold replaced by what simulated annotators compare.

    AlpacaEval's gold is 1 + P(judge prefers the output over a fixed reference), and half of all outputs
    sit within 1e-4 of 1.0: on that scale even β = 10 annotators agree with gold on only ~68% of pairs.
    The judge's log-odds logit(gold − 1) is the Bradley-Terry reward the judge itself implies (relative to
    the reference), so noise levels β mean what they say. Best-of-n is still scored on the original gold.
    """
    if scale == "gold":
        return list(sets)
    out = []
    for s in sets:
        gold = s.require_gold()
        if np.any((gold < 1) | (gold > 2)):
            raise InvalidValueError("label_scale 'judge-logit' needs gold in [1, 2] (1 + a judge's win probability)")
        p = np.clip(gold - 1, JUDGE_EPSILON, 1 - JUDGE_EPSILON)
        out.append(CandidateSet(s.prompt, s.responses, np.log(p / (1 - p)), s.sources))
    return out


@dataclass
class BonNoiseConfig:
    candidates: str = "alpaca-eval"
    limit_prompts: int | None = None
    test_fraction: float = 0.3
    betas: tuple[float, ...] = (0.5, 1.0, 3.0, 10.0)
    budgets: tuple[int, ...] = (1000, 5000, 20000)
    pairings: tuple[str, ...] = PAIRINGS
    learners: tuple[str, ...] = ("bt-mlp", "clf-mlp", "clf-lgbm")
    seeds: int = 3
    ensemble_members: int = 5
    ensemble_learners: tuple[str, ...] = ("bt-mlp", "clf-mlp")
    ensemble_budget: int = 5000
    ensemble_pairing: str = "same-prompt"
    lam: float = 1.0
    encoder: str = DEFAULT_ENCODER
    features: str = "interaction"
    #: candidates left out of every pool. AlpacaEval's "NullModel" answers every instruction with one fixed
    #: adversarial string that games the judge (mean gold 1.78, above every real model): any reward model
    #: that learns to spot it "wins" at large n, which measures the judge's exploitability, not learning
    exclude_sources: tuple[str, ...] = ("NullModel",)
    #: what annotators compare: "gold", or "judge-logit" = logit(gold − 1) for gold = 1 + P(judge prefers it);
    #: "auto" picks judge-logit for alpaca-eval and gold otherwise
    label_scale: str = "auto"
    split_seed: int = 0
    n_resamples: int = 1000
    #: where the encoder runs and the torch heads fit (auto, cpu, cuda, cuda:N; None: the CPU); Ray tasks use the CPU
    device: str | None = None

    def __post_init__(self) -> None:
        if self.label_scale not in LABEL_SCALES:
            raise InvalidValueError(f"label_scale must be one of {', '.join(LABEL_SCALES)}")
        unknown = set(self.pairings) - set(PAIRINGS)
        if unknown:
            raise InvalidValueError(f"unknown pairing {sorted(unknown)}; known: {', '.join(PAIRINGS)}")
        if self.seeds < 1 or self.ensemble_members < 2:
            raise InvalidValueError("need seeds >= 1 and ensemble_members >= 2")
        if not 0 < self.test_fraction < 1:
            raise InvalidValueError("test_fraction must be in (0, 1)")
        if self.ensemble_learners:
            if not set(self.ensemble_learners) <= set(self.learners):
                raise InvalidValueError(f"ensemble_learners {list(self.ensemble_learners)} must be among learners")
            if self.ensemble_budget not in self.budgets or self.ensemble_pairing not in self.pairings:
                raise InvalidValueError(f"the ensemble condition (budget {self.ensemble_budget}, {self.ensemble_pairing}) "
                                 "must be one of the grid's budgets and pairings")

    def n_fits(self) -> int:
        """How many models the study fits: one per grid cell and seed, plus the extra ensemble members (the progress total)."""
        grid = len(self.betas) * len(self.budgets) * len(self.pairings) * len(self.learners) * self.seeds
        extra = len(self.betas) * len(self.ensemble_learners) * (self.ensemble_members - 1)
        return grid + extra


def make_config(settings: Mapping[str, Any] | None = None, path: str | Path | None = None) -> BonNoiseConfig:
    """The study's settings: ``settings`` (e.g. the options a user typed) over a JSON file of settings at ``path``
    over the defaults. The file takes the keys of results.json's ``config``, so a past run reruns from its record."""
    return study_config(BonNoiseConfig, settings, path)


@dataclass
class StudyData:
    """The split candidate pools and every candidate's feature row."""

    train: list[CandidateSet]
    train_labels: list[CandidateSet]  # train sets on the scale annotators compare
    test: list[CandidateSet]
    feature_rows: dict[str, np.ndarray]
    test_x: np.ndarray  # all test candidates stacked, set after set
    embed_seconds: float
    label_scale: str

    def split_scores(self, flat: np.ndarray) -> list[np.ndarray]:
        """Scores laid out test pool after test pool, split back into one array per pool."""
        return split_by_pool(flat, self.test)


def split_candidates(sets: Sequence[CandidateSet], test_fraction: float, seed: int
                     ) -> tuple[list[CandidateSet], list[CandidateSet]]:
    """Split pools by prompt (prompts equal up to case and punctuation stay together)."""
    train_ds, _ = candidates_dataset(sets).split(by="prompt", test_size=test_fraction, seed=seed)
    train = [s for s in sets if s.prompt_id in train_ds.prompts]
    test = [s for s in sets if s.prompt_id not in train_ds.prompts]
    return train, test


def load_split(config: BonNoiseConfig) -> tuple[list[CandidateSet], list[CandidateSet], list[CandidateSet]]:
    """(all, train, test) candidate pools: loaded without the excluded sources and split by prompt."""
    sets = [s.without_sources(set(config.exclude_sources)) for s in load_candidates(config.candidates, config.limit_prompts)]
    return (sets, *split_candidates(sets, config.test_fraction, config.split_seed))


def prepare(config: BonNoiseConfig, encoder: Encoder, on_embed_progress: Callable[[int, int], None] | None = None,
            ray: str | None = None) -> StudyData:
    """Load and split the candidate pools and embed every candidate once, so all of the study's fits share the feature
    rows (``ray``: the candidates missing from the cache are embedded on that Ray cluster first)."""
    sets, train, test = load_split(config)
    started = time.perf_counter()
    if ray is not None:
        from rewardlab.embed.ray_embed import embed_texts_ray

        embed_texts_ray(dataset_texts(candidates_dataset(sets), config.features, encoder), encoder, address=ray,
                        on_progress=on_embed_progress)
    rows, _ = featurize_dataset(candidates_dataset(sets), encoder, config.features, on_progress=on_embed_progress)
    test_ids = [rid for s in test for rid in s.response_ids()]
    scale = config.label_scale if config.label_scale != "auto" else \
        ("judge-logit" if config.candidates == "alpaca-eval" else "gold")
    return StudyData(train, label_utilities(train, scale), test, rows, np.stack([rows[rid] for rid in test_ids]),
                     time.perf_counter() - started, scale)


@dataclass
class ConditionRun:
    """One trained model's per-prompt results on the test pools."""

    result: BestOfNResult
    soft_kl: np.ndarray  # (temperatures,) mean over prompts
    soft_gold: np.ndarray
    label_accuracy: float
    fit_seconds: float
    length_spearman: np.ndarray | None = None  # (prompts,): ρ(score, length) within each test pool, NaN where undefined


def soft_curve(data: StudyData, scores: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Soft best-of-n over each whole test pool: mean exact KL and mean expected gold per temperature."""
    scale = float(np.std(np.concatenate(scores))) or 1.0
    kl = np.zeros(len(SOFT_TEMPERATURES))
    gold = np.zeros(len(SOFT_TEMPERATURES))
    for s, r in zip(data.test, scores):
        for t, temperature in enumerate(SOFT_TEMPERATURES):
            kl[t] += soft_best_of_n_kl(r, temperature * scale)
            gold[t] += soft_best_of_n_probs(r, temperature * scale) @ s.require_gold()
    return kl / len(scores), gold / len(scores)


def fit_and_score(kind: str, seed: int, train_data: Any, data: StudyData, config: BonNoiseConfig, encoder: Encoder,
                  device: str | None = None) -> tuple[np.ndarray, float]:
    """Fit a ``kind`` model with ``seed`` on ``train_data`` and score every test candidate; returns (scores, seconds taken)."""
    started = time.perf_counter()
    model = RewardModel.create(kind, encoder=encoder, features=config.features, seed=seed)
    model.fit(train_data, feature_rows=data.feature_rows, device=device)
    return np.asarray(model.predict(data.test_x), dtype=np.float64), time.perf_counter() - started


@dataclass
class StudyRuns:
    grid: dict[tuple[float, int, str, str], list[ConditionRun]] = field(default_factory=dict)
    #: (learner, beta) -> (members, test candidates) scores on the ensemble condition
    members: dict[tuple[str, float], np.ndarray] = field(default_factory=dict)


def run_study(config: BonNoiseConfig, on_step: Callable[[str, int, int], None] | None = None,
              on_embed_progress: Callable[[int, int], None] | None = None, ray: str | None = None) -> dict[str, Any]:
    """Run the whole study and return its JSON-ready record (see `summarize_study`). ``ray`` (a Ray address): the
    candidates missing from the cache are embedded on that cluster, and every fit, ensemble members included, runs
    there as a Ray task (`bon_noise_fits`); the numbers are the same."""
    started = time.perf_counter()
    device = study_device(config.device, ray)  # a GPU that is not here fails before any data is read
    encoder = study_encoder(config.encoder, device)
    data = prepare(config, encoder, on_embed_progress, ray)
    label_sets: dict[Condition, Any] = {}
    accuracy: dict[Condition, float] = {}
    fits: list[Fit] = []
    for condition in itertools.product(config.betas, config.budgets, config.pairings, range(config.seeds)):
        beta, budget, pairing, seed = condition
        annotator = SimulatedAnnotator(f"sim-beta{beta:g}", beta=beta)
        label_sets[condition] = simulate_comparisons(data.train_labels, budget, annotator, pairing=pairing, seed=seed,
                                                     name=f"sim-b{beta:g}-n{budget}-{pairing}-s{seed}")
        accuracy[condition] = agreement_with_gold(label_sets[condition], data.train_labels)
        for kind in config.learners:
            fits.append((condition, kind, seed))
            if ensemble_condition(config, condition, kind):
                # members share seed 0's labels and differ only in initialisation and early-stopping split
                fits += [(condition, kind, member_seed) for member_seed in range(1, config.ensemble_members)]
    outcomes: dict[Fit, tuple[np.ndarray, float]] = {}
    last_of_step = {fits[i] for i in range(len(fits)) if i + 1 == len(fits) or fits[i + 1][:2] != fits[i][:2]}

    def record_fit(fit: Fit, outcome: tuple[np.ndarray, float]) -> None:
        outcomes[fit] = outcome
        if on_step and fit in last_of_step:  # an ensemble's members report with their grid step
            (beta, budget, pairing, seed), kind, _ = fit
            on_step(f"β={beta:g} n={budget} {pairing} {kind} seed {seed}", len(outcomes), len(fits))

    run_fits(FitJob(data, config, encoder.spec, encoder.fingerprint(), label_sets, device), fits, encoder, ray, record_fit)
    runs = StudyRuns()
    for condition, kind, fit_seed in fits:
        beta, budget, pairing, seed = condition
        if fit_seed != seed:
            continue  # an ensemble member: gathered with its condition's fit
        flat, seconds = outcomes[(condition, kind, seed)]
        scores = data.split_scores(flat)
        runs.grid.setdefault((beta, budget, pairing, kind), []).append(
            ConditionRun(best_of_n(data.test, scores), *soft_curve(data, scores), accuracy[condition], seconds,
                         pool_length_spearman(data.test, scores)))
        if ensemble_condition(config, condition, kind):
            runs.members[(kind, beta)] = np.stack([outcomes[(condition, kind, member_seed)][0]
                                                   for member_seed in range(config.ensemble_members)])
    record = summarize_study(config, data, runs)
    record["timing"] = {"total_seconds": round(time.perf_counter() - started, 1),
                        "embed_seconds": round(data.embed_seconds, 1),
                        "fit_seconds": round(sum(r.fit_seconds for rs in runs.grid.values() for r in rs), 1)}
    return record


# ---------------------------------------------------------------------- summaries
_estimate = rounded_estimate


def _curve(result: BestOfNResult) -> dict[str, list[float]]:
    n = np.arange(1, result.max_n + 1)
    return {"n": n.tolist(), "kl": np.round(kl_best_of_n(n), 5).tolist(),
            "gold": np.round(result.curve.mean(0), 5).tolist()}


def summarize_study(config: BonNoiseConfig, data: StudyData, runs: StudyRuns) -> dict[str, Any]:
    """The study's JSON-ready record: config, data, references, metrics and curves per condition, comparisons, findings."""
    bootstrap = GroupBootstrap(np.arange(len(data.test)), n_resamples=config.n_resamples, seed=config.split_seed)
    grid, averaged = [], {}
    for key, condition_runs in runs.grid.items():
        beta, budget, pairing, kind = key
        mean_result = averaged[key] = average_results([r.result for r in condition_runs])
        grid.append({
            "beta": beta, "budget": budget, "pairing": pairing, "learner": kind, "seeds": len(condition_runs),
            "label_accuracy": round(float(np.mean([r.label_accuracy for r in condition_runs])), 4),
            "metrics": {n: {m: _estimate(e) for m, e in ms.items()}
                        for n, ms in summarize_best_of_n(mean_result, HEADLINE_NS, bootstrap).items()},
            "seed_sd": {str(n): round(float(np.std([r.result.column(n)[0].mean() for r in condition_runs], ddof=1)), 5)
                        if len(condition_runs) > 1 else None for n in HEADLINE_NS},
            "curve": _curve(mean_result),
            "soft": {"temperature_in_reward_std": list(SOFT_TEMPERATURES),
                     "kl": np.round(np.mean([r.soft_kl for r in condition_runs], 0), 5).tolist(),
                     "gold": np.round(np.mean([r.soft_gold for r in condition_runs], 0), 5).tolist()},
            "fit_seconds": round(float(np.mean([r.fit_seconds for r in condition_runs])), 2),
        })
    reference = next(iter(averaged.values()))
    record: dict[str, Any] = {
        "kind": "bon-noise",
        "config": asdict(config),
        "data": {"source": config.candidates, "label_scale": data.label_scale, "excluded_sources": list(config.exclude_sources),
                 "train_prompts": len(data.train), "test_prompts": len(data.test),
                 "train_candidates": sum(len(s) for s in data.train), "test_candidates": sum(len(s) for s in data.test),
                 "pool_size_min": int(min(len(s) for s in data.test)),
                 "pool_size_max": int(max(len(s) for s in data.test))},
        "reference": {"random": _estimate(bootstrap.mean(reference.random)),
                      "oracle": {str(n): _estimate(bootstrap.mean(reference.column(n)[1])) for n in HEADLINE_NS},
                      "oracle_curve": {"kl": _curve(reference)["kl"],
                                       "gold": np.round(reference.oracle_curve.mean(0), 5).tolist()}},
        "grid": grid,
        "paired": paired_differences(config, averaged, bootstrap),
        "ensembles": ensemble_comparisons(config, data, runs, bootstrap),
    }
    rules = study_length_rules(data.test, reference.max_n)
    record["length_rules"] = length_rules_reference(rules, bootstrap, HEADLINE_NS, paired=True)
    for cell, (cell_key, cell_runs) in zip(grid, runs.grid.items()):  # grid was built in this order
        cell["length_rules"] = length_rules_cell(averaged[cell_key], rules, [r.length_spearman for r in cell_runs],
                                                 bootstrap, HEADLINE_NS)
    record["findings"] = findings(record)
    return record


def length_rules_for_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (a results.json from before the length rules were part of the study) with the length rules added:
    the pools are loaded and split again from its config, which needs no model. A record keeps only the learners'
    mean gold, not their per-prompt picks, so each cell's Δ vs the better rule is the difference of the two means:
    unpaired, with no CI (``length_rules.paired`` is false). A new run pairs it by prompt."""
    config = make_config({k: tuple(v) if isinstance(v, list) else v for k, v in record["config"].items()})
    _, _, test = load_split(config)
    if len(test) != record["data"]["test_prompts"]:
        raise DataError(f"the split gives {len(test)} test prompts but the record has {record['data']['test_prompts']}: "
                        "the candidate data has changed since the run", source=config.candidates)
    max_n = len(record["reference"]["oracle_curve"]["gold"])
    bootstrap = GroupBootstrap(np.arange(len(test)), n_resamples=config.n_resamples, seed=config.split_seed)
    reference = length_rules_reference(study_length_rules(test, max_n), bootstrap, HEADLINE_NS, paired=False)
    grid = []
    for cell in record["grid"]:
        deltas = {}
        for n, rules in reference["n"].items():
            gold = cell["metrics"][n]["gold"]
            better = max(rules["longest"]["value"], rules["shortest"]["value"])
            deltas[n] = {"gold_minus_better_rule": {"value": round(gold["value"] - better, 5), "n": gold["n"]}}
        grid.append({**cell, "length_rules": {"n": deltas}})
    return {**record, "grid": grid, "length_rules": reference}


def paired_differences(config: BonNoiseConfig, averaged: dict[tuple[float, int, str, str], BestOfNResult],
                       bootstrap: GroupBootstrap) -> list[dict[str, Any]]:
    """Learner vs the first learner (same labels), and cross- vs same-prompt (same learner), paired over prompts."""
    out = []
    baseline = config.learners[0]
    for (beta, budget, pairing, kind), result in averaged.items():
        for n in HEADLINE_NS:
            value = result.column(n)[0]
            if kind != baseline:
                other = averaged[(beta, budget, pairing, baseline)].column(n)[0]
                out.append({"comparison": f"{kind} - {baseline}", "beta": beta, "budget": budget, "pairing": pairing,
                            "n": str(n), "diff": _estimate(bootstrap.mean(value - other))})
            if pairing == "cross-prompt" and (beta, budget, "same-prompt", kind) in averaged:
                other = averaged[(beta, budget, "same-prompt", kind)].column(n)[0]
                out.append({"comparison": "cross-prompt - same-prompt", "beta": beta, "budget": budget,
                            "learner": kind, "n": str(n), "diff": _estimate(bootstrap.mean(value - other))})
    return out


def ensemble_comparisons(config: BonNoiseConfig, data: StudyData, runs: StudyRuns, bootstrap: GroupBootstrap
                         ) -> list[dict[str, Any]]:
    """Single model (member 0) vs the ensemble's mean, min and mean − λ·std along the KL(BoN) axis."""
    out = []
    for (kind, beta), members in runs.members.items():
        per_member = [data.split_scores(m) for m in members]
        proxies = {"single": per_member[0]}
        for how in ENSEMBLE_AGGREGATES:
            proxies[how] = [conservative_scores(np.stack([pm[i] for pm in per_member]), how, config.lam)
                            for i in range(len(data.test))]
        results = {name: best_of_n(data.test, scores) for name, scores in proxies.items()}
        curves = {name: _curve(r) for name, r in results.items()}
        fits = {}
        for name, r in results.items():
            kl = np.array(curves[name]["kl"])
            fits[name] = {k: round(v, 5) for k, v in
                          fit_overoptimization(kl, r.curve.mean(0) - r.curve[:, 0].mean()).as_dict().items()}
        single_max = results["single"].column("max")[0]
        out.append({
            "learner": kind, "beta": beta, "budget": config.ensemble_budget, "pairing": config.ensemble_pairing,
            "members": len(members), "lam": config.lam,
            "curves": curves, "fits": fits,
            "at_max": {name: _estimate(bootstrap.mean(r.column("max")[0])) for name, r in results.items()},
            "at_16": {name: _estimate(bootstrap.mean(r.column(16)[0])) for name, r in results.items()
                      if r.max_n >= 16},
            "diff_vs_single_at_max": {name: _estimate(bootstrap.mean(r.column("max")[0] - single_max))
                                      for name, r in results.items() if name != "single"},
            "peak_n": {name: int(np.argmax(r.curve.mean(0))) + 1 for name, r in results.items()},
        })
    return out
