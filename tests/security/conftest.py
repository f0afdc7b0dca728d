"""Fixtures for the security suite.

* ``unprivileged`` (session): a normal user ready to run this checkout
  (``tests.security.unprivileged``); the test is skipped, with the reason, where that
  cannot be had (not root, inside the unprivileged session itself, no ``useradd``, …).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.security.unprivileged import GUARD, Unprivileged, provision


@pytest.fixture(scope="session")
def unprivileged() -> Iterator[Unprivileged]:
    if os.environ.get(GUARD):
        pytest.skip("already the unprivileged session: it does not start another one")
    user = provision()
    if isinstance(user, str):
        pytest.skip(f"no unprivileged user here: {user}")
    yield user
    user.release()
