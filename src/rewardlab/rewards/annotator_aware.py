"""What every annotator-aware head shares: a vocabulary of the annotator ids it was trained with, one annotator's
reward (the population's, with a warning, for an id it does not know), the spread of rewards over its annotators,
and the vocabulary file saved inside the head directory (so the model's SHA-256 digests cover it).

A head mixes in `AnnotatorAware` and says how it scores known annotators (`predict_annotators`) and the population
(`predict`); `bt-mlp-annotator` (`rewards.annotator_head`) and `bt-mixture` (`rewards.mixture`) do.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rewardlab.artifacts import read_json_object
from rewardlab.errors import ModelError

#: quantiles reported by `AnnotatorAware.predict_distribution`
QUANTILES = (0.1, 0.5, 0.9)
VOCABULARY_FILE = "annotators.json"


class UnknownAnnotatorWarning(UserWarning):
    """Scoring asked for an annotator the model was not trained with: the population reward is used instead."""


class AnnotatorAware:
    """Mixin: ``annotators_`` (ids in the head's own order) plus `predict` and `predict_annotators` from the head."""

    annotators_: list[str]

    if TYPE_CHECKING:  # provided by the head class this is mixed into (after HeadBase in its bases)
        def _check_fitted(self) -> None: ...
        def predict(self, x: np.ndarray) -> np.ndarray: ...

    def predict_annotators(self, x: np.ndarray) -> np.ndarray:
        """(n_known_annotators, n_rows): every known annotator's reward, in `annotators` order."""
        raise NotImplementedError

    @property
    def annotators(self) -> list[str]:
        """The annotator ids the head was trained with (its vocabulary)."""
        self._check_fitted()
        return list(self.annotators_)

    def predict_for(self, x: np.ndarray, annotator: str) -> np.ndarray:
        """Annotator ``annotator``'s reward; an id not in the vocabulary gets the population reward and a warning."""
        if annotator not in self.annotators:
            warnings.warn(f"annotator {annotator!r} is not one this model was trained with "
                          f"({len(self.annotators_)} known); scoring with the population reward",
                          UnknownAnnotatorWarning, stacklevel=2)
            return self.predict(x)
        return np.asarray(self.predict_annotators(x)[self.annotators_.index(annotator)])

    def predict_distribution(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Over the known annotators, per row: ``mean``, ``std`` and quantiles ``q10``/``q50``/``q90`` of their rewards.

        Rewards are comparable across annotators only in differences between responses (each annotator's scale may
        have its own offset); ``prob_prefers`` is the offset-free summary for pairs."""
        rewards = self.predict_annotators(x)
        stats = {"mean": rewards.mean(0), "std": rewards.std(0)}
        for q, values in zip(QUANTILES, np.quantile(rewards, QUANTILES, axis=0)):
            stats[f"q{round(q * 100):02d}"] = values
        return stats

    def save_vocabulary(self, directory: Path) -> None:
        (directory / VOCABULARY_FILE).write_text(json.dumps({"annotators": self.annotators_}, indent=1),
                                                 encoding="utf-8")


def read_vocabulary(directory: Path) -> list[str]:
    """The annotator ids saved with a head, checked: a list of non-empty ids (a `ModelError` naming the file if not)."""
    vocabulary = read_json_object(directory / VOCABULARY_FILE, "annotator vocabulary").get("annotators")
    if not isinstance(vocabulary, list) or not all(isinstance(a, str) and a for a in vocabulary):
        raise ModelError(f"{directory / VOCABULARY_FILE}: 'annotators' must be a list of non-empty ids")
    return list(vocabulary)
