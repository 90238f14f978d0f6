"""The real-server tier: collected only when asked for with ``-m real`` (``make test-real``).

``make test`` must stay fast and need no model, so these tests are not even collected unless the marker
expression names ``real``; and when collected, a test is skipped if no server answers (``make test-real``
installs and starts llama.cpp first, see scripts/llama_server.sh).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

DEFAULT_URL = "http://127.0.0.1:18080"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real: needs a real OpenAI-compatible server (make test-real)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if "real" not in (config.getoption("markexpr", "") or ""):
        return True
    return None


@pytest.fixture(scope="session")
def real_url() -> str:
    """Root URL of the real server (``REAL_SERVER_URL``, default llama.cpp on 127.0.0.1:18080)."""
    url = os.environ.get("REAL_SERVER_URL", DEFAULT_URL).rstrip("/")
    try:
        healthy = httpx.get(url + "/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        healthy = False
    if not healthy:
        pytest.skip(f"no OpenAI-compatible server answers {url}/health (run `make test-real`)")
    return url
