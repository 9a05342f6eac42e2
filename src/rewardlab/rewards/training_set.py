"""Feedback turned into arrays a head can learn from: one feature row per response, plus supervision.

Comparisons (and rankings, expanded into all their ordered pairs) become index pairs with a target
P(a wins) of 1, 0 or 0.5 for a tie; ratings and correctness labels become per-response values. Each
response carries its prompt's group so validation splits stay split by prompt, and its length in characters
so a head can model (and remove) a length preference.

The label models of `rewardlab.rewards.likelihoods` need what that flattening loses, kept beside it: which
pairs are ties (``pair_tie``), each comparison's ``strength``, each ranking as one list of items (best first)
and each rating's scale. The pairwise objectives never read these, so they see exactly what they saw before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.errors import ModelError
from rewardlab.rewards.features import FeatureRows

OUTCOME_TARGET = {"a": 1.0, "b": 0.0, "tie": 0.5}


@dataclass
class TrainingSet:
    x: np.ndarray  # (n_items, d) features, one row per response
    response_ids: list[str]
    group: np.ndarray  # (n_items,) prompt-group index of each response
    pair_a: np.ndarray  # (n_pairs,) item indices
    pair_b: np.ndarray
    pair_target: np.ndarray  # P(a beats b): 1, 0 or 0.5
    rating_item: np.ndarray  # (n_ratings,) item indices
    rating_value: np.ndarray
    label_item: np.ndarray  # (n_labels,) item indices
    label_value: np.ndarray  # 1.0 correct / 0.0 incorrect
    #: (n_items,) response length in characters; empty when the features came without texts
    length: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: (n_pairs,) weight of each pair (e.g. its annotator's reliability weight); empty: every pair weighs 1
    pair_weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: (n_pairs,) annotator id of each pair ("" when the row had none), for annotator-aware heads and weights
    pair_annotator: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    #: (n_pairs,) whether each pair was labelled a tie; empty: read off ``pair_target == 0.5``
    pair_tie: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: (n_pairs,) each comparison's strength (NaN where it had none, and for the pairs of rankings); empty: all NaN
    pair_strength: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: (n_pairs,) whether each pair is one of a ranking's expanded pairs (not a comparison); empty: none is
    pair_from_ranking: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: each ranking as its item indices, best first (at least 2 items), for listwise label models
    rankings: list[np.ndarray] = field(default_factory=list)
    #: (n_ratings, 2) each rating's scale (low, high); NaN where the rating had none; empty: all NaN
    rating_scale: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def dim(self) -> int:
        features, _ = self._source()
        return features.width if isinstance(features, OnDemandFeatures) else int(features.shape[1])

    @property
    def n_items(self) -> int:
        return len(self.response_ids)

    def feature_source(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(matrix, item rows): item i's features are ``matrix[item_rows[i]]``, or ``matrix[i]`` when item rows is
        None. A split of a training set indexes its parent's matrix instead of copying the rows it keeps (at 400k
        responses of 768 floats, the early-stopping split's copy was 1.1 GB); a head that reads rows through this
        never makes that copy, and gets the same values. A training set whose rows are made on demand
        (`OnDemandFeatures`) builds its whole matrix here, once for it and all its splits: a head that reads rows
        a batch at a time uses `rows_of` and never builds it."""
        features, rows = self._source()
        return (features.matrix() if isinstance(features, OnDemandFeatures) else features), rows

    def rows_of(self, items: np.ndarray) -> np.ndarray:
        """The feature rows of ``items`` (item indices) as a new matrix, gathered from the matrix (or made, when the
        rows are made on demand) without copying or making the rest."""
        features, rows = self._source()
        at = items if rows is None else rows[items]
        return features.rows(at) if isinstance(features, OnDemandFeatures) else features[at]

    def _source(self) -> tuple[np.ndarray | OnDemandFeatures, np.ndarray | None]:
        """`feature_source` before any matrix is built: (``x``, None) for a training set that holds its ``x``."""
        source: tuple[np.ndarray | OnDemandFeatures, np.ndarray | None] | None = self.__dict__.get(_FEATURE_SOURCE)
        return (self.x, None) if source is None else source

    def __getstate__(self) -> dict[str, object]:
        """Pickled with its own rows only (never the whole parent matrix of a split, nor what makes rows on demand)."""
        state = dict(self.__dict__)
        if _FEATURE_SOURCE in state:
            state.pop(_FEATURE_SOURCE)
            state["x"] = self.rows_of(np.arange(self.n_items))
        return state

    def split_by_group(self, fraction: float, seed: int) -> tuple[TrainingSet, TrainingSet]:
        """(train, validation) with whole prompt groups held out, for early stopping."""
        groups = np.unique(self.group)
        rng = np.random.default_rng(seed)
        n_val = max(1, int(round(fraction * len(groups))))
        val_groups = set(rng.choice(groups, size=n_val, replace=False).tolist())
        val_items = np.array([g in val_groups for g in self.group], dtype=bool)
        return self._restrict(~val_items), self._restrict(val_items)

    def ties(self) -> np.ndarray:
        """(n_pairs,) bool: which pairs were labelled a tie."""
        if len(self.pair_tie):
            return self.pair_tie.astype(bool)
        return np.asarray(self.pair_target == 0.5)

    def from_rankings(self) -> np.ndarray:
        """(n_pairs,) bool: which pairs were expanded from rankings (the rest are comparisons)."""
        if len(self.pair_from_ranking):
            return self.pair_from_ranking.astype(bool)
        return np.zeros(len(self.pair_a), dtype=bool)

    def strengths(self) -> np.ndarray:
        """(n_pairs,) each pair's strength, NaN where it has none."""
        if len(self.pair_strength):
            return self.pair_strength.astype(np.float64)
        return np.full(len(self.pair_a), np.nan)

    def rating_scales(self) -> np.ndarray:
        """(n_ratings, 2) each rating's (low, high) scale, NaN where it has none."""
        if len(self.rating_scale):
            return self.rating_scale.astype(np.float64)
        return np.full((len(self.rating_item), 2), np.nan)

    def _restrict(self, keep: np.ndarray) -> TrainingSet:
        new_index = np.full(len(keep), -1, dtype=np.int64)
        new_index[keep] = np.arange(int(keep.sum()))

        def remap(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ok = keep[items]
            return new_index[items[ok]], ok

        # a pair survives only if both sides do (cross-prompt pairs may straddle the split)
        ok_pair = keep[self.pair_a] & keep[self.pair_b]
        pa, pb = new_index[self.pair_a[ok_pair]], new_index[self.pair_b[ok_pair]]
        ri, ok_r = remap(self.rating_item)
        li, ok_l = remap(self.label_item)
        rankings = [new_index[r[keep[r]]] for r in self.rankings]  # a ranking keeps the items that survive, in order

        def per_pair(values: np.ndarray) -> np.ndarray:
            return values[ok_pair] if len(values) else values
        features, parent_rows = self._source()
        subset = TrainingSet(
            x=_NO_ROWS,
            response_ids=[rid for rid, k in zip(self.response_ids, keep) if k],
            group=self.group[keep],
            pair_a=pa,
            pair_b=pb,
            pair_target=self.pair_target[ok_pair],
            rating_item=ri,
            rating_value=self.rating_value[ok_r],
            label_item=li,
            label_value=self.label_value[ok_l],
            length=self.length[keep] if len(self.length) else self.length,
            pair_weight=per_pair(self.pair_weight),
            pair_annotator=per_pair(self.pair_annotator),
            pair_tie=per_pair(self.pair_tie),
            pair_strength=per_pair(self.pair_strength),
            pair_from_ranking=per_pair(self.pair_from_ranking),
            rankings=[r for r in rankings if len(r) >= 2],
            rating_scale=self.rating_scale[ok_r] if len(self.rating_scale) else self.rating_scale,
        )
        kept = np.flatnonzero(keep)
        del subset.__dict__["x"]  # read through the item map (`_ItemFeatures`) until someone reads x itself
        subset.__dict__[_FEATURE_SOURCE] = (features, kept if parent_rows is None else parent_rows[kept])
        return subset

    def item_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Classification view of the pairs: winners get 1, losers 0, both sides of a tie 0.5."""
        items = np.concatenate([self.pair_a, self.pair_b])
        targets = np.concatenate([self.pair_target, 1.0 - self.pair_target])
        return items, targets

    def pair_weights(self) -> np.ndarray:
        """(n_pairs,) the per-pair weights (ones when the set carries none)."""
        if len(self.pair_weight):
            return self.pair_weight.astype(np.float32)
        return np.ones(len(self.pair_a), dtype=np.float32)

    def length_balance_weights(self) -> np.ndarray:
        """(n_pairs,) weights under which the pairs the longer response wins and those the shorter one wins weigh
        the same in total (ties and equal lengths keep weight 1; mean weight 1 over the decided pairs), so that
        "longer wins" cannot be learned from the imbalance of the data alone."""
        if len(self.length) != self.n_items:
            raise ModelError("length-balanced pairs need each response's length; this training set has none")
        longer_wins, shorter_wins = length_winners(self.length[self.pair_a], self.length[self.pair_b], self.pair_target)
        n_longer, n_shorter = int(longer_wins.sum()), int(shorter_wins.sum())
        weights = np.ones(len(self.pair_target), dtype=np.float32)
        if n_longer and n_shorter:
            decided = n_longer + n_shorter
            weights[longer_wins] = decided / (2 * n_longer)
            weights[shorter_wins] = decided / (2 * n_shorter)
        return weights


class OnDemandFeatures:
    """The feature matrix of a training set, never held whole unless asked for: ``make_rows(rows)`` makes the rows
    it is asked for (`rewardlab.rewards.features.FeatureRows` makes them from the distinct texts' vectors, so memory
    is those vectors, not the responses × width matrix: at 400k responses of 768 floats, 0.5 GB instead of 1.2 GB).
    `matrix` builds the whole matrix once, for a head that reads all of it, and every later row comes from it."""

    def __init__(self, make_rows: Callable[[np.ndarray], np.ndarray], n_rows: int, width: int) -> None:
        self._make_rows, self.n_rows, self.width = make_rows, n_rows, width
        self._matrix: np.ndarray | None = None

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """The feature rows ``rows`` as a new (len(rows), width) float32 matrix."""
        return self._matrix[rows] if self._matrix is not None else self._make_rows(np.asarray(rows, dtype=np.int64))

    def matrix(self) -> np.ndarray:
        """Every row as one float32 matrix, filled a block at a time the first time it is asked for, then kept."""
        if self._matrix is None:
            matrix = np.empty((self.n_rows, self.width), dtype=np.float32)
            for start in range(0, self.n_rows, MATRIX_BLOCK_ROWS):
                block = np.arange(start, min(self.n_rows, start + MATRIX_BLOCK_ROWS))
                matrix[block] = self._make_rows(block)
            self._matrix = matrix
            self._make_rows = _built  # every row now comes from the matrix: what made them (the vectors) can go
        return self._matrix


def _built(rows: np.ndarray) -> np.ndarray:
    raise AssertionError("rows are read from the built matrix")


#: rows made per step when `OnDemandFeatures.matrix` fills a whole matrix (bounds the block made beside it)
MATRIX_BLOCK_ROWS = 8192
#: ``x`` of a training set whose rows are not held (a split's, or one whose rows are made on demand) until it is read
_NO_ROWS = np.zeros((0, 0), np.float32)


class _ItemFeatures:
    """``x`` of a training set that does not hold its rows (a split, or one made with rows on demand), read as an
    array: one row per item, gathered (or made) the first time it is read and kept as the set's own ``x`` (a head
    that reads ``x`` of a split holds the copy it always held; one that reads ``x`` of a set with rows on demand gets
    the whole matrix, built once). It is a non-data descriptor, so a training set built with ``x`` keeps it as a
    plain attribute and never comes here; heads that need only some rows use `TrainingSet.rows_of` and never gather
    or make the rest."""

    def __get__(self, data: TrainingSet | None, owner: type | None = None) -> np.ndarray:
        if data is None:
            raise AttributeError("x is an instance attribute")
        features, rows = data.__dict__[_FEATURE_SOURCE]
        if isinstance(features, OnDemandFeatures):
            x = features.matrix() if rows is None else features.rows(rows)
        else:
            x = features if rows is None else features[rows]
        del data.__dict__[_FEATURE_SOURCE]
        data.__dict__["x"] = x
        return x


#: where a training set that does not hold its rows keeps (parent matrix or `OnDemandFeatures`, item rows or None)
#: until its ``x`` is read
_FEATURE_SOURCE = "_feature_source"
TrainingSet.x = _ItemFeatures()  # type: ignore[assignment]  # set after @dataclass: not a default for the field


def length_winners(length_a: np.ndarray, length_b: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, whether the better response is the longer one, and whether it is the shorter one (ties and equal
    lengths: neither). One definition for training's length balance and evaluation's length-balanced accuracy."""
    longer_a, shorter_a = length_a > length_b, length_a < length_b
    a_wins, b_wins = target > 0.5, target < 0.5
    return (a_wins & longer_a) | (b_wins & shorter_a), (a_wins & shorter_a) | (b_wins & longer_a)


