"""A feedback source as a user names it: a dataset name from the registry, or a file with its format options."""

from __future__ import annotations

from pathlib import Path

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.load import load_feedback
from rewardlab.data.mapping import ColumnMapping
from rewardlab.data.records import check_policies
from rewardlab.data.registry import REGISTRY, load_named


def load_source(source: str | Path, format: str = "auto", mapping: str | None = None, label_values: str | None = None,
                on_empty: str | None = None, limit: int | None = None, on_error: str = "error") -> FeedbackDataset:
    """An existing path is read as a file (``mapping`` is ``prompt=col,...`` text); otherwise a registered name.

    ``on_empty`` ("error" or "skip", counted in ``notes``) decides about rows whose response text is empty; None
    means "error" for a file and the dataset's own policy for a name (see `DatasetEntry.on_empty`). ``on_error``
    ("error" or "skip", counted and named in ``notes``) decides about any other row that cannot be read.
    """
    check_policies(on_empty or "error", on_error, source)
    if not Path(source).exists() and str(source) in REGISTRY:
        return load_named(str(source), limit, on_empty, on_error)
    column_mapping = ColumnMapping.parse(mapping, label_values) if mapping else None
    return load_feedback(source, format, column_mapping, limit, on_empty or "error", on_error)
