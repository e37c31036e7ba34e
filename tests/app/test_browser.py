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
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import build_kb_store, copy_store

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


@contextmanager
def running_app(store: Path, cwd: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`gensearch app` on a free local port over ``store`` (a folder no other process has open); yields its URL."""
    port = free_port()
    env = {**os.environ, "GENSEARCH_QDRANT_PATH": str(store), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
    log = cwd / f"app-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(GENSEARCH), "app", "--server.port", str(port), "--server.headless", "true"],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
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


@contextmanager
def browser_page(url: str, headers: dict[str, str] | None = None):
    """Debian's chromium on ``url``, sending ``headers`` with every request (as a reverse proxy would)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make test` (it installs it) or `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2200}, extra_http_headers=headers)
            page.goto(url)
            yield page
        finally:
            browser.close()


@pytest.fixture()
def app_url(app_store, tmp_path) -> Iterator[str]:
    """`gensearch app` on a free local port, over a private copy of the small store."""
    with running_app(copy_store(app_store, tmp_path / "qdrant"), tmp_path) as url:
        yield url


@pytest.fixture()
def page(app_url):
    with browser_page(app_url) as page:
        yield page


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


def test_the_proxy_header_decides_what_a_real_browser_is_shown(tmp_path):
    """Behind a reverse proxy that sets X-Forwarded-User, each user's hits are the documents they may read."""
    from playwright.sync_api import expect

    store, kb, users = build_kb_store(tmp_path)
    env = {"GENSEARCH_USERS_FILE": str(users), "GENSEARCH_COLLECTION": "kb", "GENSEARCH_APP_USER_HEADER": "X-Forwarded-User"}
    with running_app(store, tmp_path, env) as url:
        for user, shown, hidden in (("bob", "handbook.md", "salaries.md"), ("alice", "salaries.md", "deploy.md")):
            with browser_page(url, {"X-Forwarded-User": user}) as page:
                expect(page.get_by_text(f"Signed in as {user}")).to_be_visible(timeout=60_000)
                page.get_by_label("Query").fill("salary bands")
                page.get_by_role("button", name="Search").click()
                expect(page.get_by_text("hits from kb")).to_be_visible(timeout=SLOW_MS)
                expect(page.get_by_text(shown).first).to_be_visible()
                assert page.get_by_text(hidden).count() == 0, f"{user} was shown {hidden}"
        with browser_page(url) as page:
            expect(page.get_by_text("Not signed in: public documents only")).to_be_visible(timeout=60_000)
            page.get_by_label("Query").fill("salary bands")
            page.get_by_role("button", name="Search").click()
            expect(page.get_by_text("0 hits from kb")).to_be_visible(timeout=SLOW_MS)
