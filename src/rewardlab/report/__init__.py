"""One renderer for every report rewardlab writes: study reports today, the reward-model card (`audit`) next.

Whoever owns the numbers builds a `Report` (title, sections of paragraphs, tables, figures and callouts, the
settings of the run) and `write_report` renders it the same way for all: Markdown, figures as PNG files beside it
(matplotlib, headless), the JSON record the numbers came from and, when asked, one self-contained HTML page
(`render_html`: styles and figures inline, no script, safe to open with user data in it). Nothing here knows any
study's vocabulary; the studies (`rewardlab.studies`) build their reports from their records.
"""

from rewardlab.report.document import Block, Callout, Figure, Report, Section, Table
from rewardlab.report.format import MISSING, difference, estimate, findings_table, number, setting_rows, significant
from rewardlab.report.heatmap import TokenHeatmap
from rewardlab.report.html import render_html
from rewardlab.report.markdown import render_markdown, write_report

__all__ = ["MISSING", "Block", "Callout", "Figure", "Report", "Section", "Table", "TokenHeatmap", "difference", "estimate",
           "findings_table", "number", "render_html", "render_markdown", "setting_rows", "significant", "write_report"]
