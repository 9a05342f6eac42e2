"""The self-contained HTML page: user text escaped before any markup, only relative links, figures inlined,
unique anchors, callouts and table captions in both formats, and Markdown unchanged for reports without them."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardlab.errors import InvalidValueError
from rewardlab.report import Callout, Figure, Report, Section, Table, render_html, render_markdown, write_report
from rewardlab.report.markup import blocks_html, inline_html, safe_link_target

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
QUOTES = """he said "no" and 'yes'"""
HOSTILE = [SCRIPT, IMG, QUOTES, "<a href='https://evil.example/x'>click</a>", "[x](https://evil.example)",
           "[y](javascript:alert(1))", "[z](//evil.example/a)", "[w](data:text/html,hi)", "<style>@import url(x)</style>",
           "</td></tr></table><iframe src=//evil.example>", '"><svg onload=alert(1)>', "&lt;script&gt; already escaped"]


class Page(HTMLParser):
    """Every start tag with its attributes, and the text outside tags, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def plain(self) -> str:
        return "".join(self.text)


def line_plot(plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2, 3], [1, 4, 9])
    return fig


def hostile_report() -> Report:
    """User data everywhere a report can hold text: title, paragraphs, cells, captions, callouts, settings."""
    text = " ".join(HOSTILE)
    return Report(f"Card {SCRIPT}", [
        Section(None, [f"Opening {IMG}"]),
        Section(f"Examples {IMG}", [text, Table([f"h {SCRIPT}", "value"], [[h, "1"] for h in HOSTILE],
                                                caption=f"caption {IMG} {QUOTES}"),
                                    Callout(f"warn {SCRIPT}"), Callout(f"note {IMG}", kind="note")]),
        Section(QUOTES, [Figure("curve", f"A curve {IMG} {QUOTES}", line_plot)]),
    ], settings={"data": SCRIPT, "nested": {"quote": QUOTES, "list": [IMG, "b"]}})


def pngs() -> dict[str, bytes]:
    return {"curve": PNG_MAGIC + b"not really a png"}


def test_hostile_text_is_shown_never_run() -> None:
    html = render_html(hostile_report(), pngs())
    page = Page(html)
    assert "<script" not in html.lower() and "<iframe" not in html.lower() and "<svg" not in html.lower()
    assert not [(name, key) for name, attrs in page.tags for key in attrs if key.startswith("on")]
    tags = {name for name, _ in page.tags}
    assert tags <= {"html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "nav", "ol", "ul", "li", "a",
                    "section", "p", "div", "table", "caption", "thead", "tbody", "tr", "th", "td", "aside", "span",
                    "figure", "img", "figcaption", "strong", "em", "code", "blockquote"}, tags
    assert len(page.all("img")) == 1 and len(page.all("style")) == 1
    for hostile in HOSTILE[:3]:  # shown as the very text the user wrote, wherever it was
        assert page.plain.count(hostile) >= 3, hostile
    assert f"Card {SCRIPT}" in page.plain and "&lt;script&gt; already escaped" in page.plain
    assert page.all("img")[0]["alt"] == f"A curve {IMG} {QUOTES}"


