"""Per-objective labels from QA-Feedback's span feedback: relevance, factuality, completeness (Wu et al. 2023).

QA-Feedback's annotators marked error spans only on ``prediction 1`` of each question (`feedback.errors`, each with an
``error type``) and listed the passage sentences the answer left out (``feedback.missing-info``). The Fine-Grained RLHF
paper groups them into three kinds of reward, and so does this module:

- **relevance**: Irrelevant, Redundant, Incoherent spans;
- **factuality**: Wrong-Grounding, Unverifiable spans;
- **completeness**: any ``missing-info`` entry.

Each objective's label for prediction 1 is 1.0 when the answer has no error of that kind and 0.0 when it has at least
one. Binary rather than "1 − share of characters in such spans", because: a share would mostly measure where an
annotator drew a span's boundaries (a whole sentence or the three wrong words of it); ``missing-info`` names passage
sentences, not characters of the answer, so a share is undefined for completeness and one definition serves all three;
and the per-objective evaluation asks "does the model tell a flawed answer from a clean one" (AUC, accuracy), whose
truth is binary. The shares are kept in each row's ``meta`` (``error_chars``) for anyone who wants the graded view.

Predictions 2–4 have no span feedback: they get no label at all (masked in training, left out of per-objective
evaluation), never a guessed 1.0. The six holistic preferences per question stay comparisons, exactly as
`rewardlab.data.qa_feedback.read_qa_feedback` reads them; the labels are added beside them as `Rating` rows on the
scale (0, 1) whose ``meta["objective"]`` names the objective, the general form `rewardlab.rewards.objective_labels`
reads for any data set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.qa_feedback import passage_prompt, read_qa_feedback
from rewardlab.data.records import iter_records
from rewardlab.data.types import Rating, prompt_id_for, response_id_for
from rewardlab.errors import DataError

#: objective -> the span error types that count against it (completeness: the ``missing-info`` list instead)
SPAN_ERRORS: dict[str, frozenset[str]] = {
    "relevance": frozenset({"Irrelevant", "Redundant", "Incoherent"}),
    "factuality": frozenset({"Wrong-Grounding", "Unverifiable"}),
}
OBJECTIVES = ("relevance", "factuality", "completeness")
#: where `qa_objectives` reads from unless told otherwise
QA_FEEDBACK_FILE = "qa-feedback-finegrained-rlhf/dev_feedback.json.gz"


def default_path() -> Path:
    from rewardlab.data.registry import shared_data_dir  # the registry lists this reader: import it late

    return shared_data_dir() / QA_FEEDBACK_FILE


def _errors(feedback: dict[str, Any], *, source: str, row: int) -> list[dict[str, Any]]:
    """``feedback.errors`` checked: objects with a known ``error type`` and integer ``start`` <= ``end``."""
    errors = feedback.get("errors", [])
    if not isinstance(errors, list):
        raise DataError(f"expected a list, got {type(errors).__name__}", source=source, row=row, field="feedback.errors")
    known = frozenset().union(*SPAN_ERRORS.values())
    for index, error in enumerate(errors):
        field = f"feedback.errors[{index}]"
        if not isinstance(error, dict):
            raise DataError(f"expected an object, got {type(error).__name__}", source=source, row=row, field=field)
        if error.get("error type") not in known:
            raise DataError(f"unknown error type {error.get('error type')!r}; known: {', '.join(sorted(known))}",
                            source=source, row=row, field=f"{field}.error type")
        start, end = error.get("start"), error.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)
                and not isinstance(end, bool) and 0 <= start <= end):
            raise DataError(f"expected integer offsets 0 <= start <= end, got {start!r}, {end!r}", source=source,
                            row=row, field=field)
    return errors


def objective_labels(feedback: dict[str, Any], answer: str, *, source: str = "", row: int = 0
                     ) -> dict[str, tuple[float, float | None]]:
    """objective -> (label, share of the answer's characters in spans of that kind) for one ``feedback`` object.

    The label is 1.0 for "no error of this kind", 0.0 otherwise; completeness has no spans, so no share (None)."""
    errors = _errors(feedback, source=source, row=row)
    missing = feedback.get("missing-info", [])
    if not isinstance(missing, list):
        raise DataError(f"expected a list, got {type(missing).__name__}", source=source, row=row,
                        field="feedback.missing-info")
    out: dict[str, tuple[float, float | None]] = {}
    for name, kinds in SPAN_ERRORS.items():
        covered: set[int] = set()
        for error in errors:
            if error["error type"] in kinds:
                covered.update(range(error["start"], min(error["end"], len(answer))))
        flagged = any(error["error type"] in kinds for error in errors)
        out[name] = (0.0 if flagged else 1.0, len(covered) / max(1, len(answer)))
    out["completeness"] = (0.0 if missing else 1.0, None)
    return out


def qa_objectives(path: str | Path | None = None, limit: int | None = None, on_empty: str = "error",
                  on_error: str = "error", passages: bool = True) -> FeedbackDataset:
    """QA-Feedback as `read_qa_feedback` reads it, plus one `Rating` per objective for each question's prediction 1
    (``meta``: ``objective``, ``row``, ``error_chars``). Row = the question's place in the list; a row the reader
    skipped (``on_empty``/``on_error="skip"``) gets no labels."""
    path = default_path() if path is None else Path(path)
    source = str(path)
    dataset = read_qa_feedback(path, limit, on_empty, on_error, passages=passages)
    for row, record in iter_records(path, limit, (lambda _: None) if on_error == "skip" else None):
        if on_error == "skip" or on_empty == "skip":
            try:
                prompt = passage_prompt(record["question"], record["passages"] if passages else [])
                if response_id_for(prompt_id_for(prompt), record["prediction 1"]) not in dataset.responses:
                    continue  # the reader left this row out
            except (KeyError, TypeError, ValueError):
                continue
        feedback = record.get("feedback")
        if not isinstance(feedback, dict):
            raise DataError("expected the span feedback object of prediction 1", source=source, row=row,
                            field="feedback")
        question, answer = record["question"], record["prediction 1"]  # checked by read_qa_feedback
        prompt = passage_prompt(question, record["passages"] if passages else [])
        rid = response_id_for(prompt_id_for(prompt), answer)
        for name, (label, share) in objective_labels(feedback, answer, source=source, row=row).items():
            dataset.add(Rating(rid, label, (0.0, 1.0), meta={"objective": name, "row": row,
                                                             "error_chars": None if share is None else round(share, 4)}))
    return dataset
