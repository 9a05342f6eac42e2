"""Reader for QA-Feedback (Fine-Grained RLHF, Wu et al. 2023): human preferences among 4 answers per question.

The file is a JSON list; each item holds a ``question``, the retrieved ``passages`` (each ``[title, sentence, ...]``),
four outputs ``prediction 1`` .. ``prediction 4`` of the initial T5 policy, and ``preference``: six human judgements
for the pairs 1v2, 1v3, 1v4, 2v3, 2v4, 3v4 (1 = first preferred, 2 = second, 0 = no preference, read as a tie).

The prompt is the passages followed by the question, because the policy answered *from* them and the annotators
judged grounding against them ("Wrong-Grounding", "Unverifiable" errors): without them a reward model cannot tell a
grounded answer from a fluent invented one. The question comes last because rewardlab reads a long prompt from its
end (`rewards.features.prompt_view`, the joint features' prompt tail), so a truncated view keeps it. Each passage
is one ``title: text`` line (the repeated title at the start of a passage's text is dropped), which keeps prompts
near 2.7k characters (at most ~4.5k). ``passages=False`` gives the bare question instead.

The human-edited ``feedback.corrected-prediction`` of ``prediction 1`` becomes a `Correction` (with that answer's
span ``errors`` and ``missing-info`` in its meta) where it is non-empty and differs from the prediction. The
release names no annotators, so ``annotator_id`` stays None.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import SkippedRows, dataset_title, get_field, iter_records, read_rows, require_text
from rewardlab.data.types import Comparison, Correction, Outcome
from rewardlab.errors import DataError

#: the fields whose empty text ``on_empty="skip"`` leaves out (with the row: its six preferences share them)
RESPONSE_FIELDS = tuple(f"prediction {i}" for i in range(1, 5))
#: the pairs of predictions (1-based) that ``preference`` judges, in its order
PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
_OUTCOMES: dict[int, Outcome] = {1: "a", 2: "b", 0: "tie"}


def passage_prompt(question: str, passages: Sequence[Sequence[str]]) -> str:
    """One ``title: text`` line per passage (what the policy answered from), then the question, which a view of the
    prompt's end keeps."""
    lines = []
    for title, *sentences in passages:
        if sentences and sentences[0].startswith(f"{title}\n\n"):  # the text repeats its title first
            sentences = [sentences[0][len(title) + 2:], *sentences[1:]]
        lines.append(f"{title.strip()}: {' '.join(s.strip() for s in sentences)}".rstrip())
    return ("Passages:\n" + "\n".join(lines) + "\n\nQuestion: " if lines else "") + question.strip()


def _passages(value: Any, *, source: str, row: int) -> list[list[str]]:
    """``[[title, sentence, ...], ...]``, or an error naming the passage that is not."""
    if not isinstance(value, list):
        raise DataError(f"expected a list of passages, got {type(value).__name__}", source=source, row=row,
                        field="passages")
    for index, passage in enumerate(value):
        if not isinstance(passage, list) or not passage or not all(isinstance(s, str) for s in passage):
            raise DataError("expected a passage as a list of strings [title, sentence, ...]", source=source, row=row,
                            field=f"passages[{index}]")
    return value


def _preferences(value: Any, *, source: str, row: int) -> list[Outcome]:
    if not isinstance(value, list) or len(value) != len(PAIRS):
        raise DataError(f"expected a list of {len(PAIRS)} preferences (1v2, 1v3, 1v4, 2v3, 2v4, 3v4), got {value!r}",
                        source=source, row=row, field="preference")
    for index, choice in enumerate(value):
        if isinstance(choice, bool) or choice not in _OUTCOMES:
            raise DataError(f"preference must be 1 (first better), 2 (second better) or 0 (no preference), got "
                            f"{choice!r}", source=source, row=row, field=f"preference[{index}]")
    return [_OUTCOMES[choice] for choice in value]


def _correction(record: dict[str, Any], *, source: str, row: int) -> tuple[str | None, dict[str, Any]]:
    """The corrected text of prediction 1 (None when there is none) and its span feedback."""
    feedback = record.get("feedback")
    if feedback is None:
        return None, {}
    if not isinstance(feedback, dict):
        raise DataError(f"expected an object, got {type(feedback).__name__}", source=source, row=row, field="feedback")
    corrected = feedback.get("corrected-prediction")
    if corrected is not None and not isinstance(corrected, str):
        raise DataError(f"expected text, got {type(corrected).__name__}", source=source, row=row,
                        field="feedback.corrected-prediction")
    meta = {key: feedback[key] for key in ("errors", "missing-info") if key in feedback}
    return (corrected if corrected and corrected.strip() else None), meta


def read_qa_feedback(path: str | Path, limit: int | None = None, on_empty: str = "error", on_error: str = "error",
                     passages: bool = True) -> FeedbackDataset:
    """Six comparisons per question (ties where annotators had no preference), plus the human corrections.

    Row = the question's place in the list. Two identical predictions are one response, and a pair of them is
    skipped (counted in ``notes``); ``on_empty``/``on_error`` work as in every reader.
    """
    source = str(path)
    dataset = FeedbackDataset(dataset_title(path))
    skipped = SkippedRows()

    def read_row(row: int, record: dict[str, Any]) -> None:
        question = require_text(get_field(record, "question", source=source, row=row), source=source, row=row,
                                field="question")
        passage_list = _passages(get_field(record, "passages", source=source, row=row), source=source,
                                 row=row) if passages else []
        texts = [require_text(get_field(record, field, source=source, row=row), source=source, row=row, field=field)
                 for field in RESPONSE_FIELDS]
        outcomes = _preferences(get_field(record, "preference", source=source, row=row), source=source, row=row)
        corrected, span_feedback = _correction(record, source=source, row=row)
        # all checked above: a bad row adds nothing
        pid = dataset.add_prompt(passage_prompt(question, passage_list))
        ids = [dataset.add_response(pid, text) for text in texts]
        for (i, j), outcome in zip(PAIRS, outcomes):
            if ids[i - 1] == ids[j - 1]:
                skipped.add("pair(s) whose two predictions are identical", row)
                continue
            dataset.add(Comparison(pid, ids[i - 1], ids[j - 1], outcome, meta={"row": row, "pair": f"{i}v{j}"}))
        if corrected is not None and corrected != texts[0]:
            dataset.add(Correction(ids[0], corrected, meta={"row": row, **span_feedback}))

    records = iter_records(path, limit, skipped.bad if on_error == "skip" else None)
    read_rows(records, read_row, skipped=skipped, on_empty=on_empty, on_error=on_error, response_fields=RESPONSE_FIELDS)
    dataset.notes.extend(skipped.notes(source))
    return dataset
