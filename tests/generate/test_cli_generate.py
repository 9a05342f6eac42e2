"""`rewardlab generate run`: prompts in, candidate JSONL out, readable by `read_candidates_jsonl`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.data.candidates import read_candidates_jsonl

runner = CliRunner()


def test_run_writes_candidate_sets(tiny_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello there\nWhat is the capital of France?\nWrite a poem\n", encoding="utf-8")
    out = tmp_path / "out" / "candidates.jsonl"
    args = ["generate", "run", str(prompts), "--n", "3", "--out", str(out), "--model", str(tiny_model),
            "--max-new-tokens", "6", "--batch-size", "2", "--seed", "5", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    sets = read_candidates_jsonl(out)
    assert [s.prompt for s in sets] == ["hello there", "What is the capital of France?", "Write a poem"]
    assert all(len(s) == 3 and s.sources == (f"local:{tiny_model.name}",) * 3 for s in sets)
    record = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert record["generation"]["seed"] == 5 and record["generation"]["n"] == 3
    first = out.read_bytes()
    assert runner.invoke(app, args).exit_code == 0
    assert out.read_bytes() == first  # same seed, same file


def test_run_against_a_server_reads_jsonl_prompts(tiny_server: str, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": p, "id": i}) for i, p in enumerate(["one", "two"])) + "\n",
                       encoding="utf-8")
    out = tmp_path / "candidates.jsonl"
    result = runner.invoke(app, ["generate", "run", str(prompts), "--n", "2", "--out", str(out), "--base-url", tiny_server,
                                 "--model-name", "tiny", "--max-new-tokens", "4", "--system", "Be brief.", "--quiet"])
    assert result.exit_code == 0, result.output
    sets = read_candidates_jsonl(out)
    assert [(s.prompt, len(s), s.sources) for s in sets] == [("one", 2, ("openai:tiny",) * 2),
                                                            ("two", 2, ("openai:tiny",) * 2)]


def test_run_rejects_mixed_sources(tiny_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hi\n", encoding="utf-8")
    result = runner.invoke(app, ["generate", "run", str(prompts), "--model", str(tiny_model),
                                 "--base-url", "http://127.0.0.1:9/v1", "--model-name", "x"])
    assert result.exit_code == 2 and "not both" in " ".join(result.output.split())  # rich wraps lines
