"""The selection every reader shares (summary, export, report, estimate's history, pricing diff):
runs, time window, models, tags, and whether simulated runs count.

Kept in one place so `summary --json` and the report, given the same filters, select exactly the
same requests. Values are always bound as parameters.

Simulated runs (``runs.simulated``: every answer came from ``costlens serve-sim``, which says so)
are left out unless ``include_simulated`` is set or the selection names runs by id: their latency
and token counts are made up, and would otherwise show as a model's p50, in the spend and in
estimates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from costlens.errors import ConfigError

__all__ = ["Filters", "parse_when", "simulated_counts"]


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
    # Runs by UUID (runs.run_uuid), or by the first characters of one: the id that names a run
    # across machines and in a lake (the short number is local to one database or one lake).
    run_uuids: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    models: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    include_simulated: bool = False
    # Runs never selected, whatever else matches (estimate vs actual leaves the run it is set beside
    # out of the history it learns from).
    exclude_run_ids: Sequence[int] = ()

    @property
    def drops_simulated(self) -> bool:
        """Whether this selection leaves simulated runs out (it names no runs, and does not ask for them)."""
        return not self.include_simulated and not self.run_ids and not self.run_uuids

    def where(self, alias: str = "c") -> tuple[str, list[Any]]:
        """SQL condition over request_costs (aliased ``alias``) and its parameters."""
        clauses: list[str] = ["TRUE"]
        params: list[Any] = []
        if self.run_ids:
            clauses.append(f"{alias}.run_id IN ({', '.join('?' for _ in self.run_ids)})")
            params.extend(self.run_ids)
        if self.run_uuids:
            clauses.append(
                f"{alias}.run_id IN (SELECT run_id FROM runs WHERE "
                + " OR ".join("starts_with(CAST(run_uuid AS VARCHAR), lower(?))" for _ in self.run_uuids)
                + ")"
            )
            params.extend(self.run_uuids)
        if self.exclude_run_ids:
            clauses.append(f"{alias}.run_id NOT IN ({', '.join('?' for _ in self.exclude_run_ids)})")
            params.extend(self.exclude_run_ids)
        if self.drops_simulated:
            clauses.append(f"{alias}.run_id NOT IN (SELECT run_id FROM runs WHERE simulated)")
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

    def without_simulated_rule(self) -> Filters:
        """The same selection with simulated runs in: to count what the rule left out."""
        return replace(self, include_simulated=True)


def simulated_counts(conn: Any, filters: Filters) -> tuple[int, int]:
    """(runs, requests) of simulated runs in the selection when they are included, or left out by it when not."""
    where, params = filters.without_simulated_rule().where("c")
    (row,) = conn.execute(
        f"""SELECT count(DISTINCT c.run_id), count(*) FROM request_costs c
            WHERE {where} AND c.run_id IN (SELECT run_id FROM runs WHERE simulated)""",
        params,
    ).fetchall()
    return int(row[0]), int(row[1])