def build_training_set(dataset: FeedbackDataset, response_features: Mapping[str, np.ndarray],
                       annotator_weights: Mapping[str, float] | None = None) -> TrainingSet:
    """Arrange ``dataset``'s supervision over the features of its responses (response id -> feature row).

    Given `rewardlab.rewards.features.FeatureRows`, the training set holds no feature matrix: its rows are made when
    a head asks for them (`TrainingSet.rows_of`, a batch at a time), from the distinct texts' vectors; a head that
    reads ``x`` or `TrainingSet.feature_source` gets the whole matrix, built then. Either way the rows are the same.

    ``annotator_weights`` (annotator id -> weight; rows without an id under ``"(none)"``) weighs each comparison and
    each pair of a ranking by its annotator (`rewardlab.rewards.annotator_quality`); annotators it does not name
    (synthetic pairs, say) weigh 1. None: no pair weights."""
    response_ids = sorted(response_features)
    index = {rid: i for i, rid in enumerate(response_ids)}
    groups = dataset.prompt_groups()
    group_index: dict[str, int] = {}
    item_group = np.array(
        [group_index.setdefault(groups[dataset.responses[rid].prompt_id], len(group_index)) for rid in response_ids],
        dtype=np.int64,
    )
    pa: list[int] = []
    pb: list[int] = []
    target: list[float] = []
    weight: list[float] = []
    annotator: list[str] = []
    strength: list[float] = []
    weights = annotator_weights or {}
    for comp in dataset.comparisons:
        pa.append(index[comp.a])
        pb.append(index[comp.b])
        target.append(OUTCOME_TARGET[comp.outcome])
        strength.append(np.nan if comp.strength is None else comp.strength)
        weight.append(weights.get(comp.annotator_id or "(none)", 1.0))
        annotator.append(comp.annotator_id or "")
    for ranking in dataset.rankings:
        ids = ranking.response_ids
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                pa.append(index[ids[i]])
                pb.append(index[ids[j]])
                target.append(1.0)
                weight.append(weights.get(ranking.annotator_id or "(none)", 1.0))
                annotator.append(ranking.annotator_id or "")
                strength.append(np.nan)
    data = TrainingSet(
        x=_NO_ROWS if isinstance(response_features, FeatureRows)
        else feature_matrix([response_features[rid] for rid in response_ids]),
        response_ids=response_ids,
        group=item_group,
        pair_a=np.array(pa, dtype=np.int64),
        pair_b=np.array(pb, dtype=np.int64),
        pair_target=np.array(target, dtype=np.float32),
        rating_item=np.array([index[r.response_id] for r in dataset.ratings], dtype=np.int64),
        rating_value=np.array([r.value for r in dataset.ratings], dtype=np.float32),
        label_item=np.array([index[lab.response_id] for lab in dataset.labels], dtype=np.int64),
        label_value=np.array([float(lab.correct) for lab in dataset.labels], dtype=np.float32),
        length=np.array([len(dataset.responses[rid].text) for rid in response_ids], dtype=np.float64),
        pair_weight=np.array(weight if annotator_weights is not None else [], dtype=np.float32),
        pair_annotator=np.array(annotator, dtype=str),
        pair_tie=np.array([c.outcome == "tie" for c in dataset.comparisons] + [False] * (len(pa) - len(dataset.comparisons)),
                          dtype=bool),
        pair_strength=np.array(strength, dtype=np.float64),
        pair_from_ranking=np.arange(len(pa)) >= len(dataset.comparisons),
        rankings=[np.array([index[rid] for rid in r.response_ids], dtype=np.int64) for r in dataset.rankings
                  if len(r.response_ids) >= 2],
        rating_scale=np.array([r.scale if r.scale is not None else (np.nan, np.nan) for r in dataset.ratings],
                              dtype=np.float64).reshape(-1, 2),
    )
    if isinstance(response_features, FeatureRows):
        del data.__dict__["x"]  # made on demand (`_ItemFeatures` builds it if a head reads x)
        data.__dict__[_FEATURE_SOURCE] = (_on_demand(response_features, response_ids), None)
    return data


