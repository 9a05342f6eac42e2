"""The annotation service on a real SQLite file and a real PostgreSQL server: assignment, labels, access
control, validation, schema upgrade, concurrency, stats and export."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from rewardlab.collect.annotation_stats import project_stats
from rewardlab.collect.export import export_project
from rewardlab.collect.items import items_from_file
from rewardlab.collect.server import MAX_BODY_BYTES, create_app
from rewardlab.collect.store import SCHEMA_VERSION, Store, hash_token, make_engine, open_store
from rewardlab.data.parquet import read_parquet, write_parquet
from rewardlab.errors import DataError

PAIRS = [(f"Question {i}?", [f"Good answer {i}.", f"Bad answer {i}."]) for i in range(6)]


def setup_project(store: Store, task: str = "pairwise", overlap: int = 2, annotators: int = 3,
                  payloads: list[tuple[str, list[str]]] | None = None, config: dict | None = None
                  ) -> tuple[int, str, list[str]]:
    admin = store.create_user("admin", "admin")
    tokens = [store.create_user(f"ann{i}") for i in range(annotators)]
    project_id = store.create_project("demo", task, "Pick the better answer.", overlap, config)
    for i in range(annotators):
        store.add_member(project_id, f"ann{i}")
    store.import_items(project_id, [(f"item{i}", {"prompt": p, "responses": r})
                                    for i, (p, r) in enumerate(payloads or PAIRS)])
    return project_id, admin, tokens


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def label_everything(client: TestClient, project_id: int, token: str, choose: str = "a") -> int:
    n = 0
    while True:
        reply = client.post(f"/api/projects/{project_id}/next", headers=auth(token)).json()
        if reply["done"]:
            return n
        assignment = reply["assignment"]
        response = client.post("/api/labels", headers=auth(token), json={
            "assignment_id": assignment["assignment_id"], "value": {"choice": choose}, "seconds": 1.5})
        assert response.status_code == 200 and response.json()["created"]
        n += 1


def test_overlap_assignment_and_labels(db_url: str) -> None:
    store = open_store(db_url)
    project_id, _, tokens = setup_project(store)
    client = TestClient(create_app(store))
    counts = [label_everything(client, project_id, token) for token in tokens]
    # 6 items × overlap 2 = 12 labels and not one more: one after another, the third annotator finds none left
    assert counts == [6, 6, 0]
    rows = store.project_labels(project_id)
    per_item = Counter(r["item"] for r in rows)
    assert set(per_item.values()) == {2} and len(per_item) == 6
    assert len({(r["item"], r["annotator"]) for r in rows}) == 12
    assert all(sorted(r["shown_order"]) == [0, 1] and r["seconds"] == 1.5 for r in rows)
    assert client.get(f"/api/projects/{project_id}", headers=auth(tokens[0])).json()["progress"]["available"] == 0


def test_open_assignment_survives_a_reload_and_retries_do_not_duplicate(db_url: str) -> None:
    store = open_store(db_url)
    project_id, _, tokens = setup_project(store)
    client = TestClient(create_app(store))
    first = client.post(f"/api/projects/{project_id}/next", headers=auth(tokens[0])).json()["assignment"]
    again = client.post(f"/api/projects/{project_id}/next", headers=auth(tokens[0])).json()["assignment"]
    assert first == again  # reloading the page does not burn an item
    body = {"assignment_id": first["assignment_id"], "value": {"choice": "tie"}}
    one, two = client.post("/api/labels", headers=auth(tokens[0]), json=body), client.post(
        "/api/labels", headers=auth(tokens[0]), json=body)
    assert one.json()["created"] and not two.json()["created"]
    assert one.json()["label_id"] == two.json()["label_id"] and store.count_labels() == 1


def test_screen_order_is_random_and_labels_are_canonical(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a.db"))
    pairs = [(f"Q{i}", ["first", "second"]) for i in range(40)]
    project_id, _, tokens = setup_project(store, overlap=1, annotators=1, payloads=pairs)
    client = TestClient(create_app(store))
    left_first = 0
    for _ in range(40):
        a = client.post(f"/api/projects/{project_id}/next", headers=auth(tokens[0])).json()["assignment"]
        left_first += a["responses"][0]["index"] == 0
        # always pick whatever is on the left: an annotator with pure position bias
        left = "a" if a["responses"][0]["index"] == 0 else "b"
        client.post("/api/labels", headers=auth(tokens[0]), json={"assignment_id": a["assignment_id"],
                                                                  "value": {"choice": left}})
    assert 8 < left_first < 32  # random order, both ways
    stats = project_stats(store, project_id, n_resamples=100)
    assert stats["position_bias_left_wins"]["value"] == 1.0 and stats["position_bias_left_wins"]["n"] == 40
    chosen = Counter(r["value"]["choice"] for r in store.project_labels(project_id))
    assert chosen["a"] == left_first  # stored in canonical terms, not screen positions


def test_access_control(db_url: str) -> None:
    store = open_store(db_url)
    project_id, admin, tokens = setup_project(store)
    other_token = store.create_user("outsider")
    other_project = store.create_project("secret", "binary", "", 1)
    client = TestClient(create_app(store))
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me", headers=auth("not-a-token")).status_code == 401
    assert client.post("/api/login", json={"token": tokens[0]}).json() == {"name": "ann0", "role": "annotator"}
    assert client.post("/api/login", json={"token": "wrong"}).status_code == 401
    # not a member: the project looks the same as a missing one
    assert client.get(f"/api/projects/{project_id}", headers=auth(other_token)).status_code == 404
    assert client.get(f"/api/projects/{other_project}", headers=auth(tokens[0])).status_code == 404
    assert client.get("/api/me", headers=auth(other_token)).json()["projects"] == []
    # someone else's assignment
    mine = client.post(f"/api/projects/{project_id}/next", headers=auth(tokens[0])).json()["assignment"]
    stolen = client.post("/api/labels", headers=auth(tokens[1]),
                         json={"assignment_id": mine["assignment_id"], "value": {"choice": "a"}})
    assert stolen.status_code == 404 and store.count_labels() == 0
    # admin views
    for path in (f"/api/admin/projects/{project_id}/stats", f"/api/admin/projects/{project_id}/export"):
        assert client.get(path, headers=auth(tokens[0])).status_code == 403
        assert client.get(path, headers=auth(admin)).status_code == 200
    # tokens are stored hashed only
    with store.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT token_hash FROM users")).scalars())
    assert hash_token(tokens[0]) in stored and tokens[0] not in stored


def test_input_validation(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a.db"))
    project_id, _, tokens = setup_project(store, task="rating", payloads=[("Q", ["A"])], config={"scale": [1, 5]})
    client = TestClient(create_app(store))
    a = client.post(f"/api/projects/{project_id}/next", headers=auth(tokens[0])).json()["assignment"]
    for bad, field in (({"score": 9}, "value.score"), ({"score": "3"}, "value.score"), ({"choice": "a"}, "value.score")):
        reply = client.post("/api/labels", headers=auth(tokens[0]), json={"assignment_id": a["assignment_id"], "value": bad})
        assert reply.status_code == 422 and field in reply.text
    huge = client.post("/api/labels", headers=auth(tokens[0]),
                       content=b'{"assignment_id": 1, "value": {"t": "' + b"x" * MAX_BODY_BYTES + b'"}}',
                       )
    assert huge.status_code == 413
    assert client.post("/api/labels", headers=auth(tokens[0]),
                       json={"assignment_id": a["assignment_id"], "value": {"score": 4}, "seconds": -1}).status_code == 422
    assert store.count_labels() == 0
    assert client.post("/api/labels", headers=auth(tokens[0]),
                       json={"assignment_id": a["assignment_id"], "value": {"score": 4}}).status_code == 200


@pytest.mark.parametrize("task,value", [
    ("ranking", {"order": [2, 0, 1]}), ("rating", {"score": 4}), ("binary", {"correct": True}),
    ("correction", {"text": "A better answer."}), ("critique", {"text": "Too long."}), ("steps", {"steps": [1, -1]}),
])
def test_every_task_type_exports_to_feedback(task: str, value: dict, tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "a.db"))
    responses = ["r1", "r2", "r3"] if task == "ranking" else ["Step one.\nStep two."]
    project_id, _, tokens = setup_project(store, task=task, overlap=2, annotators=2, payloads=[("Q", responses)])
    client = TestClient(create_app(store))
    for token in tokens:
        a = client.post(f"/api/projects/{project_id}/next", headers=auth(token)).json()["assignment"]
        assert client.post("/api/labels", headers=auth(token),
                           json={"assignment_id": a["assignment_id"], "value": value}).status_code == 200
    dataset = export_project(store, project_id)
    table = {"ranking": dataset.rankings, "rating": dataset.ratings, "binary": dataset.labels,
             "correction": dataset.corrections, "critique": dataset.critiques, "steps": dataset.step_labels}[task]
    assert len(table) == (4 if task == "steps" else 2)
    assert {row.annotator_id for row in table} == {"ann0", "ann1"}
    if task == "ranking":
        ids = list(dataset.responses)
        assert table[0].response_ids == (ids[2], ids[0], ids[1])
    back = read_parquet(write_parquet(dataset, tmp_path / "export"))
    assert len(back) == len(dataset)
    if task in ("rating", "binary", "steps"):
        stats = project_stats(store, project_id, n_resamples=50)
        assert stats["agreement"]["alpha"]["value"] == pytest.approx(1.0) or stats["agreement"]["alpha"]["value"] != stats[
            "agreement"]["alpha"]["value"]  # identical labels: α is 1, or undefined (NaN) with one category


def test_stats_match_hand_computed_agreement(tmp_path: Path) -> None:
    """Three annotators, four items, pairwise: ann2 disagrees on two items."""
    store = open_store(str(tmp_path / "a.db"))
    pairs = [(f"Q{i}", [f"x{i}", f"y{i}"]) for i in range(4)]
    project_id, _, tokens = setup_project(store, overlap=3, annotators=3, payloads=pairs)
    client = TestClient(create_app(store))
    plan = {0: "aaaa", 1: "aaaa", 2: "abab"}  # by item order of assignment (least-assigned first, then id)
    for who, token in enumerate(tokens):
        for choice in plan[who]:
            a = client.post(f"/api/projects/{project_id}/next", headers=auth(token)).json()["assignment"]
            client.post("/api/labels", headers=auth(token), json={"assignment_id": a["assignment_id"],
                                                                  "value": {"choice": choice}})
    stats = project_stats(store, project_id, n_resamples=200)
    # values a=1, b=-1; ordinal α on 2 categories equals nominal α. Coincidences: 4 items × 3 coders,
    # items 0 and 2 all 'a' (6 a-a pairs each /2 → o_aa += 3 each), items 1 and 3 two 'a' one 'b':
    # o_aa += 1, o_ab += 1, o_ba += 1 each. o_aa = 8, o_ab = o_ba = 2, n_a = 10, n_b = 2, n = 12.
    # D_o = (o_ab + o_ba) / n = 4/12; D_e = 2 n_a n_b / (n (n-1)) = 40/132. α = 1 − (4/12)/(40/132) = −0.1
    assert stats["agreement"]["alpha"]["value"] == pytest.approx(-0.1)
    per = stats["per_annotator"]
    assert per["ann0"]["agreement_with_others"]["value"] == 1.0
    assert per["ann2"]["agreement_with_others"]["value"] == 0.5
    assert per["ann0"]["labels"] == 4


def test_schema_upgrade_from_v1(db_url: str) -> None:
    """A database written by schema v1 (no per-item assignment counter) is upgraded in place, data intact."""
    engine = make_engine(db_url)
    store = Store(engine)
    store.migrate()
    project_id, _, tokens = setup_project(store, overlap=2)
    client = TestClient(create_app(store))
    label_everything(client, project_id, tokens[0])
    with engine.begin() as conn:  # turn it back into a v1 database
        conn.execute(sa.text("ALTER TABLE items DROP COLUMN assigned"))
        conn.execute(sa.text("UPDATE schema_info SET version = 1"))
    engine.dispose()
    upgraded = Store(make_engine(db_url))
    assert upgraded.migrate() == 1 and upgraded.migrate() == SCHEMA_VERSION
    with upgraded.engine.connect() as conn:
        assigned = conn.execute(sa.text("SELECT assigned FROM items")).scalars().all()
    assert sorted(assigned) == [1] * 6 and upgraded.count_labels() == 6
    client = TestClient(create_app(upgraded))
    assert label_everything(client, project_id, tokens[1]) == 6 and label_everything(client, project_id, tokens[2]) == 0


def test_concurrent_annotators_lose_and_duplicate_nothing(db_url: str) -> None:
    store = open_store(db_url)
    pairs = [(f"Q{i}", [f"x{i}", f"y{i}"]) for i in range(40)]
    # many more annotators than a claim round looks at: nobody may be told "done" while items still have room
    project_id, _, tokens = setup_project(store, overlap=3, annotators=24, payloads=pairs)
    users = [store.user_by_token(t) for t in tokens]
    acknowledged: list[int] = []
    lock = threading.Lock()

    def work(user: object) -> None:
        while (a := store.next_assignment(project_id, user)) is not None:  # type: ignore[arg-type]
            label_id, created = store.submit(a["assignment_id"], user, {"choice": "a"})  # type: ignore[arg-type]
            assert created
            with lock:
                acknowledged.append(label_id)

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = store.project_labels(project_id)
    assert len(acknowledged) == len(set(acknowledged)) == len(rows) == 120  # 40 items × overlap 3, exactly
    assert set(Counter(r["item"] for r in rows).values()) == {3}
    assert len({(r["item"], r["annotator"]) for r in rows}) == 120


def test_deadlock_victim_is_retried(db_url: str) -> None:
    """Two transactions lock the same two rows in opposite orders: the database aborts one as a deadlock
    victim (PostgreSQL) and the store runs it again, so both finish and the abort is never seen."""
    store = open_store(db_url)
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: no deadlock to provoke")
    setup_project(store)
    with store.engine.connect() as conn:
        first, second = conn.execute(sa.text("SELECT id FROM items ORDER BY id LIMIT 2")).scalars()
    both_hold_one = threading.Barrier(2)
    attempts: list[int] = []

    def lock_in_order(a: int, b: int) -> int:
        def work(conn: sa.Connection) -> int:
            attempts.append(a)
            conn.execute(sa.text("SELECT id FROM items WHERE id = :i FOR UPDATE"), {"i": a})
            if len(attempts) <= 2:
                both_hold_one.wait(timeout=30)
            conn.execute(sa.text("SELECT id FROM items WHERE id = :i FOR UPDATE"), {"i": b})
            return b
        return store._run_tx(work)

    results: list[int] = []
    other = threading.Thread(target=lambda: results.append(lock_in_order(second, first)))
    other.start()
    results.append(lock_in_order(first, second))
    other.join()
    assert sorted(results) == sorted([first, second]) and len(attempts) == 3


def test_import_from_files(tmp_path: Path) -> None:
    path = tmp_path / "sets.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "P1", "responses": ["a", "b", "c"]},
        {"prompt": "P2", "responses": [{"text": "d"}, {"text": "e"}]},
    ]) + "\n")
    pairwise, _ = items_from_file(path, "pairwise")
    assert len(pairwise) == 3 + 1
    assert len(items_from_file(path, "pairwise", pairs_per_prompt=1)[0]) == 2
    assert len(items_from_file(path, "ranking")[0]) == 2
    assert len(items_from_file(path, "binary")[0]) == 5
    store = open_store(str(tmp_path / "a.db"))
    project_id = store.create_project("p", "pairwise", "", 1)
    assert store.import_items(project_id, pairwise) == (4, 0)
    assert store.import_items(project_id, items_from_file(path, "pairwise")[0]) == (0, 4)  # idempotent
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "P", "responses": ["a"]}\n{"prompt": "", "responses": ["a"]}\n')
    with pytest.raises(DataError, match=r"row 2.*field 'prompt'"):
        items_from_file(bad, "binary")
    single = tmp_path / "single.jsonl"
    single.write_text('{"prompt": "P", "responses": ["a"]}\n')
    with pytest.raises(DataError, match=r"row 1.*ranking item needs 2–10 responses"):
        items_from_file(single, "ranking")
