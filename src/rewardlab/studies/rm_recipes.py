"""The reward-model recipe study: which training recipe transfers across human-labelled data sets?

Each training set is split by prompt. A model of every recipe × head is trained on each set's training part
and scored on the held-out part of every set (its own and the others': "transfers") and on the EvalBiasBench
probes, beside the length controls fitted on the same training pairs (`rewardlab.evaluate.length_controls`).
All models meet the same test pairs and the same bootstrap resamples, so every comparison between them is
paired. The default recipe is picked by one written rule over the cross-set transfers only, never by one set.
The verdicts (summaries, that rule, the targets) live in `rm_recipes_verdicts` and read only the JSON record, so
they can be recomputed from a saved record.json; the report is rendered by `rm_recipes_report`.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.collect.simulate import SimulatedAnnotator, simulate_comparisons
from rewardlab.data.candidates import load_candidates
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.evalbiasbench import read_evalbiasbench
from rewardlab.data.registry import REGISTRY
from rewardlab.data.source import load_source
from rewardlab.embed.base import DEFAULT_ENCODER, make_encoder
from rewardlab.embed.embedding import embed_texts
from rewardlab.errors import InvalidValueError, RewardlabError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.length_controls import (
    LengthHead,
    PairLengths,
    fit_length_head_on,
    length_audit,
    length_controls,
    response_lengths,
    reward_length_spearman,
)
from rewardlab.evaluate.pairwise import pairwise_correct
from rewardlab.rewards.features import dataset_texts, featurize_dataset
from rewardlab.rewards.training_set import OUTCOME_TARGET
from rewardlab.studies.device import study_device, study_encoder
from rewardlab.studies.machine import cpu_model
from rewardlab.studies.rm_recipes_fits import Condition, FitInputs, FitOutcome, fit_all
from rewardlab.studies.rm_recipes_verdicts import conclusions


# ---------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class Recipe:
    """How a reward model is trained, apart from its head kind: feature mode, head parameters, augmentation."""

    name: str
    features: str = "interaction"
    head_params: Mapping[str, Any] = field(default_factory=dict)
    augment: str | None = None

    def model_params(self) -> dict[str, Any]:
        """Keyword arguments for `RewardModel.create` beyond kind, encoder, features and seed."""
        return {**self.head_params, **({"augment": self.augment} if self.augment else {})}


#: head parameters of the length-debiased recipes (torch heads)
DEBIAS = {"length_debias": True, "balance_length": True}
#: the off-topic augmentation of the augmented recipes
OFF_TOPIC = "off-topic:0.5"


def recipe_grid() -> dict[str, Recipe]:
    """Features (interaction, joint) × plain or length-debiased × with or without off-topic augmentation."""
    grid = {}
    for features in ("interaction", "joint"):
        for debias in (False, True):
            for augment in (None, OFF_TOPIC):
                name = "+".join([features] + (["debias"] if debias else []) + (["off-topic"] if augment else []))
                grid[name] = Recipe(name, features, dict(DEBIAS) if debias else {}, augment)
    return grid


RECIPES: dict[str, Recipe] = recipe_grid()

#: the AlpacaEval judge-preference set, simulated from the candidate pools (the other sets are read by name or path)
ALPACA = "alpaca-eval-judge"
DEFAULT_SETS = ("hh-harmless-demo", ALPACA, "vicuna80-reviews", "qa-feedback")
#: the probes' key among the test blocks
PROBE_KEY = "probe"
#: an encoder joins the study only if embedding every text of the study once fits in this many seconds here
ENCODER_BUDGET_SECONDS = 1800.0


@dataclass
class RmRecipesConfig:
    sets: tuple[str, ...] = DEFAULT_SETS
    recipes: tuple[str, ...] = tuple(RECIPES)
    heads: tuple[str, ...] = ("bt-mlp", "clf-mlp")
    encoder: str = DEFAULT_ENCODER
    #: bias probes scored by every model ('' for none): a registered name or an EvalBiasBench-format JSON file
    probe: str = "evalbiasbench"
    test_fraction: float = 0.3
    seed: int = 0
    #: at most this many rows of each set (for the simulated set: candidate prompts, and pairs)
    limit: int | None = None
    alpaca_pairs: int = 2000
    #: AlpacaEval's NullModel answers every instruction with one string that games the judge: left out
    alpaca_exclude_sources: tuple[str, ...] = ("NullModel",)
    n_resamples: int = 1000
    cache_dir: str | None = None
    #: encoders whose embedding rate is measured (uncached) to decide whether they fit the study's budget
    speed_probe: tuple[str, ...] = ("hf-last:smollm2",)
    speed_probe_texts: int = 16
    #: where the encoder runs and the torch heads fit (auto, cpu, cuda, cuda:N; None: the CPU); Ray tasks use the CPU
    device: str | None = None

    def __post_init__(self) -> None:
        unknown = [r for r in self.recipes if r not in RECIPES]
        if unknown:
            raise InvalidValueError(f"unknown recipe(s) {unknown}; known: {', '.join(RECIPES)}")
        if not self.sets or not self.recipes or not self.heads:
            raise InvalidValueError("need at least one set, one recipe and one head")
        if len(set(set_label(s) for s in self.sets)) != len(self.sets):
            raise InvalidValueError(f"set names must be distinct: {list(self.sets)}")
        if PROBE_KEY in self.sets:
            raise InvalidValueError(f"{PROBE_KEY!r} names the probes, not a training set")
        if not 0 < self.test_fraction < 1:
            raise InvalidValueError("test_fraction must be in (0, 1)")

    def n_fits(self) -> int:
        return len(self.sets) * len(self.recipes) * len(self.heads)


def make_config(settings: Mapping[str, Any] | None = None) -> RmRecipesConfig:
    """The defaults with ``settings`` (e.g. the options a user typed) over them; a bad setting is a clear error."""
    known = {f.name for f in fields(RmRecipesConfig)}
    unknown = sorted(set(settings or {}) - known)
    if unknown:
        raise RewardlabError(f"unknown study settings {unknown}; known: {', '.join(sorted(known))}")
    try:
        return replace(RmRecipesConfig(), **dict(settings or {}))
    except (TypeError, ValueError) as exc:
        raise RewardlabError(f"bad study settings: {exc}") from None


# ---------------------------------------------------------------------- data
def set_label(source: str) -> str:
    """A set's name in tables: the registered name, or a file's name without its extension."""
    return source if source == ALPACA or source in REGISTRY or not Path(source).exists() else Path(source).stem


def load_set(source: str, config: RmRecipesConfig) -> FeedbackDataset:
    """A training set: the AlpacaEval judge preferences simulated noiselessly (β = ∞) from the candidate pools,
    same-prompt pairs with a fixed seed, as `rewardlab simulate alpaca-eval --beta inf` makes them; otherwise a
    registered dataset or a feedback file (`load_source`)."""
    if source == ALPACA:
        excluded = set(config.alpaca_exclude_sources)
        pools = [s.without_sources(excluded) for s in load_candidates("alpaca-eval", config.limit)]
        pairs = config.alpaca_pairs if config.limit is None else min(config.alpaca_pairs, config.limit)
        return simulate_comparisons(pools, pairs, SimulatedAnnotator("alpaca-judge", beta=math.inf),
                                    pairing="same-prompt", seed=config.seed, name=ALPACA)
    dataset = load_source(source, limit=config.limit)
    dataset.name = set_label(source)
    return dataset


def load_probe(source: str) -> FeedbackDataset:
    """The bias probes: a registered dataset, or an EvalBiasBench-format file."""
    return REGISTRY[source].load() if source in REGISTRY else read_evalbiasbench(source)


@dataclass(frozen=True)
class PairSet:
    """Comparisons every model is scored on, in one order, with what length sees of them."""

    ids: list[tuple[str, str, str]]  # (prompt id, response a, response b)
    group: np.ndarray  # prompt group (normalized prompt text) of each pair
    groups_of: list[frozenset[str]]  # every prompt group a pair touches (cross-prompt pairs touch two)
    target: np.ndarray
    length_a: np.ndarray
    length_b: np.ndarray
    bias: np.ndarray  # the probe's bias type per pair ("" outside the probe)

    @classmethod
    def of(cls, dataset: FeedbackDataset) -> PairSet:
        comps = dataset.comparisons
        groups = dataset.prompt_groups()
        return cls([(c.prompt_id, c.a, c.b) for c in comps], np.array([groups[c.prompt_id] for c in comps]),
                   [frozenset(groups[p] for p in dataset.prompts_of(c)) for c in comps],
                   np.array([OUTCOME_TARGET[c.outcome] for c in comps], dtype=np.float64),
                   response_lengths(dataset, [c.a for c in comps]), response_lengths(dataset, [c.b for c in comps]),
                   np.array([str(c.meta.get("bias", "")) for c in comps]))

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, mask: np.ndarray) -> PairSet:
        index = np.flatnonzero(mask)
        return PairSet([self.ids[i] for i in index], self.group[index], [self.groups_of[i] for i in index],
                       self.target[index], self.length_a[index], self.length_b[index], self.bias[index])

    def unseen_by(self, train_groups: set[str]) -> np.ndarray:
        """Pairs none of whose prompts is among a training set's prompt groups (sets may share prompts)."""
        return np.array([not (g & train_groups) for g in self.groups_of], dtype=bool)


