"""Length-bucketed batching shared by every transformer encoder.

Sorting texts by token count before batching means each batch is padded only to the longest of
similar-length neighbours, which is most of the speed difference between naive and careful CPU
inference on mixed-length corpora. Callers write results back by index, so outputs keep input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardlab.errors import InvalidValueError


def length_sorted_batches(lengths: Sequence[int], batch_size: int, token_budget: int | None = None) -> list[np.ndarray]:
    """Index arrays into ``lengths``, shortest texts first, each batch of similar length.

    A batch closes at ``batch_size`` texts or, when ``token_budget`` is set, once
    ``rows × longest`` would exceed it, so short texts travel in larger batches than long ones.
    """
    if batch_size < 1:
        raise InvalidValueError("batch_size must be at least 1")
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and stop - start < batch_size:
            if token_budget is not None and (stop - start + 1) * lengths[order[stop]] > token_budget:
                break
            stop += 1
        batches.append(order[start:stop])
        start = stop
    return batches


def pad_token_ids(
    rows: Sequence[Sequence[int]], pad_id: int = 0, side: str = "right"
) -> tuple[np.ndarray, np.ndarray]:
    """Pad token id lists to one width; returns ``(ids, attention_mask)`` as int64 arrays."""
    if side not in ("left", "right"):
        raise InvalidValueError("side must be 'left' or 'right'")
    width = max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for row, tokens in enumerate(rows):
        n = len(tokens)
        if n == 0:
            continue
        cols = slice(width - n, width) if side == "left" else slice(0, n)
        ids[row, cols] = tokens
        mask[row, cols] = 1
    return ids, mask
