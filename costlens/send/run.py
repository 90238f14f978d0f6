"""Send a request file to an OpenAI-compatible endpoint and log every outcome (``costlens run``).

The shape follows from what must survive a crash and never be paid for twice:

1. **Plan first.** The request file is validated by ``requests_file`` (bad lines go to
   ``rejects`` with their line number; the rest still run). Every request × ``--model``
   becomes one ``requests`` row, written in one transaction with the ``runs`` row before
   anything is sent, so a resume knows the full set. request_id is unique within the
   run; fan-out rows share their custom_id and differ in requested_model.
2. **Send concurrently** through one pooled :class:`~costlens.send.client.ChatClient`, under
   ``--concurrency``, ``--rpm``/``--tpm`` (:mod:`costlens.send.ratelimit`) and ``--budget``.
3. **Write results in batches** (every ``flush_every`` results or ``flush_seconds``),
   each batch one transaction that replaces any older row of the same request, so every
   request has exactly one final result. Between flushes each outcome is appended to a
   small journal next to the database the moment it arrives: a ``kill -9`` then loses
   only requests that were truly in flight, and the next ``costlens run`` folds the
   journal into the database before sending anything. ``--resume RUN_ID`` sends only
   requests without a successful result.
4. **Budget** (``--budget``): before sending, each request reserves its worst case
   (prompt counted offline plus 25% + 16 tokens of headroom for a provider's own
   tokenizer, and max_tokens × n of output), priced by the cost view itself
   (:mod:`costlens.money.quote`). The next request is sent only if committed spend (from the
   cost view) + open reservations + its own worst case stays within the cap; when it
   does not fit even after in-flight work settled, sending stops. A reservation is
   released when its result is committed, and the actual cost takes its place.

Usage is stored as reported. When none arrives (a cut stream, a server that ignores
``include_usage``) the tokens are estimated offline (:mod:`costlens.tokens`) and flagged
``usage_source = 'estimated'``; never silently 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any, Literal, overload

import duckdb
import httpx
import pyarrow as pa

from costlens import __version__
from costlens.errors import ConfigError, InputError, StoreError
from costlens.ingest.rejects import Reject
from costlens.ingest.requests_file import RequestFile, stage_request_file
from costlens.money.costs import scoped_cost_view_sql
from costlens.money.quote import QuoteRequest, output_bound, quote
from costlens.send.client import ChatClient, ChatOutcome, ClientConfig
from costlens.send.ratelimit import RateLimiter, RateLimits
from costlens.session import DEFAULT_BASE_URL, Session
from costlens.store.db import utcnow

__all__ = [
    "DEFAULT_BASE_URL",
    "RunOptions",
    "RunOutcome",
    "RunProgress",
    "RunStatus",
    "RunTier",
    "journal_dir",
    "recover_journals",
    "redact_url",
    "run_requests",
]

RunTier = Literal["auto", "standard", "batch", "flex", "priority"]
RunStatus = Literal["completed", "budget_stopped", "interrupted"]

_PROMPT_HEADROOM = (Decimal("0.25"), 16)  # fraction of the offline count, plus tokens
_SOURCE_FORMAT = {False: "chat_api", True: "chat_api_stream"}
_KEY_HOSTS = ("api.openai.com",)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What to send, where and how; mirrors ``costlens run``'s options."""

    requests_file: Path
    # Send every request to each of these (replacing the body's model); empty = the body's own model.
    models: Sequence[str] = ()
    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 16
    rpm: int | None = None
    tpm: int | None = None
    max_retries: int = 2
    timeout: float = 600.0
    # True/False force streaming on/off; None = as each request body says (default off).
    stream: bool | None = None
    budget: Decimal | None = None
    # --max-tokens: the output bound of a body that has neither max_tokens nor max_completion_tokens.
    max_tokens: int | None = None
    allow_unpriced: bool = False
    tier: RunTier = "auto"
    run_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    resume: int | None = None
    store_content: bool = True
    command_line: str | None = None
    pricing_sha256: str | None = None
    flush_every: int = 1000
    flush_seconds: float = 1.0
    progress_seconds: float = 0.5
    # --shard I/N: this invocation plans only the requests of shard I (1-based) of N; None = all.
    shard: tuple[int, int] | None = None
    # After the first Ctrl-C / SIGTERM, how long the answers already in flight are waited for (they
    # are recorded as usual: the provider bills them); then, or at a second Ctrl-C, they are dropped.
    stop_grace_s: float = 30.0


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A snapshot for a progress display; counts are for this invocation."""

    run_id: int
    total: int
    done: int
    ok: int
    failed: int
    in_flight: int
    prompt_tokens: int
    completion_tokens: int
    spent_usd: Decimal | None
    elapsed_s: float
    final: bool = False


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run (or a resume of it) ended. ``run_*`` counts cover the whole run, the others this invocation."""

    run_id: int
    status: RunStatus
    resumed: bool
    requests: RequestFile
    sent: int
    ok: int
    failed: int
    not_sent: int
    prompt_tokens: int
    completion_tokens: int
    run_requests: int
    run_ok: int
    run_failed: int
    run_unsent: int
    spent_usd: Decimal | None
    unpriced: int
    budget_usd: Decimal | None
    elapsed_s: float
    flushes: int
    # Under --budget: the worst case of every request still without a successful result (what a
    # resume would reserve); None without a budget or when some of them are unpriced.
    remaining_worst_case_usd: Decimal | None = None
    # Interrupted: requests in flight when the wait for them ended (the provider may bill them; they
    # have no result, so a resume sends them again), and answers that arrived during the wait.
    dropped: int = 0
    drained: int = 0
    # The answers said they came from a simulator (costlens serve-sim): readers leave the run out.
    simulated: bool = False

    @property
    def budget_to_finish(self) -> Decimal | None:
        """A budget that lets a resume send everything left: spend so far + the remaining worst case, to the cent up."""
        if self.remaining_worst_case_usd is None:
            return None
        total = (self.spent_usd or Decimal(0)) + self.remaining_worst_case_usd
        return total.quantize(Decimal("0.01"), rounding=ROUND_CEILING)

    @property
    def rejects(self) -> tuple[Reject, ...]:
        return self.requests.rejects