@dataclass
class SetSplit:
    name: str
    train: FeedbackDataset
    test: PairSet
    summary: dict[str, Any]


def split_set(dataset: FeedbackDataset, config: RmRecipesConfig) -> SetSplit:
    train, test = dataset.split(by="prompt", test_size=config.test_fraction, seed=config.seed)
    pairs = PairSet.of(test)
    whole = PairSet.of(dataset)
    decided = whole.target != 0.5
    longer_wins = ((whole.target == 1) & (whole.length_a > whole.length_b)) | \
        ((whole.target == 0) & (whole.length_b > whole.length_a))
    summary = {"pairs": len(dataset.comparisons), "prompts": len(dataset.prompts),
               "train_pairs": len(train.comparisons), "train_prompts": len(train.prompts),
               "test_pairs": len(pairs), "test_prompts": len(test.prompts),
               "share_longer_wins": round(float(longer_wins[decided].mean()), 4) if decided.any() else None,
               "median_length": float(np.median(np.concatenate([whole.length_a, whole.length_b]))) if len(whole) else None,
               "notes": list(dataset.notes)}
    return SetSplit(dataset.name, train, pairs, summary)


# ---------------------------------------------------------------------- scoring
def _round(e: Estimate | Mapping[str, Any]) -> dict[str, Any]:
    d = e.as_dict() if isinstance(e, Estimate) else dict(e)
    return {k: (round(v, 5) if isinstance(v, float) and math.isfinite(v) else v) for k, v in d.items()}


