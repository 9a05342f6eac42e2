"""How `rewardlab credit` spreads a reward over tokens: its settings, apart from the computation so that the command
line reads the defaults without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.errors import ModelError

METHODS = ("attention", "gradient")


@dataclass(frozen=True)
class CreditConfig:
    """How credit is computed; every default of `rewardlab credit` is here."""

    method: str = "attention"
    #: integrated-gradient points (gradient method): more is closer to completeness, linearly slower
    steps: int = 32

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ModelError(f"unknown credit method {self.method!r}; known: {', '.join(METHODS)}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ModelError(f"steps must be a positive integer, not {self.steps!r}")
