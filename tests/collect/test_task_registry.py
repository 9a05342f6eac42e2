"""A new annotation task type is one class plus one registration: the store, import, export and statistics
pick it up without an edit (the web app needs its renderer, which these API-level tests do not use)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rewardlab.collect.annotation_stats import project_stats
from rewardlab.collect.export import export_project
from rewardlab.collect.items import items_from_file
from rewardlab.collect.server import create_app
from rewardlab.collect.store import StoreError, open_store
from rewardlab.collect.tasks import TASK_TYPES, LabelError, TaskType, check_item, register_task_type
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Label


class ThumbsTask(TaskType):
    """Toy: thumbs up/down on each response, exported as correctness labels, with a configurable threshold."""

    name = "thumbs"
    agreement_level = "nominal"

    def check_config(self, config: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(config.setdefault("emoji", True), bool):
            raise LabelError("emoji must be true or false")
        return config

    def check_label(self, config: dict[str, Any], item: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
        if value.get("thumb") not in ("up", "down"):
            raise LabelError("field 'value.thumb': must be 'up' or 'down'")
        return {"thumb": value["thumb"]}

    def agreement_units(self, value: dict[str, Any]) -> list[tuple[str, float | str]]:
        return [("", value["thumb"])]

    def add_feedback(self, dataset: FeedbackDataset, payload: dict[str, Any], value: dict[str, Any],
                     config: dict[str, Any], prompt_id: str, response_ids: list[str], who: str | None,
                     meta: dict[str, Any]) -> None:
        dataset.add(Label(response_ids[0], value["thumb"] == "up", annotator_id=who, meta=meta))


@pytest.fixture
def thumbs() -> Iterator[str]:
    register_task_type(ThumbsTask)
    yield ThumbsTask.name
    TASK_TYPES.unregister(ThumbsTask.name)


def test_a_registered_task_type_runs_through_store_server_export_and_stats(thumbs: str, tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a.db"))
    store.create_user("admin", "admin")
    tokens = [store.create_user(f"ann{i}") for i in range(2)]
    project_id = store.create_project("t", thumbs, "Thumbs up if helpful.", 2)
    assert store.project_settings(project_id)["config"] == {"emoji": True}
    for i in range(2):
        store.add_member(project_id, f"ann{i}")
    source = tmp_path / "candidates.jsonl"
    source.write_text("\n".join(json.dumps({"prompt": f"Q{i}?", "responses": [f"A{i}", f"B{i}", f"A{i}"]})
                                for i in range(3)) + "\n", encoding="utf-8")
    items, _ = items_from_file(source, thumbs)  # default import: each distinct response on its own
    assert len(items) == 6
    store.import_items(project_id, items)
    client = TestClient(create_app(store))
    for token in tokens:
        headers = {"Authorization": f"Bearer {token}"}
        while not (reply := client.post(f"/api/projects/{project_id}/next", headers=headers).json())["done"]:
            assignment_id = reply["assignment"]["assignment_id"]
            bad = client.post("/api/labels", headers=headers, json={"assignment_id": assignment_id, "value": {"thumb": 1}})
            assert bad.status_code == 422 and "value.thumb" in bad.text
            good = client.post("/api/labels", headers=headers,
                               json={"assignment_id": assignment_id, "value": {"thumb": "up"}})
            assert good.status_code == 200
    dataset = export_project(store, project_id)
    assert len(dataset.labels) == 12 and all(label.correct for label in dataset.labels)
    stats = project_stats(store, project_id, n_resamples=20)
    assert stats["labels"] == 12 and stats["task_type"] == thumbs


def test_task_type_errors(thumbs: str, tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a.db"))
    with pytest.raises(StoreError, match="emoji"):
        store.create_project("x", thumbs, "", 1, {"emoji": "yes"})
    with pytest.raises(LabelError, match="unknown task type 'likes'; known: pairwise, .*thumbs"):
        store.create_project("y", "likes", "", 1)
    with pytest.raises(LabelError, match="already registered"):
        register_task_type(ThumbsTask)
    with pytest.raises(LabelError, match="1–1 responses"):
        check_item(thumbs, {"prompt": "Q", "responses": ["a", "b"]})


def test_built_in_types_keep_their_order_and_payloads() -> None:
    assert list(TASK_TYPES)[:7] == ["pairwise", "ranking", "rating", "binary", "correction", "critique", "steps"]
    rng = np.random.default_rng(0)
    pairs = TASK_TYPES["pairwise"].payloads("Q", ["a", "b", "c", "a"], None, None, rng)
    assert [p["responses"] for p in pairs] == [["a", "b"], ["a", "c"], ["b", "c"], ["b", "a"], ["c", "a"]]
    assert len(TASK_TYPES["pairwise"].payloads("Q", ["a", "b", "c"], None, 2, rng)) == 2
    assert TASK_TYPES["ranking"].payloads("Q", ["a", "b"], None, None, rng) == [{"prompt": "Q", "responses": ["a", "b"]}]
    assert TASK_TYPES["steps"].payloads("Q", ["x", "x"], ["s1"], None, rng) == [
        {"prompt": "Q", "responses": ["x"], "steps": ["s1"]}]
