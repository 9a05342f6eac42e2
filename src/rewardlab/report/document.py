"""What a report is made of: a title, sections of paragraphs, tables, figures and callouts, and its settings.

The pieces carry no study's vocabulary, so the one renderer (`rewardlab.report.markdown`, and
`rewardlab.report.html` for the self-contained page) serves every study and the reward-model card. Cells are text
already formatted (see `rewardlab.report.format`): the builder knows which numbers are estimates, differences or
counts; the renderer only lays them out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rewardlab.errors import InvalidValueError
from rewardlab.report.heatmap import TokenHeatmap


@dataclass(frozen=True)
class Table:
    """A Markdown table; ``rows`` hold formatted cells (a ``|`` inside a cell is escaped on rendering).

    ``caption`` says what the table shows when its section's prose does not (a line above it in Markdown,
    ``<caption>`` in HTML).
    """

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str | None = None


@dataclass(frozen=True)
class Figure:
    """A figure saved as ``<figures>/<name>.png``; ``draw`` gets ``matplotlib.pyplot`` and returns the figure.

    Drawing is deferred to the renderer so building a report stays cheap (and testable) without matplotlib,
    and so one place decides the backend, the resolution and when figures are closed.
    """

    name: str
    caption: str
    draw: Callable[[Any], Any]


CalloutKind = Literal["warning", "note"]
CALLOUT_LABELS: Mapping[str, str] = {"warning": "Warning", "note": "Note"}


@dataclass(frozen=True)
class Callout:
    """Something a reader must not miss (e.g. "the held-out data is the training data"), set apart from the prose:
    ``> **Warning:** text`` in Markdown, a framed box in HTML. ``text`` is Markdown like a paragraph."""

    text: str
    kind: CalloutKind = "warning"

    def __post_init__(self) -> None:
        if self.kind not in CALLOUT_LABELS:
            raise InvalidValueError(f"Callout kind must be one of {sorted(CALLOUT_LABELS)}, got {self.kind!r}")

    @property
    def label(self) -> str:
        return CALLOUT_LABELS[self.kind]


#: a section's content, in order: a Markdown paragraph (may hold several lines, e.g. a list), a table, a figure
#: or a callout, or a token heat-map
Block = str | Table | Figure | Callout | TokenHeatmap


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
