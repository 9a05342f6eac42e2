"""Bias probes: each perturbation changes the text as documented; verdicts follow the scorer's real preference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.evalbiasbench import read_evalbiasbench
from rewardlab.data.types import Comparison
from rewardlab.errors import DataError, InvalidValueError, ModelError
from rewardlab.evaluate import probe_perturbations as text
from rewardlab.evaluate.bootstrap import Estimate
from rewardlab.evaluate.probes import (
    ALL_BIASES,
    PROBES,
    Probe,
    ProbeItem,
    probe_items,
    probe_verdict,
    register_probe,
    run_fixed_probes,
    run_probes,
    sample_items,
)

THREE = "Paris is the capital of France. It lies on the Seine! Is it large? Yes, very."
ONE = "Paris is the capital of France and a large city."


def by_length(prompts: list[str], responses: list[str]) -> np.ndarray:
    return np.array([len(r) for r in responses], float)


def constant(prompts: list[str], responses: list[str]) -> np.ndarray:
    return np.zeros(len(responses))


def items(n_prompts: int = 40, per_prompt: int = 2) -> list[ProbeItem]:
    """Multi-sentence responses of varied length, several per prompt, sharing one pool."""
    rows = []
    for p in range(n_prompts):
        for k in range(per_prompt):
            sentences = [f"Fact {j} about topic {p} number {k} is stated here." for j in range(2 + (p + k) % 4)]
            rows.append((f"p{p}", f"Tell me about topic {p}.", " ".join(sentences)))
    pool = tuple((pid, response) for pid, _, response in rows)
    return [ProbeItem(pid, prompt, response, pid, pool) for pid, prompt, response in rows]


def test_sentences_and_spans_cover_punctuation_quotes_and_line_breaks() -> None:
    sample = 'One. Two! "Three?" Four\nFive'
    assert text.split_sentences(sample) == ["One.", "Two!", '"Three?"', "Four", "Five"]
    assert all(sample[s:e] == part for (s, e), part in zip(text.sentence_spans(sample), text.split_sentences(sample)))
    assert text.split_sentences("  \n ") == []


def test_padding_is_longer_and_made_only_of_the_original_sentences() -> None:
    padded = text.pad_by_repetition(THREE)
    assert padded is not None and padded.startswith(THREE)
    assert text.PADDING_FACTOR * len(THREE) <= len(padded) <= 2 * len(THREE) + 1
    assert set(text.split_sentences(padded)) == set(text.split_sentences(THREE))
    assert padded == THREE + " Paris is the capital of France. It lies on the Seine!"
    assert text.pad_by_repetition(ONE) == ONE + " " + ONE
    assert text.pad_by_repetition("   ") is None


def test_truncation_keeps_a_prefix_through_the_first_half_of_sentences_or_words() -> None:
    assert text.truncate_to_half(THREE) == "Paris is the capital of France. It lies on the Seine!"
    assert text.truncate_to_half("A b. C d. E f.") == "A b."
    assert text.truncate_to_half(ONE) == "Paris is the capital of"  # 10 words -> the first 5
    assert text.truncate_to_half("Too short.") is None  # one sentence of two words: skipped


def test_sycophancy_refusal_and_list_formatting() -> None:
    rng = np.random.default_rng(0)
    flattered = text.prepend_sycophancy(THREE, rng)
    assert flattered is not None and flattered.endswith(THREE)
    assert flattered[: -len(THREE)] in text.SYCOPHANTIC_OPENERS
    assert text.prepend_sycophancy("You're absolutely right! Indeed.", rng) is None
    assert text.prepend_refusal(THREE) == "I'm sorry, but I can't help with that. " + THREE
    assert text.prepend_refusal(text.REFUSAL + "x") is None
    listed = text.as_markdown_list(THREE)
    assert listed == ("- Paris is the capital of France.\n- It lies on the Seine!\n- Is it large?\n- Yes, very.")
    assert text.as_markdown_list(ONE) is None  # one sentence: nothing to list
    assert text.as_markdown_list("Intro.\n- already a list\n- of things") is None


def test_off_topic_takes_another_prompts_response() -> None:
    data = items(5, 2)
    rng = np.random.default_rng(1)
    for item in data:
        swapped = PROBES["off-topic"].perturb(item, rng)
        assert swapped is not None and swapped != item.response
        assert swapped in {r for g, r in item.pool if g != item.cluster}
    alone = ProbeItem("p", "q", "r", "p", (("p", "r"), ("p", "s")))
    assert PROBES["off-topic"].perturb(alone, rng) is None  # only its own prompt in the pool
    crowded = ProbeItem("p", "q", "r", "p", tuple(("p", f"mine {i}") for i in range(500)) + (("o", "theirs"),))
    assert PROBES["off-topic"].perturb(crowded, rng) == "theirs"  # found even when random draws miss it


def test_builtin_probes_are_registered_with_their_directions() -> None:
    assert list(PROBES) == ["padding", "truncation", "sycophancy", "markdown-list", "refusal", "off-topic"]
    assert {name for name, p in PROBES.items() if p.direction == "neutral"} == {"markdown-list"}
    assert all(p.description for p in PROBES.values())
    with pytest.raises(InvalidValueError, match="unknown probe 'nope'"):
        run_probes(by_length, items(), ["nope"])


def test_a_length_only_scorer_fails_padding_and_passes_truncation() -> None:
    results = {r.name: r for r in run_probes(by_length, items(), seed=3)}
    padding, truncation = results["padding"], results["truncation"]
    assert padding.verdict == "fails" and padding.perturbed_preferred.value == 1.0
    assert padding.mean_score_change.low > 0
    assert truncation.verdict == "passes" and truncation.perturbed_preferred.value == 0.0
    assert results["sycophancy"].verdict == "fails" and results["refusal"].verdict == "fails"
    assert results["markdown-list"].verdict == "fails"  # "- " prefixes make it longer: a (length) format bias
    assert len(padding.examples) == 10 and truncation.examples == []
    gains = [e.score_perturbed - e.score_original for e in padding.examples]
    assert gains == sorted(gains, reverse=True) and all(g > 0 for g in gains)
    json.dumps([r.as_dict() for r in results.values()])


def test_a_scorer_preferring_the_original_passes_and_a_constant_one_is_inconclusive() -> None:
    data = items()
    originals = {item.response for item in data}

    def likes_originals(prompts: list[str], responses: list[str]) -> np.ndarray:
        return np.array([1.0 if r in originals else 0.0 for r in responses])

    for result in run_probes(likes_originals, data, ["padding", "truncation", "sycophancy", "refusal"]):
        assert result.verdict == "passes" and result.perturbed_preferred.high < 0.5, result.name
    flat = {r.name: r for r in run_probes(constant, data)}
    for name in ("padding", "truncation", "sycophancy", "refusal", "off-topic"):
        assert flat[name].verdict == "inconclusive" and flat[name].perturbed_preferred.value == 0.5  # ties count ½
    assert flat["markdown-list"].verdict == "passes"  # indifferent to format: what a neutral probe asks


def test_neutral_probes_fail_on_either_side_and_pass_only_inside_the_margin() -> None:
    assert probe_verdict(Estimate(0.3, 0.2, 0.4, 50), "neutral") == "fails"
    assert probe_verdict(Estimate(0.3, 0.2, 0.4, 50), "degraded") == "passes"
    assert probe_verdict(Estimate(0.7, 0.6, 0.8, 50), "neutral") == "fails"
    assert probe_verdict(Estimate(0.5, 0.45, 0.55, 50), "neutral") == "passes"
    assert probe_verdict(Estimate(0.5, 0.3, 0.7, 50), "neutral") == "inconclusive"
    assert probe_verdict(Estimate(float("nan"), float("nan"), float("nan"), 0), "degraded") == "untested"


def test_skipped_items_are_counted_not_dropped() -> None:
    data = [ProbeItem("a", "q", ONE), ProbeItem("b", "q2", THREE), ProbeItem("c", "q3", "Hi there.")]
    result = {r.name: r for r in run_probes(by_length, data, ["markdown-list", "truncation", "off-topic"])}
    assert (result["markdown-list"].n_probed, result["markdown-list"].n_skipped) == (1, 2)
    assert (result["truncation"].n_probed, result["truncation"].n_skipped) == (2, 1)
    assert (result["off-topic"].n_probed, result["off-topic"].n_skipped) == (0, 3)  # no pool given
    assert result["off-topic"].verdict == "untested" and result["off-topic"].perturbed_preferred.n == 0
    PROBES.register("same", Probe("same", "returns the response unchanged", lambda item, rng: item.response))
    try:
        (unchanged,) = run_probes(by_length, data, ["same"])
        assert (unchanged.n_probed, unchanged.n_skipped, unchanged.verdict) == (0, 3, "untested")
    finally:
        PROBES.unregister("same")


def test_results_are_deterministic_by_seed_and_one_score_call_covers_everything() -> None:
    calls: list[int] = []

    def counting(prompts: list[str], responses: list[str]) -> np.ndarray:
        calls.append(len(responses))
        return by_length(prompts, responses)

    data = items(60, 3)
    first = [r.as_dict() for r in run_probes(counting, data, max_items=50, seed=7)]
    assert len(calls) == 1 and calls[0] == 50 + sum(r["n_probed"] for r in first)
    assert first == [r.as_dict() for r in run_probes(by_length, data, max_items=50, seed=7)]
    assert first != [r.as_dict() for r in run_probes(by_length, data, max_items=50, seed=8)]


def test_sampling_takes_one_response_per_prompt_first() -> None:
    data = items(30, 4)
    sample = sample_items(data, 30, seed=0)
    assert len({item.cluster for item in sample}) == 30
    bigger = sample_items(data, 45, seed=0)
    assert len(bigger) == 45 and bigger[:30] == sample and len({item.cluster for item in bigger}) == 30
    assert sample_items(data, 500) == data
    with pytest.raises(InvalidValueError):
        sample_items(data, 0)


def test_a_user_probe_is_one_registration() -> None:
    PROBES.register("shout", Probe("shout", "upper case", lambda item, rng: item.response.upper(), "neutral"))
    try:
        (result,) = run_probes(by_length, items(), ["shout"])
        assert result.verdict == "passes" and result.mean_score_change.value == 0.0
    finally:
        PROBES.unregister("shout")

    @register_probe("double", "the response twice")
    def double(item: ProbeItem, rng: np.random.Generator) -> str | None:
        return item.response + " " + item.response

    try:
        (result,) = run_probes(by_length, items(), ["double"])
        assert result.direction == "degraded" and result.verdict == "fails"
    finally:
        PROBES.unregister("double")


def test_a_broken_reward_function_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="shape"):
        run_probes(lambda p, r: np.zeros(3), items(), ["padding"])
    with pytest.raises(ModelError, match="non-finite"):
        run_probes(lambda p, r: np.full(len(r), np.nan), items(), ["padding"])


def small_bias_set() -> FeedbackDataset:
    """Six pairs: 'length' ones where the shorter side is better, 'tone' ones where the longer side is."""
    data = FeedbackDataset("toy")
    for i in range(3):
        pid = data.add_prompt(f"question {i}")
        short, long = data.add_response(pid, "ok"), data.add_response(pid, "ok " * (i + 5))
        data.add(Comparison(pid, short, long, "a", meta={"bias": "length"}))
        pid2 = data.add_prompt(f"other question {i}")
        short2, long2 = data.add_response(pid2, "no"), data.add_response(pid2, "yes " * (i + 5))
        data.add(Comparison(pid2, long2, short2, "a", meta={"bias": "tone"}))
    return data


def test_fixed_probes_report_accuracy_per_bias_and_overall() -> None:
    results = {r.bias: r for r in run_fixed_probes(by_length, small_bias_set())}
    assert list(results) == ["length", "tone", ALL_BIASES]
    assert results["length"].accuracy.value == 0.0 and results["length"].verdict == "fails"
    assert results["tone"].accuracy.value == 1.0 and results["tone"].verdict == "passes"
    assert results[ALL_BIASES].n == 6 and results[ALL_BIASES].accuracy.value == 0.5
    json.dumps([r.as_dict() for r in results.values()])
    with pytest.raises(DataError, match="'bias'"):
        run_fixed_probes(by_length, FeedbackDataset("none"))


def test_fixed_probes_on_evalbiasbench_with_a_length_scorer(shared_data: Path) -> None:
    path = shared_data / "evalbiasbench" / "biasbench.json"
    if not path.exists():
        pytest.skip(f"{path} is absent from the shared data")
    results = {r.bias: r for r in run_fixed_probes(by_length, read_evalbiasbench(path))}
    assert results[ALL_BIASES].n == 80 and len(results) == 7
    assert results["length bias"].verdict == "fails"  # its better answers are the shorter ones
    assert results[ALL_BIASES].verdict == "fails"


def test_probe_items_cover_the_compared_responses_with_one_shared_pool() -> None:
    data = small_bias_set()
    built = probe_items(data)
    assert len(built) == 12 and all(item.pool is built[0].pool for item in built)
    assert {item.response for item in built} == {r.text for r in data.responses.values()}
