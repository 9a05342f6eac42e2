"""TRL's preference format, both ways: ``prompt``/``chosen``/``rejected`` as text or chat messages.

Also reads TRL's implicit-prompt form (no ``prompt``; ``chosen``/``rejected`` are whole conversations).
Rows can come from a file or from any iterable of dicts, e.g. a Hugging Face ``datasets.Dataset``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.hh_rlhf import ASSISTANT_TAG, dialogue_messages, split_dialogue
from rewardlab.data.records import SkippedRows, dataset_title, get_field, iter_records, read_rows, require_text
from rewardlab.data.types import Comparison, Message
from rewardlab.errors import DataError

#: the fields whose empty text ``on_empty="skip"`` leaves out (an empty prompt stays a bad row)
RESPONSE_FIELDS = ("chosen", "rejected")
_SPEAKER = {"user": "Human", "assistant": "Assistant", "system": "System"}


def render_messages(messages: tuple[Message, ...]) -> str:
    """Render a conversation in the HH style (``\\n\\nHuman: ...``) so all prompts look alike."""
    return "".join(f"\n\n{_SPEAKER.get(m.role, m.role.capitalize())}: {m.content}" for m in messages)


def _messages(value: Any, *, source: str, row: int, field: str) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise DataError("expected a non-empty list of {role, content} messages", source=source, row=row, field=field)
    out = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, dict) or "role" not in item or "content" not in item:
            raise DataError("expected an object with 'role' and 'content'", source=source, row=row, field=where)
        content = item["content"]
        if not isinstance(content, str):
            raise DataError("message content must be text", source=source, row=row, field=f"{where}.content")
        out.append(Message(str(item["role"]), content))
    return tuple(out)


def _response_text(value: Any, *, source: str, row: int, field: str) -> str:
    if isinstance(value, list):
        messages = _messages(value, source=source, row=row, field=field)
        text = "\n\n".join(m.content for m in messages) if len(messages) > 1 else messages[0].content
        return require_text(text, source=source, row=row, field=field)
    return require_text(value, source=source, row=row, field=field)


def read_trl(path: str | Path, limit: int | None = None, on_empty: str = "error",
             on_error: str = "error") -> FeedbackDataset:
    """Read a TRL preference file (JSONL, JSON, Parquet...).

    ``on_empty="skip"`` leaves out pairs with an empty chosen or rejected response and ``on_error="skip"`` rows that
    cannot be read (both counted in ``notes``); the defaults make them an error naming the row and field.
    """
    skipped = SkippedRows()
    records = iter_records(path, limit, skipped.bad if on_error == "skip" else None)
    return trl_from_records(records, source=str(path), name=dataset_title(path), on_empty=on_empty, on_error=on_error,
                            skipped=skipped)


def trl_from_rows(rows: Iterable[dict[str, Any]], name: str = "trl", on_empty: str = "error",
                  on_error: str = "error") -> FeedbackDataset:
    """Read TRL preference rows already in memory (a list of dicts or a ``datasets.Dataset``)."""
    return trl_from_records(enumerate(rows, start=1), source=name, name=name, on_empty=on_empty, on_error=on_error)


def trl_from_records(
    records: Iterable[tuple[int, dict[str, Any]]], *, source: str, name: str = "trl", on_empty: str = "error",
    on_error: str = "error", skipped: SkippedRows | None = None,
) -> FeedbackDataset:
    """TRL rows from anywhere; ``skipped`` already holds rows the file reader passed over (broken JSON lines)."""
    dataset = FeedbackDataset(name)
    skipped = SkippedRows() if skipped is None else skipped

    def read_row(row: int, record: dict[str, Any]) -> None:
        chosen_raw = get_field(record, "chosen", source=source, row=row)
        rejected_raw = get_field(record, "rejected", source=source, row=row)
        if "prompt" in record:
            prompt_raw = record["prompt"]
            if isinstance(prompt_raw, list):
                messages = _messages(prompt_raw, source=source, row=row, field="prompt")
                prompt_text, prompt_messages = render_messages(messages), messages
            else:
                prompt_text = require_text(prompt_raw, source=source, row=row, field="prompt")
                prompt_messages = None
            chosen = _response_text(chosen_raw, source=source, row=row, field="chosen")
            rejected = _response_text(rejected_raw, source=source, row=row, field="rejected")
        else:
            prompt_text, prompt_messages, chosen, rejected = _implicit_prompt(
                chosen_raw, rejected_raw, source=source, row=row
            )
        if chosen == rejected:
            skipped.add("pair(s) whose two responses are identical", row)
            return
        pid = dataset.add_prompt(prompt_text, prompt_messages)
        a = dataset.add_response(pid, chosen)
        b = dataset.add_response(pid, rejected)
        dataset.add(Comparison(pid, a, b, "a", meta={"row": row}))

    read_rows(records, read_row, skipped=skipped, on_empty=on_empty, on_error=on_error,
              response_fields=RESPONSE_FIELDS)
    dataset.notes.extend(skipped.notes(source))
    return dataset


def _implicit_prompt(
    chosen_raw: Any, rejected_raw: Any, *, source: str, row: int
) -> tuple[str, tuple[Message, ...] | None, str, str]:
    """Split whole conversations into the shared prompt and the two final answers."""
    if isinstance(chosen_raw, str) and isinstance(rejected_raw, str):
        parts = split_dialogue(chosen_raw, rejected_raw)
        if parts is None:
            raise DataError(
                f"no 'prompt' field and no shared '{ASSISTANT_TAG.strip()}' turn to split one off",
                source=source,
                row=row,
                field="prompt",
            )
        prompt_text, chosen, rejected = parts
        for field, text in (("chosen", chosen), ("rejected", rejected)):
            require_text(text, source=source, row=row, field=field)
        return prompt_text, dialogue_messages(prompt_text), chosen, rejected
    chosen_msgs = _messages(chosen_raw, source=source, row=row, field="chosen")
    rejected_msgs = _messages(rejected_raw, source=source, row=row, field="rejected")
    shared = 0
    while (
        shared < min(len(chosen_msgs), len(rejected_msgs)) - 1 and chosen_msgs[shared] == rejected_msgs[shared]
    ):
        shared += 1
    if shared == 0:
        raise DataError("no 'prompt' field and the conversations share no first turn", source=source, row=row, field="prompt")
    prompt = chosen_msgs[:shared]
    chosen = require_text("\n\n".join(m.content for m in chosen_msgs[shared:]), source=source, row=row, field="chosen")
    rejected = require_text(
        "\n\n".join(m.content for m in rejected_msgs[shared:]), source=source, row=row, field="rejected"
    )
    return render_messages(prompt), prompt, chosen, rejected


def write_trl(dataset: FeedbackDataset, path: str | Path, conversational: bool = False) -> dict[str, int]:
    """Write decided comparisons as TRL ``prompt``/``chosen``/``rejected`` JSONL.

    Ties have no chosen side in this format; they are counted and left out, never silently.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = ties = 0
    with open(path, "w", encoding="utf-8") as handle:
        for comp in dataset.comparisons:
            if comp.outcome == "tie":
                ties += 1
                continue
            win, lose = (comp.a, comp.b) if comp.outcome == "a" else (comp.b, comp.a)
            prompt = dataset.prompts[comp.prompt_id]
            chosen, rejected = dataset.responses[win].text, dataset.responses[lose].text
            record: dict[str, Any]
            if conversational:
                messages = prompt.messages or (Message("user", prompt.text),)
                record = {
                    "prompt": [{"role": m.role, "content": m.content} for m in messages],
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            else:
                record = {"prompt": prompt.text, "chosen": chosen, "rejected": rejected}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return {"written": written, "ties_left_out": ties}