# --- helpers -----------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL without credentials: userinfo, query and fragment are dropped."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _check_options(options: RunOptions) -> None:
    if options.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    for name, value in (("--rpm", options.rpm), ("--tpm", options.tpm)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1")
    if options.max_retries < 0:
        raise ConfigError("--max-retries must be 0 or more")
    if not options.timeout > 0:
        raise ConfigError("--timeout must be more than 0 seconds")
    if options.budget is not None and (not options.budget.is_finite() or options.budget < 0):
        raise ConfigError("--budget must be a non-negative amount of USD")
    if options.max_tokens is not None and options.max_tokens < 1:
        raise ConfigError("--max-tokens must be at least 1")
    if options.shard is not None:
        index, count = options.shard
        if not (count >= 1 and 1 <= index <= count):
            raise ConfigError(f"--shard {index}/{count}: expected I/N with 1 <= I <= N")
    if any(not m.strip() for m in options.models):
        raise ConfigError("--model must not be empty")
    if len(set(options.models)) != len(options.models):
        raise ConfigError("--model repeats a model")
    parts = urllib.parse.urlsplit(options.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url {redact_url(options.base_url)!r} is not an http(s) URL")


def _api_key(options: RunOptions, env: Mapping[str, str]) -> str | None:
    key = env.get(options.api_key_env) or None
    host = (urllib.parse.urlsplit(options.base_url).hostname or "").lower()
    if key is None and host in _KEY_HOSTS:
        raise ConfigError(
            f"environment variable {options.api_key_env} is not set: it must hold the API key for {host} "
            "(or name another variable with --api-key-env)"
        )
    return key


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _usage_fields(usage: Mapping[str, Any]) -> dict[str, Any] | None:
    """Token buckets from a usage object (FORMATS.md §3); None if it lacks the two main counts."""
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
        if prompt is None or completion is None:
            return None
        pd, cd = usage.get("prompt_tokens_details"), usage.get("completion_tokens_details")
        return {
            "usage_format": "openai",
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": _count(usage.get("total_tokens")) or prompt + completion,
            "cached_tokens": _count(pd.get("cached_tokens")) if isinstance(pd, dict) else None,
            "cache_write_tokens": None,
            "cache_write_1h_tokens": None,
            "reasoning_tokens": _count(cd.get("reasoning_tokens")) if isinstance(cd, dict) else None,
        }
    inp, out = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
    if inp is None or out is None:
        return None
    # Anthropic: input_tokens excludes the cache (stored as prompt = input + writes + reads).
    write = _count(usage.get("cache_creation_input_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    # FORMATS.md §8: the 1-hour part of the writes (the 5-minute part is the rest).
    split = usage.get("cache_creation")
    write_1h = _count(split.get("ephemeral_1h_input_tokens")) if isinstance(split, dict) else None
    if write_1h is not None and write_1h > (write or 0):
        write_1h = None  # inconsistent counts: keep the total, bill it all at the 5-minute rate
    prompt = inp + (write or 0) + (read or 0)
    return {
        "usage_format": "anthropic",
        "prompt_tokens": prompt,
        "completion_tokens": out,
        "total_tokens": prompt + out,
        "cached_tokens": read,
        "cache_write_tokens": write,
        "cache_write_1h_tokens": write_1h,
        "reasoning_tokens": None,
    }


def _prompt_tokens(body: Mapping[str, Any]) -> int:
    from costlens import tokens  # lazy: loading a vocabulary takes a second, only counting needs it

    return tokens.estimate_prompt_tokens(body)


def _text_tokens(texts: Sequence[str], model: str) -> int:
    from costlens import tokens

    encoding = tokens.encoding_for_model(model)
    return sum(tokens.count_text(t, encoding=encoding) for t in texts)


def _reserved_prompt(prompt: int) -> int:
    fraction, extra = _PROMPT_HEADROOM
    return prompt + int((prompt * fraction).to_integral_value(rounding="ROUND_CEILING")) + extra


@functools.lru_cache(maxsize=64)  # answers arriving in the same second share their `created`
def _timestamp(unix: int | None) -> datetime | None:
    if unix is None:
        return None
    try:
        return datetime.fromtimestamp(unix, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


# --- the journal -------------------------------------------------------------------------------


def journal_dir(db_path: Path) -> Path | None:
    """Where outcomes wait for their batch: ``<db>.journal/`` (none for an in-memory database)."""
    if str(db_path) == ":memory:":
        return None
    return Path(str(db_path) + ".journal")


_TIMESTAMPS = ("created_at", "priced_at", "started_at", "completed_at")
# Compact: only json.loads reads a journal back, and every outcome passes through here.
_JOURNAL_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@overload
def _utf8(text: str) -> str: ...
@overload
def _utf8(text: None) -> None: ...
def _utf8(text: str | None) -> str | None:
    """Text from the wire as storable UTF-8: a lone surrogate (JSON allows "\\ud800") becomes U+FFFD.

    DuckDB's VARCHAR and JSON types refuse it, even escaped. A pair split across
    two stream frames arrives as two halves and is joined back here."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


class _Journal:
    """Append-only segments ``run-<id>.<seq>.jsonl``; a segment is deleted once its batch is committed."""

    def __init__(self, directory: Path | None, run_id: int) -> None:
        self.directory = directory
        self.run_id = run_id
        self.seq = 0
        self.fd: int | None = None
        self.path: Path | None = None

    def append(self, record: Mapping[str, Any]) -> None:
        if self.directory is None:
            return
        if self.fd is None:
            self.directory.mkdir(exist_ok=True)
            self.seq += 1
            self.path = self.directory / f"run-{self.run_id}.{self.seq:06d}.jsonl"
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        line = dict(record)
        for name in _TIMESTAMPS:
            value = line.get(name)
            if isinstance(value, datetime):
                line[name] = value.isoformat()
        # One write per outcome: once it returns, a kill -9 of this process cannot lose it.
        os.write(self.fd, (_JOURNAL_JSON.encode(line) + "\n").encode("utf-8"))

    def rotate(self) -> Path | None:
        """Close the current segment (its outcomes are about to be committed); the next append starts another."""
        path = self.path
        if self.fd is not None:
            os.close(self.fd)
        self.fd, self.path = None, None
        return path

    @staticmethod
    def discard(path: Path | None) -> None:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when empty

    def close(self) -> None:
        self.discard(self.rotate())


def _segment_order(path: Path) -> tuple[int, int]:
    run, _, seq = path.name.removeprefix("run-").removesuffix(".jsonl").partition(".")
    return (int(run), int(seq)) if run.isdigit() and seq.isdigit() else (0, 0)


def recover_journals(conn: duckdb.DuckDBPyConnection, directory: Path | None) -> int:
    """Commit outcomes left in journal segments by a run that died; return how many were recovered."""
    if directory is None or not directory.is_dir():
        return 0
    paths = sorted(directory.glob("run-*.jsonl"), key=_segment_order)
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    for path in paths:
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue  # a torn last line: that outcome was never fully written
            if not isinstance(record, dict) or "run_id" not in record or "request_id" not in record:
                continue
            for name in _TIMESTAMPS:
                if isinstance(record.get(name), str):
                    record[name] = datetime.fromisoformat(record[name])
            latest[(int(record["run_id"]), int(record["request_id"]))] = record
    if latest:
        _write_results(conn, _Batch(list(latest.values()), replace=True))
        _mark_simulated(conn, {run_id for (run_id, _), r in latest.items() if r.get("simulated")})
    for path in paths:
        _Journal.discard(path)
    return len(latest)


# --- writing results ---------------------------------------------------------------------------

_RESULT_SCHEMA = pa.schema(
    [
        ("run_id", pa.int32()),
        ("request_id", pa.int64()),
        ("source_line_no", pa.int64()),
        ("source_format", pa.string()),
        ("service_tier", pa.string()),
        ("status", pa.string()),
        ("http_status", pa.int32()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("response_id", pa.string()),
        ("provider_request_id", pa.string()),
        ("response_model", pa.string()),
        ("finish_reasons", pa.list_(pa.string())),
        ("usage_source", pa.string()),
        ("usage_format", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("cached_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("cache_write_1h_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("raw_usage", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("priced_at", pa.timestamp("us")),
        ("started_at", pa.timestamp("us")),
        ("completed_at", pa.timestamp("us")),
        ("latency_ms", pa.float64()),
        ("ttft_ms", pa.float64()),
        ("attempts", pa.int32()),
        ("completion", pa.string()),
        ("completion_sha256", pa.string()),
        ("rate_limits", pa.string()),
        ("reported_cost_usd", pa.string()),
        ("reported_cost_source", pa.string()),
    ]
)

# One batch, one transaction: the new outcome replaces any older row of the same request
# (a failed attempt from an earlier invocation), so each request keeps exactly one result.
_DELETE_OLDER = tuple(
    f"DELETE FROM {table} USING cl_results_batch b "
    f"WHERE {table}.run_id = b.run_id AND {table}.request_id = b.request_id"
    for table in ("results", "result_details")
)
# Timing, attempts, rate limits and completion go to result_details (migration 4).
_DETAILS = (
    "started_at, completed_at, latency_ms, ttft_ms, attempts, completion, completion_sha256, rate_limits"
)
_INSERT_RESULTS = (
    f"INSERT INTO results BY NAME SELECT * EXCLUDE ({_DETAILS}) REPLACE (CAST(raw_usage AS JSON) AS raw_usage, "
    "CAST(reported_cost_usd AS DECIMAL(38, 15)) AS reported_cost_usd) FROM cl_results_batch",
    "INSERT INTO result_details BY NAME "
    "SELECT run_id, request_id, started_at, completed_at, latency_ms, ttft_ms, attempts, "
    "CAST(completion AS JSON) AS completion, completion_sha256, CAST(rate_limits AS JSON) AS rate_limits "
    "FROM cl_results_batch",
)


@dataclass(frozen=True, slots=True)
class _Batch:
    """Outcomes committed together. ``replace`` = False when none of their requests can have an older
    result row (a new run; a resume's requests that never got one): the DELETE is then skipped, a
    statement whose fixed cost in DuckDB is about that of the INSERT of a whole batch."""

    records: Sequence[Mapping[str, Any]]
    replace: bool = True


def _write_results(conn: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    table = pa.Table.from_pylist(list(batch.records), schema=_RESULT_SCHEMA)
    conn.register("cl_results_batch", table)
    try:
        conn.execute("BEGIN TRANSACTION")
        try:
            for statement in (*(_DELETE_OLDER if batch.replace else ()), *_INSERT_RESULTS):
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                conn.execute("ROLLBACK")
            raise
    except duckdb.Error as e:
        raise StoreError(f"cannot write results: {e}") from e
    finally:
        conn.unregister("cl_results_batch")


def _mark_simulated(conn: duckdb.DuckDBPyConnection, run_ids: set[int]) -> None:
    """Runs that got an answer saying it was simulated are simulated runs (readers leave them out)."""
    if not run_ids:
        return
    try:
        conn.execute(
            "UPDATE runs SET simulated = TRUE WHERE run_id IN (SELECT unnest(CAST(? AS INTEGER[]))) "
            "AND NOT simulated",
            [sorted(run_ids)],
        )
    except duckdb.Error as e:
        raise StoreError(f"cannot mark the run simulated: {e}") from e


def _batch_spend(
    conn: duckdb.DuckDBPyConnection, run_id: int, records: Sequence[Mapping[str, Any]]
) -> Decimal:
    """What a batch of new results costs (priced ones), by the cost view's own rules over those rows
    alone: the time it takes grows with the batch, not with the run or the database, so a budgeted run
    stays linear however long it gets (issue: it used to re-read the whole run after every batch)."""
    ids = [int(r["request_id"]) for r in records]
    table = pa.Table.from_pylist(list(records), schema=_RESULT_SCHEMA)
    conn.register("cl_spend_batch", table)
    try:
        conn.execute(scoped_cost_view_sql("cl_spend_costs", "cl_spend_batch", run_id, min(ids), max(ids)))
        (row,) = conn.execute(
            "SELECT coalesce(sum(cost_usd) FILTER (WHERE priced), 0) FROM cl_spend_costs"
        ).fetchall()
    except duckdb.Error as e:
        raise StoreError(f"cannot price the batch: {e}") from e
    finally:
        conn.unregister("cl_spend_batch")
    return Decimal(row[0])


def _run_spend(conn: duckdb.DuckDBPyConnection, run_id: int) -> tuple[Decimal, int]:
    """Committed spend of the run (priced requests, from the cost view) and how many are unpriced."""
    (row,) = conn.execute(
        "SELECT coalesce(sum(cost_usd) FILTER (WHERE priced), 0), count(*) FILTER (WHERE NOT priced) "
        "FROM request_costs WHERE run_id = ?",
        [run_id],
    ).fetchall()  # fetchall, not fetchone: DuckDB 2 keeps a half-read result busy
    return Decimal(row[0]), int(row[1])


# --- planning ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Work:
    request_id: int
    custom_id: str
    line_no: int
    model: str
    body: dict[str, Any]
    stream: bool
    max_output: int | None
    tier: str
    prompt_tokens: int | None = None
    reserve: Decimal | None = None


# Candidate requests of a new run: every accepted line × every model, numbered the way the
# plan numbers them (line order, then model order).
_CANDIDATES = """
WITH models AS (
    SELECT unnest(CAST($models AS VARCHAR[])) AS model, unnest(range(len(CAST($models AS VARCHAR[])))) AS ord
)
SELECT row_number() OVER (ORDER BY q.line_no, m.ord) AS request_id, q.custom_id, q.line_no,
       coalesce(m.model, q.model) AS model, CAST(q.body AS VARCHAR) AS body,
       coalesce($stream, q.stream, false) AS stream, __MAX_TOKENS__ AS max_tokens, q.n
FROM cl_req_input q CROSS JOIN models m
ORDER BY request_id
"""

# --max-tokens fills the bound of a body that has none (neither max_tokens nor max_completion_tokens);
# the parameters logged are those sent.
_FILLED_MAX_TOKENS = (
    "CASE WHEN q.max_tokens IS NULL AND json_extract(q.body, '$.max_completion_tokens') IS NULL "
    "THEN CAST($max_tokens AS BIGINT) ELSE q.max_tokens END"
)
_CANDIDATES = _CANDIDATES.replace("__MAX_TOKENS__", _FILLED_MAX_TOKENS)

_PENDING = """
SELECT q.request_id, q.custom_id, q.line_no, q.requested_model AS model, CAST(i.body AS VARCHAR) AS body,
       coalesce(p.stream, false) AS stream, p.max_tokens, p.n
FROM requests q JOIN cl_req_input i ON i.custom_id = q.custom_id
LEFT JOIN request_params p ON p.run_id = q.run_id AND p.request_id = q.request_id
WHERE q.run_id = $run_id
  AND NOT EXISTS (SELECT 1 FROM results r
                  WHERE r.run_id = q.run_id AND r.request_id = q.request_id AND r.status = 'ok')
ORDER BY q.request_id
"""

_PLAN_REQUESTS = """
INSERT INTO requests (run_id, request_id, custom_id, line_no, requested_model)
WITH models AS (
    SELECT unnest(CAST($models AS VARCHAR[])) AS model, unnest(range(len(CAST($models AS VARCHAR[])))) AS ord
)
SELECT $run_id, row_number() OVER (ORDER BY q.line_no, m.ord), q.custom_id, q.line_no, coalesce(m.model, q.model)
FROM cl_req_input q CROSS JOIN models m
"""

# Each planned request's parameters (custom_ids of accepted lines are unique).
_PLAN_PARAMS = """
INSERT INTO request_params (
    run_id, request_id, temperature, max_tokens, stream, top_p, frequency_penalty, presence_penalty,
    stop, n, "user", extra_params, msg_count, msg_system, msg_user, msg_assistant, msg_tool,
    msg_developer, messages_sha256, messages)
SELECT r.run_id, r.request_id, q.temperature, __MAX_TOKENS__, coalesce($stream, q.stream, false), q.top_p,
       q.frequency_penalty, q.presence_penalty, q.stop, q.n, q."user", q.extra_params, q.msg_count,
       q.msg_system, q.msg_user, q.msg_assistant, q.msg_tool, q.msg_developer, q.messages_sha256, q.messages
FROM requests r JOIN cl_req_input q ON q.custom_id = r.custom_id
WHERE r.run_id = $run_id
""".replace("__MAX_TOKENS__", _FILLED_MAX_TOKENS)


def shard_of(custom_id: str, count: int) -> int:
    """The shard (1-based) of ``count`` a request belongs to: MD5 of its custom_id, read as a
    little-endian 128-bit integer, modulo ``count``, plus one. The same in DuckDB (``md5_number``),
    Python (``int.from_bytes(hashlib.md5(custom_id.encode()).digest(), "little")``) or anything else,
    and independent of the line's position, so shards of an edited file keep their requests."""
    return int.from_bytes(hashlib.md5(custom_id.encode("utf-8")).digest(), "little") % count + 1


def take_shard(conn: duckdb.DuckDBPyConnection, staged: RequestFile, shard: tuple[int, int]) -> RequestFile:
    """Keep, of the staged file, the lines of shard ``shard`` = (I, N): accepted lines by their custom_id
    (:func:`shard_of`), rejected lines by their line number (line_no mod N), so the union of the N shards
    is the file and each rejected line is reported by exactly one of them."""
    index, count = shard
    try:
        conn.execute(
            "DELETE FROM cl_req_input WHERE md5_number(custom_id) % CAST(? AS UHUGEINT) <> CAST(? AS UHUGEINT)",
            [count, index - 1],
        )
        (accepted,) = conn.execute("SELECT count(*) FROM cl_req_input").fetchall()[0]
    except duckdb.Error as e:
        raise StoreError(f"cannot take shard {index}/{count}: {e}") from e
    rejects = tuple(r for r in staged.rejects if (r.line_no - 1) % count == index - 1)
    return dataclasses.replace(
        staged, accepted=int(accepted), rejects=rejects, lines_read=int(accepted) + len(rejects)
    )


def _sendable(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """The body as sent: the run's model, and the stream settings; every other parameter untouched."""
    body["model"] = model
    if stream:
        body["stream"] = True
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    elif body.get("stream") is True:
        body["stream"] = False
        body.pop("stream_options", None)  # the API refuses it without streaming
    return body


def _work_items(rows: Sequence[tuple[Any, ...]], options: RunOptions) -> list[_Work]:
    items: list[_Work] = []
    for request_id, custom_id, line_no, model, body_text, stream, max_tokens, n in rows:
        body = _sendable(json.loads(body_text), model, bool(stream))
        if "max_tokens" not in body and "max_completion_tokens" not in body:
            # --max-tokens fills the bound (when the run was planned, or now on a resume): what is
            # sent is what is logged.
            if max_tokens is None and options.max_tokens is not None:
                max_tokens = options.max_tokens
            if max_tokens is not None:
                body["max_tokens"] = int(max_tokens)
        tier = options.tier
        if tier == "auto":
            wanted = body.get("service_tier")
            tier = wanted if wanted in ("flex", "priority") else "standard"
        items.append(
            _Work(
                request_id=int(request_id),
                custom_id=str(custom_id),
                line_no=int(line_no),
                model=str(model),
                body=body,
                stream=bool(stream),
                max_output=output_bound(body, max_tokens, n),
                tier=tier,
            )
        )
    return items


def _reserve_budget(conn: duckdb.DuckDBPyConnection, items: list[_Work], options: RunOptions) -> None:
    """Price each request's worst case through the cost view; refuse what a budget cannot bound."""
    unbounded = [w for w in items if w.max_output is None]
    for w in items:
        w.prompt_tokens = _prompt_tokens(w.body)
    quotes = quote(
        conn,
        [
            QuoteRequest(
                key=w.request_id,
                model=w.model,
                prompt_tokens=_reserved_prompt(w.prompt_tokens or 0),
                completion_tokens=w.max_output or 0,
                service_tier=w.tier,
            )
            for w in items
        ],
        at=utcnow(),
    )
    unpriced = sorted({w.model for w in items if not quotes[w.request_id].priced})
    if unpriced and not options.allow_unpriced:
        raise ConfigError(
            f"no price for {', '.join(unpriced)}: a budget cannot bound its cost "
            "(add a price with --extra-pricing, or pass --allow-unpriced to send it uncounted)"
        )
    unbounded = [w for w in unbounded if quotes[w.request_id].priced]
    if unbounded:
        lines = ", ".join(str(w.line_no) for w in sorted(unbounded, key=lambda w: w.line_no)[:10])
        more = f" and {len(unbounded) - 10} more" if len(unbounded) > 10 else ""
        raise ConfigError(
            f"under --budget every request needs max_tokens (or max_completion_tokens), or its worst case "
            f"is unbounded: {options.requests_file} lines {lines}{more}"
        )
    for w in items:
        q = quotes[w.request_id]
        w.reserve = q.cost_usd if q.priced else None


def _start_run(
    conn: duckdb.DuckDBPyConnection, staged: RequestFile, options: RunOptions, models: list[str | None]
) -> int:
    conn.execute("BEGIN TRANSACTION")
    try:
        row = conn.execute(
            """INSERT INTO runs (name, kind, status, source_file, requests_file, requests_sha256, tier_mode,
                                 tags, command_line, costlens_version, pricing_sha256, started_at, lines_read,
                                 lines_stored, lines_rejected, base_url, budget_usd)
               VALUES (?, 'run', 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id""",
            [
                options.run_name,
                staged.path,
                staged.path,
                staged.sha256,
                options.tier,
                json.dumps(dict(sorted(_run_tags(options).items()))),
                options.command_line,
                __version__,
                options.pricing_sha256,
                utcnow(),
                staged.lines_read,
                staged.accepted,
                len(staged.rejects),
                redact_url(options.base_url),
                options.budget,
            ],
        ).fetchall()[0]
        run_id = int(row[0])
        conn.execute(_PLAN_REQUESTS, {"run_id": run_id, "models": models})
        conn.execute(
            _PLAN_PARAMS, {"run_id": run_id, "stream": options.stream, "max_tokens": options.max_tokens}
        )
        if staged.rejects:
            now = utcnow()
            conn.executemany(
                "INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, r.file, r.line_no, r.reason, r.raw, now) for r in staged.rejects],
            )
        conn.execute("COMMIT")
    except BaseException as e:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        if isinstance(e, duckdb.Error):
            raise StoreError(f"cannot plan the run: {e}") from e
        raise
    return run_id


def _run_tags(options: RunOptions) -> dict[str, str]:
    """The run's tags: the user's, plus shard=I/N for a shard (so a lake or a summary can pick shards)."""
    tags = dict(options.tags)
    if options.shard is not None:
        tags["shard"] = f"{options.shard[0]}/{options.shard[1]}"
    return tags


def _check_resume(conn: duckdb.DuckDBPyConnection, staged: RequestFile, options: RunOptions) -> int:
    run_id = options.resume
    assert run_id is not None
    rows = conn.execute(
        "SELECT kind, requests_sha256, CAST(tags AS VARCHAR) FROM runs WHERE run_id = ?", [run_id]
    ).fetchall()
    if not rows:
        raise ConfigError(f"--resume {run_id}: no such run in this database")
    kind, sha256, tags = rows[0]
    planned_shard = json.loads(tags or "{}").get("shard")
    if options.shard is not None and planned_shard != f"{options.shard[0]}/{options.shard[1]}":
        raise ConfigError(
            f"--resume {run_id}: run {run_id} is "
            + (f"shard {planned_shard}" if planned_shard else "not a shard")
            + f", not {options.shard[0]}/{options.shard[1]}; give the same --shard or none"
        )
    if kind != "run":
        raise ConfigError(f"--resume {run_id}: run {run_id} is a {kind}, not a `costlens run`")
    if sha256 != staged.sha256:
        raise ConfigError(
            f"--resume {run_id}: {options.requests_file} is not the file run {run_id} was planned from "
            "(its sha256 differs); resume with the same file"
        )
    planned = {
        m
        for (m,) in conn.execute(
            "SELECT DISTINCT requested_model FROM requests WHERE run_id = ?", [run_id]
        ).fetchall()
    }
    if options.models and set(options.models) != planned:
        raise ConfigError(
            f"--resume {run_id}: the run sends to {', '.join(sorted(planned))}; "
            "give the same --model options or none"
        )
    return run_id


# --- sending -----------------------------------------------------------------------------------


class _Runner:
    """The async part: dispatch under the limits, collect outcomes, flush them in batches."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        run_id: int,
        items: list[_Work],
        options: RunOptions,
        client: ChatClient,
        limiter: RateLimiter,
        journal: _Journal,
        on_progress: Callable[[RunProgress], None] | None,
        handle_signals: bool,
        replaceable: frozenset[int] = frozenset(),
    ) -> None:
        self.conn = conn
        # Requests of this run that already have a result row (a resume's earlier failures).
        self.replaceable = replaceable
        self.run_id = run_id
        self.items = items
        self.options = options
        self.client = client
        self.limiter = limiter
        self.journal = journal
        self.on_progress = on_progress
        self.handle_signals = handle_signals
        self.budget = options.budget
        self.position = 0  # the next item to send
        self.exhausted = False  # the budget stopped sending
        # Budget and rate limits wait in turn, one worker at a time, so requests go in file order.
        self.gate = asyncio.Lock()
        self.buffer: list[dict[str, Any]] = []
        self.outstanding: dict[int, Decimal] = {}
        self.reserved = Decimal(0)
        self.spent = Decimal(0)
        self.tasks: set[asyncio.Task[None]] = set()
        self.error: BaseException | None = None
        self.flush_now = asyncio.Event()
        self.changed = asyncio.Event()
        self.closing = False
        self.stopping = False
        self.interrupted = False
        self.budget_stopped = False
        # Tasks inside _one (a request on the wire, or waiting to retry): the first Ctrl-C lets them finish.
        self.sending: set[asyncio.Task[Any]] = set()
        self.drop_timer: asyncio.TimerHandle | None = None
        self.dropped = self.drained = 0
        self.on_notice: Callable[[str], None] | None = None
        self.sent = self.ok = self.failed = self.in_flight = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.flushes = 0
        self.marked_simulated = False
        self.started = time.monotonic()

    # -- budget --

    def _fits(self, amount: Decimal) -> bool:
        assert self.budget is not None
        return self.spent + self.reserved + amount <= self.budget

    async def _reserve(self, item: _Work) -> bool:
        assert item.reserve is not None
        while not self._fits(item.reserve):
            if not self.outstanding or self.stopping:
                return False  # nothing left to settle: the next request does not fit
            if self.buffer:
                self.flush_now.set()  # settle what has arrived, so reservations turn into actual cost
            self.changed.clear()
            await self.changed.wait()
        self.outstanding[item.request_id] = item.reserve
        self.reserved += item.reserve
        return True

    # -- one request --

    def _record(self, item: _Work, out: ChatOutcome) -> dict[str, Any]:
        texts = [_utf8(t) for t in out.texts]
        fields = _usage_fields(out.usage) if out.usage is not None else None
        if fields is not None:
            usage_source = "reported"
        elif out.status == "ok" or out.partial:
            # No usage arrived (a cut stream, or a server that ignores include_usage): estimate, flagged.
            usage_source = "estimated"
            prompt = item.prompt_tokens if item.prompt_tokens is not None else _prompt_tokens(item.body)
            completion = _text_tokens(texts, item.model)
            fields = {
                "usage_format": None,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "cached_tokens": None,
                "cache_write_tokens": None,
                "cache_write_1h_tokens": None,
                "reasoning_tokens": None,
            }
        else:
            usage_source = "none"
            fields = dict.fromkeys(
                ("usage_format", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                 "cache_write_tokens", "cache_write_1h_tokens", "reasoning_tokens")
            )  # fmt: skip
        completion_json = (
            json.dumps(texts, ensure_ascii=False, separators=(",", ":"))
            if texts or out.status == "ok"
            else None
        )
        tier: str = self.options.tier
        if tier == "auto":
            tier = out.service_tier if out.service_tier in ("flex", "priority") else "standard"
        created_at = _timestamp(out.created)
        return {
            "run_id": self.run_id,
            "request_id": item.request_id,
            "source_line_no": item.line_no,
            "source_format": _SOURCE_FORMAT[item.stream],
            "service_tier": tier,
            "status": out.status,
            "http_status": out.http_status,
            "error_type": _utf8(out.error_type),
            "error_message": _utf8(out.error_message),
            "response_id": _utf8(out.response_id),
            "provider_request_id": _utf8(out.provider_request_id),
            "response_model": _utf8(out.response_model),
            "finish_reasons": [_utf8(r) for r in out.finish_reasons] or None,
            "usage_source": usage_source,
            **fields,
            "raw_usage": json.dumps(out.usage) if out.usage is not None else None,
            "created_at": created_at,
            "priced_at": created_at or out.started_at,
            "started_at": out.started_at,
            "completed_at": out.completed_at,
            "latency_ms": out.latency_ms,
            "ttft_ms": out.ttft_ms,
            "attempts": out.attempts,
            "completion": completion_json if self.options.store_content else None,
            "completion_sha256": hashlib.sha256(completion_json.encode("utf-8")).hexdigest()
            if completion_json is not None
            else None,
            "rate_limits": json.dumps(out.rate_limits, sort_keys=True) if out.rate_limits else None,
            # As text in the journal (JSON has no exact decimal); DuckDB casts it to DECIMAL(38,15).
            "reported_cost_usd": None if out.reported_cost_usd is None else str(out.reported_cost_usd),
            "reported_cost_source": out.reported_cost_source,
        }

    async def _one(self, item: _Work) -> None:
        self.in_flight += 1
        try:
            # Lets a provider's logs (and the simulator's stats) be matched to this run's requests.
            headers = {"x-costlens-request": f"{self.run_id}:{urllib.parse.quote(item.custom_id, safe='')}"}
            outcome = await self.client.complete(item.body, stream=item.stream, headers=headers)
        finally:
            self.in_flight -= 1
        record = self._record(item, outcome)
        if outcome.simulated:
            record["simulated"] = True  # not a results column: marks the run (and survives in the journal)
        self.journal.append(record)
        self.buffer.append(record)
        self.sent += 1
        if outcome.status == "ok":
            self.ok += 1
        else:
            self.failed += 1
        self.prompt_tokens += record["prompt_tokens"] or 0
        self.completion_tokens += record["completion_tokens"] or 0
        if len(self.buffer) >= self.options.flush_every:
            self.flush_now.set()
        self.changed.set()

    async def _next(self) -> _Work | None:
        """The next request to send, once the budget and the rate limits let it go; None = stop sending."""
        if self.budget is None and not self.limiter.active:
            if self.stopping or self.position >= len(self.items):
                return None
            self.position += 1
            return self.items[self.position - 1]
        async with self.gate:
            if self.stopping or self.exhausted or self.position >= len(self.items):
                return None
            item = self.items[self.position]
            if self.budget is not None and item.reserve is not None and not await self._reserve(item):
                if not self.stopping:
                    self.budget_stopped = True
                self.exhausted = True  # the next request does not fit: nothing after it is sent either
                return None
            if self.limiter.active:
                if item.prompt_tokens is None:
                    item.prompt_tokens = _prompt_tokens(item.body)
                await self.limiter.acquire(item.prompt_tokens + (item.max_output or 0))
            if self.stopping:
                return None
            self.position += 1
            return item

    async def _worker(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while (item := await self._next()) is not None:
            self.sending.add(task)
            try:
                await self._one(item)
                if self.interrupted:
                    self.drained += 1
            except Exception as e:
                # A bug, not a failed request (those are outcomes): stop sending; what arrived is kept.
                if self.error is None:
                    self.error = e
                self.stopping = True
                return
            finally:
                self.sending.discard(task)
            # An answer can come without a wait (an in-memory transport): let the flusher, the
            # progress reporter and the signal handlers have their turn between requests.
            await asyncio.sleep(0)

    async def _dispatch(self) -> None:
        # --concurrency workers, each sending one request after another: cheaper than a task per
        # request under a semaphore, with the same number in flight.
        workers = min(self.options.concurrency, len(self.items))
        self.tasks = {asyncio.create_task(self._worker()) for _ in range(workers)}
        if self.tasks:
            await asyncio.wait(self.tasks)
        if self.error is not None:
            raise self.error

    # -- flushing and progress --

    async def _flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        segment = self.journal.rotate()
        spent = await asyncio.to_thread(self._commit, batch)
        for record in batch:
            self.reserved -= self.outstanding.pop(record["request_id"], Decimal(0))
        if spent is not None:
            self.spent = spent
        self.journal.discard(segment)
        self.flushes += 1
        self.changed.set()

    def _commit(self, batch: list[dict[str, Any]]) -> Decimal | None:
        replace = not self.replaceable.isdisjoint(r["request_id"] for r in batch)
        _write_results(self.conn, _Batch(batch, replace=replace))
        if not self.marked_simulated and any(r.get("simulated") for r in batch):
            _mark_simulated(self.conn, {self.run_id})
            self.marked_simulated = True
        # The budget (and a progress display) need the committed spend after every batch: the spend
        # so far plus what this batch costs, priced over its rows alone. A batch that replaced older
        # rows (a resume's earlier failures) is rare: the run is re-read then.
        if self.budget is None and not self.on_progress:
            return None
        if replace:
            return _run_spend(self.conn, self.run_id)[0]
        return self.spent + _batch_spend(self.conn, self.run_id, batch)

    async def _flusher(self) -> None:
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.flush_now.wait(), self.options.flush_seconds)
                self.flush_now.clear()
                await self._flush()
                if self.closing and not self.buffer:
                    return
        except Exception as e:
            # The database refused a batch: stop sending (the journal still holds the outcomes).
            self.fail(e)
            raise

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.stopping = True
        for task in list(self.tasks):
            task.cancel()
        self.changed.set()

    def progress(self, *, final: bool = False) -> RunProgress:
        return RunProgress(
            run_id=self.run_id,
            total=len(self.items),
            done=self.sent,
            ok=self.ok,
            failed=self.failed,
            in_flight=self.in_flight,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            spent_usd=self.spent,
            elapsed_s=time.monotonic() - self.started,
            final=final,
        )

    async def _reporter(self) -> None:
        assert self.on_progress is not None
        while not self.closing:
            self.on_progress(self.progress())
            await asyncio.sleep(self.options.progress_seconds)

    def interrupt(self) -> None:
        """Ctrl-C / SIGTERM. The first: send nothing more, and wait up to ``stop_grace_s`` for the
        answers in flight (recorded as usual); the second, or the end of the wait: drop them."""
        if self.interrupted:
            self.drop_in_flight()
            return
        self.stopping = self.interrupted = True
        waiting = len(self.sending)
        for task in list(self.tasks):
            if task not in self.sending:
                task.cancel()  # waiting for its turn (budget, rate limit): nothing of it was sent
        self.changed.set()
        grace = self.options.stop_grace_s
        if waiting and grace > 0:
            self.notice(
                f"stopping: sending nothing more; waiting up to {grace:g} s for {waiting:,} answer"
                f"{'' if waiting == 1 else 's'} in flight (Ctrl-C again to drop them)"
            )
            self.drop_timer = asyncio.get_running_loop().call_later(grace, self.drop_in_flight)
        elif waiting:
            self.drop_in_flight()

    def drop_in_flight(self) -> None:
        """Stop waiting: the requests still in flight get no result (a resume sends them again)."""
        if self.drop_timer is not None:
            self.drop_timer.cancel()
            self.drop_timer = None
        in_flight = [task for task in self.sending if not task.done()]
        if not in_flight:
            return
        self.dropped += len(in_flight)
        self.notice(
            f"stopping now: {len(in_flight):,} request{'' if len(in_flight) == 1 else 's'} in flight dropped "
            "(the provider may still bill them; a resume sends them again)"
        )
        for task in in_flight:
            task.cancel()
        self.changed.set()

    def notice(self, text: str) -> None:
        if self.on_notice is not None:
            self.on_notice(text)

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self.interrupt)
                    installed.append(sig)
        if self.budget is not None or self.on_progress:
            self.spent = (await asyncio.to_thread(_run_spend, self.conn, self.run_id))[0]
        flusher = asyncio.create_task(self._flusher())
        reporter = asyncio.create_task(self._reporter()) if self.on_progress else None
        try:
            await self._dispatch()
        finally:
            if self.drop_timer is not None:
                self.drop_timer.cancel()
            self.closing = True
            self.flush_now.set()
            await flusher
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            for sig in installed:
                loop.remove_signal_handler(sig)


# --- entry point -------------------------------------------------------------------------------


def run_requests(
    session: Session,
    options: RunOptions,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    on_progress: Callable[[RunProgress], None] | None = None,
    sleep: Callable[[float], Any] | None = None,
    handle_signals: bool = True,
    on_notice: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Plan (or resume) a run, send it, and return how it ended.

    ``env`` is where the API key is read from (default ``os.environ``); ``transport`` and
    ``sleep`` replace the network and the retry waits in tests. ``on_notice`` gets the sentences
    that say what a Ctrl-C is doing (waiting for answers in flight, dropping them).
    """
    _check_options(options)
    api_key = _api_key(options, os.environ if env is None else env)
    if not options.requests_file.is_file():
        raise InputError("no such file", file=str(options.requests_file))
    conn = session.conn
    journals = journal_dir(session.settings.db_path)
    recover_journals(conn, journals)
    default_model = options.models[0] if options.models else None
    staged = stage_request_file(
        conn, options.requests_file, default_model=default_model, store_content=options.store_content
    )
    if options.shard is not None and options.resume is None:
        staged = take_shard(conn, staged, options.shard)
    models: list[str | None] = list(options.models) or [None]
    replaceable = frozenset[int]()
    if options.resume is None:
        rows = conn.execute(
            _CANDIDATES, {"models": models, "stream": options.stream, "max_tokens": options.max_tokens}
        ).fetchall()
    else:
        _check_resume(conn, staged, options)
        rows = conn.execute(_PENDING, {"run_id": options.resume}).fetchall()
        # Its earlier failures have a result row, which their new outcome replaces.
        query = "SELECT request_id FROM results WHERE run_id = ?"
        replaceable = frozenset(int(r) for (r,) in conn.execute(query, [options.resume]).fetchall())
    items = _work_items(rows, options)
    if options.resume is not None and options.max_tokens is not None:
        conn.execute(
            "UPDATE request_params SET max_tokens = ? WHERE run_id = ? AND max_tokens IS NULL "
            "AND request_id IN (SELECT unnest(CAST(? AS BIGINT[])))",
            [options.max_tokens, options.resume, [w.request_id for w in items if "max_tokens" in w.body]],
        )
    if options.budget is not None:
        _reserve_budget(conn, items, options)
    if options.resume is None:
        run_id = _start_run(conn, staged, options, models)
    else:
        run_id = options.resume
        conn.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, budget_usd = ?, base_url = ? "
            "WHERE run_id = ?",
            [options.budget, redact_url(options.base_url), run_id],
        )

    config = ClientConfig(
        base_url=options.base_url,
        api_key=api_key,
        timeout=options.timeout,
        max_retries=options.max_retries,
        max_connections=options.concurrency,
    )
    limiter = RateLimiter(RateLimits(rpm=options.rpm, tpm=options.tpm))
    journal = _Journal(journals, run_id)
    client_kwargs: dict[str, Any] = {"transport": transport}
    if sleep is not None:
        client_kwargs["sleep"] = sleep

    async def go() -> _Runner:
        async with ChatClient(config, **client_kwargs) as client:
            runner = _Runner(
                conn,
                run_id,
                items,
                options,
                client,
                limiter,
                journal,
                on_progress,
                handle_signals,
                replaceable,
            )
            runner.on_notice = on_notice
            await runner.main()
            return runner

    runner = asyncio.run(go())
    journal.close()
    status: RunStatus = (
        "interrupted" if runner.interrupted else "budget_stopped" if runner.budget_stopped else "completed"
    )
    conn.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", [status, utcnow(), run_id])
    counts = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE r.status = 'ok'), count(*) FILTER (WHERE r.status = 'error'),
                  count(*) FILTER (WHERE r.request_id IS NULL)
           FROM requests q LEFT JOIN results r ON r.run_id = q.run_id AND r.request_id = q.request_id
           WHERE q.run_id = ?""",
        [run_id],
    ).fetchall()[0]
    spent, unpriced = _run_spend(conn, run_id)
    (simulated,) = conn.execute("SELECT simulated FROM runs WHERE run_id = ?", [run_id]).fetchall()[0]
    remaining: Decimal | None = None
    if options.budget is not None:
        done = {
            int(r)
            for (r,) in conn.execute(
                "SELECT request_id FROM results WHERE run_id = ? AND status = 'ok'", [run_id]
            ).fetchall()
        }
        left = [w for w in items if w.request_id not in done]
        if all(w.reserve is not None for w in left):
            remaining = sum((w.reserve for w in left if w.reserve is not None), Decimal(0))
    if on_progress is not None:
        on_progress(runner.progress(final=True))
    return RunOutcome(
        run_id=run_id,
        status=status,
        resumed=options.resume is not None,
        requests=staged,
        sent=runner.sent,
        ok=runner.ok,
        failed=runner.failed,
        not_sent=len(items) - runner.sent,
        prompt_tokens=runner.prompt_tokens,
        completion_tokens=runner.completion_tokens,
        run_requests=int(counts[0]),
        run_ok=int(counts[1]),
        run_failed=int(counts[2]),
        run_unsent=int(counts[3]),
        spent_usd=spent,
        unpriced=unpriced,
        budget_usd=options.budget,
        elapsed_s=runner.progress().elapsed_s,
        flushes=runner.flushes,
        remaining_worst_case_usd=remaining,
        dropped=runner.dropped,
        drained=runner.drained,
        simulated=bool(simulated),
    )
