"""Checking a job's totals file (Bedrock's ``manifest.json.out``) against what was replayed.

The provider's own count of records, successes, errors and tokens is an independent check on a
replay: a file cut short, a line rejected, a usage bucket read wrongly all show as a figure that
disagrees. A disagreement is reported (a warning, and ``agrees: false`` in ``--json``), never an
error: everything replayed is stored either way, and the exit code is the replay's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from costlens.errors import InputError
from costlens.ingest.formats.base import JobTotals

__all__ = ["Figure", "TotalsCheck", "check_totals", "read_totals"]


@dataclass(frozen=True, slots=True)
class Figure:
    name: str  # as the totals file spells it
    expected: int  # the totals file's
    replayed: int

    @property
    def agrees(self) -> bool:
        return self.expected == self.replayed


@dataclass(frozen=True, slots=True)
class TotalsCheck:
    """One totals file against the runs it covers; ``error`` when it could not be read."""

    file: str
    run_ids: tuple[int, ...]
    figures: tuple[Figure, ...] = ()
    error: str | None = None

    @property
    def agrees(self) -> bool | None:
        """True when every figure agrees; None when the file could not be read."""
        if self.error is not None:
            return None
        return all(f.agrees for f in self.figures)

    @property
    def disagreements(self) -> tuple[Figure, ...]:
        return tuple(f for f in self.figures if not f.agrees)


def read_totals(path: Path, spec: JobTotals) -> dict[str, int]:
    """The figures of ``spec`` that ``path`` holds; an InputError naming the file and field otherwise."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"cannot read the manifest: {e.strerror or e}", file=str(path)) from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"the manifest is not JSON: {e}", file=str(path)) from e
    if not isinstance(value, dict):
        raise InputError("the manifest is not a JSON object", file=str(path))
    figures: dict[str, int] = {}
    for name in spec.figures:
        if name not in value:
            continue
        number = value[name]
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise InputError(
                f"{name} is not a non-negative integer ({json.dumps(number)[:40]})", file=str(path)
            )
        figures[name] = number
    if not figures:
        raise InputError(f"the manifest has none of {', '.join(spec.figures)}", file=str(path))
    return figures


_MEASURES = """
SELECT
    (SELECT coalesce(sum(lines_read), 0) FROM runs WHERE list_contains($runs, run_id)) AS lines_read,
    count(*) AS stored,
    count(*) FILTER (WHERE status = 'ok') AS ok,
    count(*) FILTER (WHERE status = 'error') AS failed,
    coalesce(sum(prompt_tokens), 0) AS input_tokens,
    coalesce(sum(completion_tokens), 0) AS output_tokens
FROM results WHERE list_contains($runs, run_id)
"""


def check_totals(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    spec: JobTotals,
    run_ids: Sequence[int],
    expected: Mapping[str, int],
) -> TotalsCheck:
    """Each figure of ``expected`` against the replay's measure of it over ``run_ids``."""
    cursor = conn.execute(_MEASURES, {"runs": list(run_ids)})
    names = [d[0] for d in cursor.description or ()]
    (row,) = cursor.fetchall()  # an aggregate has one row
    measured = {name: int(value) for name, value in zip(names, row, strict=True)}
    figures = tuple(Figure(name, number, measured[spec.figures[name]]) for name, number in expected.items())
    return TotalsCheck(str(path), tuple(run_ids), figures)
