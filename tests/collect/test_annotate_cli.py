"""`rewardlab annotate` from the shell: users, project, import, labels, stats, export, train."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.collect.store import open_store
from rewardlab.data.parquet import read_parquet

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_annotate_commands_end_to_end(tmp_path: Path) -> None:
    db = str(tmp_path / "labels.db")
    assert "created" in run("annotate", "init", "--db", db)
    assert "up to date" in run("annotate", "init", "--db", db)
    run("annotate", "user", "alice", "--role", "admin", "--db", db)
    tokens = [run("annotate", "user", name, "--db", db).strip() for name in ("bob", "carol")]
    run("annotate", "project", "p", "--task", "pairwise", "--overlap", "2", "--members", "bob,carol", "--db", db)
    sets = tmp_path / "sets.jsonl"
    sets.write_text("\n".join(json.dumps({"prompt": f"Q{i}", "responses": [f"yes {i}", f"no {i}"]}) for i in range(8)))
    assert "8 items added" in run("annotate", "import", str(sets), "--project", "p", "--db", db)
    store = open_store(db)
    project_id = store.project_id("p")
    for token, choice in zip(tokens, ("a", "a")):
        user = store.user_by_token(token)
        while (a := store.next_assignment(project_id, user)) is not None:
            store.submit(a["assignment_id"], user, {"choice": choice})
    stats = json.loads(run("annotate", "stats", "--project", "p", "--db", db, "--json", "--resamples", "50"))
    assert stats["labels"] == 16 and stats["per_annotator"]["bob"]["labels"] == 8
    assert "left response preferred" in run("annotate", "stats", "--project", "p", "--db", db, "--resamples", "50")
    assert "16 feedback rows from 2 annotators" in run("annotate", "export", "--project", "p", "--out",
                                                       str(tmp_path / "export"), "--db", db)
    assert read_parquet(tmp_path / "export").annotators() == {"bob": 8, "carol": 8}
    run("train", str(tmp_path / "export"), "--out", str(tmp_path / "model"), "--encoder", "hashing:64", "--quiet")


def test_annotate_errors_are_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "labels.db")
    result = runner.invoke(app, ["annotate", "import", str(tmp_path / "x.jsonl"), "--project", "nope", "--db", db])
    assert result.exit_code == 2 and "no project 'nope'" in result.output
    result = runner.invoke(app, ["annotate", "project", "p", "--task", "essay", "--db", db])
    assert result.exit_code == 2 and "unknown task type" in result.output


def test_an_overlap_larger_than_the_team_warns(tmp_path: Path) -> None:
    db = str(tmp_path / "labels.db")
    for name in ("bob", "carol", "dan"):
        run("annotate", "user", name, "--db", db)
    output = run("annotate", "project", "p", "--task", "pairwise", "--overlap", "3", "--members", "bob", "--db", db)
    assert "warning: project 'p' asks for 3 distinct annotators per item (--overlap) but has 1 member (bob)" in output
    assert "until 2 more join" in output
    assert "has 2 members (bob, carol)" in run("annotate", "member", "carol", "--project", "p", "--db", db)
    assert "warning" not in run("annotate", "member", "dan", "--project", "p", "--db", db)
    assert "warning" not in run("annotate", "project", "q", "--task", "binary", "--members", "bob", "--db", db)


def test_stats_say_why_agreement_is_missing(tmp_path: Path) -> None:
    db = str(tmp_path / "labels.db")
    tokens = [run("annotate", "user", name, "--db", db).strip() for name in ("bob", "carol")]
    sets = tmp_path / "sets.jsonl"
    sets.write_text("\n".join(json.dumps({"prompt": f"Q{i}", "responses": [f"yes {i}", f"no {i}"]}) for i in range(4)))
    for project, overlap in (("single", "1"), ("double", "2")):
        run("annotate", "project", project, "--task", "pairwise", "--overlap", overlap, "--members", "bob,carol",
            "--db", db)
        run("annotate", "import", str(sets), "--project", project, "--db", db)
    stats = ["annotate", "stats", "--db", db, "--resamples", "20", "--project"]
    assert "α and κ need items labelled by two or more annotators; no labels yet" in run(*stats, "single")
    store = open_store(db)
    for project in ("single", "double"):
        for token in tokens:
            user = store.user_by_token(token)
            while (a := store.next_assignment(store.project_id(project), user)) is not None:
                store.submit(a["assignment_id"], user, {"choice": "a"})
    single = run(*stats, "single")
    assert "every item has one label so far (overlap 1: each item goes to one annotator" in single
    double = run(*stats, "double")  # everyone chose "a": no disagreement, so α and κ are undefined, and say so
    assert "Krippendorff's α (nominal): undefined: every label on items labelled twice has the same value" in double
    assert "Fleiss' κ: undefined" in double
