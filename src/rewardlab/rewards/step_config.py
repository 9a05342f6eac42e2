"""The defaults of a process (step) reward model, apart from `rewards.step_rewards` so that the command line reads
them without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from rewardlab.embed.base import DEFAULT_ENCODER


@dataclass(frozen=True)
class StepModelConfig:
    """What `StepRewardModel.create` builds unless told otherwise."""

    #: a head that learns from correctness labels: P(a solution's prefix is still correct)
    kind: str = "outcome-mlp"
    encoder: str = DEFAULT_ENCODER
    features: str = "interaction"
    #: how a solution is cut into steps (`rewardlab.data.steps`)
    split: str = "line"
    seed: int = 0
