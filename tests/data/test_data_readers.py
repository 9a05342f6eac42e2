"""Readers and writers on real shared data: HH-RLHF, TRL, the generic column mapping, auto-detection, registry."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rewardlab.data import (
    REGISTRY,
    ColumnMapping,
    Comparison,
    FeedbackDataset,
    Message,
    load_feedback,
    load_named,
    read_hh_rlhf,
    read_mapped,
    read_trl,
    trl_from_rows,
    write_parquet,
    write_trl,
)
from rewardlab.data.hh_rlhf import ASSISTANT_TAG, dialogue_messages, split_dialogue
from rewardlab.data.load import detect_format
from rewardlab.data.trl import render_messages
from rewardlab.errors import DataError

HH_ROWS = 2312
HH_EMPTY_ROWS = (87, 517, 926, 1104)
HH_COMPARISONS = HH_ROWS - len(HH_EMPTY_ROWS)


def _jsonl_gz(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def hh_raw(hh_path: Path) -> list[dict[str, Any]]:
    return _jsonl_gz(hh_path)


def _triples(ds: FeedbackDataset) -> Counter[tuple[str, str, str]]:
    """(prompt text, winner text, loser text) of every decided comparison, as a multiset."""
    out: Counter[tuple[str, str, str]] = Counter()
    for c in ds.comparisons:
        win, lose = (c.a, c.b) if c.outcome == "a" else (c.b, c.a)
        out[(ds.prompts[c.prompt_id].text, ds.responses[win].text, ds.responses[lose].text)] += 1
    return out


# ---------------------------------------------------------------------------------------------- HH-RLHF
def test_hh_skip_reads_2308_pairs_and_names_skipped_rows(hh_path: Path, hh_dataset: FeedbackDataset) -> None:
    assert len(hh_dataset.comparisons) == HH_COMPARISONS == 2308
    assert all(c.outcome == "a" for c in hh_dataset.comparisons)
    assert len(hh_dataset.responses) == 2 * HH_COMPARISONS
    rows = sorted(c.meta["row"] for c in hh_dataset.comparisons)
    assert rows == [r for r in range(1, HH_ROWS + 1) if r not in HH_EMPTY_ROWS]
    assert len(hh_dataset.notes) == 1
    note = hh_dataset.notes[0]
    assert str(hh_path) in note
    assert "skipped 4 " in note
    assert "empty final assistant turn" in note
    assert "(rows 87, 517, 926, 1104)" in note


def test_hh_default_on_empty_is_an_error_naming_file_row_and_field(hh_path: Path) -> None:
    with pytest.raises(DataError) as info:
        read_hh_rlhf(hh_path)
    err = info.value
    assert (err.source, err.row, err.field) == (str(hh_path), 87, "chosen")
    message = str(err)
    assert str(hh_path) in message
    assert "row 87" in message
    assert "field 'chosen'" in message
    assert "on_empty='skip'" in message


def test_hh_limit_stops_before_the_first_bad_row(hh_path: Path) -> None:
    ds = read_hh_rlhf(hh_path, limit=86)
    assert len(ds.comparisons) == 86
    assert ds.notes == []


def test_hh_on_empty_policy_is_validated(hh_path: Path) -> None:
    with pytest.raises(ValueError, match="on_empty"):
        read_hh_rlhf(hh_path, on_empty="ignore")


def test_hh_prompt_is_split_at_the_final_assistant_turn(
    hh_dataset: FeedbackDataset, hh_raw: list[dict[str, Any]]
) -> None:
    assert len(hh_raw) == HH_ROWS
    for comp in hh_dataset.comparisons:
        record = hh_raw[comp.meta["row"] - 1]
        prompt = hh_dataset.prompts[comp.prompt_id].text
        chosen = hh_dataset.responses[comp.a].text
        rejected = hh_dataset.responses[comp.b].text
        assert chosen != rejected
        # the prompt is exactly the text before the last shared "\n\nAssistant:" ...
        assert record["chosen"].startswith(prompt + ASSISTANT_TAG)
        assert record["rejected"].startswith(prompt + ASSISTANT_TAG)
        assert not prompt.endswith(ASSISTANT_TAG)
        assert prompt.startswith("\n\nHuman:")
        # ... and each response is the rest of its side, with no speaker tag left on it
        assert record["chosen"][len(prompt) + len(ASSISTANT_TAG):].strip() == chosen
        assert record["rejected"][len(prompt) + len(ASSISTANT_TAG):].strip() == rejected
        for text in (chosen, rejected):
            assert text == text.strip() and text
            assert not text.startswith("Assistant:")
            assert "\n\nHuman:" not in text


def test_hh_prompt_messages_are_alternating_user_assistant_turns(hh_dataset: FeedbackDataset) -> None:
    rendered_exactly = alternating = 0
    for prompt in hh_dataset.prompts.values():
        messages = prompt.messages
        assert messages, prompt.text[:80]
        assert {m.role for m in messages} <= {"user", "assistant"}
        assert messages[0].role == "user" and messages[-1].role == "user"
        assert len(messages) == prompt.text.count("\n\nHuman:") + prompt.text.count("\n\nAssistant:")
        alternating += all(m.role != n.role for m, n in pairwise(messages))
        rendered_exactly += render_messages(messages) == prompt.text
    # the source has a handful of dialogues with two assistant turns in a row, and a few with stray spaces
    # around a turn (so rendering the parsed turns does not give back the exact text)
    assert alternating >= 0.99 * len(hh_dataset.prompts)
    assert rendered_exactly >= 0.99 * len(hh_dataset.prompts)


def test_hh_first_row_has_the_expected_dialogue(hh_dataset: FeedbackDataset, hh_raw: list[dict[str, Any]]) -> None:
    first = next(c for c in hh_dataset.comparisons if c.meta["row"] == 1)
    messages = hh_dataset.prompts[first.prompt_id].messages
    assert messages is not None
    assert messages[0] == Message("user", "what are some pranks with a pen i can do?")
    assert messages[1] == Message("assistant", "Are you looking for practical joke ideas?")
    assert messages[2] == Message("user", "yep")
    assert messages[-1] == Message("user", "okay some of these do not have anything to do with pens")
    assert hh_raw[0]["chosen"].endswith(hh_dataset.responses[first.a].text)


def test_split_dialogue_and_messages_on_a_hand_made_pair() -> None:
    chosen = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant: Why did the chicken..."
    rejected = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant: No."
    assert split_dialogue(chosen, rejected) == (
        "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell me a joke",
        "Why did the chicken...",
        "No.",
    )
    # responses that begin alike: the cut is still at the tag, not inside the shared start of the answers
    assert split_dialogue("\n\nHuman: q\n\nAssistant: I think yes", "\n\nHuman: q\n\nAssistant: I think no") == (
        "\n\nHuman: q",
        "I think yes",
        "I think no",
    )
    assert split_dialogue("\n\nHuman: a", "\n\nHuman: b") is None
    assert dialogue_messages("\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell me a joke") == (
        Message("user", "Hi there"),
        Message("assistant", "Hello!"),
        Message("user", "Tell me a joke"),
    )


# ---------------------------------------------------------------------------------------------- TRL
def test_trl_standard_round_trip_keeps_exact_texts(hh_dataset: FeedbackDataset, tmp_path: Path) -> None:
    out = tmp_path / "trl" / "hh.jsonl"
    stats = write_trl(hh_dataset, out)
    assert stats == {"written": HH_COMPARISONS, "ties_left_out": 0}
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"prompt", "chosen", "rejected"}
    assert all(isinstance(v, str) for v in first.values())

    back = read_trl(out)
    assert len(back.comparisons) == HH_COMPARISONS
    assert all(c.outcome == "a" for c in back.comparisons)
    assert _triples(back) == _triples(hh_dataset)
    # content-addressed ids line up with the original dataset
    assert set(back.prompts) == set(hh_dataset.prompts)
    assert set(back.responses) == set(hh_dataset.responses)
    assert back.notes == []


def test_trl_conversational_round_trip(hh_dataset: FeedbackDataset, tmp_path: Path) -> None:
    out = tmp_path / "hh_conv.jsonl"
    stats = write_trl(hh_dataset, out, conversational=True)
    assert stats["written"] == HH_COMPARISONS
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert isinstance(first["prompt"], list) and first["prompt"][0]["role"] == "user"
    assert first["chosen"] == [{"role": "assistant", "content": first["chosen"][0]["content"]}]

    back = read_trl(out)
    assert len(back.comparisons) == HH_COMPARISONS
    expected: Counter[tuple[str, str, str]] = Counter()
    for c in hh_dataset.comparisons:
        messages = hh_dataset.prompts[c.prompt_id].messages
        assert messages is not None
        expected[(render_messages(messages), hh_dataset.responses[c.a].text, hh_dataset.responses[c.b].text)] += 1
    assert _triples(back) == expected
    original_messages = {p.messages for p in hh_dataset.prompts.values()}
    assert all(p.messages in original_messages for p in back.prompts.values())


def test_write_trl_orders_by_outcome_and_leaves_ties_out(tmp_path: Path) -> None:
    ds = FeedbackDataset("small")
    pid = ds.add_prompt("Which is bigger, 2 or 3?")
    two, three = ds.add_response(pid, "2"), ds.add_response(pid, "3")
    ds.add(Comparison(pid, two, three, "b"))
    ds.add(Comparison(pid, two, three, "tie"))
    out = tmp_path / "small.jsonl"
    assert write_trl(ds, out) == {"written": 1, "ties_left_out": 1}
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [{"prompt": "Which is bigger, 2 or 3?", "chosen": "3", "rejected": "2"}]
    conv = tmp_path / "small_conv.jsonl"
    write_trl(ds, conv, conversational=True)
    record = json.loads(conv.read_text(encoding="utf-8"))
    assert record["prompt"] == [{"role": "user", "content": "Which is bigger, 2 or 3?"}]


def test_trl_from_rows_plain_strings() -> None:
    ds = trl_from_rows(
        [
            {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
            {"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon"},
            {"prompt": "What is 2+2?", "chosen": "Four", "rejected": "5"},
        ]
    )
    assert len(ds.comparisons) == 3
    assert len(ds.prompts) == 2
    assert len(ds.responses) == 5  # "5" for the first prompt is shared
    assert _triples(ds) == Counter(
        {("What is 2+2?", "4", "5"): 1, ("Capital of France?", "Paris", "Lyon"): 1, ("What is 2+2?", "Four", "5"): 1}
    )
    assert [c.meta["row"] for c in ds.comparisons] == [1, 2, 3]
    assert all(p.messages is None for p in ds.prompts.values())


def test_trl_from_rows_conversational_messages() -> None:
    ds = trl_from_rows(
        [
            {
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Name a colour."},
                ],
                "chosen": [{"role": "assistant", "content": "Blue."}],
                "rejected": [{"role": "assistant", "content": "I like many colours, for example..."}],
            }
        ]
    )
    (comp,) = ds.comparisons
    prompt = ds.prompts[comp.prompt_id]
    assert prompt.messages == (Message("system", "Be brief."), Message("user", "Name a colour."))
    assert prompt.text == "\n\nSystem: Be brief.\n\nHuman: Name a colour."
    assert ds.responses[comp.a].text == "Blue."
    assert ds.responses[comp.b].text == "I like many colours, for example..."


def test_trl_from_rows_implicit_prompt_message_lists() -> None:
    user = {"role": "user", "content": "How do I boil an egg?"}
    ds = trl_from_rows(
        [
            {
                "chosen": [user, {"role": "assistant", "content": "Simmer it for 9 minutes."}],
                "rejected": [user, {"role": "assistant", "content": "Microwave it whole."}],
            }
        ]
    )
    (comp,) = ds.comparisons
    prompt = ds.prompts[comp.prompt_id]
    assert prompt.messages == (Message("user", "How do I boil an egg?"),)
    assert prompt.text == "\n\nHuman: How do I boil an egg?"
    assert ds.responses[comp.a].text == "Simmer it for 9 minutes."
    assert ds.responses[comp.b].text == "Microwave it whole."
    assert comp.outcome == "a"


def test_trl_from_rows_implicit_prompt_multi_turn_and_strings() -> None:
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Joke?"},
    ]
    ds = trl_from_rows(
        [
            {
                "chosen": [*turns, {"role": "assistant", "content": "Knock knock."}],
                "rejected": [*turns, {"role": "assistant", "content": "No."}],
            },
            {
                "chosen": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: Knock knock.",
                "rejected": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Joke?\n\nAssistant: No.",
            },
        ]
    )
    # both spellings describe the same conversation, so they land on the same prompt and responses
    assert len(ds.comparisons) == 2
    assert len(ds.prompts) == 1
    assert len(ds.responses) == 2
    (prompt,) = ds.prompts.values()
    assert prompt.messages == (Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Joke?"))


def test_trl_from_rows_identical_pair_is_skipped_and_noted() -> None:
    ds = trl_from_rows(
        [
            {"prompt": "p", "chosen": "same", "rejected": "same"},
            {"prompt": "p", "chosen": "x", "rejected": "y"},
        ],
        name="mem",
    )
    assert len(ds.comparisons) == 1
    assert len(ds.notes) == 1
    assert ds.notes[0].startswith("mem: skipped 1 ") and ds.notes[0].endswith("identical (rows 1)")


# ---------------------------------------------------------------------------------------------- column mapping
def _labelled_rows(hh_dataset: FeedbackDataset, n: int) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """input/output_1/output_2 rows from real HH pairs, chosen side swapped on every odd row."""
    rows, truth = [], []
    for i, comp in enumerate(hh_dataset.comparisons[:n]):
        prompt = hh_dataset.prompts[comp.prompt_id].text
        chosen, rejected = hh_dataset.responses[comp.a].text, hh_dataset.responses[comp.b].text
        first, second, label = (chosen, rejected, 1) if i % 2 == 0 else (rejected, chosen, 2)
        rows.append({"input": prompt, "output_1": first, "output_2": second, "label": label})
        truth.append((prompt, chosen))
    return rows, truth


def _check_labelled(ds: FeedbackDataset, truth: list[tuple[str, str]], expected_outcomes: list[str]) -> None:
    assert len(ds.comparisons) == len(truth)
    assert [c.outcome for c in ds.comparisons] == expected_outcomes
    for comp, (prompt, chosen) in zip(ds.comparisons, truth, strict=True):
        assert ds.prompts[comp.prompt_id].text == prompt
        winner = comp.a if comp.outcome == "a" else comp.b
        assert ds.responses[winner].text == chosen


def test_mapping_parse() -> None:
    mapping = ColumnMapping.parse(" prompt = input , a=output_1,b=output_2,label=label, annotator=worker ")
    assert mapping.kind() == "labelled_pair"
    assert mapping.columns() == {
        "prompt": "input", "a": "output_1", "b": "output_2", "label": "label", "annotator": "worker",
    }
    assert ColumnMapping.parse("prompt=q,chosen=good,rejected=bad").kind() == "chosen_rejected"
    assert ColumnMapping.parse("prompt=q,response=r,rating=s").kind() == "rating"
    assert ColumnMapping.parse("prompt=q,response=r,correct=ok").kind() == "correctness"
    assert ColumnMapping.parse("prompt=q,a=x,b=y,label=l", "0=a,1=b,2=tie").label_values == {
        "0": "a", "1": "b", "2": "tie",
    }
    with pytest.raises(DataError, match="must name chosen"):
        ColumnMapping.parse("prompt=q,a=x,b=y")
    with pytest.raises(DataError, match="prompt=<column>"):
        ColumnMapping.parse("chosen=x,rejected=y")


def test_mapped_csv_from_real_hh_with_swapped_sides(hh_dataset: FeedbackDataset, tmp_path: Path) -> None:
    rows, truth = _labelled_rows(hh_dataset, 200)
    path = tmp_path / "pairs.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["input", "output_1", "output_2", "label"])
        writer.writeheader()
        writer.writerows(rows)
    ds = read_mapped(path, ColumnMapping.parse("prompt=input,a=output_1,b=output_2,label=label"))
    _check_labelled(ds, truth, ["a" if i % 2 == 0 else "b" for i in range(200)])
    assert [c.meta["row"] for c in ds.comparisons] == list(range(1, 201))
    assert ds.name == "pairs.csv"


def test_mapped_parquet_with_label_values_override(hh_dataset: FeedbackDataset, tmp_path: Path) -> None:
    rows, truth = _labelled_rows(hh_dataset, 60)
    for row in rows:
        row["label"] = row["label"] - 1  # 0 = first output wins, 1 = second
        row["worker"] = f"w{len(row['input']) % 3}"
        row["margin"] = 0.5
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    mapping = ColumnMapping.parse(
        "prompt=input,a=output_1,b=output_2,label=label,annotator=worker,strength=margin", label_values="0=a,1=b"
    )
    ds = read_mapped(path, mapping)
    _check_labelled(ds, truth, ["a" if i % 2 == 0 else "b" for i in range(60)])
    assert [c.annotator_id for c in ds.comparisons] == [row["worker"] for row in rows]
    assert all(c.strength == 0.5 for c in ds.comparisons)
    # the same file with the default label values: 0 is not a known label
    with pytest.raises(DataError) as info:
        read_mapped(path, ColumnMapping.parse("prompt=input,a=output_1,b=output_2,label=label"))
    assert (info.value.row, info.value.field) == (1, "label")
    assert "'0=a,1=b'" in str(info.value)


def test_mapped_chosen_rejected_jsonl(hh_dataset: FeedbackDataset, tmp_path: Path) -> None:
    path = tmp_path / "cr.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for comp in hh_dataset.comparisons[:50]:
            record = {
                "q": hh_dataset.prompts[comp.prompt_id].text,
                "good": hh_dataset.responses[comp.a].text,
                "bad": hh_dataset.responses[comp.b].text,
            }
            handle.write(json.dumps(record) + "\n")
    ds = read_mapped(path, ColumnMapping.parse("prompt=q,chosen=good,rejected=bad"), limit=20)
    assert len(ds.comparisons) == 20
    assert all(c.outcome == "a" for c in ds.comparisons)
    assert set(ds.responses) <= set(hh_dataset.responses)


def test_mapped_alpaca_eval_ratings(alpaca_path: Path) -> None:
    mapping = ColumnMapping.parse("prompt=instruction,response=output,rating=preference,model=generator")
    ds = read_mapped(alpaca_path, mapping, limit=500)
    assert len(ds.ratings) == 500
    assert len(ds.comparisons) == len(ds.labels) == 0
    raw: list[dict[str, Any]] = []
    with gzip.open(alpaca_path, "rt", encoding="utf-8") as handle:
        for line in handle:
            raw.append(json.loads(line))
            if len(raw) == 500:
                break
    for rating in ds.ratings:
        record = raw[rating.meta["row"] - 1]
        response = ds.responses[rating.response_id]
        assert rating.value == pytest.approx(record["preference"])
        assert 1.0 <= rating.value <= 2.0
        assert response.text == record["output"]
        assert response.source == record["generator"]
        assert ds.prompts[response.prompt_id].text == record["instruction"]
    assert sorted(r.meta["row"] for r in ds.ratings) == list(range(1, 501))


def test_mapped_gsm8k_correctness_through_dotted_paths(gsm8k_solutions_path: Path) -> None:
    raw = _jsonl_gz(gsm8k_solutions_path)
    assert {"question", "6b_finetuning"} <= set(raw[0])
    assert set(raw[0]["6b_finetuning"]) >= {"solution", "is_correct"}
    mapping = ColumnMapping.parse("prompt=question,response=6b_finetuning.solution,correct=6b_finetuning.is_correct")
    ds = read_mapped(gsm8k_solutions_path, mapping)
    assert len(ds.labels) == len(raw) == 1319
    assert len(ds.prompts) == 1319
    for label in ds.labels:
        record = raw[label.meta["row"] - 1]
        response = ds.responses[label.response_id]
        assert label.correct is record["6b_finetuning"]["is_correct"]
        assert response.text == record["6b_finetuning"]["solution"]
        assert ds.prompts[response.prompt_id].text == record["question"]
    assert sum(label.correct for label in ds.labels) == sum(r["6b_finetuning"]["is_correct"] for r in raw)
    assert 0 < sum(label.correct for label in ds.labels) < len(ds.labels)


def test_mapped_correctness_accepts_text_booleans(tmp_path: Path) -> None:
    path = tmp_path / "ok.tsv"
    path.write_text("q\tans\tok\nq1\tx\tTrue\nq2\ty\tno\nq3\tz\t1\n", encoding="utf-8")
    ds = read_mapped(path, ColumnMapping.parse("prompt=q,response=ans,correct=ok"))
    assert [label.correct for label in ds.labels] == [True, False, True]


# ---------------------------------------------------------------------------------------------- auto-detection
def test_load_feedback_detects_hh(hh_path: Path) -> None:
    assert detect_format(hh_path) == "hh"
    ds = load_feedback(hh_path, on_empty="skip")
    assert len(ds.comparisons) == HH_COMPARISONS
    with pytest.raises(DataError, match="row 87"):
        load_feedback(hh_path)


def test_load_feedback_detects_trl_and_rewardlab(hh_dataset: FeedbackDataset, tmp_path: Path) -> None:
    trl_path = tmp_path / "pairs.jsonl"
    write_trl(hh_dataset, trl_path)
    conv_path = tmp_path / "pairs_conv.jsonl"
    write_trl(hh_dataset, conv_path, conversational=True)
    implicit_path = tmp_path / "implicit.jsonl"
    implicit_path.write_text(
        json.dumps({
            "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "yes"}],
            "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "no"}],
        })
        + "\n",
        encoding="utf-8",
    )
    for path in (trl_path, conv_path, implicit_path):
        assert detect_format(path) == "trl"
    assert _triples(load_feedback(trl_path)) == _triples(hh_dataset)
    assert len(load_feedback(conv_path).comparisons) == HH_COMPARISONS
    assert len(load_feedback(implicit_path).comparisons) == 1

    native = write_parquet(hh_dataset, tmp_path / "native")
    assert detect_format(native) == "rewardlab"
    assert load_feedback(native).fingerprint() == hh_dataset.fingerprint()


def test_load_feedback_with_mapping_and_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("question,answer,score\nq1,a1,3\nq2,a2,4.5\n", encoding="utf-8")
    with pytest.raises(DataError, match="cannot tell the format") as info:
        load_feedback(path)
    assert "question, answer, score" in str(info.value)
    ds = load_feedback(path, mapping=ColumnMapping.parse("prompt=question,response=answer,rating=score"))
    assert [r.value for r in ds.ratings] == [3.0, 4.5]
    with pytest.raises(DataError, match="unknown format"):
        load_feedback(path, format="excel")
    with pytest.raises(DataError, match="needs a column mapping"):
        load_feedback(path, format="mapped")
    with pytest.raises(DataError, match="no manifest.json"):
        load_feedback(tmp_path)


# ---------------------------------------------------------------------------------------------- registry
def test_registry_demo_needs_no_shared_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(tmp_path / "nowhere"))
    ds = load_named("hh-harmless-demo")
    assert ds.name == "hh-harmless-demo"
    assert len(ds.comparisons) == HH_COMPARISONS
    assert len(ds.notes) == 1 and "(rows 87, 517, 926, 1104)" in ds.notes[0]
    assert len(load_named("hh-harmless-demo", limit=10).comparisons) == 10
    assert not REGISTRY["gsm8k-solutions"].available()
    with pytest.raises(DataError, match="REWARDLAB_DATA_DIR"):
        load_named("gsm8k-solutions")
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_named("nope")


def test_registry_demo_matches_the_shared_file(hh_dataset: FeedbackDataset) -> None:
    assert load_named("hh-harmless-demo").fingerprint() == hh_dataset.fingerprint()


def test_registry_shared_datasets(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (shared_data_dir / "gsm8k" / "example_model_solutions.jsonl.gz").exists():
        pytest.skip(f"gsm8k example solutions not found under {shared_data_dir}")
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(shared_data_dir))
    assert REGISTRY["gsm8k-solutions"].available()
    ds = load_named("gsm8k-solutions")
    assert ds.name == "gsm8k-solutions"
    assert len(ds.prompts) == 1319
    assert len(ds.labels) == 4 * 1319  # four model solutions per question
    sources = {ds.responses[label.response_id].source for label in ds.labels}
    assert sources <= {"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"}
    assert len(sources) == 4
    assert 0 < sum(label.correct for label in ds.labels) < len(ds.labels)
    small = load_named("gsm8k-solutions", limit=5)
    assert len(small.prompts) == 5 and len(small.labels) == 20
    if REGISTRY["alpaca-eval-ratings"].available():
        ratings = load_named("alpaca-eval-ratings", limit=100)
        assert len(ratings.ratings) == 100
