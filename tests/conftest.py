"""Fixtures that tests in more than one folder use."""

from pathlib import Path

import pytest

from tests.prerequisites import skip_or_fail


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, under Playwright (testbed/browser.py): the live page's tests."""
    from testbed.browser import CHROMIUM, chromium  # Playwright is imported only where a test needs it

    if not Path(CHROMIUM).is_file():
        skip_or_fail(f"{CHROMIUM} not found: sudo apt-get install chromium (the live page's browser tests)")
    with chromium() as launched:
        yield launched
