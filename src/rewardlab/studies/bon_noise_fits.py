"""The noise study's fits: one per simulated condition × learner × seed, plus the ensemble condition's members.

Every fit trains one model on one simulated label set with its own seed and scores every test candidate; none
depends on another (an ensemble member is the same fit with another seed). So they run in this process, one after
the other, or as Ray tasks (`rewardlab.evaluate.ray_tasks`, with ``ray=ADDRESS``): the candidates' features and the
label sets go to the cluster once, the outcomes come back in the serial order, and the numbers are the same
(tests/studies/test_bon_noise_ray.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rewardlab.embed.base import Encoder
from rewardlab.evaluate.ray_tasks import EncoderHandle, map_here_or_on_ray

if TYPE_CHECKING:
    from rewardlab.studies.bon_noise import BonNoiseConfig, StudyData

#: (β, budget, pairing, seed) of a simulated label set
Condition = tuple[float, int, str, int]
#: (condition, learner, seed of the fit): the fit's seed is the condition's, or an ensemble member's
Fit = tuple[Condition, str, int]


@dataclass(frozen=True)
class FitJob:
    """What every fit of a run shares."""

    data: StudyData
    config: BonNoiseConfig
    encoder_spec: str
    encoder_fingerprint: str
    label_sets: Mapping[Condition, Any]  # condition -> its simulated comparisons (a FeedbackDataset)
    device: str | None = None  # where the heads fit (a resolved name; None: the CPU, and always on Ray)


def ensemble_condition(config: BonNoiseConfig, condition: Condition, kind: str) -> bool:
    """Whether ``kind`` on ``condition`` is the ensemble comparison's: seed 0 of its budget and pairing."""
    _, budget, pairing, seed = condition
    return (budget == config.ensemble_budget and pairing == config.ensemble_pairing and seed == 0
            and kind in config.ensemble_learners)


def _fit_unit(shared: tuple[FitJob, EncoderHandle], fit: Fit) -> tuple[np.ndarray, float]:
    from rewardlab.studies.bon_noise import fit_and_score

    job, handle = shared
    condition, kind, seed = fit
    return fit_and_score(kind, seed, job.label_sets[condition], job.data, job.config, handle.encoder, job.device)


def run_fits(job: FitJob, fits: Sequence[Fit], encoder: Encoder, ray: str | None,
             on_result: Callable[[Fit, tuple[np.ndarray, float]], None]) -> None:
    """Every fit, in order: here (``ray`` None) or as Ray tasks on the cluster at ``ray``; ``on_result`` sees each
    (scores of every test candidate, seconds) in the order of ``fits`` either way. Both paths fit on one torch thread
    (`map_here_or_on_ray`), so their numbers are equal bit for bit at any size."""
    map_here_or_on_ray(_fit_unit, (job, EncoderHandle(encoder)), fits, ray, on_result=on_result)
