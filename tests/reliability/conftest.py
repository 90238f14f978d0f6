"""The reliability tier (issue 13, RELIABILITY.md): hostile input, crashes, faults, concurrent use, secrets,
injection. Collected only when asked for with ``-m reliability`` (``make test-reliability``): some checks
run dozens of seeded trials and take minutes, which ``make test`` must not.

Every check prints one ``RELIABILITY:`` line (check, cases or trials, what held) that RELIABILITY.md
quotes; ``make test-reliability`` shows them (pytest ``-s`` is not needed: they go through the report).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_report_browser import chromium  # noqa: F401 (fixtures the checks share)
from test_run import cli_provider  # noqa: F401

FIGURES: list[dict[str, object]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: the reliability tier (make test-reliability)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if "reliability" not in (config.getoption("markexpr", "") or ""):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "reliability" in str(item.path):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def figure() -> object:
    """``figure(check, cases=N, held="...")``: one line of RELIABILITY.md's table, printed at the end."""

    def record(check: str, *, cases: int, held: str) -> None:
        FIGURES.append({"check": check, "cases": cases, "held": held})

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for row in FIGURES:
        terminalreporter.write_line("RELIABILITY: " + json.dumps(row, ensure_ascii=False))
