"""From embedded prompts and responses to the feature row a head sees.

Two ways to see a (prompt, response) pair:

- **separately** (``response``, ``prompt+response``, ``interaction``): the response and the tail of its prompt
  (`prompt_view`) are embedded on their own and combined as vectors. A long dialogue embedded together with
  its answer would be truncated at the encoder's limit and lose the answer, so this never truncates one
  for the other; but no vector has seen both, so a head can only guess whether *this* response follows
  *this* instruction.
- **jointly** (``joint``, ``joint-only``): one text, `JOINT_TEMPLATE` filled with the END of the prompt and
  the START of the response, cut to fit the encoder's token limit (`joint_texts`), is embedded in one pass,
  so attention relates the answer to the question. For a last-token encoder (``hf-last:``) the response
  comes last, as in the usual reward-model representation, and if it must be cut it keeps its end (the
  token that is pooled); the prompt is always cut from the left.

``joint`` is [joint vector, response vector]; ``joint-only`` is the joint vector alone. On the bundled
HH-RLHF demo with ``minilm:int8`` (benchmarks/feature_modes.py, 5-fold CV by prompt, bt-mlp / clf-mlp) the
joint vector alone scored 0.608 / 0.604 pairwise accuracy, below the response alone (0.621 / 0.608): mean
pooling over the joint text dilutes the response, and a long prompt takes half its token budget. With the
response vector beside it, 0.626 / 0.619, level with ``interaction`` (0.621 / 0.623; all CIs ±0.02), so
that is what ``joint`` means. The joint-only row is the natural one for ``hf-last:`` encoders, whose last
token has read the whole pair.

Joint texts depend on the encoder's tokenizer (the cut points), and the embedding cache keys by exact
text, so they cache like any other text; `dataset_texts` lists them for pre-filling a cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import Encoder
from rewardlab.embed.embedding import EmbedStats, embed_unique
from rewardlab.embed.tokens import TokenMeter, head, tail, token_meter
from rewardlab.errors import ModelError

#: per mode, the vectors a feature row concatenates: r (the response), p (the prompt's tail), r*p, and
#: j (prompt and response embedded together, `joint_texts`)
MODE_PARTS: dict[str, tuple[str, ...]] = {
    "response": ("r",),
    "prompt+response": ("r", "p"),
    "interaction": ("r", "p", "r*p"),
    "joint": ("j", "r"),
    "joint-only": ("j",),
}
FEATURE_MODES = tuple(MODE_PARTS)
JOINT_MODES = tuple(mode for mode, parts in MODE_PARTS.items() if "j" in parts)
PROMPT_TAIL_CHARS = 1000
#: the joint text: a plain question/answer frame, so neither part is mistaken for the other and the response
#: comes last (where a last-token encoder pools)
JOINT_TEMPLATE = "Question: {prompt}\nAnswer: {response}"
#: the least share of the joint token budget the response gets when both parts are too long; a short
#: response leaves the rest to the prompt, and a short prompt leaves the rest to the response
RESPONSE_SHARE = 0.5


def check_mode(mode: str) -> None:
    if mode not in MODE_PARTS:
        raise ModelError(f"unknown feature mode {mode!r}; known: {', '.join(FEATURE_MODES)}")


def prompt_view(text: str, tail_chars: int = PROMPT_TAIL_CHARS) -> str:
    """The end of a long prompt (the latest turns), which is what the response answers."""
    return text if len(text) <= tail_chars else text[-tail_chars:]


def split_budget(prompt_tokens: int, response_tokens: int, budget: int,
                 response_share: float = RESPONSE_SHARE) -> tuple[int, int]:
    """(prompt tokens kept, response tokens kept) within ``budget``: everything when it fits; else the response
    gets at least ``response_share`` of the budget, and whichever part is short leaves the rest to the other."""
    if prompt_tokens + response_tokens <= budget:
        return prompt_tokens, response_tokens
    keep_response = min(response_tokens, max(math.ceil(budget * response_share), budget - prompt_tokens))
    return min(prompt_tokens, budget - keep_response), keep_response


def joint_texts(prompts: Sequence[str], responses: Sequence[str], encoder: Encoder | TokenMeter,
                response_share: float = RESPONSE_SHARE) -> list[str]:
    """`JOINT_TEMPLATE` filled with the end of each prompt and the response, within the encoder's token limit.

    Counted with the encoder's own tokenizer where it has one (`rewardlab.embed.tokens.TokenAware`), else in
    characters. The response keeps the end the encoder itself keeps (its start for MiniLM, its end for a
    last-token LLM); the prompt always keeps its end. Cuts fall on word boundaries where they can, and
    every text is counted again once assembled: a part that tokenizes differently at a cut or a join is
    trimmed until the whole fits.
    """
    if len(prompts) != len(responses):
        raise ModelError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}")
    if not 0.0 <= response_share <= 1.0:
        raise ModelError(f"response_share must be in [0, 1], got {response_share}")
    meter = encoder if isinstance(encoder, TokenMeter) else token_meter(encoder)
    budget = meter.limit - meter.count([JOINT_TEMPLATE.format(prompt="", response="")])[0]
    if budget < 2:
        raise ModelError(f"the encoder's limit of {meter.limit} tokens leaves no room for a joint text")
    n = len(prompts)
    spans = meter.spans(list(prompts) + list(responses))
    keep = [split_budget(len(spans[i]), len(spans[n + i]), budget, response_share) for i in range(n)]

    def fill(i: int) -> str:
        p_keep, r_keep = keep[i]
        cut = head if meter.keeps == "start" else tail
        return JOINT_TEMPLATE.format(prompt=tail(prompts[i], spans[i], p_keep),
                                     response=cut(responses[i], spans[n + i], r_keep))

    out = [fill(i) for i in range(n)]
    pending = list(range(n)) if meter.exact else []  # by characters, the parts add up exactly
    for _ in range(8):
        if not pending:
            break
        counts = meter.count([out[i] for i in pending])
        over = [(i, c - meter.limit) for i, c in zip(pending, counts) if c > meter.limit]
        for i, excess in over:
            p_keep, r_keep = keep[i]
            from_prompt = min(p_keep, excess) if p_keep >= r_keep else max(0, excess - r_keep)
            keep[i] = (p_keep - from_prompt, max(0, r_keep - (excess - from_prompt)))
            out[i] = fill(i)
        pending = [i for i, _ in over]
    return out


def _views(mode: str) -> tuple[bool, bool, bool]:
    """Whether ``mode`` needs the response, the prompt view and the joint text embedded."""
    parts = MODE_PARTS[mode]
    return any("r" in p for p in parts), any("p" in p for p in parts), "j" in parts


def feature_texts(prompts: Sequence[str], responses: Sequence[str], mode: str,
                  encoder: Encoder | None = None) -> list[str]:
    """Every text featurizing these pairs in ``mode`` embeds (joint modes need the ``encoder``, whose tokens
    decide the cuts): the responses, then the prompt views, then the joint texts, as the mode needs them."""
    check_mode(mode)
    use_r, use_p, use_j = _views(mode)
    texts = list(responses) if use_r else []
    if use_p:
        texts += [prompt_view(p) for p in prompts]
    if use_j:
        if encoder is None:
            raise ModelError(f"feature mode {mode!r} needs the encoder: its tokenizer decides where the joint text is cut")
        texts += joint_texts(prompts, responses, encoder)
    return texts


def dataset_texts(dataset: FeedbackDataset, mode: str = "interaction", encoder: Encoder | None = None) -> list[str]:
    """Every string featurizing ``dataset`` in ``mode`` embeds, to pre-fill a cache: the responses, the tail of
    each prompt, the joint texts, as the mode needs them (the default, ``interaction``, covers every separate
    mode). Joint modes need the ``encoder``: its tokenizer decides where a joint text is cut."""
    check_mode(mode)
    use_r, use_p, use_j = _views(mode)
    texts = [r.text for r in dataset.responses.values()] if use_r else []
    if use_p:
        texts += [prompt_view(p.text) for p in dataset.prompts.values()]
    if use_j:
        if encoder is None:
            raise ModelError(f"feature mode {mode!r} needs the encoder: its tokenizer decides where the joint text is cut")
        rows = list(dataset.responses.values())
        texts += joint_texts([dataset.prompts[r.prompt_id].text for r in rows], [r.text for r in rows], encoder)
    return texts


def combine(prompt_vecs: np.ndarray, response_vecs: np.ndarray, mode: str,
            joint_vecs: np.ndarray | None = None) -> np.ndarray:
    """The feature rows for ``mode`` (see `MODE_PARTS`) from the embedded views it uses."""
    check_mode(mode)
    parts = {"r": lambda: response_vecs, "p": lambda: prompt_vecs, "r*p": lambda: response_vecs * prompt_vecs,
             "j": lambda: _required(joint_vecs, mode)}
    return np.concatenate([parts[p]() for p in MODE_PARTS[mode]], axis=1)


def _required(vectors: np.ndarray | None, mode: str) -> np.ndarray:
    if vectors is None:
        raise ModelError(f"feature mode {mode!r} needs the joint vectors")
    return vectors


def feature_dim(encoder_dim: int, mode: str) -> int:
    """The width of a feature row in ``mode``: 1, 2 or 3 times the encoder's."""
    check_mode(mode)
    return len(MODE_PARTS[mode]) * encoder_dim


