"""The defaults of `rewardlab audit`, apart from the audit itself so that the command line reads them without
importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuditSettings:
    """Every default of `rewardlab audit` in one place."""

    probes: tuple[str, ...] | None = None  # None: every registered perturbation probe
    probe_items: int = 200  # held-out responses each probe perturbs (one per prompt first)
    n_examples: int = 10
    seed: int = 0
    n_resamples: int = 2000
