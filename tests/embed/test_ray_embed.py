"""Embedding on a Ray cluster of two worker nodes: same vectors as the serial path, each text embedded once, the
cache complete, a worker killed mid-run is survived, and an unreachable address is one clean line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'rewardlab[ray]')")

from rewardlab.embed import EmbeddingCache, HashingEncoder, embed_texts, make_encoder  # noqa: E402
from rewardlab.embed.ray_embed import ChunkResult, embed_texts_ray  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """A head that runs nothing (0 CPUs) and two one-CPU worker nodes, all on 127.0.0.1."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, logging_level="error")
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def corpus(n: int) -> list[str]:
    """``n`` distinct texts of varied length, plus duplicates (which must be embedded once)."""
    rng = np.random.default_rng(0)
    words = ["reward", "model", "prompt", "answer", "the", "sea", "poem", "lock", "help", "safe", "number", "why"]
    texts = [f"{i} " + " ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for i in range(n)]
    return texts + texts[:50]


def stored_rows(cache: EmbeddingCache) -> int:
    """Rows over every pack: a text embedded twice would be stored twice."""
    from safetensors import safe_open

    rows = 0
    for pack in cache.packs_dir.glob("*.safetensors"):
        with safe_open(str(pack), framework="np") as handle:
            rows += handle.get_tensor("keys").shape[0]
    return rows


def check_against_serial(texts: list[str], encoder: object, vectors: np.ndarray, cache_dir: Path, tmp: Path) -> None:
    serial, _ = embed_texts(texts, encoder, cache_dir=tmp / "serial")  # type: ignore[arg-type]
    assert np.array_equal(vectors, serial)
    cache = EmbeddingCache(encoder.fingerprint(), encoder.dim, cache_dir)  # type: ignore[attr-defined]
    unique = list(dict.fromkeys(texts))
    stored = cache.get_many(unique)
    assert len(stored) == len(unique)  # the cache is complete
    assert stored_rows(cache) == len(unique)  # each text embedded (and stored) once
    assert all(np.array_equal(stored[t], v) for t, v in zip(texts, vectors))


def test_hashing_on_two_workers_matches_serial_and_fills_the_cache(cluster: object, tmp_path: Path) -> None:
    texts = corpus(2000)
    encoder = HashingEncoder()
    vectors, stats = embed_texts_ray(texts, encoder, cache_dir=tmp_path / "ray", chunk_size=100)
    assert stats.workers == 2 and stats.misses == 2000 and stats.unique == 2000 and stats.texts == 2050
    assert sorted(c.chunk for c in stats.chunks) == list(range(20))
    check_against_serial(texts, encoder, vectors, tmp_path / "ray", tmp_path)
    again, rerun = embed_texts_ray(texts, encoder, cache_dir=tmp_path / "ray")
    assert rerun.hits == 2000 and rerun.misses == 0 and not rerun.chunks and np.array_equal(again, vectors)


def test_a_worker_killed_mid_run_is_retried_with_identical_vectors(cluster: object, tmp_path: Path) -> None:
    texts = corpus(2000)
    encoder = HashingEncoder()
    killed: list[int] = []

    def kill_first_worker(chunk: ChunkResult) -> None:
        if not killed:  # the first chunk back names a live pool actor: kill its process while others are pending
            os.kill(chunk.pid, signal.SIGKILL)
            killed.append(chunk.pid)

    vectors, stats = embed_texts_ray(texts, encoder, cache_dir=tmp_path / "ray", chunk_size=50, on_chunk=kill_first_worker)
    assert killed and len(stats.chunks) == 40
    assert any(c.pid != killed[0] for c in stats.chunks[1:])  # the rest ran elsewhere (another or a restarted actor)
    check_against_serial(texts, encoder, vectors, tmp_path / "ray", tmp_path)


@pytest.mark.slow
def test_minilm_int8_vectors_do_not_depend_on_batch_mates_and_match_serial(cluster: object, tmp_path: Path) -> None:
    encoder = make_encoder("minilm:int8")
    texts = corpus(300)
    alone = encoder.encode(texts[:3])
    with_long_mates = encoder.encode([*texts[:3], "word " * 200, "a"])[:3]
    assert np.array_equal(alone, with_long_mates)  # no padding effect: any chunking gives the same vectors
    vectors, stats = embed_texts_ray(texts, encoder, cache_dir=tmp_path / "ray", chunk_size=64)
    assert stats.misses == 300
    check_against_serial(texts, encoder, vectors, tmp_path / "ray", tmp_path)


def test_an_unreachable_address_is_one_clean_line(tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "rewardlab.cli", "embed", "--texts", str(texts), "--encoder", "hashing",
                           "--quiet", "--ray", "127.0.0.1:9"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in errors[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_the_core_and_the_cli_do_not_import_ray() -> None:
    """Ray is an optional extra: importing the library, the CLI or this module must not load it."""
    code = ("import sys, rewardlab.embed, rewardlab.rewards.model, rewardlab.cli, rewardlab.embed.ray_embed, "
            "rewardlab.cli.ray_embedding; assert 'ray' not in sys.modules, 'ray was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_train_and_evaluate_take_ray_and_then_find_every_vector_cached(cluster: object, tmp_path: Path) -> None:
    from cli_helpers import demo_lines, run

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(demo_lines(40)), encoding="utf-8")
    address = cluster.address  # type: ignore[attr-defined]
    code, output = run("train", str(data), "--out", str(tmp_path / "rm"), "--encoder", "hashing", "--head", "bt-linear",
                       "--cache-dir", str(tmp_path / "cache"), "--quiet", "--ray", address)
    assert code == 0, output
    assert f"Ray ({address}): 120 texts embedded by 1 worker in" in output  # 40 pairs: 80 responses, 40 prompts; 1 chunk
    code, output = run("evaluate", str(data), "--model", str(tmp_path / "rm"), "--cache-dir", str(tmp_path / "cache"),
                       "--quiet", "--ray", address)
    assert code == 0, output
    assert "texts were already cached; nothing sent to the cluster" in output  # train's Ray pass filled the cache


def test_scoring_pairs_warmed_on_ray_are_all_cached_for_the_model(cluster: object, tmp_path: Path) -> None:
    """What bon-eval --ray does: every text the model's feature mode needs for the pairs lands in its cache."""
    from rewardlab.cli.ray_embedding import warm_pairs_on_ray
    from rewardlab.rewards.features import feature_texts
    from rewardlab.rewards.model import RewardModel
    from synthetic import preference_dataset

    rows = [(f"question {i}", f"a careful answer {i}", "no") for i in range(20)]
    model = RewardModel.create("bt-linear", encoder="hashing:64", cache_dir=tmp_path / "cache", max_epochs=5)
    model.fit(preference_dataset("polite", rows))
    prompts = [f"pool prompt {i // 4}" for i in range(300)]
    responses = [f"candidate {i} " + "word " * (i % 17) for i in range(300)]
    warm_pairs_on_ray(prompts, responses, model, cluster.address, quiet=True)  # type: ignore[attr-defined]
    texts = list(dict.fromkeys(feature_texts(prompts, responses, model.features, model.encoder)))
    cache = EmbeddingCache(model.encoder.fingerprint(), model.encoder.dim, tmp_path / "cache")
    stored = cache.get_many(texts)
    assert len(stored) == len(texts)
    expected, _ = embed_texts(texts, model.encoder, use_cache=False)
    assert np.array_equal(np.stack([stored[t] for t in texts]), expected)


def test_score_input_with_ray_keeps_stdout_jsonl_and_scores_as_without(cluster: object, tmp_path: Path) -> None:
    import json

    from cli_helpers import demo_lines, run, runner
    from rewardlab.cli import app

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(demo_lines(20)), encoding="utf-8")
    code, output = run("train", str(data), "--out", str(tmp_path / "rm"), "--encoder", "hashing", "--head", "bt-linear",
                       "--quiet")
    assert code == 0, output
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"p{i}", "response": f"answer {i}"}) + "\n" for i in range(30)) +
                    json.dumps({"prompt": "pool", "responses": ["x", {"text": "y"}]}) + "\n", encoding="utf-8")
    plain = tmp_path / "plain.jsonl"
    code, output = run("score", "--model", str(tmp_path / "rm"), "--input", str(rows), "--output", str(plain))
    assert code == 0, output
    address = cluster.address  # type: ignore[attr-defined]
    result = runner.invoke(app, ["score", "--model", str(tmp_path / "rm"), "--input", str(rows), "--ray", address,
                                 "--cache-dir", str(tmp_path / "fresh-cache")])
    assert result.exit_code == 0, result.output
    assert "texts embedded by 1 worker" in result.stderr  # the summary goes to stderr ...
    scored = [json.loads(line) for line in result.stdout.splitlines()]  # ... so stdout is the scored rows alone
    assert scored == [json.loads(line) for line in plain.read_text(encoding="utf-8").splitlines()]