#: rows of the feature matrix filled per step: bounds the temporaries of a product like r*p
FILL_ROWS = 65536


def _embedded_views(prompts: Sequence[str], responses: Sequence[str], encoder: Encoder, mode: str, *,
                    cache_dir: str | Path | None, use_cache: bool,
                    on_progress: Callable[[int, int], None] | None) -> tuple[np.ndarray, dict[str, np.ndarray], EmbedStats]:
    """(vectors of the distinct texts, per view of the mode ("r", "p", "j") each pair's row in them, stats)."""
    if len(prompts) != len(responses):
        raise ModelError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}")
    check_mode(mode)
    texts = feature_texts(prompts, responses, mode, encoder)
    vectors, inverse, stats = embed_unique(texts, encoder, cache_dir=cache_dir, use_cache=use_cache,
                                           on_progress=on_progress)
    n = len(responses)
    views: dict[str, np.ndarray] = {}
    for name, used in zip(("r", "p", "j"), _views(mode)):
        if used:
            views[name] = inverse[len(views) * n : (len(views) + 1) * n]
    return vectors, views, stats


def _fill(out: np.ndarray, target: slice | np.ndarray, vectors: np.ndarray, views: dict[str, np.ndarray],
          pairs: slice | np.ndarray, mode: str) -> None:
    """Write the feature rows of ``pairs`` (indices into the views) into rows ``target`` of ``out``."""
    dim = vectors.shape[1]
    for column, part in enumerate(MODE_PARTS[mode]):
        columns = slice(column * dim, (column + 1) * dim)
        if part == "r*p":
            out[target, columns] = vectors[views["r"][pairs]] * vectors[views["p"][pairs]]
        else:
            out[target, columns] = vectors[views[part][pairs]]


