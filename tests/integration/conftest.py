"""Fixtures shared by the integration tests (the app, database and client fixtures are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.lti_platform import LtiTestPlatform


@pytest.fixture
def lms(app: Any, db_session: Any) -> Iterator[LtiTestPlatform]:
    """A test LTI platform, serving its JWKS over HTTP and registered in Caseload (a module may define its own)."""
    platform = LtiTestPlatform().start()
    platform.register(db_session)
    yield platform
    platform.stop()
