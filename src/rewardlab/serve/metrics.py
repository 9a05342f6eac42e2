"""The reward service's /metrics in the Prometheus text format (version 0.0.4), without a client library.

Requests by endpoint and status, a latency histogram per endpoint, and per model: pairs scored, micro-batches,
pairs embedded, cache hits and misses, pairs waiting. Endpoint labels are the app's own routes (an unknown path
counts as ``other``), so a client cannot grow the label set.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rewardlab.serve.scoring import ServedModel

#: latency histogram bucket bounds, in seconds
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class Metrics:
    """Request counts and latencies, recorded by the app's middleware."""

    def __init__(self, endpoints: Iterable[str]) -> None:
        self.endpoints = set(endpoints)
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_count: dict[str, int] = defaultdict(int)

    def endpoint(self, path: str) -> str:
        return path if path in self.endpoints else "other"

    def observe(self, path: str, status: int, seconds: float) -> None:
        endpoint = self.endpoint(path)
        with self.lock:
            self.requests[(endpoint, status)] += 1
            counts = self.buckets[endpoint]
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            self.latency_sum[endpoint] += seconds
            self.latency_count[endpoint] += 1

    def render(self, models: Iterable[ServedModel]) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])

        with self.lock:
            family("rewardlab_requests_total", "counter", "HTTP requests by endpoint and status.")
            for (endpoint, status), count in sorted(self.requests.items()):
                lines.append(f'rewardlab_requests_total{{endpoint="{_label(endpoint)}",status="{status}"}} {count}')
            family("rewardlab_request_seconds", "histogram", "Request latency from arrival to response, by endpoint.")
            for endpoint in sorted(self.latency_count):
                label = _label(endpoint)
                for bound, count in zip(BUCKETS, self.buckets[endpoint]):
                    lines.append(f'rewardlab_request_seconds_bucket{{endpoint="{label}",le="{bound}"}} {count}')
                lines.append(f'rewardlab_request_seconds_bucket{{endpoint="{label}",le="+Inf"}} '
                             f"{self.latency_count[endpoint]}")
                lines.append(f'rewardlab_request_seconds_sum{{endpoint="{label}"}} {_number(self.latency_sum[endpoint])}')
                lines.append(f'rewardlab_request_seconds_count{{endpoint="{label}"}} {self.latency_count[endpoint]}')
        models = list(models)
        per_model = [
            ("rewardlab_pairs_scored_total", "counter", "(prompt, response) pairs scored.", lambda m: m.batcher.stats.pairs),
            ("rewardlab_batches_total", "counter", "Micro-batches run.", lambda m: m.batcher.stats.batches),
            ("rewardlab_batch_seconds_total", "counter", "Seconds spent running micro-batches.",
             lambda m: m.batcher.stats.seconds),
            ("rewardlab_largest_batch_pairs", "gauge", "Pairs in the largest micro-batch so far.",
             lambda m: m.batcher.stats.largest_batch),
            ("rewardlab_waiting_pairs", "gauge", "Pairs waiting for the model now.", lambda m: m.batcher.stats.waiting_pairs),
            ("rewardlab_pairs_embedded_total", "counter", "Pairs featurized by the encoder (cache misses, deduplicated).",
             lambda m: m.counters.pairs_embedded),
            ("rewardlab_cache_hits_total", "counter", "Pairs whose feature row came from the cache.", lambda m: m.cache.hits),
            ("rewardlab_cache_misses_total", "counter", "Pairs not in the cache.", lambda m: m.cache.misses),
            ("rewardlab_cache_rows", "gauge", "Feature rows in the cache now.", lambda m: len(m.cache.rows)),
        ]
        for name, kind, help_text, value in per_model:
            family(name, kind, help_text)
            for model in models:
                lines.append(f'{name}{{model="{_label(model.name)}"}} {_number(value(model))}')
        return "\n".join(lines) + "\n"