def featurize_texts(
    prompts: Sequence[str],
    responses: Sequence[str],
    encoder: Encoder,
    mode: str,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    row_order: np.ndarray | None = None,
) -> tuple[np.ndarray, EmbedStats]:
    """Feature rows for (prompt, response) pairs; every text the mode needs goes through one cached pass.

    The rows are written straight into one float32 matrix from the vectors of the distinct texts: a prompt shared
    by many responses is held once, and no per-view copy is made on the way (at 400k responses, the views and their
    concatenation had cost three times the matrix). ``row_order`` (a permutation) puts pair i in row
    ``row_order[i]``, without a second matrix."""
    vectors, views, stats = _embedded_views(prompts, responses, encoder, mode, cache_dir=cache_dir,
                                            use_cache=use_cache, on_progress=on_progress)
    n = len(responses)
    out = np.empty((n, feature_dim(encoder.dim, mode)), dtype=np.float32)
    for start in range(0, n, FILL_ROWS):
        rows = slice(start, min(n, start + FILL_ROWS))
        _fill(out, rows if row_order is None else row_order[rows], vectors, views, rows, mode)
    return out, stats


class FeatureRows(Mapping[str, np.ndarray]):
    """response id -> feature row, each made when asked from the vectors of the distinct texts, so a caller that
    needs the rows a block at a time (scoring 200k held-out pairs) never holds them all: memory is the distinct
    texts' vectors, not the (responses × width) matrix. ``rows(ids)`` makes a block; the values are exactly those
    of `featurize_dataset`."""

    def __init__(self, ids: Sequence[str], vectors: np.ndarray, views: dict[str, np.ndarray], mode: str) -> None:
        self._position = {rid: i for i, rid in enumerate(ids)}
        self._vectors, self._views, self.mode = vectors, views, mode
        self.width = feature_dim(vectors.shape[1], mode)

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """The feature rows of ``ids`` as one (len(ids), width) float32 matrix (KeyError for an unknown id)."""
        return self.rows_at(self.positions(ids))

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Each id's position among the rows (their order when iterated; KeyError for an unknown id), for
        `rows_at`: a caller that asks for the same rows many times (a training set's batches) looks them up once."""
        return np.fromiter((self._position[rid] for rid in ids), dtype=np.int64, count=len(ids))

    def rows_at(self, positions: np.ndarray) -> np.ndarray:
        """The feature rows at ``positions`` (see `positions`) as one (len(positions), width) float32 matrix."""
        out = np.empty((len(positions), self.width), dtype=np.float32)
        _fill(out, slice(None), self._vectors, self._views, positions, self.mode)
        return out

    def __getitem__(self, rid: str) -> np.ndarray:
        return self.rows([rid])[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._position)

    def __len__(self) -> int:
        return len(self._position)


def _dataset_pairs(dataset: FeedbackDataset) -> tuple[list[str], list[str], list[str]]:
    """(response ids, their prompts' texts, their texts) in the dataset's order: embedded in that order, as always
    (the same chunks, so the same vectors)."""
    ids = list(dataset.responses)
    prompts = [dataset.prompts[dataset.responses[rid].prompt_id].text for rid in ids]
    return ids, prompts, [dataset.responses[rid].text for rid in ids]


def featurize_dataset(
    dataset: FeedbackDataset,
    encoder: Encoder,
    mode: str,
    **kwargs: object,
) -> tuple[dict[str, np.ndarray], EmbedStats]:
    """response id -> feature row, for every response in ``dataset``.

    The rows are views of one matrix whose rows follow the sorted response ids, the order `build_training_set`
    arranges them in, so a training set over the same responses uses that matrix as it is instead of a copy."""
    ids, prompts, responses = _dataset_pairs(dataset)
    order = np.empty(len(ids), dtype=np.int64)
    order[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    x, stats = featurize_texts(prompts, responses, encoder, mode, row_order=order, **kwargs)  # type: ignore[arg-type]
    return {rid: x[row] for rid, row in zip(ids, order.tolist())}, stats


def feature_rows_on_demand(
    dataset: FeedbackDataset,
    encoder: Encoder,
    mode: str,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[FeatureRows, EmbedStats]:
    """`featurize_dataset` as `FeatureRows`: the same rows, made a block at a time when asked."""
    ids, prompts, responses = _dataset_pairs(dataset)
    vectors, views, stats = _embedded_views(prompts, responses, encoder, mode, cache_dir=cache_dir,
                                            use_cache=use_cache, on_progress=on_progress)
    return FeatureRows(ids, vectors, views, mode), stats
