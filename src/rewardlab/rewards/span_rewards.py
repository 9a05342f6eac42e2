"""A fine-grained span reward model: P(span has an error of kind K | prompt, the response around it), per kind.

Each error kind (relevance, factuality, or any kind the span rows name) has its own output: an ordinary label
head (``outcome-logistic`` by default, so a logistic output per kind) trained on that kind's span rows. The
kinds do not share rows (relevance is labelled on clauses, factuality on sentences), so one head per kind is what a
multi-output head with masked labels would be for a linear head, and each keeps its own early stopping.

A span is scored **in context**: its feature row joins the span's own embedding with that of its left context
(the response through the span) and the prompt's (`span_config.CONTEXT_MODES`). Whether "released on 2 May" is
wrong depends on the passages it should be grounded in, and whether it is redundant depends on what came before.

The response's reward folds its spans' error probabilities (`span_config.SPAN_AGGREGATIONS`: by default minus the
length-weighted share of text in error), summed over kinds with optional weights.

``fit(rows, device=...)`` fits every kind's torch head on that device (`rewardlab.rewards.head_device`: LightGBM
heads stay on the CPU; a CPU fit is the fit without a device), where it then scores; the saved heads load anywhere.

Saved as a directory: ``config.json`` (format, encoder spec and fingerprint, context mode, per kind its split,
threshold and head kind, aggregation, training info, SHA-256 of every head file) and ``heads/<kind>/`` in each
head's own layout (safetensors for torch heads); written aside and renamed into place; refused on load if the
encoder or the files do not match.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy.special import expit

import rewardlab
from rewardlab.artifacts import DIGESTS_KEY, file_digests, replace_directory, verify_digests
from rewardlab.data.spans import KIND_NAME, SpanRow, check_split, parse_splits, split_spans
from rewardlab.embed.base import DEFAULT_ENCODER, Encoder, make_encoder
from rewardlab.embed.embedding import embed_unique
from rewardlab.errors import ModelError
from rewardlab.rewards.base import RewardHead, load_head
from rewardlab.rewards.features import prompt_view
from rewardlab.rewards.head_device import fit_head
from rewardlab.rewards.heads import HEAD_KINDS, kinds_learning_from, make_head
from rewardlab.rewards.model import read_model_config, trained_encoder
from rewardlab.rewards.span_config import CONTEXT_MODES, SCALAR_PARTS, SPAN_AGGREGATIONS, SpanModelConfig
from rewardlab.rewards.step_rewards import label_training_set
from rewardlab.rewards.torch_training import fit_device

if TYPE_CHECKING:
    import torch

SPAN_MODEL_FORMAT = "rewardlab.span_reward_model/1"
SCALER_FILE = "scaler.safetensors"


@dataclass(frozen=True)
class ScoredSpan:
    """One span of a response with P(error of ``kind``)."""

    kind: str
    start: int
    end: int
    text: str
    probability: float


#: the left context of a response's first span (an empty text would embed as nothing in particular)
ANSWER_START = "(the start of the answer)"


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)[:, None]


def span_features(prompts: Sequence[str], responses: Sequence[str], bounds: Sequence[tuple[int, int]],
                  encoder: Encoder, context: str, *, cache_dir: str | Path | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """One float32 row per span (``responses[i][start:end]``), the blocks of ``context`` concatenated; every text
    goes through one cached embedding pass. The left context is the response before the span, stripped: exactly
    the previous span's ``c``, so it costs no embedding of its own."""
    parts = CONTEXT_MODES.lookup(context)
    views = {"s": lambda i: responses[i][bounds[i][0]:bounds[i][1]],
             "l": lambda i: responses[i][:bounds[i][0]].rstrip() or ANSWER_START,
             "c": lambda i: responses[i][:bounds[i][1]], "r": lambda i: responses[i],
             "p": lambda i: prompt_view(prompts[i])}
    used = [v for v in views if any(v in part for part in parts if part not in SCALAR_PARTS)]
    n = len(bounds)
    texts = [views[v](i) for v in used for i in range(n)]
    rows: dict[str, np.ndarray] = {}
    if texts:
        vectors, inverse, _ = embed_unique(texts, encoder, cache_dir=cache_dir, on_progress=on_progress)
        rows = {v: vectors[inverse[k * n:(k + 1) * n]] for k, v in enumerate(used)}
    start, end = np.array(bounds, np.float64).reshape(n, 2).T
    scalars = {"pos": start / np.maximum([len(r) for r in responses], 1), "start": np.log1p(start),
               "len": np.log1p(end - start)}
    blocks = [scalars[p][:, None] if p in scalars else rows[p[0]] * rows[p[2]] if "*" in p
              else _dot(rows[p[0]], rows[p[2]]) if "." in p else rows[p] for p in parts]
    return np.concatenate(blocks, axis=1).astype(np.float32)


