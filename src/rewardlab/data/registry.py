"""Named datasets: the bundled demo and the shared research data found under ``REWARDLAB_DATA_DIR``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rewardlab.data.convabuse import read_convabuse
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.evalbiasbench import read_evalbiasbench
from rewardlab.data.hh_rlhf import read_hh_rlhf
from rewardlab.data.mapping import ColumnMapping, read_mapped
from rewardlab.data.objectives_qa import qa_objectives
from rewardlab.data.qa_feedback import read_qa_feedback
from rewardlab.data.records import SkippedRows, iter_records, read_rows, require_text
from rewardlab.data.types import Label
from rewardlab.data.vicuna80 import read_vicuna80
from rewardlab.data.wmt_mqm import read_wmt_mqm
from rewardlab.errors import DataError

DEMO_FILE = "hh_rlhf_harmless_base_test.jsonl.gz"


#: the shared data beside a source checkout (``<checkout>/../shared/data``), found from this file's location
CHECKOUT_SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def shared_data_dir() -> Path:
    """Where the shared research data lives: ``$REWARDLAB_DATA_DIR``; else ``../shared/data`` from the working
    directory; else, run from anywhere, the one beside this source checkout (so a command works from any folder)."""
    if "REWARDLAB_DATA_DIR" in os.environ:
        return Path(os.environ["REWARDLAB_DATA_DIR"])
    here = Path("../shared/data")
    return CHECKOUT_SHARED_DATA if not here.is_dir() and CHECKOUT_SHARED_DATA.is_dir() else here


def demo_path() -> Path:
    """The HH-RLHF harmless-base test file shipped inside the package (MIT, see LICENSE-hh-rlhf)."""
    return Path(str(resources.files("rewardlab.data") / "demo" / DEMO_FILE))


def read_gsm8k_solutions(path: str | Path, limit: int | None = None, on_empty: str = "error",
                         on_error: str = "error") -> FeedbackDataset:
    """GSM8K test questions, each with the example model solutions and their ``is_correct`` labels.

    An empty solution is an empty response (``on_empty``); any other unreadable row falls under ``on_error``.
    """
    dataset = FeedbackDataset("gsm8k-solutions")
    source = str(path)
    skipped = SkippedRows()

    def read_row(row: int, record: dict[str, Any]) -> None:
        question = require_text(record.get("question"), source=source, row=row, field="question")
        solutions = []
        for model, value in record.items():
            if isinstance(value, dict) and "solution" in value and "is_correct" in value:
                text = require_text(value["solution"], source=source, row=row, field=f"{model}.solution")
                if not isinstance(value["is_correct"], bool):
                    raise DataError(f"expected true/false, got {value['is_correct']!r}", source=source, row=row,
                                    field=f"{model}.is_correct")
                solutions.append((model, text, value["is_correct"]))
        pid = dataset.add_prompt(question)  # all checked above: a bad row adds nothing
        for model, text, correct in solutions:
            dataset.add(Label(dataset.add_response(pid, text, model), correct, meta={"row": row}))

    records = iter_records(path, limit, skipped.bad if on_error == "skip" else None)
    read_rows(records, read_row, skipped=skipped, on_empty=on_empty, on_error=on_error, response_fields=_Solutions())
    dataset.notes.extend(skipped.notes(source))
    return dataset


class _Solutions:
    """Every ``<model>.solution`` field is a response (the models are the file's columns, not known ahead)."""

    def __contains__(self, field: object) -> bool:
        return isinstance(field, str) and field.endswith(".solution")


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str
    feedback: str
    relative_path: str | None  # under the shared data dir (a file, or a folder for a folder reader); None: bundled
    loader: Callable[[Path, int | None, str, str], FeedbackDataset]  # (path, limit, on_empty, on_error)
    #: what loading does with rows whose response text is empty unless told: "skip" (counted in ``notes``) where
    #: the dataset is known to hold such rows and they carry nothing to learn from, else "error"
    on_empty: str = "error"
    #: the data's licence as its source states it (shown on reward-model cards trained or audited on it)
    licence: str | None = None

    def path(self) -> Path:
        """Where the entry's file is: under the shared data dir, or the demo file bundled with the package."""
        return demo_path() if self.relative_path is None else shared_data_dir() / self.relative_path

    def available(self) -> bool:
        """Whether the entry's file exists on this machine (shared data may be absent)."""
        return self.path().exists()

    def load(self, limit: int | None = None, on_empty: str | None = None, on_error: str = "error") -> FeedbackDataset:
        """The dataset; ``on_empty`` (error or skip) overrides the entry's own policy for empty responses, and
        ``on_error="skip"`` leaves out (counted) rows that cannot be read."""
        if not self.available():
            raise DataError(
                f"dataset {self.name!r} not found; set REWARDLAB_DATA_DIR to the shared data folder", source=self.path()
            )
        dataset = self.loader(self.path(), limit, self.on_empty if on_empty is None else on_empty, on_error)
        dataset.name = self.name
        dataset.note_duplicates(self.name)
        return dataset


REGISTRY: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in (
        DatasetEntry(
            "hh-harmless-demo",
            "Anthropic HH-RLHF harmless-base test split, bundled (MIT): 2,312 human preference pairs",
            "comparisons",
            None,
            lambda path, limit, on_empty, on_error: read_hh_rlhf(path, limit, on_empty, on_error),
            on_empty="skip",  # 4 pairs with an empty final turn (rows 87, 517, 926, 1104)
            licence="MIT",
        ),
        DatasetEntry(
            "hh-rlhf-harmless-base-test",
            "the same file from the shared data folder",
            "comparisons",
            "hh-rlhf-harmless-base-test/test.jsonl.gz",
            lambda path, limit, on_empty, on_error: read_hh_rlhf(path, limit, on_empty, on_error),
            on_empty="skip",
            licence="MIT",
        ),
        DatasetEntry(
            "gsm8k-solutions",
            "GSM8K test questions x 4 GPT-3 solutions with correctness labels (MIT)",
            "labels",
            "gsm8k/example_model_solutions.jsonl.gz",
            read_gsm8k_solutions,
            licence="MIT",
        ),
        DatasetEntry(
            "alpaca-eval-ratings",
            "AlpacaEval: 805 instructions x 59 models, GPT-4-turbo preference over a reference in [1, 2]",
            "ratings",
            "alpaca-eval-weighted-gpt4-turbo/annotations_weighted_gpt4_turbo.jsonl.gz",
            lambda path, limit, on_empty, on_error: read_mapped(
                path,
                ColumnMapping(prompt="instruction", response="output", rating="preference", model="generator"),
                limit,
                on_empty,
                on_error,
            ),
            on_empty="skip",  # 24 empty outputs of gemma-2b-it (from row 18574): no text to learn a rating from
            licence="CC BY-NC 4.0 (data; code Apache-2.0)",
        ),
        DatasetEntry(
            "evalbiasbench",
            "EvalBiasBench (OffsetBias): 80 expert pairs probing length, concreteness and 4 other biases (BSD-3); "
            "the bias type is in each pair's meta",
            "comparisons",
            "evalbiasbench/biasbench.json",
            read_evalbiasbench,
            licence="BSD-3-Clause",
        ),
        DatasetEntry(
            "qa-feedback",
            "QA-Feedback (Fine-Grained RLHF, Apache-2.0): 500 questions x 4 T5 answers, 6 human pairwise preferences "
            "each (ties where none); prompt = question + its passages; human corrections of answer 1",
            "comparisons",
            "qa-feedback-finegrained-rlhf/dev_feedback.json.gz",
            lambda path, limit, on_empty, on_error: read_qa_feedback(path, limit, on_empty, on_error),
            licence="Apache-2.0",
        ),
        DatasetEntry(
            "qa-feedback-objectives",
            "qa-feedback plus answer 1's span feedback as three objective labels (relevance, factuality, "
            "completeness: 1 = no such error), for --head multi-objective",
            "comparisons",
            "qa-feedback-finegrained-rlhf/dev_feedback.json.gz",
            qa_objectives,
            licence="Apache-2.0",
        ),
        DatasetEntry(
            "vicuna80-reviews",
            "Vicuna-80 (FastChat, Apache-2.0): 1,040 GPT-4 reviews of answer pairs from 7 models (LLM judge, not "
            "human); tie on equal scores; reviewer id as annotator, critique and scores in meta",
            "comparisons",
            "vicuna80-gpt4-reviews",
            read_vicuna80,
            on_empty="skip",  # llama-13b's answer to question 74 is empty: its 4 reviews carry nothing to learn from
            licence="Apache-2.0",
        ),
        DatasetEntry(
            "wmt23-mqm",
            "WMT23 side-by-side MQM (Google, Apache-2.0): en-de + zh-en, 481 source segments x 10 system entries, 3 "
            "expert raters each; per-rater comparisons (fewer MQM points preferred, equal a tie), rater as annotator",
            "comparisons",
            "wmt-mqm-human-evaluation",
            lambda path, limit, on_empty, on_error: read_wmt_mqm(path, limit, on_empty, on_error),
            licence="Apache-2.0",
        ),
        DatasetEntry(
            "convabuse",
            "ConvAbuse (CC BY 4.0): 12,768 abuse ratings of users' turns to chatbots by 8 annotators, ordinal "
            "(1 not abusive .. -3 very strongly abusive); prompt = the conversation before, response = the user turn",
            "ratings",
            "convabuse/ConvAbuseEMNLPfull.csv.gz",
            read_convabuse,
            licence="CC BY 4.0",
        ),
    )
}


