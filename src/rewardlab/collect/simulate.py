"""Simulated annotators: pairwise labels from gold scores with controlled noise and biases.

An annotator prefers the response shown first (``a``) with probability
P(a ≻ b) = σ(β · (gold_a − gold_b)/s + position_bias + length_bias · (ℓ_a − ℓ_b)/s_ℓ), then flips its
answer with probability ``flip_rate``. s and s_ℓ are the spread (std) of gold and of log-length over the
pool, so β means the same thing on any gold scale: β = 1 is a noisy annotator, β = 10 a nearly perfect one.

Pairs are drawn within a prompt (``same-prompt``) or across two different prompts (``cross-prompt``,
Sun, Shen & Ton 2025); either way the result is an ordinary `FeedbackDataset` of comparisons with annotator
ids, so every learner trains on it unchanged. A cross-prompt comparison is filed under the prompt of
``a``; ``meta["prompt_b"]`` names the other one.

`simulate_population` simulates people rather than noise: groups of annotators (`AnnotatorGroup`) whose utilities
disagree on a controlled share of the prompts, and careless members (coin flips), each pair labelled by one or more of
them, for annotator-aware and pluralistic reward models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from rewardlab.data.candidates import CandidateSet, pool_offsets
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison
from rewardlab.errors import InvalidValueError

PAIRINGS = ("same-prompt", "cross-prompt")


@dataclass(frozen=True)
class SimulatedAnnotator:
    """Bradley-Terry noise with rationality ``beta`` (∞ = always right), label flips and two biases."""

    annotator_id: str = "sim"
    beta: float = 1.0
    flip_rate: float = 0.0
    position_bias: float = 0.0  # logit added in favour of the response shown first
    length_bias: float = 0.0  # logit per standard deviation of log-length difference, in favour of the longer

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise InvalidValueError("beta must be >= 0 (0 = coin flips, inf = noiseless)")
        if not 0.0 <= self.flip_rate <= 0.5:
            raise InvalidValueError("flip_rate must be in [0, 0.5]")

    def prob_first_wins(self, gold_diff: np.ndarray, length_diff: np.ndarray | float = 0.0) -> np.ndarray:
        """P(the first response is preferred) for standardised gold and log-length differences."""
        gold_diff = np.asarray(gold_diff, dtype=np.float64)
        if np.isinf(self.beta):
            base = np.where(gold_diff > 0, 1.0, np.where(gold_diff < 0, 0.0, 0.5))
            logit_bias = self.position_bias + self.length_bias * np.asarray(length_diff)
            # biases still act when gold cannot decide
            base = np.where(gold_diff == 0, expit(logit_bias), base)
        else:
            base = expit(self.beta * gold_diff + self.position_bias + self.length_bias * np.asarray(length_diff))
        return (1 - self.flip_rate) * base + self.flip_rate * (1 - base)


@dataclass(frozen=True)
class Pool:
    """All candidates of a list of candidate sets, flattened, with what annotators look at."""

    set_index: np.ndarray  # (candidates,) which set each candidate belongs to
    gold_z: np.ndarray  # gold / std of gold over the pool
    log_length_z: np.ndarray  # log(1 + characters) / its std
    response_ids: list[str]
    starts: np.ndarray  # (sets + 1,) offsets of each set in the flat arrays

    @classmethod
    def of(cls, sets: Sequence[CandidateSet]) -> Pool:
        if len(sets) < 2:
            raise InvalidValueError("simulating comparisons needs at least two candidate sets")
        gold = np.concatenate([s.require_gold() for s in sets])
        log_length = np.log1p(np.array([len(t) for s in sets for t in s.responses], dtype=np.float64))
        return cls(
            set_index=np.repeat(np.arange(len(sets)), [len(s) for s in sets]),
            gold_z=gold / (gold.std() or 1.0),
            log_length_z=log_length / (log_length.std() or 1.0),
            response_ids=[rid for s in sets for rid in s.response_ids()],
            starts=pool_offsets(sets),
        )


def draw_pairs(pool: Pool, n_pairs: int, pairing: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` (first, second) flat candidate indices with distinct texts; prompts are drawn uniformly.

    Pairs are drawn with replacement (a pair may repeat, as it would with independent annotators); two
    candidates with identical text are never paired, because a response cannot be compared with itself.
    """
    if pairing not in PAIRINGS:
        raise InvalidValueError(f"unknown pairing {pairing!r}; known: {', '.join(PAIRINGS)}")
    n_sets = len(pool.starts) - 1
    sizes = np.diff(pool.starts)
    if pairing == "same-prompt" and sizes.max() < 2:
        raise InvalidValueError("same-prompt pairs need a candidate set with at least two responses")
    first = np.empty(0, dtype=np.int64)
    second = np.empty(0, dtype=np.int64)
    while len(first) < n_pairs:
        need = (n_pairs - len(first)) * 2 + 16
        set_a = rng.integers(n_sets, size=need)
        if pairing == "same-prompt":
            set_a = set_a[sizes[set_a] >= 2]
            set_b = set_a
        else:
            set_b = (set_a + rng.integers(1, n_sets, size=need)) % n_sets  # a different prompt
        pick_a = pool.starts[set_a] + (rng.random(len(set_a)) * sizes[set_a]).astype(np.int64)
        pick_b = pool.starts[set_b] + (rng.random(len(set_b)) * sizes[set_b]).astype(np.int64)
        ids = pool.response_ids
        distinct = np.array([ids[a] != ids[b] for a, b in zip(pick_a, pick_b)], dtype=bool)
        first = np.concatenate([first, pick_a[distinct]])
        second = np.concatenate([second, pick_b[distinct]])
    return first[:n_pairs], second[:n_pairs]


