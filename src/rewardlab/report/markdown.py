"""Render a `Report` as Markdown, and write it with its figures (PNG) and its record (JSON) to a folder."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rewardlab.report.document import Block, Figure, Report, Table

DPI = 110
RECORD_FILE = "results.json"
FIGURE_DIR = "figures"


def table_lines(table: Table) -> list[str]:
    """A `Table` as Markdown lines: header, separator, one line per row (``|`` in cells escaped)."""
    def cells(row: Any) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

    return [cells(table.header), "|" + "---|" * len(table.header), *(cells(r) for r in table.rows)]


def _block_lines(block: Block, figures: Mapping[str, str]) -> list[str]:
    if isinstance(block, Table):
        return table_lines(block)
    if isinstance(block, Figure):
        if block.name not in figures:  # not drawn (e.g. rendering without writing files): leave it out
            return []
        return [f"### {block.caption}", "", f"![{block.caption}]({figures[block.name]})"]
    return [block]


def _setting_rows(settings: Mapping[str, Any], prefix: str = "") -> list[list[str]]:
    """Nested settings flattened to ``outer.inner`` keys; lists as comma-separated values."""
    rows = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += _setting_rows(value, name + ".")
        elif isinstance(value, list | tuple):
            rows.append([name, ", ".join(str(v) for v in value) or "—"])
        else:
            rows.append([name, "—" if value is None else str(value)])
    return rows


def render_markdown(report: Report, figures: Mapping[str, str] | None = None) -> str:
    """The report as Markdown; ``figures`` maps a figure's name to its path relative to the Markdown file
    (figures not in it are left out, so a report renders without drawing anything)."""
    figures = figures or {}
    lines = [f"# {report.title}"]
    for section in report.sections:
        blocks = [b for b in (_block_lines(block, figures) for block in section.blocks) if b]
        if not blocks and section.title:
            continue  # a heading over nothing (e.g. figures that were not drawn) says nothing
        if section.title:
            lines += ["", f"## {section.title}"]
        for block in blocks:
            lines += ["", *block]
    if report.settings:
        lines += ["", "## Settings", "", *table_lines(Table(["setting", "value"], _setting_rows(report.settings)))]
    return "\n".join(lines) + "\n"


def draw_figures(report: Report, fig_dir: Path) -> dict[str, str]:
    """Draws every figure to ``fig_dir/<name>.png``; returns name -> path relative to fig_dir's parent."""
    figures = list(report.figures())
    if not figures:
        return {}
    import matplotlib

    matplotlib.use("Agg")  # headless: reports are written on servers and in CI
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for figure in figures:
        before = set(plt.get_fignums())
        try:
            fig = figure.draw(plt)
            fig.tight_layout()
            fig.savefig(fig_dir / f"{figure.name}.png", dpi=DPI, format="png")
        finally:  # a long-lived process writing many reports must not accumulate open figures
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
        paths[figure.name] = f"{fig_dir.name}/{figure.name}.png"
    return paths


def write_report(report: Report, out_dir: str | Path, record: Mapping[str, Any] | None = None) -> Path:
    """Writes ``out_dir/<report.filename>``, its figures under ``out_dir/figures/`` and, given one, the record
    as ``out_dir/results.json``; returns the Markdown file's path.

    The record is saved beside the report so every number in it can be traced back to (and re-rendered from) the data.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if record is not None:
        # json's default allow_nan writes NaN/Infinity: not strict JSON, but Python reads it back losslessly
        (out / RECORD_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    path = out / report.filename
    path.write_text(render_markdown(report, draw_figures(report, out / FIGURE_DIR)), encoding="utf-8")
    return path
