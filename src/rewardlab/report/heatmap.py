"""A token heat-map block: a text whose tokens are shaded by a value each (e.g. their share of a reward).

In HTML every token is a ``<span>`` with a background whose hue is the value's sign (green above 0, red below) and
whose strength is its size relative to the largest in the text, the value in its ``title``; the text between tokens is
kept, so the response reads as written. Every piece of text is HTML-escaped first (responses hold user data, e.g.
``<script>``), and the colours are inline ``style`` attributes, which the page's Content-Security-Policy allows.
Markdown cannot colour text, so there the block falls back to its caption and a table of the tokens with the largest
values by size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from rewardlab.errors import InvalidValueError

#: (red, green, blue) of positive and negative values; the largest |value| is drawn at `MAX_ALPHA`
POSITIVE, NEGATIVE = (22, 163, 74), (220, 38, 38)
MAX_ALPHA = 0.8
#: tokens the Markdown fallback lists
MARKDOWN_TOP = 10
_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]()#|!>-"})


@dataclass(frozen=True)
class TokenHeatmap:
    """``text`` with tokens at ``offsets`` ((start, end) into it, in order, not overlapping) shaded by ``values``."""

    text: str
    offsets: Sequence[tuple[int, int]]
    values: Sequence[float]
    caption: str = ""

    def __post_init__(self) -> None:
        if len(self.offsets) != len(self.values):
            raise InvalidValueError(f"a heat-map needs one value per token: {len(self.offsets)} tokens, "
                                    f"{len(self.values)} values")
        end = 0
        for start, stop in self.offsets:
            if not end <= start <= stop <= len(self.text):
                raise InvalidValueError(f"token offsets ({start}, {stop}) are out of order or outside the text")
            end = stop

    def html(self) -> str:
        """The text as shaded spans inside a ``<figure>``, the caption below it (all escaped)."""
        scale = max((abs(v) for v in self.values), default=0.0) or 1.0
        parts, end = [], 0
        for (start, stop), value in zip(self.offsets, self.values):
            parts.append(escape(self.text[end:start]))
            red, green, blue = POSITIVE if value >= 0 else NEGATIVE
            alpha = round(MAX_ALPHA * abs(value) / scale, 3)
            parts.append(f'<span style="background: rgba({red}, {green}, {blue}, {alpha}); border-radius: 3px" '
                         f'title="{value:+.4g}">{escape(self.text[start:stop])}</span>')
            end = stop
        parts.append(escape(self.text[end:]))
        caption = f"<figcaption>{escape(self.caption)}</figcaption>" if self.caption else ""
        return ('<figure class="heatmap" style="text-align: left"><p style="white-space: pre-wrap; line-height: 1.9; '
                f'margin: 0">{"".join(parts)}</p>{caption}</figure>')

    def markdown_lines(self) -> list[str]:
        """The caption and a table of the `MARKDOWN_TOP` tokens with the largest |value| (token text escaped)."""
        order = sorted(range(len(self.values)), key=lambda i: -abs(self.values[i]))[:MARKDOWN_TOP]
        rows = [f"| {_markdown_text(self.text[a:b])} | {a} | {self.values[i]:+.4g} |"
                for i in order for a, b in [self.offsets[i]]]
        lines = [_markdown_text(self.caption), ""] if self.caption else []
        return lines + ["| token | offset | value |", "|---|---|---|", *rows]


def _markdown_text(text: str) -> str:
    """User text made inert in Markdown: HTML special characters as entities, Markdown punctuation escaped, one line."""
    return escape(" ".join(text.split()), quote=False).translate(_MARKDOWN_SPECIAL)
