"""`rewardlab judge` against a fake but real OpenAI-compatible HTTP server on 127.0.0.1 that returns fixed judgements:
both orders (a flip with the order is a tie; probabilities are averaged), principles, the cache (a re-run sends no
request), ratings, and the output dataset that learners train on. The local backend runs on the tiny test model."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.collect.judge import (
    JudgeConfig,
    JudgementCache,
    LocalJudge,
    OpenAIJudge,
    agreement_with_labels,
    judge,
)
from rewardlab.collect.judge_prompts import parse_choice, parse_score
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.parquet import read_parquet, write_parquet
from rewardlab.data.types import Comparison
from rewardlab.generate.local import LocalGenerator
from rewardlab.generate.openai_client import OpenAIGenerator

runner = CliRunner()
#: what the fake judge answers for the user message it is shown: text, and P(A) when logprobs are on
Answer = tuple[str, float | None]


class FakeJudge:
    """An OpenAI-compatible server whose answers come from ``rule(user message)``; counts requests."""

    def __init__(self) -> None:
        self.rule: Callable[[str], Answer] = lambda _: ("A", None)
        self.requests = 0
        self.refuse_logprobs = False
        self.asked_logprobs = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests += 1
                if body.get("logprobs"):
                    owner.asked_logprobs += 1
                    if owner.refuse_logprobs:
                        self._send(400, {"error": {"message": "logprobs are not supported", "type": "invalid"}})
                        return
                text, p_a = owner.rule(body["messages"][-1]["content"])
                logprobs = None
                if body.get("logprobs") and p_a is not None:
                    top = [{"token": token, "logprob": math.log(p), "bytes": None}
                           for token, p in (("A", p_a), (" B", 1 - p_a), ("The", 1e-3)) if p > 0]
                    logprobs = {"content": [{"token": text[:1], "logprob": -0.1, "bytes": None, "top_logprobs": top}]}
                self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                              "finish_reason": "stop", "logprobs": logprobs}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def fake() -> Iterator[FakeJudge]:
    server = FakeJudge()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def shown(message: str) -> tuple[str, str]:
    """The responses the judge was shown first and second."""
    first = re.search(r"\[Response A\]\n(.*?)\n\n\[Response B\]", message, re.S)
    second = re.search(r"\[Response B\]\n(.*?)\n\n", message, re.S)
    assert first and second
    return first.group(1), second.group(1)


def prefers_good(message: str) -> Answer:
    """A judge that reads the content: the response containing 'good' wins, in either position."""
    first, _ = shown(message)
    return ("A", 0.9) if "good" in first else ("B", 0.3)


def pairs(n: int = 4, human: str = "a") -> FeedbackDataset:
    dataset = FeedbackDataset("pairs")
    for i in range(n):
        pid = dataset.add_prompt(f"Question {i}?")
        good, bad = dataset.add_response(pid, f"a good answer {i}"), dataset.add_response(pid, f"bad {i}" + "!" * i)
        a, b = (good, bad) if i % 2 == 0 else (bad, good)  # stored both ways round
        outcome = human if i % 2 == 0 else {"a": "b", "b": "a", "tie": "tie"}[human]
        dataset.add(Comparison(pid, a, b, outcome, annotator_id="human"))  # type: ignore[arg-type]
    return dataset


def client(fake: FakeJudge, concurrency: int = 2) -> OpenAIJudge:
    return OpenAIJudge(OpenAIGenerator("fake-judge", fake.url, concurrency=concurrency, max_retries=0))


def winners(dataset: FeedbackDataset) -> list[str]:
    """The text of each judged pair's winner ('tie' for a tie)."""
    texts = {rid: r.text for rid, r in dataset.responses.items()}
    return ["tie" if c.outcome == "tie" else texts[c.a if c.outcome == "a" else c.b] for c in dataset.comparisons]


def test_a_judge_that_reads_content_wins_in_both_orders(fake: FakeJudge) -> None:
    fake.rule = lambda m: (prefers_good(m)[0], None)  # text only
    report = judge(pairs(), client(fake), JudgeConfig(logprobs=False))
    assert [w.startswith("a good") for w in winners(report.dataset)] == [True] * 4
    assert fake.requests == 8 and report.requests == 8  # 4 pairs × 2 orders
    assert report.counts == {"consistent": 4, "inconsistent": 0, "unreadable_pairs": 0, "ties": 0, "mean_margin": 0.5}
    assert set(report.dataset.annotators()) == {"judge:fake-judge"}


