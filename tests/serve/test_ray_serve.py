"""`serve --ray-serve`: two Ray Serve replicas of the reward app, on 127.0.0.1, both answering, each with the
in-process scores."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")
pytest.importorskip("ray.serve", reason="Ray Serve is an optional extra (pip install 'rewardlab[ray]')")

from rewardlab.collect.local_postgres import free_port  # noqa: E402
from rewardlab.rewards.model import RewardModel  # noqa: E402
from rewardlab.serve.config import QuerySplit, ServeConfig  # noqa: E402
from rewardlab.serve.ray_serve import REPLICA_HEADER, start_ray_serve  # noqa: E402

PROMPTS = [f"question {i} about bread" for i in range(8)]
RESPONSES = ["thank you, here is a careful answer", "no", "bread needs flour, water and time", "é ü 漢字 🙂"] * 2


@pytest.fixture(scope="module")
def replicas(model_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ray import serve

    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error",
             _temp_dir=str(tmp_path_factory.mktemp("ray")))
    try:
        start_ray_serve([f"{model_dirs['polite']}=polite", f"{model_dirs['trio']}=trio"], "127.0.0.1", port,
                        ServeConfig(max_wait_ms=20, api_key="sekrit"), QuerySplit(), replicas=2)
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def test_two_replicas_serve_the_in_process_scores(replicas: str, model_dirs: dict[str, Path]) -> None:
    body = {"model": "trio", "items": [{"prompt": p, "response": r} for p, r in zip(PROMPTS, RESPONSES)]}
    headers = {"Authorization": "Bearer sekrit"}

    def one(_: int) -> httpx.Response:
        return httpx.post(f"{replicas}/score", json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(one, range(64)))
    assert all(r.status_code == 200 for r in replies), [r.text[:200] for r in replies if r.status_code != 200][:3]
    trio = RewardModel.load(model_dirs["trio"])
    expected = [float(v) for v in trio.score(PROMPTS, RESPONSES)]
    stats = trio.score_stats(PROMPTS, RESPONSES)
    for reply in replies:
        assert reply.json()["rewards"] == expected
        assert reply.json()["lcb"] == [float(v) for v in stats["lcb"]]
    assert len({r.headers[REPLICA_HEADER] for r in replies}) == 2  # both replicas answered


def test_the_replicas_keep_the_servers_limits_and_keys(replicas: str) -> None:
    pair = {"items": [{"prompt": "p", "response": "r"}]}
    assert httpx.post(f"{replicas}/score", json=pair, timeout=60).status_code == 401  # no key
    assert httpx.get(f"{replicas}/health", timeout=60).json()["models"] == 2
    bad = httpx.post(f"{replicas}/score", json={"items": "nope"}, headers={"X-API-Key": "sekrit"}, timeout=60)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("items")  # the app's one clear 4xx
