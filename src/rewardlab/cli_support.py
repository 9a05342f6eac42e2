"""What every `rewardlab` sub-command shares: consoles, clean user errors, progress bars, option types."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rewardlab.errors import RewardlabError

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Library warnings (e.g. rows a reader skipped) as one readable line, not Python's source-line format."""
    console.print(f"[yellow]warning:[/] {message}", highlight=False)


warnings.showwarning = _show_warning

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
EncoderOpt = Annotated[str, typer.Option(help="Encoder spec (see `rewardlab encoders`), e.g. minilm:int8, minilm, st:PATH.")]
CacheDir = Annotated[Path | None, typer.Option(help="Embedding cache directory (default: user cache dir).")]


@contextmanager
def user_errors() -> Iterator[None]:
    """Report our own errors as one clean line (exit code 2) instead of a traceback."""
    try:
        yield
    except RewardlabError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one greppable line
        raise typer.Exit(2) from None


class Bars:
    """Rich progress bars on stderr, each driven by an ``update(done, total)`` callback."""

    def __init__(self, quiet: bool) -> None:
        self.progress = None if quiet else Progress(
            TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console)

    def bar(self, description: str) -> Callable[[int, int], None]:
        if self.progress is None:
            return lambda done, total: None
        progress, task = self.progress, self.progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return update


@contextmanager
def progress_bars(quiet: bool) -> Iterator[Bars]:
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
