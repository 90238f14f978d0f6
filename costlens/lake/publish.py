"""``costlens publish``: append finished runs to a lake, atomically and idempotently.

For each run: the run's priced rows (DuckDB ``COPY ... PARTITION_BY (day, run)``), its run row and
the price rows that priced it are written into a local staging directory, the cost view evaluated
once (the days and price ids are taken from the staged files, not asked of the view again). Then an
intent (the directories this attempt may leave files in) is written, before any file of the attempt
enters the lake; then each file is renamed or uploaded in one PUT under a name unique to this
attempt; the manifest last, replacing any earlier one whole. Readers go through manifests, so they
see the run's old files or its new ones, never a mix and never half. Files of earlier attempts that
no manifest lists (a crash, or a re-price) are deleted after the manifest is in place, and staging
directories of attempts that died are removed (``costlens.lake.location`` gives the rule).

Nearly all of a publish's time is that one COPY. DuckDB's ``PARTITION_BY`` sorts the rows by day
before writing (1.6-1.9x the time of a plain COPY of the same rows at 1M, BENCHMARKS.md "Lake"); it is
kept because it writes one well-compressed row group per day file whatever order the view yields
its rows in, with DuckDB's memory limit and spilling. Placing the files (Parquet footers, renames
or uploads) costs little.

A run already published is left as it is (same status, same results): re-publishing changes
nothing. ``reprice`` publishes it again under the price table now in force, recorded as such in its
manifest and run row; a run whose rows changed since (``run --resume``) publishes anew.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from costlens.errors import ConfigError, LakeError
from costlens.lake.layout import (
    JSON_COLUMNS,
    LAKE_FORMAT,
    LAKE_MARKER,
    LAKE_SCHEMA_VERSION,
    RENAMED,
    REQUEST_COLUMNS,
    TABLES,
    TIME_COLUMNS,
    LakeFile,
    Manifest,
    intent_path,
    manifest_path,
)
from costlens.lake.location import LakeLocation
from costlens.lake.read import check_files, check_footers, check_manifest
from costlens.session import Session

__all__ = ["PublishOutcome", "publish_runs", "requests_select"]


@dataclass(frozen=True)
class PublishOutcome:
    run_id: int
    run_uuid: str
    action: str  # published | unchanged | republished | repriced | repaired
    rows: int
    files: int
    bytes: int
    price_table_sha256: str

    def as_json(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "run_uuid": self.run_uuid,
            "action": self.action,
            "rows": self.rows,
            "files": self.files,
            "bytes": self.bytes,
            "price_table_sha256": self.price_table_sha256,
        }


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def requests_select(run_id: int, run_uuid: str, price_sha: str) -> str:
    """The lake rows of one run, from the cost view (with the day and run partition keys)."""
    parts = [f"{_sql_string(run_uuid)} AS run_uuid", "c.run_id AS source_run_id"]
    for name in REQUEST_COLUMNS:
        if name == "price_table_sha256":
            expr = f"CASE WHEN c.price_id IS NOT NULL THEN {_sql_string(price_sha)} END"
        elif name in TIME_COLUMNS:
            expr = f"timezone('UTC', c.{RENAMED.get(name, name)})"
        elif name in JSON_COLUMNS:
            expr = f"CAST(c.{name} AS VARCHAR)"
        else:
            expr = f'c."{RENAMED.get(name, name)}"'
        parts.append(f'{expr} AS "{name}"')
    parts += ["strftime(CAST(c.occurred_at AS DATE), '%Y-%m-%d') AS day", f"{_sql_string(run_uuid)} AS run"]
    return f"SELECT {', '.join(parts)} FROM request_costs c WHERE c.run_id = {int(run_id)}"


def _runs_select(run_id: int, publish_id: str, price_sha: str, repriced: bool) -> str:
    host = _sql_string(socket.gethostname())
    return f"""
        SELECT CAST(r.run_uuid AS VARCHAR) AS run_uuid, r.run_id AS source_run_id, r.name, r.kind, r.status,
               r.source_file, r.source_sha256, r.requests_file, r.requests_sha256, r.tier_mode,
               CAST(r.tags AS VARCHAR) AS tags, r.command_line, r.costlens_version, r.pricing_sha256,
               timezone('UTC', r.started_at) AS started_at, timezone('UTC', r.finished_at) AS finished_at,
               r.lines_read, r.lines_stored, r.lines_rejected, r.base_url, r.budget_usd,
               coalesce(r.simulated, FALSE) AS simulated,
               (SELECT count(*) FROM requests q WHERE q.run_id = r.run_id) AS planned,
               {_sql_string(price_sha)} AS price_table_sha256, {_sql_string(publish_id)} AS publish_id,
               {"TRUE" if repriced else "FALSE"} AS repriced, {host} AS published_from,
               now() AT TIME ZONE 'UTC' AS published_at_utc, CAST(r.run_uuid AS VARCHAR) AS run
        FROM runs r WHERE r.run_id = {int(run_id)}
    """


def _prices_select(price_sha: str, run_uuid: str, staged: Sequence[Path]) -> str:
    """The price rows the staged request files name (their price ids, read back from the Parquet)."""
    if staged:
        files = ", ".join(_sql_string(str(f)) for f in staged)
        used = f"SELECT DISTINCT price_id FROM read_parquet([{files}], hive_partitioning = false)"
    else:
        used = "SELECT NULL WHERE FALSE"
    return f"""
        SELECT {_sql_string(price_sha)} AS price_table_sha256, p.price_id, p.sheet, ps.name AS sheet_name,
               p.model, p.model_key, p.provider, p.context_window, p.input_per_1m, p.output_per_1m,
               p.cached_input_per_1m, p.cache_write_per_1m, p.cache_write_1h_per_1m, p.reasoning_per_1m,
               p.per_request_usd, p.service_tier, p.min_prompt_tokens,
               timezone('UTC', p.effective_from) AS effective_from, timezone('UTC', p.effective_to) AS effective_to,
               p.currency, p.source, p.price_file, p.price_line, {_sql_string(run_uuid)} AS run
        FROM prices p LEFT JOIN price_sheets ps ON ps.sheet = p.sheet
        WHERE p.price_id IN ({used})
    """


def _source(conn: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, object]:
    (row,) = conn.execute(
        """SELECT r.status, strftime(r.finished_at, '%Y-%m-%dT%H:%M:%S.%f'),
                  (SELECT count(*) FROM results x WHERE x.run_id = r.run_id)
           FROM runs r WHERE r.run_id = ?""",
        [run_id],
    ).fetchall()
    return {"status": row[0], "finished_at": row[1], "results": int(row[2])}


def _copy(conn: duckdb.DuckDBPyConnection, select: str, out: Path, publish_id: str, partition: str) -> None:
    conn.execute(
        f"COPY ({select}) TO {_sql_string(str(out))} (FORMAT parquet, COMPRESSION zstd, "
        f"PARTITION_BY ({partition}), FILENAME_PATTERN 'part-{publish_id}-{{i}}')"
    )


def _stage(
    conn: duckdb.DuckDBPyConnection,
    staging: Path,
    run_id: int,
    run_uuid: str,
    publish_id: str,
    price_sha: str,
    repriced: bool,
) -> dict[str, list[tuple[Path, str]]]:
    """Write the run's three tables into ``staging``; the cost view is evaluated once, by the first COPY."""
    try:
        requests_rows = requests_select(run_id, run_uuid, price_sha)
        _copy(conn, requests_rows, staging / "requests", publish_id, "day, run")
        runs = _runs_select(run_id, publish_id, price_sha, repriced)
        _copy(conn, runs, staging / "runs", publish_id, "run")
        requests = [local for local, _ in _staged(staging, "requests")]
        _copy(conn, _prices_select(price_sha, run_uuid, requests), staging / "prices", publish_id, "run")
    except duckdb.Error as e:
        raise LakeError(f"publish of run {run_id} failed while writing Parquet: {e}") from e
    return {table: _staged(staging, table) for table in TABLES}


