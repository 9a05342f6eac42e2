"""`CandidateSet`: N responses to one prompt, optionally with gold scores, for best-of-N work.

Readers for AlpacaEval (gold = the judge's preference over a fixed reference, in [1, 2]), GSM8K example
solutions (gold = correctness) and a generic JSONL format (``prompt``, ``responses``, optional ``gold``
and ``sources``). Candidates are kept exactly as the file has them — empty outputs and duplicated texts
included — because a best-of-N pool is what a policy produced, warts and all.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import SkippedRows, iter_records, require_text
from rewardlab.data.registry import shared_data_dir
from rewardlab.data.types import prompt_id_for, response_id_for
from rewardlab.errors import DataError, InvalidValueError

ALPACA_EVAL_FILE = "annotations_weighted_gpt4_turbo.jsonl.gz"


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """One prompt's pool of candidate responses; ``gold[i]`` scores ``responses[i]`` when known."""

    prompt: str
    responses: tuple[str, ...]
    gold: np.ndarray | None = None
    sources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.responses:
            raise InvalidValueError("a candidate set needs at least one response")
        if self.gold is not None:
            gold = np.asarray(self.gold, dtype=np.float64)
            if gold.shape != (len(self.responses),):
                raise InvalidValueError(f"gold has {gold.size} values for {len(self.responses)} responses")
            object.__setattr__(self, "gold", gold)
        if self.sources is not None and len(self.sources) != len(self.responses):
            raise InvalidValueError(f"sources has {len(self.sources)} names for {len(self.responses)} responses")

    def __len__(self) -> int:
        return len(self.responses)

    @property
    def prompt_id(self) -> str:
        """The prompt's content-addressed id, the same one a `FeedbackDataset` gives this text."""
        return prompt_id_for(self.prompt)

    def response_ids(self) -> list[str]:
        """The content-addressed id of each candidate (duplicated texts share an id)."""
        pid = self.prompt_id
        return [response_id_for(pid, text) for text in self.responses]

    def without_sources(self, names: Collection[str]) -> CandidateSet:
        """The set minus candidates from the named sources (e.g. an adversarial "model" that games the judge)."""
        if self.sources is None or not names:
            return self
        keep = [i for i, source in enumerate(self.sources) if source not in names]
        if not keep:
            raise DataError(f"every candidate of prompt {self.prompt[:60]!r} comes from an excluded source")
        return CandidateSet(self.prompt, tuple(self.responses[i] for i in keep),
                            None if self.gold is None else self.gold[keep], tuple(self.sources[i] for i in keep))

    def require_gold(self) -> np.ndarray:
        """The gold scores, or a `DataError` naming the prompt when the set has none (evaluation needs them)."""
        if self.gold is None:
            raise DataError(f"candidate set for prompt {self.prompt[:60]!r} has no gold scores")
        return self.gold


def subsample_pools(sets: Sequence[CandidateSet], per_prompt: int, seed: int,
                   exclude: Collection[str] = ("NullModel",)) -> list[CandidateSet]:
    """Each pool cut to ``per_prompt`` candidates drawn at random by ``seed`` (in pool order, one draw per pool),
    after leaving out the ``exclude`` sources (AlpacaEval's NullModel games the judge)."""
    rng = np.random.default_rng(seed)
    out = []
    for s in sets:
        s = s.without_sources(exclude)
        keep = np.sort(rng.choice(len(s), size=min(per_prompt, len(s)), replace=False))
        out.append(CandidateSet(s.prompt, tuple(s.responses[i] for i in keep), s.require_gold()[keep],
                                tuple(s.sources[i] for i in keep) if s.sources else None))
    return out


def pool_offsets(sets: Sequence[CandidateSet]) -> np.ndarray:
    """(sets + 1,) offsets of each set's candidates when all pools are laid end to end."""
    return np.concatenate([[0], np.cumsum([len(s) for s in sets])]).astype(np.int64)


def split_by_pool(flat: np.ndarray, sets: Sequence[CandidateSet]) -> list[np.ndarray]:
    """Per-set slices of values laid out pool after pool (the last axis is the candidate axis)."""
    starts = pool_offsets(sets)
    return [flat[..., a:b] for a, b in zip(starts[:-1], starts[1:])]


