"""Replay recorded results into the store without sending anything.

Reads every format of ``costlens.ingest.formats`` (README "Input formats"), auto-detected per
line: OpenAI/vLLM batch output, Anthropic batch results, plain chat.completion objects, Gemini
API and Vertex AI batch output, Bedrock batch output.

Shape: the file is streamed in chunks (``costlens.ingest.jsonl``); DuckDB parses each chunk with
one statement built here from the registered formats (``stage_sql``): one ``from_json`` into the
merged shape of every format, a detection CASE in the formats' fixed order, each normalised
column as a CASE over the formats' SQL for it, usage turned into disjoint token buckets by its
dialect (``formats.usage``), and every rejection reason, all in the same statement. A format's
plainest lines (nearly all of a real batch file) first take its cheaper fast path, which gives the
same rows; the full statement stages the rest (``ChunkStager``). Accepted rows go to
``requests``/``results`` and rejected ones to ``rejects`` with bulk INSERT … SELECT — never a
Python loop over rows. One file is one run and one transaction: a replay lands whole or not at
all, and a file already replayed into the DB (same sha256) is refused unless forced. A job's
totals file (Bedrock's manifest) is then checked against the runs it covers (``formats.totals``).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import queue
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple

import duckdb
import pyarrow as pa

from costlens import __version__
from costlens.errors import AlreadyReplayedError, InputError, StoreError
from costlens.ingest.formats import FORMATS, FastPath, JobTotals, ResultFormat
from costlens.ingest.formats.base import FIELDS, STAGED_COLUMNS, merge_shapes
from costlens.ingest.formats.totals import TotalsCheck, check_totals, read_totals
from costlens.ingest.formats.usage import (
    BUCKETS,
    DIALECTS,
    REPORTED_COST_COLUMNS,
    REPORTED_COST_REASON,
    USAGE_SHAPE,
)
from costlens.ingest.jsonl import DEFAULT_CHUNK_BYTES, FileDigest, LineChunk, read_line_chunks
from costlens.ingest.rejects import RAW_LIMIT, Reject, explain_unparsed
from costlens.ingest.requests_file import RequestFile, stage_request_file
from costlens.store.db import utcnow
from costlens.store.macros import install_macros, scalar

__all__ = ["ReplayOptions", "ReplayOutcome", "ReplayResult", "TierMode", "replay_files"]

TierMode = Literal["auto", "standard", "batch", "flex", "priority"]

# --- the staging statement, assembled from the formats --------------------------------------------


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _case(by_key: Mapping[str, str | None], sql_type: str, *, on: str = "fmt", cast: bool = False) -> str:
    """``CASE`` over ``on`` (the format, or the usage dialect) of each one's SQL for a column.

    Keys sharing the same SQL share a branch; NULL (of ``sql_type``) where a key has none. The
    CASE is cast to ``sql_type`` only when asked (sums of counts): every cast costs planning, and
    tests/test_formats_family.py holds the staged columns to their types.
    """
    groups: dict[str, list[str]] = {}
    for key, expr in by_key.items():
        if expr is not None:
            groups.setdefault(expr, []).append(key)
    if not groups:
        return f"CAST(NULL AS {sql_type})"
    whens = "\n".join(
        f"            WHEN {on} IN ({', '.join(map(_sql_text, keys))}) THEN {expr}"
        for expr, keys in groups.items()
    )
    case = f"CASE\n{whens}\n        END"
    return f"CAST({case} AS {sql_type})" if cast else case


def _by_format(pick: str, formats: Sequence[ResultFormat]) -> dict[str, str | None]:
    return {f.name: getattr(f, pick) for f in formats}


def _unrecognised(formats: Sequence[ResultFormat]) -> str:
    said = [f.expected for f in formats if f.expected]
    listed = ", ".join(said[:-1]) + " or " + said[-1] if len(said) > 1 else said[0]
    return f"unrecognised line: expected {listed}"


def _count_reasons() -> str:
    """Per dialect, its token counts that are negative or not integers.

    One lambda over the dialect's list of (name, value): the macro written out once per count
    made planning the statement cost more than running it.
    """
    counts = {
        d.name: "[" + ", ".join(f"{{'n': {_sql_text(name)}, 'v': {expr}}}" for name, expr in d.counts) + "]"
        for d in DIALECTS
    }
    listed = _case(counts, "STRUCT(n VARCHAR, v JSON)[]", on="usage_format", cast=True)
    return (
        f"CASE WHEN u IS NOT NULL THEN nullif(array_to_string(list_filter(list_transform({listed}, "
        "lambda c: cl_count_error(c.n, c.v)), lambda r: r IS NOT NULL), '; '), '') END"
    )


def _usage_reasons() -> str:
    """Per dialect: the counts it lacks, and its consistency checks."""
    reasons = {
        d.name: "nullif(concat_ws('; ', "
        + ", ".join([f"CASE WHEN {d.lacks} THEN {_sql_text(d.lacks_reason)} END", *d.checks])
        + "), '')"
        for d in DIALECTS
    }
    return f"CASE WHEN u IS NOT NULL THEN {_case(reasons, 'VARCHAR', on='usage_format')} END"


def _format_checks(formats: Sequence[ResultFormat]) -> str:
    checks = {
        f.name: f"nullif(concat_ws('; ', {', '.join(f.checks)}), '')" if f.checks else None for f in formats
    }
    return _case(checks, "VARCHAR")


def stage_sql(*, store_content: bool, formats: Sequence[ResultFormat] = FORMATS) -> str:
    """The full staging statement over ``cl_chunk(line_no, line)``; takes ``$tier``.

    Each line gets either clean values or a reason, in the columns of ``STAGED_COLUMNS``. Without
    --store-content the completion text is not even parsed out: it is the largest part of a line,
    and the source file keeps it anyway.
    """
    shapes = [f.shape for f in formats]
    if store_content:
        shapes += [f.content_shape for f in formats]
    line_shape = json.dumps(merge_shapes(*shapes))
    error_shape = json.dumps(merge_shapes(*(f.error_shape for f in formats)))
    detect = "\n".join(f"            WHEN {f.detect} THEN {_sql_text(f.name)}" for f in formats)
    columns = []
    for name, sql_type in FIELDS.items():
        if name == "completion" and not store_content:
            columns.append(f"CAST(NULL AS {sql_type}) AS completion")
            continue
        columns.append(f"{_case({f.name: f.fields.get(name) for f in formats}, sql_type)} AS {name}")
    columns.append(f"{_case({f.name: _sql_text(f.id_name) for f in formats}, 'VARCHAR')} AS id_name")
    columns.append(f"{_case({f.name: _sql_text(f.usage_label) for f in formats}, 'VARCHAR')} AS usage_label")
    fields = ",\n        ".join(columns)
    dialect = _case(_by_format("usage_dialect", formats), "VARCHAR")
    buckets = ",\n        ".join(
        f"{_case({d.name: d.buckets.get(b) for d in DIALECTS}, 'BIGINT', on='usage_format', cast=True)} AS {b}"
        for b in BUCKETS
    )
    total = _case({d.name: d.total for d in DIALECTS}, "BIGINT", on="usage_format", cast=True)
    outcome = ",\n        ".join(
        f"{_case(_by_format(col, formats), sql_type)} AS {col}"
        for col, sql_type in (("ok", "BOOLEAN"), ("error_type", "VARCHAR"), ("error_message", "VARCHAR"))
    )
    batch = ", ".join(_sql_text(f.name) for f in formats if f.batch) or "NULL"
    return f"""
