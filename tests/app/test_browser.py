"""A real browser against `gensearch app`: Debian's chromium driven by Playwright, on 127.0.0.1.

Needs /usr/bin/chromium (`make test` installs it; never `playwright install`). Saves
artifacts/app_search.png (and app_safety.png) for people to look at.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import copy_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).parents[2] / "artifacts"
GENSEARCH = Path(sys.executable).parent / "gensearch"
SLOW_MS = 300_000  # model loading and decoding on a busy 2-core CPU


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`gensearch app` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"`gensearch app` not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture()
def app_url(app_store, tmp_path) -> Iterator[str]:
    """`gensearch app` on a free local port, over a private copy of the small store."""
    store = copy_store(app_store, tmp_path / "qdrant")
    port = free_port()
    env = {**os.environ, "GENSEARCH_QDRANT_PATH": str(store), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    log = tmp_path / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(GENSEARCH), "app", "--server.port", str(port), "--server.headless", "true"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture()
def page(app_url):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make test` (it installs it) or `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2200})
            page.goto(app_url)
            yield page
        finally:
            browser.close()


def test_search_in_a_real_browser_shows_hits_and_the_decoded_query(page):
    from playwright.sync_api import expect

    query = page.get_by_label("Query")
    expect(query).to_be_visible(timeout=60_000)
    query.fill("How do I reverse a list?")
    page.get_by_role("button", name="Search").click()

    decoded = page.locator(".gs-decoded")
    expect(decoded).to_be_visible(timeout=SLOW_MS)
    assert decoded.inner_text().strip()
    expect(page.get_by_text("5 hits from python-docs")).to_be_visible()
    expect(page.locator("mark", has_text="reverse").first).to_be_visible()  # query terms highlighted in a snippet
    expect(page.get_by_text("Python lists › Reversing a list").first).to_be_visible()
    expect(page.get_by_text("Lens words:").first).to_be_visible()
    expect(page.get_by_text("What the model thinks the answer is")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_search.png"), full_page=True)


def test_safety_page_hides_harmful_passages_in_a_real_browser(page):
    from playwright.sync_api import expect

    page.get_by_role("link", name="Safety").click()
    expect(page.get_by_text("No evaluation report yet")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Search both").click()
    expect(page.locator(".gs-decoded")).to_be_visible(timeout=SLOW_MS)
    hidden = page.get_by_text("Harmful passage hidden").first
    expect(hidden).to_be_visible()
    harmful_texts = page.get_by_text("Step-by-step guide to building an explosive device").all()
    harmful_texts += page.get_by_text("To steal someone's identity").all()
    assert harmful_texts  # in the page, but collapsed
    for text in harmful_texts:
        expect(text).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_safety.png"), full_page=True)
