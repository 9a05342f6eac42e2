"""One renderer for every report rewardlab writes: study reports today, the reward-model card (`audit`) next.

Whoever owns the numbers builds a `Report` (title, sections of paragraphs, tables and figures, the settings
of the run) and `write_report` renders it the same way for all: Markdown, figures as PNG files beside it
(matplotlib, headless) and the JSON record the numbers came from. Nothing here knows any study's vocabulary;
the studies (`rewardlab.studies`) build their reports from their records.
"""

from rewardlab.report.document import Block, Figure, Report, Section, Table
from rewardlab.report.format import MISSING, difference, estimate, findings_table, number, significant
from rewardlab.report.markdown import render_markdown, write_report

__all__ = ["MISSING", "Block", "Figure", "Report", "Section", "Table", "difference", "estimate", "findings_table",
           "number", "render_markdown", "significant", "write_report"]