WITH parsed AS (
    SELECT line_no, line, try(from_json(line, {_sql_text(line_shape)})) AS j
    FROM cl_chunk WHERE NOT cl_blank(line)
),
detected AS (
    SELECT *,
        CASE
            WHEN j IS NULL THEN NULL
{detect}
        END AS fmt
    FROM parsed
),
fields AS (
    SELECT *,
        {fields}
    FROM detected
),
parsed_usage AS (
    SELECT *,
        coalesce(cl_str(id_json), id_default) AS custom_id,
        CASE WHEN json_type(usage_json) = 'OBJECT' THEN from_json(usage_json, {_sql_text(json.dumps(USAGE_SHAPE))}) END
            AS u,
        CASE WHEN json_type(error_json) = 'OBJECT' THEN from_json(error_json, {_sql_text(error_shape)}) END AS e
    FROM fields
),
dialected AS (
    SELECT *, CASE WHEN usage_json IS NOT NULL THEN {dialect} END AS usage_format
    FROM parsed_usage
),
normalised AS (
    SELECT *,
        {buckets}
    FROM dialected
),
costed AS (
    SELECT *,{REPORTED_COST_COLUMNS}
    FROM normalised
),
totalled AS (
    SELECT *,
        {total} AS total_tokens
    FROM costed
),
outcome AS (
    SELECT *,
        {outcome}
    FROM totalled
),
-- Each kind of reason in a projection of its own: DuckDB plans several small projections far
-- faster than one holding every reason.
counted AS (
    SELECT *, {_count_reasons()} AS count_reason
    FROM outcome
),
usage_judged AS (
    SELECT *, {_usage_reasons()} AS usage_reason
    FROM counted
),
cost_judged AS (
    SELECT *, {REPORTED_COST_REASON} AS cost_reason
    FROM usage_judged
),
format_judged AS (
    SELECT *, {_format_checks(formats)} AS format_reason
    FROM cost_judged
),
judged AS (
    SELECT *,
        CASE
            WHEN j IS NULL THEN 'invalid JSON'
            WHEN fmt IS NULL THEN {_sql_text(_unrecognised(formats))}
            ELSE nullif(concat_ws('; ',
                CASE WHEN id_json IS NOT NULL AND cl_str(id_json) IS NULL THEN id_name || ' must be a string'
                     WHEN custom_id IS NULL THEN 'missing ' || id_name END,
                CASE WHEN usage_json IS NOT NULL AND json_type(usage_json) <> 'OBJECT'
                     THEN usage_label || ' is not an object' END,
                count_reason, usage_reason, cost_reason, format_reason
            ), '')
        END AS reason
    FROM format_judged
)
SELECT
    line_no, reason, fmt, custom_id, response_id, provider_request_id, response_model,
    CASE WHEN ok THEN 'ok' ELSE 'error' END AS status,
    http_status,
    CASE WHEN ok THEN NULL ELSE error_type END AS error_type,
    CASE WHEN ok THEN NULL ELSE error_message END AS error_message,
    finish_reasons,
    CASE WHEN usage_json IS NOT NULL THEN 'reported' ELSE 'none' END AS usage_source,
    usage_format,
    prompt_tokens, completion_tokens, total_tokens,
    cached_tokens, cache_write_tokens, cache_write_1h_tokens, reasoning_tokens,
    usage_json AS raw_usage,
    created_at,
    CASE
        WHEN $tier <> 'auto' THEN $tier
        WHEN fmt IN ({batch}) THEN 'batch'
        WHEN body_tier IN ('flex', 'priority') THEN body_tier
        ELSE 'standard'
    END AS service_tier,
    CASE WHEN u.cost IS NOT NULL THEN cost_value END AS reported_cost_usd,
    CASE WHEN u.cost IS NOT NULL THEN usage_label || '.cost' END AS reported_cost_source,
    completion
