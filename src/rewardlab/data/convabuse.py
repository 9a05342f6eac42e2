"""Reader for ConvAbuse (Cercas Curry, Abercrombie & Rieser, EMNLP 2021): per-annotator abuse ratings.

These rate **user turns addressed to a chatbot, not assistant responses**: people talking to E.L.I.Z.A. or
CarbonBot, and eight annotators (``Annotator1`` .. ``Annotator8``, 2–7 per item) judging how abusive each user turn
is. Read as rewardlab feedback, the prompt is the conversation before the rated turn (``Agent:`` / ``User:`` lines:
``prev_agent``, ``prev_user``, ``agent``) and the response is the rated ``user`` turn; the response's ``source`` is
the bot. A reward learned from it scores how acceptable a user's turn is, which is why it is useful here: it is
real, multi-annotator, ordinal feedback with stable annotator ids.

One row of the long file (``ConvAbuseEMNLPfull.csv``) is one (annotator, item) judgement, read as one `Rating`
with its ``annotator_id``. The severity is one-hot over ``is_abuse.1`` (not abusive), ``is_abuse.0`` (ambiguous),
``is_abuse.-1/-2/-3`` (mildly / strongly / very strongly abusive); the rating's value is that level as written
(1, 0, −1, −2, −3) on the scale (−3, 1), so higher is more acceptable and the scale stays ordinal. The type, target
and direction flags set on a row, the conversation id and ``example_no`` are in ``meta``. The release repeats some
(annotator, item) judgements (357 rows, 28 of them disagreeing with the annotator's earlier label): every row is
kept, as the data gives it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.records import SkippedRows, check_policies, get_field, iter_records, read_rows, require_text
from rewardlab.data.types import Rating
from rewardlab.errors import DataError

#: the one-hot severity columns and the level each stands for (higher = more acceptable)
SEVERITY_LEVELS: dict[str, float] = {"is_abuse.1": 1.0, "is_abuse.0": 0.0, "is_abuse.-1": -1.0,
                                     "is_abuse.-2": -2.0, "is_abuse.-3": -3.0}
SCALE = (-3.0, 1.0)
#: the conversation before the rated turn, as (column, speaker) in order
CONTEXT_FIELDS = (("prev_agent", "Agent"), ("prev_user", "User"), ("agent", "Agent"))
#: the field whose empty text ``on_empty="skip"`` leaves out
RESPONSE_FIELDS = ("user",)
FLAG_PREFIXES = ("type.", "target.", "direction.")


def _cell(record: dict[str, Any], name: str, *, source: str, row: int) -> Any:
    """A column's value (the names hold dots, so not `get_field`'s nested lookup), or an error naming it."""
    if name not in record:
        raise DataError("missing field", source=source, row=row, field=name)
    return record[name]


def _flag(value: Any, *, source: str, row: int, field: str) -> bool:
    """A 0/1 cell (as CSV text or a number), or an error naming the field."""
    text = str(value).strip()
    if text in ("1", "1.0"):
        return True
    if text in ("0", "0.0", ""):
        return False
    raise DataError(f"expected 0 or 1, got {value!r}", source=source, row=row, field=field)


def severity(record: dict[str, Any], *, source: str, row: int) -> float:
    """The row's one abuse level: exactly one of the ``is_abuse.*`` columns is 1."""
    chosen = [field for field in SEVERITY_LEVELS
              if _flag(_cell(record, field, source=source, row=row), source=source, row=row, field=field)]
    if len(chosen) != 1:
        raise DataError(f"expected exactly one of {', '.join(SEVERITY_LEVELS)} set to 1, found "
                        f"{len(chosen)}{' (' + ', '.join(chosen) + ')' if chosen else ''}", source=source, row=row,
                        field="is_abuse")
    return SEVERITY_LEVELS[chosen[0]]


def context_prompt(record: dict[str, Any], *, source: str, row: int) -> str:
    """The conversation before the rated user turn, one ``Speaker: text`` line per non-empty turn."""
    lines = []
    for field, speaker in CONTEXT_FIELDS:
        value = get_field(record, field, source=source, row=row)
        if value is not None and not isinstance(value, str):
            raise DataError(f"expected text, got {type(value).__name__}", source=source, row=row, field=field)
        if value and value.strip():
            lines.append(f"{speaker}: {value.strip()}")
    if not lines:
        raise DataError("the conversation before the rated turn is empty", source=source, row=row, field="agent")
    return "\n".join(lines)


def read_convabuse(path: str | Path, limit: int | None = None, on_empty: str = "error",
                   on_error: str = "error") -> FeedbackDataset:
    """One `Rating` per (annotator, item) row of the long ConvAbuse file (``limit`` counts rows).

    ``path`` is ``ConvAbuseEMNLPfull.csv(.gz)`` or the folder holding it. An empty user turn falls under ``on_empty``;
    any other unreadable row (no annotator, no or two severities, a flag that is not 0/1) under ``on_error``.
    """
    path = Path(path)
    check_policies(on_empty, on_error, path)
    if path.is_dir():
        path = path / "ConvAbuseEMNLPfull.csv.gz"
    source = str(path)
    dataset = FeedbackDataset("convabuse")
    skipped = SkippedRows()

    def read_row(row: int, record: dict[str, Any]) -> None:
        annotator = require_text(get_field(record, "annotator_id", source=source, row=row), source=source, row=row,
                                 field="annotator_id").strip()
        level = severity(record, source=source, row=row)
        prompt = context_prompt(record, source=source, row=row)
        turn = require_text(get_field(record, "user", source=source, row=row), source=source, row=row, field="user")
        flags = sorted(field for field, value in record.items()
                       if field.startswith(FLAG_PREFIXES) and _flag(value, source=source, row=row, field=field))
        bot = record.get("bot") or None
        meta = {"row": row, "example_no": record.get("example_no"), "conv_id": record.get("conv_id"), "flags": flags}
        pid = dataset.add_prompt(prompt)  # all checked above: a bad row adds nothing
        rid = dataset.add_response(pid, turn.strip(), bot)
        dataset.add(Rating(rid, level, SCALE, annotator_id=annotator, meta=meta))

    records = iter_records(path, limit, skipped.bad if on_error == "skip" else None)
    read_rows(records, read_row, skipped=skipped, on_empty=on_empty, on_error=on_error, response_fields=RESPONSE_FIELDS)
    dataset.notes.extend(skipped.notes(source))
    return dataset
