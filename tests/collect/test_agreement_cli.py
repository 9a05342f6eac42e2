"""`rewardlab agreement`: labels from any file (long or wide), rewardlab datasets, and two sources compared; on an
exported annotation project it reproduces `annotate stats` number for number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.collect.agreement import Judgement, agreement_summary
from rewardlab.collect.annotation_stats import read_labels
from rewardlab.collect.store import open_store
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.parquet import write_parquet
from rewardlab.data.types import Comparison

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    return " ".join(result.output.split())  # rich wraps long lines


PAYLOADS = {
    "pairwise": [(f"Q{i}", [f"yes {i}", f"no {i}"]) for i in range(10)],
    "rating": [(f"Q{i}", [f"answer {i}"]) for i in range(10)],
    "binary": [(f"Q{i}", [f"answer {i}"]) for i in range(10)],
    "ranking": [(f"Q{i}", [f"r{i}a", f"r{i}b", f"r{i}c"]) for i in range(6)],
    "steps": [(f"Q{i}", [f"Step one {i}.\nStep two {i}.\nStep three {i}."]) for i in range(6)],
}


def value(task: str, who: int, k: int, assignment: dict[str, Any]) -> dict[str, Any]:
    """Labels that mostly agree, with a few disagreements; annotator 2 is careless and 3 prefers the left one."""
    if task == "pairwise":
        if who == 3:
            return {"choice": "a" if assignment["responses"][0]["index"] == 0 else "b"}
        return {"choice": "tie" if (k + who) % 7 == 0 else ("b" if who == 2 and k % 2 else "a")}
    if task == "rating":
        return {"score": 1 + (k + (who == 2) * (k % 3)) % 5}
    if task == "binary":
        return {"correct": (k % 3 != 0) != (who == 2 and k % 2 == 1)}
    if task == "ranking":
        return {"order": [2, 0, 1] if who == 2 and k % 2 else [0, 1, 2]}
    return {"steps": [1, 0 if who == 2 else 1, -1 if k % 2 else 1]}


def labelled_project(tmp_path: Path, task: str) -> tuple[str, str]:
    """A project of ``task`` labelled by four annotators (overlap 3), exported; returns (db, export dir)."""
    db = str(tmp_path / "labels.db")
    store = open_store(db)
    tokens = [store.create_user(f"ann{i}") for i in range(4)]
    config = {"scale": [1, 5]} if task == "rating" else {}
    project_id = store.create_project("p", task, "", 3, config)
    for i in range(4):
        store.add_member(project_id, f"ann{i}")
    store.import_items(project_id, [(f"item{i}", {"prompt": p, "responses": r})
                                    for i, (p, r) in enumerate(PAYLOADS[task])])
    for who in (3, 0, 1, 2):  # the left-picker labels first, so it gets every item
        user = store.user_by_token(tokens[who])
        assert user is not None
        k = 0
        while (a := store.next_assignment(project_id, user, seed=who * 100 + k)) is not None:
            store.submit(a["assignment_id"], user, value(task, who, int(a["item"][4:]), a), seconds=2.0)
            k += 1
    export = tmp_path / "export"
    run("annotate", "export", "--project", "p", "--out", str(export), "--db", db)
    return db, str(export)


@pytest.mark.parametrize("task", sorted(PAYLOADS))
def test_an_exported_project_gets_the_services_statistics(task: str, tmp_path: Path) -> None:
    db, export = labelled_project(tmp_path, task)
    service = json.loads(run("annotate", "stats", "--project", "p", "--db", db, "--json", "--resamples", "200"))
    ours = json.loads(run("agreement", export, "--json", "--resamples", "200"))
    assert "agreement" in service, service
    for key in ("task_type", "labels", "items_labelled", "agreement", "position_bias_left_wins", "ties"):
        assert ours.get(key) == service.get(key), key
    for who, entry in service["per_annotator"].items():
        assert ours["per_annotator"][who]["labels"] == entry["labels"]
        assert ours["per_annotator"][who]["agreement_with_others"] == entry["agreement_with_others"]
    if task == "pairwise":  # ann3 always picks the left response: the bias shows
        assert service["position_bias_left_wins"]["value"] > 0.5
        assert service["ties"] > 0


HAND = {0: "aaaa", 1: "aaaa", 2: "abab"}  # the service test's hand-computed case: α = −0.1


def test_long_and_wide_files_give_the_hand_computed_alpha(tmp_path: Path) -> None:
    long = tmp_path / "long.csv"
    long.write_text("pair,worker,choice,left\n" + "".join(
        f"q{i},w{who},{choices[i]},{'ab' if (i + who) % 2 else 'ba'}\n"
        for who, choices in HAND.items() for i in range(4)), encoding="utf-8")
    result = json.loads(run("agreement", str(long), "--map", "item=pair,annotator=worker,label=choice,order=left",
                            "--json", "--resamples", "100"))
    assert result["agreement"]["alpha"]["value"] == pytest.approx(-0.1)
    assert result["agreement"]["alpha_level"] == "ordinal" and result["task_type"] == "pairwise"
    assert result["per_annotator"]["w2"]["agreement_with_others"]["value"] == pytest.approx(0.5)
    assert result["position_bias_left_wins"]["n"] == 12
    wide = tmp_path / "wide.jsonl"
    wide.write_text("".join(json.dumps({"id": f"q{i}", **{f"w{who}": HAND[who][i] for who in HAND}}) + "\n"
                            for i in range(4)), encoding="utf-8")
    for spec in ("item=id,annotators=w0+w1+w2", "item=id,annotators=*"):
        again = json.loads(run("agreement", str(wide), "--map", spec, "--json", "--resamples", "100"))
        assert again["agreement"] == result["agreement"]
    assert "Krippendorff's α (ordinal): -0.100" in run("agreement", str(wide), "--map", "item=id,annotators=*",
                                                       "--resamples", "100")


def test_numbers_missing_cells_and_levels(tmp_path: Path) -> None:
    wide = tmp_path / "scores.csv"
    wide.write_text("id,x,y,z\n1,1,1,2\n2,3,3,\n3,5,4,5\n4,2,2,2\n", encoding="utf-8")
    for level in ("nominal", "ordinal", "interval"):
        result = json.loads(run("agreement", str(wide), "--map", "item=id,annotators=*", "--level", level, "--json",
                                "--resamples", "50"))
        expected = agreement_summary([Judgement(i, w, float(v)) for i, row in
                                      {"1": "112", "2": "33-", "3": "545", "4": "222"}.items()
                                      for w, v in zip("xyz", row) if v != "-"], level, n_resamples=50)
        assert result["agreement"]["alpha"] == pytest.approx(expected["alpha"])
        assert result["labels"] == 11 and result["items_labelled"] == 4
    categories = tmp_path / "cats.jsonl"
    categories.write_text("".join(json.dumps({"i": i, "who": w, "tag": t}) + "\n"
                                  for i, w, t in [(1, "u", "spam"), (1, "v", "spam"), (2, "u", "ham"), (2, "v", "spam")]))
    result = json.loads(run("agreement", str(categories), "--map", "item=i,annotator=who,label=tag", "--json"))
    assert result["agreement"]["alpha_level"] == "nominal"
    assert "needs numbers or a/b/tie labels" in fails("agreement", str(categories), "--map",
                                                      "item=i,annotator=who,label=tag", "--level", "ordinal")


def test_bad_label_files_are_one_clear_error(tmp_path: Path) -> None:
    twice = tmp_path / "twice.csv"
    twice.write_text("item,who,label\n1,u,a\n1,u,b\n", encoding="utf-8")
    assert "row 2: annotator 'u' labels item '1' a second time (first in row 1)" in fails(
        "agreement", str(twice), "--map", "item=item,annotator=who,label=label")
    assert "annotator=<column>,label=<column>" in fails("agreement", str(twice), "--map", "item=item,annotator=who")
    assert "unknown mapping field 'lable'" in fails("agreement", str(twice), "--map", "item=item,lable=x")
    assert "field 'wh0': missing field" in fails("agreement", str(twice), "--map", "item=item,annotator=wh0,label=label")
    order = tmp_path / "order.csv"
    order.write_text("item,who,label,left\n1,u,a,up\n", encoding="utf-8")
    assert "row 1, field 'left': cannot read 'up'" in fails("agreement", str(order), "--map",
                                                          "item=item,annotator=who,label=label,order=left")


def pairs_dataset(name: str, outcomes: list[str], annotator: str, flip: set[int] = frozenset()) -> FeedbackDataset:  # type: ignore[assignment]
    dataset = FeedbackDataset(name)
    for i, outcome in enumerate(outcomes):
        pid = dataset.add_prompt(f"Q{i}")
        a, b = dataset.add_response(pid, f"first {i}"), dataset.add_response(pid, f"second {i}")
        if i in flip:  # the same pair the other way round: a win for a is a win for b
            a, b, outcome = b, a, {"a": "b", "b": "a", "tie": "tie"}[outcome]
        dataset.add(Comparison(pid, a, b, outcome, annotator_id=annotator))  # type: ignore[arg-type]
    return dataset


def test_against_compares_two_sources_on_the_same_pairs(tmp_path: Path) -> None:
    humans = write_parquet(pairs_dataset("humans", list("aabbaabbab"), "human"), tmp_path / "humans")
    judge = write_parquet(pairs_dataset("judge", ["a", "a", "b", "a", "tie", "a", "b", "b", "a", "b"], "judge:m",
                                        flip={1, 2, 7}), tmp_path / "judge")
    result = json.loads(run("agreement", str(judge), "--against", str(humans), "--json", "--resamples", "100"))
    against = result["against"]
    assert against["items_shared"] == 10 and against["no_majority"] == 0
    assert against["agreement"]["value"] == pytest.approx(8 / 10)  # item 3 disagrees, item 4 is a judge tie
    assert against["per_annotator"]["judge:m"]["value"] == pytest.approx(0.8)
    assert -1 <= against["alpha"]["value"] <= 1
    text = run("agreement", str(judge), "--against", str(humans), "--resamples", "50")
    assert "same consensus label: 0.800" in text
    labels = read_labels(str(judge))
    assert labels.kind == "pairwise" and labels.ties == 1
