"""Render a `Report` as Markdown, and write it with its figures (PNG), its record (JSON) and, when asked, one
self-contained HTML page (`rewardlab.report.html`) to a folder."""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardlab.errors import InvalidValueError
from rewardlab.report.document import Block, Callout, Figure, Report, Table
from rewardlab.report.format import setting_rows
from rewardlab.report.heatmap import TokenHeatmap

DPI = 110
RECORD_FILE = "results.json"
FIGURE_DIR = "figures"
FIGURE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def table_lines(table: Table) -> list[str]:
    """A `Table` as Markdown lines: header, separator, one line per row (``|`` in cells escaped)."""
    def cells(row: Any) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

    lines = [cells(table.header), "|" + "---|" * len(table.header), *(cells(r) for r in table.rows)]
    # pandoc reads "Table: ..." next to a table as its caption; elsewhere it is a plain line saying what follows
    return [f"Table: {table.caption}", "", *lines] if table.caption else lines


def callout_lines(callout: Callout) -> list[str]:
    """A `Callout` as a Markdown quote that starts with its label in bold: ``> **Warning:** text``."""
    first, *rest = f"**{callout.label}:** {callout.text}".split("\n")
    return [f"> {first}", *(f"> {line}" if line.strip() else ">" for line in rest)]


def _block_lines(block: Block, figures: Mapping[str, str]) -> list[str]:
    if isinstance(block, Table):
        return table_lines(block)
    if isinstance(block, Callout):
        return callout_lines(block)
    if isinstance(block, TokenHeatmap):
        return block.markdown_lines()
    if isinstance(block, Figure):
        if block.name not in figures:  # not drawn (e.g. rendering without writing files): leave it out
            return []
        return [f"### {block.caption}", "", f"![{block.caption}]({figures[block.name]})"]
    return [block]


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
        lines += ["", "## Settings", "", *table_lines(Table(["setting", "value"], setting_rows(report.settings)))]
    return "\n".join(lines) + "\n"


def check_figure_names(figures: Sequence[Figure]) -> None:
    """Each figure's name is a plain file name, used once: two figures of one name would silently show the same
    picture, and a name with a path in it would write outside the figures folder."""
    seen: set[str] = set()
    for figure in figures:
        if not FIGURE_NAME.fullmatch(figure.name):
            raise InvalidValueError(f"figure name {figure.name!r} (caption {figure.caption!r}) is not a plain file name: "
                                    "use letters, digits, '_', '-' and '.' and no leading '.'")
        if figure.name in seen:
            raise InvalidValueError(f"two figures are named {figure.name!r}: each figure needs its own name")
        seen.add(figure.name)


def figure_pngs(report: Report) -> dict[str, bytes]:
    """Draws every figure once, in memory; returns name -> PNG bytes (for files beside the Markdown and for
    images inlined in the HTML alike)."""
    figures = list(report.figures())
    check_figure_names(figures)
    if not figures:
        return {}
    import matplotlib

    matplotlib.use("Agg")  # headless: reports are written on servers and in CI
    import matplotlib.pyplot as plt

    pngs = {}
    for figure in figures:
        before = set(plt.get_fignums())
        buffer = io.BytesIO()
        try:
            fig = figure.draw(plt)
            fig.tight_layout()
            fig.savefig(buffer, dpi=DPI, format="png")
        finally:  # a long-lived process writing many reports must not accumulate open figures
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
        pngs[figure.name] = buffer.getvalue()
    return pngs


def write_aside(path: Path, data: bytes) -> None:
    """Writes ``data`` under a temporary sibling name, syncs it and renames it to ``path``, so an interrupted write
    leaves the old file (or none), never half a file."""
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(aside, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def save_figures(pngs: Mapping[str, bytes], fig_dir: Path) -> dict[str, str]:
    """Writes each PNG to ``fig_dir/<name>.png``; returns name -> path relative to fig_dir's parent."""
    if pngs:
        fig_dir.mkdir(parents=True, exist_ok=True)
    for name, png in pngs.items():
        write_aside(fig_dir / f"{name}.png", png)
    return {name: f"{fig_dir.name}/{name}.png" for name in pngs}


def draw_figures(report: Report, fig_dir: Path) -> dict[str, str]:
    """Draws every figure to ``fig_dir/<name>.png``; returns name -> path relative to fig_dir's parent."""
    return save_figures(figure_pngs(report), fig_dir)


def write_report(report: Report, out_dir: str | Path, record: Mapping[str, Any] | None = None, *, html: bool = False,
                 html_name: str = "index.html") -> Path:
    """Writes ``out_dir/<report.filename>``, its figures under ``out_dir/figures/``, given one, the record as
    ``out_dir/results.json`` and, with ``html``, the whole report as one self-contained page ``out_dir/<html_name>``
    (figures inlined); returns the Markdown file's path.

    The record is saved beside the report so every number in it can be traced back to (and re-rendered from) the data.
    Figures are drawn and pages rendered before anything is written (a figure that fails leaves no partial report),
    and each file is written aside and renamed into place.
    """
    if html and (Path(html_name).name != html_name or html_name in (report.filename, RECORD_FILE)):
        raise InvalidValueError(f"html_name {html_name!r} must be a plain file name other than {report.filename!r} "
                                f"and {RECORD_FILE!r}")
    pngs = figure_pngs(report)
    markdown = render_markdown(report, {name: f"{FIGURE_DIR}/{name}.png" for name in pngs})
    page = None
    if html:
        from rewardlab.report.html import render_html

        page = render_html(report, pngs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if record is not None:
        # json's default allow_nan writes NaN/Infinity: not strict JSON, but Python reads it back losslessly
        write_aside(out / RECORD_FILE, _utf8(json.dumps(record, indent=2, ensure_ascii=False) + "\n"))
    save_figures(pngs, out / FIGURE_DIR)
    path = out / report.filename
    write_aside(path, _utf8(markdown))
    if page is not None:
        write_aside(out / html_name, _utf8(page))
    return path


def _utf8(text: str) -> bytes:
    # a lone surrogate from user data (e.g. a JSON "\\udc80") is written as that escape instead of failing the
    # whole report; in JSON the escape even reads back as the same string
    return text.encode("utf-8", "backslashreplace")