FROM judged
"""


# Detection alone, for a sample of a chunk's lines: which format's fast path to try.
def _detect_sql(formats: Sequence[ResultFormat] = FORMATS) -> str:
    line_shape = json.dumps(merge_shapes(*(f.shape for f in formats)))
    detect = "\n".join(f"        WHEN {f.detect} THEN {_sql_text(f.name)}" for f in formats)
    return f"""
SELECT fmt, count(*) AS n FROM (
    SELECT CASE WHEN j IS NULL THEN NULL
{detect}
    END AS fmt
    FROM (SELECT try(from_json(line, {_sql_text(line_shape)})) AS j
          FROM (SELECT line FROM cl_chunk WHERE NOT cl_blank(line) LIMIT {_SNIFF_LINES}))
) GROUP BY fmt ORDER BY n DESC, fmt LIMIT 1
"""


# Lines of a worker's first chunk whose formats choose the fast path it tries.
_SNIFF_LINES = 256


def _fast_sql(fast: FastPath, *, store_content: bool) -> str:
    shape = merge_shapes(fast.shape, fast.content_shape) if store_content else fast.shape
    completion = f",\n    {fast.completion} AS completion" if store_content else ""
    return fast.sql.replace("__LINE_SHAPE__", json.dumps(shape)).replace("__COMPLETION__", completion)


def fast_filled_sql(fast: FastPath, *, store_content: bool) -> str:
    """A fast-path chunk (registered as ``cl_stage``) with the full statement's columns; takes ``$tier``.

    What every fast-path row has in common is not staged (the staged chunks cross threads as
    Arrow, and each column costs on both sides): this fills it in when the rows are inserted.
    """
    columns = []
    for name in STAGED_COLUMNS:
        if name == "service_tier":  # a fast path stages batch lines only (ResultFormat)
            columns.append("CASE WHEN $tier <> 'auto' THEN $tier ELSE 'batch' END AS service_tier")
        elif name == "completion":
            columns.append("completion" if store_content else "CAST(NULL AS JSON) AS completion")
        elif name in fast.constants:
            columns.append(f"{fast.constants[name]} AS {name}")
        else:
            columns.append(name)
    return "SELECT " + ",\n    ".join(columns) + "\nFROM cl_stage"


@dataclass(frozen=True)
class _Statements:
    full: str
    detect: str
    # Format name -> the fast path that stages its lines, and that path's SQL (plain, and with try()).
    fast: Mapping[str, FastPath]
    fast_sql: Mapping[int, tuple[str, str]]


@functools.cache
def _statements(store_content: bool) -> _Statements:
    fast = {f.name: f.fast for f in FORMATS if f.fast is not None}
    sql = {}
    for path in fast.values():
        tried = _fast_sql(path, store_content=store_content)
        # Without try() the parse is cheaper; a chunk holding a line that is not JSON at all
        # makes it fail, and that chunk is parsed again with try().
        sql[id(path)] = (tried.replace("try(from_json(", "(from_json(", 1), tried)
    return _Statements(stage_sql(store_content=store_content), _detect_sql(), fast, sql)


# Lines the fast path leaves over are staged by the full statement this many at a time.
_POOL_ROWS = 50_000


# After the whole file is in: a custom_id seen on an earlier line makes every
# later line with it a duplicate. One hash aggregate over the run is far cheaper
# than checking each chunk against everything before it.
_DUPLICATES = """
WITH dup AS (
    SELECT custom_id, min(request_id) AS first_line
    FROM requests WHERE run_id = $run_id
    GROUP BY custom_id HAVING count(*) > 1
)
SELECT q.request_id, q.custom_id, dup.first_line
FROM requests q JOIN dup ON dup.custom_id = q.custom_id
WHERE q.run_id = $run_id AND q.request_id <> dup.first_line
ORDER BY q.request_id
"""

_INSERT_REQUESTS = """
INSERT INTO requests (run_id, request_id, custom_id, line_no, requested_model)
SELECT $run_id, line_no, custom_id, line_no, $model FROM cl_stage WHERE reason IS NULL
"""

# With --requests: the line numbers and models of the batch input file, and
# each matched request's parameters.
_INSERT_REQUESTS_JOINED = """
INSERT INTO requests (run_id, request_id, custom_id, line_no, requested_model)
SELECT $run_id, s.line_no, s.custom_id, coalesce(q.line_no, s.line_no), coalesce(q.model, $model)
FROM cl_stage s LEFT JOIN cl_req_input q ON q.custom_id = s.custom_id
WHERE s.reason IS NULL
"""
_INSERT_PARAMS = """
INSERT INTO request_params (
    run_id, request_id, temperature, max_tokens, stream, top_p, frequency_penalty, presence_penalty,
    stop, n, "user", extra_params, msg_count, msg_system, msg_user, msg_assistant, msg_tool,
    msg_developer, messages_sha256, messages)
