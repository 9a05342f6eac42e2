"""QA-Feedback's span feedback as per-objective labels of prediction 1 (relevance, factuality, completeness)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from rewardlab.data.objectives_qa import OBJECTIVES, objective_labels, qa_objectives
from rewardlab.data.qa_feedback import read_qa_feedback
from rewardlab.errors import DataError

FILE = "qa-feedback-finegrained-rlhf/dev_feedback.json.gz"


def test_every_first_prediction_gets_one_label_per_objective(shared_data: Path) -> None:
    path = shared_data / FILE
    data = qa_objectives(path, limit=60)
    plain = read_qa_feedback(path, limit=60)
    assert data.comparisons == plain.comparisons and data.responses == plain.responses  # preferences untouched
    records = json.loads(gzip.open(path, "rt", encoding="utf-8").read())[:60]
    by_row = {(r.meta["row"], r.meta["objective"]): r for r in data.ratings}
    assert len(by_row) == len(data.ratings) == 60 * len(OBJECTIVES)
    for row, record in enumerate(records, start=1):
        kinds = {e["error type"] for e in record["feedback"]["errors"]}
        expected = {"relevance": not kinds & {"Irrelevant", "Redundant", "Incoherent"},
                    "factuality": not kinds & {"Wrong-Grounding", "Unverifiable"},
                    "completeness": not record["feedback"]["missing-info"]}
        for name, clean in expected.items():
            rating = by_row[(row, name)]
            assert rating.value == float(clean) and rating.scale == (0.0, 1.0)
            assert data.responses[rating.response_id].text == record["prediction 1"]


def test_labels_and_shares_of_one_feedback_object() -> None:
    answer = "x" * 100
    feedback = {"errors": [{"error type": "Irrelevant", "start": 0, "end": 10},
                           {"error type": "Redundant", "start": 5, "end": 20}],
                "missing-info": [{"error type": "Missing-Answer", "passage_id": 1, "sentence_id": [2]}]}
    labels = objective_labels(feedback, answer)
    assert labels == {"relevance": (0.0, 0.2), "factuality": (1.0, 0.0), "completeness": (0.0, None)}


@pytest.mark.parametrize(("feedback", "field"), [
    ({"errors": [{"error type": "Typo", "start": 0, "end": 1}]}, "feedback.errors[0].error type"),
    ({"errors": [{"error type": "Irrelevant", "start": 5, "end": 1}]}, "feedback.errors[0]"),
    ({"errors": {}}, "feedback.errors"),
    ({"errors": [], "missing-info": "none"}, "feedback.missing-info"),
])
def test_bad_feedback_names_the_field(feedback: dict, field: str) -> None:
    with pytest.raises(DataError, match=re.escape(f"row 3, field '{field}'")):
        objective_labels(feedback, "answer", source="f.json", row=3)