def _staged(staging: Path, table: str) -> list[tuple[Path, str]]:
    """The files COPY wrote for ``table``, with the path each takes in the lake."""
    root = staging / table
    if not root.is_dir():
        return []
    return [(f, f"{table}/{f.relative_to(root).as_posix()}") for f in sorted(root.rglob("*.parquet"))]


def _place(lake: LakeLocation, staged: Sequence[tuple[Path, str]], table: str) -> list[LakeFile]:
    import pyarrow.parquet as pq

    files: list[LakeFile] = []
    for local, rel in staged:
        rows = pq.read_metadata(local).num_rows
        size = local.stat().st_size
        lake.put_file(local, rel)
        files.append(LakeFile(table, rel, rows, size))
    return files


def _cleanup(lake: LakeLocation, run_uuid: str, keep: Manifest) -> None:
    """Delete files of this run that its manifest does not list, and the finished intents."""
    listed = {f.path for f in keep.files}
    for intent in lake.list_files(f"_intents/run={run_uuid}"):
        try:
            doc = json.loads(lake.read_bytes(intent))
            dirs = [str(d) for d in doc.get("dirs", [])]
        except (FileNotFoundError, ValueError):
            dirs = []
        for d in dirs:
            for rel in lake.list_files(d):
                if rel not in listed and rel.endswith(".parquet"):
                    lake.delete(rel)
        lake.delete(intent)


def _read_manifest(lake: LakeLocation, run_uuid: str) -> tuple[Manifest | None, bool]:
    """The run's manifest in the lake (None when it has none) and whether the lake's copy of the run
    is damaged: a manifest that does not parse or lists what is not this run's, or a listed file
    missing, of another size, or whose Parquet footer does not read or give the manifest's rows. A
    damaged run is published again whole ("repaired")."""
    rel = manifest_path(run_uuid)
    where = f"{lake.uri}/{rel}"
    try:
        data = lake.read_bytes(rel)
    except FileNotFoundError:
        return None, False
    try:
        manifest = check_manifest(Manifest.parse(data, where), rel, where)
    except LakeError:
        return None, True
    try:
        check_files(lake, [manifest], tuple(sorted({f.path.rsplit("/", 1)[0] for f in manifest.files})))
        check_footers(lake, manifest)
    except LakeError:
        return manifest, True
    return manifest, False


