"""`rewardlab train DATA --head multi-objective`: a multi-objective reward model on the objectives DATA's ratings name.

Its labels are ratings whose ``meta.objective`` names an objective (`rewardlab.rewards.objective_labels`), which the
ordinary trainer does not read; this hands them to the head with the comparisons. Ensembles, augmentation and
annotator weights belong to the ordinary trainer and are refused here, not silently dropped. Both stages of the fit run
on ``--device`` as every torch head's does (`rewardlab.rewards.head_device`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardlab.cli.console import out, progress_bars
from rewardlab.errors import ModelError

if TYPE_CHECKING:
    import torch


def train_multi_objective(dataset: Any, out_dir: Path, encoder: Any, features: str, seed: int,
                          cache_dir: Path | None, params: dict[str, Any], quiet: bool, *,
                          device: torch.device | str | None = None, **extras: Any) -> None:
    """Fit and save a multi-objective model on ``dataset``, its head on ``device`` (a ``torch.device`` or a spec;
    None: the CPU)."""
    from rewardlab.rewards.objective_labels import train_on_dataset

    given = [name for name, value in extras.items() if value]
    if given:
        raise ModelError(f"--{given[0].replace('_', '-')} does not apply to a multi-objective model")
    started = time.perf_counter()
    with progress_bars(quiet) as bars:
        model = train_on_dataset(dataset, encoder, features, seed, cache_dir, on_progress=bars.bar("embedding"),
                                 device=device, **params)
    model.save(out_dir)
    head: Any = model.head
    labels = ", ".join(f"{name} {n}" for name, n in head.fit_log["objective_labels"].items())
    out.print(f"trained multi-objective ({head.scalarization} weights) on objective labels ({labels}) and "
              f"{len(dataset.comparisons)} comparisons in {time.perf_counter() - started:.1f}s → {out_dir}",
              highlight=False)
