"""What a report is made of: a title, sections of paragraphs, tables and figures, and the settings behind it.

The pieces carry no study's vocabulary, so the one renderer (`rewardlab.report.markdown`) serves every
study and, later, the reward-model card. Cells are text already formatted (see `rewardlab.report.format`):
the builder knows which numbers are estimates, differences or counts; the renderer only lays them out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Table:
    """A Markdown table; ``rows`` hold formatted cells (a ``|`` inside a cell is escaped on rendering)."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Figure:
    """A figure saved as ``<figures>/<name>.png``; ``draw`` gets ``matplotlib.pyplot`` and returns the figure.

    Drawing is deferred to the renderer so building a report stays cheap (and testable) without matplotlib,
    and so one place decides the backend, the resolution and when figures are closed.
    """

    name: str
    caption: str
    draw: Callable[[Any], Any]


#: a section's content, in order: a Markdown paragraph (may hold several lines, e.g. a list), a table or a figure
Block = str | Table | Figure


@dataclass
class Section:
    """A ``## title`` and its blocks; a section without a title continues the one before it."""

    title: str | None
    blocks: Sequence[Block] = field(default_factory=list)


@dataclass
class Report:
    """A whole report. ``settings`` (the run's configuration) is rendered last, so a reader can rerun it."""

    title: str
    sections: list[Section]
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: the Markdown file's name in the output folder (studies keep the names their docs link to)
    filename: str = "report.md"

    def figures(self) -> Iterator[Figure]:
        for section in self.sections:
            yield from (block for block in section.blocks if isinstance(block, Figure))
