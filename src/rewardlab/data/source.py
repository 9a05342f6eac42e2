"""A feedback source as a user names it: a dataset name from the registry, or a file with its format options."""

from __future__ import annotations

from pathlib import Path

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.load import load_feedback
from rewardlab.data.mapping import ColumnMapping
from rewardlab.data.records import EMPTY_POLICIES
from rewardlab.data.registry import REGISTRY, load_named
from rewardlab.errors import DataError


def load_source(source: str | Path, format: str = "auto", mapping: str | None = None, label_values: str | None = None,
                on_empty: str | None = None, limit: int | None = None) -> FeedbackDataset:
    """An existing path is read as a file (``mapping`` is ``prompt=col,...`` text); otherwise a registered name.

    ``on_empty`` ("error" or "skip", counted in ``notes``) decides about rows whose response text is empty; None
    means "error" for a file and the dataset's own policy for a name (see `DatasetEntry.on_empty`).
    """
    if on_empty is not None and on_empty not in EMPTY_POLICIES:
        raise DataError(f"on_empty must be one of {', '.join(EMPTY_POLICIES)}, not {on_empty!r}", source=source)
    if not Path(source).exists() and str(source) in REGISTRY:
        return load_named(str(source), limit, on_empty)
    column_mapping = ColumnMapping.parse(mapping, label_values) if mapping else None
    return load_feedback(source, format, column_mapping, limit, on_empty or "error")