def candidates_dataset(sets: Sequence[CandidateSet], name: str = "candidates") -> FeedbackDataset:
    """The prompts and responses of ``sets`` as a feedback dataset (no feedback yet): for embedding and splits."""
    dataset = FeedbackDataset(name)
    for candidate_set in sets:
        pid = dataset.add_prompt(candidate_set.prompt)
        for i, text in enumerate(candidate_set.responses):
            dataset.add_response(pid, text, candidate_set.sources[i] if candidate_set.sources else None)
    return dataset


# ---------------------------------------------------------------------- readers
def _gold_value(value: Any, *, source: str, row: int, field: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise DataError(f"expected a finite number, got {value!r}", source=source, row=row, field=field)
    return float(value)


def _text(value: Any, *, source: str, row: int, field: str) -> str:
    """Response text, allowed to be empty (an empty output is a real, bad candidate) but never missing."""
    if not isinstance(value, str):
        raise DataError(f"expected text, got {type(value).__name__}", source=source, row=row, field=field)
    return value


def read_alpaca_eval(path: str | Path, limit: int | None = None) -> list[CandidateSet]:
    """AlpacaEval annotations (a folder holding them, or the file): one set per instruction, in file order.

    Gold is ``preference`` = 1 + P(judge prefers the output over the reference); the source of each
    candidate is its ``results_dir``. ``limit`` counts prompts. The shared file repeats every
    vicuna-7b/13b-v1.5 row verbatim; such exact repeats are skipped with a warning that lists them (a
    pool with one model twice would weight it double), and a repeat that differs is an error.
    """
    path = Path(path)
    if path.is_dir():
        path = path / ALPACA_EVAL_FILE
    source = str(path)
    pools: dict[str, list[tuple[str, float, str]]] = {}
    seen: set[tuple[str, str]] = set()
    repeats = SkippedRows()
    for row, record in iter_records(path):
        instruction = require_text(record.get("instruction"), source=source, row=row, field="instruction")
        if instruction not in pools:
            if limit is not None and len(pools) >= limit:
                continue
            pools[instruction] = []
        output = _text(record.get("output"), source=source, row=row, field="output")
        gold = _gold_value(record.get("preference"), source=source, row=row, field="preference")
        folder = record.get("results_dir") or record.get("generator")
        name = require_text(folder, source=source, row=row, field="results_dir")
        if (instruction, name) in seen:
            if (output, gold, name) not in pools[instruction]:
                raise DataError(f"a second, different output of {name!r} for this instruction", source=source,
                                row=row, field="output")
            repeats.add("exact repeats of an earlier (instruction, results_dir) row", row)
            continue
        seen.add((instruction, name))
        pools[instruction].append((output, gold, name))
    for note in repeats.notes(source):
        warnings.warn(note, stacklevel=2)
    return [
        CandidateSet(prompt, tuple(o for o, _, _ in pool), np.array([g for _, g, _ in pool]), tuple(s for _, _, s in pool))
        for prompt, pool in pools.items()
    ]


def read_gsm8k_candidates(path: str | Path, limit: int | None = None) -> list[CandidateSet]:
    """GSM8K example solutions: each test question with its model solutions, gold = 1 if correct else 0."""
    source = str(path)
    sets = []
    for row, record in iter_records(path, limit):
        question = require_text(record.get("question"), source=source, row=row, field="question")
        texts, gold, names = [], [], []
        for model, value in record.items():
            if isinstance(value, dict) and "solution" in value:
                texts.append(require_text(value["solution"], source=source, row=row, field=f"{model}.solution"))
                correct = value.get("is_correct")
                if not isinstance(correct, bool):
                    raise DataError(f"expected true/false, got {correct!r}", source=source, row=row,
                                    field=f"{model}.is_correct")
                gold.append(float(correct))
                names.append(model)
        if not texts:
            raise DataError("no model solutions in this row", source=source, row=row)
        sets.append(CandidateSet(question, tuple(texts), np.array(gold), tuple(names)))
    return sets


def read_candidates_jsonl(path: str | Path, limit: int | None = None) -> list[CandidateSet]:
    """Generic candidate sets: ``{"prompt": str, "responses": [str, ...], "gold": [num, ...]?, "sources": [...]?}``.

    A response may also be an object ``{"text": ..., "source": ..., "gold": ...}``.
    """
    source = str(path)
    sets = []
    for row, record in iter_records(path, limit):
        prompt = require_text(record.get("prompt"), source=source, row=row, field="prompt")
        responses = record.get("responses")
        if not isinstance(responses, list) or not responses:
            raise DataError("expected a non-empty list of responses", source=source, row=row, field="responses")
        texts: list[str] = []
        names: list[str | None] = []
        inline_gold: list[Any] = []
        for i, item in enumerate(responses):
            if isinstance(item, dict):
                texts.append(_text(item.get("text"), source=source, row=row, field=f"responses[{i}].text"))
                names.append(item.get("source"))
                inline_gold.append(item.get("gold"))
            else:
                texts.append(_text(item, source=source, row=row, field=f"responses[{i}]"))
                names.append(None)
                inline_gold.append(None)
        gold = _read_gold(record.get("gold"), inline_gold, len(texts), source, row)
        sources = record.get("sources")
        if sources is not None:
            if not isinstance(sources, list) or len(sources) != len(texts):
                raise DataError(f"expected a list of {len(texts)} names", source=source, row=row, field="sources")
            names = [str(s) for s in sources]
        has_names = any(n is not None for n in names)
        sets.append(CandidateSet(prompt, tuple(texts), gold,
                                 tuple(str(n) if n is not None else "" for n in names) if has_names else None))
    return sets


def _read_gold(gold: Any, inline: list[Any], n: int, source: str, row: int) -> np.ndarray | None:
    if gold is not None:
        if not isinstance(gold, list) or len(gold) != n:
            raise DataError(f"expected a list of {n} numbers (one per response)", source=source, row=row, field="gold")
        return np.array([_gold_value(g, source=source, row=row, field=f"gold[{i}]") for i, g in enumerate(gold)])
    given = [g is not None for g in inline]
    if not any(given):
        return None
    if not all(given):
        missing = given.index(False)
        raise DataError("gold is given for some responses but not this one", source=source, row=row,
                        field=f"responses[{missing}].gold")
    return np.array([_gold_value(g, source=source, row=row, field=f"responses[{i}].gold") for i, g in enumerate(inline)])


def write_candidates_jsonl(sets: Sequence[CandidateSet], path: str | Path) -> Path:
    """The generic JSONL format, readable by `read_candidates_jsonl`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for s in sets:
            record: dict[str, Any] = {"prompt": s.prompt, "responses": list(s.responses)}
            if s.gold is not None:
                record["gold"] = [float(g) for g in s.gold]
            if s.sources is not None:
                record["sources"] = list(s.sources)
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


#: named candidate sources under the shared data folder: name -> (relative path, reader)
CANDIDATE_SOURCES = {
    "alpaca-eval": ("alpaca-eval-weighted-gpt4-turbo", read_alpaca_eval),
    "gsm8k": ("gsm8k/example_model_solutions.jsonl.gz", read_gsm8k_candidates),
}


def load_candidates(name_or_path: str | Path, limit: int | None = None) -> list[CandidateSet]:
    """``alpaca-eval``, ``gsm8k`` (from the shared data folder) or a path to a candidate JSONL file."""
    if str(name_or_path) in CANDIDATE_SOURCES:
        relative, reader = CANDIDATE_SOURCES[str(name_or_path)]
        location = shared_data_dir() / relative
        if not location.exists():
            raise DataError(f"candidate source {name_or_path!r} not found; set REWARDLAB_DATA_DIR to the shared data "
                            "folder", source=location)
        return reader(location, limit)
    path = Path(name_or_path)
    if not path.exists():
        raise DataError(f"not a file, and not a named candidate source ({', '.join(CANDIDATE_SOURCES)})", source=path)
    return read_candidates_jsonl(path, limit)
