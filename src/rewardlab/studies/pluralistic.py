"""The pluralistic study: do annotator-aware reward models serve people a single reward model averages away?

Simulated populations on candidate pools with gold (AlpacaEval by default; utilities on the judge's log-odds scale,
as in bon-noise), split 70/30 by prompt. Two questions, each answered with CIs from the cluster bootstrap over test
prompts, paired against a unimodal BT-MLP trained on the same labels:

1. **Minority** (``minority_share`` of the annotators, 30%): their utility is −gold on ``disagree`` (half) of the
   prompts, a topic the features reveal (the prompts on one side of the first principal direction of the prompts'
   mean feature rows), gold elsewhere; the rest agree with gold everywhere. ``pairs`` same-prompt pairs, one label
   each. Learners: unimodal ``bt-mlp``, the annotator-conditioned ``bt-mlp-annotator`` and the EM mixture
   ``bt-mixture``, and as a reference a BT-MLP trained on the minority's labels alone (what those labels can teach
   when the groups are known). On every within-prompt test pair with distinct gold, each annotator's reward is scored against
   that annotator's own preference (noise-free), and against their held-out labels in expectation (P(label) under
   their Bradley-Terry noise, so no label draw adds noise). Target: minority accuracy ≥ unimodal + .10 (CI excluding
   0), majority accuracy down by at most .02. Also: how well P(a random annotator prefers a) matches the
   population's split on each test pair (mean absolute error; unimodal BT: σ(r(a) − r(b))).
2. **Careless** (``careless_share`` of the annotators, 20%, flipping coins): ``careless_items`` pairs each labelled
   by ``labels_per_item`` annotators; BT-MLP trained with no weights, with Dawid–Skene weights, and on the same draws
   with everyone careful (the reference). Target: Dawid–Skene recovers at least half the accuracy lost,
   (acc_DS − acc_none) / (acc_clean − acc_none), accuracy against gold on every within-prompt test pair.

Every fit uses one embedding of every candidate (cached); per-pair results are averaged over ``seeds`` before the
bootstrap, so the CIs are over prompts (the seeds' spread is in the record).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from rewardlab.collect.simulate import AnnotatorGroup, simulate_population
from rewardlab.data.candidates import CandidateSet, candidates_dataset, load_candidates, subsample_pools
from rewardlab.errors import RewardlabError
from rewardlab.evaluate.bootstrap import Estimate, GroupBootstrap
from rewardlab.evaluate.per_annotator import annotator_groups, paired_people_accuracy, split_calibration
from rewardlab.evaluate.ray_tasks import EncoderHandle, map_here_or_on_ray
from rewardlab.rewards.features import dataset_texts, featurize_dataset
from rewardlab.studies.bon_noise import label_utilities
from rewardlab.studies.device import study_device, study_encoder
from rewardlab.studies.pluralistic_fits import (  # MINORITY_ONLY: bt-mlp on the minority's labels alone, a reference
    MINORITY_ONLY,
    UNIMODAL,
    CarelessJob,
    MinorityFit,
    MinorityJob,
    careless_fit,
    minority_fit,
)
from rewardlab.studies.pluralistic_real import REAL_SETS, fits_per_seed, real_findings, run_real
from rewardlab.studies.settings import study_config

CARELESS_CONDITIONS = ("clean", "none", "dawid-skene")
#: called with (stage, done, total) as fits finish
StepCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PluralisticConfig:
    candidates: str = "alpaca-eval"
    #: what annotators compare: "judge-logit" (AlpacaEval's judge log-odds, as bon-noise) or "gold" as given
    label_scale: str = "judge-logit"
    prompts: int = 300
    per_prompt: int = 8
    encoder: str = "minilm:int8"
    test_fraction: float = 0.3
    annotators: int = 10
    beta: float = 3.0
    minority_share: float = 0.3
    disagree: float = 0.5
    pairs: int = 3000
    careless_share: float = 0.2
    careless_items: int = 500
    labels_per_item: int = 3
    seeds: int = 3
    n_resamples: int = 2000
    #: annotator-aware learners compared with unimodal bt-mlp (the minority question and WMT)
    aware_learners: tuple[str, ...] = ("bt-mlp-annotator", "bt-mixture")
    #: run the simulated populations (the minority and careless questions)
    simulated: bool = True
    #: real multi-annotator sets (`studies.pluralistic_real`): "wmt" (WMT23 MQM, per-rater comparisons) and
    #: "convabuse" (ordinal abuse ratings)
    real: tuple[str, ...] = ("wmt", "convabuse")
    #: WMT source segments per language pair (None: all, 104 en-de + 377 zh-en; the fits grow with them)
    wmt_segments: int | None = 60
    #: ConvAbuse rating rows read (None: all 12,768)
    convabuse_ratings: int | None = None
    #: seeds of the real-data fits (per-pair results averaged over them)
    real_seeds: int = 1
    #: where the encoder runs and the torch heads fit (auto, cpu, cuda, cuda:N; None: the CPU); Ray tasks use the CPU
    device: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.minority_share < 1 or not 0 < self.careless_share < 1 or not 0 < self.disagree <= 1:
            raise RewardlabError("minority_share and careless_share must be in (0, 1), disagree in (0, 1]")
        if "bt-mlp-annotator" not in self.aware_learners:
            raise RewardlabError("aware_learners must include bt-mlp-annotator (the findings are about it)")
        if self.annotators < 2 or self.seeds < 1 or self.pairs < 10 or self.careless_items < 10:
            raise RewardlabError("need at least 2 annotators, 1 seed and 10 pairs")
        unknown = [name for name in self.real if name not in REAL_SETS]
        if unknown:
            raise RewardlabError(f"unknown real data set(s) {', '.join(unknown)}; known: {', '.join(REAL_SETS)}")
        if not self.simulated and not self.real:
            raise RewardlabError("nothing to run: turn on the simulated populations or name a real data set")
        if self.real_seeds < 1 or any(v is not None and v < 1 for v in (self.wmt_segments, self.convabuse_ratings)):
            raise RewardlabError("real_seeds, wmt_segments and convabuse_ratings must be at least 1")


def make_config(settings: Mapping[str, Any] | None = None, path: str | Path | None = None) -> PluralisticConfig:
    """``settings`` over a JSON file of settings (results.json's ``config`` keys) at ``path`` over the defaults."""
    return study_config(PluralisticConfig, settings, path)


def topic_rule(sets: Sequence[CandidateSet], rows: Mapping[str, np.ndarray], share: float) -> np.ndarray:
    """(n_sets,) True for the ``share`` of prompts furthest along the first principal direction of the sets' mean
    feature rows: a disagreement the features can reveal, as a topic would."""
    means = np.stack([np.mean([rows[rid] for rid in s.response_ids()], axis=0) for s in sets])
    centred = means - means.mean(0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    projection = centred @ direction
    return projection >= np.quantile(projection, 1 - share)


@dataclass
class TestPairs:
    """Every within-prompt pair of the test pools with distinct gold."""

    x_a: np.ndarray
    x_b: np.ndarray
    gold_diff: np.ndarray  # gold_a − gold_b on the annotators' (standardised) scale
    prompt: np.ndarray  # index of the test pool
    reversed: np.ndarray  # the minority's utility is −gold on this pair's prompt


def test_pairs(sets: Sequence[CandidateSet], rows: Mapping[str, np.ndarray], rule: np.ndarray,
               gold_scale: float) -> TestPairs:
    x_a, x_b, diff, prompt = [], [], [], []
    for g, s in enumerate(sets):
        gold, ids = s.require_gold(), s.response_ids()
        for i in range(len(s)):
            for j in range(i + 1, len(s)):
                if gold[i] != gold[j] and ids[i] != ids[j]:
                    x_a.append(rows[ids[i]])
                    x_b.append(rows[ids[j]])
                    diff.append((gold[i] - gold[j]) / gold_scale)
                    prompt.append(g)
    prompts = np.array(prompt)
    return TestPairs(np.stack(x_a), np.stack(x_b), np.array(diff), prompts, rule[prompts])


def _estimate(e: Estimate) -> dict[str, Any]:
    return e.as_dict()


def run_minority(config: PluralisticConfig, train: Sequence[CandidateSet], rule_train: np.ndarray, pairs: TestPairs,
                 encoder: Any, rows: Mapping[str, np.ndarray], on_fit: Callable[[], None],
                 ray: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Question 1: per learner, each annotator's accuracy on the test pairs (own preference, expected label); the
    seed × learner fits here or as Ray tasks (`pluralistic_fits`)."""
    n_minority = max(1, int(round(config.minority_share * config.annotators)))
    groups = [AnnotatorGroup("majority", config.annotators - n_minority, beta=config.beta),
              AnnotatorGroup("minority", n_minority, beta=config.beta)]
    ids = groups[0].annotator_ids() + groups[1].annotator_ids()
    # per learner: (seeds, annotators, pairs) correctness against the preference and expected against a label
    learners = (UNIMODAL, *config.aware_learners, MINORITY_ONLY)
    labels = {seed: simulate_population(train, config.pairs, groups, disagree_on={"minority": rule_train}, seed=seed)
              for seed in range(config.seeds)}
    job = MinorityJob(config, labels, {seed: annotator_groups(data) for seed, data in labels.items()}, ids, pairs,
                      rows, EncoderHandle(encoder, device))
    units = [(seed, learner) for seed in range(config.seeds) for learner in learners]
    fits = map_here_or_on_ray(minority_fit, job, units, ray, on_result=lambda *_: on_fit())
    by_learner: dict[str, list[MinorityFit]] = {learner: [] for learner in learners}
    for (_, learner), fit in zip(units, fits):
        by_learner[learner].append(fit)
    truth_hits = {learner: [f.truth for f in by_learner[learner]] for learner in learners}
    label_hits = {learner: [f.label for f in by_learner[learner]] for learner in learners}
    split_prob = {learner: [f.prob_a for f in by_learner[learner] if f.prob_a is not None]
                  for learner in (UNIMODAL, *config.aware_learners)}
    chosen_k = [f.mixture_k for f in fits if f.mixture_k is not None]
    group_of = dict(job.group_of[config.seeds - 1])
    n_pairs = len(pairs.gold_diff)
    row_annotator = [a for a in ids for _ in range(n_pairs)]
    row_prompt = np.tile(pairs.prompt, len(ids))
    result: dict[str, Any] = {"annotators": {"majority": config.annotators - n_minority, "minority": n_minority},
                              "test_pairs": n_pairs, "mixture_k": chosen_k, "against": {}}
    # how the population splits on each test pair: the mean over annotators of P(they say a)
    observed_split = np.mean([expit(config.beta * np.where(pairs.reversed & (group_of[a] == "minority"), -1.0, 1.0)
                                    * pairs.gold_diff) for a in ids], axis=0)
    baseline_prob = np.mean(split_prob[UNIMODAL], axis=0)
    result["split_calibration"] = {
        learner: split_calibration(np.mean(split_prob[learner], axis=0), baseline_prob, observed_split, pairs.prompt,
                                   n_resamples=config.n_resamples).as_dict() for learner in config.aware_learners}
    for against, hits in (("preference", truth_hits), ("label", label_hits)):
        mean = {learner: np.mean(hits[learner], axis=0).ravel() for learner in learners}
        table = {}
        for learner in (*config.aware_learners, MINORITY_ONLY):
            paired = paired_people_accuracy(mean[learner], mean[UNIMODAL], row_annotator, row_prompt, group_of,
                                            n_resamples=config.n_resamples, seed=0)
            table[learner] = {name: stat.as_dict() for name, stat in paired.items()}
        result["against"][against] = table
        result.setdefault("per_seed", {})[against] = {
            learner: [float(h.mean()) for h in hits[learner]] for learner in learners}
    return result


def run_careless(config: PluralisticConfig, train: Sequence[CandidateSet], pairs: TestPairs, encoder: Any,
                 rows: Mapping[str, np.ndarray], on_fit: Callable[[], None], ray: str | None = None,
                 device: str | None = None) -> dict[str, Any]:
    """Question 2: BT-MLP accuracy against gold with careless annotators, unweighted and Dawid–Skene weighted; the
    seed × condition fits here or as Ray tasks (`pluralistic_fits`)."""
    n_careless = max(1, int(round(config.careless_share * config.annotators)))
    careful = AnnotatorGroup("careful", config.annotators - n_careless, beta=config.beta)
    labels = {
        (seed, flip): simulate_population(train, config.careless_items,
                                          [careful, AnnotatorGroup("careless", n_careless, flip_rate=flip,
                                                                   beta=config.beta)],
                                          labels_per_pair=config.labels_per_item, seed=seed)
        for seed in range(config.seeds) for flip in (0.0, 0.5)}  # per seed the same pairs and annotators; only the
    # careless ones' answers differ
    units = [(seed, condition) for seed in range(config.seeds) for condition in CARELESS_CONDITIONS]
    fits = map_here_or_on_ray(careless_fit, CarelessJob(labels, pairs, rows, EncoderHandle(encoder, device)), units, ray,
                              on_result=lambda *_: on_fit())
    hits: dict[str, list[np.ndarray]] = {c: [] for c in CARELESS_CONDITIONS}
    reliability: list[dict[str, float]] = []
    for (_, condition), (correct, quality) in zip(units, fits):
        hits[condition].append(correct)
        if quality is not None:
            reliability.append(quality)
    mean = {c: np.mean(hits[c], axis=0) for c in CARELESS_CONDITIONS}
    bootstrap = GroupBootstrap(pairs.prompt, n_resamples=config.n_resamples, seed=0)
    ones = np.ones(len(pairs.prompt), dtype=bool)
    result: dict[str, Any] = {"careless_annotators": n_careless, "test_pairs": len(pairs.prompt),
                              "accuracy": {c: _estimate(bootstrap.mean(mean[c])) for c in CARELESS_CONDITIONS},
                              "per_seed": {c: [float(h.mean()) for h in hits[c]] for c in CARELESS_CONDITIONS},
                              "dawid_skene_reliability": reliability}
    result["lost"] = _estimate(bootstrap.mean(mean["clean"] - mean["none"], ones))
    result["regained"] = _estimate(bootstrap.mean(mean["dawid-skene"] - mean["none"], ones))
    num = bootstrap.weights @ np.bincount(bootstrap.group_index, mean["dawid-skene"] - mean["none"])
    den = bootstrap.weights @ np.bincount(bootstrap.group_index, mean["clean"] - mean["none"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / den
    lost, regained = result["lost"]["value"], result["regained"]["value"]
    low, high = bootstrap._interval(ratio)  # noqa: SLF001 (the same percentile rule as every other CI here)
    result["recovered_share"] = {"value": regained / lost if lost else float("nan"), "ci_low": low, "ci_high": high,
                                 "n": len(pairs.prompt)}
    return result


def findings(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """Verdicts on the issue's targets, read from the record alone."""
    out = []
    conditioned = record["minority"]["against"]["preference"]["bt-mlp-annotator"]
    minority, majority = conditioned["group:minority"]["difference"], conditioned["group:majority"]["difference"]
    met = minority["value"] >= 0.10 and minority["ci_low"] > 0 and majority["value"] >= -0.02
    out.append({"claim": "the conditioned head's minority accuracy is ≥ .10 above unimodal BT (CI excluding 0), "
                         "majority down by at most .02",
                "verdict": "met" if met else "not met",
                "evidence": f"minority {minority['value']:+.3f} [{minority['ci_low']:+.3f}, {minority['ci_high']:+.3f}], "
                            f"majority {majority['value']:+.3f} [{majority['ci_low']:+.3f}, {majority['ci_high']:+.3f}]"})
    careless = record["careless"]
    share, lost = careless["recovered_share"], careless["lost"]
    out.append({"claim": "Dawid–Skene weights recover at least half the accuracy lost to 20% careless annotators",
                "verdict": ("not measurable (the loss's CI includes 0)" if lost["ci_low"] <= 0
                            else "met" if share["value"] >= 0.5 else "not met"),
                "evidence": f"lost {lost['value']:.3f} [{lost['ci_low']:.3f}, {lost['ci_high']:.3f}], recovered share "
                            f"{share['value']:.2f} [{share['ci_low']:.2f}, {share['ci_high']:.2f}]"})
    return out


def run_study(config: PluralisticConfig, on_step: StepCallback | None = None,
              on_embed_progress: Callable[[int, int], None] | None = None, ray: str | None = None) -> dict[str, Any]:
    """The simulated questions on one embedding of the pools, then the real sets; the JSON-ready record the report
    is built from. ``ray`` (a Ray address): each data set's texts missing from the cache are embedded on that cluster
    first, and every fit (seed × learner or condition) runs there as a Ray task; the numbers are the same."""
    started = time.perf_counter()
    total = ((config.seeds * (2 + len(config.aware_learners) + len(CARELESS_CONDITIONS)) if config.simulated else 0)
             + config.real_seeds * fits_per_seed(config.real, config.aware_learners))
    done = 0

    def fitted() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step("fit", done, total)

    record: dict[str, Any] = {"config": asdict(config), "findings": []}
    embed_seconds = 0.0
    device = study_device(config.device, ray)  # a GPU that is not here fails before any data is read
    if config.simulated:
        embed_seconds = _run_simulated(config, record, fitted, on_embed_progress, ray, device)
        record["findings"] = findings(record)
    if config.real:
        encoder = study_encoder(config.encoder, device)
        record["real"] = run_real(config.real, encoder=encoder, aware=config.aware_learners,
                                  test_fraction=config.test_fraction, seeds=config.real_seeds,
                                  limits={"wmt": config.wmt_segments, "convabuse": config.convabuse_ratings},
                                  n_resamples=config.n_resamples, on_fit=fitted, on_embed_progress=on_embed_progress,
                                  ray=ray, device=device)
        record["findings"] += real_findings(record["real"])
    record["timing"] = {"total_seconds": round(time.perf_counter() - started, 1),
                        "embed_seconds": round(embed_seconds, 1)}
    return record


def _run_simulated(config: PluralisticConfig, record: dict[str, Any], fitted: Callable[[], None],
                   on_embed_progress: Callable[[int, int], None] | None, ray: str | None = None,
                   device: str | None = None) -> float:
    """Both simulated questions into ``record``; returns the seconds spent embedding the pools."""
    started = time.perf_counter()
    sets = subsample_pools(label_utilities(load_candidates(config.candidates, config.prompts), config.label_scale),
                           config.per_prompt, 0)
    encoder = study_encoder(config.encoder, device)
    pools = candidates_dataset(sets)
    if ray is not None:
        from rewardlab.embed.ray_embed import embed_texts_ray

        embed_texts_ray(dataset_texts(pools, "interaction", encoder), encoder, address=ray,
                        on_progress=on_embed_progress)
    rows, _ = featurize_dataset(pools, encoder, "interaction", on_progress=on_embed_progress)
    embedded = time.perf_counter()
    rule = topic_rule(sets, rows, config.disagree)
    order = np.random.default_rng(0).permutation(len(sets))
    n_test = int(round(config.test_fraction * len(sets)))
    test_index, train_index = order[:n_test], order[n_test:]
    train = [sets[i] for i in train_index]
    gold_scale = float(np.concatenate([s.require_gold() for s in sets]).std()) or 1.0
    pairs = test_pairs([sets[i] for i in test_index], rows, rule[test_index], gold_scale)
    record["data"] = {"pools": len(sets), "train_pools": len(train), "test_pools": n_test,
                      "reversed_test_pools": int(rule[test_index].sum())}
    record["minority"] = run_minority(config, train, rule[train_index], pairs, encoder, rows, fitted, ray, device)
    record["careless"] = run_careless(config, train, pairs, encoder, rows, fitted, ray, device)
    return embedded - started