SELECT $run_id, s.line_no, q.temperature, q.max_tokens, q.stream, q.top_p, q.frequency_penalty,
       q.presence_penalty, q.stop, q.n, q."user", q.extra_params, q.msg_count, q.msg_system, q.msg_user,
       q.msg_assistant, q.msg_tool, q.msg_developer, q.messages_sha256, q.messages
FROM cl_stage s JOIN cl_req_input q ON q.custom_id = s.custom_id
WHERE s.reason IS NULL
"""

_INSERT_RESULTS = """
INSERT INTO results (
    run_id, request_id, source_line_no, source_format, service_tier, status, http_status, error_type,
    error_message, response_id, provider_request_id, response_model, finish_reasons, usage_source,
    usage_format, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens,
    cache_write_1h_tokens, reasoning_tokens, raw_usage, created_at, priced_at, reported_cost_usd,
    reported_cost_source)
SELECT $run_id, line_no, line_no, fmt, service_tier, status, http_status, error_type, error_message,
       response_id, provider_request_id, response_model, finish_reasons, usage_source, usage_format,
       prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens,
       reasoning_tokens, raw_usage, created_at, coalesce(created_at, $now), reported_cost_usd,
       reported_cost_source
FROM cl_stage WHERE reason IS NULL
"""
# With --store-content: the completion text and its sha256.
_INSERT_DETAILS = """
INSERT INTO result_details (run_id, request_id, completion, completion_sha256)
SELECT $run_id, line_no, completion, sha256(completion)
FROM cl_stage WHERE reason IS NULL AND completion IS NOT NULL
"""


@dataclass(frozen=True, kw_only=True)
class ReplayOptions:
    """What to replay and how; mirrors ``costlens replay``'s options."""

    files: Sequence[Path]
    requests_file: Path | None = None
    # Requested model for lines whose request is not in requests_file (e.g. an
    # expired line carries no model; without this it is "(unknown model)").
    model: str | None = None
    tier: TierMode = "auto"
    run_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    force: bool = False
    # Copy completion text (and its sha256) into the DB; off by default for a
    # replay, whose source file already is the record of the content.
    store_content: bool = False
    command_line: str | None = None
    pricing_sha256: str | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    # The time (naive UTC) of lines that carry none of their own (Anthropic batch results, expired
    # lines); None = the time of the replay.
    at: datetime | None = None
    # A job's totals file (Bedrock's manifest.json.out) to check every file against; None = look
    # for one next to each file of a format that has one.
    manifest: Path | None = None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """One replayed file: read = stored + rejected, always."""

    run_id: int
    file: str
    sha256: str
    lines_read: int
    stored: int
    rejected: int
    failed: int
    formats: Mapping[str, int]
    rejects: tuple[Reject, ...]


