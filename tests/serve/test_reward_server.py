"""`rewardlab serve` over real HTTP on 127.0.0.1: the served numbers are the in-process ones (alone, concurrent,
cached, single model and ensemble), /compare, OpenRLHF's /get_reward and how it splits queries, /models, /metrics,
and the command itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from http_helpers import running
from rewardlab.collect.local_postgres import free_port
from rewardlab.evaluate.pairwise import preference_probability
from rewardlab.rewards.model import RewardModel
from rewardlab.serve.config import QuerySplit, ServeConfig
from rewardlab.serve.reward_server import create_app
from rewardlab.serve.scoring import ServedModel, load_served_models, parse_model_spec, split_query

PROMPTS = [f"question {i} about bread" for i in range(12)] + ["A new question, never seen", "\n\nHuman: hi"]
RESPONSES = ["thank you, here is a careful answer", "no", "bread needs flour, water and time", "é ü 漢字 🙂", "",
             "thank you"] * 2 + ["a b c", "no thanks"]


@pytest.fixture(scope="module")
def served(model_dirs: dict[str, Path]) -> Iterator[tuple[str, dict[str, RewardModel]]]:
    models = load_served_models([str(model_dirs["polite"]), f"{model_dirs['trio']}=trio"],
                                ServeConfig(max_wait_ms=50))
    with running(create_app(models, split=QuerySplit(separator="<|im_start|>assistant\n"))) as base:
        yield base, {m.name: m.model for m in models}


def post(base: str, path: str, body: dict, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{base}{path}", json=body, timeout=60, **kwargs)  # type: ignore[arg-type]


def items(prompts: list[str], responses: list[str]) -> list[dict[str, str]]:
    return [{"prompt": p, "response": r} for p, r in zip(prompts, responses)]


def test_served_scores_are_the_in_process_scores(served: tuple[str, dict[str, RewardModel]]) -> None:
    base, models = served
    reply = post(base, "/score", {"items": items(PROMPTS, RESPONSES)})
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["model"] == "polite" and set(reply.json()) == {"model", "rewards"}  # the first is the default
    assert reply.json()["rewards"] == [float(v) for v in models["polite"].score(PROMPTS, RESPONSES)]

    reply = post(base, "/score", {"model": "trio", "items": items(PROMPTS, RESPONSES)})
    stats = models["trio"].score_stats(PROMPTS, RESPONSES)
    assert reply.status_code == 200, reply.text[:300]
    body = reply.json()
    assert body["rewards"] == [float(v) for v in models["trio"].score(PROMPTS, RESPONSES)]
    for key in ("mean", "std", "min", "lcb"):
        assert body[key] == [float(v) for v in stats[key]], key
    assert np.std(body["std"]) > 0  # a real ensemble: members disagree


def test_concurrent_requests_are_batched_and_each_gets_its_own_numbers(
        served: tuple[str, dict[str, RewardModel]]) -> None:
    base, models = served
    before = httpx.get(f"{base}/metrics", timeout=30).text

    start = threading.Barrier(12)

    def one(i: int) -> tuple[int, bool]:
        prompts, responses = PROMPTS[i:] + PROMPTS[:i], RESPONSES[: len(PROMPTS) - i] + [f"fresh answer {i}"] * i
        start.wait(timeout=30)
        reply = post(base, "/score", {"items": items(prompts, responses)})
        assert reply.status_code == 200, reply.text[:300]
        return i, [float(v) for v in models["polite"].score(prompts, responses)] == reply.json()["rewards"]

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(12)))
    assert all(same for _, same in results)
    after = httpx.get(f"{base}/metrics", timeout=30).text
    batches = metric(after, 'rewardlab_batches_total{model="polite"}') - metric(before, 'rewardlab_batches_total{model="polite"}')
    assert 1 <= batches < 12  # requests arriving together shared micro-batches


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_cache_serves_repeated_pairs_with_the_same_numbers(served: tuple[str, dict[str, RewardModel]]) -> None:
    base, _ = served
    pairs = items([f"cache question {i}" for i in range(5)], [f"cache answer {i}" for i in range(5)])
    first = post(base, "/score", {"items": pairs}).json()["rewards"]
    hits = metric(httpx.get(f"{base}/metrics", timeout=30).text, 'rewardlab_cache_hits_total{model="polite"}')
    assert post(base, "/score", {"items": pairs}).json()["rewards"] == first
    text = httpx.get(f"{base}/metrics", timeout=30).text
    assert metric(text, 'rewardlab_cache_hits_total{model="polite"}') == hits + 5


def test_compare_is_the_bradley_terry_probability(served: tuple[str, dict[str, RewardModel]]) -> None:
    base, models = served
    a, b = RESPONSES[:6], RESPONSES[6:12]
    reply = post(base, "/compare", {"items": [{"prompt": p, "a": x, "b": y} for p, x, y in zip(PROMPTS, a, b)]})
    assert reply.status_code == 200, reply.text[:300]
    # both sides go through the head as one call (a float32 head's last bits can depend on the batch's shape)
    both = models["polite"].score(PROMPTS[:6] * 2, a + b)
    ra, rb = both[:6], both[6:]
    assert reply.json()["rewards_a"] == [float(v) for v in ra] and reply.json()["rewards_b"] == [float(v) for v in rb]
    assert reply.json()["probabilities"] == [float(v) for v in preference_probability(ra, rb)]
    polite = post(base, "/compare", {"items": [{"prompt": "question 1 about bread", "a": "thank you, here is a careful "
                                                "answer about bread", "b": "no"}]}).json()["probabilities"][0]
    assert polite > 0.5


def test_get_reward_speaks_openrlhf(served: tuple[str, dict[str, RewardModel]]) -> None:
    base, models = served
    prompts = [f"<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n" for p in PROMPTS[:4]]
    responses = RESPONSES[:4]
    queries = [p + r + "<|im_end|>" for p, r in zip(prompts, responses)]
    expected = [float(v) for v in models["polite"].score(prompts, responses)]
    reply = post(base, "/get_reward", {"query": queries, "prompts": prompts, "labels": ["", "", "", ""]})
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["rewards"] == expected == reply.json()["scores"] and reply.json()["extra_logs"] == {}
    # without prompts the server's separator cuts the query: the prompt then lacks the separator itself
    cut = [p.removesuffix("<|im_start|>assistant\n") for p in prompts]
    reply = post(base, "/get_reward", {"query": queries})
    assert reply.json()["rewards"] == [float(v) for v in models["polite"].score(cut, responses)]
    reply = post(base, "/get_reward?model=trio", {"query": queries, "prompts": prompts})
    assert reply.json()["rewards"] == [float(v) for v in models["trio"].score(prompts, responses)]
    assert len(reply.json()["extra_logs"]["reward_std"]) == 4


def test_query_split_rules() -> None:
    split = QuerySplit()
    assert split_query("Q: hi A: yes</s>", "Q: hi A:", split) == ("Q: hi A:", " yes")
    assert split_query("Q: hi A: yes \n<|im_end|><|endoftext|>", "Q: hi A:", split) == ("Q: hi A:", " yes")
    assert split_query("Q: hi A: yes  ", "Q: hi A:", split) == ("Q: hi A:", " yes  ")  # no marker: kept as sent
    assert split_query("Q: hi A: yes</s>", "Q: hi A:", QuerySplit(strip=())) == ("Q: hi A:", " yes</s>")
    sep = QuerySplit(separator="\nA:")
    assert split_query("Q: x\nA: y\nA: z", None, sep) == ("Q: x\nA: y", " z")  # the last occurrence
    assert split_query("Q: x\nA: y", "other prompt", sep) == ("Q: x", " y")  # a prompt that does not match
    for query, prompt, rules, message in (("Q: x", None, split, "no prompt was sent"),
                                          ("Q: x", "P", split, "does not start with its prompt"),
                                          ("Q: x", None, sep, "no separator")):
        with pytest.raises(ValueError, match=message):
            split_query(query, prompt, rules)


def test_models_health_and_metrics(served: tuple[str, dict[str, RewardModel]]) -> None:
    base, _ = served
    assert httpx.get(f"{base}/health", timeout=30).json() == {"ok": True, "models": 2}
    listing = httpx.get(f"{base}/models", timeout=30).json()
    assert listing["default"] == "polite"
    assert [(m["name"], m["ensemble"], m["members"]) for m in listing["models"]] == [("polite", False, 1), ("trio", True, 3)]
    assert listing["models"][0]["encoder"] == "hashing:64" and listing["limits"]["max_items"] == ServeConfig().max_items
    post(base, "/score", {"items": [{"prompt": "p"}]})  # a 400, counted too
    reply = httpx.get(f"{base}/metrics", timeout=30)
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = [line for line in reply.text.splitlines() if line and not line.startswith("#")]
    assert all(len(line.rsplit(" ", 1)) == 2 and float(line.rsplit(" ", 1)[1]) >= 0 for line in lines)
    assert metric(reply.text, 'rewardlab_requests_total{endpoint="/score",status="400"}') >= 1
    assert metric(reply.text, 'rewardlab_request_seconds_count{endpoint="/score"}') >= 1
    httpx.get(f"{base}/no/such/{'x' * 50}", timeout=30)
    assert 'endpoint="other"' in httpx.get(f"{base}/metrics", timeout=30).text  # unknown paths do not grow the labels


def test_model_specs_and_names(model_dirs: dict[str, Path]) -> None:
    assert parse_model_spec(f"{model_dirs['polite']}=rm") == (model_dirs["polite"], "rm")
    assert parse_model_spec(str(model_dirs["polite"])) == (model_dirs["polite"], "polite")
    with pytest.raises(Exception, match="named 'polite'"):
        load_served_models([str(model_dirs["polite"]), f"{model_dirs['trio']}=polite"])
    with pytest.raises(Exception, match="short name without spaces"):
        parse_model_spec(f"{model_dirs['polite']}=a b")
    with pytest.raises(ValueError, match="names must differ"):
        model = RewardModel.load(model_dirs["polite"])
        create_app([ServedModel("x", model), ServedModel("x", model)])


def test_the_command_serves_until_sigterm(model_dirs: dict[str, Path]) -> None:
    port = free_port()
    env = {**os.environ, "REWARDLAB_SERVE_API_KEY": "sekrit"}
    process = subprocess.Popen([sys.executable, "-c", "from rewardlab.cli import app; app()", "serve",
                                f"{model_dirs['polite']}=rm", "--port", str(port), "--max-items", "3"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[1][-2000:]
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        pairs = items(PROMPTS[:3], RESPONSES[:3])
        assert post(base, "/score", {"items": pairs}).status_code == 401  # the key came from the environment
        reply = post(base, "/score", {"items": pairs}, headers={"Authorization": "Bearer sekrit"})
        expected = RewardModel.load(model_dirs["polite"]).score(PROMPTS[:3], RESPONSES[:3])
        assert reply.json()["rewards"] == [float(v) for v in expected]
        reply = post(base, "/score", {"items": pairs * 2}, headers={"X-API-Key": "sekrit"})
        assert reply.status_code == 400 and "at most 3" in reply.json()["detail"]  # --max-items
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode in (0, -signal.SIGTERM), err[-2000:]
