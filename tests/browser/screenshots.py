"""`make screenshots`: with GATEHOUSE_SCREENSHOTS set to a directory, the journeys save a
full-page PNG of each main page they pass through; without it, taking one costs nothing."""

import os
from pathlib import Path

from playwright.sync_api import Page


def snap(page: Page, name: str) -> None:
    """Save the page as `<name>.png` once it has settled (no request in flight)."""
    folder = os.environ.get("GATEHOUSE_SCREENSHOTS", "")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True, animations="disabled")
