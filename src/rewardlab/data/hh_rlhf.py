"""Reader for Anthropic's HH-RLHF format: ``chosen``/``rejected`` are whole dialogues.

The prompt is the conversation the two sides share, up to the last ``\\n\\nAssistant:`` inside their
common prefix; what follows it on each side is that side's response.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import (
    EMPTY_POLICIES,
    SkippedRows,
    dataset_title,
    get_field,
    iter_records,
    read_rows,
    require_text,
)
from rewardlab.data.types import Comparison, Message
from rewardlab.errors import DataError, InvalidValueError

ASSISTANT_TAG = "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):")


def split_dialogue(chosen: str, rejected: str) -> tuple[str, str, str] | None:
    """(prompt, chosen response, rejected response), or None when there is no shared assistant turn."""
    limit = min(len(chosen), len(rejected))
    common = 0
    while common < limit and chosen[common] == rejected[common]:
        common += 1
    cut = chosen.rfind(ASSISTANT_TAG, 0, common)
    # the tag itself must be inside the shared part on both sides
    if cut < 0 or cut + len(ASSISTANT_TAG) > common:
        return None
    start = cut + len(ASSISTANT_TAG)
    return chosen[:cut], chosen[start:].strip(), rejected[start:].strip()


def dialogue_messages(text: str) -> tuple[Message, ...]:
    """Parse ``\\n\\nHuman: ...\\n\\nAssistant: ...`` into chat messages."""
    parts = _TURN.split(text)
    messages = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        messages.append(Message("user" if speaker == "Human" else "assistant", content.strip()))
    return tuple(messages)


def is_dialogue(text: str) -> bool:
    """Does ``text`` look like an HH-RLHF dialogue (``\\n\\nHuman: ...``) rather than a plain prompt?"""
    return text.lstrip().startswith("Human:")


def chat_turns(text: str) -> list[dict[str, str]]:
    """An HH dialogue as OpenAI-style chat turns for a generator; text with no ``Human:`` turns is one user turn."""
    turns = [{"role": m.role, "content": m.content} for m in dialogue_messages(text)]
    return turns or [{"role": "user", "content": text}]


def dialogue_text(messages: Iterable[Message | dict[str, str]]) -> str:
    """Chat messages back into HH-RLHF text (``\\n\\nHuman: ...\\n\\nAssistant: ...``): the prompt form
    reward models trained on HH-RLHF saw, so a chat prompt can be scored like one of theirs."""
    parts = []
    for message in messages:
        role, content = (message["role"], message["content"]) if isinstance(message, dict) else (message.role, message.content)
        if role == "system":
            continue  # HH-RLHF dialogues have no system turn
        parts.append(f"\n\n{'Assistant' if role == 'assistant' else 'Human'}: {content.strip()}")
    return "".join(parts)


def read_hh_rlhf(path: str | Path, limit: int | None = None, on_empty: str = "error",
                 on_error: str = "error") -> FeedbackDataset:
    """Read an HH-RLHF JSONL file (gzipped or not) into comparisons with outcome ``a`` (= chosen).

    ``on_empty="skip"`` leaves out pairs with an empty final turn and ``on_error="skip"`` rows that cannot be read
    (both counted in ``notes``); the defaults make them an error naming the row and field.
    """
    skipped = SkippedRows()
    records = iter_records(path, limit, skipped.bad if on_error == "skip" else None)
    return hh_rlhf_from_records(records, source=str(path), name=dataset_title(path), on_empty=on_empty,
                                on_error=on_error, skipped=skipped)


def hh_rlhf_from_records(
    records: Iterable[tuple[int, dict[str, Any]]], *, source: str, name: str = "hh-rlhf", on_empty: str = "error",
    on_error: str = "error", skipped: SkippedRows | None = None,
) -> FeedbackDataset:
    """HH rows from anywhere; ``skipped`` already holds rows the file reader passed over (broken JSON lines)."""
    if on_empty not in EMPTY_POLICIES:
        raise InvalidValueError(f"on_empty must be one of {EMPTY_POLICIES}")
    dataset = FeedbackDataset(name)
    skipped = SkippedRows() if skipped is None else skipped

    def read_row(row: int, record: dict[str, Any]) -> None:
        chosen = require_text(get_field(record, "chosen", source=source, row=row), source=source, row=row, field="chosen")
        rejected = require_text(
            get_field(record, "rejected", source=source, row=row), source=source, row=row, field="rejected"
        )
        if chosen == rejected:
            skipped.add("pair(s) whose chosen and rejected are identical", row)
            return
        parts = split_dialogue(chosen, rejected)
        if parts is None:
            raise DataError(
                "chosen and rejected share no '\\n\\nAssistant:' turn, so no prompt can be split off",
                source=source,
                row=row,
                field="chosen",
            )
        prompt_text, chosen_response, rejected_response = parts
        empty = [field for field, text in (("chosen", chosen_response), ("rejected", rejected_response)) if not text]
        if empty and on_empty == "error":
            raise DataError(
                "final assistant turn is empty (read with on_empty='skip' to leave such pairs out)",
                source=source,
                row=row,
                field=empty[0],
            )
        if empty:
            skipped.add("pair(s) with an empty final assistant turn", row)
            return
        if chosen_response == rejected_response:
            skipped.add("pair(s) whose chosen and rejected responses are identical", row)
            return
        pid = dataset.add_prompt(prompt_text, dialogue_messages(prompt_text))
        a = dataset.add_response(pid, chosen_response)
        b = dataset.add_response(pid, rejected_response)
        dataset.add(Comparison(pid, a, b, "a", meta={"row": row}))

    # an empty whole dialogue is a bad row, not an empty response: ``response_fields`` stays empty
    read_rows(records, read_row, skipped=skipped, on_empty=on_empty, on_error=on_error)
    dataset.notes.extend(skipped.notes(source))
    return dataset
