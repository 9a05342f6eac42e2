"""A process reward model (PRM): P(step k is good | question, solution up to step k), from `StepLabel` rows.

It is an ordinary label head (``outcome-mlp``, ``outcome-logistic``, any kind that learns from labels) trained
on one example per labelled step: the features of (question, prefix of the solution through step k) with the
step's label as the target. The prefix, not the step alone, is what is embedded, because whether a step is right
depends on what came before it (``= 26`` is right after ``13 * 2`` and wrong after ``13 * 3``). Scoring a solution
gives one probability per step; `rewardlab.optimize.step_selection` folds them into one number.

A step counts as good when its label's value is > 0: the automatic labels are 1/0, and the annotation service's
-1/0/1 makes its neutral 0 "not good", as a conservative reading of process supervision.

``fit(dataset, device=...)`` fits a torch head on that device (`rewardlab.rewards.head_device`: LightGBM heads
stay on the CPU; a CPU fit is the fit without a device), where it then scores; the saved head loads anywhere.

Saved as a directory like `RewardModel`: ``config.json`` (format, encoder spec and fingerprint, feature mode, the
step split, head kind and params, training info, SHA-256 of the head's files) and ``head/`` in the head's own
layout; written aside and renamed into place; refused on load if the encoder or the files do not match.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import expit

import rewardlab
from rewardlab.artifacts import (
    DIGESTS_KEY,
    verify_digests,
)
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.steps import check_split, split_steps, step_prefixes
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder, make_encoder
from rewardlab.errors import DataError, ModelError
from rewardlab.rewards.base import FitProgress, RewardHead, load_head
from rewardlab.rewards.features import check_mode, featurize_texts
from rewardlab.rewards.head_device import fit_head
from rewardlab.rewards.heads import HEAD_KINDS, make_head
from rewardlab.rewards.model import read_model_config, save_head_with_config, trained_encoder
from rewardlab.rewards.step_config import StepModelConfig
from rewardlab.rewards.torch_training import fit_device
from rewardlab.rewards.training_set import TrainingSet

if TYPE_CHECKING:
    import torch

STEP_MODEL_FORMAT = "rewardlab.step_reward_model/1"


def step_examples(dataset: FeedbackDataset, by: str = "line") -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(questions, prefixes, targets, prompt groups): one training example per `StepLabel` row of ``dataset``.

    A label naming a step the response does not have (split ``by``) is a `DataError` naming the row: labels made
    with another split would silently teach the wrong steps.
    """
    check_split(by)
    groups = dataset.prompt_groups()
    group_index: dict[str, int] = {}
    prefixes_of: dict[str, list[str]] = {}
    questions, prefixes, targets, group = [], [], [], []
    for row, label in enumerate(dataset.step_labels):
        response = dataset.responses.get(label.response_id)
        if response is None:
            raise DataError(f"step label for unknown response {label.response_id!r}", source=dataset.name, row=row,
                            field="response_id")
        if response.id not in prefixes_of:
            prefixes_of[response.id] = step_prefixes(response.text, by)
        steps = prefixes_of[response.id]
        if not 0 <= label.step < len(steps):
            raise DataError(f"step {label.step} of a response with {len(steps)} steps (split by {by}); were the labels "
                            "made with another split?", source=dataset.name, row=row, field="step")
        if not np.isfinite(label.value):
            raise DataError(f"expected a finite value, got {label.value!r}", source=dataset.name, row=row, field="value")
        questions.append(dataset.prompts[response.prompt_id].text)
        prefixes.append(steps[label.step])
        targets.append(1.0 if label.value > 0 else 0.0)
        group.append(group_index.setdefault(groups[response.prompt_id], len(group_index)))
    return questions, prefixes, np.array(targets, dtype=np.float32), np.array(group, dtype=np.int64)


def label_training_set(x: np.ndarray, targets: np.ndarray, groups: np.ndarray, lengths: np.ndarray) -> TrainingSet:
    """A `TrainingSet` holding only correctness labels, one item per step example (what a label head fits)."""
    n = len(targets)
    empty = np.zeros(0, dtype=np.int64)
    return TrainingSet(x=x.astype(np.float32), response_ids=[f"step{i}" for i in range(n)], group=groups,
                       pair_a=empty, pair_b=empty, pair_target=np.zeros(0, np.float32), rating_item=empty,
                       rating_value=np.zeros(0, np.float32), label_item=np.arange(n, dtype=np.int64),
                       label_value=targets.astype(np.float32), length=lengths.astype(np.float64))


