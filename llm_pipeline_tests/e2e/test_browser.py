"""The web UI in headless Chromium after the backfill: the lineage graph, an asset's metadata and checks.

Debian's `chromium` is driven by Playwright (browsers cannot be downloaded here). A missing browser
fails the test saying how to get it: a browser test that skips proves nothing. `make test` finds or
installs it before the suite starts (`system_deps.py`; `CHROMIUM=/path` overrides).
Screenshots go to `artifacts/` (gitignored); `docs/web-ui.png` is a copy of `lineage.png`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import FloatRect, Locator, Page, expect, sync_playwright

from llm_pipeline_tests.e2e.conftest import ARTIFACTS, ASSETS, PARTITIONS, Webserver
from llm_pipeline_tests.fixtures.system_deps import CHROMIUM, find

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

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
#: Metadata every LLM asset reports, which a user reads on the asset's page (with the usage keys
#: Dagster's Anthropic integration writes).
LLM_METADATA_KEYS = ("input_tokens", "output_tokens", "cost_usd", "latency_p95_ms", "anthropic.calls")
#: How many checks each LLM table has (checks.py), all expected to pass after the backfill.
CHECKS_PER_ASSET = {"extracted_entities": 2, "classifications": 3, "corpus_report": 2}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    chromium = find(CHROMIUM)
    assert chromium is not None, (
        "chromium is missing: run `make test` (it installs Debian's chromium as root, or prints the "
        "apt-get command), or set CHROMIUM=/path/to/chromium"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            # Wide enough that the graph draws full asset boxes (status, checks), not bare names.
            viewport={"width": 1920, "height": 1080},
        )
        try:
            context.set_default_timeout(_UI_TIMEOUT_MS)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest, page: Page) -> Iterator[None]:
    """What the browser showed when a test failed, next to the other artifacts."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(ARTIFACTS / f"failed_{request.node.name}.png"))


def _graph_node(page: Page, name: str) -> Locator:
    """The asset's box in the lineage graph (an SVG foreignObject; the sidebar lists names too)."""
    return page.locator("foreignObject", has=page.get_by_text(name, exact=True))


def test_the_lineage_page_shows_the_four_assets_and_their_checks(
    page: Page, webserver: Webserver, completed_backfill: dict[str, Any]
) -> None:
    page.goto(webserver.url)
    # The app redirects "/" to /overview and then to its activity tab once it has loaded; a click
    # before the last redirect is undone by it, so let the app's own navigation settle first.
    page.wait_for_url(re.compile(r"/overview/activity"))
    # The left navigation, as a user gets there ("column_lineage Jobs" also contains the word).
    page.get_by_role("link", name=re.compile(r"Lineage$")).click()
    expect(page).to_have_url(re.compile(r"/asset-groups"))
    for name in ASSETS:
        expect(_graph_node(page, name)).to_have_count(1, timeout=_UI_TIMEOUT_MS)
        expect(_graph_node(page, name)).to_be_visible()
    # Each box sums up its checks for the latest materialization: all of them passed.
    for name, count in CHECKS_PER_ASSET.items():
        expect(_graph_node(page, name)).to_contain_text(f"{count} / {count} Passed", timeout=_UI_TIMEOUT_MS)
    page.mouse.move(1900, 1000)  # no hover highlight in the pictures
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "asset_graph.png"))
    page.screenshot(path=str(ARTIFACTS / "lineage.png"), clip=_around([_graph_node(page, n) for n in ASSETS]))


def _around(nodes: list[Locator], margin: float = 48) -> FloatRect:
    """The page area that holds `nodes`, with a margin: the lineage without the empty canvas."""
    boxes = [box for box in (node.bounding_box() for node in nodes) if box is not None]
    assert len(boxes) == len(nodes), "a graph node has no box on screen"
    left = max(0.0, min(b["x"] for b in boxes) - margin)
    top = max(0.0, min(b["y"] for b in boxes) - margin)
    right = max(b["x"] + b["width"] for b in boxes) + margin
    bottom = max(b["y"] + b["height"] for b in boxes) + margin
    return {"x": left, "y": top, "width": right - left, "height": bottom - top}


def _metadata_row(page: Page, key: str) -> Locator:
    return page.locator("tr", has=page.get_by_text(key, exact=True)).first


def test_an_asset_page_shows_its_metadata_and_checks(
    page: Page, webserver: Webserver, completed_backfill: dict[str, Any]
) -> None:
    asset = ASSETS[-1]
    page.goto(f"{webserver.url}/assets/{asset}")
    expect(page.get_by_text("Latest materialization")).to_be_visible(timeout=_UI_TIMEOUT_MS)
    for key in LLM_METADATA_KEYS:
        row = _metadata_row(page, key)
        expect(row).to_be_visible(timeout=_UI_TIMEOUT_MS)
        expect(row).to_contain_text(re.compile(r"\d"))  # a value, not an empty cell
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / f"{asset}_metadata.png"), full_page=True)

    page.get_by_role("tab", name="Checks").click()
    expect(page.get_by_text("every_document_once").first).to_be_visible(timeout=_UI_TIMEOUT_MS)
    # Both checks listed as succeeded, and the latest result names its day (not "—").
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(CHECKS_PER_ASSET[asset])
    expect(page.get_by_text("Passed", exact=True)).to_be_visible()
    expect(page.get_by_text(PARTITIONS[-1], exact=True).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / f"{asset}_checks.png"))
