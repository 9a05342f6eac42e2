"""Feedback schema, readers/writers, splits by prompt, and the dataset registry."""

from rewardlab.data.dataset import FEEDBACK_TABLES, FeedbackDataset
from rewardlab.data.hh_rlhf import read_hh_rlhf
from rewardlab.data.load import load_feedback
from rewardlab.data.mapping import ColumnMapping, read_mapped
from rewardlab.data.parquet import read_parquet, write_parquet
from rewardlab.data.registry import REGISTRY, demo_path, load_named, shared_data_dir
from rewardlab.data.source import load_source
from rewardlab.data.trl import read_trl, trl_from_rows, write_trl
from rewardlab.data.types import (
    Comparison,
    Correction,
    Critique,
    Demonstration,
    Label,
    Message,
    Prompt,
    Ranking,
    Rating,
    Response,
    StepLabel,
)

__all__ = [
    "FEEDBACK_TABLES", "REGISTRY", "ColumnMapping", "Comparison", "Correction", "Critique", "Demonstration",
    "FeedbackDataset", "Label", "Message", "Prompt", "Ranking", "Rating", "Response", "StepLabel", "demo_path",
    "load_feedback", "load_named", "load_source", "read_hh_rlhf", "read_mapped", "read_parquet", "read_trl", "shared_data_dir",
    "trl_from_rows", "write_parquet", "write_trl",
]
