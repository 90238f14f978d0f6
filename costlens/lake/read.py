"""Read a lake as a session: ``summary``, ``report`` and ``export`` with ``--lake`` see the same
``request_costs`` and ``runs`` they see over a DuckDB file, built from the files the manifests list.

Runs are numbered in the lake by (started_at, run_uuid), so ``--run N`` means the lake's N-th run;
``--run UUID`` names a run everywhere. Rows are the figures as published (the price rows and sheets'
sha256 that priced them travel with them); the price table in force now is registered beside them
for what a report re-prices (the what-if, ``--compare-pricing``). A local lake is read by DuckDB
directly; an S3 lake through a pyarrow dataset over the S3 filesystem.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from costlens.errors import LakeError
from costlens.lake.layout import (
    JSON_COLUMNS,
    MANIFESTS,
    RENAMED,
    REQUEST_COLUMNS,
    TABLES,
    TIME_COLUMNS,
    Manifest,
    manifest_path,
)
from costlens.lake.location import LakeLocation, LocalLake
from costlens.money.pricing import register_prices
from costlens.session import Session, Settings, load_prices
from costlens.store.macros import install_macros
from costlens.store.migrations import MIGRATIONS

__all__ = ["check_files", "check_footers", "check_manifest", "lake_manifests", "open_lake_session"]


def lake_manifests(lake: LakeLocation) -> list[Manifest]:
    """Every run's manifest, each checked against its own name and against the others: a manifest
    copied under another run's name, or two listing the same file, would count rows twice."""
    out = []
    owner: dict[str, str] = {}
    for rel in lake.list_files(MANIFESTS):
        if not rel.endswith(".json"):
            continue
        try:
            data = lake.read_bytes(rel)
        except FileNotFoundError:
            continue
        where = f"{lake.uri}/{rel}"
        manifest = check_manifest(Manifest.parse(data, where), rel, where)
        for f in manifest.files:
            if f.path in owner:
                raise LakeError(f"{where}: lists {f.path!r}, which {owner[f.path]} lists too")
            owner[f.path] = where
        out.append(manifest)
    return out


def check_manifest(manifest: Manifest, rel: str, where: str) -> Manifest:
    """``manifest`` (read from ``rel``) is of the run its name says and lists only that run's files."""
    if rel != manifest_path(manifest.run_uuid):
        raise LakeError(
            f"{where}: the manifest is of run {manifest.run_uuid!r}, not of the run its name says"
        )
    for f in manifest.files:
        if not f.path.startswith(f"{f.table}/") or f"/run={manifest.run_uuid}/" not in f.path:
            raise LakeError(f"{where}: lists {f.path!r}, which is not a file of this run's {f.table}")
    return manifest


def check_footers(lake: LakeLocation, manifest: Manifest) -> None:
    """Each of the run's files has a Parquet footer that reads and the rows its manifest gives: what
    a size check cannot see (a file overwritten in place). Reads footers only, one per file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for f in manifest.files:
        try:
            if isinstance(lake, LocalLake):
                rows = pq.read_metadata(lake.local_path(f.path)).num_rows
            else:
                with lake.fs.open_input_file(lake._key(f.path)) as handle:  # type: ignore[attr-defined]
                    rows = pq.read_metadata(handle).num_rows
        except (OSError, ValueError, pa.ArrowException) as e:
            raise LakeError(
                f"lake {lake.uri}: {f.path} is not a readable Parquet file: {_first_line(e)}"
            ) from e
        if rows != f.rows:
            raise LakeError(f"lake {lake.uri}: {f.path} holds {rows:,} rows, its manifest says {f.rows:,}")


def _first_line(e: Exception) -> str:
    """DuckDB's message without the SQL it quotes below it (``LINE 1: CREATE ... ^``)."""
    return str(e).strip().split("\n", 1)[0]


def check_files(lake: LakeLocation, manifests: list[Manifest], dirs: tuple[str, ...] = TABLES) -> None:
    """Every listed file is there with the size its manifest gives: a file truncated, replaced or
    deleted outside costlens is named, not read (DuckDB would fail on it half-way, or sum another
    file's rows). One listing per directory of ``dirs`` (the tables by default), not one request a file."""
    listed = [f for m in manifests for f in m.files]
    sizes: dict[str, int] = {}
    for d in dirs:
        sizes |= lake.file_sizes(d)
    for f in listed:
        size = sizes.get(f.path)
        if size is None:
            raise LakeError(
                f"lake {lake.uri}: {f.path} is missing, though its run's manifest lists it "
                "(publish the run again to repair it)"
            )
        if size != f.bytes:
            raise LakeError(
                f"lake {lake.uri}: {f.path} is {size:,} bytes, its manifest says {f.bytes:,}: it was changed "
                "outside costlens (publish the run again to repair it)"
            )