def _insert_rejects(conn: duckdb.DuckDBPyConnection, run_id: int, rejects: Sequence[Reject]) -> None:
    if not rejects:
        return
    now = utcnow()
    conn.executemany(
        "INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?)",
        [(run_id, r.file, r.line_no, r.reason, r.raw, now) for r in rejects],
    )


class ChunkStager:
    """Stages chunks of (line_no, line): a format's fast path first, the full statement for the rest.

    The formats of the first few hundred lines of the first chunk choose the fast path to try
    (that of the most common format, if it has one). Lines the fast path does not take are
    pooled across chunks and staged by the full statement a few tens of thousands at a time:
    planning that statement costs more than running it on the ~1% of lines a typical chunk
    leaves over. ``fast=False`` runs only the full statement (the reference the fast paths are
    tested against). After a chunk where fewer than half the lines took the fast path it is not
    tried again for this file, so a mixed file pays for it once at most.
    """

    def __init__(
        self,
        cursor: duckdb.DuckDBPyConnection,
        *,
        tier: str,
        store_content: bool,
        fast: bool = True,
        pool_rows: int = _POOL_ROWS,
    ) -> None:
        self._cursor = cursor
        self._params = {"tier": tier}
        self._statements = _statements(store_content)
        self.fast = fast
        # Chosen on the first chunk (None: not yet, or none fits).
        self.fast_path: FastPath | None = None
        self._sniffed = not fast
        self._pool_rows = pool_rows
        self._pool: list[pa.Table] = []
        self._pooled = 0

    def stage(self, chunk: pa.Table) -> list[Staged]:
        """Staged rows, with rejected lines as (line_no, reason, line), of this and pooled chunks."""
        out: list[Staged] = []
        rest = chunk
        if not self._sniffed:
            self._sniffed = True
            self.fast_path = self._sniff(chunk)
            self.fast = self.fast_path is not None
        if self.fast and self.fast_path is not None:
            done, rest = self._try_fast(self.fast_path, chunk)
            if done.num_rows:
                out.append(Staged(done, [], fast=self.fast_path))
        if rest.num_rows:
            self._pool.append(rest)
            self._pooled += rest.num_rows
        if self._pooled >= self._pool_rows:
            out.append(self._full())
        return out

    def finish(self, *others: ChunkStager) -> list[Staged]:
        """Stage whatever is still pooled, here and in ``others``; call once after the last chunk.

        One statement for the left-overs of every worker: each statement costs its planning.
        """
        for other in others:
            self._pool += other._pool
            self._pooled += other._pooled
            other._pool, other._pooled = [], 0
        return [self._full()] if self._pooled else []

    def _sniff(self, chunk: pa.Table) -> FastPath | None:
        cursor = self._cursor
        cursor.register("cl_chunk", chunk)
        try:
            rows = cursor.execute(self._statements.detect).fetchall()
        finally:
            cursor.unregister("cl_chunk")
        return self._statements.fast.get(rows[0][0]) if rows and rows[0][0] else None

    def _try_fast(self, path: FastPath, chunk: pa.Table) -> tuple[pa.Table, pa.Table]:
        cursor = self._cursor
        plain_sql, try_sql = self._statements.fast_sql[id(path)]
        cursor.register("cl_chunk", chunk)
        try:
            try:
                tried = cursor.sql(plain_sql).to_arrow_table()
            except duckdb.InvalidInputException:
                tried = cursor.sql(try_sql).to_arrow_table()
        finally:
            cursor.unregister("cl_chunk")
        # Rows not taken keep a reason, so the loaders skip them (they are
        # staged again by the full statement): no copy of the staged chunk.
        import pyarrow.compute as pc  # on first use, in a worker: ~80 ms off the command's start-up

        took = pc.cast(tried.column("fast"), pa.bool_())  # arrow.bool8 under lossless conversion
        done = tried.drop_columns(["fast"])
        taken = pc.sum(took).as_py() or 0
        if taken == chunk.num_rows:
            return done, chunk.slice(0, 0)
        if taken * 2 < chunk.num_rows:
            self.fast = False
        if taken == 0:
            done = done.slice(0, 0)
        left = tried.column("line_no").filter(pc.invert(took))
        return done, chunk.filter(pc.is_in(chunk.column("line_no"), value_set=left))

    def _full(self) -> Staged:
        cursor = self._cursor
        pooled = pa.concat_tables(self._pool)
        self._pool, self._pooled = [], 0
        cursor.register("cl_chunk", pooled)
        try:
            table = cursor.sql(self._statements.full, params=self._params).to_arrow_table()
            cursor.register("cl_staged", table)
            try:
                bad = cursor.execute(
                    "SELECT s.line_no, s.reason, c.line FROM cl_staged s JOIN cl_chunk c USING (line_no) "
                    "WHERE s.reason IS NOT NULL ORDER BY s.line_no"
                ).fetchall()
            finally:
                cursor.unregister("cl_staged")
        finally:
            cursor.unregister("cl_chunk")
        return Staged(table, bad, fast=None)


