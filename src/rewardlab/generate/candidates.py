"""Candidate sets for best-of-N: ``n`` sampled responses per prompt, written as candidate JSONL.

The file is the generic format `rewardlab.data.candidates.read_candidates_jsonl` reads, with each
response an object ``{"text", "source"}`` (the source is the generator id) and the sampling settings
alongside, so a pool says where it came from. Lines are written as prompts finish: an interrupted run
keeps what it sampled.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rewardlab.data.candidates import CandidateSet
from rewardlab.data.hh_rlhf import chat_turns, is_dialogue
from rewardlab.errors import InvalidValueError
from rewardlab.generate.base import ChatPrompt, Generator, SamplingParams


def generate_candidates(generator: Generator, prompts: Sequence[str], params: SamplingParams, batch_size: int = 8,
                        system_prompt: str | None = None,
                        on_progress: Callable[[int, int], None] | None = None) -> Iterator[CandidateSet]:
    """One `CandidateSet` per prompt, in order; prompt batch ``k`` is sampled with seed ``params.seed + k``.

    An HH-RLHF dialogue prompt (``\\n\\nHuman: ...``) goes to the model as its chat turns, not as one user
    message holding the whole transcript; the candidate set keeps the prompt text as given.

    Seeding per batch keeps a run reproducible while batches still get different random streams.
    """
    if batch_size < 1:
        raise InvalidValueError("batch_size must be at least 1")
    total = len(prompts)
    if on_progress:
        on_progress(0, total)
    for k, start in enumerate(range(0, total, batch_size)):
        chunk = prompts[start:start + batch_size]
        system = [] if system_prompt is None else [{"role": "system", "content": system_prompt}]
        inputs: list[ChatPrompt] = [[*system, *chat_turns(p)] if system or is_dialogue(p) else p for p in chunk]
        seed = None if params.seed is None else params.seed + k
        on_done = None if on_progress is None else (lambda done, before=start: on_progress(before + done, total))
        texts = sample_texts(generator, inputs, params, seed, on_done)
        for prompt, responses in zip(chunk, texts):
            yield CandidateSet(prompt, tuple(responses), sources=(generator.id,) * len(responses))
        if on_progress:
            on_progress(min(start + batch_size, total), total)


def sample_texts(generator: Generator, prompts: Sequence[ChatPrompt], params: SamplingParams, seed: int | None,
                 on_done: Callable[[int], None] | None = None) -> list[list[str]]:
    """``generator.generate`` with ``params`` (and ``seed``), telling ``on_done(k)`` as each of the first ``k``
    prompts finishes where the generator can report it (rewardlab's local and OpenAI-compatible generators take
    an ``on_done`` callback); with any other generator the caller reports when the call returns."""
    settings: dict[str, Any] = {"n": params.n, "temperature": params.temperature, "top_p": params.top_p,
                                "max_new_tokens": params.max_new_tokens, "seed": seed}
    if on_done is not None and "on_done" in inspect.signature(generator.generate).parameters:
        settings["on_done"] = on_done
    return generator.generate(prompts, **settings)


def candidate_record(candidate_set: CandidateSet, generation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSONL record: responses as ``{"text", "source"}`` objects, plus how they were sampled."""
    sources = candidate_set.sources or ("",) * len(candidate_set)
    record: dict[str, Any] = {
        "prompt": candidate_set.prompt,
        "responses": [{"text": t, "source": s} for t, s in zip(candidate_set.responses, sources)],
    }
    if generation:
        record["generation"] = generation
    return record


def write_generated_candidates(generator: Generator, prompts: Sequence[str], params: SamplingParams, out: str | Path,
                               batch_size: int = 8, system_prompt: str | None = None,
                               on_progress: Callable[[int, int], None] | None = None) -> int:
    """Sample candidates for ``prompts`` and write them to ``out`` line by line; returns the number of sets."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    generation = {"generator": generator.id, **asdict(params), "batch_size": batch_size}
    if system_prompt is not None:
        generation["system_prompt"] = system_prompt
    written = 0
    with out.open("w", encoding="utf-8") as f:
        for candidate_set in generate_candidates(generator, prompts, params, batch_size, system_prompt, on_progress):
            f.write(json.dumps(candidate_record(candidate_set, generation), ensure_ascii=False) + "\n")
            f.flush()
            written += 1
    return written
