"""Numbered, append-only schema migrations for the costlens DuckDB store.

A shipped migration is never edited: a schema change is a new, higher-numbered
entry. Each migration runs in the same transaction as the bookkeeping row that
records it, so a crash leaves the database either before or after a migration,
never half-way. ``tests/test_migrations.py`` checks the full schema of a fresh
database, so any change here must be made on purpose.

Design notes:
- Timestamps are naive ``TIMESTAMP`` values in UTC throughout.
- Token counts are ``BIGINT``; NULL means *unknown*, never zero.
- Money is never stored: costs are computed on read from usage and the price
  table (``costlens/money/sql/request_costs.sql``), so a corrected price table
  re-prices history and every figure can be reproduced.
- The big tables (requests, results) carry no primary-key index: DuckDB's ART
  indexes slow bulk loads several-fold, and uniqueness of
  (run_id, request_id) is guaranteed by the loaders that assign it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration"]


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    name: str
    statements: Sequence[str]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            "CREATE SEQUENCE runs_run_id_seq START 1",
            """
            CREATE TABLE runs (
                run_id           INTEGER PRIMARY KEY DEFAULT nextval('runs_run_id_seq'),
                name             VARCHAR,
                kind             VARCHAR NOT NULL CHECK (kind IN ('run', 'replay')),
                status           VARCHAR NOT NULL,
                source_file      VARCHAR,
                source_sha256    VARCHAR,
                requests_file    VARCHAR,
                requests_sha256  VARCHAR,
                tier_mode        VARCHAR,
                tags             JSON,
                command_line     VARCHAR,
                costlens_version VARCHAR NOT NULL,
                pricing_sha256   VARCHAR,
                started_at       TIMESTAMP NOT NULL,
                finished_at      TIMESTAMP,
                lines_read       BIGINT,
                lines_stored     BIGINT,
                lines_rejected   BIGINT
            )
            """,
            """
            CREATE TABLE requests (
                run_id            INTEGER NOT NULL,
                request_id        BIGINT NOT NULL,
                custom_id         VARCHAR NOT NULL,
                line_no           BIGINT,
                requested_model   VARCHAR,
                temperature       DOUBLE,
                max_tokens        BIGINT,
                stream            BOOLEAN,
                top_p             DOUBLE,
                frequency_penalty DOUBLE,
                presence_penalty  DOUBLE,
                stop              JSON,
                n                 INTEGER,
                "user"            VARCHAR,
                extra_params      JSON,
                msg_count         INTEGER,
                msg_system        INTEGER,
                msg_user          INTEGER,
                msg_assistant     INTEGER,
                msg_tool          INTEGER,
                msg_developer     INTEGER,
                messages_sha256   VARCHAR,
                messages          JSON
            )
            """,
            """
            CREATE TABLE results (
                run_id              INTEGER NOT NULL,
                request_id          BIGINT NOT NULL,
                source_line_no      BIGINT,
                source_format       VARCHAR NOT NULL,
                service_tier        VARCHAR NOT NULL
                    CHECK (service_tier IN ('standard', 'batch', 'flex', 'priority')),
                status              VARCHAR NOT NULL CHECK (status IN ('ok', 'error')),
                http_status         INTEGER,
                error_type          VARCHAR,
                error_message       VARCHAR,
                response_id         VARCHAR,
                provider_request_id VARCHAR,
                response_model      VARCHAR,
                finish_reasons      VARCHAR[],
                usage_source        VARCHAR NOT NULL
                    CHECK (usage_source IN ('reported', 'estimated', 'none')),
                usage_format        VARCHAR,
                prompt_tokens       BIGINT,
                completion_tokens   BIGINT,
                total_tokens        BIGINT,
                cached_tokens       BIGINT,
                cache_write_tokens  BIGINT,
                reasoning_tokens    BIGINT,
                raw_usage           JSON,
                created_at          TIMESTAMP,
                priced_at           TIMESTAMP NOT NULL,
                started_at          TIMESTAMP,
                completed_at        TIMESTAMP,
                latency_ms          DOUBLE,
                ttft_ms             DOUBLE,
                attempts            INTEGER,
                completion          JSON,
                completion_sha256   VARCHAR
            )
            """,
            """
            CREATE TABLE rejects (
                run_id      INTEGER NOT NULL,
                file        VARCHAR NOT NULL,
                line_no     BIGINT NOT NULL,
                reason      VARCHAR NOT NULL,
                raw         VARCHAR,
                rejected_at TIMESTAMP NOT NULL
            )
            """,
        ),
    ),
    # `costlens run` sends requests itself: it keeps each response's rate-limit
    # headers (JSON object, header name -> value), the endpoint it talked to (no
    # credentials: userinfo and query string are stripped) and the budget cap.
    Migration(
        2,
        "live_runs",
        (
            "ALTER TABLE results ADD COLUMN rate_limits JSON",
            "ALTER TABLE runs ADD COLUMN base_url VARCHAR",
            "ALTER TABLE runs ADD COLUMN budget_usd DECIMAL(38, 15)",
        ),
    ),
    # Two changes for load speed, found by profiling a 1M-line replay:
    # - A request's parameters move to their own table, request_params, written
    #   only when the request body is known (`costlens run`, `replay --requests`).
    #   DuckDB spends about as much appending an all-NULL column as a filled
    #   one, so the 18 parameter columns cost a plain replay ~1 s per 1M lines.
    # - Text that is different on every row (ids, usage JSON, hashes, content)
    #   is stored zstd-compressed: DuckDB's default tries several codecs on each
    #   segment and picks FSST for these, which made loading ~20% slower and the
    #   file ~70% larger. A column's codec is set only at CREATE TABLE, so both
    #   tables are rebuilt (results: same columns, same order) and the data copied.
    Migration(
        3,
        "request_params_and_zstd",
        (
            """
            CREATE TABLE request_params (
                run_id            INTEGER NOT NULL,
                request_id        BIGINT NOT NULL,
                temperature       DOUBLE,
                max_tokens        BIGINT,
                stream            BOOLEAN,
                top_p             DOUBLE,
                frequency_penalty DOUBLE,
                presence_penalty  DOUBLE,
                stop              JSON,
                n                 INTEGER,
                "user"            VARCHAR,
                extra_params      JSON,
                msg_count         INTEGER,
                msg_system        INTEGER,
                msg_user          INTEGER,
                msg_assistant     INTEGER,
                msg_tool          INTEGER,
                msg_developer     INTEGER,
                messages_sha256   VARCHAR USING COMPRESSION zstd,
                messages          JSON USING COMPRESSION zstd
            )
            """,
            """
            INSERT INTO request_params
            SELECT run_id, request_id, temperature, max_tokens, stream, top_p, frequency_penalty,
                   presence_penalty, stop, n, "user", extra_params, msg_count, msg_system, msg_user,
                   msg_assistant, msg_tool, msg_developer, messages_sha256, messages
            FROM requests
            WHERE NOT (temperature IS NULL AND max_tokens IS NULL AND stream IS NULL AND top_p IS NULL
                       AND frequency_penalty IS NULL AND presence_penalty IS NULL AND stop IS NULL
                       AND n IS NULL AND "user" IS NULL AND extra_params IS NULL AND msg_count IS NULL
                       AND msg_system IS NULL AND msg_user IS NULL AND msg_assistant IS NULL
                       AND msg_tool IS NULL AND msg_developer IS NULL AND messages_sha256 IS NULL
                       AND messages IS NULL)
            """,
            """
            CREATE TABLE requests_v3 (
                run_id          INTEGER NOT NULL,
                request_id      BIGINT NOT NULL,
                custom_id       VARCHAR NOT NULL USING COMPRESSION zstd,
                line_no         BIGINT,
                requested_model VARCHAR
            )
            """,
            "INSERT INTO requests_v3 SELECT run_id, request_id, custom_id, line_no, requested_model FROM requests",
            "DROP TABLE requests",
            "ALTER TABLE requests_v3 RENAME TO requests",
            """
            CREATE TABLE results_v3 (
                run_id              INTEGER NOT NULL,
                request_id          BIGINT NOT NULL,
                source_line_no      BIGINT,
                source_format       VARCHAR NOT NULL,
                service_tier        VARCHAR NOT NULL
                    CHECK (service_tier IN ('standard', 'batch', 'flex', 'priority')),
                status              VARCHAR NOT NULL CHECK (status IN ('ok', 'error')),
                http_status         INTEGER,
                error_type          VARCHAR,
                error_message       VARCHAR,
                response_id         VARCHAR USING COMPRESSION zstd,
                provider_request_id VARCHAR USING COMPRESSION zstd,
                response_model      VARCHAR,
                finish_reasons      VARCHAR[],
                usage_source        VARCHAR NOT NULL
                    CHECK (usage_source IN ('reported', 'estimated', 'none')),
                usage_format        VARCHAR,
                prompt_tokens       BIGINT,
                completion_tokens   BIGINT,
                total_tokens        BIGINT,
                cached_tokens       BIGINT,
                cache_write_tokens  BIGINT,
                reasoning_tokens    BIGINT,
                raw_usage           JSON USING COMPRESSION zstd,
                created_at          TIMESTAMP,
                priced_at           TIMESTAMP NOT NULL,
                started_at          TIMESTAMP,
                completed_at        TIMESTAMP,
                latency_ms          DOUBLE,
                ttft_ms             DOUBLE,
                attempts            INTEGER,
                completion          JSON USING COMPRESSION zstd,
                completion_sha256   VARCHAR USING COMPRESSION zstd,
                rate_limits         JSON USING COMPRESSION zstd
            )
            """,
            "INSERT INTO results_v3 SELECT * FROM results",
            "DROP TABLE results",
            "ALTER TABLE results_v3 RENAME TO results",
        ),
    ),
    # What only some results have moves to result_details: the timing, attempts
    # and rate limits of a live request (`costlens run`), and completion text and
    # its sha256 (`run`, `replay --store-content`). A plain replay has none of
    # these, and appending its eight all-NULL columns cost about 0.4 s of CPU per
    # 1M lines. A result has at most one details row, joined on
    # (run_id, request_id) by the cost view.
    Migration(
        4,
        "result_details",
        (
            """
            CREATE TABLE result_details (
                run_id              INTEGER NOT NULL,
                request_id          BIGINT NOT NULL,
                started_at          TIMESTAMP,
                completed_at        TIMESTAMP,
                latency_ms          DOUBLE,
                ttft_ms             DOUBLE,
                attempts            INTEGER,
                completion          JSON USING COMPRESSION zstd,
                completion_sha256   VARCHAR USING COMPRESSION zstd,
                rate_limits         JSON USING COMPRESSION zstd
            )
            """,
            """
            INSERT INTO result_details
            SELECT run_id, request_id, started_at, completed_at, latency_ms, ttft_ms, attempts, completion,
                   completion_sha256, rate_limits
            FROM results
            WHERE NOT (started_at IS NULL AND completed_at IS NULL AND latency_ms IS NULL AND ttft_ms IS NULL
                       AND attempts IS NULL AND completion IS NULL AND completion_sha256 IS NULL
                       AND rate_limits IS NULL)
            """,
            """
            CREATE TABLE results_v4 (
                run_id              INTEGER NOT NULL,
                request_id          BIGINT NOT NULL,
                source_line_no      BIGINT,
                source_format       VARCHAR NOT NULL,
                service_tier        VARCHAR NOT NULL
                    CHECK (service_tier IN ('standard', 'batch', 'flex', 'priority')),
                status              VARCHAR NOT NULL CHECK (status IN ('ok', 'error')),
                http_status         INTEGER,
                error_type          VARCHAR,
                error_message       VARCHAR,
                response_id         VARCHAR USING COMPRESSION zstd,
                provider_request_id VARCHAR USING COMPRESSION zstd,
                response_model      VARCHAR,
                finish_reasons      VARCHAR[],
                usage_source        VARCHAR NOT NULL
                    CHECK (usage_source IN ('reported', 'estimated', 'none')),
                usage_format        VARCHAR,
                prompt_tokens       BIGINT,
                completion_tokens   BIGINT,
                total_tokens        BIGINT,
                cached_tokens       BIGINT,
                cache_write_tokens  BIGINT,
                reasoning_tokens    BIGINT,
                raw_usage           JSON USING COMPRESSION zstd,
                created_at          TIMESTAMP,
                priced_at           TIMESTAMP NOT NULL
            )
            """,
            """
            INSERT INTO results_v4
            SELECT run_id, request_id, source_line_no, source_format, service_tier, status, http_status,
                   error_type, error_message, response_id, provider_request_id, response_model, finish_reasons,
                   usage_source, usage_format, prompt_tokens, completion_tokens, total_tokens, cached_tokens,
                   cache_write_tokens, reasoning_tokens, raw_usage, created_at, priced_at
            FROM results
            """,
            "DROP TABLE results",
            "ALTER TABLE results_v4 RENAME TO results",
        ),
    ),
    Migration(
        5,
        "cache_write_1h_tokens",
        (
            # Anthropic splits cache writes by lifetime (usage.cache_creation): 1-hour writes cost
            # more than 5-minute ones. cache_write_tokens stays the total of both; this is the
            # 1-hour part of it (NULL = not reported), so each token is still billed exactly once.
            "ALTER TABLE results ADD COLUMN cache_write_1h_tokens BIGINT",
        ),
    ),
    Migration(
        6,
        "simulated_runs",
        (
            # A run whose answers came from a simulator (costlens serve-sim says so in every answer:
            # header x-costlens-simulated). Readers leave such runs out unless asked
            # (--include-simulated). Runs logged before this migration stay FALSE: nothing stored
            # then tells a simulated answer from a real one.
            "ALTER TABLE runs ADD COLUMN simulated BOOLEAN DEFAULT FALSE",
            "UPDATE runs SET simulated = FALSE WHERE simulated IS NULL",
        ),
    ),
    Migration(
        7,
        "reported_cost",
        (
            # The provider's (or gateway's) own figure for the request, as reported, beside the cost
            # costlens computes: OpenRouter's usage.cost, LiteLLM's x-litellm-response-cost header,
            # any usage.cost. Exact decimal from its text; NULL = nothing reported. The source says
            # where it came from ('usage.cost', 'x-litellm-response-cost').
            "ALTER TABLE results ADD COLUMN reported_cost_usd DECIMAL(38, 15)",
            "ALTER TABLE results ADD COLUMN reported_cost_source VARCHAR",
        ),
    ),
    # `costlens reconcile`: each comparison of provider exports (usage and cost pages, spend
    # logs) with the selected requests, kept so the report can show the last one and an auditor
    # can see what was compared with what. One row per reconciliation (when, the export kinds,
    # tolerance, selection as JSON, command line, version, price sheets' sha256, outcome); its
    # input files by name and sha256 (the files are the record of their content); and its cells:
    # UTC day x model x tier x figure, both sides and the difference (costlens - provider), the
    # verdict and the likely cause. Figures are DECIMAL(38,15): money exactly, counts too. Ids are
    # given by the writer (max + 1, under DuckDB's one-writer lock), so no sequence is needed.
    Migration(
        8,
        "reconciliations",
        (
            """
            CREATE TABLE reconciliations (
                reconciliation_id INTEGER PRIMARY KEY,
                created_at        TIMESTAMP NOT NULL,
                kinds             VARCHAR NOT NULL,
                tolerance         VARCHAR NOT NULL,
                selection         JSON NOT NULL,
                command_line      VARCHAR,
                costlens_version  VARCHAR NOT NULL,
                pricing_sha256    VARCHAR,
                status            VARCHAR NOT NULL CHECK (status IN ('ok', 'differences')),
                period_start      DATE,
                period_end        DATE,
                cells             BIGINT NOT NULL,
                cells_differing   BIGINT NOT NULL,
                not_compared      JSON
            )
            """,
            """
            CREATE TABLE reconciliation_inputs (
                reconciliation_id INTEGER NOT NULL,
                file_no           INTEGER NOT NULL,
                file              VARCHAR NOT NULL,
                sha256            VARCHAR NOT NULL,
                kind              VARCHAR NOT NULL,
                detected          BOOLEAN NOT NULL,
                buckets           BIGINT NOT NULL,
                results           BIGINT NOT NULL,
                first_day         DATE,
                last_day          DATE
            )
            """,
            """
            CREATE TABLE reconciliation_cells (
                reconciliation_id INTEGER NOT NULL,
                source            VARCHAR NOT NULL,
                day               DATE NOT NULL,
                model             VARCHAR,
                tier              VARCHAR,
                measure           VARCHAR NOT NULL CHECK (measure IN ('requests', 'input_tokens', 'cached_tokens',
                                      'cache_write_tokens', 'output_tokens', 'cost_usd')),
                provider_value    DECIMAL(38, 15),
                costlens_value    DECIMAL(38, 15),
                difference        DECIMAL(38, 15) NOT NULL,
                verdict           VARCHAR NOT NULL
                    CHECK (verdict IN ('ok', 'differs', 'missing in costlens', 'missing at provider')),
                cause             VARCHAR,
                evidence          VARCHAR
            )
            """,
        ),
    ),
    # A run id that no other machine's database repeats: run_id is 1, 2, 3... in every file, so runs
    # published from many machines to one lake (costlens publish) are told apart by this UUID (v4,
    # random). Runs logged before this migration get one each now; the CLI still takes the short
    # local number (or the UUID, or a unique prefix of it). NOT NULL comes in migration 10: DuckDB
    # cannot add the constraint in the transaction that filled the column.
    Migration(9, "run_uuid", ("ALTER TABLE runs ADD COLUMN run_uuid UUID DEFAULT gen_random_uuid()",)),
    Migration(10, "run_uuid_not_null", ("ALTER TABLE runs ALTER COLUMN run_uuid SET NOT NULL",)),
)
