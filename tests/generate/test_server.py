"""`generate serve` over the tiny model, called by the official OpenAI client through `OpenAIGenerator`."""

from __future__ import annotations

import httpx
import openai
import pytest

from rewardlab.generate import GenerationError
from rewardlab.generate.openai_client import OpenAIGenerator


@pytest.fixture(scope="module")
def client(tiny_server: str) -> OpenAIGenerator:
    return OpenAIGenerator("tiny", tiny_server, timeout=30, max_retries=0)


def test_n_samples_per_prompt(client: OpenAIGenerator) -> None:
    texts = client.generate(["hello there", "What is the capital of France?"], n=3, max_new_tokens=5, seed=0)
    assert [len(row) for row in texts] == [3, 3]


def test_seed_reaches_the_model(client: OpenAIGenerator) -> None:
    first = client.generate(["hello there"], n=2, max_new_tokens=8, seed=11)
    assert client.generate(["hello there"], n=2, max_new_tokens=8, seed=11) == first
    assert client.generate(["hello there"], n=2, max_new_tokens=8, seed=12) != first


def test_concurrent_requests_keep_prompt_order_and_seeds(tiny_server: str, client: OpenAIGenerator) -> None:
    prompts = ["one", "two", "three", "four"]
    parallel = OpenAIGenerator("tiny", tiny_server, concurrency=4, max_retries=0)
    assert parallel.generate(prompts, n=2, max_new_tokens=6, seed=3) == client.generate(prompts, n=2, max_new_tokens=6,
                                                                                        seed=3)


def test_response_follows_the_openai_schema(tiny_server: str) -> None:
    raw = openai.OpenAI(base_url=tiny_server, api_key="none", max_retries=0)
    response = raw.chat.completions.create(model="tiny", messages=[{"role": "system", "content": "Be brief."},
                                                                   {"role": "user", "content": "hello"}],
                                           n=2, max_tokens=4, temperature=0.7, top_p=0.9, seed=1)
    assert response.object == "chat.completion" and response.model == "tiny"
    assert [c.index for c in response.choices] == [0, 1]
    assert all(c.message.role == "assistant" and c.finish_reason in ("stop", "length") for c in response.choices)
    usage = response.usage
    assert usage is not None and usage.prompt_tokens > 0 and 2 <= usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert [m.id for m in raw.models.list()] == ["tiny"]


def test_bad_requests_get_openai_errors(tiny_server: str, client: OpenAIGenerator) -> None:
    with pytest.raises(GenerationError, match="messages"):
        client.generate([[]], n=1)
    reply = httpx.post(f"{tiny_server}/chat/completions", json={"messages": [{"role": "user", "content": "x"}],
                                                                "stream": True})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "stream"
    long_prompt = "the sea and the sky " * 200
    reply = httpx.post(f"{tiny_server}/chat/completions", json={"messages": [{"role": "user", "content": long_prompt}]})
    assert reply.status_code == 400 and "context" in reply.json()["error"]["message"]


def test_unreachable_server_is_a_clean_error(unused_port: int) -> None:
    nobody = OpenAIGenerator("tiny", f"http://127.0.0.1:{unused_port}/v1", timeout=5, max_retries=0)
    with pytest.raises(GenerationError, match="127.0.0.1"):
        nobody.generate(["hi"])
