"""A reward model as the service holds it: micro-batched scoring through an in-memory cache of feature rows.

The service computes exactly what `RewardModel.score_stats` computes: a pair's feature row comes from the model's
own featurization (`rewardlab.rewards.features.featurize_texts`, with the model's encoder and feature mode), and
each request's rows go through the head together, as one in-process call on that request would. Only the
embedding work of concurrent requests is shared (one encoder pass per micro-batch, texts deduplicated).

The cache keeps the feature rows of recently scored (prompt, response) pairs (keyed by a digest of both texts),
so a pair scored again (a best-of-n re-rank, a trainer's repeated prompts and samples, an evaluation re-run) is
not embedded again. It lives in memory: the on-disk embedding cache writes one pack per call, which suits a
batch job, not a service scoring a few pairs per request. Rows are the same whichever batch computed them for a
row-wise encoder (``hashing``); a neural encoder pads a batch, which can move a vector in its last float bits.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.errors import ModelError
from rewardlab.rewards.features import featurize_texts
from rewardlab.rewards.model import RewardModel
from rewardlab.serve.batching import MicroBatcher
from rewardlab.serve.config import QuerySplit, ServeConfig
from rewardlab.serve.limits import clip

Pairs = list[tuple[str, str]]


class RowCache:
    """Least-recently-used feature rows by (prompt, response); ``size`` 0 keeps nothing. Not thread-safe: the model's
    batch thread is its only user."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(prompt: str, response: str) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        digest.update(len(prompt).to_bytes(8, "little"))
        digest.update(prompt.encode("utf-8", "surrogatepass"))
        digest.update(response.encode("utf-8", "surrogatepass"))
        return digest.digest()

    def get(self, key: bytes) -> np.ndarray | None:
        row = self.rows.get(key)
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        self.rows.move_to_end(key)
        return row

    def put(self, key: bytes, row: np.ndarray) -> None:
        if self.size == 0:
            return
        self.rows[key] = row
        self.rows.move_to_end(key)
        while len(self.rows) > self.size:
            self.rows.popitem(last=False)


@dataclass
class ModelCounters:
    """Per-model counts for /metrics (updated in the batch thread, read by the event loop)."""

    pairs_embedded: int = 0
    embed_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ServedModel:
    """One reward model behind the service: its name, its batcher and its cache."""

    def __init__(self, name: str, model: RewardModel, path: str | Path | None = None,
                 config: ServeConfig | None = None) -> None:
        config = config or ServeConfig()
        self.name = name
        self.model = model
        self.path = None if path is None else str(path)
        self.cache = RowCache(config.cache_size)
        self.counters = ModelCounters()
        self.batcher: MicroBatcher[Pairs, dict[str, np.ndarray]] = MicroBatcher(
            self.score_jobs, config.max_batch, config.max_wait_ms / 1000, config.max_queue)

    def describe(self) -> dict[str, Any]:
        """What /models says about the model (no training data, no file paths beyond the folder name given)."""
        model = self.model
        return {"name": self.name, "kind": model.kind, "encoder": model.encoder.spec, "features": model.features,
                "ensemble": model.is_ensemble, "members": model.n_members,
                "stats": ["score", "mean", "std", "min", "lcb"] if model.is_ensemble else ["score"]}

    def rows(self, pairs: Pairs) -> np.ndarray:
        """Feature rows of ``pairs``: cached ones from the cache, the rest featurized in one pass and cached."""
        keys = [RowCache.key(p, r) for p, r in pairs]
        found: dict[bytes, np.ndarray] = {}
        missing: dict[bytes, tuple[str, str]] = {}
        for key, pair in zip(keys, pairs):
            if key in found or key in missing:
                continue
            row = self.cache.get(key)
            if row is None:
                missing[key] = pair
            else:
                found[key] = row
        if missing:
            prompts = [p for p, _ in missing.values()]
            responses = [r for _, r in missing.values()]
            x, stats = featurize_texts(prompts, responses, self.model.encoder, self.model.features, use_cache=False)
            for key, row in zip(missing, x):
                found[key] = row
                self.cache.put(key, row)
            with self.counters.lock:
                self.counters.pairs_embedded += len(missing)
                self.counters.embed_seconds += stats.seconds
        width = next(iter(found.values())).shape[0] if found else 0
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, width), np.float32)

    def score_jobs(self, jobs: Sequence[Pairs]) -> list[dict[str, np.ndarray]]:
        """`STAT_KEYS` per job: rows for every job's pairs at once, then each job's rows through the head alone."""
        x = self.rows([pair for job in jobs for pair in job])
        out, start = [], 0
        for job in jobs:
            out.append(self.model.predict_stats(x[start:start + len(job)]))
            start += len(job)
        return out

    async def score(self, pairs: Pairs) -> dict[str, np.ndarray]:
        """`STAT_KEYS` of ``pairs`` (the same numbers as ``model.score_stats``), through the micro-batcher."""
        if not pairs:
            return {key: np.zeros(0) for key in ("score", "mean", "std", "min", "lcb")}
        return await self.batcher.submit(pairs, len(pairs))