def score_block(pairs: PairSet, head: LengthHead, fit_note: str, scores: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]],
                config: RmRecipesConfig) -> dict[str, Any]:
    """One test block (a transfer, or the probes of one bias type): its length controls, and per model accuracy,
    Δ vs the length-only control (paired), length-balanced accuracy and Spearman ρ(reward, length)."""
    block: dict[str, Any] = {"pairs": len(pairs), "prompts": len(set(pairs.group.tolist()))}
    if not len(pairs) or not (pairs.target != 0.5).any():
        return {**block, "controls": None, "models": []}
    lengths = PairLengths(pairs.length_a, pairs.length_b, pairs.target, head.score(pairs.length_a),
                          head.score(pairs.length_b))
    bootstrap = GroupBootstrap(pairs.group, n_resamples=config.n_resamples, seed=config.seed)
    controls = length_controls(lengths, bootstrap, [head.weight], fit_note).as_dict()
    block["controls"] = {k: _round(v) if isinstance(v, dict) else v for k, v in controls.items()}
    ids_a, ids_b = [a for _, a, _ in pairs.ids], [b for _, _, b in pairs.ids]
    models = []
    for (recipe, kind), (score_a, score_b) in scores.items():
        correct = pairwise_correct(score_a, score_b, pairs.target)
        rho = reward_length_spearman(ids_a, ids_b, score_a, score_b, pairs.length_a, pairs.length_b)
        audit = length_audit(score_a, score_b, lengths, bootstrap, rho)
        models.append({"recipe": recipe, "head": kind, "accuracy": _round(bootstrap.mean(correct, pairs.target != 0.5)),
                       "accuracy_minus_length_only": _round(audit.minus_length_only),
                       "length_balanced_accuracy": _round(audit.balanced),
                       "accuracy_longer_wins": _round(audit.longer_wins),
                       "accuracy_shorter_wins": _round(audit.shorter_wins),
                       "spearman_reward_length": round(audit.spearman, 4) if math.isfinite(audit.spearman) else None})
    block["models"] = models
    return block


