"""The lake's layout, schema version and manifests (README "The lake" documents them for other engines).

    costlens-lake.json                                  {"format": "costlens-lake", "schema_version": 1}
    manifests/run=<uuid>.json                           a run's files: written last, replaced whole
    requests/day=YYYY-MM-DD/run=<uuid>/part-<publish>-<i>.parquet   one priced row per request
    runs/run=<uuid>/part-<publish>-0.parquet            the run's own row
    prices/run=<uuid>/part-<publish>-0.parquet          the price rows that priced it
    _intents/run=<uuid>/<publish>.json                  a publish in progress (what it may leave behind)

A reader takes the files the manifests list and nothing else, so a publish that crashed half-way
(its files written, its manifest not) is invisible, and a re-publish that replaces a manifest
switches every reader from the old files to the new ones at once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from costlens.errors import LakeError

__all__ = [
    "LAKE_FORMAT",
    "LAKE_MARKER",
    "LAKE_SCHEMA_VERSION",
    "REQUEST_COLUMNS",
    "LakeFile",
    "Manifest",
    "intent_path",
    "manifest_path",
]

LAKE_FORMAT = "costlens-lake"
LAKE_MARKER = "costlens-lake.json"
LAKE_SCHEMA_VERSION = 1
MANIFESTS = "manifests"
INTENTS = "_intents"
TABLES = ("requests", "runs", "prices")

# The requests table's columns after run_uuid and source_run_id, in file order: the cost view's
# (costlens/money/sql/request_costs.sql), with prompt/completion tokens named input/output as in
# export, and price_table_sha256 (the sheets that priced the row) after price_id. Money is
# DECIMAL(38,15); times are UTC instants; stop and extra_params are JSON text.
REQUEST_COLUMNS: tuple[str, ...] = (
    "request_id", "custom_id", "line_no", "requested_model", "response_model", "priced_model", "model",
    "service_tier", "price_tier", "price_id", "price_table_sha256", "price_effective_from", "source_format",
    "status", "http_status", "error_type", "error_message", "response_id", "provider_request_id", "finish_reasons",
    "usage_source", "input_tokens", "output_tokens", "total_tokens", "cached_tokens", "cache_write_tokens",
    "cache_write_1h_tokens", "reasoning_tokens", "uncached_input_tokens", "input_cost_usd", "output_cost_usd",
    "request_cost_usd", "cost_usd", "priced", "price_note", "tier_fallback", "sheet_fallback", "price_sheet",
    "price_sheet_name", "price_match", "temperature", "max_tokens", "stream", "top_p", "frequency_penalty",
    "presence_penalty", "stop", "n", "user", "extra_params", "msg_count", "messages_sha256", "created_at",
    "priced_at", "occurred_at", "started_at", "completed_at", "latency_ms", "ttft_ms", "attempts", "source_line_no",
    "reported_cost_usd", "reported_cost_source",
)  # fmt: skip
# Lake name -> cost view name, where they differ.
RENAMED = {"input_tokens": "prompt_tokens", "output_tokens": "completion_tokens"}
TIME_COLUMNS = (
    "price_effective_from",
    "created_at",
    "priced_at",
    "occurred_at",
    "started_at",
    "completed_at",
)
JSON_COLUMNS = ("stop", "extra_params")
# What a manifest may list: a Parquet file of one of the tables, named with these characters only
# (days, run UUIDs and publish ids need no others), never outside the lake.
_FILE_PATH = re.compile(r"(requests|runs|prices)/[A-Za-z0-9=._/-]+\.parquet")


def _count(value: object) -> int:
    """A manifest's row or byte count: a whole number from 0 to 2^63 - 1 (what Parquet and the
    readers hold)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"expected a count from 0 to 2^63 - 1, got {str(value)[:40]}")
    return value


def manifest_path(run_uuid: str) -> str:
    return f"{MANIFESTS}/run={run_uuid}.json"


def intent_path(run_uuid: str, publish_id: str) -> str:
    return f"{INTENTS}/run={run_uuid}/{publish_id}.json"


@dataclass(frozen=True)
class LakeFile:
    table: str
    path: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class Manifest:
    run_uuid: str
    publish_id: str
    files: tuple[LakeFile, ...]
    rows: int
    price_table_sha256: str
    published_at: str
    repriced: bool
    # What the run was when published (status, finished_at, results): a changed run publishes anew.
    source: dict[str, Any]
    schema_version: int = LAKE_SCHEMA_VERSION

    def files_of(self, table: str) -> list[LakeFile]:
        return [f for f in self.files if f.table == table]

    def to_json(self) -> bytes:
        doc = {
            "format": LAKE_FORMAT,
            "schema_version": self.schema_version,
            "run_uuid": self.run_uuid,
            "publish_id": self.publish_id,
            "rows": self.rows,
            "price_table_sha256": self.price_table_sha256,
            "published_at": self.published_at,
            "repriced": self.repriced,
            "source": self.source,
            "files": [
                {"table": f.table, "path": f.path, "rows": f.rows, "bytes": f.bytes} for f in self.files
            ],
        }
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes, where: str) -> Manifest:
        try:
            doc = json.loads(data)
            version = doc["schema_version"]
            if not isinstance(version, int) or version > LAKE_SCHEMA_VERSION:
                raise LakeError(
                    f"{where}: lake schema version {version} is newer than this costlens reads "
                    f"({LAKE_SCHEMA_VERSION}): upgrade costlens"
                )
            files = tuple(
                LakeFile(str(f["table"]), str(f["path"]), _count(f["rows"]), _count(f["bytes"]))
                for f in doc["files"]
            )
            for f in files:
                if f.table not in TABLES or not _FILE_PATH.fullmatch(f.path) or ".." in f.path.split("/"):
                    raise LakeError(f"{where}: manifest lists an unexpected file {f.path!r}")
            return cls(
                run_uuid=str(doc["run_uuid"]),
                publish_id=str(doc["publish_id"]),
                files=files,
                rows=_count(doc["rows"]),
                price_table_sha256=str(doc["price_table_sha256"]),
                published_at=str(doc["published_at"]),
                repriced=bool(doc.get("repriced", False)),
                source=dict(doc.get("source") or {}),
                schema_version=version,
            )
        except LakeError:
            raise
        except (ValueError, KeyError, TypeError, ArithmeticError, RecursionError) as e:
            detail = str(e)[:200]
            raise LakeError(f"{where}: not a costlens manifest ({type(e).__name__}: {detail})") from e
