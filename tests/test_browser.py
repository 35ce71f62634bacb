"""The real web page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright)."""

import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO, LiveServer

CHROMIUM = os.environ.get("SIGVERIFY_CHROMIUM", "/usr/bin/chromium")
SAMPLES = REPO / "src" / "sigverify" / "samples"
ARTIFACTS = Path(os.environ.get("SIGVERIFY_TEST_ARTIFACTS", REPO / "test-artifacts"))

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM} (.ci/run installs it)")

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory, tiny_model):
    """One live server (web page on) and one headless Chromium for the whole module."""
    from playwright.sync_api import sync_playwright

    server = LiveServer(tmp_path_factory.mktemp("browser") / "browser.db", tiny_model, "--samples", ui=True).start()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield server, browser
        browser.close()
    server.kill()


@pytest.fixture
def page(browser_server):
    server, browser = browser_server
    context = browser.new_context(viewport={"width": 1300, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server.url + "/")
    yield page
    context.close()


def test_compare_two_signatures(page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.get_by_text("Compare two signatures").first.wait_for()
    page.locator("#compare-reference input[type=file]").set_input_files(str(SAMPLES / "cedar-2" / "genuine" / "original_2_1.png"))
    page.locator("#compare-query input[type=file]").set_input_files(str(SAMPLES / "cedar-2" / "forged" / "forgeries_2_1.png"))
    page.locator("#compare-button").click()
    result = page.locator("#compare-result")
    result.get_by_text("Score:").wait_for()
    text = result.inner_text()
    decision = next(d for d in ("GENUINE", "FORGED", "INCONCLUSIVE") if d in text)
    assert "%" in text and decision
    page.screenshot(path=str(ARTIFACTS / "browser_compare.png"), full_page=True)


def test_bad_upload_gets_a_clear_message(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    page.locator("#compare-reference input[type=file]").set_input_files(str(SAMPLES / "cedar-2" / "genuine" / "original_2_1.png"))
    page.locator("#compare-button").click()
    page.locator("#compare-result").get_by_text("please upload the questioned signature").wait_for()


def test_verify_enrolled_writer_tab(page):
    page.get_by_role("tab", name="Verify against an enrolled writer").click()
    page.locator("#verify-writer input").click()
    page.get_by_role("option", name="cedar-13").click()
    page.locator("#verify-query input[type=file]").set_input_files(str(SAMPLES / "cedar-13" / "genuine" / "original_13_5.png"))
    page.locator("#verify-button").click()
    page.locator("#verify-result").get_by_text("Score:").wait_for()
    assert "4 references" in page.locator("#verify-result").inner_text()
    assert "test-time augmentation" not in page.locator("#verify-result").inner_text()
    page.locator("#verify-tta input").check()
    page.locator("#verify-button").click()
    page.locator("#verify-result").get_by_text("test-time augmentation").wait_for()


def test_document_tab(page, tmp_path):
    import numpy as np
    from PIL import Image

    from sigverify.imageio import load_gray
    from sigverify.synth.pages import make_page

    signatures = [load_gray(p) for p in sorted((SAMPLES / "cedar-13" / "genuine").glob("*.png"))[4:5]]
    letter = make_page(signatures, 41, n_signatures=1, stamp_probability=0.0)
    path = tmp_path / "letter.png"
    Image.fromarray(letter.image).save(path)
    page.get_by_role("tab", name="Document").click()
    page.locator("#document-page input[type=file]").set_input_files(str(path))
    page.locator("#document-writer input").click()
    page.get_by_role("option", name="cedar-13").click()
    page.locator("#document-button").click()
    result = page.locator("#document-result")
    result.get_by_text("Document:").wait_for()
    text = result.inner_text()
    assert "signature(s) found" in text and "box" in text
    page.screenshot(path=str(ARTIFACTS / "browser_document.png"), full_page=True)
    # A page with no signature says so plainly.
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((1100, 850), 255, dtype=np.uint8)).save(blank)
    # A filled upload box shows the image and no file input, so start from a fresh page.
    page.reload()
    page.get_by_role("tab", name="Document").click()
    page.locator("#document-page input[type=file]").set_input_files(str(blank))
    page.locator("#document-writer input").click()
    page.get_by_role("option", name="cedar-13").click()
    page.locator("#document-button").click()
    result.get_by_text("no signature found").wait_for()
