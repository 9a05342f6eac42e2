"""Per-token rewards on disk, one row per response, in the shape dense-reward trainers take: JSONL or Parquet.

A row: ``prompt_id``, ``response_id``, ``tokens`` (the response's text of each token), ``offsets`` ([start, end]
character offsets into the response, so a trainer can move the credit onto its own policy's tokens), ``rewards``
(one per token, summing to ``reward``), ``reward`` (the model's sequence reward), ``method``, and what the credit
ran through (``twin_reward``, ``residual``, ``unseen_tokens``, ``encoder``, ``attributed_with``, ``response``).
Files are written aside and renamed into place, so a reader never sees half a file. `credit_report` shows the same
credits as token heat-maps in a report (`rewardlab.report`), e.g. one self-contained HTML page.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardlab.data.records import get_field, iter_records, require_text
from rewardlab.errors import DataError
from rewardlab.report import Callout, Report, Section, TokenHeatmap, render_html
from rewardlab.report.markdown import write_aside
from rewardlab.rewards.credit_config import CreditConfig

if TYPE_CHECKING:  # the computation (torch) is imported when credit is computed, not when the CLI starts
    from rewardlab.rewards.model import RewardModel
    from rewardlab.rewards.token_credit import TokenCredit

FORMATS = (".jsonl", ".parquet")
#: responses a heat-map report shows (the export holds them all)
REPORT_MAX_RESPONSES = 200
#: the fields every row has, in order
COLUMNS = ("prompt_id", "response_id", "tokens", "offsets", "rewards", "reward", "method", "twin_reward", "residual",
           "unseen_tokens", "encoder", "attributed_with", "response")


def credit_record_file(model: RewardModel, path: str | Path, config: CreditConfig | None = None, *,
                       prompt_field: str = "prompt", response_field: str = "response",
                       on_progress: Callable[[int, int], None] | None = None) -> list[TokenCredit]:
    """Per-token rewards of every row of a JSONL/CSV/Parquet file with prompt and response fields; ``prompt_id`` and
    ``response_id`` fields are kept when present (else ``p<row>``/``r<row>``). Bad rows are `DataError`s naming the
    file, the row and the field."""
    rows = []
    for row, record in iter_records(path):
        prompt = require_text(get_field(record, prompt_field, source=path, row=row), source=path, row=row,
                              field=prompt_field)
        response = require_text(get_field(record, response_field, source=path, row=row), source=path, row=row,
                                field=response_field)
        rows.append((row, prompt, response, str(record.get("prompt_id", f"p{row}")),
                     str(record.get("response_id", f"r{row}"))))
    if not rows:
        raise DataError("no rows to credit", source=path)
    from rewardlab.rewards.token_credit import TokenCreditor

    creditor = TokenCreditor(model, config)
    credits = []
    for done, (row, prompt, response, prompt_id, response_id) in enumerate(rows, 1):
        try:
            credits.append(creditor.credit(prompt, response, prompt_id, response_id))
        except DataError as exc:
            raise DataError(exc.reason, source=path, row=row, field=response_field) from None
        if on_progress is not None:
            on_progress(done, len(rows))
    return credits


def credit_format(path: str | Path) -> str:
    """``.jsonl`` or ``.parquet`` from the file name, else a `DataError` naming it."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"per-token rewards are written as {' or '.join(FORMATS)}, not {suffix or 'no suffix'!r}",
                        source=path)
    return suffix


def write_token_credits(credits: Sequence[TokenCredit], path: str | Path) -> Path:
    """Write one row per response to ``path`` (format by suffix: `FORMATS`); returns the path."""
    path = Path(path)
    suffix = credit_format(path)
    rows = [credit.as_row() for credit in credits]
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if suffix == ".jsonl":
            with open(aside, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        else:
            _write_parquet(rows, aside)
        os.replace(aside, path)
    finally:
        aside.unlink(missing_ok=True)
    return path


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("prompt_id", pa.string()), ("response_id", pa.string()), ("tokens", pa.list_(pa.string())),
        ("offsets", pa.list_(pa.list_(pa.int32()))), ("rewards", pa.list_(pa.float64())), ("reward", pa.float64()),
        ("method", pa.string()), ("twin_reward", pa.float64()), ("residual", pa.float64()),
        ("unseen_tokens", pa.int32()), ("encoder", pa.string()), ("attributed_with", pa.string()),
        ("response", pa.string()),
    ])
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, str(path))


def read_token_credits(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a file `write_token_credits` wrote (offsets as [start, end] lists), checked for `COLUMNS`."""
    path = Path(path)
    suffix = credit_format(path)
    if suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"not JSON ({exc.msg})", source=path, row=number) from None
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(str(path)).to_pylist()
    for number, row in enumerate(rows, 1):
        missing = [c for c in COLUMNS if not isinstance(row, dict) or c not in row]
        if missing:
            raise DataError("missing field", source=path, row=number, field=missing[0])
    return rows


def credit_report(credits: Sequence[TokenCredit], title: str = "Token credit",
                  max_responses: int = REPORT_MAX_RESPONSES) -> Report:
    """A report with one token heat-map per response (green: credit above 0, red: below), led by the summary."""
    if not credits:
        raise DataError("no per-token rewards to show")
    first = credits[0]
    from rewardlab.rewards.token_credit import summarize_credits

    summary = summarize_credits(credits)
    lead = (f"Per-token rewards by **{first.method}**, through {first.attributed_with}; each response's token rewards "
            f"sum to the model's reward ({first.encoder}). Over n = {len(credits)} responses "
            f"({summary['twin_gap'].n} values, 95% CI by prompt): the attributed encoder's reward is "
            f"{summary['twin_gap']} from the model's on average (absolute), and the top token holds "
            f"{summary['top_share']} of a response's absolute credit.")
    blocks: list[str | Callout | TokenHeatmap] = [lead]
    if len(credits) > max_responses:
        blocks.append(Callout(f"Showing the first {max_responses} of {len(credits)} responses; the export has all.",
                              "note"))
    sections = [Section(None, blocks)]
    for credit in credits[:max_responses]:
        caption = (f"reward {credit.reward:+.4f} = sum of {len(credit.tokens)} token rewards "
                   f"(evenly spread residual {credit.residual:+.4f}; twin reward {credit.twin_reward:+.4f})")
        if credit.unseen_tokens:
            caption += f"; {credit.unseen_tokens} tokens past the encoder's limit get 0"
        sections.append(Section(f"{credit.prompt_id} / {credit.response_id}",
                                [TokenHeatmap(credit.response, credit.offsets, credit.rewards, caption)]))
    return Report(title, sections, settings={"method": first.method, "encoder": first.encoder,
                                             "attributed_with": first.attributed_with})


def write_credit_html(credits: Sequence[TokenCredit], path: str | Path, title: str = "Token credit") -> Path:
    """`credit_report` as one self-contained HTML page at ``path`` (written aside and renamed into place)."""
    path = Path(path)
    page = render_html(credit_report(credits, title))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_aside(path, page.encode("utf-8", "backslashreplace"))
    return path