def _ensure_marker(lake: LakeLocation) -> None:
    try:
        doc = json.loads(lake.read_bytes(LAKE_MARKER))
    except FileNotFoundError:
        marker = {"format": LAKE_FORMAT, "schema_version": LAKE_SCHEMA_VERSION}
        lake.write_bytes(LAKE_MARKER, (json.dumps(marker) + "\n").encode())
        return
    except ValueError as e:
        raise LakeError(f"{lake.uri}/{LAKE_MARKER}: not a costlens lake marker") from e
    if doc.get("format") != LAKE_FORMAT:
        raise LakeError(f"{lake.uri}: {LAKE_MARKER} says this is not a costlens lake")
    if int(doc.get("schema_version", 0)) > LAKE_SCHEMA_VERSION:
        raise LakeError(
            f"{lake.uri}: lake schema version {doc['schema_version']} is newer than this costlens writes"
        )


def _selected_runs(conn: duckdb.DuckDBPyConnection, run_ids: Sequence[int]) -> list[tuple[int, str, str]]:
    rows = conn.execute(
        "SELECT run_id, CAST(run_uuid AS VARCHAR), status FROM runs ORDER BY run_id"
    ).fetchall()
    if not run_ids:
        return [(r[0], r[1], r[2]) for r in rows if r[2] != "running"]
    by_id = {r[0]: (r[0], r[1], r[2]) for r in rows}
    out = []
    for rid in run_ids:
        if rid not in by_id:
            raise ConfigError(f"--run {rid}: no such run in this database (costlens runs lists them)")
        if by_id[rid][2] == "running":
            raise ConfigError(
                f"run {rid} is still running (or was stopped without finishing: run --resume finishes it); "
                "only finished runs are published"
            )
        out.append(by_id[rid])
    return out


def publish_runs(
    session: Session, lake: LakeLocation, run_ids: Sequence[int] = (), *, reprice: bool = False
) -> list[PublishOutcome]:
    """Publish each finished run (all of them when ``run_ids`` is empty); one outcome per run."""
    conn = session.conn
    price_sha = session.pricing_sha256
    runs = _selected_runs(conn, run_ids)
    lake.check_reachable()
    _ensure_marker(lake)
    lake.remove_dead_staging()
    outcomes = []
    for run_id, run_uuid, _status in runs:
        outcomes.append(_publish_one(conn, lake, run_id, run_uuid, price_sha, reprice))
    return outcomes


def _publish_one(
    conn: duckdb.DuckDBPyConnection,
    lake: LakeLocation,
    run_id: int,
    run_uuid: str,
    price_sha: str,
    reprice: bool,
) -> PublishOutcome:
    source = _source(conn, run_id)
    old, damaged = _read_manifest(lake, run_uuid)
    if (
        not damaged
        and old is not None
        and old.source == source
        and (not reprice or old.price_table_sha256 == price_sha)
    ):
        return PublishOutcome(
            run_id, run_uuid, "unchanged", old.rows, len(old.files), sum(f.bytes for f in old.files),
            old.price_table_sha256,
        )  # fmt: skip
    publish_id = uuid.uuid4().hex
    repriced = not damaged and old is not None and old.source == source
    with lake.staging_dir() as staging:
        staged = _stage(conn, staging, run_id, run_uuid, publish_id, price_sha, repriced)
        dirs = {rel.rsplit("/", 1)[0] for table in TABLES for _, rel in staged[table]}
        dirs |= {f"runs/run={run_uuid}", f"prices/run={run_uuid}"}
        # After the COPY (its days come from the staged files) but before the first file enters the
        # lake: whatever a crash from here on leaves, the next publish of this run finds and deletes.
        intent = json.dumps({"dirs": sorted(dirs)}) + "\n"
        lake.write_bytes(intent_path(run_uuid, publish_id), intent.encode())
        files = [f for table in TABLES for f in _place(lake, staged[table], table)]
    rows = sum(f.rows for f in files if f.table == "requests")
    manifest = Manifest(
        run_uuid=run_uuid,
        publish_id=publish_id,
        files=tuple(files),
        rows=rows,
        price_table_sha256=price_sha,
        published_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        repriced=repriced,
        source=source,
    )
    lake.write_bytes(manifest_path(run_uuid), manifest.to_json())
    _cleanup(lake, run_uuid, manifest)
    if damaged:
        action = "repaired"
    else:
        action = "published" if old is None else ("repriced" if repriced else "republished")
    return PublishOutcome(run_id, run_uuid, action, rows, len(files), sum(f.bytes for f in files), price_sha)
