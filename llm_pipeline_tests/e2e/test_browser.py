"""The web UI in headless Chromium after the backfill: the lineage graph, an asset's metadata and checks.

Debian's `chromium` is driven by Playwright (browsers cannot be downloaded here). A missing browser
fails the test with the command that installs it: a browser test that skips proves nothing.
Screenshots go to `artifacts/` (gitignored); `docs/web-ui.png` is a copy of `asset_graph.png`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from llm_pipeline_tests.e2e.conftest import ARTIFACTS, ASSETS, Webserver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The UI loads its bundle and several GraphQL queries; first paint on a busy 2-core machine is slow.
_UI_TIMEOUT_MS = 60_000
#: Metadata every LLM asset reports, which a user reads on the asset's page.
LLM_METADATA_KEYS = ("input_tokens", "output_tokens", "cost_usd")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    assert CHROMIUM.is_file(), (
        f"{CHROMIUM} is missing: the web UI test needs Debian's browser "
        "(apt-get install -y chromium chromium-driver; .ci/run installs both)"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        try:
            context.set_default_timeout(_UI_TIMEOUT_MS)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _graph_node(page: Page, name: str) -> Any:
    """The asset's box in the lineage graph (the sidebar lists names too; this is the node label)."""
    return page.locator(f'[data-tooltip="{name}"]')


def test_the_lineage_page_shows_the_four_assets(
    page: Page, webserver: Webserver, completed_backfill: dict[str, Any]
) -> None:
    page.goto(webserver.url)
    page.get_by_role("link", name="Lineage").click()  # the left navigation, as a user gets there
    for name in ASSETS:
        expect(_graph_node(page, name)).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "asset_graph.png"))


def _metadata_row(page: Page, key: str) -> Any:
    return page.locator("tr", has=page.get_by_text(key, exact=True)).first


def test_an_asset_page_shows_its_metadata_and_checks(
    page: Page, webserver: Webserver, completed_backfill: dict[str, Any]
) -> None:
    asset = ASSETS[-1]
    page.goto(f"{webserver.url}/assets/{asset}")
    expect(page.get_by_text("Latest materialization")).to_be_visible()
    for key in LLM_METADATA_KEYS:
        row = _metadata_row(page, key)
        expect(row).to_be_visible()
        expect(row).to_contain_text(re.compile(r"\d"))  # a value, not an empty cell
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / f"{asset}_metadata.png"), full_page=True)

    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text("every_document_once").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / f"{asset}_checks.png"))