def load_named(name: str, limit: int | None = None, on_empty: str | None = None,
               on_error: str = "error") -> FeedbackDataset:
    """A registered dataset by name; ``on_empty`` (error or skip) overrides its own policy for empty responses."""
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name].load(limit, on_empty, on_error)


#: shared-data folders that are not a feedback set rewardlab reads by name: what each holds, and what reads it.
#: `shared_folders` lists these beside the folders of `REGISTRY`, so `rewardlab datasets` accounts for every one.
OTHER_FOLDERS: dict[str, str] = {
    "gsm8k": "also GSM8K train/test questions; its solutions are a candidate pool for `bon-eval gsm8k` and "
             "`simulate gsm8k`",
    "alpaca-eval-weighted-gpt4-turbo": "also a candidate pool (59 models per prompt) for `bon-eval alpaca-eval` and "
                                       "`simulate alpaca-eval`",
    "humaneval": "164 code problems with unit tests and no responses: not feedback; no command reads it yet",
    "svamp-mawps": "math word problems (query texts and gold answers for Prompt-OIRL): not feedback; no command "
                   "reads it yet (`prompt-opt` reads the Prompt-OIRL logs in prompt-oirl)",
    "prompt-oirl": "prompt logs: Llama-2 correctness per (query x prompt); read by `prompt-opt train gsm8k|svamp|mawps` "
                   "and `prompt-opt table`",
    "qa-feedback-finegrained-rlhf": "also span errors of answer 1 (in its corrections' meta) and ASQA gold answers "
                                    "(not read)",
    "vicuna80-gpt4-reviews": "also the model and reviewer registries and the GPT-4 judge prompts (not read)",
    "wmt-mqm-human-evaluation": "also the TED talks MQM files (one rater per translation; not read)",
    "convabuse": "also the older train/valid/test splits in wide format (not read; the long file has every rating)",
}


@dataclass(frozen=True)
class SharedFolder:
    """One folder of the shared data: the named datasets read from it, and what else it is."""

    folder: str
    datasets: tuple[str, ...]
    other: str | None


def shared_folders(root: Path | None = None) -> list[SharedFolder]:
    """Every folder of the shared data (present ones, plus known ones that are missing), each accounted for."""
    root = shared_data_dir() if root is None else root
    present = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    by_folder: dict[str, list[str]] = {}
    for entry in REGISTRY.values():
        if entry.relative_path is not None:
            by_folder.setdefault(Path(entry.relative_path).parts[0], []).append(entry.name)
    names = sorted(present | set(by_folder) | set(OTHER_FOLDERS))
    return [SharedFolder(name, tuple(by_folder.get(name, ())),
                         OTHER_FOLDERS.get(name, None if name in by_folder else "not known to rewardlab: see its "
                                                                                   "SOURCE.md"))
            for name in names]
