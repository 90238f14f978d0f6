"""The schema is code: the full schema of a fresh database, migration bookkeeping, and refusal
of a database written by a newer costlens. Changing a shipped migration must fail here."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from costlens.errors import StoreError
from costlens.store import db as store
from costlens.store.db import MIGRATIONS_TABLE, applied_migrations, migrate, open_store
from costlens.store.migrations import MIGRATIONS, Migration

ADD_RUN = "INSERT INTO runs (kind, status, costlens_version, started_at) VALUES ({kind}, 'x', 'v', now())"

EXPECTED_SCHEMA: dict[str, list[tuple[str, str, bool]]] = {
    # table: [(column, type, nullable)] in column order
    "_costlens_migrations": [
        ("number", "INTEGER", False),
        ("name", "VARCHAR", False),
        ("applied_at", "TIMESTAMP", False),
    ],
    "reconciliation_cells": [
        ("reconciliation_id", "INTEGER", False),
        ("source", "VARCHAR", False),
        ("day", "DATE", False),
        ("model", "VARCHAR", True),
        ("tier", "VARCHAR", True),
        ("measure", "VARCHAR", False),
        ("provider_value", "DECIMAL(38,15)", True),
        ("costlens_value", "DECIMAL(38,15)", True),
        ("difference", "DECIMAL(38,15)", False),
        ("verdict", "VARCHAR", False),
        ("cause", "VARCHAR", True),
        ("evidence", "VARCHAR", True),
    ],
    "reconciliation_inputs": [
        ("reconciliation_id", "INTEGER", False),
        ("file_no", "INTEGER", False),
        ("file", "VARCHAR", False),
        ("sha256", "VARCHAR", False),
        ("kind", "VARCHAR", False),
        ("detected", "BOOLEAN", False),
        ("buckets", "BIGINT", False),
        ("results", "BIGINT", False),
        ("first_day", "DATE", True),
        ("last_day", "DATE", True),
    ],
    "reconciliations": [
        ("reconciliation_id", "INTEGER", False),
        ("created_at", "TIMESTAMP", False),
        ("kinds", "VARCHAR", False),
        ("tolerance", "VARCHAR", False),
        ("selection", "JSON", False),
        ("command_line", "VARCHAR", True),
        ("costlens_version", "VARCHAR", False),
        ("pricing_sha256", "VARCHAR", True),
        ("status", "VARCHAR", False),
        ("period_start", "DATE", True),
        ("period_end", "DATE", True),
        ("cells", "BIGINT", False),
        ("cells_differing", "BIGINT", False),
        ("not_compared", "JSON", True),
    ],
    "rejects": [
        ("run_id", "INTEGER", False),
        ("file", "VARCHAR", False),
        ("line_no", "BIGINT", False),
        ("reason", "VARCHAR", False),
        ("raw", "VARCHAR", True),
        ("rejected_at", "TIMESTAMP", False),
    ],
    "request_params": [
        ("run_id", "INTEGER", False),
        ("request_id", "BIGINT", False),
        ("temperature", "DOUBLE", True),
        ("max_tokens", "BIGINT", True),
        ("stream", "BOOLEAN", True),
        ("top_p", "DOUBLE", True),
        ("frequency_penalty", "DOUBLE", True),
        ("presence_penalty", "DOUBLE", True),
        ("stop", "JSON", True),
        ("n", "INTEGER", True),
        ("user", "VARCHAR", True),
        ("extra_params", "JSON", True),
        ("msg_count", "INTEGER", True),
        ("msg_system", "INTEGER", True),
        ("msg_user", "INTEGER", True),
        ("msg_assistant", "INTEGER", True),
        ("msg_tool", "INTEGER", True),
        ("msg_developer", "INTEGER", True),
        ("messages_sha256", "VARCHAR", True),
        ("messages", "JSON", True),
    ],
    "requests": [
        ("run_id", "INTEGER", False),
        ("request_id", "BIGINT", False),
        ("custom_id", "VARCHAR", False),
        ("line_no", "BIGINT", True),
        ("requested_model", "VARCHAR", True),
    ],
    "results": [
        ("run_id", "INTEGER", False),
        ("request_id", "BIGINT", False),
        ("source_line_no", "BIGINT", True),
        ("source_format", "VARCHAR", False),
        ("service_tier", "VARCHAR", False),
        ("status", "VARCHAR", False),
        ("http_status", "INTEGER", True),
        ("error_type", "VARCHAR", True),
        ("error_message", "VARCHAR", True),
        ("response_id", "VARCHAR", True),
        ("provider_request_id", "VARCHAR", True),
        ("response_model", "VARCHAR", True),
        ("finish_reasons", "VARCHAR[]", True),
        ("usage_source", "VARCHAR", False),
        ("usage_format", "VARCHAR", True),
        ("prompt_tokens", "BIGINT", True),
        ("completion_tokens", "BIGINT", True),
        ("total_tokens", "BIGINT", True),
        ("cached_tokens", "BIGINT", True),
        ("cache_write_tokens", "BIGINT", True),
        ("reasoning_tokens", "BIGINT", True),
        ("raw_usage", "JSON", True),
        ("created_at", "TIMESTAMP", True),
        ("priced_at", "TIMESTAMP", False),
        ("cache_write_1h_tokens", "BIGINT", True),
        ("reported_cost_usd", "DECIMAL(38,15)", True),
        ("reported_cost_source", "VARCHAR", True),
    ],
    "result_details": [
        ("run_id", "INTEGER", False),
        ("request_id", "BIGINT", False),
        ("started_at", "TIMESTAMP", True),
        ("completed_at", "TIMESTAMP", True),
        ("latency_ms", "DOUBLE", True),
        ("ttft_ms", "DOUBLE", True),
        ("attempts", "INTEGER", True),
        ("completion", "JSON", True),
        ("completion_sha256", "VARCHAR", True),
        ("rate_limits", "JSON", True),
    ],
    "runs": [
        ("run_id", "INTEGER", False),
        ("name", "VARCHAR", True),
        ("kind", "VARCHAR", False),
        ("status", "VARCHAR", False),
        ("source_file", "VARCHAR", True),
        ("source_sha256", "VARCHAR", True),
        ("requests_file", "VARCHAR", True),
        ("requests_sha256", "VARCHAR", True),
        ("tier_mode", "VARCHAR", True),
        ("tags", "JSON", True),
        ("command_line", "VARCHAR", True),
        ("costlens_version", "VARCHAR", False),
        ("pricing_sha256", "VARCHAR", True),
        ("started_at", "TIMESTAMP", False),
        ("finished_at", "TIMESTAMP", True),
        ("lines_read", "BIGINT", True),
        ("lines_stored", "BIGINT", True),
        ("lines_rejected", "BIGINT", True),
        ("base_url", "VARCHAR", True),
        ("budget_usd", "DECIMAL(38,15)", True),
        ("simulated", "BOOLEAN", True),
        ("run_uuid", "UUID", False),
    ],
}


def schema(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str, bool]]]:
    out: dict[str, list[tuple[str, str, bool]]] = {}
    rows = conn.execute(
        """SELECT table_name, column_name, data_type, is_nullable = 'YES'
           FROM information_schema.columns WHERE table_schema = 'main'
           ORDER BY table_name, ordinal_position"""
    ).fetchall()
    for table, column, data_type, nullable in rows:
        out.setdefault(table, []).append((column, data_type, nullable))
    return out


@pytest.fixture
def conn(db_path):
    connection = store.connect(db_path)
    yield connection
    connection.close()


def test_fresh_database_has_exactly_the_expected_schema(db_path):
    with open_store(db_path) as conn:
        assert schema(conn) == EXPECTED_SCHEMA
        tables = conn.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name"
        ).fetchall()
        assert tables == [(name, "BASE TABLE") for name in sorted(EXPECTED_SCHEMA)]
        sequences = conn.execute(
            "SELECT sequence_name FROM duckdb_sequences() WHERE NOT temporary"
        ).fetchall()
        assert sequences == [("runs_run_id_seq",)]


def test_schema_constraints_reject_bad_rows(db_path):
    with open_store(db_path) as conn:
        conn.execute(ADD_RUN.format(kind="'replay'"))
        conn.execute(ADD_RUN.format(kind="'run'"))
        assert conn.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall() == [(1,), (2,)]
        with pytest.raises(duckdb.ConstraintException):
            conn.execute(ADD_RUN.format(kind="'x'"))
        base = (
            "INSERT INTO results (run_id, request_id, source_format, service_tier, status, usage_source, priced_at) "
            "VALUES (1, 1, 'openai_batch', {tier}, {status}, {usage}, now())"
        )
        conn.execute(base.format(tier="'batch'", status="'ok'", usage="'reported'"))
        for bad in (
            {"tier": "'default'", "status": "'ok'", "usage": "'reported'"},
            {"tier": "'batch'", "status": "'fine'", "usage": "'reported'"},
            {"tier": "'batch'", "status": "'ok'", "usage": "'guessed'"},
        ):
            with pytest.raises(duckdb.ConstraintException):
                conn.execute(base.format(**bad))


def test_migrations_are_numbered_from_one_without_gaps():
    assert [m.number for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len({m.name for m in MIGRATIONS}) == len(MIGRATIONS)


def test_migrations_are_recorded(conn):
    assert applied_migrations(conn) == []
    assert migrate(conn) == [m.number for m in MIGRATIONS]
    rows = conn.execute(f"SELECT number, name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY number").fetchall()
    assert [(n, name) for n, name, _ in rows] == [(m.number, m.name) for m in MIGRATIONS]
    assert rows[0][:2] == (1, "initial")
    assert all(applied_at is not None for *_, applied_at in rows)
    assert applied_migrations(conn) == [m.number for m in MIGRATIONS]


def test_migrate_twice_applies_nothing(conn):
    migrate(conn)
    conn.execute(ADD_RUN.format(kind="'replay'"))
    assert migrate(conn) == []
    assert conn.execute(f"SELECT count(*) FROM {MIGRATIONS_TABLE}").fetchone() == (len(MIGRATIONS),)
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)  # data untouched


def test_reopening_a_database_keeps_its_data(db_path):
    with open_store(db_path) as conn:
        conn.execute(ADD_RUN.format(kind="'replay'"))
    with open_store(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        assert schema(conn) == EXPECTED_SCHEMA


def test_unknown_higher_migration_is_refused(conn):
    migrate(conn)
    conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES (99, 'from the future', now())")
    with pytest.raises(StoreError, match=r"newer costlens \(migration 99 is unknown to this version\)"):
        migrate(conn)


def test_open_store_refuses_a_newer_database(db_path):
    with open_store(db_path) as conn:
        conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} VALUES ({len(MIGRATIONS) + 1}, 'later', now())")
    with pytest.raises(StoreError, match=f"migration {len(MIGRATIONS) + 1} is unknown"), open_store(db_path):
        pass


def test_a_failing_migration_leaves_no_trace(conn, monkeypatch):
    """Statements and the bookkeeping row share one transaction."""
    migrate(conn)
    broken = Migration(
        len(MIGRATIONS) + 1,
        "broken",
        ("CREATE TABLE half_done (a INTEGER)", "ALTER TABLE no_such_table ADD COLUMN b INTEGER"),
    )
    monkeypatch.setattr(store, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(StoreError, match=rf"migration {broken.number} \(broken\) failed"):
        migrate(conn)
    assert applied_migrations(conn) == [m.number for m in MIGRATIONS]
    assert "half_done" not in schema(conn)

    fixed = Migration(broken.number, "fixed", ("CREATE TABLE half_done (a INTEGER)",))
    monkeypatch.setattr(store, "MIGRATIONS", (*MIGRATIONS, fixed))
    assert migrate(conn) == [fixed.number]
    assert schema(conn)["half_done"] == [("a", "INTEGER", True)]


# The columns of `requests` before migration 3 moved the parameters out.
BEFORE_REQUEST_COLUMNS = [
    "run_id",
    "request_id",
    "custom_id",
    "line_no",
    "requested_model",
    "temperature",
    "max_tokens",
    "stream",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "n",
    "user",
    "extra_params",
    "msg_count",
    "msg_system",
    "msg_user",
    "msg_assistant",
    "msg_tool",
    "msg_developer",
    "messages_sha256",
    "messages",
]


def test_migration_3_keeps_rows_written_before_it(conn, monkeypatch):
    """A database at migration 2 with data: rebuilding requests/results keeps every row and value."""
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:2])
    assert migrate(conn) == [1, 2]
    conn.execute(ADD_RUN.format(kind="'run'"))
    conn.execute(
        "INSERT INTO requests (run_id, request_id, custom_id, n, stop) VALUES (1, 7, 'req-7', 2, '[\"x\"]')"
    )
    conn.execute(
        "INSERT INTO results (run_id, request_id, source_format, service_tier, status, usage_source, priced_at, "
        "prompt_tokens, raw_usage, finish_reasons, rate_limits) VALUES (1, 7, 'live', 'standard', 'ok', "
        "'reported', TIMESTAMP '2026-01-02 03:04:05', 12, '{\"prompt_tokens\":12}', ['stop'], '{\"x-a\":\"1\"}')"
    )
    conn.execute("INSERT INTO requests (run_id, request_id, custom_id, line_no) VALUES (1, 8, 'req-8', 9)")
    before = (
        conn.execute("SELECT * FROM requests ORDER BY request_id").fetchall(),
        conn.execute("SELECT * FROM results").fetchall(),
    )
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:3])
    assert migrate(conn) == [3]
    # The same rows and values, parameters now in request_params (only where there were any).
    after = conn.execute(
        "SELECT * FROM requests LEFT JOIN request_params USING (run_id, request_id) ORDER BY request_id"
    ).fetchall()
    columns = [c for c, _, _ in EXPECTED_SCHEMA["requests"] + EXPECTED_SCHEMA["request_params"][2:]]
    old_columns = [d[0] for d in conn.execute("SELECT * FROM requests LIMIT 0").description]
    assert old_columns == [c for c, _, _ in EXPECTED_SCHEMA["requests"]]
    assert [dict(zip(columns, row, strict=True)) for row in after] == [
        {**dict.fromkeys(columns), **dict(zip(BEFORE_REQUEST_COLUMNS, row, strict=True))} for row in before[0]
    ]
    assert conn.execute("SELECT run_id, request_id FROM request_params").fetchall() == [(1, 7)]
    assert conn.execute("SELECT * FROM results").fetchall() == before[1]
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS)
    assert migrate(conn) == [m.number for m in MIGRATIONS[3:]]
    assert schema(conn) == EXPECTED_SCHEMA


def test_migration_4_moves_run_only_columns_to_result_details(conn, monkeypatch):
    """A database at migration 3: each result keeps every value; details rows only where there were any."""
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:3])
    assert migrate(conn) == [1, 2, 3]
    conn.execute(ADD_RUN.format(kind="'run'"))
    conn.execute(
        "INSERT INTO results (run_id, request_id, source_format, service_tier, status, usage_source, priced_at, "
        "prompt_tokens, raw_usage, finish_reasons, started_at, completed_at, latency_ms, ttft_ms, attempts, "
        "completion, completion_sha256, rate_limits) VALUES (1, 7, 'live', 'standard', 'ok', 'reported', "
        "TIMESTAMP '2026-01-02 03:04:05', 12, '{\"prompt_tokens\":12}', ['stop'], TIMESTAMP '2026-01-02 03:04:04', "
        "TIMESTAMP '2026-01-02 03:04:05', 812.5, 90.25, 2, '[\"hi\"]', 'abc', '{\"x-a\":\"1\"}')"
    )
    conn.execute(
        "INSERT INTO results (run_id, request_id, source_format, service_tier, status, usage_source, priced_at, "
        "http_status, error_type) VALUES (1, 8, 'openai_batch', 'batch', 'error', 'none', "
        "TIMESTAMP '2026-01-03 00:00:00', 500, 'server_error')"
    )
    v4_results = [c for c, _, _ in EXPECTED_SCHEMA["results"] if c not in ADDED_TO_RESULTS_AFTER_4]
    columns = v4_results + [c for c, _, _ in EXPECTED_SCHEMA["result_details"][2:]]
    before = conn.execute(f"SELECT {', '.join(columns)} FROM results ORDER BY request_id").fetchall()

    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:4])
    assert migrate(conn) == [4]
    after = conn.execute(
        f"SELECT {', '.join(columns)} FROM results LEFT JOIN result_details USING (run_id, request_id) "
        "ORDER BY request_id"
    ).fetchall()
    assert after == before
    assert conn.execute("SELECT run_id, request_id, attempts FROM result_details").fetchall() == [(1, 7, 2)]
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS)
    assert migrate(conn) == [m.number for m in MIGRATIONS[4:]]
    assert schema(conn) == EXPECTED_SCHEMA


# Columns later migrations appended to `results` (5: the 1-hour cache writes, 7: the reported cost).
ADDED_TO_RESULTS_AFTER_4 = ("cache_write_1h_tokens", "reported_cost_usd", "reported_cost_source")


def test_migration_5_adds_the_1h_cache_write_bucket_as_unknown(conn, monkeypatch):
    """Rows written before migration 5 keep every value; their 1-hour writes are unknown (NULL), not 0."""
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:4])
    assert migrate(conn) == [1, 2, 3, 4]
    conn.execute(ADD_RUN.format(kind="'replay'"))
    conn.execute(
        "INSERT INTO results (run_id, request_id, source_format, service_tier, status, usage_source, priced_at, "
        "prompt_tokens, completion_tokens, cache_write_tokens) VALUES (1, 7, 'anthropic_batch', 'batch', 'ok', "
        "'reported', TIMESTAMP '2026-01-02 03:04:05', 1500, 20, 500)"
    )
    before = conn.execute("SELECT * FROM results").fetchall()
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:5])
    assert migrate(conn) == [5]
    after = conn.execute(
        "SELECT * EXCLUDE (cache_write_1h_tokens), cache_write_1h_tokens FROM results"
    ).fetchall()
    assert after == [(*before[0], None)]
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS)
    assert migrate(conn) == [m.number for m in MIGRATIONS[5:]]
    assert schema(conn) == EXPECTED_SCHEMA


def test_migration_6_marks_earlier_runs_not_simulated(conn, monkeypatch):
    """Runs logged before migration 6 keep every value and count as real (FALSE, not NULL): readers
    leave out only runs known to be simulated."""
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:5])
    assert migrate(conn) == [1, 2, 3, 4, 5]
    conn.execute(ADD_RUN.format(kind="'run'"))
    before = conn.execute("SELECT * FROM runs").fetchall()
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:6])
    assert migrate(conn) == [6]
    assert conn.execute("SELECT * EXCLUDE (simulated), simulated FROM runs").fetchall() == [
        (*before[0], False)
    ]
    conn.execute(ADD_RUN.format(kind="'replay'"))
    assert conn.execute("SELECT simulated FROM runs WHERE run_id = 2").fetchall() == [(False,)]


def test_migration_7_adds_the_reported_cost_as_unknown(conn, monkeypatch):
    """Rows written before migration 7 keep every value; nothing was reported for them (NULL, not 0)."""
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:6])
    migrate(conn)
    conn.execute(ADD_RUN.format(kind="'replay'"))
    conn.execute(
        "INSERT INTO results (run_id, request_id, source_format, service_tier, status, usage_source, priced_at, "
        "prompt_tokens, completion_tokens) VALUES (1, 7, 'openai_batch', 'batch', 'ok', 'reported', "
        "TIMESTAMP '2026-01-02 03:04:05', 15, 20)"
    )
    before = conn.execute("SELECT * FROM results").fetchall()
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:7])
    assert migrate(conn) == [7]
    after = conn.execute(
        "SELECT * EXCLUDE (reported_cost_usd, reported_cost_source), reported_cost_usd, reported_cost_source "
        "FROM results"
    ).fetchall()
    assert after == [(*before[0], None, None)]


def test_migration_8_adds_empty_reconciliation_tables_and_keeps_everything_else(conn, monkeypatch):
    """A database at migration 7 keeps every row; the reconciliation tables start empty and refuse a
    verdict, measure or status outside their vocabularies."""
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:7])
    migrate(conn)
    conn.execute(ADD_RUN.format(kind="'replay'"))
    conn.execute(
        "INSERT INTO results (run_id, request_id, source_format, service_tier, status, usage_source, priced_at, "
        "prompt_tokens, completion_tokens) VALUES (1, 7, 'openai_batch', 'batch', 'ok', 'reported', "
        "TIMESTAMP '2026-01-02 03:04:05', 15, 20)"
    )
    before = {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("runs", "results")}
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:8])
    assert migrate(conn) == [8]
    assert {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("runs", "results")} == before
    for table in ("reconciliations", "reconciliation_inputs", "reconciliation_cells"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    conn.execute(
        "INSERT INTO reconciliations (reconciliation_id, created_at, kinds, tolerance, selection, costlens_version, "
        "status, cells, cells_differing) VALUES (1, now(), 'openai-costs', '0.01', '{}', 'v', 'ok', 0, 0)"
    )
    with pytest.raises(duckdb.ConstraintException):  # one row per reconciliation
        conn.execute(
            "INSERT INTO reconciliations (reconciliation_id, created_at, kinds, tolerance, selection, "
            "costlens_version, status, cells, cells_differing) VALUES (1, now(), 'x', '0', '{}', 'v', 'ok', 0, 0)"
        )
    with pytest.raises(duckdb.ConstraintException):
        conn.execute(
            "INSERT INTO reconciliations (reconciliation_id, created_at, kinds, tolerance, selection, "
            "costlens_version, status, cells, cells_differing) VALUES (2, now(), 'x', '0', '{}', 'v', 'fine', 0, 0)"
        )
    cell = (
        "INSERT INTO reconciliation_cells (reconciliation_id, source, day, measure, provider_value, difference, "
        "verdict) VALUES (1, 'openai-costs', DATE '2025-08-01', {measure}, 1.234567890123456, -1.234567890123456, "
        "{verdict})"
    )
    conn.execute(cell.format(measure="'cost_usd'", verdict="'missing in costlens'"))
    assert conn.execute("SELECT provider_value FROM reconciliation_cells").fetchone() == (
        Decimal("1.234567890123456"),
    )
    for bad in ({"measure": "'dollars'", "verdict": "'ok'"}, {"measure": "'cost_usd'", "verdict": "'close'"}):
        with pytest.raises(duckdb.ConstraintException):
            conn.execute(cell.format(**bad))
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS)
    assert migrate(conn) == [m.number for m in MIGRATIONS[8:]]
    assert schema(conn) == EXPECTED_SCHEMA


def test_migrations_9_and_10_give_every_run_its_own_uuid(conn, monkeypatch):
    """Runs logged before migration 9 keep every value and get a distinct UUID each; new runs get one
    without the writers naming it, and none may be NULL."""
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:8])
    migrate(conn)
    for kind in ("'run'", "'replay'", "'replay'"):
        conn.execute(ADD_RUN.format(kind=kind))
    before = conn.execute("SELECT * FROM runs ORDER BY run_id").fetchall()
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:10])
    assert migrate(conn) == [9, 10]
    after = conn.execute("SELECT * EXCLUDE (run_uuid) FROM runs ORDER BY run_id").fetchall()
    assert after == before
    conn.execute(ADD_RUN.format(kind="'run'"))
    uuids = [row[0] for row in conn.execute("SELECT CAST(run_uuid AS VARCHAR) FROM runs").fetchall()]
    assert len(uuids) == 4 and len(set(uuids)) == 4
    assert all(len(u) == 36 and u[14] == "4" for u in uuids)  # version-4 (random) UUIDs
    with pytest.raises(duckdb.ConstraintException):
        conn.execute("UPDATE runs SET run_uuid = NULL WHERE run_id = 1")


def test_unique_text_columns_are_stored_with_zstd(db_path):
    with open_store(db_path) as conn:
        conn.execute(ADD_RUN.format(kind="'replay'"))
        conn.execute(
            "INSERT INTO results (run_id, request_id, source_format, service_tier, status, usage_source, "
            "priced_at, response_id, raw_usage) SELECT 1, i, 'openai_batch', 'batch', 'ok', 'reported', now(), "
            "'chatcmpl-' || i, '{\"prompt_tokens\":' || i || '}' FROM range(5000) t(i)"
        )
        conn.execute(
            "INSERT INTO requests (run_id, request_id, custom_id) SELECT 1, i, 'r-' || i FROM range(5000) t(i)"
        )
        conn.execute("CHECKPOINT")
        codecs = dict(
            conn.execute(
                """SELECT column_name, string_agg(DISTINCT compression, ',')
                   FROM (SELECT 'results.' || column_name AS column_name, compression
                         FROM pragma_storage_info('results') WHERE segment_type IN ('VARCHAR', 'JSON')
                         UNION ALL
                         SELECT 'requests.' || column_name, compression
                         FROM pragma_storage_info('requests') WHERE segment_type IN ('VARCHAR', 'JSON'))
                   GROUP BY ALL"""
            ).fetchall()
        )
    for column in ("results.response_id", "results.raw_usage", "requests.custom_id"):
        assert codecs[column] == "ZSTD", codecs
    assert codecs["results.source_format"] != "ZSTD"  # low-cardinality text keeps DuckDB's choice
