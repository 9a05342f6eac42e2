"""`LocalGenerator` on a tiny random GPT-2: shapes, seeding, length limits, batching, chat templates."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from rewardlab.generate import GenerationError, SamplingParams
from rewardlab.generate.local import LocalGenerator, default_model_path

PROMPTS = ["hello there", "What is the capital of France?", "Write a short poem about the sea and the sky, please."]


@pytest.fixture(scope="module")
def generator(tiny_model: Path) -> LocalGenerator:
    return LocalGenerator(tiny_model, batch_size=2).load()


def test_n_samples_per_prompt_over_several_batches(generator: LocalGenerator) -> None:
    texts = generator.generate(PROMPTS, n=3, max_new_tokens=6, seed=0)
    assert [len(row) for row in texts] == [3, 3, 3]
    assert all(isinstance(t, str) for row in texts for t in row)
    assert len({t for row in texts for t in row}) > 1  # sampled, not one text repeated


def test_same_seed_same_texts_other_seed_other_texts(generator: LocalGenerator) -> None:
    first = generator.generate(PROMPTS, n=2, max_new_tokens=8, seed=7)
    assert generator.generate(PROMPTS, n=2, max_new_tokens=8, seed=7) == first
    assert generator.generate(PROMPTS, n=2, max_new_tokens=8, seed=8) != first


def test_seeding_leaves_the_global_rng_alone(generator: LocalGenerator) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generator.generate(["hello"], n=2, max_new_tokens=4, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_max_new_tokens_is_respected(generator: LocalGenerator) -> None:
    rows = generator.complete(PROMPTS, SamplingParams(n=4, max_new_tokens=5, seed=1))
    counts = [c.completion_tokens for row in rows for c in row]
    assert all(1 <= k <= 5 for k in counts)
    assert all(c.finish_reason == ("length" if c.completion_tokens == 5 else "stop") for row in rows for c in row)
    longer = generator.complete(PROMPTS, SamplingParams(n=4, max_new_tokens=12, seed=1))
    assert max(c.completion_tokens for row in longer for c in row) > 5


def test_batching_does_not_mix_up_prompts(tiny_model: Path) -> None:
    """Greedy decoding is batch-independent: each prompt's answer is the same alone and left-padded in a batch."""
    batched = LocalGenerator(tiny_model, batch_size=3).generate(PROMPTS, temperature=0, max_new_tokens=6)
    alone = LocalGenerator(tiny_model, batch_size=1).generate(PROMPTS, temperature=0, max_new_tokens=6)
    assert batched == alone


def test_greedy_repeats_one_answer_n_times(generator: LocalGenerator) -> None:
    [row] = generator.generate(["hello"], n=3, temperature=0, max_new_tokens=4)
    assert len(row) == 3 and len(set(row)) == 1


def test_chat_template_is_applied_when_present(generator: LocalGenerator, tiny_model_plain: Path) -> None:
    assert generator.render("hi") == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    plain = LocalGenerator(tiny_model_plain)
    assert plain.render("hi") == "hi"
    assert plain.render([{"role": "user", "content": "hi"}]) == "user: hi\nassistant:"
    assert [len(r) for r in plain.generate(["hi", "there"], n=2, max_new_tokens=3)] == [2, 2]


def test_stops_at_end_of_sequence(generator: LocalGenerator) -> None:
    eos = generator.tokenizer.eos_token_id
    pad = generator.tokenizer.pad_token_id
    ids = generator.tokenizer("hello there", add_special_tokens=False)["input_ids"]
    done = generator._completion([*ids, eos, pad, pad])
    assert (done.text, done.completion_tokens, done.finish_reason) == ("hello there", len(ids) + 1, "stop")
    assert generator._completion(ids).finish_reason == "length"


def test_bad_arguments_are_reported(tiny_model: Path, generator: LocalGenerator) -> None:
    with pytest.raises(GenerationError, match="no such model"):
        LocalGenerator(tiny_model / "missing")
    with pytest.raises(GenerationError, match="n must be"):
        generator.generate(["hi"], n=0)
    with pytest.raises(GenerationError, match="leaves no room"):
        generator.generate(["hi"], max_new_tokens=500)


@pytest.mark.slow
def test_smollm2_gguf_generates() -> None:
    try:
        path = default_model_path()
    except GenerationError as exc:
        pytest.skip(str(exc))
    started = time.perf_counter()
    generator = LocalGenerator(path).load()
    loaded = time.perf_counter()
    [[a, b]] = generator.generate(["What is the capital of France?"], n=2, max_new_tokens=8, seed=0)
    generated = time.perf_counter()
    print(f"SmolLM2 GGUF: load {loaded - started:.1f}s, 2x8 tokens {generated - loaded:.1f}s")
    assert a.strip() and b.strip()
    assert "<|im_end|>" not in a + b
    assert generator.generate(["What is the capital of France?"], n=2, max_new_tokens=8, seed=0) == [[a, b]]
    # the second load reads the stored fp32 conversion, and samples the same texts from it
    again = LocalGenerator(path).load()
    assert again.loaded_from_cache
    assert again.render("What is the capital of France?") == generator.render("What is the capital of France?")
    assert again.generate(["What is the capital of France?"], n=2, max_new_tokens=8, seed=0) == [[a, b]]


def test_progress_counts_prompts_as_they_finish(tiny_model: Path) -> None:
    """A bar over prompts moves per prompt, not per batch (it sat at 0/N until the end)."""
    from rewardlab.data.candidates import CandidateSet
    from rewardlab.generate.candidates import generate_candidates

    seen: list[int] = []
    LocalGenerator(tiny_model, batch_size=2).generate(PROMPTS, n=2, max_new_tokens=6, on_done=seen.append)
    assert seen == sorted(seen) and 2 in seen and seen[-1] == 3  # the first batch is reported before the second
    progress: list[tuple[int, int]] = []
    sets = list(generate_candidates(LocalGenerator(tiny_model, batch_size=1), PROMPTS, SamplingParams(n=2, max_new_tokens=4),
                                    batch_size=8, on_progress=lambda done, total: progress.append((done, total))))
    assert all(isinstance(s, CandidateSet) for s in sets)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert {(1, 3), (2, 3), (3, 3)} <= set(progress)  # inside one batch of 8 prompts, one step per prompt


def test_finished_prompts_are_counted_inside_a_batch() -> None:
    """The watcher never stops generation; it counts prompts whose every sample has produced an end token."""
    from rewardlab.generate.local import _finished_prompts

    seen: list[int] = []
    watch = _finished_prompts(prompt_length=2, per_prompt=2, eos_ids={9}, on_finished=seen.append)
    # 2 prompts x 2 samples: 2 prompt tokens (an end token there does not count), then the new tokens
    step = torch.tensor([[9, 1, 5], [9, 1, 9], [1, 1, 9], [1, 1, 9]])
    assert not watch(step, None).any() and seen == [1]  # prompt 2 is done, prompt 1 has a sample running
    watch(torch.tensor([[9, 1, 5, 7], [9, 1, 9, 0], [1, 1, 9, 0], [1, 1, 9, 0]]), None)
    assert seen == [1]  # no change, no report
    watch(torch.tensor([[9, 1, 5, 7, 9], [9, 1, 9, 0, 0], [1, 1, 9, 0, 0], [1, 1, 9, 0, 0]]), None)
    assert seen == [1, 2]
