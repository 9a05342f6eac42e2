"""The demonstration-reward study's three reward models (BT on pairs, demonstrations vs base samples, fine-tuned
samples vs base samples), each fitted and scored on the held-out pairs independently of the others.

So they run one after the other in this process or as Ray tasks (`rewardlab.evaluate.ray_tasks`, with
``ray=ADDRESS``), after the texts missing from the cache were embedded on the cluster: the scores come back in the
serial order and are the same bit for bit (tests/studies/test_ray_demo_reward.py). Sampling the policies and
fine-tuning one, the slow part on a CPU, stay in the driver: they are one model's work each, not independent fits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import Encoder
from rewardlab.evaluate.ray_tasks import EncoderHandle, map_here_or_on_ray
from rewardlab.rewards.demonstrations import Sample, train_demonstration_reward
from rewardlab.rewards.features import dataset_texts, feature_texts
from rewardlab.rewards.model import RewardModel

if TYPE_CHECKING:
    from rewardlab.studies.demo_reward import DemoRewardConfig

#: the learned rewards, in the record's order; a discriminator's positives are the named samples, base its negatives
REWARDS = {"bt": None, "demo-vs-base": "demonstrations", "sft-vs-base": "sft"}


@dataclass(frozen=True)
class DemoFitJob:
    config: DemoRewardConfig
    train: FeedbackDataset
    test: FeedbackDataset
    samples: Mapping[str, Sequence[Sample]]  # "demonstrations", "base", "sft"
    encoder: EncoderHandle


def fit_and_score(job: DemoFitJob, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Fit the reward ``name`` and score side a and side b of every held-out comparison."""
    from rewardlab.studies.demo_reward import held_out_scores

    config = job.config
    encoder, positives = job.encoder.encoder, REWARDS[name]
    if positives is None:
        model = RewardModel.create(config.bt_learner, encoder=encoder, features=config.features,
                                   seed=config.seed).fit(job.train, device=job.encoder.device)
    else:
        model = train_demonstration_reward(job.samples[positives], job.samples["base"], config.learner,
                                           encoder=encoder, features=config.features, seed=config.seed,
                                           device=job.encoder.device)
    return held_out_scores(model, job.test)


def study_texts(job: DemoFitJob, encoder: Encoder) -> list[str]:
    """Every text the three fits and the held-out scoring embed."""
    mode = job.config.features
    samples = [s for group in job.samples.values() for s in group]
    return (dataset_texts(job.train, mode, encoder) + dataset_texts(job.test, mode, encoder)
            + feature_texts([s.prompt for s in samples], [s.response for s in samples], mode, encoder))


def fit_rewards(job: DemoFitJob, ray: str | None,
                on_embed_progress: Callable[[int, int], None] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each reward's held-out scores, by name: fitted here (``ray`` None) or, after the texts missing from the cache
    were embedded on the cluster at ``ray``, as Ray tasks there."""
    if ray is not None:
        from rewardlab.embed.ray_embed import embed_texts_ray

        embed_texts_ray(study_texts(job, job.encoder.encoder), job.encoder.encoder, address=ray,
                        on_progress=on_embed_progress)
    names = list(REWARDS)
    return dict(zip(names, map_here_or_on_ray(fit_and_score, job, names, ray)))