def test_no_url_leaves_the_page() -> None:
    html = render_html(hostile_report(), pngs())
    page = Page(html)
    for name, attrs in page.tags:
        for key, value in attrs.items():
            if key in ("href", "src", "action", "formaction", "srcset", "background", "poster", "data"):
                assert value is not None and (value.startswith("#") or value.startswith("data:image/png;base64,")), \
                    (name, key, value)
    (style,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert "url(" not in style and "@import" not in style and "//" not in style
    (csp,) = [m for m in page.all("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp["content"] == "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    assert html.index("Content-Security-Policy") < html.index("<style>")  # in force before anything else loads
    # the scheme-carrying links in the text stay text
    assert "[x](https://evil.example)" in page.plain and "[y](javascript:alert(1))" in page.plain


def test_a_benign_report_holds_no_url_at_all() -> None:
    report = Report("Plain", [Section("A", ["text with [a link](#b)", Table(["k", "v"], [["a", "1"]])]),
                              Section("B", [Figure("curve", "A curve", line_plot)])], settings={"seed": 0})
    html = render_html(report, pngs())
    outside_data = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", "", html)
    outside_data = outside_data.replace('http-equiv="Content-Security-Policy"', "")
    assert "http" not in outside_data and "//" not in outside_data and "<script" not in outside_data


def test_markdown_subset() -> None:
    assert inline_html("**bold** and *it* and `a*b*c<d>`") == \
        "<strong>bold</strong> and <em>it</em> and <code>a*b*c&lt;d&gt;</code>"
    for formula in ("2*3*4", "a * b * c", "p*q", "x*", "*args, **kwargs", "5 * 3"):  # stars inside numbers stay stars
        assert inline_html(formula) == formula, formula
    assert inline_html(r"\*not italic\*") == "*not italic*"
    # every markup character escaped (how a builder shows user text literally): the text comes back as written
    assert inline_html(r"\`code\` \[l\](#x) \*\*b\*\* \_u\_ a\\b") == "`code` [l](#x) **b** _u_ a\\b"
    assert inline_html(r"`a\*b` \`") == r"<code>a\*b</code> `"  # inside code a backslash is literal
    assert inline_html("see [the table](#results) and [a figure](figures/curve.png)") == \
        'see <a href="#results">the table</a> and <a href="figures/curve.png">a figure</a>'
    for target in ("http://x.org", "https://x.org", "javascript:alert(1)", "data:text/html,x", "//x.org", "/etc/passwd",
                   "JaVaScRiPt:x", "java\tscript:x", "a b", "x'onmouseover='y", '"q"', "\\\\x.org"):
        assert not safe_link_target(target), target
        assert "<a" not in inline_html(f"[t]({target})"), target
    assert safe_link_target("#a-b") and safe_link_target("../report.md") and safe_link_target("figures/a.png?x=1&y=2")
    assert inline_html("[t](#a&b)") == '<a href="#a&amp;b">t</a>'
    assert inline_html("**[`code`](#c)**") == '<strong><a href="#c"><code>code</code></a></strong>'
    assert inline_html("[t](#x)", links=False) == "[t](#x)"

    html = blocks_html("First line\nsame paragraph.\n\n- one\n- two\n  continued\n* three\n\n2. b\n3. c\n\n> quoted *x*\n"
                       "> - inside\n\nLast.")
    assert html == ("<p>First line\nsame paragraph.</p>\n<ul>\n<li>one</li>\n<li>two\ncontinued</li>\n<li>three</li>\n"
                    "</ul>\n<ol start=\"2\">\n<li>b</li>\n<li>c</li>\n</ol>\n<blockquote>\n<p>quoted <em>x</em></p>\n"
                    "<ul>\n<li>inside</li>\n</ul>\n</blockquote>\n<p>Last.</p>")
    assert blocks_html("1. a\n2. b") == "<ol>\n<li>a</li>\n<li>b</li>\n</ol>"
    assert blocks_html(">" * 10_000 + " deep").count("<blockquote>") == 4  # bounded on any input
    assert blocks_html("**bold** at the start") == "<p><strong>bold</strong> at the start</p>"  # not a bullet


def test_tables_cells_captions_and_alignment() -> None:
    table = Table(["name", "accuracy", "n", "note"],
                  [["a\\|b | c", "**0.612 [0.585, 0.642]**", "1,024", "x"],
                   ["d", "n/a", "—", "long\ntext"],
                   ["e", "-0.020 [-0.030, -0.010]", "12", "3"]], caption="Held-out accuracy")
    html = render_html(Report("T", [Section("S", [table])]))
    page = Page(html)
    assert "<caption>Held-out accuracy</caption>" in html
    assert "<td class=\"short\">a|b | c</td>" in html  # a Markdown-escaped bar is a bar again
    literal = Table(["regex"], [[r"a\\|b"]])  # user text with its backslash escaped: shown as written
    assert '<td class="short">a\\|b</td>' in render_html(Report("T", [Section("S", [literal])]))
    assert [a.get("class") for a in page.all("th")] == ["short", "num", "num", None]
    assert '<td class="num"><strong>0.612 [0.585, 0.642]</strong></td>' in html
    assert "<td>long\ntext</td>" in html  # newlines kept (pre-wrap)
    assert [a.get("class") for a in Page(render_html(Report("T", [Section("S", [Table(["a"], [["x" * 61]])])]))).all("th")] \
        == ["long"]
    assert 'class="table-wrap"' in html  # wide tables scroll inside their own box
    md = render_markdown(Report("T", [Section("S", [table])]))
    assert "## S\n\nTable: Held-out accuracy\n\n| name | accuracy | n | note |\n" in md


def test_sections_anchors_and_contents() -> None:
    report = Report("R", [Section(None, ["Lead."]), Section("Results", ["a"]), Section("Results", ["b"]),
                          Section(None, ["continues b"]), Section("Settings", ["user's own"]),
                          Section("Contents", ["c"]), Section("Δ accuracy: *per* set", ["d"]),
                          Section("Empty", [Figure("never", "drawn", line_plot)]), Section("!!!", ["e"])],
                    settings={"seed": 1})
    page = Page(render_html(report))
    ids = [a["id"] for name, a in page.tags if name == "section"]
    assert ids == ["results", "results-2", "settings-2", "contents-2", "δ-accuracy-per-set", "section", "settings"]
    assert len(set(ids)) == len(ids)
    toc = [a["href"] for a in page.all("a")]
    assert toc == [f"#{i}" for i in ids]
    html = render_html(report)
    assert html.index("Lead.") < html.index('id="contents"') < html.index('id="results"')
    assert re.search(r'<section id="results-2">\s*<h2>Results</h2>\s*<p>b</p>\s*<p>continues b</p>', html)
    assert "Empty" not in html and html.rindex('<section id="settings">') > html.index("δ-accuracy")


def test_callouts_in_both_formats() -> None:
    report = Report("R", [Section("S", [Callout("The held-out data **is** the training data."),
                                        Callout("Two lines\nhere.\n\nAnd more.", kind="note")])])
    md = render_markdown(report)
    assert "> **Warning:** The held-out data **is** the training data.\n\n> **Note:** Two lines\n> here.\n>\n> And more." \
        in md
    html = render_html(report)
    assert ('<aside class="callout warning" role="note">\n<p><span class="callout-label">Warning:</span> The held-out '
            "data <strong>is</strong> the training data.</p>\n</aside>") in html
    assert '<aside class="callout note" role="note">\n<p><span class="callout-label">Note:</span> Two lines' in html
    with pytest.raises(InvalidValueError, match="Callout kind"):
        Callout("x", kind="danger")  # type: ignore[arg-type]


def test_markdown_is_unchanged_without_the_new_blocks() -> None:
    report = Report("A study", [Section(None, ["Opening."]), Section("R", [Table(["a", "b"], [["1", "x|y"]])])],
                    settings={"seed": 0, "grid": (1, 2)})
    assert render_markdown(report) == ("# A study\n\nOpening.\n\n## R\n\n| a | b |\n|---|---|\n| 1 | x\\|y |\n\n"
                                       "## Settings\n\n| setting | value |\n|---|---|\n| seed | 0 |\n| grid | 1, 2 |\n")


def test_write_report_writes_html_with_inlined_figures(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    report = Report("Figures", [Section("One", [Figure("a", "First", line_plot)]),
                                Section("Two", [Figure("b", "Second", line_plot)])])
    path = write_report(report, tmp_path, {"k": 1}, html=True)
    assert path == tmp_path / "report.md" and (tmp_path / "results.json").exists()
    page = Page((tmp_path / "index.html").read_text(encoding="utf-8"))
    images = page.all("img")
    assert [i["alt"] for i in images] == ["First", "Second"]
    for image, name in zip(images, "ab"):
        src = image["src"] or ""
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert png.startswith(PNG_MAGIC) and png == (tmp_path / "figures" / f"{name}.png").read_bytes()  # drawn once
    assert plt.get_fignums() == []
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # nothing left aside

    write_report(report, tmp_path / "other", html=True, html_name="card.html")
    assert (tmp_path / "other" / "card.html").exists() and not (tmp_path / "other" / "index.html").exists()
    write_report(report, tmp_path / "md-only")
    assert not (tmp_path / "md-only" / "index.html").exists()


def test_an_interrupted_write_keeps_the_old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rewardlab.report.markdown as markdown_module

    write_report(Report("Old", [Section("S", ["old"])]), tmp_path, html=True)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(fd: int) -> None:  # the new contents are written aside, then the process is stopped
        raise KeyboardInterrupt

    monkeypatch.setattr(markdown_module.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(Report("New", [Section("S", ["new"])]), tmp_path, html=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old files whole, nothing left aside


@pytest.mark.parametrize(("names", "message"), [(["a", "a"], "two figures are named 'a'"),
                                                (["../up"], "not a plain file name"), ([".hidden"], "not a plain file name"),
                                                (["a b"], "not a plain file name")])
def test_figure_names_are_checked_before_anything_is_written(tmp_path: Path, names: list[str], message: str) -> None:
    report = Report("R", [Section("S", [Figure(name, "c", line_plot) for name in names])])
    with pytest.raises(InvalidValueError, match=message):
        write_report(report, tmp_path / "out", {"k": 1}, html=True)
    assert not (tmp_path / "out").exists()


def test_a_lone_surrogate_in_user_text_is_written_escaped(tmp_path: Path) -> None:
    import json

    text = "bad \udc80 byte"
    write_report(Report(text, [Section("S", [Table(["t"], [[text]])])]), tmp_path, {"text": text}, html=True)
    assert "bad \\udc80 byte" in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "bad \\udc80 byte" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["text"] == text  # lossless in JSON


@pytest.mark.parametrize("name", ["report.md", "results.json", "sub/index.html", "../index.html"])
def test_the_html_file_name_is_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidValueError, match="html_name"):
        write_report(Report("R", [Section("S", ["x"])]), tmp_path / "out", html=True, html_name=name)
    assert not (tmp_path / "out").exists()


TOKENS = ["<", ">", "&", '"', "'", "*", "**", "`", "[", "](", ")", "(", "#", ":", "/", "//", "\\", "- ", "* ", "> ",
          "1. ", "\n", "\n\n", " ", "a", "7", ".", "http", "javascript", "data", "script", "img", "onerror", "=", "&#x27;",
          "\x00", "\t"]


TARGET_TOKENS = ["http", "javascript", "data", ":", "/", "//", "\\", "#", "a", ".", "&#x27;", "&amp;", "'", '"', "?", "=",
                 "%", "\t", " "]
LINKS = st.builds("[{}]({})".format, st.lists(st.sampled_from(TOKENS[:20]), max_size=4).map("".join),
                  st.lists(st.sampled_from(TARGET_TOKENS), min_size=1, max_size=6).map("".join))


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(TOKENS), LINKS), max_size=30).map("".join))
def test_any_text_yields_only_the_subset_tags_and_safe_links(text: str) -> None:
    for html in (blocks_html(text), inline_html(text)):
        page = Page(html)
        for tag, attrs in page.tags:
            assert tag in {"p", "ul", "ol", "li", "blockquote", "strong", "em", "code", "a"}, (text, html)
            for key, value in attrs.items():
                assert (tag, key) in {("a", "href"), ("ol", "start")}, (text, html)
                relative = re.fullmatch(r"[\w.#%?=&+~-][\w./#%?=&+~-]*", value or "")
                assert value is not None and (key == "start" and value.isdigit() or relative), (text, html)
        assert "\x00" not in html  # no placeholder survives
