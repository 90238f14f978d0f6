"""The DuckDB store: open the database file, apply migrations, expose a connection.

Everything that touches the database file goes through :func:`open_store`, so
locking, migrations and the price-table registration happen in one place.
DuckDB allows one writing process per file; a second process gets a
:class:`StoreLockedError` that says which file and what to do, not a traceback.
"""

from __future__ import annotations

import os
import re
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


def connect(db_path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the DuckDB file, translating lock errors."""
    path = str(db_path)
    if path != ":memory:":
        parent = Path(path).parent
        if not parent.exists():
            raise StoreError(f"cannot create database {path}: directory {parent} does not exist")
    try:
        return duckdb.connect(path, config=_duckdb_config())
    except duckdb.IOException as e:
        message = str(e)
        if "lock" in message.lower():
            pid = re.search(r"PID (\d+)", message)
            holder = f" (process {pid.group(1)})" if pid else ""
            raise StoreLockedError(
                f"database {path} is in use by another process{holder}; "
                "wait for it to finish, or use another --db"
            ) from e
        raise StoreError(f"cannot open database {path}: {message}") from e
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
    finally:
        conn.close()
