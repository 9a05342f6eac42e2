"""Property-based fuzzing of every file reader (issue 21): random bytes, random JSON shapes and random Unicode (lone
surrogates, NULs) give a dataset or a `RewardlabError` that names the file, never another exception.

Bounded and reproducible: ``derandomize=True`` (the same examples on every run and machine), a fixed number of
examples per test and no deadline (a shared CI core may be slow). The whole folder adds well under 2 minutes to
``make test`` on 2 cores.
"""

from __future__ import annotations

import gzip
import json
import os
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardlab.data import ColumnMapping, load_feedback, read_hh_rlhf, read_mapped, read_trl
from rewardlab.data.candidates import load_candidates, read_alpaca_eval, read_candidates_jsonl, read_gsm8k_candidates
from rewardlab.data.convabuse import read_convabuse
from rewardlab.data.evalbiasbench import read_evalbiasbench
from rewardlab.data.objectives_qa import qa_objectives
from rewardlab.data.prompt_logs import read_prompt_logs
from rewardlab.data.qa_feedback import read_qa_feedback
from rewardlab.data.records import read_texts
from rewardlab.data.registry import read_gsm8k_solutions
from rewardlab.data.spans import qa_feedback_spans, read_span_jsonl
from rewardlab.data.wmt_mqm import read_wmt_mqm
from rewardlab.errors import DataError, RewardlabError

#: deeper local runs: REWARDLAB_FUZZ_EXAMPLES=2000 (and REWARDLAB_FUZZ_RANDOM=1 for fresh examples each run)
EXAMPLES = int(os.environ.get("REWARDLAB_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="REWARDLAB_FUZZ_RANDOM" not in os.environ,
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------- strategies
#: every field name some reader looks for, so random records reach past "missing field"
FIELDS = ["prompt", "chosen", "rejected", "response", "responses", "rating", "a", "b", "label", "strength",
          "annotator", "model", "correct", "gold", "sources", "text", "source", "instruction", "output",
          "generator", "preference", "question", "answer", "solution", "is_correct", "query", "split", "role",
          "content", "messages", "passages", "prediction 1", "prediction 2", "feedback", "id", "category",
          "bias_type", "results_dir", "6b", "175b", "outcome", "score", "input", "output_1", "output_2",
          "start", "end", "kind", "question_id", "user", "prev_agent", "prev_user", "agent", "annotator_id",
          "is_abuse.1", "is_abuse.0", "is_abuse.-3", "system", "doc", "docSegId", "globalSegId", "rater", "target",
          "category", "severity"]

#: Unicode beyond what a well-formed file holds: lone surrogates, NULs, controls, BOMs, astral characters
WILD_TEXT = st.lists(st.one_of(st.characters(codec=None), st.sampled_from(["\ud800", "\udfff", "\x00", "\ufeff",
                                                                           "\n\nHuman: ", "\n\nAssistant: ", "\r"])),
                     max_size=12).map("".join)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**320),
                    st.floats(allow_nan=True, allow_infinity=True), WILD_TEXT,
                    st.sampled_from(["a", "b", "tie", "1", "0", "true", "yes", "", " ", "NaN"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(FIELDS) | WILD_TEXT, inner,
                                                                       max_size=5)),
                      max_leaves=25)
#: records shaped like each reader's rows (its fields present), with wild values: these reach the row logic
SHAPES = [("prompt", "chosen", "rejected"), ("chosen", "rejected"), ("prompt", "a", "b", "label", "strength"),
          ("prompt", "response", "rating", "annotator"), ("prompt", "response", "correct", "model"),
          ("prompt", "responses", "gold", "sources"), ("query", "prompt", "correct", "split"), ("text",),
          ("question", "6b", "175b"), ("instruction", "output", "generator", "preference"),
          ("prompt", "response", "start", "end", "kind", "label"),
          ("prev_agent", "prev_user", "agent", "user", "annotator_id", "is_abuse.1", "is_abuse.0"),
          ("system", "doc", "docSegId", "globalSegId", "rater", "source", "target", "category", "severity")]
FIELD_VALUES = st.one_of(WILD_TEXT, WILD_TEXT.map(lambda t: f"\n\nHuman: {t}\n\nAssistant: {t[::-1]}"), SCALARS,
                         st.lists(st.one_of(WILD_TEXT, SCALARS), max_size=3))
SHAPED = st.sampled_from(SHAPES).flatmap(lambda keys: st.fixed_dictionaries({k: FIELD_VALUES for k in keys}))
RECORDS = st.one_of(SHAPED, st.dictionaries(st.sampled_from(FIELDS) | WILD_TEXT, VALUES, max_size=8))


def _json_line(value: Any) -> str:
    # ensure_ascii: a lone surrogate becomes its \ud800 escape, as a file written by another program would hold it
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


