"""Headless Chromium (Debian's) driven by Playwright, against a real `turnout serve`.

The browser fixture (`browser`) is in tests/conftest.py: the compatibility tests use it
too, and Playwright's sync API allows one instance at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

# Assertions wait as long as actions do: on a shared 2-core machine a page that posts, redirects
# and renders can take longer than Playwright's 5 s default.
expect.set_options(timeout=15_000)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
