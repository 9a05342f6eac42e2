"""Render a `Report` as one self-contained HTML page: styles inline, figures as data: URLs, no script, no link out.

A report shows user data (model responses, prompts) that may hold markup meant to run, so every text is
HTML-escaped first and only then given a small, fixed Markdown subset (`rewardlab.report.markup`); a
Content-Security-Policy in the page forbids scripts and any load but inline images and styles, so even markup that
slipped through could neither run nor call out. The page works offline, from a file, and prints cleanly.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from html import escape

from rewardlab.report.document import Block, Callout, Figure, Report, Table
from rewardlab.report.format import MISSING, setting_rows
from rewardlab.report.heatmap import TokenHeatmap
from rewardlab.report.markup import blocks_html, inline_html

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

#: ids the page itself uses; a section whose title slugs to one of these gets a numbered id instead
RESERVED_IDS = ("contents", "settings")

#: a cell that reads as a number (optionally bold, with a unit, or with a CI in brackets) is right-aligned
_NUMBER = r"[-+−]?(?:\d[\d,_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s?%?|n/a|[-−]?∞"
_NUMERIC_CELL = re.compile(rf"(\*\*)?(?:{_NUMBER})(?:\s*[\[(]\s*(?:{_NUMBER})\s*,\s*(?:{_NUMBER})\s*[\])])?\1?")

#: a column whose cells are all this short stays on one line; one with a cell past LONG_CELL gets room to wrap in
SHORT_CELL, LONG_CELL = 24, 60

STYLE = """
:root { color-scheme: light; --ink: #1d232a; --muted: #5a6570; --line: #d5dbe1; --soft: #f4f6f8;
  --warn: #b45309; --warn-bg: #fff7e6; --note: #1d5fa8; --note-bg: #eef5fd; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem 1.25rem 3rem; color: var(--ink); background: #fff;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.8rem; line-height: 1.25; margin: 0 0 1rem; overflow-wrap: break-word; }
h2 { font-size: 1.35rem; margin: 2.25rem 0 .75rem; padding-bottom: .25rem; border-bottom: 1px solid var(--line); }
p, ul, ol, blockquote { margin: .6rem 0; }
blockquote { padding: .1rem 0 .1rem 1rem; border-left: 3px solid var(--line); color: var(--muted); }
code { font: .9em/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft);
  padding: .05em .3em; border-radius: 3px; }
a { color: #1d5fa8; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1rem;
  margin: 1rem 0 1.5rem; }
nav.toc h2 { font-size: 1rem; margin: 0; border: 0; padding: 0; }
nav.toc ol { margin: .3rem 0 0; padding-left: 1.4rem; }
.callout { border: 1px solid; border-left-width: 6px; border-radius: 6px; padding: .55rem .9rem; margin: 1rem 0; }
.callout > :first-child { margin-top: 0; } .callout > :last-child { margin-bottom: 0; }
.callout.warning { border-color: var(--warn); background: var(--warn-bg); }
.callout.note { border-color: var(--note); background: var(--note-bg); }
.callout-label { font-weight: 700; }
.callout.warning .callout-label { color: var(--warn); } .callout.note .callout-label { color: var(--note); }
.table-wrap { overflow-x: auto; margin: 1rem 0; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
caption { caption-side: top; text-align: left; padding: .5rem .75rem; font-weight: 600; color: var(--muted); }
th, td { padding: .35rem .75rem; border-top: 1px solid var(--line); vertical-align: top; text-align: left;
  white-space: pre-wrap; overflow-wrap: break-word; }
thead th { background: var(--soft); border-top: 0; font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfc; }
th.num, td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.short { white-space: nowrap; }
td.long { min-width: 16em; }
figure { margin: 1.25rem 0; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: .92rem; margin-top: .35rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav.toc { display: none; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; }
  .table-wrap { overflow: visible; border: 0; }
  table { font-size: 8.5pt; }  /* paper does not scroll: a wide table shrinks and wraps to the page instead */
  th.num, td.num, td.short { white-space: normal; } td.long { min-width: 0; }
  figure, .callout, tr { break-inside: avoid; }
  thead { display: table-header-group; }
  tbody tr:nth-child(even), thead th { background: none; }
  .callout { background: none; }
}
"""


class _Slugs:
    """Unique, readable ``id`` values for section anchors: the title lower-cased, runs of other characters as ``-``,
    a numeric suffix where one is taken."""

    def __init__(self, reserved: Sequence[str] = ()) -> None:
        self.taken = set(reserved)

    def __call__(self, title: str) -> str:
        base = re.sub(r"[^\w]+", "-", title.lower()).strip("-_") or "section"
        slug, n = base, 1
        while slug in self.taken:
            n += 1
            slug = f"{base}-{n}"
        self.taken.add(slug)
        return slug


def _cell_text(cell: object) -> str:
    # a "\|" a builder wrote for Markdown reads "|" through the subset's backslash escapes, as a Markdown table reads
    # it; a bare "\" before it (user text shown literally, "\\|") stays a backslash in both
    return str(cell)


def _is_numeric(text: str) -> bool:
    return bool(_NUMERIC_CELL.fullmatch(text.strip()))


def _column_classes(table: Table) -> list[str]:
    """A class per column: ``num`` (right-aligned) where every filled cell reads as a number ("—" aside), ``short``
    (kept on one line) where every cell is a few words, ``long`` (given room before it wraps) where one runs long."""
    classes = []
    for i in range(len(table.header)):
        cells = [_cell_text(row[i]).strip() for row in table.rows if i < len(row)]
        filled = [c for c in cells if c and c != MISSING]
        if filled and all(_is_numeric(c) for c in filled):
            classes.append("num")
        elif all(len(c) <= SHORT_CELL and "\n" not in c for c in cells):
            classes.append("short")
        else:
            classes.append("long" if any(len(c) > LONG_CELL for c in cells) else "")
    return classes


def table_html(table: Table) -> str:
    """A `Table` inside a horizontally scrolling box: header row, one row per row, numeric columns right-aligned."""
    classes = _column_classes(table)

    def cls(i: int) -> str:
        return f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""

    caption = f"<caption>{inline_html(table.caption)}</caption>" if table.caption else ""
    head = "".join(f'<th scope="col"{cls(i)}>{inline_html(_cell_text(h))}</th>' for i, h in enumerate(table.header))
    body = "\n".join("<tr>" + "".join(f"<td{cls(i)}>{inline_html(_cell_text(c))}</td>" for i, c in enumerate(row))
                     + "</tr>" for row in table.rows)
    return (f'<div class="table-wrap"><table>{caption}\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table></div>")


def figure_html(figure: Figure, png: bytes) -> str:
    """A figure inlined as a PNG data: URL, its caption as alt text and below it."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(figure.caption)}">'
            f"<figcaption>{inline_html(figure.caption)}</figcaption></figure>")


