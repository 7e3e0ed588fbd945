"""The controller's reference page: Redoc, vendored by scripts/vendor-redoc and served by
the controller itself, renders the OpenAPI document in a real browser (Debian's Chromium
driven by Playwright) with every request to another origin blocked and counted — none is
made — and nothing refused by the page's Content-Security-Policy; without the bundle /docs
is the plain server-rendered page, which says how to get the nicer one."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_appliance_page import ARGS, CHROMIUM

from controller import api
from controller.apikit import TITLES

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.controller(dispatch=False)


@pytest.fixture(scope="module")
def redoc_bundle() -> Path:
    """The bundle scripts/test vendors; vendored here when a run started without it."""
    if not api.REDOC_BUNDLE.is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "vendor-redoc")], check=True, timeout=300)
    assert subprocess.run([sys.executable, str(ROOT / "scripts" / "vendor-redoc"), "--check"], check=False).returncode == 0
    return api.REDOC_BUNDLE


async def test_redoc_renders_the_operations_from_the_controller_alone(controller, redoc_bundle):
    from playwright.async_api import async_playwright

    c, _ = controller
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(c.url))
    elsewhere: list[str] = []  # requests to any other origin: blocked, and counted
    failed: list[str] = []
    csp: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()

            async def route(r):
                url = r.request.url
                if url.startswith(("data:", "blob:", origin + "/")):
                    await r.continue_()
                else:
                    elsewhere.append(url)
                    await r.abort()

            await page.route("**/*", route)
            page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
            page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
            answer = await page.goto(c.url + "/docs")
            assert answer is not None and answer.ok
            policy = answer.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src 'self'" in policy and "https:" not in policy
            # an operation's heading, its request example and a schema by name
            heading = page.locator("h2", has_text="Create a campaign (strategy and rules validated here)")
            await heading.first.wait_for(timeout=30_000)
            assert await heading.first.is_visible()
            assert await page.locator("h1", has_text="simrotor controller API").first.is_visible()
            await page.locator("h2", has_text="Import contacts").first.scroll_into_view_if_needed()
            await page.get_by_text("Overdue since November").first.wait_for(state="attached")
            assert await page.get_by_text("Array of objects (Step)").count() >= 1
            assert await page.get_by_text("RFC 9457 problem details").count() >= 1
            # every problem type's anchor is on the page
            ids = await page.eval_on_selector_all("[id^='problem-']", "els => els.map(e => e.id)")
            assert sorted(ids) == sorted(f"problem-{code}" for code in TITLES)
        finally:
            await browser.close()
    assert elsewhere == [] and failed == [] and csp == []


async def test_docs_falls_back_to_the_plain_page_without_the_bundle(controller, http, monkeypatch, redoc_bundle):
    c, _ = controller
    async with http.get(f"{c.url}/docs") as r:
        shell = await r.text()
        assert r.status == 200 and "Content-Security-Policy" in r.headers
    assert "<script src='/static/redoc.standalone.js'></script>" in shell and "http" not in shell
    async with http.get(f"{c.url}/static/redoc.standalone.js") as r:
        assert r.status == 200 and r.content_type == "text/javascript"
        assert len(await r.read()) == redoc_bundle.stat().st_size
    monkeypatch.setattr(api, "REDOC_BUNDLE", redoc_bundle.with_name("absent.js"))
    async with http.get(f"{c.url}/docs") as r:
        page = await r.text()
    assert "<script" not in page and "scripts/vendor-redoc" in page and "id='post/v1/campaigns'" in page
    async with http.get(f"{c.url}/static/redoc.standalone.js") as r:
        problem = await r.json()
        assert r.status == 404 and r.content_type == "application/problem+json"
    assert "scripts/vendor-redoc" in problem["detail"]