class Staged(NamedTuple):
    """Staged rows of some lines, and those rejected as (line_no, reason, line).

    Rows of a fast path (``fast``) hold only the columns it varies; ``fast_filled_sql`` adds the
    rest.
    """

    table: pa.Table
    rejected: list[tuple[int, str, str]]
    fast: FastPath | None


@dataclass(slots=True)
class _StagedChunk:
    table: pa.Table | None
    rejects: list[Reject]
    fast: FastPath | None = None


# Parsing threads, and chunks read ahead of the one being inserted.
_WORKERS = 2
_READ_AHEAD = 3


def _staged_chunks(
    conn: duckdb.DuckDBPyConnection, path: Path, digest: FileDigest, options: ReplayOptions
) -> Iterator[_StagedChunk]:
    """Read and parse chunks on worker threads, hand them back in file order.

    Each worker has its own cursor and ``ChunkStager``, and reads the next chunk
    (hashing, line splitting) when its turn comes. DuckDB and the hashing release
    the GIL, so while this thread inserts chunk k the workers read and parse the
    next ones. Meanwhile DuckDB is held to one thread per statement (restored
    after): its own worker threads on top of these only spin for a share of the
    two cores. At most ``_READ_AHEAD`` chunks are in flight, so memory stays bounded.
    """
    cursors: list[duckdb.DuckDBPyConnection] = []
    stagers: list[ChunkStager] = []
    free: queue.SimpleQueue[ChunkStager] = queue.SimpleQueue()
    for _ in range(_WORKERS):
        cursor = conn.cursor()
        cursors.append(cursor)
        # JSON columns (usage, completion) cross to the main connection as
        # arrow.json, so inserting them does not parse and validate them again.
        cursor.execute("SET SESSION arrow_lossless_conversion = true")
        install_macros(cursor)
        stagers.append(ChunkStager(cursor, tier=options.tier, store_content=options.store_content))
        free.put(stagers[-1])

    def stage(chunk: LineChunk) -> list[_StagedChunk]:
        stager = free.get()
        try:
            return staged_chunks(stager.stage(chunk.table), chunk.bad_utf8)
        finally:
            free.put(stager)

    def finish(stager: ChunkStager, *others: ChunkStager) -> list[_StagedChunk]:
        return staged_chunks(stager.finish(*others), [])

    def staged_chunks(staged: list[Staged], bad_utf8: list[tuple[int, str]]) -> list[_StagedChunk]:
        rejects = [Reject(str(path), n, reason, None) for n, reason in bad_utf8]
        out: list[_StagedChunk] = []
        for table, bad, fast in staged:
            rejects.extend(explain_unparsed(str(path), n, reason, line) for n, reason, line in bad)
            out.append(_StagedChunk(table, rejects, fast))
            rejects = []
        if rejects:
            out.append(_StagedChunk(None, rejects))
        return out

    # The workers also read: each takes the next chunk in turn (tickets keep
    # file order), so this thread only inserts.
    reader = read_line_chunks(path, digest, chunk_bytes=options.chunk_bytes, in_use=_WORKERS + 1)
    turn = threading.Condition()
    next_ticket = 0

    def read_and_stage(ticket: int) -> list[_StagedChunk] | None:
        nonlocal next_ticket
        with turn:
            turn.wait_for(lambda: next_ticket == ticket)
            try:
                chunk = next(reader, None)
            finally:
                next_ticket += 1
                turn.notify_all()
        return None if chunk is None else stage(chunk)

    threads = int(scalar(conn, "SELECT current_setting('threads')"))
    # A global setting, set on a cursor of its own: if an insert fails, this
    # connection's transaction is aborted and would refuse to restore it.
    with conn.cursor() as setter:
        setter.execute("SET threads = 1")
    worker = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="costlens-replay-parse")
    pending: deque[Future[list[_StagedChunk] | None]] = deque()
    try:
        tickets = itertools.count()
        pending.extend(worker.submit(read_and_stage, next(tickets)) for _ in range(_READ_AHEAD))
        while (staged := pending.popleft().result()) is not None:
            pending.append(worker.submit(read_and_stage, next(tickets)))
            yield from staged
        while pending:  # past the end: these find no chunk
            pending.popleft().result()
        # The stagers' pooled left-overs, together, once no chunk is being staged.
        yield from worker.submit(finish, stagers[0], *stagers[1:]).result()
    finally:
        for future in pending:
            future.cancel()
        worker.shutdown(wait=True)
        for cursor in cursors:
            cursor.close()
        with conn.cursor() as setter:
            setter.execute(f"SET threads = {threads}")