def callout_html(callout: Callout) -> str:
    """A `Callout` as a framed box led by its label ("Warning:", "Note:")."""
    label = f'<span class="callout-label">{escape(callout.label)}:</span> '
    body = blocks_html(callout.text)
    # the label opens the first paragraph when there is one, so it reads as one sentence
    body = body.replace("<p>", "<p>" + label, 1) if body.startswith("<p>") else f"<p>{label}</p>\n{body}"
    return f'<aside class="callout {callout.kind}" role="note">\n{body}\n</aside>'


def _block_html(block: Block, figures: Mapping[str, bytes]) -> str:
    if isinstance(block, Table):
        return table_html(block)
    if isinstance(block, Callout):
        return callout_html(block)
    if isinstance(block, TokenHeatmap):
        return block.html()
    if isinstance(block, Figure):
        # not drawn (e.g. rendering without matplotlib): left out, as in the Markdown
        return figure_html(block, figures[block.name]) if block.name in figures else ""
    return blocks_html(block)


def render_html(report: Report, figures: Mapping[str, bytes] | None = None) -> str:
    """The report as one complete HTML5 document; ``figures`` maps a figure's name to its PNG bytes (figures not in
    it are left out, as `render_markdown` leaves them out).

    Layout: the title, any untitled opening blocks, a table of contents, one ``<section id=...>`` per titled section
    (an untitled section continues the one before it), the settings last.
    """
    figures = figures or {}
    slugs = _Slugs(RESERVED_IDS)
    lead: list[str] = []
    sections: list[tuple[str, str, list[str]]] = []  # (id, title, blocks)
    for section in report.sections:
        blocks = [html for html in (_block_html(block, figures) for block in section.blocks) if html]
        if section.title:
            if blocks:  # a heading over nothing (e.g. figures that were not drawn) says nothing
                sections.append((slugs(section.title), section.title, blocks))
        elif sections:
            sections[-1][2].extend(blocks)
        else:
            lead.extend(blocks)
    if report.settings:
        sections.append(("settings", "Settings", [table_html(Table(["setting", "value"],
                                                                     setting_rows(report.settings)))]))
    title = escape(report.title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{inline_html(report.title)}</h1>",
        *lead,
    ]
    if sections:
        items = "\n".join(f'<li><a href="#{sid}">{inline_html(name, links=False)}</a></li>' for sid, name, _ in sections)
        parts.append(f'<nav class="toc" aria-labelledby="contents"><h2 id="contents">Contents</h2>\n<ol>\n{items}\n'
                     "</ol></nav>")
    for sid, name, blocks in sections:
        parts += [f'<section id="{sid}">', f"<h2>{inline_html(name)}</h2>", *blocks, "</section>"]
    parts += ["</main>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
