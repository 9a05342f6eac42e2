"""What every `rewardlab` command prints through: consoles, one-line user errors, progress bars with rate and ETA."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from rewardlab.errors import RewardlabError

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Library warnings (e.g. rows a reader skipped) as one readable line, not Python's source-line format."""
    console.print(f"[yellow]warning:[/] {message}", highlight=False)


warnings.showwarning = _show_warning

@contextmanager
def user_errors() -> Iterator[None]:
    """Report our own errors as one clean line (exit code 2) instead of a traceback."""
    try:
        yield
    except RewardlabError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one greppable line
        raise typer.Exit(2) from None


class RateColumn(ProgressColumn):
    """Items per second since the bar started (seconds per item when slower than one a second)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0 or not task.completed:
            return Text("")
        rate = task.completed / elapsed
        return Text(f"{rate:.1f}/s" if rate >= 1 else f"{1 / rate:.1f}s/it", style="progress.data.speed")


class Bars:
    """Rich progress bars on stderr, each driven by an ``update(done, total)`` callback: count, rate, ETA."""

    def __init__(self, quiet: bool) -> None:
        self.progress = None if quiet else Progress(
            TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)

    def bar(self, description: str) -> Callable[[int, int], None]:
        if self.progress is None:
            return lambda done, total: None
        progress, task = self.progress, self.progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return update


@contextmanager
def progress_bars(quiet: bool) -> Iterator[Bars]:
    """Several bars in one live display (stderr), or none with ``quiet``."""
    bars = Bars(quiet)
    if bars.progress is None:
        yield bars
        return
    with bars.progress:
        yield bars


@contextmanager
def progress_bar(description: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A single progress bar."""
    with progress_bars(quiet) as bars:
        yield bars.bar(description)