def _remove_duplicates(conn: duckdb.DuckDBPyConnection, run_id: int, path: Path) -> list[Reject]:
    """Move every repeat of a custom_id (after its first line) from requests/results to rejects."""
    duplicates = conn.execute(_DUPLICATES, {"run_id": run_id}).fetchall()
    if not duplicates:
        return []
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE cl_dup_ids AS SELECT unnest(?::BIGINT[]) AS request_id",
        [[d[0] for d in duplicates]],
    )
    for table in ("requests", "request_params", "results", "result_details"):
        conn.execute(
            f"DELETE FROM {table} WHERE run_id = ? AND request_id IN (SELECT request_id FROM cl_dup_ids)",
            [run_id],
        )
    raw = _read_lines(path, {d[0] for d in duplicates})
    return [
        Reject(
            str(path), line_no, f"duplicate custom_id '{custom_id}' (first at line {first})", raw.get(line_no)
        )
        for line_no, custom_id, first in duplicates
    ]


def _read_lines(path: Path, wanted: set[int]) -> dict[int, str]:
    """The raw text of a few lines (for the rejects table), by number."""
    found: dict[int, str] = {}
    last = max(wanted)
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no in wanted:
                found[line_no] = raw.decode("utf-8", "replace").rstrip("\r\n")[:RAW_LIMIT]
            if line_no >= last:
                break
    return found


def _start_run(
    conn: duckdb.DuckDBPyConnection, path: Path, options: ReplayOptions, request_file: RequestFile | None
) -> int:
    run_id: int = scalar(
        conn,
        """INSERT INTO runs (name, kind, status, source_file, requests_file, requests_sha256, tier_mode, tags,
                             command_line, costlens_version, pricing_sha256, started_at)
           VALUES (?, 'replay', 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id""",
        [
            options.run_name,
            str(path),
            request_file.path if request_file else None,
            request_file.sha256 if request_file else None,
            options.tier,
            json.dumps(dict(sorted(options.tags.items()))),
            options.command_line,
            __version__,
            options.pricing_sha256,
            utcnow(),
        ],
    )
    return run_id


def _insert_staged(
    conn: duckdb.DuckDBPyConnection, cl_stage: pa.Table, sql: str, params: Mapping[str, object]
) -> None:
    """Run one INSERT … SELECT over a staged chunk, which the SQL names ``cl_stage``.

    The chunk reaches DuckDB through its replacement scan of this frame's locals (the argument's
    name is the table's), not ``conn.register``: a registered Arrow table is a temporary view,
    and dropping it inside the replay's transaction keeps the view, and with it the whole Arrow
    table, alive until COMMIT. Per chunk that held every staged row of the file in memory
    (3 GB for 5M lines); scanned this way a chunk is freed once its inserts are done.
    """
    conn.execute(sql, params)


def _replay_one(
    conn: duckdb.DuckDBPyConnection, run_id: int, path: Path, options: ReplayOptions
) -> ReplayResult:
    now = utcnow()
    digest = FileDigest()
    rejects: list[Reject] = []
    # Lines without a time of their own are dated (and priced) at --at, else at the replay.
    params = {"run_id": run_id, "now": options.at or now}
    fast_params = {**params, "tier": options.tier}
    insert_fast = {
        id(fast): _INSERT_RESULTS.replace(
            "FROM cl_stage",
            f"FROM ({fast_filled_sql(fast, store_content=options.store_content)}) AS cl_stage",
        )
        for fast in _statements(options.store_content).fast.values()
    }
    joined = options.requests_file is not None
    for staged in _staged_chunks(conn, path, digest, options):
        rejects.extend(staged.rejects)
        if staged.table is None:
            continue
        if joined:
            _insert_staged(
                conn, staged.table, _INSERT_REQUESTS_JOINED, {"run_id": run_id, "model": options.model}
            )
            _insert_staged(conn, staged.table, _INSERT_PARAMS, {"run_id": run_id})
        else:
            _insert_staged(conn, staged.table, _INSERT_REQUESTS, {"run_id": run_id, "model": options.model})
        if staged.fast is not None:
            _insert_staged(conn, staged.table, insert_fast[id(staged.fast)], fast_params)
        else:
            _insert_staged(conn, staged.table, _INSERT_RESULTS, params)
        if options.store_content:
            _insert_staged(conn, staged.table, _INSERT_DETAILS, {"run_id": run_id})
    rejects.extend(_remove_duplicates(conn, run_id, path))

    previous = scalar(
        conn,
        "SELECT min(run_id) FROM runs WHERE source_sha256 = ? AND kind = 'replay' AND status <> 'running'",
        [digest.sha256],
    )
    if previous is not None and not options.force:
        raise AlreadyReplayedError(
            f"{path} was already replayed into this database as run {previous} (same sha256); "
            "use --force to replay it again"
        )
    rejects.sort(key=lambda r: r.line_no)
    _insert_rejects(conn, run_id, rejects)
    by_format = conn.execute(
        """SELECT source_format, count(*), count(*) FILTER (WHERE status = 'error')
           FROM results WHERE run_id = ? GROUP BY source_format ORDER BY source_format""",
        [run_id],
    ).fetchall()
    formats = {fmt: int(n) for fmt, n, _ in by_format}
    stored = sum(formats.values())
    errors = sum(int(e) for _, _, e in by_format)
    read = stored + len(rejects)
    conn.execute(
        """UPDATE runs SET status = 'completed', source_sha256 = ?, finished_at = ?,
                          lines_read = ?, lines_stored = ?, lines_rejected = ? WHERE run_id = ?""",
        [digest.sha256, utcnow(), read, stored, len(rejects), run_id],
    )
    return ReplayResult(
        run_id=run_id,
        file=str(path),
        sha256=digest.sha256,
        lines_read=read,
        stored=stored,
        rejected=len(rejects),
        failed=errors,
        formats=formats,
        rejects=tuple(rejects),
    )


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    results: tuple[ReplayResult, ...]
    requests: RequestFile | None
    # Job totals files checked against the replay (formats.totals); silent when they agree.
    totals: tuple[TotalsCheck, ...] = ()


