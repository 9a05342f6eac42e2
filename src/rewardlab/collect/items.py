"""Annotation items from the files rewardlab already reads: feedback (pairs), candidate sets, or plain JSONL.

Item ids are content hashes unless a record carries an ``id``, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.collect import tasks
from rewardlab.data.records import iter_records
from rewardlab.errors import DataError

Item = tuple[str, dict[str, Any]]  # (external id, payload)


def _item_id(payload: dict[str, Any]) -> str:
    return "i_" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:16]


Group = tuple[str | None, str, list[str], list[str] | None]  # (id, prompt, responses, steps)


def _groups_from_file(path: Path, on_empty: str = "error") -> tuple[list[Group], list[str]]:
    """Groups of responses, and the reader's notes on anything it skipped: records with ``responses``
    (candidate sets) or ``response`` (one answer), or pairs in any feedback format `rewardlab train` reads."""
    first = next(iter(iter_records(path, limit=1)), None) if path.is_file() else None
    if first is not None and ("responses" in first[1] or "response" in first[1]):
        groups = []
        for row, record in iter_records(path):
            prompt, responses = record.get("prompt"), record.get("responses", [record.get("response")])
            if not isinstance(prompt, str) or not prompt.strip():
                raise DataError("must be non-empty text", source=path, row=row, field="prompt")
            texts = [r.get("text") if isinstance(r, dict) else r for r in responses] if isinstance(responses, list) else None
            if not texts or not all(isinstance(t, str) for t in texts):
                raise DataError("must be a text or a list of texts (or {text} objects)", source=path, row=row,
                                field="responses" if "responses" in record else "response")
            steps = record.get("steps")
            if steps is not None and (not isinstance(steps, list) or not all(isinstance(s, str) for s in steps)):
                raise DataError("must be a list of texts", source=path, row=row, field="steps")
            groups.append((str(record["id"]) if record.get("id") is not None else None, prompt,
                           [str(t) for t in texts], None if steps is None else [str(s) for s in steps]))
        return groups, []
    from rewardlab.data.load import load_feedback
    dataset = load_feedback(path, on_empty=on_empty)
    pairs = dataset.comparisons
    if not pairs:
        raise DataError("no comparisons, candidate sets or responses to import", source=path)
    return [(None, dataset.prompts[row.prompt_id].text,
             [dataset.responses[row.a].text, dataset.responses[row.b].text], None) for row in pairs], dataset.notes


def items_from_file(path: str | Path, task_type: str, pairs_per_prompt: int | None = None, seed: int = 0,
                    on_empty: str = "error") -> tuple[list[Item], list[str]]:
    """The items a ``task_type`` project gets from ``path``.

    The task type decides (`TaskType.payloads`): pairwise takes each imported pair, or pairs drawn from each
    candidate set (all of them, or ``pairs_per_prompt`` at random); ranking each candidate set whole; the
    others each distinct response on its own.
    ``on_empty`` as in `load_feedback` (pairs whose response text is empty, in any format). Returns the items and the
    reader's notes on anything it skipped.
    """
    task = tasks.task_type(task_type)
    path = Path(path)
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    groups, notes = _groups_from_file(path, on_empty)
    for index, (record_id, prompt, responses, steps) in enumerate(groups, start=1):
        payloads = task.payloads(prompt, responses, steps, pairs_per_prompt, rng)
        for n, payload in enumerate(payloads):
            try:
                payload = tasks.check_item(task_type, payload)
            except tasks.LabelError as error:
                low, high = task.responses
                raise DataError(f"{error} (a {task_type} item takes {low}–{high} responses)", source=path,
                                row=index) from None
            external_id = (record_id if len(payloads) == 1 else f"{record_id}#{n}") if record_id else _item_id(payload)
            items.append((external_id, payload))
    return items, notes
