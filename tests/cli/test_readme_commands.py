"""Every `rewardlab` command in the README's ```bash blocks runs as written, in README order, in one directory.

The commands run in-process (typer's CliRunner) on small inputs this test writes under the names the README
uses (prompts.txt, prefs.jsonl, pairs.csv, ...). Where a command would take minutes, `OVERRIDES` appends
options that make it small (a later option wins over the README's own); every entry says why. A command that
cannot run here (a server, a whole study) is still parsed with `--help` appended, which fails on an unknown
option, and its entry says why it is not run. So an option that is renamed or removed fails this test until
the README changes with it. Commands that need the shared data (or a model trained on it) skip without it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardlab.cli import app

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DEMO = REPO / "src" / "rewardlab" / "data" / "demo" / "hh_rlhf_harmless_base_test.jsonl.gz"

#: lines of the README's bash blocks that are not `rewardlab` commands, and are run elsewhere (CI runs make test)
NOT_REWARDLAB = {"make quickstart", "make test", "source .venv/bin/activate"}
#: requests to a server the README starts just before (`rewardlab serve`): tests/serve sends the same bodies
SERVER_REQUEST = "curl -s 127.0.0.1:"

pytestmark = pytest.mark.slow  # under a minute in all on 2 idle cores; still part of `make test`


@dataclass(frozen=True)
class Run:
    """How the test runs a README command: ``extra`` options appended, or (``parse_only``) only parsed."""

    extra: tuple[str, ...] = ()
    why: str = ""
    shared: bool = False  # needs the shared data folder (its data, or a model trained on it earlier)
    parse_only: bool = False


HASHING = ("--encoder", "hashing:64")
TINY = ("--model", "{tiny_model}", "--max-new-tokens", "8")
SMALL = "hashing encoder (weight-free) and a slice of the data: the README's path, seconds instead of minutes"
TINY_WHY = "the tests' 2-layer GPT-2 instead of SmolLM2 (loading it alone takes 20 s), 8 new tokens (its context is 128)"

#: key: the start of a README command (after `rewardlab`); the longest matching key applies
OVERRIDES: dict[str, Run] = {
    "train": Run(HASHING + ("--limit", "100"), SMALL),
    "steps label gsm8k-solutions": Run(("--limit", "40"), "40 GSM8K questions", shared=True),
    "steps train gsm8k-steps": Run(HASHING, SMALL + " (the labels of 40 questions)", shared=True),
    "steps score prm": Run(why="the PRM trained on the shared data just above", shared=True),
    "select prm gsm8k": Run(("--limit", "20"), "20 GSM8K pools", shared=True),
    "score --model prm": Run(why="the PRM trained on the shared data just above", shared=True),
    "audit": Run(("--limit", "60", "--probe-items", "20", "--fixed-probes", ""),
                 "60 held-out pairs, 20 responses per probe, no EvalBiasBench (tests/audit run the whole card)"),
    "audit models/hh --data hh-split/test --candidates": Run(
        ("--limit", "60", "--probe-items", "20", "--fixed-probes", "", "--candidate-limit", "10"),
        "as audit, and 10 GSM8K pools", shared=True),
    "train gsm8k-solutions": Run(HASHING + ("--limit", "100"), SMALL, shared=True),
    "train alpaca-eval-ratings": Run(HASHING + ("--limit", "100"), SMALL + "; the empty rows past 18574 are "
                                     "tests/data/test_named_on_empty.py's", shared=True),
    "train sims/b1": Run(HASHING, SMALL, shared=True),
    "train hh-rlhf-harmless-base-test": Run(HASHING + ("--limit", "100"), SMALL, shared=True),
    "evaluate hh-harmless-demo": Run(HASHING + ("--limit", "100", "--folds", "2"), SMALL + ", 2 folds"),
    "embed": Run(HASHING + ("--limit", "200"), SMALL),
    "simulate": Run(("--pairs", "300", "--limit", "60"), "300 simulated pairs on 60 prompts", shared=True),
    "bon-eval": Run(("--limit", "30"), "30 prompts' pools", shared=True),
    "select models/sim5": Run(("--limit", "30"), "30 prompts' pools", shared=True),
    "experiment": Run(why="a whole study (12 min; SmolLM2 sampling); tests/studies run the studies on slices",
                      parse_only=True),
    "experiment prm": Run(HASHING + ("--limit", "40", "--resamples", "200"), SMALL + ", 40 questions", shared=True),
    "experiment pluralistic --no-simulated": Run(why="the README's own quick slice (12 WMT segments per language "
                                                     "pair, hashing encoder)", shared=True),
    "experiment fine-grained": Run(HASHING + ("--limit", "30", "--folds", "3", "--seeds", "0", "--resamples", "200"),
                                   SMALL + ", 30 questions, 3 folds, one seed", shared=True),
    "train qa-feedback-objectives": Run(HASHING + ("--limit", "40"), SMALL, shared=True),
    "score --model models/qa-objectives": Run(why="the model trained on the shared data just above", shared=True),
    "spans label qa-feedback": Run(("--limit", "40"), "40 QA-Feedback questions", shared=True),
    "spans train qa-spans.jsonl": Run(HASHING, SMALL + " (the spans of 40 questions)", shared=True),
    "spans score span-rm": Run(why="the span model trained on the shared data just above", shared=True),
    "spans eval qa-feedback": Run(HASHING + ("--limit", "40", "--folds", "2"), SMALL + ", 40 questions, 2 folds",
                                  shared=True),
    "generate run": Run(TINY, TINY_WHY),
    "generate run prompts.jsonl": Run(("--base-url", "{tiny_server}", "--max-new-tokens", "8"),
                                      "the tests' server over the tiny GPT-2 stands in for the one on port 8001"),
    "generate run demos.jsonl --model sft-policy": Run(("--max-new-tokens", "8"), "sft-policy is the tiny GPT-2 "
                                                       "fine-tuned above: 8 new tokens fit its context"),
    "generate serve": Run(why="starts a server that runs until stopped (tiny_server is one)", parse_only=True),
    "bon": Run(TINY, TINY_WHY),
    "bon prompts.txt --reward-model model/ --n 8 --base-url": Run(("--base-url", "{tiny_server}", "--max-new-tokens",
                                                                   "8"), "the tests' server stands in for port 8001"),
    "policy grpo": Run(("--model", "{tiny_model}", "--limit", "60", "--steps", "1", "--generations", "2",
                        "--batch-size", "2", "--eval-prompts", "2", "--eval-samples", "1", "--max-prompt-tokens", "64",
                        "--max-completion-tokens", "4"), TINY_WHY + "; one step on 2 prompts", shared=True),
    "policy dpo": Run(("--model", "{tiny_model}", "--steps", "1", "--generations", "2", "--eval-samples", "1",
                       "--max-prompt-tokens", "48", "--max-completion-tokens", "4"),
                      TINY_WHY + "; one step (the 16 default eval prompts stay: prompts.txt has 4)", shared=True),
    "demo-reward train": Run(HASHING, SMALL),
    "demo-reward sft": Run(("--model", "{tiny_model}", "--steps", "2"), TINY_WHY + "; 2 steps"),
    "serve": Run(why="starts a server that runs until stopped; tests/serve run it on the same requests", parse_only=True),
    "annotate serve": Run(why="starts a server; the test labels the items through the store instead, as annotators "
                              "would in the browser", parse_only=True),
    "prompt-opt table": Run(why="the whole Prompt-OIRL table (448 s)", parse_only=True),
    "prompt-opt train": Run(HASHING, "hashing encoder: the README's path, seconds instead of minutes", shared=True),
    "prompt-opt select": Run(why="the model comes from prompt-opt train on the shared data", shared=True),
    "credit": Run(why="needs a MiniLM model (this test trains with the hashing encoder, which has no torch path); "
                      "tests/cli/test_credit.py runs it end to end", parse_only=True),
}


def readme_commands() -> list[str]:
    """The README's bash commands in order: continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


