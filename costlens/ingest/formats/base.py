"""The one small interface every result format implements (``ResultFormat``), and its parts.

A format is data, not code: SQL fragments that ``costlens.ingest.replay`` splices into one
staging statement, so a file is still parsed, detected, normalised and judged by DuckDB in
bulk, never by a Python loop over rows. Each format says:

- ``shape``: its part of the ``from_json`` shape every line is parsed with (the parts of all
  formats are merged into one, ``merge_shapes``), and ``content_shape``, parsed only under
  ``--store-content``;
- ``detect``: a SQL predicate over ``j`` (the parsed line); formats are tried in the fixed order
  of ``costlens.ingest.formats.FORMATS`` and the first that holds names the line's format;
- ``fields``: SQL over ``j``, ``line_no`` and ``line`` for the columns in ``FIELDS`` (ids,
  model, time, usage object, finish reasons, error...), NULL where a format has none;
- ``usage_dialect``: SQL naming the usage dialect (``costlens.ingest.formats.usage``) that turns
  its usage object into token buckets; ``ok``, ``error_type``, ``error_message``: its outcome,
  over the fields and ``e`` (the error object parsed with the merged ``error_shape``);
- ``checks``: SQL giving a reject reason or NULL, over everything above.

Optionally a ``FastPath`` (a narrower statement for the plainest lines of a batch format, which
must stage exactly what the full statement stages) and ``JobTotals`` (a totals file the
provider writes next to the results, checked against the replay).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "FIELDS",
    "STAGED_COLUMNS",
    "FastPath",
    "JobTotals",
    "Measure",
    "ResultFormat",
    "Shape",
    "merge_shapes",
]

# A from_json shape: key -> DuckDB type name ("JSON", "VARCHAR", ...), a nested shape, or [shape].
Shape = Mapping[str, Any]

# What a format computes from its line (``fields``), with the type of the NULL it gets otherwise.
FIELDS: Mapping[str, str] = {
    "id_json": "JSON",  # the line's own id (custom_id, key, recordId), as JSON: a string or integer
    "id_default": "VARCHAR",  # the custom_id of a line that carries none (the line number)
    "response_id": "VARCHAR",
    "provider_request_id": "VARCHAR",
    "response_model": "VARCHAR",
    "created_at": "TIMESTAMP",  # naive UTC; NULL = the line carries no time (priced at --at / now)
    "body_tier": "VARCHAR",  # service tier the body reports (non-batch formats: flex, priority)
    "usage_json": "JSON",  # the usage object as reported (results.raw_usage)
    "finish_reasons": "VARCHAR[]",
    "http_status": "BIGINT",
    "error_json": "JSON",  # the error: an object (parsed into ``e``) or a string
    "completion": "JSON",  # completion texts as a JSON array; used only with --store-content
}

# The columns of a staged chunk, in order: what the full statement selects and the loaders insert.
STAGED_COLUMNS: tuple[str, ...] = (
    "line_no",
    "reason",
    "fmt",
    "custom_id",
    "response_id",
    "provider_request_id",
    "response_model",
    "status",
    "http_status",
    "error_type",
    "error_message",
    "finish_reasons",
    "usage_source",
    "usage_format",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "raw_usage",
    "created_at",
    "service_tier",
    "reported_cost_usd",
    "reported_cost_source",
    "completion",
)

# What a totals file's figure is compared with, over the runs it covers.
Measure = Literal["lines_read", "stored", "ok", "failed", "input_tokens", "output_tokens"]


@dataclass(frozen=True, kw_only=True)
class FastPath:
    """A cheaper statement for a batch format's plainest lines (``replay.ChunkStager``).

    ``sql`` reads ``cl_chunk(line_no, line)``; ``__LINE_SHAPE__`` is replaced by ``shape`` (merged
    with ``content_shape`` under --store-content) and ``__COMPLETION__`` by
    ``",\\n    <completion> AS completion"`` (or nothing). It selects ``line_no``, ``fast`` (the
    line is taken), ``reason`` (non-NULL when it is not: the full statement stages it) and every
    staged column not in ``constants``; ``constants`` fills the rest at insert time (SQL over
    that table), ``service_tier`` and ``completion`` excepted, which the replay fills. A line it
    takes must stage exactly as the full statement would stage it (tests/test_replay_fastpath.py,
    tests/test_formats_gemini.py hold the two equal).
    """

    shape: Shape
    content_shape: Shape = field(default_factory=dict)
    sql: str
    completion: str
    constants: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class JobTotals:
    """A file the provider writes beside a job's results with its totals (Bedrock: manifest.json.out).

    Looked for in the directory of a replayed file that held lines of the format (or whose name
    ends with ``result_suffix``), or given with ``replay --manifest``. Each figure present in it is
    compared with the replay's ``Measure`` of the runs it covers.
    """

    file_name: str
    result_suffix: str
    figures: Mapping[str, Measure]


@dataclass(frozen=True, kw_only=True)
class ResultFormat:
    """One result file format: its name, shape, detection and rules, as SQL (module docstring)."""

    name: str  # results.source_format
    # How the format is called in the "unrecognised line" reason (None: said by another format).
    expected: str | None
    batch: bool  # priced at the batch tier under --tier auto
    detect: str
    shape: Shape
    content_shape: Shape = field(default_factory=dict)
    error_shape: Shape = field(default_factory=dict)
    fields: Mapping[str, str]
    usage_dialect: str | None = None  # SQL over j and u naming a dialect of usage.DIALECTS
    ok: str
    error_type: str
    error_message: str
    checks: tuple[str, ...] = ()
    id_name: str = "custom_id"  # the line's id as reject reasons name it
    usage_label: str = "usage"  # the usage object as reject reasons name it
    fast: FastPath | None = None
    totals: JobTotals | None = None

    def __post_init__(self) -> None:
        unknown = set(self.fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"format {self.name}: unknown fields {sorted(unknown)}")
        if self.fast is not None and not self.batch:
            raise ValueError(f"format {self.name}: a fast path stages batch lines only")


def merge_shapes(*shapes: Shape) -> dict[str, Any]:
    """One from_json shape holding every key of ``shapes``; a key typed two ways is an error."""
    merged: dict[str, Any] = {}
    for shape in shapes:
        for key, value in shape.items():
            merged[key] = _merge(key, merged[key], value) if key in merged else _copy(value)
    return merged


def _merge(key: str, old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, Mapping):
        return merge_shapes(old, new)
    if isinstance(old, list) and isinstance(new, list):
        return [_merge(key, old[0], new[0])]
    if old != new:
        raise ValueError(f"shape key {key!r} typed both {old!r} and {new!r}")
    return old


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return merge_shapes(value)
    if isinstance(value, list):
        return [_copy(value[0])]
    return value
