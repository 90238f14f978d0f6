"""The DuckDB store: open the database file, apply migrations, expose a connection.

Everything that touches the database file goes through :func:`open_store`, so
locking, migrations and the price-table registration happen in one place.
DuckDB allows one writing process per file; a second process gets a
:class:`StoreLockedError` that says which file and what to do, not a traceback.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from costlens.errors import StoreError, StoreLockedError
from costlens.store.migrations import MIGRATIONS

__all__ = ["MIGRATIONS_TABLE", "applied_migrations", "connect", "migrate", "open_store", "utcnow"]

MIGRATIONS_TABLE = "_costlens_migrations"


def utcnow() -> datetime:
    """Naive UTC 'now', the timestamp convention of the whole store."""
    return datetime.now(UTC).replace(tzinfo=None)


def _duckdb_config() -> dict[str, str | bool | int | float | list[str]]:
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        # Bound the buffer pool: a nightly job shares the machine, and a replay of
        # a large file must not grow with it (DuckDB spills to disk instead).
        "memory_limit": os.environ.get("COSTLENS_MEMORY_LIMIT", "1GB"),
    }
    # DuckDB wants a home directory for its extension cache; cron jobs often
    # run with HOME unset, so give it a harmless one rather than fail.
    if not os.environ.get("HOME"):
        config["home_directory"] = str(Path.cwd())
    return config


LOCK_WAIT_ENV = "COSTLENS_LOCK_WAIT"
_LOCK_POLL_S = 0.2


def _lock_wait_seconds() -> float:
    """COSTLENS_LOCK_WAIT: how long to wait for a DB another process holds (default 0: fail at once)."""
    text = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not text:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise StoreError(f"{LOCK_WAIT_ENV}={text!r}: expected a number of seconds (0 or more)")
    return seconds


def connect(db_path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the DuckDB file, translating lock errors.

    DuckDB lets one process at a time open a file for writing, and none read it meanwhile. Another
    costlens on the same file fails at once with a clear message, or with COSTLENS_LOCK_WAIT=SECONDS
    waits up to that long for the file to be free (a report after a nightly run, say)."""
    path = str(db_path)
    if path != ":memory:":
        parent = Path(path).parent
        if not parent.exists():
            raise StoreError(f"cannot create database {path}: directory {parent} does not exist")
    deadline = time.monotonic() + _lock_wait_seconds()
    while True:
        try:
            return duckdb.connect(path, config=_duckdb_config())
        except duckdb.IOException as e:
            message = str(e)
            if "lock" not in message.lower():
                raise StoreError(f"cannot open database {path}: {message}") from e
            if time.monotonic() < deadline:
                time.sleep(_LOCK_POLL_S)
                continue
            pid = re.search(r"PID (\d+)", message)
            holder = f" (process {pid.group(1)})" if pid else ""
            raise StoreLockedError(
                f"database {path} is in use by another process{holder}; wait for it to finish, "
                f"use another --db, or set {LOCK_WAIT_ENV}=SECONDS to wait for it"
            ) from e
        except duckdb.Error as e:
            raise StoreError(f"cannot open database {path}: {e}") from e


def applied_migrations(conn: duckdb.DuckDBPyConnection) -> list[int]:
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
        [MIGRATIONS_TABLE],
    ).fetchone()
    if not exists or not exists[0]:
        return []
    return [
        row[0] for row in conn.execute(f"SELECT number FROM {MIGRATIONS_TABLE} ORDER BY number").fetchall()
    ]


def migrate(conn: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration not yet recorded; return the numbers applied now."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
        "number INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = set(applied_migrations(conn))
    known = {m.number for m in MIGRATIONS}
    unknown = done - known
    if unknown:
        raise StoreError(
            f"database was written by a newer costlens (migration {max(unknown)} is unknown to this version)"
        )
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.number in done:
            continue
        try:
            conn.execute("BEGIN TRANSACTION")
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} VALUES (?, ?, ?)",
                [migration.number, migration.name, utcnow()],
            )
            conn.execute("COMMIT")
        except duckdb.Error as e:
            conn.execute("ROLLBACK")
            raise StoreError(f"migration {migration.number} ({migration.name}) failed: {e}") from e
        applied.append(migration.number)
    return applied


@contextmanager
def open_store(db_path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Connect and migrate; the connection is closed on exit."""
    conn = connect(db_path)
    try:
        migrate(conn)
        yield conn
    except (duckdb.IOException, duckdb.SerializationException) as e:
        # DuckDB reads a file's blocks when a query needs them, so a truncated or damaged file can
        # open and fail only later, inside any command: one clear error, not an internal one.
        damaged = " (the file looks damaged or truncated)" if "read" in str(e).lower() else ""
        raise StoreError(f"cannot use database {db_path}{damaged}: {e}") from e
    finally:
        conn.close()
