"""Query-dependent prompt optimization (Prompt-OIRL): an offline reward model of P(correct | query, prompt).

The model is learned from logs of prompts that were already run, then picks a prompt per query without
calling the LLM or knowing the answer. Architecture (all on frozen embeddings):

    logit(q, p) = trunk(q) · (W e_p + u_p) + (w · e_p + b_p)

``trunk`` is an MLP (``mlp``) or the identity (``logistic``: a bilinear logistic model); e_p is the
prompt's text embedding; u_p and b_p are free per-prompt terms for prompts seen in training (zero for
unseen ones, whose predictions come from their text through W and w alone). Logits are temperature-
scaled on held-out queries so the probabilities are calibrated. ``lgbm`` fits gradient-boosted trees
on [query, prompt] embedding rows instead.

``knn`` needs no training: P(q, p) for a seen prompt is its success rate on the K most similar training
queries (softmax of cosine similarity), shrunk towards p's overall rate; an unseen prompt gets the
average of the seen prompts' estimates weighted by how similar the prompt texts are. It is the
strongest and fastest head measured here (logs repeat questions, and similar questions fail alike).
Its settings are chosen by cross-validation in `rewardlab.optimize.prompt_tuning`; from logs to a saved
model and from a model to picks for new queries is `rewardlab.optimize.prompt_opt`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from scipy.special import expit
from torch import nn

import rewardlab
from rewardlab.artifacts import (
    DIGESTS_KEY,
    check_encoder_location,
    file_digests,
    read_json_object,
    replace_directory,
    verify_digests,
)
from rewardlab.embed.base import DEFAULT_ENCODER
from rewardlab.errors import InvalidValueError, ModelError
from rewardlab.rewards.torch_training import TrainParams, train_network

PROMPT_HEADS = ("knn", "mlp", "logistic", "lgbm")
PROMPT_MODEL_FORMAT = "rewardlab.prompt_model/1"
#: head -> its weights file (checksummed in config.json); every other head is a torch net
_WEIGHT_FILES = {"knn": "memory.safetensors", "lgbm": "model.lgbm.txt", "linear": "model.safetensors"}


class _BilinearNet(nn.Module):
    def __init__(self, dim: int, n_known: int, hidden: int) -> None:
        super().__init__()
        width = hidden if hidden > 0 else dim
        self.trunk: nn.Module = (nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.1))
                                 if hidden > 0 else nn.Identity())
        self.project = nn.Linear(dim, width, bias=False)  # W e_p
        self.known_vector = nn.Parameter(torch.zeros(n_known, width))  # u_p
        self.text_bias = nn.Linear(dim, 1)  # w · e_p (+ a global bias)
        self.known_bias = nn.Parameter(torch.zeros(n_known))  # b_p

    def forward(self, queries: torch.Tensor, prompts: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """(queries, prompts) logits; ``known[j]`` is prompt j's row in the per-prompt tables, or -1."""
        vectors = self.project(prompts)
        bias = self.text_bias(prompts).squeeze(-1)
        seen = known >= 0
        if seen.any():
            vectors = vectors + torch.where(seen[:, None], self.known_vector[known.clamp(min=0)], 0.0)
            bias = bias + torch.where(seen, self.known_bias[known.clamp(min=0)], 0.0)
        return self.trunk(queries) @ vectors.T + bias