_TOTALS: tuple[tuple[ResultFormat, JobTotals], ...] = tuple((f, f.totals) for f in FORMATS if f.totals)


def replay_files(conn: duckdb.DuckDBPyConnection, options: ReplayOptions) -> ReplayOutcome:
    """Replay each file as its own run, in one transaction: it lands whole or not at all.

    A failure, Ctrl-C or kill leaves nothing of that file behind (the
    transaction is rolled back, or never committed). The ``--requests`` file is
    read once; its rejects are stored under the first file's run and reported
    in ``ReplayOutcome.requests``. A ``--manifest`` is read before anything is
    stored (an unusable one is an InputError); the job totals files are checked
    once every file is in (``_check_totals``).
    """
    for path in options.files:
        if not path.is_file():
            raise InputError("no such file", file=str(path))
    manifest: tuple[JobTotals, dict[str, int]] | None = None
    if options.manifest is not None and _TOTALS:
        # One format has a totals file today (Bedrock); a --manifest is its.
        spec = _TOTALS[0][1]
        manifest = (spec, read_totals(options.manifest, spec))
    install_macros(conn)
    request_file: RequestFile | None = None
    if options.requests_file is not None:
        request_file = stage_request_file(conn, options.requests_file, store_content=options.store_content)
    results: list[ReplayResult] = []
    for index, path in enumerate(options.files):
        conn.execute("BEGIN TRANSACTION")
        try:
            run_id = _start_run(conn, path, options, request_file)
            result = _replay_one(conn, run_id, path, options)
            if index == 0 and request_file is not None and request_file.rejects:
                _insert_rejects(conn, run_id, request_file.rejects)
            conn.execute("COMMIT")
        except BaseException as e:
            with contextlib.suppress(duckdb.Error):
                conn.execute("ROLLBACK")
            if isinstance(e, duckdb.Error):
                raise StoreError(f"replay of {path} failed in the database: {e}") from e
            raise
        results.append(result)
    return ReplayOutcome(tuple(results), request_file, _check_totals(conn, options, manifest, results))


def _check_totals(
    conn: duckdb.DuckDBPyConnection,
    options: ReplayOptions,
    manifest: tuple[JobTotals, dict[str, int]] | None,
    results: Sequence[ReplayResult],
) -> tuple[TotalsCheck, ...]:
    """The given manifest against every run; else each totals file found next to a replayed file.

    A file is covered by the totals file of its directory when it held lines of a format that
    has one (or is named like that format's files, e.g. ``*.jsonl.out``): all such files of one
    directory together, as the provider's job wrote them.
    """
    if manifest is not None and options.manifest is not None:
        spec, expected = manifest
        return (check_totals(conn, options.manifest, spec, [r.run_id for r in results], expected),)
    covered: dict[tuple[Path, int], list[int]] = {}
    specs: dict[int, JobTotals] = {}
    for r in results:
        for fmt, spec in _TOTALS:
            if fmt.name in r.formats or r.file.endswith(spec.result_suffix):
                found = Path(r.file).parent / spec.file_name
                if found.is_file():
                    covered.setdefault((found, id(spec)), []).append(r.run_id)
                    specs[id(spec)] = spec
    checks = []
    for (found, key), run_ids in covered.items():
        try:
            expected = read_totals(found, specs[key])
        except InputError as e:
            checks.append(TotalsCheck(str(found), tuple(run_ids), error=e.reason))
            continue
        checks.append(check_totals(conn, found, specs[key], run_ids, expected))
    return tuple(checks)
