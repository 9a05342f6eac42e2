"""Property-based fuzzing of the HTTP APIs (issue 21): schemathesis generates requests from each server's own
OpenAPI schema, valid ones and invalid ones, and every answer must be below 500; an error answer must be short and
must not echo more than a few hundred characters of the request.

The servers: the annotation service (`rewardlab annotate serve`, on SQLite and on PostgreSQL), `rewardlab generate
serve` over the tiny local GPT-2, and `rewardlab serve` over a hashing-encoder reward model and a 3-member ensemble.
Each runs in-process (schemathesis' ASGI transport, nothing listens on a port). Every generated request is sent as
generated (for the annotation API: its own random ``Authorization``; for the others: no key), then with each real
identity (admin and annotator tokens; the API key), then once more with every string in its JSON body inflated
past the echo limit, so that an error echoing its input would show.

Bounded and reproducible like the rest of ``tests/fuzz``: derandomized, a fixed number of examples per endpoint and
generation mode (REWARDLAB_FUZZ_EXAMPLES digs deeper, REWARDLAB_FUZZ_RANDOM=1 draws fresh examples each run).
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from rewardlab.collect.local_postgres import PG_BIN, create_database, throwaway_postgres
from rewardlab.collect.server import create_app as annotate_app
from rewardlab.collect.store import Store, open_store
from rewardlab.generate.local import LocalGenerator
from rewardlab.generate.server import create_app as generate_app
from rewardlab.rewards.model import RewardModel
from rewardlab.serve.config import QuerySplit, ServeConfig
from rewardlab.serve.limits import GenerateLimits
from rewardlab.serve.reward_server import create_app as reward_app
from rewardlab.serve.scoring import ServedModel
from synthetic import preference_dataset

#: examples per endpoint and generation mode (positive, negative); each is sent 3-4 times (see the docstring)
EXAMPLES = int(os.environ.get("REWARDLAB_FUZZ_EXAMPLES", "8"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="REWARDLAB_FUZZ_RANDOM" not in os.environ,
                database=None, phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck))
#: an error body's size limit, and the longest run of a request's text it may hold (the servers clip at 200-300)
MAX_ERROR_BYTES = 4096
ECHO = 320
#: every string of an inflated body is made this long: past any clip, under every body limit
INFLATED = 1500
KEY = "fuzz-key-" + "k" * 24


@dataclass
class Target:
    """An app, its schema, and the headers of each identity a request is sent as (``None``: as generated)."""

    app: Any
    identities: dict[str, dict[str, str] | None]
    #: the annotation API declares its ``Authorization`` header in the schema: an operation without it is sent once
    declared_auth: bool = False
    #: ids that exist (annotation API): each case is sent once more with them, so it reaches past "not found"
    projects: list[int] = field(default_factory=list)
    assignments: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


# ---------------------------------------------------------------------- servers
def annotation_store(url: str) -> tuple[Store, dict[str, dict[str, str] | None], list[int], list[int]]:
    """A store with a pairwise project and a rating project, items, members, a few labels and open assignments.

    Returns the store, the identities' headers, the project ids and the open assignments of "annotator"."""
    store = open_store(url)
    admin = store.create_user("admin", "admin")
    ann = [store.create_user(f"ann{i}") for i in range(2)]
    outsider = store.create_user("outsider")
    pairwise = store.create_project("pairs", "pairwise", "Pick the better answer.", 2)
    rating = store.create_project("../../etc/ratings\r\n", "rating", "Rate it.", 1)
    for project in (pairwise, rating):
        for i in range(2):
            store.add_member(project, f"ann{i}")
    store.import_items(pairwise, [(f"p{i}", {"prompt": f"Question {i}?", "responses": [f"Good {i}.", f"Bad {i}."]})
                                  for i in range(4)])
    store.import_items(rating, [(f"r{i}", {"prompt": f"Question {i}?", "responses": [f"Answer {i}."]}) for i in range(3)])
    user = store.user_by_token(ann[0])
    assert user is not None
    for _ in range(2):  # labels, so stats and export have data
        assignment = store.next_assignment(pairwise, user)
        assert assignment is not None
        store.submit(assignment["assignment_id"], user, {"choice": "a"}, 1.0)
    annotator = store.user_by_token(ann[1])
    assert annotator is not None
    open_assignments = [store.next_assignment(project, annotator) for project in (pairwise, rating)]
    bearer = {name: {"Authorization": f"Bearer {token}"} for name, token in
              (("admin", admin), ("annotator", ann[1]), ("outsider", outsider))}
    return (store, {"generated": None, **bearer}, [pairwise, rating],
            [a["assignment_id"] for a in open_assignments if a is not None])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN} (set REWARDLAB_PG_BIN)")
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(scope="module")
def reward_models(tmp_path_factory: pytest.TempPathFactory) -> list[ServedModel]:
    folder = tmp_path_factory.mktemp("fuzz-served")
    rows = [(f"question {i} about bread", f"thank you, here is careful answer {i}", "no") for i in range(20)]
    data = preference_dataset("polite", rows)
    RewardModel.create("bt-linear", encoder="hashing:32", max_epochs=10, lr=0.05).fit(data).save(folder / "polite")
    RewardModel.create("bt-linear", encoder="hashing:32", ensemble=3, max_epochs=10, lr=0.05).fit(data).save(
        folder / "trio")
    config = ServeConfig(max_queue=64)
    return [ServedModel(name, RewardModel.load(folder / name), config=config) for name in ("polite", "trio")]


