"""`FeedbackDataset`: prompts, responses and feedback tables kept together, split by prompt."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, fields
from typing import Any

import numpy as np

from rewardlab.data.types import (
    Comparison,
    Correction,
    Critique,
    Demonstration,
    Label,
    Message,
    Prompt,
    Ranking,
    Rating,
    Response,
    StepLabel,
    normalize_prompt,
    prompt_id_for,
    response_id_for,
)
from rewardlab.errors import InvalidValueError, UnknownIdError

Feedback = Comparison | Ranking | Rating | Label | Correction | Critique | StepLabel | Demonstration

#: below this many training examples `FeedbackDataset.thin_data_warning` speaks up
MIN_TRAINING_EXAMPLES = 50
#: a learner of comparisons learns from rankings too: the training set turns each ranking into all its ordered pairs
PAIRWISE_FEEDBACK = ("comparisons", "rankings")

#: table name -> row type, in a fixed order (used by writers, summaries and fingerprints)
FEEDBACK_TABLES: dict[str, type] = {
    "comparisons": Comparison,
    "rankings": Ranking,
    "ratings": Rating,
    "labels": Label,
    "corrections": Correction,
    "critiques": Critique,
    "step_labels": StepLabel,
    "demonstrations": Demonstration,
}
_TABLE_OF_TYPE = {row_type: name for name, row_type in FEEDBACK_TABLES.items()}


class FeedbackDataset:
    """All feedback about a set of prompts and responses.

    Prompts and responses get content-addressed ids, so adding the same text twice is harmless and
    datasets built from different files line up.
    """

    def __init__(self, name: str = "dataset") -> None:
        self.name = name
        self.prompts: dict[str, Prompt] = {}
        self.responses: dict[str, Response] = {}
        self.comparisons: list[Comparison] = []
        self.rankings: list[Ranking] = []
        self.ratings: list[Rating] = []
        self.labels: list[Label] = []
        self.corrections: list[Correction] = []
        self.critiques: list[Critique] = []
        self.step_labels: list[StepLabel] = []
        self.demonstrations: list[Demonstration] = []
        #: human-readable record of anything a reader did to the data (e.g. "skipped 3 identical pairs")
        self.notes: list[str] = []

    # ------------------------------------------------------------------ building
    def add_prompt(self, text: str, messages: tuple[Message, ...] | None = None) -> str:
        """Add a prompt unless its text is already here; returns its content-addressed id either way."""
        pid = prompt_id_for(text)
        if pid not in self.prompts:
            self.prompts[pid] = Prompt(pid, text, messages)
        return pid

    def add_response(self, prompt_id: str, text: str, source: str | None = None) -> str:
        """Add a response to a known prompt unless it is already here; returns its content-addressed id either way."""
        if prompt_id not in self.prompts:
            raise UnknownIdError(f"unknown prompt id {prompt_id!r}")
        rid = response_id_for(prompt_id, text)
        if rid not in self.responses:
            self.responses[rid] = Response(rid, prompt_id, text, source)
        return rid

    def add(self, row: Feedback) -> None:
        """Append a feedback row after checking that the ids it refers to exist."""
        for ref in _response_refs(row):
            if ref not in self.responses:
                raise UnknownIdError(f"{type(row).__name__} refers to unknown response id {ref!r}")
        pid = getattr(row, "prompt_id", None)
        if pid is not None and pid not in self.prompts:
            raise UnknownIdError(f"{type(row).__name__} refers to unknown prompt id {pid!r}")
        self.table(_TABLE_OF_TYPE[type(row)]).append(row)

    def duplicate_rows(self) -> dict[str, int]:
        """Per feedback table, how many rows repeat an earlier row exactly (every field but ``meta``, which holds the
        row number): 20 identical rows count 19. Tables without repeats are left out."""
        counts: dict[str, int] = {}
        for name in FEEDBACK_TABLES:
            seen: set[tuple[Any, ...]] = set()
            repeats = 0
            for row in self.table(name):
                key = tuple(getattr(row, field) for field in _field_names(type(row)) if field != "meta")
                if key in seen:
                    repeats += 1
                else:
                    seen.add(key)
            if repeats:
                counts[name] = repeats
        return counts

    def note_duplicates(self, source: str) -> None:
        """Add a note counting exact repeats (see `duplicate_rows`). They are kept: the same judgement given twice
        can be real data (two sessions, an annotator asked again), so dropping them would change the data silently;
        the note lets a user who knows they are copies remove them."""
        for name, repeats in self.duplicate_rows().items():
            self.notes.append(f"{source}: {repeats} {name} row(s) repeat an earlier row exactly (same ids, outcome or "
                              "value, and annotator); kept, since repeated judgements can be real data — remove the "
                              "copies first if they are duplicates")

    def table(self, name: str) -> list[Any]:
        """The rows of feedback table ``name`` (the list itself: appending adds to the dataset); unknown names are an error."""
        if name not in FEEDBACK_TABLES:
            raise UnknownIdError(f"unknown feedback table {name!r}; known: {', '.join(FEEDBACK_TABLES)}")
        rows: list[Any] = getattr(self, name)
        return rows

    # ------------------------------------------------------------------ inspecting
    def prompt_of(self, row: Feedback) -> str:
        """The prompt a feedback row is about (so every row can be split by prompt)."""
        pid = getattr(row, "prompt_id", None)
        if pid is not None:
            return str(pid)
        return self.responses[row.response_id].prompt_id  # type: ignore[union-attr]

    def prompts_of(self, row: Feedback) -> set[str]:
        """Every prompt a row touches: its own and those of the responses it refers to (a cross-prompt
        comparison touches two)."""
        touched = {self.prompt_of(row)}
        touched.update(self.responses[ref].prompt_id for ref in _response_refs(row))
        return touched

    def training_examples(self, feedback: str) -> int:
        """How many examples a learner of ``feedback`` gets: comparisons count with every ordered pair a ranking
        implies (that is how pairwise heads learn from rankings); ratings, labels ... count as rows."""
        if feedback in PAIRWISE_FEEDBACK:
            return len(self.comparisons) + sum(len(r.response_ids) * (len(r.response_ids) - 1) // 2
                                               for r in self.rankings)
        return len(self.table(feedback)) if feedback in FEEDBACK_TABLES else 0

    def thin_data_warning(self, feedback: str, minimum: int = MIN_TRAINING_EXAMPLES) -> str | None:
        """A warning when a learner of ``feedback`` would be fitted to fewer than ``minimum`` examples (None otherwise,
        and None for no examples at all: the learner refuses those itself)."""
        n = self.training_examples(feedback)
        if n == 0 or n >= minimum:
            return None
        pairwise = feedback in PAIRWISE_FEEDBACK
        noun = "comparison" if pairwise else feedback.removesuffix("s").replace("_", " ")
        kind = f"{noun}{'' if n == 1 else 's'}" + (" (rankings counted as their pairs)" if pairwise and self.rankings else "")
        prompts = len(self.prompts)
        return (f"{self.name}: only {n} {kind} on {prompts} prompt{'' if prompts == 1 else 's'} to learn from; a reward "
                f"model fitted to fewer than {minimum} is mostly noise and its held-out accuracy cannot be told from "
                "chance (collect more feedback; `rewardlab evaluate` shows the CI)")

    def summary(self) -> dict[str, int]:
        """Counts of prompts, responses and the rows of each feedback table, as stored in run records."""
        counts = {"prompts": len(self.prompts), "responses": len(self.responses)}
        counts.update({name: len(self.table(name)) for name in FEEDBACK_TABLES})
        return counts

    def __len__(self) -> int:
        return sum(len(self.table(name)) for name in FEEDBACK_TABLES)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in self.summary().items() if v)
        return f"FeedbackDataset({self.name!r}, {parts})"

    def fingerprint(self) -> str:
        """A hash of the exact content, recorded with every model and run so results are traceable."""
        h = hashlib.sha256()
        for pid in sorted(self.prompts):
            p = self.prompts[pid]
            messages = json.dumps(None if p.messages is None else [asdict(m) for m in p.messages])
            h.update(f"P{pid}\x00{p.text}\x00{messages}\x00".encode())
        for rid in sorted(self.responses):
            r = self.responses[rid]
            h.update(f"R{rid}\x00{r.prompt_id}\x00{r.text}\x00{r.source}\x00".encode())
        for name in FEEDBACK_TABLES:
            tag = name.encode()
            for row in self.table(name):
                h.update(tag)
                h.update(_FINGERPRINT_JSON.encode(_row_dict(row)).encode())
        return h.hexdigest()[:20]

    def prompt_groups(self) -> dict[str, str]:
        """prompt id -> group id; prompts whose normalized text is equal share a group."""
        return {pid: "g_" + normalize_prompt(p.text) for pid, p in self.prompts.items()}

    def duplicate_prompts(self) -> list[list[str]]:
        """Groups of distinct prompt ids that are the same prompt up to case, punctuation and spacing."""
        members: dict[str, list[str]] = {}
        for pid, group in self.prompt_groups().items():
            members.setdefault(group, []).append(pid)
        return [sorted(ids) for ids in members.values() if len(ids) > 1]

    # ------------------------------------------------------------------ splitting
    def subset(self, prompt_ids: set[str], name: str | None = None) -> FeedbackDataset:
        """The part of the dataset about the given prompts: their responses and the feedback rows whose
        prompts are all among them (a cross-prompt comparison with one side outside is left out)."""
        out = FeedbackDataset(name or self.name)
        out.prompts = {pid: p for pid, p in self.prompts.items() if pid in prompt_ids}
        out.responses = {rid: r for rid, r in self.responses.items() if r.prompt_id in prompt_ids}
        for table in FEEDBACK_TABLES:
            out.table(table).extend(row for row in self.table(table) if self.prompts_of(row) <= prompt_ids)
        out.notes = list(self.notes)
        return out

    def fold_of_prompt(self, k: int, seed: int = 0) -> dict[str, int]:
        """prompt id -> fold in ``range(k)``; prompts of one duplicate group share a fold."""
        groups = self.prompt_groups()
        unique = sorted(set(groups.values()))
        order = np.random.default_rng(seed).permutation(len(unique))
        fold_of_group = {unique[i]: rank % k for rank, i in enumerate(order)}
        return {pid: fold_of_group[g] for pid, g in groups.items()}

    def kfold(self, k: int = 5, seed: int = 0) -> list[tuple[FeedbackDataset, FeedbackDataset]]:
        """k (train, test) splits by prompt; duplicated prompts always fall in the same fold."""
        if k < 2:
            raise InvalidValueError("k-fold needs k >= 2")
        n_groups = len(set(self.prompt_groups().values()))
        if n_groups < k:
            raise InvalidValueError(f"cannot make {k} folds from {n_groups} distinct prompts")
        fold_of = self.fold_of_prompt(k, seed)
        splits = []
        for fold in range(k):
            test_ids = {pid for pid, f in fold_of.items() if f == fold}
            train_ids = set(self.prompts) - test_ids
            splits.append(
                (self.subset(train_ids, f"{self.name}[train {fold}]"), self.subset(test_ids, f"{self.name}[test {fold}]"))
            )
        return splits

    def split(self, by: str = "prompt", test_size: float = 0.2, seed: int = 0) -> tuple[FeedbackDataset, FeedbackDataset]:
        """One (train, test) split. Only ``by="prompt"`` exists: splitting pairs of one prompt leaks."""
        if by != "prompt":
            raise InvalidValueError(f"split by {by!r} is not supported; only by='prompt' is leak-free")
        if not 0.0 < test_size < 1.0:
            raise InvalidValueError("test_size must be in (0, 1)")
        groups = self.prompt_groups()
        unique = sorted(set(groups.values()))
        if len(unique) < 2:
            raise InvalidValueError("need at least two distinct prompts to split")
        order = np.random.default_rng(seed).permutation(len(unique))
        n_test = min(len(unique) - 1, max(1, round(test_size * len(unique))))
        test_groups = {unique[i] for i in order[:n_test]}
        test_ids = {pid for pid, g in groups.items() if g in test_groups}
        train_ids = set(self.prompts) - test_ids
        return self.subset(train_ids, f"{self.name}[train]"), self.subset(test_ids, f"{self.name}[test]")

    def merge(self, other: FeedbackDataset) -> FeedbackDataset:
        """A new dataset with the rows of both (ids are content-addressed, so shared texts unify)."""
        out = FeedbackDataset(self.name)
        for ds in (self, other):
            out.prompts.update(ds.prompts)
            out.responses.update(ds.responses)
            for table in FEEDBACK_TABLES:
                out.table(table).extend(ds.table(table))
            out.notes.extend(ds.notes)
        return out

    def annotators(self) -> Counter[str]:
        """How many feedback rows each known annotator gave."""
        counts: Counter[str] = Counter()
        for table in FEEDBACK_TABLES:
            for row in self.table(table):
                if row.annotator_id is not None:
                    counts[row.annotator_id] += 1
        return counts


def _response_refs(row: Feedback) -> list[str]:
    if isinstance(row, Comparison):
        return [row.a, row.b]
    if isinstance(row, Ranking):
        return list(row.response_ids)
    names = {f.name for f in fields(row)}
    return [row.response_id] if "response_id" in names else []  # type: ignore[union-attr]


_PLAIN = (str, int, float, bool, type(None))
#: ``json.dumps(..., sort_keys=True, default=str)`` without building an encoder per row
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, default=str)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(row_type: type) -> tuple[str, ...]:
    """A row type's field names, looked up once per type (``fields()`` per row was a tenth of reading a file)."""
    names = _FIELD_NAMES.get(row_type)
    if names is None:
        names = _FIELD_NAMES[row_type] = tuple(f.name for f in fields(row_type))
    return names


def _row_dict(row: Feedback) -> dict[str, Any]:
    """``asdict(row)`` for the fingerprint, without its deep copy where nothing needs one (fields are ids, numbers,
    tuples of them, and a ``meta`` of plain values: the same JSON). A 200k-row set's fingerprint took 49 s with
    ``asdict`` on a loaded 2-core machine."""
    if any(not isinstance(value, _PLAIN) for value in row.meta.values()):
        return asdict(row)
    return {name: getattr(row, name) for name in _field_names(type(row))}
