"""What the web page's browser tests share: one Chromium per module, a fresh page (1280 x 900) per
test whose JavaScript errors fail it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.browser import browser_session, new_page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with browser_session() as session:
        yield session


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context, page, errors = new_page(browser)
    yield page
    context.close()
    assert errors.errors == [], errors.errors
