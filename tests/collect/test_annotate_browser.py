"""End to end in a real browser: an annotator logs in and labels five pairs with the keyboard (one response
carries a script that must stay inert), an admin sees the stats and exports, and `rewardlab train` trains on
the export. Headless system Chromium driven by Playwright; the server runs on 127.0.0.1."""

from __future__ import annotations

import os
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardlab.cli import app as cli_app
from rewardlab.collect.local_postgres import free_port
from rewardlab.collect.server import create_app
from rewardlab.collect.store import open_store
from rewardlab.data.parquet import read_parquet

CHROMIUM = Path(os.environ.get("REWARDLAB_CHROMIUM", "/usr/bin/chromium"))
SCRIPT = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'

if not CHROMIUM.exists():
    if os.environ.get("REWARDLAB_REQUIRE_BROWSER"):
        raise RuntimeError(f"{CHROMIUM} not found: install it (apt-get install chromium)")
    pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, str, Path]]:
    """(base URL, annotator token, admin token, db path) of a live server with a 5-pair project."""
    import uvicorn

    db = tmp_path / "annotations.db"
    store = open_store(str(db))
    admin = store.create_user("alice-admin", "admin")
    annotator = store.create_user("bob")
    project_id = store.create_project("harmless", "pairwise", "Pick the more <b>harmless</b> answer.", overlap=1)
    store.add_member(project_id, "bob")
    pairs = [(f"Question {i}: how do I stay safe?", [f"Careful answer {i}.", f"Reckless answer {i}."]) for i in range(4)]
    pairs.append(("Is this response safe?", [SCRIPT, "A plain answer."]))
    store.import_items(project_id, [(f"item{i}", {"prompt": p, "responses": r}) for i, (p, r) in enumerate(pairs)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", annotator, admin, db
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_label_export_train_in_the_browser(served: tuple[str, str, str, Path], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, annotator, admin, db = served
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        page = browser.new_page()
        page.goto(base + "/")
        page.fill("#token", annotator)
        page.press("#token", "Enter")
        page.get_by_text("harmless — pairwise").click()
        expect(page.locator("#instructions")).to_have_text("Pick the more <b>harmless</b> answer.")
        saw_script = False
        for i in range(5):
            expect(page.locator("#progress")).to_contain_text(f"Labelled {i} ")
            if page.get_by_text(SCRIPT, exact=True).count():  # shown as text, not run
                saw_script = True
            page.keyboard.press(["1", "2", "0", "1", "2"][i])
        expect(page.locator("#all-done")).to_be_visible()
        expect(page.locator("#progress")).to_contain_text("Labelled 5 ")
        assert saw_script and page.evaluate("window.__pwned") is None

        admin_page = browser.new_context(accept_downloads=True).new_page()
        admin_page.goto(base + "/")
        admin_page.fill("#token", admin)
        admin_page.press("#token", "Enter")
        admin_page.locator(".admin-link").first.click()
        expect(admin_page.locator("#annotators")).to_contain_text("bob")
        expect(admin_page.locator("#stats")).to_contain_text("5 labels on 5 items")
        with admin_page.expect_download() as download_info:
            admin_page.click("#export")
        archive = tmp_path / "export.zip"
        download_info.value.save_as(archive)
        browser.close()

    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(tmp_path / "unzipped")
    dataset = read_parquet(tmp_path / "unzipped" / "harmless")
    assert len(dataset.comparisons) == 5 and {c.annotator_id for c in dataset.comparisons} == {"bob"}
    assert sorted(c.outcome for c in dataset.comparisons).count("tie") == 1
    assert all("shown_order" in c.meta for c in dataset.comparisons)
    result = CliRunner().invoke(cli_app, ["train", str(tmp_path / "unzipped" / "harmless"), "--out",
                                          str(tmp_path / "model"), "--encoder", "hashing:64", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model" / "config.json").exists()
    assert open_store(str(db)).count_labels() == 5
