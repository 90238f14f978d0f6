"""Shared fixtures: user state in a temp dir, JSONL builders and writers, library and CLI runners.

Like simonw/llm's tests/conftest.py, an autouse fixture points every piece of user
state (working directory, ``COSTLENS_DB``, ``COSTLENS_PRICING``) at the test's temp
dir, so no test can read or write a real database or price table.

Hypothesis runs under one of two profiles. ``ci`` (the default, ``make test``) is derandomized: every
run draws the same examples, so the suite passes or fails the same way every time, on any machine.
``thorough`` (``HYPOTHESIS_PROFILE=thorough``, ``make test-thorough``) draws new random examples each
run, ten times as many, and keeps the failures it finds in ``.hypothesis/`` to replay them first.
Neither has a deadline or a too-slow health check: a slow machine must not fail a test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import Lines, Record, write_jsonl
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from costlens.cli import cli
from costlens.ingest.replay import ReplayOptions, ReplayResult, replay_files
from costlens.session import Session, Settings, open_session

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,  # nothing carried over from an earlier run: a clean clone runs what CI runs
    max_examples=100,  # tests scale their own budgets from this (helpers.examples)
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    derandomize=False,
    # An absolute path: the tests run in their temp dirs (isolated_state below).
    database=DirectoryBasedExampleDatabase(str(Path(__file__).resolve().parent.parent / ".hypothesis")),
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path, COSTLENS_DB = a fresh file in it, no other COSTLENS_* (so no COSTLENS_PRICING)."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("COSTLENS_"):  # COSTLENS_PRICING and any setting added later
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    state.mkdir()
    db = state / "costlens.duckdb"
    monkeypatch.setenv("COSTLENS_DB", str(db))
    return db


@pytest.fixture
def db_path(isolated_state: Path) -> Path:
    return isolated_state


# --- JSONL -------------------------------------------------------------------------------------


@pytest.fixture
def jsonl(tmp_path: Path) -> Callable[..., Path]:
    """``jsonl("name.jsonl", [records], newline="\\r\\n", trailing_newline=False)`` → its path."""

    def write(name: str, records: Iterable[Record], **kwargs: Any) -> Path:
        return write_jsonl(tmp_path / name, records, **kwargs)

    return write


@pytest.fixture
def lines() -> Lines:
    return Lines()


# --- library -----------------------------------------------------------------------------------


@pytest.fixture
def session(db_path: Path) -> Iterator[Session]:
    """An open session on the test DB (shipped prices); closed after the test."""
    with open_session(Settings(db_path=db_path)) as s:
        yield s


@pytest.fixture
def replay(session: Session) -> Callable[..., ReplayResult]:
    """Replay one file through the library: ``replay(path, chunk_bytes=64, ...)`` → its ReplayResult."""

    def run(path: Path, **options: Any) -> ReplayResult:
        outcome = replay_files(session.conn, ReplayOptions(files=[path], **options))
        assert len(outcome.results) == 1
        return outcome.results[0]

    return run


@pytest.fixture
def query(session: Session) -> Callable[..., list[dict[str, Any]]]:
    """``query(sql, *params)`` on the session's connection → rows as dicts."""

    def run(sql: str, *params: Any) -> list[dict[str, Any]]:
        cursor = session.conn.execute(sql, list(params))
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    return run


# --- CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``invoke("replay", path, "--json")`` → click Result (stdout and stderr kept apart).

    sys.argv is set too, because ``replay`` records the (redacted) command line from it.
    """

    def run(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
        argv = [str(a) for a in args]
        monkeypatch.setattr(sys, "argv", ["costlens", *argv])
        return CliRunner().invoke(cli, argv, prog_name="costlens", env=env, catch_exceptions=False)

    return run


def assert_user_error(result: Result, code: int, *fragments: str) -> None:
    """A user error: the exit code, one ``costlens: error:`` line on stderr, and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("costlens: error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def user_error() -> Callable[..., None]:
    return assert_user_error