def similarity_columns(context: str, dim: int) -> np.ndarray:
    """Which columns of ``context``'s feature rows are scalars (dot products, the position), for an encoder of width
    ``dim``."""
    scalar = [("." in p or p in SCALAR_PARTS) for p in CONTEXT_MODES.lookup(context)]
    return np.concatenate([np.full(1 if one else dim, one) for one in scalar])


def best_f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The probability cut that maximises F1 of ``p >= cut`` on (p, y): the detection threshold chosen on training
    spans. Only cuts between distinct values are tried (a cut inside a run of ties would flag the whole run)."""
    order = np.argsort(-p, kind="stable")
    ranked = p[order]
    hits = np.cumsum(y[order])
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])  # the last index of each run of equal values
    f1 = 2 * hits[ends] / (ends + 1 + y.sum())
    return float(ranked[ends[int(np.argmax(f1))]])


class SpanRewardModel:
    """Encoder + context mode + one label head per error kind; ``splits`` says how each kind cuts a response."""

    def __init__(self, heads: dict[str, RewardHead], splits: dict[str, str], encoder: Encoder | str = DEFAULT_ENCODER,
                 context: str = SpanModelConfig.context, kind: str = SpanModelConfig.kind,
                 aggregate: str = SpanModelConfig.aggregate, cache_dir: str | Path | None = None) -> None:
        CONTEXT_MODES.lookup(context)
        SPAN_AGGREGATIONS.lookup(aggregate)
        for by in splits.values():
            check_split(by)
        self.heads = heads
        self.splits = splits
        self.encoder = make_encoder(encoder) if isinstance(encoder, str) else encoder
        self.context = context
        self.kind = kind
        self.aggregate = aggregate
        self.cache_dir = cache_dir
        self.thresholds: dict[str, float] = {}
        #: the similarity columns standardised on the training spans (the others pass unchanged): a cosine varies
        #: over a few tenths, and a logistic head trained by a few hundred Adam steps could not weigh it enough
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self._head_args: dict[str, Any] = {"seed": SpanModelConfig.seed}
        self.train_info: dict[str, Any] = {}

    @classmethod
    def create(cls, kind: str = SpanModelConfig.kind, encoder: Encoder | str = SpanModelConfig.encoder,
               context: str = SpanModelConfig.context, aggregate: str = SpanModelConfig.aggregate,
               splits: str | dict[str, str] | None = None, seed: int = SpanModelConfig.seed,
               cache_dir: str | Path | None = None, **params: Any) -> SpanRewardModel:
        """An unfitted model whose heads are of ``kind`` (one that learns from labels); a head per error kind is made
        when `fit` sees the kinds of its rows."""
        if HEAD_KINDS.lookup(kind).feedback != "labels":
            raise ModelError(f"a span reward model needs a head that learns from labels "
                             f"({', '.join(kinds_learning_from('labels'))}), not {kind!r}")
        model = cls({}, splits if isinstance(splits, dict) else parse_splits(splits), encoder, context, kind,
                    aggregate, cache_dir)
        model._head_args = {"seed": seed, **params}
        return model

    @property
    def kinds(self) -> list[str]:
        return list(self.heads)

    def featurize(self, rows: Sequence[SpanRow], on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        return span_features([r.prompt for r in rows], [r.response for r in rows], [(r.start, r.end) for r in rows],
                             self.encoder, self.context, cache_dir=self.cache_dir, on_progress=on_progress)

    def fit(self, rows: Sequence[SpanRow], on_progress: Callable[[int, int], None] | None = None,
            on_fit_progress: Callable[[int, int], None] | None = None, x: np.ndarray | None = None,
            device: torch.device | str | None = None) -> SpanRewardModel:
        """One head per kind in ``rows`` on that kind's spans (each kind needs spans with and without errors), and
        its detection threshold (best F1 on its training spans). ``x``: the rows' features, if already made;
        ``device``: where the heads fit (None: the CPU; a spec such as ``"cuda"`` is resolved)."""
        started = time.perf_counter()
        if not rows:
            raise ModelError("no span rows to train on (make them with `rewardlab spans label`)")
        device = None if device is None else fit_device(device)  # a GPU that is not here fails before the embedding
        x = self.featurize(rows, on_progress) if x is None else x
        self.mean_, self.scale_ = np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
        sims = similarity_columns(self.context, self.encoder.dim)
        self.mean_[sims], self.scale_[sims] = x[:, sims].mean(0), x[:, sims].std(0) + 1e-6
        z = self._standardized(x)
        kind_of = np.array([r.kind for r in rows])
        labels = np.array([r.label for r in rows], dtype=np.float32)
        group_ids: dict[str, int] = {}
        groups = np.array([group_ids.setdefault(r.question_id, len(group_ids)) for r in rows], dtype=np.int64)
        lengths = np.array([r.end - r.start for r in rows], dtype=np.float64)
        counts: dict[str, dict[str, int]] = {}
        kinds = list(dict.fromkeys(kind_of.tolist()))
        for done, kind in enumerate(kinds):
            if not KIND_NAME.fullmatch(kind):
                raise ModelError(f"error kind {kind!r} is not a plain name ([a-z0-9_-])")
            mask = kind_of == kind
            y = labels[mask]
            if y.min() == y.max():
                raise ModelError(f"every one of the {int(mask.sum())} {kind!r} spans is labelled {int(y[0])}; a span "
                                 "head needs spans with and without errors")
            self.splits.setdefault(kind, "sentence")
            head = make_head(self.kind, **self._head_args)
            fit_head(head, label_training_set(z[mask], y, groups[mask], lengths[mask]), None, device)
            self.heads[kind] = head
            self.thresholds[kind] = best_f1_threshold(self._proba(kind, x[mask]), y)
            counts[kind] = {"spans": int(mask.sum()), "errors": int(y.sum())}
            if on_fit_progress:
                on_fit_progress(done + 1, len(kinds))
        self.train_info = {"spans": counts, "questions": len(group_ids),
                           "fit_seconds": round(time.perf_counter() - started, 3)}
        return self

    # ------------------------------------------------------------------ scoring
    def _standardized(self, x: np.ndarray) -> np.ndarray:
        if self.mean_ is None or self.scale_ is None:
            raise ModelError("this span reward model is not fitted yet; call fit() first")
        return ((x - self.mean_) / self.scale_).astype(np.float32)

    def _proba(self, kind: str, x: np.ndarray) -> np.ndarray:
        """P(error of ``kind``) for raw feature rows (standardised here, as in training)."""
        return np.asarray(expit(np.asarray(self.heads[kind].predict(self._standardized(x)), dtype=np.float64)))

    def predict_rows(self, rows: Sequence[SpanRow], x: np.ndarray | None = None) -> np.ndarray:
        """P(error of the row's kind) for each span row (the features are made unless given)."""
        self._check_fitted()
        x = self.featurize(rows) if x is None else x
        out = np.zeros(len(rows))
        kinds = np.array([r.kind for r in rows])
        for kind in set(kinds.tolist()):
            if kind not in self.heads:
                raise ModelError(f"this span model has no head for kind {kind!r}; it knows {', '.join(self.heads)}")
            mask = kinds == kind
            out[mask] = self._proba(kind, x[mask])
        return out

    def score_spans(self, prompts: Sequence[str], responses: Sequence[str],
                    on_progress: Callable[[int, int], None] | None = None) -> list[list[ScoredSpan]]:
        """For each (prompt, response), every span of every kind (cut by that kind's split) with P(error)."""
        self._check_fitted()
        if len(prompts) != len(responses):
            raise ModelError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}")
        flat = [(i, kind, a, b) for i, text in enumerate(responses) for kind in self.heads
                for a, b in split_spans(text, self.splits[kind])]
        rows = [SpanRow("", prompts[i], responses[i], a, b, kind, 0) for i, kind, a, b in flat]
        probs = self.predict_rows(rows, self.featurize(rows, on_progress)) if rows else np.zeros(0)
        out: list[list[ScoredSpan]] = [[] for _ in responses]
        for (i, kind, a, b), p in zip(flat, probs):
            out[i].append(ScoredSpan(kind, a, b, responses[i][a:b], float(p)))
        return out

    def response_reward(self, spans: Sequence[ScoredSpan], aggregate: str | None = None,
                        weights: dict[str, float] | None = None) -> float:
        """One number from a response's scored spans: each kind's aggregate, weighted (1 unless given), summed."""
        fold = SPAN_AGGREGATIONS.lookup(aggregate or self.aggregate)
        total = 0.0
        for kind in self.heads:
            mine = [s for s in spans if s.kind == kind]
            p = np.array([s.probability for s in mine])
            total += (weights or {}).get(kind, 1.0) * fold(p, np.array([s.end - s.start for s in mine], float))
        return total

    def score(self, prompts: Sequence[str], responses: Sequence[str], aggregate: str | None = None,
              weights: dict[str, float] | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The response reward of each (prompt, response): its span rewards folded (`response_reward`)."""
        return np.array([self.response_reward(s, aggregate, weights)
                         for s in self.score_spans(prompts, responses, on_progress)])

    def _check_fitted(self) -> None:
        if not self.heads:
            raise ModelError("this span reward model is not fitted yet; call fit() first")

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {"format": SPAN_MODEL_FORMAT, "rewardlab_version": rewardlab.__version__, "kind": self.kind,
                "encoder": {"spec": self.encoder.spec, "fingerprint": self.encoder.fingerprint(), "dim": self.encoder.dim},
                "context": self.context, "aggregate": self.aggregate,
                "kinds": {k: {"split": self.splits[k], "threshold": self.thresholds.get(k, 0.5),
                              "head": self.heads[k].params()} for k in self.heads},
                "train": self.train_info}

    def save(self, directory: str | Path) -> Path:
        """``directory/heads/<kind>`` plus ``config.json`` with the head files' checksums, written aside and renamed."""
        self._check_fitted()
        config = self.config()

        def write(tmp: Path) -> None:
            for kind, head in self.heads.items():
                head.save(tmp / "heads" / kind)
            save_file({"mean": np.asarray(self.mean_, np.float32), "scale": np.asarray(self.scale_, np.float32)},
                      str(tmp / SCALER_FILE))
            digests = {**file_digests(tmp, "heads"), **file_digests(tmp, SCALER_FILE)}
            (tmp / "config.json").write_text(json.dumps({**config, DIGESTS_KEY: digests}, indent=2), encoding="utf-8")

        return replace_directory(Path(directory), write)

    @classmethod
    def load(cls, directory: str | Path, cache_dir: str | Path | None = None, *,
             allow_external_encoder: bool = False) -> SpanRewardModel:
        """A model written by `save`; a `ModelError` naming the file for another format, a changed encoder, bad
        checksums or a damaged config."""
        directory = Path(directory)
        config_path, config, encoder_info = read_model_config(directory, SPAN_MODEL_FORMAT, "span reward model",
                                                              ("context", "aggregate", "kind"), allow_external_encoder)
        kinds = config.get("kinds")
        if not isinstance(kinds, dict) or not kinds or not all(
                isinstance(k, str) and KIND_NAME.fullmatch(k) and isinstance(v, dict) and isinstance(v.get("split"), str)
                and isinstance(v.get("threshold"), int | float) for k, v in kinds.items()):
            raise ModelError(f"{config_path}: 'kinds' must map each error kind to its split and threshold")
        verify_digests(directory, config.get(DIGESTS_KEY), config_path)
        if SCALER_FILE not in config[DIGESTS_KEY]:
            raise ModelError(f"{config_path}: '{DIGESTS_KEY}' does not list {SCALER_FILE}")
        encoder = trained_encoder(encoder_info, config_path)
        heads = {k: load_head(directory / "heads" / k) for k in kinds}
        model = cls(heads, {k: v["split"] for k, v in kinds.items()}, encoder, config["context"], config["kind"],
                    config["aggregate"], cache_dir)
        model.thresholds = {k: float(v["threshold"]) for k, v in kinds.items()}
        scaler = load_file(str(directory / SCALER_FILE))
        if set(scaler) != {"mean", "scale"} or scaler["mean"].shape != scaler["scale"].shape:
            raise ModelError(f"{directory / SCALER_FILE}: expected 'mean' and 'scale' vectors of one length")
        model.mean_, model.scale_ = scaler["mean"], scaler["scale"]
        train = config.get("train", {})
        model.train_info = train if isinstance(train, dict) else {}
        return model