def _relation(conn: duckdb.DuckDBPyConnection, lake: LakeLocation, name: str, paths: list[str]) -> bool:
    """Make ``name`` a view over the listed files; False when there are none."""
    if not paths:
        return False
    if isinstance(lake, LocalLake):
        listed = ", ".join("'" + lake.local_path(p).replace("'", "''") + "'" for p in paths)
        conn.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet([{listed}])")
        return True
    import pyarrow.dataset as ds

    fs = lake.fs  # type: ignore[attr-defined]
    try:
        dataset = ds.dataset([lake._key(p) for p in paths], filesystem=fs, format="parquet")  # type: ignore[attr-defined]
    except OSError as e:
        raise LakeError(lake._message(f"cannot open {name}", e)) from e  # type: ignore[attr-defined]
    conn.register(f"{name}_arrow", dataset)
    conn.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_arrow")
    return True


def _request_costs_sql() -> str:
    cols = ["r.run_id"]
    for name in REQUEST_COLUMNS:
        if name == "price_table_sha256":
            continue
        view_name = RENAMED.get(name, name)
        if name in TIME_COLUMNS:
            expr = f"timezone('UTC', l.{name})"
        elif name in JSON_COLUMNS:
            expr = f"CAST(l.{name} AS JSON)"
        else:
            expr = f'l."{name}"'
        cols.append(f'{expr} AS "{view_name}"')
    cols.append("l.run_uuid")
    cols.append("l.price_table_sha256")
    return (
        "CREATE OR REPLACE TEMP VIEW request_costs AS SELECT "
        + ", ".join(cols)
        + " FROM lake_requests l JOIN runs r ON CAST(r.run_uuid AS VARCHAR) = l.run_uuid"
    )


_RAW_VIEWS = (
    """CREATE OR REPLACE TEMP VIEW requests AS
       SELECT run_id, request_id, custom_id, line_no, requested_model FROM request_costs""",
    """CREATE OR REPLACE TEMP VIEW results AS
       SELECT run_id, request_id, source_format, service_tier, status, http_status, error_type, error_message,
              response_id, provider_request_id, response_model, finish_reasons, usage_source, prompt_tokens,
              completion_tokens, total_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens,
              reasoning_tokens, reported_cost_usd, reported_cost_source, source_line_no, created_at, priced_at
       FROM request_costs""",
    """CREATE OR REPLACE TEMP VIEW request_params AS
       SELECT run_id, request_id, temperature, max_tokens, stream, top_p, frequency_penalty, presence_penalty,
              stop, n, "user", extra_params, msg_count, messages_sha256
       FROM request_costs""",
    """CREATE OR REPLACE TEMP VIEW result_details AS
       SELECT run_id, request_id, started_at, completed_at, latency_ms, ttft_ms, attempts,
              CAST(NULL AS JSON) AS completion
       FROM request_costs""",
)


@contextmanager
def open_lake_session(settings: Settings, lake: LakeLocation) -> Iterator[Session]:
    prices = load_prices(settings)
    manifests = lake_manifests(lake)
    check_files(lake, manifests)
    conn = duckdb.connect(":memory:")
    try:
        conn.execute("SET TimeZone = 'UTC'")
        install_macros(conn)
        register_prices(conn, prices)
        files = {t: [f.path for m in manifests for f in m.files_of(t)] for t in ("requests", "runs")}
        if not _relation(conn, lake, "lake_requests", files["requests"]) or not _relation(
            conn, lake, "lake_runs", files["runs"]
        ):
            raise LakeError(f"lake {lake.uri}: no published runs (costlens publish writes them)")
        conn.execute(
            """CREATE TEMP TABLE runs AS
               SELECT CAST(row_number() OVER (ORDER BY started_at, run_uuid) AS INTEGER) AS run_id,
                      name, kind, status, source_file, source_sha256, requests_file, requests_sha256, tier_mode,
                      CAST(tags AS JSON) AS tags, command_line, costlens_version, pricing_sha256,
                      timezone('UTC', started_at) AS started_at, timezone('UTC', finished_at) AS finished_at,
                      lines_read, lines_stored, lines_rejected, base_url, budget_usd, simulated,
                      CAST(run_uuid AS UUID) AS run_uuid, planned, price_table_sha256, publish_id, repriced,
                      published_from, source_run_id
               FROM lake_runs"""
        )
        conn.execute(_request_costs_sql())
        for sql in _RAW_VIEWS:
            conn.execute(sql)
        # Reconciliations are kept in a DuckDB file, not in the lake: over a lake there are none yet.
        for migration in MIGRATIONS:
            if migration.name == "reconciliations":
                for statement in migration.statements:
                    conn.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
    except duckdb.Error as e:
        conn.close()
        raise LakeError(f"lake {lake.uri}: cannot read it: {_first_line(e)}") from e
    except BaseException:
        conn.close()
        raise
    try:
        yield Session(conn, prices, settings)
    except duckdb.Error as e:
        # The files are checked above; what DuckDB still cannot read (a damaged file of the right
        # size, another schema) is the lake's fault, said in one line.
        raise LakeError(f"lake {lake.uri}: cannot read it: {_first_line(e)}") from e
    finally:
        conn.close()