@st.composite
def record_files(draw: st.DrawFn) -> bytes:
    """JSONL content: mostly records, sometimes a broken, deep or non-object line."""
    lines = draw(st.lists(st.one_of(RECORDS.map(_json_line), VALUES.map(_json_line),
                                    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
                                    st.integers(1, 3000).map(lambda n: '{"prompt": ' + "[" * n),
                                    WILD_TEXT.map(lambda t: t.replace("\n", " "))),
                          min_size=0, max_size=6))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def _csv(rows: list[dict[str, Any]], delimiter: str) -> bytes:
    header = sorted({k for row in rows for k in row})
    out = [delimiter.join(header)]
    out += [delimiter.join(str(row.get(k, "")) for k in header) for row in rows]
    return "\n".join(out).encode("utf-8", "surrogatepass")


#: one JSON value nested n deep (arrays or objects), alone in the file or as a record's field
DEEP = st.tuples(st.integers(1, 5000), st.sampled_from(["[]", '{"a":}', '{"prompt": [', "[{}]"])).map(
    lambda nk: (nk[1][:-1] * nk[0] + nk[1][-1:] * nk[0]).encode())
CONTENTS = st.one_of(
    st.binary(max_size=300),
    DEEP,
    record_files(),
    st.lists(RECORDS, max_size=5).map(lambda rows: _json_line(rows).encode()),  # a JSON list file
    st.lists(RECORDS, max_size=5).map(lambda rows: _csv(rows, ",")),
    WILD_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
)

# ---------------------------------------------------------------------- readers
MAPPINGS = ["prompt=prompt,chosen=chosen,rejected=rejected", "prompt=prompt,a=a,b=b,label=label,strength=strength",
            "prompt=prompt,response=response,rating=rating,annotator=annotator",
            "prompt=prompt,response=response,correct=correct,model=model"]

Reader = Callable[[Path], object]
READERS: dict[str, Reader] = {
    "auto": lambda p: load_feedback(p),
    "auto-skip": lambda p: load_feedback(p, on_empty="skip", on_error="skip"),
    "hh": lambda p: read_hh_rlhf(p),
    "trl": lambda p: read_trl(p),
    "trl-skip": lambda p: read_trl(p, on_empty="skip", on_error="skip"),
    **{f"mapped-{i}": (lambda p, m=m: read_mapped(p, ColumnMapping.parse(m))) for i, m in enumerate(MAPPINGS)},
    "mapped-skip": lambda p: read_mapped(p, ColumnMapping.parse(MAPPINGS[1]), on_empty="skip", on_error="skip"),
    "candidates": lambda p: read_candidates_jsonl(p),
    "load-candidates": lambda p: load_candidates(p),
    "alpaca-eval": lambda p: read_alpaca_eval(p),
    "gsm8k-candidates": lambda p: read_gsm8k_candidates(p),
    "gsm8k-solutions": lambda p: read_gsm8k_solutions(p),
    "evalbiasbench": lambda p: read_evalbiasbench(p),
    "qa-feedback": lambda p: read_qa_feedback(p),
    "qa-objectives": lambda p: qa_objectives(p),
    "qa-spans": lambda p: qa_feedback_spans(p),
    "span-jsonl": lambda p: read_span_jsonl(p),
    "convabuse": lambda p: read_convabuse(p),
    "wmt-mqm": lambda p: read_wmt_mqm(p),
    "prompt-logs": lambda p: read_prompt_logs(p),
    "texts": lambda p: read_texts(p, "text"),
}
SUFFIXES = [".jsonl", ".json", ".csv", ".tsv", ".jsonl.gz", ".txt"]


def _check(reader: Reader, path: Path) -> None:
    try:
        reader(path)
    except DataError as error:
        assert error.source is not None and str(path) in error.source, f"DataError without the file: {error}"
        str(error).encode("utf-8")  # printable: no lone surrogate leaks into the message
    except RewardlabError as error:
        assert str(path) in str(error) or str(path.name) in str(error), f"error without the file: {error}"
        str(error).encode("utf-8")


@pytest.mark.parametrize("name", list(READERS))
@FUZZ
@given(content=CONTENTS, suffix=st.sampled_from(SUFFIXES))
def test_every_reader_gives_a_dataset_or_a_rewardlab_error(name: str, content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(gzip.compress(content, mtime=0) if suffix.endswith(".gz") else content)
        _check(READERS[name], path)


@FUZZ
@given(rows=st.lists(RECORDS, min_size=1, max_size=5), damage=st.integers(0, 64))
def test_damaged_gzip_is_a_rewardlab_error(rows: list[dict[str, Any]], damage: int) -> None:
    data = bytearray(gzip.compress("\n".join(map(_json_line, rows)).encode(), mtime=0))
    del data[len(data) - damage:]  # truncated (0: whole)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl.gz"
        path.write_bytes(bytes(data))
        _check(READERS["auto"], path)


@FUZZ
@given(text=st.text(st.sampled_from(string.printable + "\x00\ufeff\u2028"), max_size=200))
def test_text_files_with_nuls_and_odd_line_breaks(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "texts.txt"
        path.write_text(text, encoding="utf-8")
        _check(READERS["texts"], path)
