"""The quickstart run: bundled HH-RLHF harmless → k-fold CV by prompt of five learners → a record and a final model.

It is a library function so that the command and a Python user get the same run, numbers and files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.registry import load_named
from rewardlab.embed.base import DEFAULT_ENCODER, make_encoder
from rewardlab.embed.devices import DEFAULT_DEVICE
from rewardlab.evaluate.crossval import CrossValResult, LearnerSpec, cross_validate
from rewardlab.evaluate.fold_workers import resolve_workers, start_worker_server
from rewardlab.evaluate.record import (
    crossval_length_table,
    crossval_record,
    crossval_table,
    new_run_dir,
    write_json,
    write_table_text,
)
from rewardlab.rewards.default_recipe import DEFAULT_FEATURES, DEFAULT_HEAD

QUICKSTART_DATA = "hh-harmless-demo"
#: the default recipe's head first (every Δ column is against it), then the plain heads it is measured against
QUICKSTART_LEARNERS = (
    LearnerSpec("BT-MLP debiased", DEFAULT_HEAD),
    LearnerSpec("BT-MLP", "bt-mlp"),
    LearnerSpec("CLF-MLP", "clf-mlp"),
    LearnerSpec("CLF-LightGBM", "clf-lgbm"),
    LearnerSpec("BT-MLP ensemble (5)", "bt-mlp", ensemble=5),
)


@dataclass
class QuickstartConfig:
    encoder: str = DEFAULT_ENCODER
    folds: int = 5
    seed: int = 0
    runs: Path = Path("runs")
    limit: int | None = None
    cache_dir: Path | None = None
    #: processes for the fold × learner fits (0: one per core; 1: in this process). The numbers do not change.
    workers: int = 0
    #: a Ray address ('local', 'auto', HOST:PORT): embed the missing texts there, and run the fits as Ray tasks
    ray: str | None = None
    #: where the encoder runs and the torch heads fit: auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or
    #: cuda:N (`rewardlab.embed.devices`); LightGBM heads, and fits run as Ray tasks, stay on the CPU
    device: str = DEFAULT_DEVICE


@dataclass
class QuickstartResult:
    dataset: FeedbackDataset
    crossval: CrossValResult
    table: Table
    length_table: Table | None
    record: dict[str, Any]
    run_dir: Path
    model_dir: Path
    timings: dict[str, float]


def run_quickstart(
    config: QuickstartConfig,
    on_dataset: Callable[[FeedbackDataset], None] | None = None,
    on_embed_progress: Callable[[int, int], None] | None = None,
    on_fit_progress: Callable[[int, int], None] | None = None,
) -> QuickstartResult:
    """Cross-validate the learners, write ``record.json``, ``table.txt`` (results, then length controls) and a model
    of the default head (`DEFAULT_HEAD`) trained on all the data."""
    started = time.perf_counter()
    from rewardlab.embed.devices import parse_device_spec, resolve_device

    if parse_device_spec(config.device)[0] == "cuda":  # a GPU that is not here: one clear error before anything starts
        resolve_device(config.device)
    if config.ray is None:  # the fold workers' imports overlap this process's own (see `start_worker_server`)
        start_worker_server(resolve_workers(config.workers, config.folds * len(QUICKSTART_LEARNERS)))
    from rewardlab.rewards.model import RewardModel  # torch loads only when the run starts
    from rewardlab.rewards.torch_training import fit_device

    device = fit_device(config.device)
    dataset = load_named(QUICKSTART_DATA, config.limit)
    if on_dataset is not None:
        on_dataset(dataset)
    encoder = make_encoder(config.encoder, str(device))
    if config.ray is not None:  # the texts missing from the cache go through the cluster first
        from rewardlab.embed.ray_embed import embed_texts_ray
        from rewardlab.rewards.features import dataset_texts

        embed_texts_ray(dataset_texts(dataset, DEFAULT_FEATURES, encoder), encoder, address=config.ray,
                        cache_dir=config.cache_dir, on_progress=on_embed_progress)
    final: list[RewardModel] = []
    final_seconds = 0.0

    def fit_final_model() -> None:
        nonlocal final_seconds
        final_started = time.perf_counter()
        final.append(RewardModel.create(DEFAULT_HEAD, encoder=encoder, features=DEFAULT_FEATURES, seed=config.seed,
                                        cache_dir=config.cache_dir).fit(dataset, device=device))
        final_seconds = time.perf_counter() - final_started

    # the final model is fitted while the fold workers fit (this process would only wait for them)
    result = cross_validate(dataset, list(QUICKSTART_LEARNERS), encoder, features=DEFAULT_FEATURES, k=config.folds,
                            seed=config.seed, cache_dir=config.cache_dir, workers=config.workers, ray=config.ray,
                            device=device, on_embed_progress=on_embed_progress,
                            on_fit_progress=on_fit_progress, alongside=fit_final_model)
    run_dir = new_run_dir(config.runs, "quickstart")
    model_dir = final[0].save(run_dir / f"model-{DEFAULT_HEAD}")
    timings = {"embedding": result.embed_stats.seconds, "final_model": final_seconds,
               "total": time.perf_counter() - started}
    record = crossval_record(result, dataset, encoder, DEFAULT_FEATURES, timings)
    write_json(run_dir / "record.json", record)
    table = crossval_table(result, f"HH-RLHF harmless, {config.folds}-fold CV by prompt, held-out pairs, "
                                   f"encoder {config.encoder}")
    lengths = crossval_length_table(result)
    write_table_text([table] if lengths is None else [table, lengths], run_dir / "table.txt")
    return QuickstartResult(dataset, result, table, lengths, record, run_dir, model_dir, timings)
