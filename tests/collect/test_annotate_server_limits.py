"""The annotation server's limits over real HTTP on 127.0.0.1: a chunked body is cut off at the limit as it arrives,
errors do not echo the input, exports stay in their folder whatever the project is called, and odd numbers in
the annotation API are one clear 4xx."""

from __future__ import annotations

import http.client
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_helpers import running, send_chunked
from rewardlab.collect.server import MAX_BODY_BYTES, create_app
from rewardlab.collect.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(str(tmp_path / "limits.db"))


@pytest.fixture
def base(store: Store) -> Iterator[tuple[str, int]]:
    """The annotation app under uvicorn on a free 127.0.0.1 port: (host, port)."""
    with running(create_app(store)) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def login_body(total: int, chunk: int = 16 * 1024) -> Iterator[bytes]:
    """A syntactically valid login body of about ``total`` bytes, streamed a chunk at a time, slowly enough
    for the server to answer before the client has sent it all."""
    yield b'{"token": "'
    for _ in range(total // chunk):
        yield b"x" * chunk
        time.sleep(0.002)
    yield b'"}'


def test_chunked_body_over_the_limit_is_refused_as_it_arrives(base: tuple[str, int]) -> None:
    status, body, sent = send_chunked("http://{}:{}".format(*base), "/api/login", login_body(8 * MAX_BODY_BYTES))
    assert status == 413, body[:300]
    assert str(MAX_BODY_BYTES) in json.loads(body)["detail"]
    assert sent < 8 * MAX_BODY_BYTES  # the server answered before the upload was over


def test_chunked_body_under_the_limit_still_works(base: tuple[str, int], store: Store) -> None:
    token = store.create_user("ann")
    status, body, _ = send_chunked("http://{}:{}".format(*base), "/api/login", iter([b'{"tok', f'en": "{token}"}}'.encode()]))
    assert status == 200 and json.loads(body)["name"] == "ann"


def test_declared_length_over_the_limit_is_refused_unread(base: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*base, timeout=30)
    conn.putrequest("POST", "/api/login")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(100 * MAX_BODY_BYTES))
    conn.endheaders()
    response = conn.getresponse()  # nothing of the body was sent
    assert response.status == 413 and response.getheader("X-Content-Type-Options") == "nosniff"
    conn.close()


def test_validation_errors_do_not_echo_the_input(base: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*base, timeout=30)
    big = json.dumps({"token": "y" * 200_000})  # under the body limit, far over the field's 200 characters
    conn.request("POST", "/api/login", big, {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 422 and b"token" in body
    assert len(body) < 1000 and b"yyyy" not in body


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def request(base: tuple[str, int], method: str, path: str, token: str, payload: object = None,
            raw: str | None = None) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection(*base, timeout=30)
    body = raw if raw is not None else (None if payload is None else json.dumps(payload))
    conn.request(method, path, body, auth(token))
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, response


@pytest.mark.parametrize("name", ["/tmp/abs-name", "../../escape", "..", "two\r\nlines", 'quote"d; x=1', "ünï códe"])
def test_export_stays_in_its_folder_whatever_the_project_is_called(base: tuple[str, int], store: Store,
                                                                    tmp_path: Path, name: str) -> None:
    if name.startswith("/"):
        name = str(tmp_path / "outside" / "abs-name")
    admin = store.create_user("admin", "admin")
    project_id = store.create_project(name, "pairwise", "Pick one.", 1)
    store.import_items(project_id, [("i0", {"prompt": "Q?", "responses": ["a", "b"]})])
    status, data, response = request(base, "GET", f"/api/admin/projects/{project_id}/export", admin)
    assert status == 200, data[:300]
    disposition = response.getheader("Content-Disposition") or ""
    assert "\r" not in disposition and "\n" not in disposition and disposition.count('"') == 2
    members = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert members and all(not m.startswith(("/", "..")) and "/../" not in m and "\\" not in m for m in members)
    assert len({m.split("/")[0] for m in members}) == 1  # one folder, named after the project
    assert not (tmp_path / "outside").exists()


def test_nan_seconds_and_huge_ids_are_4xx(base: tuple[str, int], store: Store) -> None:
    store.create_user("admin", "admin")
    token = store.create_user("ann")
    project_id = store.create_project("p", "pairwise", "Pick one.", 1)
    store.add_member(project_id, "ann")
    store.import_items(project_id, [("i0", {"prompt": "Q?", "responses": ["a", "b"]})])
    status, data, _ = request(base, "POST", f"/api/projects/{project_id}/next", token)
    assignment = json.loads(data)["assignment"]["assignment_id"]
    for seconds in ("NaN", "Infinity", "-Infinity"):
        status, data, _ = request(base, "POST", "/api/labels", token,
                                  raw=f'{{"assignment_id": {assignment}, "value": {{"choice": "a"}}, "seconds": {seconds}}}')
        assert status == 422 and b"seconds" in data, (seconds, status, data[:300])
    for value, field in (({"choice": "a"}, "seconds"), ({"choice": "a", "strength": True}, "strength")):
        seconds = "true" if field == "seconds" else "1.5"  # a JSON true is not a number of seconds, nor a strength
        status, data, _ = request(base, "POST", "/api/labels", token,
                                  raw=f'{{"assignment_id": {assignment}, "value": {json.dumps(value)}, "seconds": {seconds}}}')
        assert 400 <= status < 500 and field.encode() in data, (field, status, data[:300])
    assert store.count_labels() == 0
    for path in ("/api/projects/{}", "/api/projects/{}/next"):
        status, data, _ = request(base, "GET" if path.endswith("}") else "POST", path.format(10**23), token)
        assert 400 <= status < 500, (path, status, data[:300])
    status, data, _ = request(base, "POST", "/api/labels", token, {"assignment_id": 10**23, "value": {"choice": "a"}})
    assert 400 <= status < 500, data[:300]
    status, data, _ = request(base, "POST", "/api/labels", token,
                              {"assignment_id": assignment, "value": {"choice": "a"}, "seconds": 2.0})
    assert status == 200 and store.count_labels() == 1