def test_a_judge_that_always_picks_one_position_gives_ties(fake: FakeJudge) -> None:
    fake.rule = lambda _: ("Response A is better.", None)
    report = judge(pairs(), client(fake), JudgeConfig(logprobs=False))
    assert winners(report.dataset) == ["tie"] * 4 and report.counts["inconsistent"] == 4
    fake.rule = lambda m: ("A", None) if "Question 0" in m else ("I cannot tell", None)  # unreadable → tie
    report = judge(pairs(), client(fake), JudgeConfig(logprobs=False))
    assert winners(report.dataset) == ["tie"] * 4 and report.unreadable == 6
    assert report.counts["unreadable_pairs"] == 3 and report.counts["inconsistent"] == 1  # pair 0: A, A


def test_probabilities_of_the_two_orders_are_averaged(fake: FakeJudge) -> None:
    fake.rule = prefers_good  # P(A) 0.9 with good first, 0.3 with good second: P(good) = (0.9 + 0.7) / 2
    report = judge(pairs(), client(fake))
    assert fake.asked_logprobs == 8
    assert all(w.startswith("a good") for w in winners(report.dataset))
    p_good = [c.meta["p_a"] if report.dataset.responses[c.a].text.startswith("a good") else 1 - c.meta["p_a"]
              for c in report.dataset.comparisons]
    assert p_good == pytest.approx([0.8] * 4)
    fake.rule = lambda _: ("A", 0.75)  # pure position bias: P(A) the same either way → exactly ½ → tie
    report = judge(pairs(), client(fake), cache=None)
    assert winners(report.dataset) == ["tie"] * 4


def test_a_server_that_refuses_logprobs_is_read_as_text(fake: FakeJudge) -> None:
    fake.refuse_logprobs = True
    fake.rule = prefers_good
    report = judge(pairs(2), client(fake, concurrency=1))
    assert all(w.startswith("a good") for w in winners(report.dataset))
    assert fake.asked_logprobs == 1  # asked once, then never again
    assert all(c.meta["p_a"] in (0.0, 1.0) for c in report.dataset.comparisons)


PRINCIPLES = ("Which response is more helpful?", "Which response is less harmful?", "Which response is shorter?")


def test_principles_are_judged_one_by_one_and_averaged(fake: FakeJudge) -> None:
    def by_principle(message: str) -> Answer:
        first, _ = shown(message)
        likes_good = "shorter" not in message  # helpful and harmless like the good answer; shorter likes the bad one
        return ("A" if ("good" in first) == likes_good else "B"), None

    fake.rule = by_principle
    report = judge(pairs(), client(fake), JudgeConfig(principles=PRINCIPLES, logprobs=False))
    assert fake.requests == 4 * 3 * 2
    assert all(w.startswith("a good") for w in winners(report.dataset))  # 2 of 3 principles
    meta = report.dataset.comparisons[0].meta
    assert set(meta["principles"]) == set(PRINCIPLES) and meta["p_a"] == pytest.approx(2 / 3)
    two = judge(pairs(), client(fake), JudgeConfig(principles=PRINCIPLES[1:], logprobs=False))
    assert winners(two.dataset) == ["tie"] * 4  # one each way: the mean is ½


def test_the_cache_answers_a_rerun_without_requests(fake: FakeJudge, tmp_path: Path) -> None:
    fake.rule = prefers_good
    cache = JudgementCache(tmp_path / "cache")
    first = judge(pairs(), client(fake), cache=cache)
    assert fake.requests == 8 and first.cached == 0
    again = judge(pairs(), client(fake), cache=cache)
    assert fake.requests == 8 and again.requests == 0 and again.cached == 8
    assert winners(again.dataset) == winners(first.dataset)
    assert [c.meta for c in again.dataset.comparisons] == [c.meta for c in first.dataset.comparisons]
    judge(pairs(), client(fake), JudgeConfig(principles=PRINCIPLES[:1]), cache=cache)  # another question: asked
    assert fake.requests == 16
    damaged = next((tmp_path / "cache").rglob("*.json"))
    damaged.write_text("{not json", encoding="utf-8")
    judge(pairs(), client(fake), cache=cache)
    judge(pairs(), client(fake), JudgeConfig(principles=PRINCIPLES[:1]), cache=cache)
    assert fake.requests == 17  # only the damaged answer is asked again
    assert not list((tmp_path / "cache").rglob(".tmp-*"))


def test_ratings_from_text_and_unreadable_answers(fake: FakeJudge) -> None:
    fake.rule = lambda m: ("Score: 4/5", None) if "good" in m.split("[Response]")[1] else ("no idea", None)
    report = judge(pairs(2), client(fake), JudgeConfig(mode="rating", logprobs=False))
    assert [(report.dataset.responses[r.response_id].text[:6], r.value, r.scale) for r in report.dataset.ratings] == [
        ("a good", 4.0, (1.0, 5.0)), ("a good", 4.0, (1.0, 5.0))]
    assert report.counts == {"rated": 2, "unrated": 2} and report.unreadable == 2