def make_target(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Target:
    key = {"with key": {"Authorization": f"Bearer {KEY}"}, "without key": None}
    if name.startswith("annotate"):
        url = str(tmp_path / "fuzz.db") if name == "annotate-sqlite" else create_database(
            request.getfixturevalue("postgres_url"))
        store, identities, projects, assignments = annotation_store(url)
        return Target(annotate_app(store), identities, declared_auth=True, projects=projects, assignments=assignments)
    if name == "generate":
        generator = LocalGenerator(request.getfixturevalue("tiny_model")).load()
        limits = GenerateLimits(api_key=KEY, max_tokens=8, max_n=2, request_timeout=60)
        return Target(generate_app(generator, "tiny", limits), key)
    config = ServeConfig(api_key=KEY, max_items=8, max_text_chars=1000, request_timeout=60, max_body_bytes=64 * 1024)
    app = reward_app(request.getfixturevalue("reward_models"), config, QuerySplit(separator="\nA:"))
    return Target(app, {"with key": key["with key"], "without key": None,
                        "x-api-key": {"X-API-Key": KEY}})


# ---------------------------------------------------------------------- checks
def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def inflate(value: Any) -> Any:
    """``value`` with every string (keys aside) repeated to `INFLATED` characters."""
    if isinstance(value, str):
        return (value or "x") * (INFLATED // max(1, len(value)) + 1)
    if isinstance(value, dict):
        return {k: inflate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [inflate(v) for v in value]
    return value


#: every field some annotation task reads from a label's value
LABEL_FIELDS = ("choice", "strength", "order", "score", "correct", "text", "steps")


def with_known_ids(case: Any, target: Target) -> bool:
    """Points ``case`` at ids that exist (a project, an open assignment) and spreads the values of a generated label
    over the fields tasks read; False when the case names no id."""
    changed = False
    path = case.path_parameters
    if target.projects and isinstance(path, dict) and isinstance(path.get("project_id"), int):
        case.path_parameters = {**path, "project_id": target.projects[path["project_id"] % len(target.projects)]}
        changed = True
    body = case.body
    if target.assignments and isinstance(body, dict) and isinstance(body.get("assignment_id"), int):
        body = {**body, "assignment_id": target.assignments[body["assignment_id"] % len(target.assignments)]}
        if isinstance(body.get("value"), dict) and body["value"]:
            values = list(body["value"].values())
            body["value"] = {name: values[i % len(values)] for i, name in enumerate(LABEL_FIELDS)}
        case.body = body
        changed = True
    return changed


def problems(status: int, content: bytes, sent: list[str]) -> list[str]:
    """What is wrong with an answer: a 5xx, an error body too long, or one echoing a long run of the request."""
    found = []
    if status >= 500:
        found.append(f"{status}: {content[:300]!r}")
    if status >= 400:
        if len(content) > MAX_ERROR_BYTES:
            found.append(f"{status} with a {len(content)}-byte error body")
        try:
            answer = "\n".join(strings(json.loads(content)))
        except ValueError:
            answer = content.decode("utf-8", "replace")
        for text in sent:
            if len(text) > ECHO and text[:ECHO] in answer:
                found.append(f"{status} echoing {len(text)} characters of the request: {content[:300]!r}")
                break
    return found


def fuzz(target: Target, operation: Any, mode: GenerationMode) -> None:
    """Runs the operation's examples in ``mode``; each problem is recorded in ``target.failures`` (none raised, so
    every endpoint is fuzzed and the report names them all)."""

    def send(case: Any, headers: dict[str, str] | None, label: str) -> None:
        sent = list(strings(case.body)) + list(strings(case.query)) + list(strings(case.path_parameters))
        try:
            response = case.call(app=target.app, headers=headers)
        except Exception:  # the app raised: a 500 the in-process transport hands over as the exception itself
            target.failures.append(f"{operation.label} [{mode.value}, {label}] raised:\n{traceback.format_exc()}\n"
                                   f"{case.as_curl_command(headers=headers)}")
            return
        target.statuses[response.status_code] = target.statuses.get(response.status_code, 0) + 1
        for problem in problems(response.status_code, response.content, sent):
            target.failures.append(f"{operation.label} [{mode.value}, {label}] {problem}\n"
                                   f"{case.as_curl_command(headers=headers)}")

    parameters = operation.definition.raw.get("parameters", [])
    declares_auth = any(p.get("in") == "header" and p.get("name", "").lower() == "authorization" for p in parameters)
    identities = target.identities if declares_auth or not target.declared_auth else {"generated": None}
    if mode is GenerationMode.NEGATIVE:  # an invalid request is refused before who sends it matters: two suffice
        identities = dict(list(identities.items())[:2])
    authorized = [(label, h) for label, h in target.identities.items() if h is not None]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        for label, headers in identities.items():
            send(case, headers, label)
        if with_known_ids(case, target):
            for label, headers in authorized[:2]:
                send(case, headers, f"known ids, {label}")
        if isinstance(case.body, (dict, list)):
            case.body = inflate(case.body)
            send(case, authorized[0][1], f"inflated, {authorized[0][0]}")

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise  # (an endpoint that takes nothing has no invalid requests: nothing to do in negative mode)


SERVERS = ["annotate-sqlite", "annotate-postgresql", "generate", "reward"]


@pytest.mark.parametrize("name", SERVERS)
def test_fuzz_http_api(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    target = make_target(request, name, tmp_path)
    schema = schemathesis.openapi.from_dict(target.app.openapi())
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # a schema schemathesis cannot read is a failure, not a skip
        operations.append(result.ok())
    assert len(operations) >= 3, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(target, operation, mode)
    assert not target.failures, f"{len(target.failures)} problems:\n\n" + "\n\n".join(target.failures[:10])
    # the fuzzing reached past the door: some requests were answered 200, some refused
    assert target.statuses.get(200, 0) > 0 and any(400 <= s < 500 for s in target.statuses), target.statuses


def test_annotation_ids_past_32_bits_are_4xx_on_postgresql(postgres_url: str) -> None:
    """Found by the fuzzing above: ids are 32-bit INTEGERs on PostgreSQL, and a path or body id between 2**31 and
    2**63 was an "integer out of range" 500 (the server's bound was 2**63 - 1)."""
    from fastapi.testclient import TestClient

    store, identities, _, _ = annotation_store(create_database(postgres_url))
    client = TestClient(annotate_app(store), raise_server_exceptions=False)
    for number in (2**31 - 1, 2**31, 2**40, 2**63 - 1):
        for name in ("admin", "annotator"):
            headers = identities[name]
            for method, path in (("GET", "/api/projects/{}"), ("POST", "/api/projects/{}/next"),
                                 ("GET", "/api/admin/projects/{}/stats"), ("GET", "/api/admin/projects/{}/export")):
                response = client.request(method, path.format(number), headers=headers)
                assert 400 <= response.status_code < 500, (number, name, path, response.status_code,
                                                           response.text[:300])
            response = client.post("/api/labels", headers=headers,
                                   json={"assignment_id": number, "value": {"choice": "a"}})
            assert 400 <= response.status_code < 500, (number, name, response.status_code, response.text[:300])
