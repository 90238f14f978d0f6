"""Rejected input lines: what was wrong, where, and the raw text for the rejects table.

SQL finds *that* a line is unparsable; for those few lines Python's json module
then says *why* (with the column), which is what a person needs to fix the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["RAW_LIMIT", "Reject", "explain_unparsed"]

# Keep enough of a rejected line to see the problem without storing a huge blob.
RAW_LIMIT = 10_000


_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


@dataclass(frozen=True, slots=True)
class Reject:
    file: str
    line_no: int
    reason: str
    raw: str | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line_no}: {self.reason}"


def explain_unparsed(file: str, line_no: int, reason: str, line: str | None) -> Reject:
    """Refine the SQL reason with Python's parser: where the JSON breaks (column), or that it is no object."""
    raw = line.rstrip("\r\n") if line is not None else None
    if raw is not None:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            reason = f"invalid JSON: {e.msg} (column {e.colno})"
        except RecursionError:
            reason = "JSON nested too deeply to read"
        else:
            if not isinstance(value, dict):
                reason = f"not a JSON object (got {_JSON_TYPE_NAMES.get(type(value), 'a value')})"
    if raw is not None and len(raw) > RAW_LIMIT:
        raw = raw[:RAW_LIMIT]
    return Reject(file, line_no, reason, raw)
