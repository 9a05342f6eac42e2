"""How many embedding actors a cluster gets, and how many CPUs (threads) each holds."""

from __future__ import annotations

from typing import Any

import pytest

from rewardlab.embed.ray_embed import RayClusterError, pool_size


class Cluster:
    """What `pool_size` reads of a Ray cluster: its total resources and its nodes."""

    def __init__(self, node_cpus: list[int], gpus: int = 0) -> None:
        self.node_cpus, self.gpus = node_cpus, gpus

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": float(sum(self.node_cpus)), **({"GPU": float(self.gpus)} if self.gpus else {})}

    def nodes(self) -> list[dict[str, Any]]:
        return [{"Alive": True, "Resources": {"CPU": float(c)} if c else {}} for c in self.node_cpus] + [
            {"Alive": False, "Resources": {"CPU": 64.0}}]  # a dead node counts for nothing


def test_by_default_one_actor_per_cpu() -> None:
    assert pool_size(Cluster([2]), None, None) == (2, 1, 0.0)
    assert pool_size(Cluster([0, 1, 1]), None, None) == (2, 1, 0.0)  # a head that runs nothing is left out
    assert pool_size(Cluster([4, 8]), None, None) == (12, 1, 0.0)


def test_workers_and_cpus_per_worker_override_the_default() -> None:
    assert pool_size(Cluster([2]), 1, None) == (1, 2, 0.0)  # one actor holds the node's two cores
    assert pool_size(Cluster([8, 8, 8]), 3, None) == (3, 8, 0.0)  # one actor per node
    assert pool_size(Cluster([4, 8]), 2, None) == (2, 4, 0.0)  # actors fit the smallest node
    assert pool_size(Cluster([4]), None, 2) == (2, 2, 0.0)


def test_a_gpu_cluster_gets_one_actor_per_gpu() -> None:
    assert pool_size(Cluster([16], gpus=2), None, None) == (2, 1, 1.0)


def test_bad_counts_are_clear_errors() -> None:
    with pytest.raises(RayClusterError, match="at least 1"):
        pool_size(Cluster([2]), 0, None)
    with pytest.raises(RayClusterError, match="at least 1"):
        pool_size(Cluster([2]), None, 0)
