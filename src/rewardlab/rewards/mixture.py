"""A mixture of K Bradley-Terry models: latent preference types, fitted by EM, K chosen by held-out likelihood.

Each annotator a has one latent type z_a ~ Categorical(π); a type k has its own linear reward r_k(x) = w_k · x, and
annotator a's labels follow Bradley-Terry under r_{z_a}. EM alternates responsibilities γ_ak = P(z_a = k | a's labels)
(the E-step: all of an annotator's labels vote together, which is what separates people from noise) with a weighted
L2-regularised logistic regression per type (the M-step, L-BFGS). Pairs without an annotator id are each their own
anonymous annotator.

K is chosen from 1..``k_max`` (``k=0``) by the predictive log-likelihood of labels on held-out prompts, each
annotator's types weighted by their posterior from the training prompts (the smallest K within `K_TOLERANCE` of the
best); ``k`` > 0 fixes it.

What it answers: ``predict`` is the mean reward Σ_k π_k r_k (for a ranking of responses), ``predict_for`` one
annotator's posterior-weighted reward, ``prob_prefers`` P(a random annotator prefers a) = Σ_k π_k σ(r_k(a) − r_k(b)),
``predict_distribution`` the spread of the known annotators' rewards (as the annotator-conditioned head gives it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from scipy.optimize import minimize
from scipy.special import expit, log_expit, logsumexp

from rewardlab.errors import ModelError
from rewardlab.rewards.annotator_aware import VOCABULARY_FILE, AnnotatorAware, read_vocabulary
from rewardlab.rewards.base import FitProgress, HeadBase, head_params, read_head_json, register_head_class, write_head_json
from rewardlab.rewards.training_set import TrainingSet

#: nats per held-out label: the smallest K within this of the best K's held-out log-likelihood is chosen (extra types
#: fitted to noise gain a few thousandths; a real second type gains tenths)
K_TOLERANCE = 0.005


def _pair_annotators(data: TrainingSet) -> tuple[list[str], np.ndarray]:
    """(annotator ids, (n_pairs,) index of each pair's annotator); pairs without an id get one anonymous index each."""
    names = data.pair_annotator if len(data.pair_annotator) == len(data.pair_a) else np.full(len(data.pair_a), "")
    ids = sorted({str(a) for a in names if str(a)})
    index = {a: i for i, a in enumerate(ids)}
    who = np.empty(len(names), dtype=np.int64)
    anonymous = len(ids)
    for i, a in enumerate(names):
        if str(a):
            who[i] = index[str(a)]
        else:
            who[i], anonymous = anonymous, anonymous + 1
    return ids, who


def _pair_loglik(weights: np.ndarray, diff: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(n_pairs, K) log-likelihood of each label under each type (soft targets allowed: ties count half each way)."""
    margin = diff @ weights.T
    return target[:, None] * log_expit(margin) + (1 - target[:, None]) * log_expit(-margin)


class _Fit:
    """One EM run's result: types' weights (K, d), mixing weights (K,), responsibilities (n_annotators, K)."""

    def __init__(self, weights: np.ndarray, mix: np.ndarray, resp: np.ndarray, loglik: float) -> None:
        self.weights, self.mix, self.resp, self.loglik = weights, mix, resp, loglik


def fit_mixture(diff: np.ndarray, target: np.ndarray, who: np.ndarray, n_annotators: int, k: int, *, l2: float,
                max_iter: int, n_init: int, seed: int) -> _Fit:
    """EM for a K-type BT mixture on pair feature differences ``diff`` (the best of ``n_init`` random starts)."""
    rng = np.random.default_rng(seed)
    n, d = diff.shape
    best: _Fit | None = None
    for _ in range(n_init):
        resp = rng.dirichlet(np.ones(k), size=n_annotators)
        weights = rng.normal(scale=0.01, size=(k, d))
        previous = -np.inf
        loglik = -np.inf
        for _ in range(max_iter):
            mix = np.clip(resp.mean(0), 1e-6, None)
            mix /= mix.sum()
            for j in range(k):
                weights[j] = _weighted_logistic(diff, target, resp[who, j], weights[j], l2 * n)
            per_annotator = np.zeros((n_annotators, k))
            np.add.at(per_annotator, who, _pair_loglik(weights, diff, target))
            joint = per_annotator + np.log(mix)[None, :]
            norm = logsumexp(joint, axis=1, keepdims=True)
            resp = np.exp(joint - norm)
            loglik = float(norm.sum())
            if loglik - previous < 1e-4 * n:
                break
            previous = loglik
        fit = _Fit(weights.copy(), resp.mean(0), resp, loglik)
        if best is None or fit.loglik > best.loglik:
            best = fit
    assert best is not None
    return best


def _weighted_logistic(diff: np.ndarray, target: np.ndarray, weight: np.ndarray, start: np.ndarray,
                       l2: float) -> np.ndarray:
    """argmin_w Σ_i weight_i · BCE(σ(w · diff_i), target_i) + l2/2 ‖w‖² (L-BFGS from ``start``)."""

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = diff @ w
        value = -(weight * (target * log_expit(margin) + (1 - target) * log_expit(-margin))).sum() + 0.5 * l2 * w @ w
        grad = diff.T @ (weight * (expit(margin) - target)) + l2 * w
        return float(value), grad

    return np.asarray(minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 200}).x)


@register_head_class
class MixtureBTHead(HeadBase, AnnotatorAware):
    """K linear Bradley-Terry types mixed over annotators (see the module docstring)."""

    class_name: ClassVar[str] = "bt-mixture"

    def __init__(self, k: int = 0, k_max: int = 4, l2: float = 1e-3, max_iter: int = 50, n_init: int = 3,
                 val_fraction: float = 0.2, seed: int = 0) -> None:
        self.k = k
        self.k_max = k_max
        self.l2 = l2
        self.max_iter = max_iter
        self.n_init = n_init
        self.val_fraction = val_fraction
        self.seed = seed

    def _fit_k(self, data: TrainingSet, k: int) -> tuple[_Fit, list[str]]:
        ids, who = _pair_annotators(data)
        diff = (data.x[data.pair_a] - data.x[data.pair_b]).astype(np.float64)
        fit = fit_mixture(diff, data.pair_target.astype(np.float64), who, int(who.max()) + 1 if len(who) else 0, k,
                          l2=self.l2, max_iter=self.max_iter, n_init=self.n_init, seed=self.seed)
        fit.resp = fit.resp[: len(ids)]  # anonymous pairs' responsibilities are not kept
        return fit, ids

    def held_out_loglik(self, train: TrainingSet, val: TrainingSet, k: int) -> float:
        """Mean per-label predictive log-likelihood of ``val`` under a K-type fit on ``train`` (annotators seen in
        training weigh the types by their posterior; others by π)."""
        fit, ids = self._fit_k(train, k)
        index = {a: i for i, a in enumerate(ids)}
        val_ids, who = _pair_annotators(val)
        prior = np.tile(np.log(fit.mix), (int(who.max()) + 1, 1))
        for j, a in enumerate(val_ids):
            if a in index:
                prior[j] = np.log(np.clip(fit.resp[index[a]], 1e-12, None))
        per = np.zeros_like(prior)
        diff = (val.x[val.pair_a] - val.x[val.pair_b]).astype(np.float64)
        np.add.at(per, who, _pair_loglik(fit.weights, diff, val.pair_target.astype(np.float64)))
        return float(logsumexp(per + prior, axis=1).sum() / len(val.pair_a))

    def fit(self, data: TrainingSet, on_progress: FitProgress | None = None) -> MixtureBTHead:
        if not len(data.pair_a):
            raise ModelError("a Bradley-Terry mixture needs comparisons or rankings; this data has none")
        if self.k < 0 or self.k_max < 1:
            raise ModelError(f"k must be >= 0 (0: chosen by held-out likelihood) and k_max >= 1; got {self.k}, "
                             f"{self.k_max}")
        candidates = [self.k] if self.k else list(range(1, self.k_max + 1))
        scores: dict[int, float] = {}
        if len(candidates) > 1:
            train, val = data.split_by_group(self.val_fraction, self.seed)
            for done, k in enumerate(candidates, start=1):
                scores[k] = self.held_out_loglik(train, val, k) if len(val.pair_a) and len(train.pair_a) else 0.0
                if on_progress is not None:
                    on_progress(done, len(candidates) + 1)
        best = max(scores.values()) if scores else 0.0
        chosen = min(k for k in scores if scores[k] >= best - K_TOLERANCE) if scores else candidates[0]
        fit, ids = self._fit_k(data, chosen)
        self.weights_, self.mix_, self.resp_, self.annotators_ = fit.weights, fit.mix, fit.resp, ids
        self.dim_ = data.dim
        self.fit_log_: dict[str, Any] = {"k": chosen, "mix": [round(float(m), 4) for m in fit.mix],
                                         "held_out_loglik": {str(k): round(v, 5) for k, v in scores.items()},
                                         "train_loglik": round(fit.loglik, 3), "n_annotators": len(ids)}
        if on_progress is not None:
            on_progress(len(candidates) + 1, len(candidates) + 1)
        return self

    # ------------------------------------------------------------------ using
    def component_rewards(self, x: np.ndarray) -> np.ndarray:
        """(K, n_rows): each type's reward."""
        self._check_fitted()
        return self.weights_ @ np.asarray(x, dtype=np.float64).T

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The mean reward over types, Σ_k π_k r_k(x)."""
        return np.asarray(self.mix_ @ self.component_rewards(x))

    def predict_annotators(self, x: np.ndarray) -> np.ndarray:
        """(n_known_annotators, n_rows) rewards."""
        if not self.annotators:
            raise ModelError("this mixture was trained without annotator ids: it knows only the population")
        return np.asarray(self.resp_ @ self.component_rewards(x))

    def prob_prefers(self, x_a: np.ndarray, x_b: np.ndarray) -> np.ndarray:
        """P(a random annotator prefers a over b) = Σ_k π_k σ(r_k(a) − r_k(b))."""
        return np.asarray(self.mix_ @ expit(self.component_rewards(x_a) - self.component_rewards(x_b)))

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        self._check_fitted()
        write_head_json(directory, self, self.class_name, dim=self.dim_)
        self.save_vocabulary(directory)
        save_file({"weights": self.weights_.astype(np.float64), "mix": self.mix_.astype(np.float64),
                   "responsibilities": self.resp_.astype(np.float64)}, str(directory / "head.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> MixtureBTHead:
        config = read_head_json(directory)
        params = head_params(config, directory)
        head = cls(**params)
        vocabulary = read_vocabulary(directory)
        weights_path = directory / "head.safetensors"
        try:
            arrays = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"{weights_path}: cannot load the weights ({str(exc)[:200]})") from None
        dim = config.get("dim")
        weights, mix, resp = arrays.get("weights"), arrays.get("mix"), arrays.get("responsibilities")
        if (weights is None or mix is None or resp is None or weights.ndim != 2 or weights.shape[1] != dim
                or mix.shape != (weights.shape[0],) or resp.shape != (len(vocabulary), weights.shape[0])):
            raise ModelError(f"{weights_path}: the arrays do not fit dim {dim!r}, one mixing weight per type and "
                             f"{len(vocabulary)} annotators ({directory / VOCABULARY_FILE})")
        if not all(np.isfinite(v).all() for v in (weights, mix, resp)):
            raise ModelError(f"{weights_path}: weights are not finite (NaN or inf); retrain the model")
        head.weights_, head.mix_, head.resp_, head.annotators_, head.dim_ = weights, mix, resp, list(vocabulary), dim
        head.fit_log_ = config.get("fit_log", {})
        return head
