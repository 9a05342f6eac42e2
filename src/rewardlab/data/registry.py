"""Named datasets: the bundled demo and the shared research data found under ``REWARDLAB_DATA_DIR``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.hh_rlhf import read_hh_rlhf
from rewardlab.data.mapping import ColumnMapping, read_mapped
from rewardlab.data.records import iter_records, require_text
from rewardlab.data.types import Label
from rewardlab.errors import DataError

DEMO_FILE = "hh_rlhf_harmless_base_test.jsonl.gz"


def shared_data_dir() -> Path:
    """Where the shared research data lives: ``$REWARDLAB_DATA_DIR``, else ``../shared/data``."""
    return Path(os.environ.get("REWARDLAB_DATA_DIR", "../shared/data"))


def demo_path() -> Path:
    """The HH-RLHF harmless-base test file shipped inside the package (MIT, see LICENSE-hh-rlhf)."""
    return Path(str(resources.files("rewardlab.data") / "demo" / DEMO_FILE))


def read_gsm8k_solutions(path: str | Path, limit: int | None = None) -> FeedbackDataset:
    """GSM8K test questions, each with the example model solutions and their ``is_correct`` labels."""
    dataset = FeedbackDataset("gsm8k-solutions")
    source = str(path)
    for row, record in iter_records(path, limit):
        question = require_text(record.get("question"), source=source, row=row, field="question")
        pid = dataset.add_prompt(question)
        for model, value in record.items():
            if isinstance(value, dict) and "solution" in value and "is_correct" in value:
                text = require_text(value["solution"], source=source, row=row, field=f"{model}.solution")
                rid = dataset.add_response(pid, text, model)
                dataset.add(Label(rid, bool(value["is_correct"]), meta={"row": row}))
    return dataset


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str
    feedback: str
    relative_path: str | None  # under the shared data dir; None for bundled data
    loader: Callable[[Path, int | None, str], FeedbackDataset]  # (path, limit, on_empty)
    #: what loading does with rows whose response text is empty unless told: "skip" (counted in ``notes``) where
    #: the dataset is known to hold such rows and they carry nothing to learn from, else "error"
    on_empty: str = "error"

    def path(self) -> Path:
        """Where the entry's file is: under the shared data dir, or the demo file bundled with the package."""
        return demo_path() if self.relative_path is None else shared_data_dir() / self.relative_path

    def available(self) -> bool:
        """Whether the entry's file exists on this machine (shared data may be absent)."""
        return self.path().exists()

    def load(self, limit: int | None = None, on_empty: str | None = None) -> FeedbackDataset:
        """The dataset; ``on_empty`` (error or skip) overrides the entry's own policy for empty responses."""
        if not self.available():
            raise DataError(
                f"dataset {self.name!r} not found; set REWARDLAB_DATA_DIR to the shared data folder", source=self.path()
            )
        dataset = self.loader(self.path(), limit, self.on_empty if on_empty is None else on_empty)
        dataset.name = self.name
        return dataset


REGISTRY: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in (
        DatasetEntry(
            "hh-harmless-demo",
            "Anthropic HH-RLHF harmless-base test split, bundled (MIT): 2,312 human preference pairs",
            "comparisons",
            None,
            lambda path, limit, on_empty: read_hh_rlhf(path, limit, on_empty=on_empty),
            on_empty="skip",  # 4 pairs with an empty final turn (rows 87, 517, 926, 1104)
        ),
        DatasetEntry(
            "hh-rlhf-harmless-base-test",
            "the same file from the shared data folder",
            "comparisons",
            "hh-rlhf-harmless-base-test/test.jsonl.gz",
            lambda path, limit, on_empty: read_hh_rlhf(path, limit, on_empty=on_empty),
            on_empty="skip",
        ),
        DatasetEntry(
            "gsm8k-solutions",
            "GSM8K test questions x 4 GPT-3 solutions with correctness labels (MIT)",
            "labels",
            "gsm8k/example_model_solutions.jsonl.gz",
            lambda path, limit, on_empty: read_gsm8k_solutions(path, limit),
        ),
        DatasetEntry(
            "alpaca-eval-ratings",
            "AlpacaEval: 805 instructions x 59 models, GPT-4-turbo preference over a reference in [1, 2]",
            "ratings",
            "alpaca-eval-weighted-gpt4-turbo/annotations_weighted_gpt4_turbo.jsonl.gz",
            lambda path, limit, on_empty: read_mapped(
                path,
                ColumnMapping(prompt="instruction", response="output", rating="preference", model="generator"),
                limit,
                on_empty,
            ),
            on_empty="skip",  # 24 empty outputs of gemma-2b-it (from row 18574): no text to learn a rating from
        ),
    )
}


def load_named(name: str, limit: int | None = None, on_empty: str | None = None) -> FeedbackDataset:
    """A registered dataset by name; ``on_empty`` (error or skip) overrides its own policy for empty responses."""
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name].load(limit, on_empty)