@dataclass
class PromptRewardModel:
    """P(correct | query, prompt); ``fit`` on a (queries × prompts) label matrix with NaN for unknown cells.

    As with `RewardModel`, everything needed to use a saved model travels with it: ``encoder`` (new queries
    must be embedded as the training ones were), ``candidate_prompts`` (what selection chooses among by
    default) and ``train_info``; ``save`` writes them to config.json and ``load`` returns the model.
    """

    head: str = "knn"
    hidden: int = 256
    neighbours: int = 20
    similarity_temperature: float = 0.05
    prior_weight: float = 1.0
    # knn: every query gets each prompt's overall training rate, i.e. the best single prompt is picked for all;
    # `KnnTuner` chooses this when cross-validation finds no query-dependent signal
    query_agnostic: bool = False
    seed: int = 0
    lr: float = 2e-3
    weight_decay: float = 1e-3
    max_epochs: int = 60
    patience: int = 6
    batch_queries: int = 256
    val_fraction: float = 0.1
    known_prompts: list[str] = field(default_factory=list)
    temperature: float = 1.0
    fit_log: dict[str, Any] = field(default_factory=dict)
    #: the encoder spec whose vectors the model is fitted on
    encoder: str = DEFAULT_ENCODER
    #: the prompts selection chooses among by default (e.g. every prompt of the logs, also never-trained ones)
    candidate_prompts: list[str] = field(default_factory=list)
    #: where the model came from (logs, rows, prompts, the encoder's fingerprint)
    train_info: dict[str, Any] = field(default_factory=dict)
    _net: Any = None
    _booster: Any = None
    _memory: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # knn: query vectors, labels, prompt vectors

    def __post_init__(self) -> None:
        if self.head not in PROMPT_HEADS:
            raise ModelError(f"unknown prompt-model head {self.head!r}; known: {', '.join(PROMPT_HEADS)}")

    # ------------------------------------------------------------------ fitting
    def fit(self, query_vecs: np.ndarray, prompt_vecs: np.ndarray, labels: np.ndarray, prompt_texts: list[str],
            query_groups: np.ndarray | None = None) -> PromptRewardModel:
        """``labels`` is (queries, prompts) of 1/0/NaN; queries of one group stay on one side of the validation split."""
        labels = np.asarray(labels, dtype=np.float32)
        if labels.shape != (len(query_vecs), len(prompt_vecs)) or len(prompt_texts) != len(prompt_vecs):
            raise ModelError(f"labels {labels.shape} do not match {len(query_vecs)} queries × {len(prompt_vecs)} prompts")
        if np.isnan(labels).all():
            raise ModelError("no labelled (query, prompt) cells to learn from")
        self.known_prompts = list(prompt_texts)
        if self.head == "knn":
            self._memory = (np.asarray(query_vecs, dtype=np.float32), labels, np.asarray(prompt_vecs, dtype=np.float32))
            self.fit_log = {"memory_queries": len(query_vecs)}
            return self
        groups = np.arange(len(query_vecs)) if query_groups is None else np.asarray(query_groups)
        rng = np.random.default_rng(self.seed)
        unique = np.unique(groups)
        val_groups = rng.choice(unique, size=max(1, int(round(self.val_fraction * len(unique)))), replace=False)
        is_val = np.isin(groups, val_groups)
        if self.head == "lgbm":
            self._fit_lgbm(query_vecs, prompt_vecs, labels, is_val)
        else:
            self._fit_torch(query_vecs, prompt_vecs, labels, is_val)
        self.temperature = _fit_temperature(self._logits(query_vecs[is_val], prompt_vecs, prompt_texts), labels[is_val])
        return self

    def _fit_torch(self, query_vecs: np.ndarray, prompt_vecs: np.ndarray, labels: np.ndarray, is_val: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        q = torch.from_numpy(np.asarray(query_vecs, dtype=np.float32))
        p = torch.from_numpy(np.asarray(prompt_vecs, dtype=np.float32))
        known = torch.arange(len(prompt_vecs))
        y = torch.from_numpy(np.nan_to_num(labels, nan=0.0))
        mask = torch.from_numpy(~np.isnan(labels)).float()
        self._net = net = _BilinearNet(q.shape[1], len(prompt_vecs), self.hidden if self.head == "mlp" else 0)
        train_rows = torch.from_numpy(np.flatnonzero(~is_val))
        val_rows = torch.from_numpy(np.flatnonzero(is_val))

        def loss_on(model: nn.Module, rows: torch.Tensor) -> torch.Tensor:
            logits = model(q[rows], p, known)
            losses = nn.functional.binary_cross_entropy_with_logits(logits, y[rows], reduction="none")
            return (losses * mask[rows]).sum() / mask[rows].sum().clamp(min=1.0)

        params = TrainParams(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_queries,
                             max_epochs=self.max_epochs, patience=self.patience)
        log = train_network(net, len(train_rows), lambda model, batch: loss_on(model, train_rows[batch]),
                            lambda model: float(loss_on(model, val_rows)), params, self.seed)
        self.fit_log = {"epochs": log.epochs, "best_epoch": log.best_epoch, "best_val_loss": log.best_val_loss}

    def _fit_lgbm(self, query_vecs: np.ndarray, prompt_vecs: np.ndarray, labels: np.ndarray, is_val: np.ndarray) -> None:
        import lightgbm as lgb

        def rows_of(selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            qi, pj = np.nonzero(~np.isnan(labels) & selected[:, None])
            return np.hstack([query_vecs[qi], prompt_vecs[pj]]), labels[qi, pj]

        x_train, y_train = rows_of(~is_val)
        x_val, y_val = rows_of(is_val)
        params = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "feature_fraction": 0.5,
                  "max_bin": 63, "min_data_in_leaf": 20, "seed": self.seed, "verbose": -1, "num_threads": 0}
        self._booster = lgb.train(params, lgb.Dataset(x_train, y_train), num_boost_round=600,
                                  valid_sets=[lgb.Dataset(x_val, y_val)],
                                  callbacks=[lgb.early_stopping(30, verbose=False)])
        self.fit_log = {"best_iteration": int(self._booster.best_iteration)}

    # ------------------------------------------------------------------ predicting
    def _logits(self, query_vecs: np.ndarray, prompt_vecs: np.ndarray, prompt_texts: list[str]) -> np.ndarray:
        if self.head == "lgbm":
            if self._booster is None:
                raise ModelError("prompt model is not fitted")
            grid = np.hstack([np.repeat(query_vecs, len(prompt_vecs), axis=0), np.tile(prompt_vecs, (len(query_vecs), 1))])
            raw = self._booster.predict(grid, raw_score=True, num_iteration=self._booster.best_iteration or None)
            return np.asarray(raw).reshape(len(query_vecs), len(prompt_vecs))
        if self._net is None:
            raise ModelError("prompt model is not fitted")
        index = {text: i for i, text in enumerate(self.known_prompts)}
        known = torch.tensor([index.get(t, -1) for t in prompt_texts])
        with torch.no_grad():
            out = self._net(torch.from_numpy(np.asarray(query_vecs, dtype=np.float32)),
                            torch.from_numpy(np.asarray(prompt_vecs, dtype=np.float32)), known)
        return out.numpy().astype(np.float64)

    def _knn_proba(self, query_vecs: np.ndarray, prompt_vecs: np.ndarray, prompt_texts: list[str]) -> np.ndarray:
        assert self._memory is not None
        memory_q, memory_y, memory_p = self._memory
        if self.query_agnostic:
            out = np.broadcast_to(_prompt_rates(memory_y), (len(query_vecs), memory_y.shape[1]))
        else:
            top_sim, top_idx = nearest_queries(query_vecs, memory_q, self.neighbours)
            out = neighbour_rates(top_sim, top_idx, memory_y, self.prior_weight, self.similarity_temperature)
        index = {text: i for i, text in enumerate(self.known_prompts)}
        result = np.empty((len(query_vecs), len(prompt_texts)))
        for j, text in enumerate(prompt_texts):
            if text in index:
                result[:, j] = out[:, index[text]]
            else:  # an unseen prompt: the seen prompts' estimates, weighted by prompt-text similarity
                affinity = np.exp((memory_p @ np.asarray(prompt_vecs[j], dtype=np.float32) - 1) / self.similarity_temperature)
                result[:, j] = out @ (affinity / affinity.sum())
        return result

    def predict_proba(self, query_vecs: np.ndarray, prompt_vecs: np.ndarray, prompt_texts: list[str]) -> np.ndarray:
        """(queries, prompts) calibrated P(correct)."""
        if self.head == "knn":
            if self._memory is None:
                raise ModelError("prompt model is not fitted")
            return self._knn_proba(query_vecs, prompt_vecs, prompt_texts)
        return np.asarray(expit(self._logits(query_vecs, prompt_vecs, prompt_texts) / self.temperature))

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """What config.json holds: the head and its settings, the trained prompts, calibration, encoder, provenance."""
        if self._memory is None and self._net is None and self._booster is None:
            raise ModelError("prompt model is not fitted")
        config: dict[str, Any] = {
            "format": PROMPT_MODEL_FORMAT, "rewardlab_version": rewardlab.__version__, "head": self.head,
            "hidden": self.hidden, "seed": self.seed, "known_prompts": self.known_prompts, "temperature": self.temperature,
            "fit_log": self.fit_log, "encoder": self.encoder, "candidate_prompts": self.candidate_prompts,
            "train": self.train_info}
        if self.head == "knn":
            config.update(neighbours=self.neighbours, similarity_temperature=self.similarity_temperature,
                          prior_weight=self.prior_weight, query_agnostic=self.query_agnostic)
        elif self.head != "lgbm":
            config["dim"] = int(self._net.project.in_features)
        return config

    def save(self, directory: str | Path) -> Path:
        """config.json plus the weights (safetensors, or LightGBM text), with the weights' SHA-256 in config.json;
        returns the directory. Written to a temporary sibling, fsynced and renamed into place, so an interrupted save
        leaves any model already there intact."""
        directory = Path(directory)
        config = self.config()

        def write(tmp: Path) -> None:
            if self.head == "knn":
                assert self._memory is not None
                save_file({"queries": self._memory[0], "labels": self._memory[1], "prompts": self._memory[2]},
                          str(tmp / "memory.safetensors"))
            elif self.head == "lgbm":
                self._booster.save_model(str(tmp / "model.lgbm.txt"))
            else:
                save_file({k: v.numpy() for k, v in self._net.state_dict().items()}, str(tmp / "model.safetensors"))
            weights = _WEIGHT_FILES.get(self.head, _WEIGHT_FILES["linear"])
            config[DIGESTS_KEY] = file_digests(tmp, weights)
            (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

        return replace_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path, allow_external_encoder: bool = False) -> PromptRewardModel:
        """The model saved in ``directory``, with its encoder, candidate prompts and training info.

        Damage is a `ModelError` naming the file: weights that do not match config.json's checksum, a config that is
        not valid JSON or has wrong types. An encoder spec naming a path outside ``directory`` is refused unless
        ``allow_external_encoder``."""
        directory = Path(directory)
        path = directory / "config.json"
        if not path.is_file():
            raise ModelError(f"{directory}: not a rewardlab prompt model (no config.json)")
        config = read_json_object(path, "prompt model config")
        if config.get("format") != PROMPT_MODEL_FORMAT:
            raise ModelError(f"{path}: unsupported format {str(config.get('format'))[:100]!r}")
        if DIGESTS_KEY in config:  # models saved before checksums have none
            verify_digests(directory, config[DIGESTS_KEY], path)
        check_encoder_location(config.get("encoder", DEFAULT_ENCODER), directory, path, allow_external_encoder)
        try:
            return cls._from_config(directory, config)
        except ModelError:
            raise
        except Exception as exc:  # a damaged or hand-edited model fails in many ways inside torch, safetensors, lightgbm
            raise ModelError(f"{directory}: cannot load this prompt model ({type(exc).__name__}: {str(exc)[:300]})") from exc

    @classmethod
    def _from_config(cls, directory: Path, config: dict[str, Any]) -> PromptRewardModel:
        # models saved before provenance moved under "train" kept the logs' name at the top level
        train_info = config.get("train", {"logs": config["logs"]} if "logs" in config else {})
        model = cls(head=config["head"], hidden=config["hidden"], seed=config["seed"],
                    known_prompts=config["known_prompts"], temperature=config["temperature"], fit_log=config["fit_log"],
                    encoder=config.get("encoder", DEFAULT_ENCODER), candidate_prompts=config.get("candidate_prompts") or [],
                    train_info=train_info)
        if model.head == "knn":
            memory = load_file(str(directory / "memory.safetensors"))
            model._memory = (memory["queries"], memory["labels"], memory["prompts"])
            model.neighbours = config["neighbours"]
            model.similarity_temperature = config["similarity_temperature"]
            model.prior_weight = config["prior_weight"]
            model.query_agnostic = bool(config.get("query_agnostic", False))
        elif model.head == "lgbm":
            import lightgbm as lgb

            model._booster = lgb.Booster(model_file=str(directory / "model.lgbm.txt"))
        else:
            arrays = load_file(str(directory / "model.safetensors"))
            shape = (config["dim"], len(model.known_prompts), model.hidden if model.head == "mlp" else 0)
            with torch.device("meta"):  # check the shapes before allocating anything (head.json may claim absurd dims)
                expected = {k: tuple(v.shape) for k, v in _BilinearNet(*shape).state_dict().items()}
            if {k: tuple(v.shape) for k, v in arrays.items()} != expected:
                raise ModelError(f"{directory / 'model.safetensors'}: the weights do not fit the net config.json "
                                 f"describes (dim {shape[0]}, {shape[1]} prompts, hidden {shape[2]})")
            net = _BilinearNet(*shape)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
            model._net = net.eval()
        return model


def nearest_queries(query_vecs: np.ndarray, memory_q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities and indices of each query's ``k`` most similar memory queries, most similar first."""
    k = min(k, len(memory_q))
    sims, idxs = [], []
    for start in range(0, len(query_vecs), 1024):  # bounded memory for the similarity block
        sim = np.asarray(query_vecs[start:start + 1024], dtype=np.float32) @ memory_q.T
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sim, idx, 1)
        order = np.argsort(-top, axis=1, kind="stable")
        sims.append(np.take_along_axis(top, order, 1))
        idxs.append(np.take_along_axis(idx, order, 1))
    return np.concatenate(sims), np.concatenate(idxs)


def _prompt_rates(memory_y: np.ndarray) -> np.ndarray:
    """Each prompt's success rate over its labelled training queries."""
    return np.nansum(memory_y, 0) / np.maximum((~np.isnan(memory_y)).sum(0), 1)


def neighbour_rates(top_sim: np.ndarray, top_idx: np.ndarray, memory_y: np.ndarray, prior_weight: float,
                     temperature: float) -> np.ndarray:
    """(queries, prompts) success rate among the neighbours (softmax-of-similarity weights, labelled cells only),
    shrunk towards each prompt's overall rate with ``prior_weight`` pseudo-neighbours."""
    observed = ~np.isnan(memory_y)
    prior = _prompt_rates(memory_y)
    w = np.exp((top_sim - top_sim[:, :1]) / temperature)[:, :, None] * observed[top_idx]
    hits = np.einsum("qkp,qkp->qp", w, np.nan_to_num(memory_y[top_idx]))
    return (hits + prior_weight * prior) / (w.sum(1) + prior_weight)


def _fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising validation log-loss of σ(logit / T), by a coarse-to-fine grid (robust, no optimiser)."""
    observed = ~np.isnan(labels)
    z, y = logits[observed], labels[observed]
    if len(y) == 0 or y.min() == y.max():
        return 1.0

    def nll(t: float) -> float:
        p = np.clip(expit(z / t), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 41))
    return float(grid[int(np.argmin([nll(t) for t in grid]))])


def select_prompts(prob: np.ndarray, pool: list[int], fallback: list[int] | None = None, threshold: float = 0.5
                   ) -> np.ndarray:
    """Per query, the pool prompt with the highest P(correct); with ``fallback``, a query whose best pool prompt
    is predicted below ``threshold`` takes the best fallback prompt instead. Returns prompt column indices."""
    if not pool:
        raise InvalidValueError("the prompt pool is empty")
    pool_arr = np.asarray(pool)
    choice = pool_arr[np.argmax(prob[:, pool_arr], axis=1)]
    if fallback:
        fallback_arr = np.asarray(fallback)
        unlikely = prob[np.arange(len(prob)), choice] < threshold
        choice = np.where(unlikely, fallback_arr[np.argmax(prob[:, fallback_arr], axis=1)], choice)
    return choice