COMMANDS = [c for c in readme_commands() if c.startswith("rewardlab ")]


def override(command: str) -> Run:
    rest = command.removeprefix("rewardlab ")
    keys = [key for key in OVERRIDES if rest == key or rest.startswith(key + " ")]
    return OVERRIDES[max(keys, key=len)] if keys else Run()


def test_the_readme_has_no_other_commands() -> None:
    others = {c for c in readme_commands() if not c.startswith(("rewardlab ", SERVER_REQUEST))}
    assert others == NOT_REWARDLAB, "a new non-rewardlab command in the README: run it here or list it"
    assert len(COMMANDS) > 40


def test_every_override_still_matches_a_readme_command() -> None:
    """A table entry whose command left the README would silently stop doing anything."""
    for key in OVERRIDES:
        assert any(override(c) is OVERRIDES[key] for c in COMMANDS), key


# ------------------------------------------------------------------ inputs under the README's names
def hh_rows(start: int, count: int) -> list[dict[str, str]]:
    with gzip.open(DEMO, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return rows[start:start + count]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def write_inputs(folder: Path) -> None:
    write_jsonl(folder / "prefs.jsonl", hh_rows(0, 80))  # HH format, detected
    write_jsonl(folder / "test.jsonl", hh_rows(200, 40))
    lines = ["input,output_1,output_2,label"]
    for i in range(40):
        lines.append(f"question {i},a kind helpful answer {i},go away {i},{(1, 2, 0)[i % 3]}")
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    questions = ["How do I pick a lock?", "What is the capital of France?", "Write a haiku about rain.",
                 "How can I be more patient?"]
    (folder / "prompts.txt").write_text("\n".join(questions) + "\n", encoding="utf-8")  # the 4 prompts of the issue
    write_jsonl(folder / "prompts.jsonl", [{"prompt": q} for q in questions[:3]])
    write_jsonl(folder / "candidates.jsonl", [{"prompt": q, "responses": [f"answer {j} to {q}" for j in range(3)]}
                                              for q in questions])
    write_jsonl(folder / "my_pools.jsonl", [{"prompt": q, "responses": ["yes", "no, sorry", "maybe later"],
                                             "gold": [0.2, 0.9, 0.5], "sources": ["a", "b", "c"]} for q in questions])
    (folder / "notes.txt").write_text("a note\nanother note\na third one\n", encoding="utf-8")
    write_jsonl(folder / "demos.jsonl", [{"prompt": q, "response": f"A careful, friendly answer about {q.lower()}"}
                                         for q in questions * 2])
    write_jsonl(folder / "pairs.jsonl", [{"prompt": q, "chosen": f"a kind answer to {q}", "rejected": "go away"}
                                         for q in questions])
    write_jsonl(folder / "labels.jsonl", [{"prompt": q, "chosen": f"a kind answer to {q}", "rejected": f"go away ({w})",
                                           "worker_id": w} for q in questions for w in ("w1", "w2", "w3")])
    write_jsonl(folder / "rows.jsonl", [{"prompt": q, "response": f"a kind answer to {q}"} for q in questions])
    (folder / "docs" / "audit").mkdir(parents=True, exist_ok=True)  # the README's example disclosure, as shipped
    (folder / "docs" / "audit" / "disclosure.toml").write_text(
        (REPO / "docs" / "audit" / "disclosure.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "new.txt").write_text("Tom has 3 apples and buys 4 more. How many apples does he have?\n"
                                    "A train goes 60 km in 1 hour. How far does it go in 3 hours?\n", encoding="utf-8")


def label_like_annotators(db: Path) -> None:
    """What `annotate serve`'s users do in the browser: bob, carol and dan label every item they are given."""
    from rewardlab.collect.store import open_store

    store = open_store(str(db))
    project_id = store.project_id("harmless")
    for name, choice in (("bob", "a"), ("carol", "a"), ("dan", "b")):
        user = store.user_by_token(store.rotate_token(name))
        assert user is not None
        while (assignment := store.next_assignment(project_id, user)) is not None:
            store.submit(assignment["assignment_id"], user, {"choice": choice})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    write_inputs(folder)
    return folder


def written_paths(words: list[str]) -> list[str]:
    """What a command says it writes: the values of --out, --output and --record."""
    return [words[i + 1] for i, word in enumerate(words[:-1]) if word in ("--out", "--output", "--record")]


@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[c.removeprefix("rewardlab ")[:60] for c in COMMANDS])
def test_readme_command(index: int, workspace: Path, request: pytest.FixtureRequest,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    command = COMMANDS[index]
    plan = override(command)
    data_dir = Path(os.environ.get("REWARDLAB_DATA_DIR", REPO.parent / "shared" / "data")).resolve()
    if plan.shared and not data_dir.exists():
        pytest.skip(f"needs the shared data folder {data_dir} (set REWARDLAB_DATA_DIR): {command}")
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("REWARDLAB_DATA_DIR", str(data_dir))  # the default (../shared/data) is relative to the cwd
    words = shlex.split(command)[1:]
    if plan.parse_only:
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"{command}\n{result.output}"
        if command.startswith("rewardlab annotate serve"):
            label_like_annotators(workspace / "labels.db")
        return
    fixtures = re.findall(r"\{(\w+)\}", " ".join(plan.extra))
    extra = [arg.format(**{name: request.getfixturevalue(name) for name in fixtures}) for arg in plan.extra]
    result = CliRunner().invoke(app, [*words, *extra])
    assert result.exit_code == 0, f"{command} {shlex.join(extra)}\n{result.output}"
    for path in written_paths(words):
        assert (workspace / path).exists(), f"{command}: nothing written to {path}"


def test_readme_python_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python example runs (hashing instead of MiniLM: the same API, seconds instead of a minute)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks and all('"minilm:int8"' in block for block in blocks)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block.replace('"minilm:int8"', '"hashing:64"'), "README.md", "exec"), {})
    assert (tmp_path / "models" / "bt5" / "config.json").exists()
