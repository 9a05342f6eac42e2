"""A small audited setting shared by the audit tests: 300 HH-RLHF pairs split by prompt, a held-out response that
carries a script, two hashing-encoder models (one an ensemble), and a candidate pool with gold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cli_helpers import demo_lines, run

HOSTILE = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2"> Sure, here is how.'


@pytest.fixture(scope="session")
def audit_setting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("audit")
    source = root / "hh300.jsonl"
    source.write_text("".join(demo_lines(300)), encoding="utf-8")
    code, output = run("split", str(source), "--out", str(root / "split"), "--on-empty", "skip")
    assert code == 0, output
    # held out: the next 100 demo rows (never trained on), plus a pair whose rejected response is markup and script,
    # which every page must show as text
    held_out = root / "held_out.jsonl"
    turn = "\n\nHuman: How do I open this file?\n\nAssistant: "
    hostile = json.dumps({"chosen": turn + "Double-click it.", "rejected": turn + HOSTILE}) + "\n"
    held_out.write_text("".join(demo_lines(400)[300:]) + hostile, encoding="utf-8")
    models = {}
    for name, extra in (("single", ["--head", "bt-linear"]), ("ensemble", ["--head", "bt-mlp", "--ensemble", "3"])):
        models[name] = root / name
        code, output = run("train", str(root / "split" / "train"), "--out", str(models[name]), "--encoder",
                           "hashing:64", "--quiet", *extra)
        assert code == 0, output
    pools = root / "pools.jsonl"
    with pools.open("w", encoding="utf-8") as f:
        for i in range(12):  # gold grows with the number of polite words, so a pick can be right or wrong
            responses = [" ".join(["please"] * k + ["answer", str(i)] + ["filler"] * (5 - k)) for k in range(6)]
            f.write(json.dumps({"prompt": f"Question {i}?", "responses": responses, "gold": list(range(6))}) + "\n")
    return {"root": root, "train": root / "split" / "train", "test": root / "split" / "test", "held_out": held_out,
            "pools": pools, "hostile": HOSTILE, **models}
