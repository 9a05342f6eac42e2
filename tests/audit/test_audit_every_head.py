"""The card renders for every registered head kind (whatever feedback it learns from) and for an ensemble: each is
trained on a small dataset that carries comparisons, rankings, ratings and labels of the same HH-RLHF pairs, then
audited on held-out pairs, and the card is rendered to HTML and Markdown."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rewardlab.audit import AuditSettings, build_card, run_audit
from rewardlab.data import demo_path
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison, Label, Ranking, Rating
from rewardlab.report import render_html, render_markdown
from rewardlab.rewards.heads import HEAD_KINDS
from rewardlab.rewards.model import RewardModel

SETTINGS = AuditSettings(probes=("padding", "off-topic"), probe_items=10, n_resamples=200)
#: a fixed K and one EM start: choosing K by held-out likelihood is the mixture's own tests' business, not the card's
PARAMS = {"bt-mixture": {"k": 2, "n_init": 1}}


def every_feedback(start: int, count: int, name: str) -> FeedbackDataset:
    """HH-RLHF pairs as every feedback kind: a comparison, a 2-item ranking, ratings 1/0, labels correct/incorrect."""
    data = FeedbackDataset(name)
    with gzip.open(demo_path(), "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle][start:start + count]
    for row in rows:
        prompt, _, chosen = row["chosen"].rpartition("\n\nAssistant:")
        rejected = row["rejected"].rpartition("\n\nAssistant:")[2]
        if not chosen.strip() or not rejected.strip() or chosen == rejected:
            continue
        pid = data.add_prompt(prompt.strip())
        good, bad = data.add_response(pid, chosen.strip()), data.add_response(pid, rejected.strip())
        data.add(Comparison(pid, good, bad, "a", annotator_id=f"ann{len(data.comparisons) % 3}"))
        data.add(Ranking(pid, (good, bad)))
        for rid, value in ((good, 1.0), (bad, 0.0)):
            data.add(Rating(rid, value, (0.0, 1.0)))
            data.add(Label(rid, bool(value)))
    return data


@pytest.fixture(scope="module")
def data() -> tuple[FeedbackDataset, FeedbackDataset]:
    return every_feedback(0, 160, "every-feedback-train"), every_feedback(400, 60, "every-feedback-test")


@pytest.mark.parametrize("kind", [*HEAD_KINDS, "bt-linear ×3"])
def test_every_head_kind_gets_a_card(kind: str, data: tuple[FeedbackDataset, FeedbackDataset], tmp_path: Path) -> None:
    train, test = data
    name, _, ensemble = kind.partition(" ×")
    model = RewardModel.create(name, encoder="hashing:64", ensemble=int(ensemble or 0), **PARAMS.get(name, {})).fit(train)
    model_dir = model.save(tmp_path / "model")
    run = run_audit(model_dir, RewardModel.load(model_dir), test, SETTINGS)
    record = json.loads(json.dumps(run.record))  # what audit.json holds
    assert record["model"]["config"]["kind"] == name and record["accuracy"]["metrics"]["accuracy"]["n"] == 60
    assert record["held_out"]["same_as_training"] is False
    assert (record["risk"]["disagreement"] is not None) == bool(ensemble)
    card = build_card(record)
    html, markdown = render_html(card), render_markdown(card)
    for title in ("At a glance", "Card", "Bias probes", "Examples"):
        assert f">{title}</h2>" in html and f"## {title}" in markdown
