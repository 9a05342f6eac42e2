"""Offline prompt logs: which prompts made an LLM answer which queries correctly (for Prompt-OIRL).

`PromptLogs` is a (queries × prompts) correctness matrix with NaN where a prompt was never run on a
query, plus the row split the logs came with. Readers: the Prompt-OIRL release (`derived/*.csv.gz` +
`prompts.json`, LLaMA-2-7B-chat on GSM8K / SVAMP / MAWPS) and a generic long format, one row per
(query, prompt, correct) with an optional split, from JSONL / CSV / Parquet.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.data.records import iter_records, require_text
from rewardlab.data.registry import shared_data_dir
from rewardlab.data.types import normalize_prompt
from rewardlab.errors import DataError, InvalidValueError

PROMPT_OIRL_DATASETS = ("gsm8k", "svamp", "mawps")
SPLITS = ("train", "test")  # as released; leak_free_split adds "unused"


@dataclass
class PromptLogs:
    name: str
    queries: list[str]
    prompts: list[str]
    correct: np.ndarray  # (queries, prompts): 1.0 / 0.0, NaN = not run
    split: np.ndarray  # (queries,) "train" / "test" as the logs were released
    aliases: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.correct.shape != (len(self.queries), len(self.prompts)):
            raise InvalidValueError(f"correctness matrix {self.correct.shape} does not match {len(self.queries)} queries × "
                             f"{len(self.prompts)} prompts")
        if not self.aliases:
            self.aliases = [f"p{j}" for j in range(len(self.prompts))]

    def take(self, rows: np.ndarray) -> PromptLogs:
        """The logs of ``rows`` only (for quick experiments and tests)."""
        rows = np.asarray(rows)
        return PromptLogs(self.name, [self.queries[i] for i in rows], list(self.prompts), self.correct[rows],
                          self.split[rows], list(self.aliases), [self.answers[i] for i in rows] if self.answers else [])

    def rows(self, split: str) -> np.ndarray:
        """Row indices of the queries whose split is ``split``."""
        return np.flatnonzero(self.split == split)

    def prompts_run_on(self, rows: np.ndarray) -> list[int]:
        """Prompts with a label on every one of ``rows``."""
        return [j for j in range(len(self.prompts)) if not np.isnan(self.correct[rows, j]).any()]

    def question_groups(self) -> np.ndarray:
        """Group id per row: rows whose questions are equal up to case, punctuation and spacing share one."""
        _, groups = np.unique([normalize_prompt(q) for q in self.queries], return_inverse=True)
        return groups


def leak_free_split(logs: PromptLogs, test_fraction: float = 0.3, seed: int = 0) -> np.ndarray:
    """A split by unique question: no question (up to case and punctuation) is on both sides.

    The released SVAMP/MAWPS splits put every test question among the training rows too (the CV folds
    they were built from overlap), so a model can memorise test answers. Here ``test_fraction`` of the
    distinct questions that have released-test rows become test questions: their released-test rows
    (labelled for every prompt) are the test set, and their released-train rows are left unused. Every
    other row, of either released split, trains. Returns the new split per row: train / test / unused.
    """
    groups = logs.question_groups()
    eligible = np.unique(groups[logs.split == "test"])
    n_groups = len(np.unique(groups))
    rng = np.random.default_rng(seed)
    n_test = min(len(eligible), max(1, round(test_fraction * n_groups)))
    test_groups = np.zeros(groups.max() + 1, dtype=bool)
    test_groups[rng.choice(eligible, size=n_test, replace=False)] = True
    in_test_group = test_groups[groups]
    new_split = np.where(in_test_group, "unused", "train").astype(object)
    new_split[in_test_group & (logs.split == "test")] = "test"
    return new_split.astype(str)


def read_prompt_oirl(dataset: str, data_dir: str | Path) -> PromptLogs:
    """One dataset of the Prompt-OIRL release: ``<data_dir>/derived/<dataset>_llama2_7b_chat_correctness.csv.gz``."""
    if dataset not in PROMPT_OIRL_DATASETS:
        raise DataError(f"unknown Prompt-OIRL dataset {dataset!r}; known: {', '.join(PROMPT_OIRL_DATASETS)}")
    root = Path(data_dir)
    prompts_path = root / "derived" / "prompts.json"
    if not prompts_path.exists():
        raise DataError("Prompt-OIRL prompts not found", source=prompts_path)
    prompt_rows = json.loads(prompts_path.read_text(encoding="utf-8"))
    prompts = [str(p["text"]) for p in prompt_rows]
    aliases = [str(p["alias"]) for p in prompt_rows]
    path = root / "derived" / f"{dataset}_llama2_7b_chat_correctness.csv.gz"
    queries, answers, splits, labels = [], [], [], []
    columns: list[str] | None = None
    for row, record in iter_records(path):
        if columns is None:
            columns = [c for c in record if c.startswith("p") and c[1:].split("_", 1)[0].isdigit()]
            if len(columns) != len(prompts):
                raise DataError(f"{len(columns)} prompt columns but {len(prompts)} prompts in {prompts_path.name}",
                                source=path, row=row)
        queries.append(require_text(record.get("question"), source=path, row=row, field="question"))
        answers.append(str(record.get("gold_answer", "")))
        split = record.get("split")
        if split not in SPLITS:
            raise DataError(f"expected one of {SPLITS}, got {split!r}", source=path, row=row, field="split")
        splits.append(split)
        labels.append([_label(record.get(c), path, row, c) for c in columns])
    return PromptLogs(f"prompt-oirl-{dataset}", queries, prompts, np.array(labels, dtype=np.float64),
                      np.array(splits), aliases, answers)


def _label(value: Any, source: Path | str, row: int, column: str) -> float:
    """1/0 correctness; empty means the prompt was not run on this query."""
    if value is None or value == "":
        return math.nan
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true"):
        return 1.0
    if text in ("0", "0.0", "false"):
        return 0.0
    raise DataError(f"expected 1/0/true/false or empty, got {value!r}", source=source, row=row, field=column)


def read_prompt_logs(path: str | Path, name: str | None = None) -> PromptLogs:
    """Your own logs, one row per (query, prompt, correct) with an optional ``split`` (default train).

    Queries and prompts are matched by exact text; a (query, prompt) pair given twice with different
    labels is an error rather than a silent overwrite.
    """
    query_index: dict[str, int] = {}
    prompt_index: dict[str, int] = {}
    cells: dict[tuple[int, int], tuple[float, int]] = {}
    query_split: dict[int, str] = {}
    for row, record in iter_records(path):
        query = require_text(record.get("query"), source=path, row=row, field="query")
        prompt = require_text(record.get("prompt"), source=path, row=row, field="prompt")
        label = _label(record.get("correct"), path, row, "correct")
        if math.isnan(label):
            raise DataError("missing correctness label", source=path, row=row, field="correct")
        split = record.get("split") or "train"
        if split not in SPLITS:
            raise DataError(f"expected one of {SPLITS}, got {split!r}", source=path, row=row, field="split")
        qi = query_index.setdefault(query, len(query_index))
        pj = prompt_index.setdefault(prompt, len(prompt_index))
        if query_split.setdefault(qi, split) != split:
            raise DataError(f"query is on both splits ({query_split[qi]} earlier)", source=path, row=row, field="split")
        if (qi, pj) in cells and cells[(qi, pj)][0] != label:
            raise DataError(f"conflicting label for this (query, prompt); row {cells[(qi, pj)][1]} says "
                            f"{int(cells[(qi, pj)][0])}", source=path, row=row, field="correct")
        cells[(qi, pj)] = (label, row)
    if not cells:
        raise DataError("no (query, prompt, correct) rows", source=path)
    correct = np.full((len(query_index), len(prompt_index)), np.nan)
    for (qi, pj), (label, _) in cells.items():
        correct[qi, pj] = label
    return PromptLogs(name or Path(path).name, list(query_index), list(prompt_index), correct,
                      np.array([query_split[i] for i in range(len(query_index))]))


def load_prompt_logs(source: str | Path) -> PromptLogs:
    """Logs as a user names them: an existing file is read as your own logs (`read_prompt_logs`); otherwise
    gsm8k, svamp or mawps is that dataset of the Prompt-OIRL release in the shared data folder."""
    if str(source) in PROMPT_OIRL_DATASETS and not Path(source).exists():
        return read_prompt_oirl(str(source), shared_data_dir() / "prompt-oirl")
    return read_prompt_logs(source)

