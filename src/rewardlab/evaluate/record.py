"""The JSON record of a run and the results table: what was run on what, and what came out."""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

import rewardlab
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.embed.base import Encoder
from rewardlab.evaluate.bootstrap import Estimate
from rewardlab.evaluate.crossval import CrossValResult
from rewardlab.evaluate.length_controls import LENGTH_UNIT, LengthAudit, LengthControls


def new_run_dir(root: str | Path, name: str) -> Path:
    """``<root>/<timestamp>-<name>``, unique even for two runs in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{name}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def environment() -> dict[str, str]:
    """Versions of rewardlab, Python, numpy, torch and the platform: stored in each record to trace a result to its setup."""
    import numpy
    import torch

    return {"rewardlab": rewardlab.__version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "numpy": numpy.__version__, "torch": torch.__version__}


def crossval_record(
    result: CrossValResult, dataset: FeedbackDataset, encoder: Encoder, features: str, timings: dict[str, float]
) -> dict[str, Any]:
    """The JSON-ready record of a cross-validation run: data, encoder, protocol, per-learner metrics with CIs, timings."""
    return {
        "kind": "crossval",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "data": {"name": dataset.name, "fingerprint": dataset.fingerprint(), "summary": dataset.summary(),
                 "notes": dataset.notes, "duplicate_prompt_groups": len(dataset.duplicate_prompts())},
        "encoder": {"spec": encoder.spec, "fingerprint": encoder.fingerprint()},
        "features": features,
        "protocol": {"k_folds": result.k, "split": "by prompt (duplicates grouped)", "seed": result.seed,
                     "ci": "95% percentile, cluster bootstrap over prompts",
                     "augment": result.augment},
        "embedding": {"texts": result.embed_stats.texts, "unique": result.embed_stats.unique,
                      "cache_hits": result.embed_stats.hits, "cache_misses": result.embed_stats.misses,
                      "seconds": round(result.embed_stats.seconds, 3)},
        "learners": {
            spec.name: {
                "kind": spec.kind,
                "ensemble": spec.ensemble,
                "params": spec.params,
                "metrics": {m: e.as_dict() for m, e in result.metrics[spec.name].items()},
                "fold_accuracy": result.fold_accuracy[spec.name],
                "accuracy_minus_reference": (
                    result.vs_reference[spec.name].as_dict() if spec.name in result.vs_reference else None
                ),
                "fit_seconds_all_folds": round(result.fit_seconds[spec.name], 3),
                "length": result.length_audit[spec.name].as_dict() if spec.name in result.length_audit else None,
            }
            for spec in result.learners
        },
        "reference_learner": result.reference,
        "length_controls": result.length.as_dict() if result.length is not None else None,
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        "environment": environment(),
    }


def holdout_record(model_dir: str | Path, model_config: dict[str, Any], dataset: FeedbackDataset,
                   metrics: dict[str, Estimate], seed: int, seconds: float, length: LengthControls | None = None,
                   length_audit: LengthAudit | None = None) -> dict[str, Any]:
    """The record of one saved model scored on held-out data, with its length controls when given."""
    return {
        "kind": "holdout", "model": str(model_dir), "model_config": model_config,
        "data": {"name": dataset.name, "fingerprint": dataset.fingerprint(), "summary": dataset.summary()},
        "metrics": {k: v.as_dict() for k, v in metrics.items()}, "seed": seed,
        "length_controls": length.as_dict() if length is not None else None,
        "length": length_audit.as_dict() if length_audit is not None else None,
        "timings_seconds": {"total": round(seconds, 3)}, "environment": environment(),
    }


def write_table_text(table: Table | Sequence[Table], path: str | Path) -> Path:
    """The table (or tables, one after the other) as plain text, as wide as its content: saved text is never cut
    to a terminal's width."""
    from rich.console import Console

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        console = Console(file=handle, width=10_000, color_system=None)
        for one in [table] if isinstance(table, Table) else table:
            console.print(one, crop=False)
    text = "\n".join(line.rstrip() for line in path.read_text(encoding="utf-8").splitlines())
    path.write_text(text + "\n", encoding="utf-8")
    return path


def write_json(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as indented JSON, creating parent folders; returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return path


def _pm(e: Estimate) -> str:
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def _signed(e: Estimate) -> str:
    return f"{e.value:+.3f} [{e.low:+.3f}, {e.high:+.3f}]"


def crossval_table(result: CrossValResult, title: str) -> Table:
    """The console table of a cross-validation run: one row per learner, metrics with 95% CIs, gap to the reference, fit time."""
    table = Table(title=title, title_justify="left")
    for column in ("learner", "accuracy [95% CI]", f"Δ vs {result.reference}", "ECE", "Brier", "NLL", "n pairs",
                   "fit s (all folds)"):
        table.add_column(column, justify="left" if column == "learner" else "right", overflow="fold")
    for spec in result.learners:
        m = result.metrics[spec.name]
        diff = result.vs_reference.get(spec.name)
        table.add_row(
            spec.name,
            _pm(m["accuracy"]),
            _signed(diff) if diff else "—",
            _pm(m["ece"]),
            _pm(m["brier"]),
            _pm(m["nll"]),
            str(m["accuracy"].n),
            f"{result.fit_seconds[spec.name]:.1f}",
        )
    return table


def metrics_table(metrics: dict[str, Estimate], title: str) -> Table:
    """A console table of named estimates: value, 95% CI and n per metric."""
    table = Table(title=title, title_justify="left")
    for column in ("metric", "value", "95% CI", "n"):
        table.add_column(column)
    for name, e in metrics.items():
        table.add_row(name, f"{e.value:.3f}", f"[{e.low:.3f}, {e.high:.3f}]", str(e.n))
    return table


def crossval_length_table(result: CrossValResult, title: str = "length controls (same held-out pairs)"
                          ) -> Table | None:
    """`length_table` for every learner of a cross-validation; None when the data gave no length controls."""
    if result.length is None:
        return None
    accuracy = {spec.name: result.metrics[spec.name]["accuracy"] for spec in result.learners}
    return length_table(result.length, accuracy, result.length_audit, title)


def length_table(controls: LengthControls, accuracy: dict[str, Estimate], audits: dict[str, LengthAudit],
                 title: str) -> Table:
    """The length controls under a results table: each model beside rules that see only length, on the same pairs."""
    title = (f"{title}: better is longer in {controls.longer_wins} pairs, shorter in {controls.shorter_wins}, "
             f"equal length in {controls.equal_length} (left out of both); length in {LENGTH_UNIT}")
    table = Table(title=title, title_justify="left", caption=f"length-only: {controls.length_only_fit}",
                  caption_justify="left")
    for column in ("model", "accuracy [95% CI]", "Δ vs length-only", "better is longer", "better is shorter",
                   "length-balanced", f"ρ(reward, {LENGTH_UNIT})"):
        table.add_column(column, justify="left" if column == "model" else "right", overflow="fold")
    for name, audit in audits.items():
        table.add_row(name, _pm(accuracy[name]), _signed(audit.minus_length_only), _pm(audit.longer_wins),
                      _pm(audit.shorter_wins), _pm(audit.balanced), f"{audit.spearman:+.3f}")
    for name, e in (("prefer longer", controls.prefer_longer), ("prefer shorter", controls.prefer_shorter),
                    ("length-only", controls.length_only)):
        table.add_row(name, _pm(e), "—", "—", "—", "—", "—")
    return table
