"""What every `rewardlab` command prints through: consoles, one-line user errors, progress bars with rate and ETA."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
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
from rich.table import Table
from rich.text import Text

from rewardlab.errors import RewardlabError

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def warn(message: object) -> None:
    """One ``warning:`` line (soft-wrapped: the terminal folds it, a pipe or a grep gets it whole)."""
    console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """Library warnings (e.g. rows a reader skipped) as one readable line, not Python's source-line format."""
    warn(message)


warnings.showwarning = _show_warning


def _typer_display() -> None:
    """Two touches to typer's rich help and errors, so the whole CLI reads one way:

    - a usage error's panel is titled "error", as every other message is prefixed ("error:", "warning:", "note:");
    - a flag shows no value type (typer ≥ 0.2x prints ``--quiet -q <bool>``, but a flag takes no value).
    """
    from typer import rich_utils
    from typer.core import TyperOption

    rich_utils.ERRORS_PANEL_TITLE = "error"
    shown = TyperOption.display_type_rich
    if getattr(shown, "hides_flag_types", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    display_type_rich.hides_flag_types = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_typer_display()


@contextmanager
def user_errors() -> Iterator[None]:
    """Report our own errors as one clean line (exit code 2) instead of a traceback."""
    try:
        yield
    except RewardlabError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one greppable line
        raise typer.Exit(2) from None


def print_table(table: Table, to: Console | None = None) -> None:
    """Print a table whole: as a table when it fits the terminal with its cells wrapped at spaces at most, else
    stacked (one block per row, one line per column), so no cell is ever cut to "…" and no number or learner name
    is broken mid-word."""
    to = out if to is None else to
    if fit_columns(table, to.width, to):
        to.print(table)
    else:
        to.print(stacked(table), soft_wrap=True)


def fit_columns(table: Table, width: int, to: Console) -> bool:
    """Fix ``table``'s column widths so it fits ``width`` with every cell wrapped at spaces only (each column at
    least as wide as its longest word, spare room shared by how much each column wants); False when even that does
    not fit. Rich's own shrinking may cut a column below its longest word (a name folded or cut to "…")."""
    options = to.options.update_width(10_000)
    minima, maxima = [], []
    for column in table.columns:
        sizes = [Measurement.get(to, options, cell) for cell in (column.header, *column.cells)]
        minima.append(max(size.minimum for size in sizes))
        maxima.append(max(size.maximum for size in sizes))
    natural = Measurement.get(to, options, table).maximum
    room = width - (natural - sum(maxima))  # less borders and padding
    if natural <= width:
        return True
    if sum(minima) > room:
        return False
    spare, wants = room - sum(minima), [high - low for low, high in zip(minima, maxima)]
    first = min(wants[0], spare)  # the first column names the row (a learner, a dataset): keep it on one line
    spare, wants[0], minima[0] = spare - first, 0, minima[0] + first
    for column, low, want in zip(table.columns, minima, wants):
        column.width = low + (spare * want // sum(wants) if sum(wants) else 0)
    return True


def stacked(table: Table) -> Group:
    """The rows of ``table`` as blocks: the first column's cell as a heading, then ``column: cell`` per column."""
    columns = table.columns
    cells = [list(column.cells) for column in columns]
    blocks: list[RenderableType] = [] if table.title is None else [Text.from_markup(str(table.title), style="italic")]
    for i in range(table.row_count):
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        for column, column_cells in zip(columns[1:], cells[1:]):
            grid.add_row(str(column.header), column_cells[i])
        blocks.extend([Text(""), Text.assemble((str(cells[0][i]) if columns else "", "bold")), grid])
    return Group(*blocks)


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


@contextmanager
def reading_progress(quiet: bool, description: str = "reading") -> Iterator[None]:
    """A bar for every record file read inside this block (a 200k-row JSONL takes a while to parse): kB of the file
    (compressed kB of a .gz), rows of a Parquet file. Wrap a command's data loading in it."""
    from rewardlab.data.streaming import read_progress

    with progress_bar(description, quiet) as bar, read_progress(None if quiet else bar):
        yield