class StepRewardModel:
    """Encoder + feature mode + label head over solution prefixes; ``split`` says how solutions are cut into steps."""

    def __init__(self, head: RewardHead, encoder: Encoder | str = DEFAULT_ENCODER, features: str = "interaction",
                 kind: str = "", split: str = "line", cache_dir: str | Path | None = None) -> None:
        check_mode(features)
        check_split(split)
        self.head = head
        self.encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
        self.features = features
        self.kind = kind
        self.split = split
        self.cache_dir = cache_dir
        self.train_info: dict[str, Any] = {}

    @classmethod
    def create(cls, kind: str = StepModelConfig.kind, encoder: Encoder | str = StepModelConfig.encoder,
               features: str = StepModelConfig.features, split: str = StepModelConfig.split,
               seed: int = StepModelConfig.seed,
               cache_dir: str | Path | None = None, **params: Any) -> StepRewardModel:
        """An unfitted PRM with a head of ``kind``, which must learn from correctness labels."""
        if HEAD_KINDS.lookup(kind).feedback != "labels":
            labels = [name for name, k in HEAD_KINDS.items() if k.feedback == "labels"]
            raise ModelError(f"a step reward model needs a head that learns from labels ({', '.join(labels)}), "
                             f"not {kind!r}")
        return cls(make_head(kind, seed=seed, **params), encoder, features, kind, split, cache_dir)

    def featurize(self, prompts: Sequence[str], texts: Sequence[str],
                  on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        x, _ = featurize_texts(prompts, texts, self.encoder, self.features, cache_dir=self.cache_dir,
                               on_progress=on_progress)
        return x

    def fit(self, dataset: FeedbackDataset, on_progress: Callable[[int, int], None] | None = None,
            on_fit_progress: FitProgress | None = None, device: torch.device | str | None = None) -> StepRewardModel:
        """Train on the step labels of ``dataset`` (both classes must occur: a head cannot learn from one), the head
        on ``device`` (None: the CPU; a spec such as ``"cuda"`` is resolved)."""
        started = time.perf_counter()
        device = None if device is None else fit_device(device)  # a GPU that is not here fails before the embedding
        questions, prefixes, targets, groups = step_examples(dataset, self.split)
        if not len(targets):
            raise ModelError(f"{dataset.name}: no step labels to train on (label steps first: `rewardlab steps label`)")
        if targets.min() == targets.max():
            raise ModelError(f"{dataset.name}: every one of the {len(targets)} step labels is "
                             f"{'good' if targets[0] else 'bad'}; a step model needs both good and bad steps")
        x = self.featurize(questions, prefixes, on_progress)
        data = label_training_set(x, targets, groups, np.array([len(p) for p in prefixes]))
        fit_head(self.head, data, on_fit_progress, device)
        self.train_info = {"data": dataset.name, "data_fingerprint": dataset.fingerprint(),
                           "step_examples": int(len(targets)), "good_steps": int(targets.sum()),
                           "fit_seconds": round(time.perf_counter() - started, 3)}
        return self

    # ------------------------------------------------------------------ scoring
    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(step good) for feature rows of (question, prefix): the head's logit through a sigmoid."""
        return np.asarray(expit(np.asarray(self.head.predict(x), dtype=np.float64)))

    def step_probabilities(self, prompts: Sequence[str], responses: Sequence[str],
                           on_progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
        """For each (prompt, response), P(good) of each of its steps, in order (empty for a response with none).
        All prefixes go through one featurization, so the cache and batching serve the whole call."""
        if len(prompts) != len(responses):
            raise ModelError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}")
        prefixes = [step_prefixes(text, self.split) for text in responses]
        flat_prompts = [p for p, steps in zip(prompts, prefixes) for _ in steps]
        flat_prefixes = [s for steps in prefixes for s in steps]
        probs = self.predict_proba(self.featurize(flat_prompts, flat_prefixes, on_progress)) if flat_prefixes \
            else np.zeros(0)
        bounds = np.cumsum([0] + [len(steps) for steps in prefixes])
        return [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def steps(self, text: str) -> list[str]:
        """The step texts of ``text`` under this model's split (what each probability is about)."""
        return [step.text for step in split_steps(text, self.split)]

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {"format": STEP_MODEL_FORMAT, "rewardlab_version": rewardlab.__version__, "kind": self.kind,
                "encoder": {"spec": self.encoder.spec, "fingerprint": self.encoder.fingerprint(), "dim": self.encoder.dim},
                "features": self.features, "split": self.split, "head": self.head.params(), "train": self.train_info}

    def save(self, directory: str | Path) -> Path:
        """``directory/head`` plus ``config.json`` with the head files' checksums, written aside and renamed in."""
        return save_head_with_config(directory, self.head, self.config())

    @classmethod
    def load(cls, directory: str | Path, cache_dir: str | Path | None = None, *,
             allow_external_encoder: bool = False) -> StepRewardModel:
        """A PRM written by `save`; a `ModelError` naming the file for another format, a changed encoder, bad
        checksums or a damaged config."""
        directory = Path(directory)
        config_path, config, encoder_info = read_model_config(directory, STEP_MODEL_FORMAT, "step reward model",
                                                              ("features", "split", "kind"), allow_external_encoder)
        verify_digests(directory, config.get(DIGESTS_KEY), config_path)
        encoder = trained_encoder(encoder_info, config_path)
        model = cls(load_head(directory / "head"), encoder, config["features"], config["kind"], config["split"], cache_dir)
        train = config.get("train", {})
        model.train_info = train if isinstance(train, dict) else {}
        return model
