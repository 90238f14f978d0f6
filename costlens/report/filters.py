"""Row filters shared by summary, export and report: runs, time window, models, tags.

Kept in one place so `summary --json` and the report, given the same filters,
select exactly the same requests. Values are always bound as parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from costlens.errors import ConfigError

__all__ = ["Filters", "parse_when"]


def parse_when(text: str, *, option: str) -> datetime:
    """ISO date or datetime (UTC if no offset) → naive UTC datetime."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(
            f"{option}: {text!r} is not an ISO date or datetime (e.g. 2026-11-27 or 2026-11-27T18:00)"
        ) from e
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass(frozen=True, kw_only=True)
class Filters:
    run_ids: Sequence[int] = ()
    since: datetime | None = None
    until: datetime | None = None
    models: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    def where(self, alias: str = "c") -> tuple[str, list[Any]]:
        """SQL condition over request_costs (aliased ``alias``) and its parameters."""
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        if self.run_ids:
            clauses.append(f"{alias}.run_id IN ({', '.join('?' for _ in self.run_ids)})")
            params.extend(self.run_ids)
        if self.since is not None:
            clauses.append(f"{alias}.occurred_at >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append(f"{alias}.occurred_at < ?")
            params.append(self.until)
        if self.models:
            clauses.append(f"lower({alias}.model) IN ({', '.join('lower(?)' for _ in self.models)})")
            params.extend(self.models)
        for key, value in sorted(self.tags.items()):
            clauses.append(
                f"{alias}.run_id IN (SELECT run_id FROM runs WHERE json_extract_string(tags, ?) = ?)"
            )
            params.extend([f"$.{key}" if key.isidentifier() else f'$."{key}"', value])
        return " AND ".join(clauses), params
