"""`RewardModel` = encoder + feature mode + head, saved as a directory (config.json + weights, no pickle).

Layout: ``config.json`` (format, encoder, features, kind, head params, training info, and ``weights_sha256``: the
SHA-256 of every file under ``head/``) and ``head/`` (``head.json`` + weights, in the head class's own layout).
Saving writes the directory aside and renames it into place (`rewardlab.artifacts.replace_directory`).

The encoder's fingerprint is stored with the model and checked on load, so a model is never scored
with embeddings it was not trained on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import rewardlab
from rewardlab.artifacts import (
    DIGESTS_KEY,
    check_encoder_location,
    file_digests,
    read_json_object,
    replace_directory,
    verify_digests,
)
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder, make_encoder
from rewardlab.embed.devices import gpu_or_none
from rewardlab.errors import ModelError, RewardlabError
from rewardlab.rewards.annotator_quality import METHODS as ANNOTATOR_METHODS
from rewardlab.rewards.annotator_quality import estimate_annotator_quality
from rewardlab.rewards.augment import augment_counts, augment_dataset, format_augment, parse_augment
from rewardlab.rewards.base import STAT_KEYS, FitProgress, RewardHead, load_head
from rewardlab.rewards.ensemble import check_aggregate
from rewardlab.rewards.features import FEATURE_MODES, FeatureRows, feature_rows_on_demand, featurize_dataset, featurize_texts
from rewardlab.rewards.head_device import fit_head, move_head
from rewardlab.rewards.heads import make_head
from rewardlab.rewards.training_set import build_training_set

if TYPE_CHECKING:
    import torch

MODEL_FORMAT = "rewardlab.reward_model/1"

__all__ = ["MODEL_FORMAT", "STAT_KEYS", "RewardModel"]


class RewardModel:
    """Rewards for (prompt, response) texts: embed with ``encoder``, combine per ``features``, apply ``head``.

    The same methods serve single heads and ensembles, so callers never ask which one they hold:
    ``score``/``predict`` give one reward per row (``aggregate=None`` is the model's own: a single head's
    score, an ensemble's configured aggregate), ``score_members``/``predict_members`` give
    (n_members, n_rows) (a single head is one member), ``score_stats``/``predict_stats`` the
    `STAT_KEYS` schema. Asking a single model for ``mean``, ``min`` or ``lcb`` is allowed: with one
    member there is no disagreement, so each equals its score. ``predict*`` take feature rows (from
    `featurize`, to score many aggregates without embedding twice), ``score*`` take texts.
    """

    def __init__(
        self,
        head: RewardHead,
        encoder: Encoder | str = DEFAULT_ENCODER,
        features: str = "interaction",
        kind: str = "",
        cache_dir: str | Path | None = None,
        *,
        augment: str | None = None,
        augment_seed: int = 0,
        annotator_weights: str = "none",
    ) -> None:
        self.head = head
        self.encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
        self.features = features
        self.kind = kind
        self.cache_dir = cache_dir
        #: training augmentation (`rewardlab.rewards.augment` spec, canonical form), applied by ``fit``; None: none
        self.augment = None if augment is None else format_augment(parse_augment(augment))
        self.augment_seed = augment_seed
        #: weigh each comparison by its annotator's estimated reliability: "dawid-skene", "agreement" or "none"
        #: (`rewardlab.rewards.annotator_quality`; estimated by ``fit`` from the training data alone)
        if annotator_weights not in ANNOTATOR_METHODS:
            raise ModelError(f"unknown annotator weights {annotator_weights!r}; expected one of "
                             f"{', '.join(ANNOTATOR_METHODS)}")
        self.annotator_weights = annotator_weights
        self.train_info: dict[str, Any] = {}

    @classmethod
    def create(cls, kind: str, encoder: Encoder | str = DEFAULT_ENCODER, features: str = "interaction", seed: int = 0,
               ensemble: int = 0, cache_dir: str | Path | None = None, augment: str | None = None,
               annotator_weights: str = "none", **params: Any) -> RewardModel:
        """A new, unfitted model with a head of registered ``kind`` (see `make_head`); ``augment`` (e.g.
        ``"off-topic:0.5"``, see `rewardlab.rewards.augment`) adds synthetic pairs to what ``fit`` is given."""
        return cls(make_head(kind, seed=seed, ensemble=ensemble, **params), encoder, features, kind, cache_dir,
                   augment=augment, augment_seed=seed, annotator_weights=annotator_weights)

    def fit(self, dataset: FeedbackDataset, feature_rows: dict[str, np.ndarray] | None = None,
            on_progress: Callable[[int, int], None] | None = None,
            on_fit_progress: FitProgress | None = None, device: torch.device | str | None = None) -> RewardModel:
        """Train on ``dataset``; pass precomputed ``feature_rows`` (response id -> row) to skip embedding.
        ``on_progress`` follows the embedding, ``on_fit_progress`` the head's fit (epochs, rounds, members).
        ``device`` is where the head fits (`rewardlab.rewards.head_device`: torch heads; None is the CPU), not the
        encoder, which runs where it was built.

        (``features`` is the feature *mode* of the model, e.g. "interaction"; the rows are what that mode makes.)

        With ``augment`` set, the synthetic pairs are made from ``dataset`` alone (so a training fold never sees its test
        prompts) and only their new responses are featurized; ``train_info["augment"]`` counts them by kind. The data
        fingerprint and summary stay those of ``dataset`` as given.

        Refits from scratch (a loaded model too: its head keeps its parameters, not its weights).
        """
        started = time.perf_counter()
        rows: Mapping[str, np.ndarray]
        if feature_rows is None and self.augment is None:  # rows made a batch at a time, never the whole matrix
            rows, _ = feature_rows_on_demand(dataset, self.encoder, self.features, cache_dir=self.cache_dir,
                                             on_progress=on_progress)
        elif feature_rows is None:
            rows, _ = featurize_dataset(dataset, self.encoder, self.features, cache_dir=self.cache_dir,
                                        on_progress=on_progress)
        else:
            rows = feature_rows
        training = dataset
        if self.augment is not None:
            training = augment_dataset(dataset, parse_augment(self.augment), self.encoder, seed=self.augment_seed,
                                       cache_dir=self.cache_dir)
            rows = self._with_rows_for(training, dict(rows))
        quality = None
        if self.annotator_weights != "none":  # estimated on the data as given (synthetic pairs weigh 1)
            quality = estimate_annotator_quality(dataset, self.annotator_weights, seed=self.augment_seed)
        data = build_training_set(training, rows if isinstance(rows, FeatureRows)
                                  else {rid: rows[rid] for rid in training.responses},
                                  quality.weights if quality is not None else None)
        del rows, feature_rows  # the training set holds what it needs (a head that builds the matrix frees the vectors)
        fit_head(self.head, data, on_fit_progress, device)
        self.train_info = {
            "data": dataset.name,
            "data_fingerprint": dataset.fingerprint(),
            "data_summary": dataset.summary(),
            "fit_seconds": round(time.perf_counter() - started, 3),
        }
        if quality is not None:
            self.train_info["annotator_quality"] = quality.as_dict()
        if self.augment is not None:
            self.train_info["augment"] = {"spec": self.augment, "seed": self.augment_seed,
                                          "added": {spec.kind: 0 for spec in parse_augment(self.augment)}
                                          | augment_counts(training)}
        return self

    def _with_rows_for(self, dataset: FeedbackDataset, feature_rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``feature_rows`` plus rows for the responses of ``dataset`` it lacks (featurized now; the caller's dict is
        left as it was)."""
        missing = [rid for rid in dataset.responses if rid not in feature_rows]
        if not missing:
            return feature_rows
        responses = [dataset.responses[rid] for rid in missing]
        x = self.featurize([dataset.prompts[r.prompt_id].text for r in responses], [r.text for r in responses])
        return {**feature_rows, **dict(zip(missing, x))}

    def move_head(self, device: torch.device | str) -> RewardModel:
        """The head predicts on ``device`` from now on (torch heads; the rest stay on the CPU); returns the model."""
        move_head(self.head, device)
        return self

    @property
    def is_ensemble(self) -> bool:
        return self.head.n_members > 1

    @property
    def n_members(self) -> int:
        return self.head.n_members

    # ------------------------------------------------------------------ on feature rows
    def predict(self, x: np.ndarray, aggregate: str | None = None, lam: float | None = None) -> np.ndarray:
        """One reward per feature row; ``aggregate`` (mean/min/lcb) and ``lam`` as in the class docstring."""
        if aggregate is None and lam is None:
            return np.asarray(self.head.predict(x))
        key = "score" if aggregate is None else check_aggregate(aggregate)
        return self.head.predict_stats(x, lam)[key]

    def predict_members(self, x: np.ndarray) -> np.ndarray:
        """(n_members, n_rows) rewards; (1, n_rows) for a single head."""
        return np.asarray(self.head.predict_members(x), dtype=np.float64)

    def predict_stats(self, x: np.ndarray, lam: float | None = None) -> dict[str, np.ndarray]:
        """`STAT_KEYS` per row: score, mean, std, min, lcb = mean − λ·std (λ: the ensemble's unless given)."""
        return self.head.predict_stats(x, lam)

    # ------------------------------------------------------------------ on texts
    def featurize(self, prompts: Sequence[str], responses: Sequence[str],
                  on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The feature rows the head sees for these (prompt, response) pairs (embeddings cached)."""
        x, _ = featurize_texts(prompts, responses, self.encoder, self.features, cache_dir=self.cache_dir,
                               on_progress=on_progress)
        return x

    def score(self, prompts: Sequence[str], responses: Sequence[str], aggregate: str | None = None,
              lam: float | None = None) -> np.ndarray:
        """Reward of each (prompt, response); larger is better."""
        return self.predict(self.featurize(prompts, responses), aggregate, lam)

    def score_members(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """(n_members, n_rows) rewards of each (prompt, response)."""
        return self.predict_members(self.featurize(prompts, responses))

    def score_stats(self, prompts: Sequence[str], responses: Sequence[str],
                    lam: float | None = None) -> dict[str, np.ndarray]:
        """`STAT_KEYS` for each (prompt, response), the same keys for single models and ensembles."""
        return self.predict_stats(self.featurize(prompts, responses), lam)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """What ``config.json`` holds: format, version, kind, encoder spec and fingerprint, features, head params, train info."""
        return {
            "format": MODEL_FORMAT,
            "rewardlab_version": rewardlab.__version__,
            "kind": self.kind,
            "encoder": {"spec": self.encoder.spec, "fingerprint": self.encoder.fingerprint(), "dim": self.encoder.dim},
            "features": self.features,
            "head": self.head.params(),
            "augment": self.augment,
            "augment_seed": self.augment_seed,
            "train": self.train_info,
        } | ({"annotator_weights": self.annotator_weights} if self.annotator_weights != "none" else {})

    def save(self, directory: str | Path) -> Path:
        """Write the head to ``directory/head`` and `config` (with the SHA-256 of every head file) to ``config.json``;
        returns the directory.

        The whole directory is written to a temporary sibling, fsynced and renamed into place (an existing model there
        is replaced as one unit, ensembles included), so an interrupted save leaves the old model intact; a non-empty
        directory that is not a saved model is refused rather than replaced.
        """
        return save_head_with_config(directory, self.head, self.config())

    @classmethod
    def load(cls, directory: str | Path, cache_dir: str | Path | None = None, *,
             allow_external_encoder: bool = False, device: str | None = None) -> RewardModel:
        """A model written by `save`, its encoder on ``device`` (see `trained_encoder`). Refuses (`ModelError`,
        naming the file):

        - an encoder here with another fingerprint than the one the model was trained with (its scores would be
          meaningless);
        - head files that do not match the checksums in config.json (bit flips, truncation, edits); models saved before
          checksums have none and load unchecked;
        - an encoder spec naming a path outside ``directory`` (``hf-last:../../elsewhere``) unless
          ``allow_external_encoder``; registered specs (``minilm:int8``, ``hf-last:smollm2``, ...) are not paths;
        - a config.json that is not valid JSON or has wrong types, and damaged head files.
        """
        directory = Path(directory)
        config_path = directory / "config.json"
        if not config_path.is_file():
            raise ModelError(f"{directory}: not a rewardlab reward model (no config.json)")
        config = read_json_object(config_path)
        if config.get("format") != MODEL_FORMAT:
            raise ModelError(f"{config_path}: unsupported model format {str(config.get('format'))[:100]!r}")
        encoder_info = encoder_record(config, directory, config_path, allow_external_encoder)
        _check_types(config, config_path)
        if DIGESTS_KEY in config:
            verify_digests(directory, config[DIGESTS_KEY], config_path)
        encoder = trained_encoder(encoder_info, config_path, device)
        try:
            model = cls(load_head(directory / "head"), encoder, config["features"], config.get("kind", ""), cache_dir,
                        augment=config.get("augment"), augment_seed=config.get("augment_seed", 0),
                        annotator_weights=config.get("annotator_weights", "none"))
        except RewardlabError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:  # e.g. an augment spec of the wrong shape
            raise ModelError(f"{config_path}: cannot build the model ({type(exc).__name__}: {str(exc)[:200]})") from exc
        model.train_info = config.get("train", {})
        return model


def save_head_with_config(directory: str | Path, head: RewardHead, config: dict[str, Any]) -> Path:
    """``head`` under ``directory/head`` and ``config`` plus the SHA-256 of every head file as ``config.json``, the
    whole directory written aside and renamed into place (`rewardlab.artifacts.replace_directory`)."""
    def write(tmp: Path) -> None:
        head.save(tmp / "head")
        (tmp / "config.json").write_text(json.dumps({**config, DIGESTS_KEY: file_digests(tmp, "head")}, indent=2),
                                         encoding="utf-8")

    return replace_directory(Path(directory), write)


def encoder_record(config: dict[str, Any], directory: Path, config_path: Path,
                   allow_external_encoder: bool) -> dict[str, Any]:
    """A saved model's ``encoder`` entry, checked: an object with a spec and a fingerprint, whose spec names no path
    outside ``directory`` unless allowed."""
    encoder_info = config.get("encoder")
    if not isinstance(encoder_info, dict) or not isinstance(encoder_info.get("fingerprint"), str):
        raise ModelError(f"{config_path}: 'encoder' must be an object with a spec and a fingerprint")
    check_encoder_location(encoder_info.get("spec"), directory, config_path, allow_external_encoder)
    return encoder_info


def read_model_config(directory: Path, expected_format: str, what: str, string_keys: tuple[str, ...],
                      allow_external_encoder: bool) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(config path, config, checked encoder entry) of a saved model of ``expected_format`` (``what`` names it in
    errors), each of ``string_keys`` a string: the checks every model directory kind (step, span) starts with."""
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{directory}: not a rewardlab {what} (no config.json)")
    config = read_json_object(config_path)
    if config.get("format") != expected_format:
        raise ModelError(f"{config_path}: not a {what} (format {str(config.get('format'))[:100]!r}, "
                         f"expected {expected_format!r})")
    encoder_info = encoder_record(config, directory, config_path, allow_external_encoder)
    for key in string_keys:
        if not isinstance(config.get(key), str):
            raise ModelError(f"{config_path}: '{key}' must be a string")
    return config_path, config, encoder_info


def trained_encoder(encoder_info: dict[str, Any], config_path: Path, device: str | None = None) -> Encoder:
    """The encoder a saved model names, refused when here it has another fingerprint than it was trained with.

    ``device`` None: the CPU, or the GPU for a model trained on a GPU's own vectors (an int8 spec runs as fp16
    there); ``auto``: a GPU when there is one and it computes the trained vectors, else the CPU; ``cpu`` or
    ``cuda[:i]``: there only (`rewardlab.embed.devices`).
    """
    has_gpu = gpu_or_none("auto") is not None
    tries = {None: ["cpu", "auto"] if has_gpu else ["cpu"],
             "auto": ["auto", "cpu"] if has_gpu else ["cpu"]}.get(device, [device or "cpu"])
    for where in tries:
        encoder = make_encoder(encoder_info["spec"], where)
        if encoder.fingerprint() == encoder_info["fingerprint"]:
            return encoder
    on = "" if device in (None, "auto") else f" on {device}"
    raise ModelError(
        f"{config_path}: the model was trained on embeddings from encoder {encoder_info['fingerprint'][:200]}, "
        f"but '{encoder_info['spec']}'{on} here is {encoder.fingerprint()}; scores would be meaningless"
    )


#: config.json fields and the types they must have (absent optional fields take their defaults)
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {"features": (str,), "kind": (str,), "augment": (str, type(None)),
                                              "augment_seed": (int,), "train": (dict,),
                                              "annotator_weights": (str,)}


def _check_types(config: dict[str, Any], config_path: Path) -> None:
    if "features" not in config:
        raise ModelError(f"{config_path}: no 'features'")
    for key, types in _CONFIG_TYPES.items():
        value = config.get(key)
        if key in config and (isinstance(value, bool) or not isinstance(value, types)):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ModelError(f"{config_path}: '{key}' must be {wanted}, not {type(value).__name__}")
    if config["features"] not in FEATURE_MODES:
        raise ModelError(f"{config_path}: unknown feature mode {config['features'][:100]!r}; known: "
                         f"{', '.join(FEATURE_MODES)}")