def encoder_speed(specs: Sequence[str], reference: str, texts: Sequence[str], total_texts: int) -> list[dict[str, Any]]:
    """Embedding rate (texts/s, cache bypassed, model load apart) of each encoder on the same sample of the study's
    texts, and the time embedding all ``total_texts`` once would take; included = within `ENCODER_BUDGET_SECONDS`."""
    out = []
    for spec in dict.fromkeys([reference, *specs]):
        started = time.perf_counter()
        encoder = make_encoder(spec)
        encoder.encode(list(texts[:1]))  # loads the model
        load = time.perf_counter() - started
        _, stats = embed_texts(list(texts), encoder, use_cache=False)
        rate = stats.unique / stats.seconds if stats.seconds > 0 else math.inf
        estimate = total_texts / rate
        out.append({"encoder": spec, "sample_texts": stats.unique, "load_seconds": round(load, 1),
                    "texts_per_second": round(rate, 2), "study_texts": total_texts,
                    "estimated_embed_seconds": round(estimate, 0), "budget_seconds": ENCODER_BUDGET_SECONDS,
                    "fits_budget": bool(estimate <= ENCODER_BUDGET_SECONDS), "used": spec == reference})
    return out


def cpu_seconds() -> float:
    """CPU time (user + system, all threads) this process has used: beside wall time it shows how much of the
    machine the run had."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_study(config: RmRecipesConfig, on_step: Callable[[str, int, int], None] | None = None,
              on_embed_progress: Callable[[int, int], None] | None = None, ray: str | None = None) -> dict[str, Any]:
    """Load, split and embed every set, fit every set × recipe × head, score every test block; the JSON record.
    ``ray`` (a Ray address): the texts missing from the cache are embedded on that cluster first, and the fits run
    there as Ray tasks (`rm_recipes_fits`); the numbers are the same."""
    started = time.perf_counter()
    device = study_device(config.device, ray)  # a GPU that is not here fails before any data is read
    encoder = study_encoder(config.encoder, device)
    recipes = [RECIPES[name] for name in config.recipes]
    modes = list(dict.fromkeys(r.features for r in recipes))
    splits = {}
    datasets = {}
    for source in config.sets:
        dataset = load_set(source, config)
        datasets[dataset.name] = dataset
        splits[dataset.name] = split_set(dataset, config)
    probe = load_probe(config.probe) if config.probe else None
    load_seconds = time.perf_counter() - started

    every = [*datasets.values(), *([probe] if probe is not None else [])]
    total_texts = len({t for d in every for mode in modes for t in dataset_texts(d, mode, encoder)})
    embed_started = time.perf_counter()
    if ray is not None:
        from rewardlab.embed.ray_embed import embed_texts_ray

        embed_texts_ray(sorted({t for d in every for mode in modes for t in dataset_texts(d, mode, encoder)}), encoder,
                        address=ray, cache_dir=config.cache_dir, on_progress=on_embed_progress)
    rows: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for mode in modes:
        for name, dataset in [*datasets.items(), *([(PROBE_KEY, probe)] if probe is not None else [])]:
            rows[(name, mode)], _ = featurize_dataset(dataset, encoder, mode, cache_dir=config.cache_dir,
                                                      on_progress=on_embed_progress)
    embed_seconds = time.perf_counter() - embed_started

    tests = {name: s.test for name, s in splits.items()}
    probe_pairs = PairSet.of(probe) if probe is not None else None
    if probe_pairs is not None:
        tests[PROBE_KEY] = probe_pairs
    features = {(name, mode): (np.stack([rows[(name, mode)][a] for _, a, _ in p.ids]),
                               np.stack([rows[(name, mode)][b] for _, _, b in p.ids]))
                for name, p in tests.items() if len(p) for mode in modes}

    transfers, probe_results, fits = [], [], []
    fit_seconds, done = 0.0, 0
    test_names = [name for name, p in tests.items() if len(p)]
    inputs = FitInputs({r.name: r for r in recipes}, config.seed, config.cache_dir, encoder.spec, encoder.fingerprint(),
                       {name: split.train for name, split in splits.items()},
                       {key: value for key, value in rows.items() if key[0] in splits}, features, test_names, device)
    outcomes: dict[Condition, FitOutcome] = {}

    def record_fit(condition: Condition, outcome: FitOutcome) -> None:
        nonlocal fit_seconds, done
        outcomes[condition] = outcome
        fit_seconds += outcome.seconds
        fits.append({"train": condition[0], "recipe": condition[1], "head": condition[2],
                     "seconds": round(outcome.seconds, 1), "augmented_pairs": outcome.augmented_pairs})
        done += 1
        if on_step:
            on_step(" ".join(condition), done, config.n_fits())

    fit_all(inputs, [(name, r.name, kind) for name in splits for r in recipes for kind in config.heads], encoder, ray,
            record_fit)
    for train_name, split in splits.items():
        head = fit_length_head_on(split.train)
        fit_note = f"BT on the log-length difference, fitted on {train_name}'s training pairs"
        scores: dict[str, dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]] = {name: {} for name in tests}
        for recipe in recipes:
            for kind in config.heads:
                for name, pair_scores in outcomes[(train_name, recipe.name, kind)].scores.items():
                    scores[name][(recipe.name, kind)] = pair_scores
        train_groups = set(split.train.prompt_groups().values())
        for name, p in tests.items():
            unseen = p.unseen_by(train_groups) if len(p) else np.zeros(0, dtype=bool)
            kept = {key: (a[unseen], b[unseen]) for key, (a, b) in scores[name].items()}
            block = score_block(p.take(unseen), head, fit_note, kept, config)
            common = {"train": train_name, "length_only_weight": round(head.weight, 5),
                      "excluded_seen_prompts": int((~unseen).sum())}
            if name != PROBE_KEY:
                transfers.append({**common, "test": name, "cross": name != train_name, **block})
                continue
            result: dict[str, Any] = {**common, "overall": block, "by_bias": {}}
            kept_pairs = p.take(unseen)
            for bias in sorted(set(kept_pairs.bias.tolist())):
                mask = kept_pairs.bias == bias
                result["by_bias"][bias] = score_block(kept_pairs.take(mask), head, fit_note,
                                                      {k: (a[mask], b[mask]) for k, (a, b) in kept.items()}, config)
            probe_results.append(result)

    speed_started = time.perf_counter()
    speed = []
    if config.speed_probe:
        rng = np.random.default_rng(config.seed)
        pool = sorted({t for d in datasets.values() for t in dataset_texts(d)})
        sample = [pool[i] for i in rng.choice(len(pool), size=min(config.speed_probe_texts, len(pool)), replace=False)]
        speed = encoder_speed(config.speed_probe, config.encoder, sample, total_texts)
    record: dict[str, Any] = {
        "kind": "rm-recipes",
        "config": asdict(config),
        "recipes": [{"name": r.name, "features": r.features, "head_params": dict(r.head_params), "augment": r.augment}
                    for r in recipes],
        "data": {name: s.summary for name, s in splits.items()},
        "probe": None if probe is None else {
            "name": config.probe, "pairs": len(probe.comparisons),
            "bias_types": {b: int((probe_pairs.bias == b).sum()) for b in sorted(set(probe_pairs.bias.tolist()))}
            if probe_pairs is not None else {}, "results": probe_results},
        "transfers": transfers,
        "encoder_speed": speed,
        "fits": fits,
    }
    record.update(conclusions(record))
    record["timing"] = {"total_seconds": round(time.perf_counter() - started, 1), "load_seconds": round(load_seconds, 1),
                        "embed_seconds": round(embed_seconds, 1), "fit_seconds": round(fit_seconds, 1),
                        "speed_probe_seconds": round(time.perf_counter() - speed_started, 1),
                        "study_texts": total_texts, "cpu_seconds": round(cpu_seconds(), 1),
                        "fits_on": "this process" if ray is None else f"Ray tasks ({ray})"}
    record["machine"] = {"cpu": cpu_model(), "cores": os.cpu_count()}
    return record