def simulate_comparisons(
    sets: Sequence[CandidateSet],
    n_pairs: int,
    annotators: SimulatedAnnotator | Sequence[SimulatedAnnotator] = SimulatedAnnotator(),
    *,
    pairing: str = "same-prompt",
    seed: int = 0,
    name: str = "simulated",
) -> FeedbackDataset:
    """A dataset of ``n_pairs`` comparisons (the annotation budget) labelled by simulated annotators.

    Each pair goes to one annotator, chosen uniformly; the presented order is random, so position bias
    is bias, not signal. ``meta`` keeps the true P(a ≻ b) for noise-ceiling analyses.
    """
    if n_pairs < 1:
        raise InvalidValueError("the annotation budget must be at least one pair")
    team = [annotators] if isinstance(annotators, SimulatedAnnotator) else list(annotators)
    if not team:
        raise InvalidValueError("need at least one annotator")
    rng = np.random.default_rng(seed)
    pool = Pool.of(sets)
    first, second = draw_pairs(pool, n_pairs, pairing, rng)
    who = rng.integers(len(team), size=n_pairs)
    prob = np.empty(n_pairs)
    for k, annotator in enumerate(team):
        mine = who == k
        prob[mine] = annotator.prob_first_wins(pool.gold_z[first[mine]] - pool.gold_z[second[mine]],
                                               pool.log_length_z[first[mine]] - pool.log_length_z[second[mine]])
    first_wins = rng.random(n_pairs) < prob

    dataset = FeedbackDataset(name)
    prompt_ids = [dataset.add_prompt(s.prompt) for s in sets]
    flat_texts = [(i, text, s.sources[j] if s.sources else None)
                  for i, s in enumerate(sets) for j, text in enumerate(s.responses)]
    used = np.unique(np.concatenate([first, second]))
    for index in used:
        set_i, text, source = flat_texts[index]
        dataset.add_response(prompt_ids[set_i], text, source)
    for a, b, k, p, won in zip(first, second, who, prob, first_wins):
        pid_a, pid_b = prompt_ids[pool.set_index[a]], prompt_ids[pool.set_index[b]]
        meta: dict[str, object] = {"p_a": round(float(p), 6), "pairing": pairing}
        if pid_a != pid_b:
            meta["prompt_b"] = pid_b
        dataset.add(Comparison(pid_a, pool.response_ids[a], pool.response_ids[b], "a" if won else "b",
                               annotator_id=team[k].annotator_id, meta=meta))
    dataset.notes.append(
        f"simulated {n_pairs} {pairing} comparisons by {', '.join(sorted({t.annotator_id for t in team}))} "
        f"(seed {seed})"
    )
    return dataset


def agreement_with_gold(dataset: FeedbackDataset, sets: Sequence[CandidateSet]) -> float:
    """Fraction of a dataset's comparisons whose winner has the higher gold (gold ties left out): its noise level."""
    gold_of = {rid: g for s in sets for rid, g in zip(s.response_ids(), s.require_gold())}
    agree = [(gold_of[c.a] > gold_of[c.b]) == (c.outcome == "a")
             for c in dataset.comparisons if gold_of[c.a] != gold_of[c.b]]
    return float(np.mean(agree)) if agree else float("nan")