def _strip_end(text: str, markers: tuple[str, ...]) -> str:
    """``text`` without any of ``markers`` at its end, repeatedly, with the whitespace before each; a text ending in
    none of them is returned as it is."""
    stripped = False
    while True:
        trimmed = text.rstrip()
        marker = next((m for m in markers if m and trimmed.endswith(m)), None)
        if marker is None:
            return trimmed if stripped else text
        text, stripped = trimmed[: -len(marker)], True


class SplitError(ValueError):
    """A /get_reward query cannot be cut into prompt and response."""


def split_query(query: str, prompt: str | None, split: QuerySplit) -> tuple[str, str]:
    """(prompt, response) of one OpenRLHF query, as `QuerySplit` documents."""
    if prompt is not None and prompt and query.startswith(prompt):
        head, response = prompt, query[len(prompt):]
    elif split.separator is not None and split.separator in query:
        cut = query.rindex(split.separator)
        head, response = query[:cut], query[cut + len(split.separator):]
    elif prompt is not None:
        raise SplitError("the query does not start with its prompt" +
                         ("" if split.separator is None else ", and holds no separator"))
    elif split.separator is not None:
        raise SplitError("the query holds no separator, and no prompt was sent")
    else:
        raise SplitError("no prompt was sent and the server has no --query-separator: cannot tell prompt from response")
    head = _strip_end(head, split.prompt_strip)
    if split.prompt_format is not None:
        from rewardlab.optimize.trl_rewards import PolicyError, reward_prompt_text

        try:
            head = reward_prompt_text(head, split.prompt_format)
        except PolicyError as exc:
            raise SplitError(str(exc)) from None
    return head, _strip_end(response, split.strip)


def parse_model_spec(spec: str) -> tuple[Path, str]:
    """``PATH[=NAME]`` → (path, name); the name defaults to the folder's name. A path that itself holds ``=`` and
    exists is taken whole."""
    path, name = spec, ""
    if "=" in spec and not Path(spec).exists():
        path, _, name = spec.rpartition("=")
    folder = Path(path)
    name = name or folder.resolve().name
    if not name or len(name) > 200 or any(c.isspace() or not c.isprintable() for c in name):
        raise ModelError(f"{clip(spec, 120)}: a served model needs a short name without spaces (MODEL=NAME)")
    return folder, name


def load_served_models(specs: Sequence[str], config: ServeConfig | None = None) -> list[ServedModel]:
    """Load every ``PATH[=NAME]`` as a `ServedModel`; names must differ."""
    if not specs:
        raise ModelError("serve at least one model: rewardlab serve MODEL_DIR[=NAME] ...")
    served: list[ServedModel] = []
    for spec in specs:
        path, name = parse_model_spec(spec)
        if any(m.name == name for m in served):
            raise ModelError(f"two models are named {name!r}; name them apart with MODEL=NAME")
        served.append(ServedModel(name, RewardModel.load(path), path, config))
    return served
