"""`RewardModel` = encoder + feature mode + head, saved as a directory (config.json + weights, no pickle).

The encoder's fingerprint is stored with the model and checked on load, so a model is never scored
with embeddings it was not trained on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import rewardlab
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder, make_encoder
from rewardlab.errors import ModelError
from rewardlab.rewards.ensemble import EnsembleHead
from rewardlab.rewards.features import featurize_dataset, featurize_texts
from rewardlab.rewards.heads import load_head, make_head
from rewardlab.rewards.training_set import build_training_set

MODEL_FORMAT = "rewardlab.reward_model/1"


class RewardModel:
    def __init__(
        self,
        head: Any,
        encoder: Encoder | str = DEFAULT_ENCODER,
        features: str = "interaction",
        kind: str = "",
        cache_dir: str | Path | None = None,
    ) -> None:
        self.head = head
        self.encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
        self.features = features
        self.kind = kind
        self.cache_dir = cache_dir
        self.train_info: dict[str, Any] = {}

    @classmethod
    def create(cls, kind: str, encoder: Encoder | str = DEFAULT_ENCODER, features: str = "interaction", seed: int = 0,
               ensemble: int = 0, cache_dir: str | Path | None = None, **params: Any) -> RewardModel:
        return cls(make_head(kind, seed=seed, ensemble=ensemble, **params), encoder, features, kind, cache_dir)

    def fit(self, dataset: FeedbackDataset, features: dict[str, np.ndarray] | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> RewardModel:
        """Train on ``dataset``; pass precomputed ``features`` (response id -> row) to skip embedding."""
        started = time.perf_counter()
        if features is None:
            features, _ = featurize_dataset(dataset, self.encoder, self.features, cache_dir=self.cache_dir,
                                            on_progress=on_progress)
        data = build_training_set(dataset, {rid: features[rid] for rid in dataset.responses})
        self.head.fit(data)
        self.train_info = {
            "data": dataset.name,
            "data_fingerprint": dataset.fingerprint(),
            "data_summary": dataset.summary(),
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        return self

    # ------------------------------------------------------------------ scoring
    def featurize(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        x, _ = featurize_texts(prompts, responses, self.encoder, self.features, cache_dir=self.cache_dir)
        return x

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Reward of each (prompt, response); larger is better."""
        return np.asarray(self.head.predict(self.featurize(prompts, responses)))

    def score_stats(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, np.ndarray]:
        """For ensembles: mean, std, min and mean - λ·std per row; for single heads just the score."""
        x = self.featurize(prompts, responses)
        if isinstance(self.head, EnsembleHead):
            return self.head.predict_stats(x)
        return {"score": np.asarray(self.head.predict(x))}

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "rewardlab_version": rewardlab.__version__,
            "kind": self.kind,
            "encoder": {"spec": self.encoder.spec, "fingerprint": self.encoder.fingerprint(), "dim": self.encoder.dim},
            "features": self.features,
            "head": self.head.params(),
            "train": self.train_info,
        }

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.head.save(directory / "head")
        (directory / "config.json").write_text(json.dumps(self.config(), indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path, cache_dir: str | Path | None = None) -> RewardModel:
        directory = Path(directory)
        config_path = directory / "config.json"
        if not config_path.exists():
            raise ModelError(f"{directory}: not a rewardlab reward model (no config.json)")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if config.get("format") != MODEL_FORMAT:
            raise ModelError(f"{config_path}: unsupported model format {config.get('format')!r}")
        encoder = make_encoder(config["encoder"]["spec"])
        if encoder.fingerprint() != config["encoder"]["fingerprint"]:
            raise ModelError(
                f"{config_path}: the model was trained on embeddings from encoder {config['encoder']['fingerprint']}, "
                f"but '{config['encoder']['spec']}' here is {encoder.fingerprint()}; scores would be meaningless"
            )
        model = cls(load_head(directory / "head"), encoder, config["features"], config.get("kind", ""), cache_dir)
        model.train_info = config.get("train", {})
        return model