@dataclass(frozen=True)
class AnnotatorGroup:
    """``n_annotators`` simulated people who share a utility: gold, except on a share ``disagree`` of the prompts,
    where their utility is −gold (they prefer what gold ranks worse). ``flip_rate`` 0.5 makes them careless (coin
    flips); ``beta`` is their rationality, as in `SimulatedAnnotator`."""

    name: str
    n_annotators: int
    disagree: float = 0.0
    flip_rate: float = 0.0
    beta: float = 3.0

    def __post_init__(self) -> None:
        if not self.name or self.n_annotators < 1:
            raise InvalidValueError(f"annotator group {self.name!r}: needs a name and at least one annotator")
        if not 0.0 <= self.disagree <= 1.0:
            raise InvalidValueError(f"annotator group {self.name!r}: disagree must be a share in [0, 1]")

    def annotator_ids(self) -> list[str]:
        return [f"{self.name}{j}" for j in range(self.n_annotators)]


def simulate_population(
    sets: Sequence[CandidateSet],
    n_pairs: int,
    groups: Sequence[AnnotatorGroup],
    *,
    labels_per_pair: int = 1,
    disagree_on: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    name: str = "simulated-population",
) -> FeedbackDataset:
    """``n_pairs`` same-prompt pairs, each labelled by ``labels_per_pair`` distinct annotators drawn uniformly from
    all groups' members: a population whose groups disagree on a controlled share of the prompts.

    Which prompts a group disagrees on is drawn at random (its ``disagree`` share of the candidate sets) unless
    ``disagree_on[group.name]`` gives a boolean per set: a rule the features can reveal (a topic) makes the
    disagreement learnable, a random one only memorisable. Each comparison's ``meta`` keeps ``group``, whether the
    group's utility was reversed there (``reversed``) and the true P(a ≻ b) (``p_a``).
    """
    if n_pairs < 1 or labels_per_pair < 1:
        raise InvalidValueError("need at least one pair and one label per pair")
    team = [(group, annotator) for group in groups for annotator in group.annotator_ids()]
    if labels_per_pair > len(team):
        raise InvalidValueError(f"{labels_per_pair} labels per pair need as many annotators; there are {len(team)}")
    rng = np.random.default_rng(seed)
    reversed_sets: dict[str, np.ndarray] = {}
    for group in groups:
        given = (disagree_on or {}).get(group.name)
        if given is not None:
            if len(given) != len(sets):
                raise InvalidValueError(f"disagree_on[{group.name!r}] has {len(given)} entries for {len(sets)} sets")
            reversed_sets[group.name] = np.asarray(given, dtype=bool)
        else:
            chosen = rng.permutation(len(sets))[: int(round(group.disagree * len(sets)))]
            reversed_sets[group.name] = np.isin(np.arange(len(sets)), chosen)
    pool = Pool.of(sets)
    first, second = draw_pairs(pool, n_pairs, "same-prompt", rng)
    dataset = FeedbackDataset(name)
    prompt_ids = [dataset.add_prompt(s.prompt) for s in sets]
    flat = [(i, text, s.sources[j] if s.sources else None) for i, s in enumerate(sets) for j, text in enumerate(s.responses)]
    for index in np.unique(np.concatenate([first, second])):
        dataset.add_response(prompt_ids[flat[index][0]], flat[index][1], flat[index][2])
    for a, b in zip(first, second):
        set_i = int(pool.set_index[a])
        for k in rng.choice(len(team), size=labels_per_pair, replace=False):
            group, annotator_id = team[k]
            flipped = bool(reversed_sets[group.name][set_i])
            gold_diff = (pool.gold_z[a] - pool.gold_z[b]) * (-1.0 if flipped else 1.0)
            person = SimulatedAnnotator(annotator_id, beta=group.beta, flip_rate=group.flip_rate)
            p = float(person.prob_first_wins(np.array([gold_diff]))[0])
            dataset.add(Comparison(prompt_ids[set_i], pool.response_ids[a], pool.response_ids[b],
                                   "a" if rng.random() < p else "b", annotator_id=annotator_id,
                                   meta={"group": group.name, "reversed": flipped, "p_a": round(p, 6)}))
    dataset.notes.append(f"simulated population: {n_pairs} pairs × {labels_per_pair} labels by "
                         + ", ".join(f"{g.name} ({g.n_annotators}, disagree {g.disagree:g}, flip {g.flip_rate:g})"
                                     for g in groups) + f" (seed {seed})")
    return dataset
