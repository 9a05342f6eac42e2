"""`rewardlab train` on fine-grained rows: span rows go to the span trainer, step labels to the step trainer.

The issue's acceptance asks that `train` learn from span and step rows, as `spans train` and `steps train` do. A
span JSONL file (`rewardlab.data.spans`) is recognised by its fields before any feedback reader sees it. A
feedback dataset whose only supervision for the asked head is step labels (no comparisons or rankings for the
default pairwise head) trains a process reward model. Anything else is left to the ordinary trainer. ``--device``
reaches both as it does the ordinary trainer: the encoder runs there and the torch heads fit there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.cli.console import out
from rewardlab.errors import ModelError
from rewardlab.rewards.default_recipe import DEFAULT_HEAD
from rewardlab.rewards.span_config import SpanModelConfig
from rewardlab.rewards.step_config import StepModelConfig


def is_span_source(data: str) -> bool:
    """Whether DATA is a span JSONL file."""
    from rewardlab.data.spans import is_span_file

    return Path(data).is_file() and is_span_file(data)


def wants_steps(dataset: Any, head: str) -> bool:
    """Step labels and nothing the default head could learn from, with the default head asked for."""
    return bool(dataset.step_labels) and head == DEFAULT_HEAD and not dataset.comparisons and not dataset.rankings


def _plain_only(extras: dict[str, Any], what: str) -> None:
    given = [name for name, value in extras.items() if value]
    if given:
        raise ModelError(f"--{given[0].replace('_', '-')} applies to response-level reward models, not to {what}")


def train_span_source(data: str, out_dir: Path, head: str, encoder: str, seed: int, cache_dir: Path | None,
                      quiet: bool, *, device: str | None = None, **extras: Any) -> None:
    """A span reward model on the span rows of DATA, with `spans train`'s defaults (its head unless a label head
    is asked for), on ``device`` (a spec; None: the CPU)."""
    from rewardlab.cli.spans import train_spans
    from rewardlab.data.spans import read_span_jsonl

    _plain_only(extras, "span rows")
    out.print("span rows: training a span reward model (as `rewardlab spans train`)", highlight=False)
    train_spans(read_span_jsonl(data), out_dir, SpanModelConfig.kind if head == DEFAULT_HEAD else head, encoder,
                SpanModelConfig.context, SpanModelConfig.aggregate, None, seed, cache_dir, quiet, device)


def train_steps(dataset: Any, out_dir: Path, encoder: str, features: str, seed: int, cache_dir: Path | None,
                quiet: bool, *, device: str | None = None, **extras: Any) -> None:
    """A process reward model on the step labels of ``dataset``, with `steps train`'s defaults, on ``device`` (a
    spec; None: the CPU)."""
    from rewardlab.cli.steps import train_step_model

    _plain_only(extras, "step labels")
    kind = StepModelConfig.kind
    out.print(f"step labels only: training a process reward model ({kind}, as `rewardlab steps train`)",
              highlight=False)
    train_step_model(dataset, out_dir, kind, encoder, features, StepModelConfig.split, seed, cache_dir, quiet, device)
