"""The fine-grained study's fits as Ray tasks (`experiment fine-grained --ray`, `run_study(ray=...)`): every seed ×
fold of the cross-validation and every fold of the span section, with the same record as the serial run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from cli_helpers import run  # noqa: E402
from rewardlab.data.objectives_qa import default_path  # noqa: E402
from rewardlab.data.spans import SpanRow, split_spans  # noqa: E402
from rewardlab.embed.hashing import HashingEncoder  # noqa: E402
from rewardlab.rewards import span_rewards  # noqa: E402
from rewardlab.rewards.span_config import CONTEXT_MODES  # noqa: E402
from rewardlab.studies.fine_grained import make_config, run_study  # noqa: E402
from rewardlab.studies.fine_grained_spans import span_texts  # noqa: E402


def _numbers(record: dict[str, Any]) -> str:
    """The record as JSON text without its times."""
    kept = {k: v for k, v in record.items() if k != "timing"}
    kept["spans"] = {k: v for k, v in record["spans"].items() if k != "seconds"}
    return json.dumps(kept, sort_keys=True, default=str)


@pytest.mark.skipif(not default_path().exists(), reason=f"QA-Feedback is not at {default_path()}")
def test_the_study_on_ray_gives_the_serial_record(local_ray, tmp_path: Path) -> None:
    lines: list[str] = []
    serial = run_study(make_config({"limit": 12, "encoder": "hashing:32", "folds": 2, "seeds": (0, 1),
                                    "n_resamples": 100}), str(tmp_path / "serial-cache"), log=lines.append)
    assert [line for line in lines if line.startswith("seed")] == [
        "seed 0, fold 1/2 done", "seed 0, fold 2/2 done", "seed 1, fold 1/2 done", "seed 1, fold 2/2 done"]
    assert [entry["seed"] for entry in serial["training"]] == [0, 0, 1, 1]
    code, output = run("experiment", "fine-grained", "--limit", "12", "--encoder", "hashing:32", "--folds", "2",
                       "--seeds", "0,1", "--resamples", "100", "--cache-dir", str(tmp_path / "ray-cache"), "--out",
                       str(tmp_path / "report"), "--ray", "local", "--quiet")
    assert code == 0, output
    on_ray = json.loads((tmp_path / "report" / "results.json").read_text())
    assert _numbers(on_ray) == _numbers(json.loads(_numbers(serial)))


@pytest.mark.parametrize("context", list(CONTEXT_MODES))
def test_the_span_texts_sent_to_ray_are_the_ones_span_features_embeds(context: str, monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    """`span_texts` mirrors `span_features`' views: what --ray embeds first is exactly what the features then read."""
    answer = "Paris is the capital. It has 2 million people, and it sits on the Seine."
    spans = [SpanRow("0", "What is the capital of France?", answer, a, b, kind, 0)
             for kind, by in (("relevance", "clause"), ("factuality", "sentence")) for a, b in split_spans(answer, by)]
    embedded: list[str] = []
    real = span_rewards.embed_unique

    def recording(texts: list[str], *args: Any, **kwargs: Any) -> Any:
        embedded.extend(texts)
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(span_rewards, "embed_unique", recording)
    span_rewards.span_features([r.prompt for r in spans], [r.response for r in spans], [(r.start, r.end) for r in spans],
                               HashingEncoder(16), context, cache_dir=tmp_path)
    assert span_texts(spans, context) == embedded