def _on_demand(feature_rows: FeatureRows, response_ids: list[str]) -> OnDemandFeatures:
    """Row i made on demand is ``feature_rows[response_ids[i]]``."""
    positions = feature_rows.positions(response_ids)
    return OnDemandFeatures(lambda rows: feature_rows.rows_at(positions[rows]), len(response_ids), feature_rows.width)


def feature_matrix(rows: list[np.ndarray]) -> np.ndarray:
    """The rows as one float32 matrix. When they are, in order, every row of one float32 matrix (as
    `rewardlab.rewards.features.featurize_dataset` makes them for the same responses), that matrix itself, else a
    copy filled row by row (at 400k rows of 768, a stack and a cast had made two 1.2 GB copies). Heads read ``x``
    and never write to it."""
    if not rows:
        return np.zeros((0, 0), np.float32)
    base = _common_matrix(rows)
    if base is not None:
        return base
    out = np.empty((len(rows), len(rows[0])), dtype=np.float32)
    for i, row in enumerate(rows):
        out[i] = row
    return out


def _common_matrix(rows: list[np.ndarray]) -> np.ndarray | None:
    """The float32 C-contiguous matrix whose rows, in order, are exactly ``rows`` (views of it); None otherwise."""
    base = rows[0].base
    if (not isinstance(base, np.ndarray) or base.ndim != 2 or base.dtype != np.float32
            or not base.flags.c_contiguous or base.shape[0] != len(rows)):
        return None
    start = base.__array_interface__["data"][0]
    stride = base.strides[0]
    for i, row in enumerate(rows):
        if (row.base is not base or row.ndim != 1 or row.shape[0] != base.shape[1]
                or row.__array_interface__["data"][0] != start + i * stride):
            return None
    return base
