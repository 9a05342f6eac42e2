"""The reward-model card in a real browser (headless system Chromium): every section and figure shows, the page asks
for nothing but itself, and hostile text — a held-out response and a disclosure field carrying a script — is shown
as text and never run. A full-page screenshot is saved as a test artifact (``$REWARDLAB_TEST_ARTIFACTS``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from browser_helpers import open_file, require_chromium, save_screenshot
from cli_helpers import run

require_chromium()

SECTIONS = ["At a glance", "Card", "Accuracy and calibration", "Slices", "Bias probes", "Over-optimization risk",
            "Examples"]


def test_the_card_in_a_browser(audit_setting: dict[str, Any], tmp_path: Path) -> None:
    hostile = audit_setting["hostile"]
    disclosure = tmp_path / "disclosure.json"
    disclosure.write_text(json.dumps({"known_limits": hostile, "intended_use": "Reranking answers (tests)"}),
                          encoding="utf-8")
    out = tmp_path / "card"
    code, output = run("audit", str(audit_setting["ensemble"]), "--data", str(audit_setting["held_out"]), "--out",
                       str(out), "--on-empty", "skip", "--probe-items", "40", "--fixed-probes", "", "--candidates",
                       str(audit_setting["pools"]), "--disclosure", str(disclosure), "--quiet")
    assert code == 0, output
    with open_file(out / "index.html") as opened:
        page = opened.page
        headings = page.locator("h2").all_inner_texts()
        for title in SECTIONS:
            assert title in headings, headings
        images = page.locator("figure img")
        assert images.count() >= 5  # reliability, score distribution, probes, best-of-n, disagreement
        for i in range(images.count()):
            assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), f"figure {i} not drawn"
        assert opened.outside_requests() == [] and opened.errors == []
        assert page.evaluate("window.__pwned") is None
        assert page.get_by_text(hostile.split("</script>")[0], exact=False).count() >= 1  # shown, as text
        assert page.locator("script").count() == 0 and page.locator("img[onerror]").count() == 0
        save_screenshot(page, "audit-card", tmp_path)
