"""What rewardlab knows by name: `encoders`, `datasets`, `heads`."""

from __future__ import annotations

from rich.table import Table

from rewardlab.cli.console import print_table
from rewardlab.embed.base import DEFAULT_ENCODER


def encoders() -> None:
    """Encoder specs accepted by every --encoder option."""
    from rewardlab.embed.base import ENCODER_SPECS

    table = Table(title=f"encoder specs (default: {DEFAULT_ENCODER})", title_justify="left")
    table.add_column("spec", overflow="fold")
    table.add_column("what it is", overflow="fold")
    for spec, description in ENCODER_SPECS.items():
        table.add_row(spec, description)
    print_table(table)


def datasets() -> None:
    """Datasets rewardlab knows by name, then every folder of the shared data and what it is to rewardlab."""
    from rewardlab.data.registry import REGISTRY, shared_data_dir, shared_folders

    root = shared_data_dir()
    table = Table(title=f"datasets (shared data dir: {root}; set REWARDLAB_DATA_DIR to move it)", title_justify="left")
    for column in ("name", "feedback", "available", "empty responses", "description"):
        table.add_column(column, overflow="fold")
    for entry in REGISTRY.values():
        table.add_row(entry.name, entry.feedback, "yes" if entry.available() else "no",
                      "skipped, counted" if entry.on_empty == "skip" else "an error", entry.description)
    print_table(table)
    folders = Table(title="every folder of the shared data", title_justify="left")
    for column in ("folder", "present", "load by name", "what else it is"):
        folders.add_column(column, overflow="fold")
    for folder in shared_folders(root):
        folders.add_row(folder.folder, "yes" if (root / folder.folder).is_dir() else "no",
                        ", ".join(folder.datasets) or "—", folder.other or "")
    print_table(folders)


def heads() -> None:
    """Reward head kinds and the feedback each learns from."""
    from rewardlab.data.dataset import PAIRWISE_FEEDBACK
    from rewardlab.rewards.heads import HEAD_KINDS

    table = Table(title="head kinds (any can be an ensemble: --ensemble N)", title_justify="left")
    for column in ("kind", "learns from", "parameters"):
        table.add_column(column, overflow="fold")
    for kind, (_, fixed, feedback) in HEAD_KINDS.items():
        learns = ", ".join(PAIRWISE_FEEDBACK) if feedback in PAIRWISE_FEEDBACK else feedback  # rankings as their pairs
        table.add_row(kind, learns, ", ".join(f"{k}={v}" for k, v in fixed.items()))
    print_table(table)
