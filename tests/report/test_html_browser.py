"""The HTML report in a real browser (headless system Chromium): every heading and figure shows, hostile text in a
table and a paragraph is shown and never run, and the page asks for nothing but itself. A second test breaks the
escaping on purpose to show the Content-Security-Policy alone still stops a script and an outside load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from browser_helpers import listening_server, open_file, require_chromium, save_screenshot
from rewardlab.report import Callout, Figure, Report, Section, Table, render_html, write_report

require_chromium()

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'


def bars(plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.bar(["random", "longer", "model"], [0.5, 0.55, 0.68])
    ax.set_ylabel("accuracy")
    return fig


def curve(plt: Any) -> Any:
    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.plot([0, 1, 2, 3], [0.0, 0.4, 0.55, 0.5], marker="o")
    ax.set_xlabel("KL")
    return fig


def synthetic_report() -> Report:
    wide = Table(["n", *(f"gold@{2 ** k} (seed {k})" for k in range(14))],
                 [[str(n), *(f"1.{n}{k:02d} [1.{n}00, 1.{n}99]" for k in range(14))] for n in range(3)], caption="Wide")
    long_text = "A long response that must wrap inside its cell rather than stretch the table. " * 6
    return Report("Reward-model card: synthetic", [
        Section(None, ["What this page shows, in **one** paragraph with `code`."]),
        Section("Accuracy", [
            Callout("The held-out data is the training data: these numbers are optimistic."),
            f"A paragraph quoting a response: {SCRIPT} and {IMG}.",
            Table(["example", "response", "score"], [["1", SCRIPT, "0.612 [0.585, 0.642]"],
                                                     ["2", IMG, "**-0.020 [-0.030, -0.010]**"],
                                                     ["3", long_text, "n/a"]], caption="Examples the model scored"),
            Figure("bars", "Accuracy beside its controls", bars),
        ]),
        Section("Over-optimization", ["Gold reward against KL.", Figure("curve", "Gold reward vs KL", curve), wide,
                                      Callout("Read the curve, not a single point.", kind="note")]),
    ], settings={"seed": 0, "encoder": "hashing:64"})


def test_the_report_page_in_a_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    write_report(synthetic_report(), tmp_path / "report", html=True)
    with open_file(tmp_path / "report" / "index.html") as opened:
        page = opened.page
        for heading in ("Reward-model card: synthetic", "Contents", "Accuracy", "Over-optimization", "Settings"):
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth])")
        assert [alt for alt, _, _ in images] == ["Accuracy beside its controls", "Gold reward vs KL"]
        assert all(complete and width > 0 for _, complete, width in images), images
        assert page.evaluate("typeof window.__pwned") == "undefined"
        for hostile in (SCRIPT, IMG):  # in a table cell and in the paragraph, as the text it is
            expect(page.locator("td", has_text=hostile)).to_be_visible()
            expect(page.locator("p", has_text=hostile)).to_be_visible()
        expect(page.locator("aside.callout.warning")).to_contain_text("Warning: The held-out data is the training data")
        expect(page.locator("caption").first).to_have_text("Examples the model scored")
        page.get_by_role("link", name="Over-optimization").click()  # the contents link to their sections
        assert page.evaluate("location.hash") == "#over-optimization"
        assert page.evaluate("document.body.scrollWidth <= window.innerWidth")  # long cells wrap, nothing overflows
        wide = page.locator(".table-wrap", has=page.locator("caption", has_text="Wide"))
        assert wide.evaluate("box => box.scrollWidth > box.clientWidth")  # the wide table scrolls inside its box
        save_screenshot(page, "report_html", tmp_path)
        page.emulate_media(media="print")
        expect(page.locator("nav.toc")).to_be_hidden()  # links do not work on paper
        assert opened.outside_requests() == [] and opened.errors == []


def test_the_policy_alone_stops_injected_markup(tmp_path: Path) -> None:
    """Markup inserted raw after the policy (as if escaping had failed) neither runs nor reaches a server; the same
    markup in a page without the policy does both, so the check can tell."""
    html = render_html(Report("Injected", [Section("S", ["text"])]))
    with listening_server() as (base, hits):
        injected = f'<script>window.__pwned=1</script><img src="{base}/leak.png">'
        page_with = tmp_path / "with.html"
        page_with.write_text(html.replace("<main>", "<main>" + injected), encoding="utf-8")
        with open_file(page_with) as opened:
            assert opened.page.evaluate("typeof window.__pwned") == "undefined"
            assert opened.unblocked_requests() == [] and hits == []
            assert sum("Content Security Policy" in message for message in opened.console) == 2, opened.console

        page_without = tmp_path / "without.html"
        page_without.write_text(page_with.read_text(encoding="utf-8").replace("Content-Security-Policy", "x-none"),
                                encoding="utf-8")
        with open_file(page_without) as opened:
            assert opened.page.evaluate("window.__pwned") == 1
            assert opened.unblocked_requests() == [f"{base}/leak.png"] and hits == ["/leak.png"]
