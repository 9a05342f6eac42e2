"""The small Markdown subset a report's text may use, turned into HTML safely: escape everything, then mark up.

Report text carries user data (model responses, prompts, annotator notes), so the input is HTML-escaped before any
rule applies and the rules only ever add a fixed set of tags: ``<p> <ul> <ol> <li> <blockquote> <strong> <em>
<code> <a href>``. Supported:

- blank-line separated paragraphs; lines starting with ``- `` or ``* `` (a bullet list) or ``1. `` (numbered);
  lines starting with ``> `` (a quote, which may hold the rest of the subset);
- ``**bold**``, ``*italic*`` (only where the stars hug a word and are not inside one, so ``2*3*4`` and
  ``a * b`` stay as written), `` `code` `` (taken literally), ``\\*`` for a literal star;
- ``[text](target)`` only for targets inside the page or beside it (``#anchor``, ``figures/a.png``): a target with a
  scheme (``http:``, ``javascript:``, ``data:``), a leading ``/`` or ``\\`` or any character outside a plain
  path's stays as the text it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape, unescape

#: a quote inside a quote inside ...: past this depth ``>`` is just a character (bounded recursion on any input)
MAX_QUOTE_DEPTH = 4

_BULLET = re.compile(r" {0,3}[-*] +(.*)")
_NUMBERED = re.compile(r" {0,3}(\d{1,9})[.)] +(.*)")
_QUOTE = re.compile(r" {0,3}> ?(.*)")
_CONTINUATION = re.compile(r"\s+\S.*")

_PLACEHOLDER = re.compile("\x00(\\d+)\x00")
#: a backslash-escaped character or a code span, whichever comes first (inside a code span a backslash is literal)
_LITERAL = re.compile(r"\\([\\`*_\[\]()#>|!-])|`([^`\n]+)`")
_LINK = re.compile(r"\[([^\[\]\n]+)\]\(([^()\s]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.S)
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])", re.S)
#: what a relative link target may hold: a path, a query, a fragment; no ":" so no scheme, no quotes, no spaces
_SAFE_TARGET = re.compile(r"[A-Za-z0-9._~/#%?=&+-]+")


def safe_link_target(target: str) -> bool:
    """True for a target inside the page or beside it (``#x``, ``figures/a.png``, ``../b.md``); False for anything
    with a scheme, a protocol-relative or absolute path, or characters a plain path does not need."""
    return bool(_SAFE_TARGET.fullmatch(target)) and not target.startswith("/")


def inline_html(text: str, *, links: bool = True) -> str:
    """One run of text as HTML: escaped, then bold, italic, code and (with ``links``) relative links."""
    stash: list[str] = []

    def keep(html: str) -> str:
        stash.append(html)
        return f"\x00{len(stash) - 1}\x00"

    escaped = escape(text.replace("\x00", "\ufffd"), quote=True)
    escaped = _LITERAL.sub(lambda m: keep(m.group(1) if m.group(1) else f"<code>{m.group(2)}</code>"), escaped)
    if links:
        def link(m: re.Match[str]) -> str:
            target = unescape(m.group(2))
            if not safe_link_target(target):
                return m.group(0)
            return keep(f'<a href="{escape(target, quote=True)}">{_emphasis(m.group(1))}</a>')

        escaped = _LINK.sub(link, escaped)
    html = _emphasis(escaped)
    while _PLACEHOLDER.search(html):  # a link's label may hold kept code; each pass restores one level
        html = _PLACEHOLDER.sub(lambda m: stash[int(m.group(1))], html)
    return html


def _emphasis(escaped: str) -> str:
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _ITALIC.sub(r"<em>\1</em>", escaped)


def blocks_html(text: str, depth: int = 0) -> str:
    """A paragraph block of a report (which may hold several paragraphs, lists and quotes) as HTML."""
    out: list[str] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
        elif depth < MAX_QUOTE_DEPTH and _QUOTE.fullmatch(lines[i]):
            quoted = _run(lines, i, lambda line: _quoted(line) is not None)
            inner = "\n".join(_quoted(line) or "" for line in quoted)
            out.append(f"<blockquote>\n{blocks_html(inner, depth + 1)}\n</blockquote>")
            i += len(quoted)
        elif _BULLET.fullmatch(lines[i]) or _NUMBERED.fullmatch(lines[i]):
            html, i = _list(lines, i)
            out.append(html)
        else:
            paragraph = _run(lines, i, _is_paragraph_line)
            out.append(f"<p>{inline_html(chr(10).join(line.strip() for line in paragraph))}</p>")
            i += len(paragraph)
    return "\n".join(out)


def _quoted(line: str) -> str | None:
    match = _QUOTE.fullmatch(line)
    return match.group(1) if match else None


def _is_paragraph_line(line: str) -> bool:
    return bool(line.strip()) and not (_QUOTE.fullmatch(line) or _BULLET.fullmatch(line) or _NUMBERED.fullmatch(line))


def _run(lines: list[str], i: int, belongs: Callable[[str], bool]) -> list[str]:
    """``lines[i]`` and the lines right after it that ``belongs`` accepts."""
    end = i + 1
    while end < len(lines) and belongs(lines[end]):
        end += 1
    return lines[i:end]


def _list(lines: list[str], i: int) -> tuple[str, int]:
    """One list (bulleted or numbered, as its first line is) as HTML, and the index after it; an indented line
    continues the item above it."""
    numbered = _NUMBERED.fullmatch(lines[i])
    pattern = _NUMBERED if numbered else _BULLET
    items: list[list[str]] = []
    while i < len(lines):
        item = pattern.fullmatch(lines[i])
        if item:
            items.append([item.group(item.lastindex or 1)])
        elif items and _CONTINUATION.fullmatch(lines[i]):
            items[-1].append(lines[i].strip())
        else:
            break
        i += 1
    body = "\n".join(f"<li>{inline_html(chr(10).join(item))}</li>" for item in items)
    tag = "ol" if numbered else "ul"
    start = int(numbered.group(1)) if numbered else 1
    attributes = f' start="{start}"' if start != 1 else ""
    return f"<{tag}{attributes}>\n{body}\n</{tag}>", i