def test_agreement_with_the_sources_labels(fake: FakeJudge) -> None:
    fake.rule = prefers_good
    source = pairs(6, human="a")  # humans prefer the good answer: the judge agrees on all pairs
    report = judge(source, client(fake))
    agreement = agreement_with_labels(report, source, n_resamples=50)
    assert agreement is not None and agreement["agreement"]["value"] == 1.0 and agreement["agreement"]["n"] == 6
    assert agreement["prefer_longer"]["value"] == 1.0  # "a good answer i" is the longer one
    flipped = agreement_with_labels(report, pairs(6, human="b"), n_resamples=50)
    assert flipped is not None and flipped["agreement"]["value"] == 0.0


def test_the_command_writes_feedback_learners_train_on(fake: FakeJudge, tmp_path: Path) -> None:
    fake.rule = prefers_good
    data = write_parquet(pairs(8), tmp_path / "pairs")
    args = ["judge", str(data), "--out", str(tmp_path / "judged"), "--base-url", fake.url, "--model-name",
            "fake-judge", "--cache-dir", str(tmp_path / "cache"), "--quiet", "--resamples", "50"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "8 feedback rows from judge:fake-judge" in result.output and "(16 requests, 0 answers from" in result.output
    assert "agreement with the labels in" in result.output and "1.000" in result.output
    judged = read_parquet(tmp_path / "judged")
    assert judged.annotators() == {"judge:fake-judge": 8}
    again = runner.invoke(app, [*args, "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["requests"] == 0 and fake.requests == 16
    trained = runner.invoke(app, ["train", str(tmp_path / "judged"), "--out", str(tmp_path / "model"), "--encoder",
                                  "hashing:64", "--quiet"])
    assert trained.exit_code == 0, trained.output
    agreement = runner.invoke(app, ["agreement", str(tmp_path / "judged"), "--against", str(data), "--json",
                                    "--resamples", "50"])
    assert agreement.exit_code == 0 and json.loads(agreement.output)["against"]["agreement"]["value"] == 1.0


def test_bad_settings_are_one_line_errors(fake: FakeJudge, tmp_path: Path) -> None:
    data = write_parquet(pairs(2), tmp_path / "pairs")
    result = runner.invoke(app, ["judge", str(data), "--out", str(tmp_path / "o"), "--mode", "essay",
                                 "--base-url", fake.url, "--model-name", "x"])
    assert result.exit_code == 2 and "judge mode must be one of pairwise, rating" in result.output
    result = runner.invoke(app, ["judge", str(data), "--out", str(tmp_path / "o"), "--base-url",
                                 "http://127.0.0.1:9/v1", "--model-name", "x", "--timeout", "2", "--no-cache"])
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output


def test_answers_are_parsed_leniently() -> None:
    assert [parse_choice(t) for t in ("A", "[[B]]", "Response B is better", "Both are equal", "The first", "B.")] == [
        "A", "B", "B", "tie", None, "B"]
    assert [parse_score(t, 1, 5) for t in ("4", "Score: 3/5", "I give it a 9, no, 2", "none")] == [4.0, 3.0, 2.0, None]


def test_the_local_backend_reads_option_probabilities(tiny_model: Path, tmp_path: Path) -> None:
    backend = LocalJudge(LocalGenerator(tiny_model), batch_size=3)
    report = judge(pairs(3), backend, JudgeConfig(max_chars=100), JudgementCache(tmp_path / "c"))
    assert report.requests == 6 and len(report.dataset.comparisons) == 3
    assert all(0.0 <= c.meta["p_a"] <= 1.0 for c in report.dataset.comparisons)
    assert set(report.dataset.annotators()) == {f"judge:{tiny_model.name}"}
    one_by_one = judge(pairs(3), LocalJudge(LocalGenerator(tiny_model), batch_size=1), JudgeConfig(max_chars=100))
    assert [c.meta["p_a"] for c in one_by_one.dataset.comparisons] == pytest.approx(
        [c.meta["p_a"] for c in report.dataset.comparisons], abs=1e-5)  # padding in a batch changes nothing
    ratings = judge(pairs(1), backend, JudgeConfig(mode="rating", max_chars=100))
    assert all(1.0 <= r.value <= 5.0 for r in ratings.dataset.ratings) and len(ratings.dataset.ratings) == 2
    text = judge(pairs(1), backend, JudgeConfig(logprobs=False, max_new_tokens=2, max_chars=100))
    assert len(text.dataset.comparisons) == 1  # greedy text from a random model: most likely unreadable → tie
