"""What a request file would cost before sending it (``costlens estimate``); no network.

Per model:

* **input**: prompt tokens counted offline (:mod:`costlens.tokens`, OpenAI's message
  accounting), priced exactly;
* **worst case**: output bounded by ``max_tokens × n`` (or ``max_completion_tokens``). A
  request without a bound takes the model's expected output from past runs instead (so
  the worst case is an estimate for it, and says so); with no history either, its output
  is *unbounded*: the model's worst case is then not a number, and only its input cost
  is shown;
* **expected**: when the database holds past successful requests of the same model
  (run or replayed, usage reported), the mean completion tokens per choice there,
  times each request's ``n`` — the likely bill rather than the cap. The history is the
  selection of ``summary`` (:class:`~costlens.money.filters.Filters`: runs, window, tags;
  simulated runs left out unless asked), and every expected figure carries its sample size
  (``history_requests``);
* **against a run** (``actual_run``): a finished run (or replay) of the same file, set beside
  the estimate per model: requests, input tokens (counted vs reported), output tokens
  (expected vs actual) and money. The run itself, and anything after it started, is left
  out of the history, so the estimate is the one that could have been made before it.

Every figure is priced by the cost view itself (:mod:`costlens.money.quote`), so model
resolution, aliases and long-context rows are exactly those of a real run. Without
``--model``, every model of the price table with a standard price is estimated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb

from costlens.errors import ConfigError, InputError
from costlens.ingest.requests_file import RequestFile, stage_request_file
from costlens.money.decimal_text import format_decimal
from costlens.money.filters import Filters
from costlens.money.quote import QuoteRequest, output_bound, quote
from costlens.store.db import utcnow

__all__ = ["ActualModel", "ActualRun", "Estimate", "ModelEstimate", "estimate_file"]

# A stand-in for the body's model when every priced model is estimated: the file's own
# models do not matter then, so a line without one is not an error.
_ANY_MODEL = "(every priced model)"


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    model: str
    priced_model: str | None
    priced: bool
    requests: int
    input_tokens: int  # counted offline (costlens.tokens)
    # Output bounds: requests with max_tokens, those bounded by history instead, those unbounded.
    bounded_requests: int
    history_bounded_requests: int
    unbounded_requests: int
    max_output_tokens: int
    input_cost_usd: Decimal | None
    worst_output_cost_usd: Decimal | None
    worst_total_usd: Decimal | None
    # From past runs of the same model; None without history.
    history_requests: int
    expected_output_tokens: int | None
    expected_output_cost_usd: Decimal | None
    expected_total_usd: Decimal | None

    def as_json(self) -> dict[str, Any]:
        def money(value: Decimal | None) -> str | None:
            return None if value is None else format_decimal(value)

        return {
            "model": self.model,
            "priced_model": self.priced_model,
            "priced": self.priced,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "bounded_requests": self.bounded_requests,
            "history_bounded_requests": self.history_bounded_requests,
            "unbounded_requests": self.unbounded_requests,
            "max_output_tokens": self.max_output_tokens,
            "input_cost_usd": money(self.input_cost_usd),
            "worst_case_output_cost_usd": money(self.worst_output_cost_usd),
            "worst_case_total_usd": money(self.worst_total_usd),
            "history_requests": self.history_requests,
            "expected_output_tokens": self.expected_output_tokens,
            "expected_output_cost_usd": money(self.expected_output_cost_usd),
            "expected_total_usd": money(self.expected_total_usd),
        }


def _usd(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


@dataclass(frozen=True, slots=True)
class ActualModel:
    """What one model of the run actually came to (reported usage, priced by the cost view)."""

    model: str
    requests: int  # planned for this model in the run
    ok: int
    input_tokens: int
    output_tokens: int
    input_cost_usd: Decimal | None
    output_cost_usd: Decimal | None
    cost_usd: Decimal | None  # None when some ok request of it is unpriced

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "requests": self.requests,
            "ok": self.ok,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_cost_usd": _usd(self.input_cost_usd),
            "output_cost_usd": _usd(self.output_cost_usd),
            "cost_usd": _usd(self.cost_usd),
        }


@dataclass(frozen=True, slots=True)
class ActualRun:
    run_id: int
    name: str | None
    started_at: datetime
    models: tuple[ActualModel, ...]

    def model(self, key: str) -> ActualModel | None:
        return next((m for m in self.models if m.model.lower() == key.lower()), None)


@dataclass(frozen=True, slots=True)
class Estimate:
    requests: RequestFile
    models: tuple[ModelEstimate, ...]
    history: Filters = Filters()
    actual: ActualRun | None = None

    def as_json(self) -> dict[str, Any]:
        rf = self.requests
        return {
            "file": rf.path,
            "sha256": rf.sha256,
            "lines_read": rf.lines_read,
            "accepted": rf.accepted,
            "rejected": len(rf.rejects),
            "rejects": [{"line": r.line_no, "reason": r.reason} for r in rf.rejects],
            "history": {
                "since": None if self.history.since is None else self.history.since.isoformat() + "Z",
                "until": None if self.history.until is None else self.history.until.isoformat() + "Z",
                "runs": [*self.history.run_ids, *self.history.run_uuids] or None,
                "tags": dict(self.history.tags) or None,
                "excluded_runs": list(self.history.exclude_run_ids) or None,
                "include_simulated": self.history.include_simulated,
            },
            "models": [m.as_json() for m in self.models],
            "actual": None if self.actual is None else self._actual_json(self.actual),
        }

    def _actual_json(self, actual: ActualRun) -> dict[str, Any]:
        rows = []
        for m in self.models:
            a = actual.model(m.model)
            row: dict[str, Any] = {"model": m.model, "estimate": m.as_json(), "actual": a and a.as_json()}
            if a is not None:
                row["difference"] = {
                    "input_tokens": a.input_tokens - m.input_tokens,
                    "output_tokens": None
                    if m.expected_output_tokens is None
                    else a.output_tokens - m.expected_output_tokens,
                    "cost_usd": _usd(
                        None
                        if a.cost_usd is None or m.expected_total_usd is None
                        else a.cost_usd - m.expected_total_usd
                    ),
                }
            rows.append(row)
        return {
            "run_id": actual.run_id,
            "name": actual.name,
            "started_at": actual.started_at.isoformat() + "Z",
            "models": rows,
        }


@dataclass(frozen=True, slots=True)
class _Line:
    messages: list[Any]
    bound: int | None  # max output tokens over all choices
    n: int


_Bound = Literal["bounded", "history", "unbounded"]


@dataclass(frozen=True, slots=True)
class _Planned:
    """One request on one model: quote ``key`` prices the worst case, ``key + 1`` the expected output."""

    key: int
    prompt: int
    worst: int
    expected: int | None
    kind: _Bound


def _priced_models(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute(
        """SELECT min(model) FROM prices
           WHERE service_tier = 'standard' AND input_per_1m IS NOT NULL AND output_per_1m IS NOT NULL
           GROUP BY lower(model) ORDER BY lower(min(model))"""
    ).fetchall()
    return [r[0] for r in rows]


def _history(
    conn: duckdb.DuckDBPyConnection, keys: Sequence[str], selection: Filters
) -> dict[str, tuple[int, Decimal]]:
    """Per model key (lower case): past successful requests with reported usage in the selection,
    and their completion tokens per choice."""
    where, params = selection.where("c")
    rows = conn.execute(
        f"""SELECT lower(c.model), count(*), sum(c.completion_tokens), sum(coalesce(c.n, 1))
            FROM request_costs c
            WHERE c.status = 'ok' AND c.usage_source = 'reported' AND c.completion_tokens IS NOT NULL
              AND lower(c.model) IN (SELECT unnest(CAST(? AS VARCHAR[]))) AND {where}
            GROUP BY 1""",
        [list(keys), *params],
    ).fetchall()
    return {
        key: (int(count), Decimal(int(tokens)) / Decimal(int(choices)))
        for key, count, tokens, choices in rows
    }


def _lines(conn: duckdb.DuckDBPyConnection) -> list[_Line]:
    lines: list[_Line] = []
    for body_text, max_tokens, n in conn.execute(
        "SELECT CAST(body AS VARCHAR), max_tokens, n FROM cl_req_input ORDER BY line_no"
    ).fetchall():
        body = json.loads(body_text)
        lines.append(_Line(body["messages"], output_bound(body, max_tokens, n), int(n or 1)))
    return lines


def _sum(values: Sequence[Decimal | None]) -> Decimal | None:
    """Exact sum; None (unpriced / unbounded) if any part is."""
    total = Decimal(0)
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _find_run(
    conn: duckdb.DuckDBPyConnection, staged: RequestFile, which: str
) -> tuple[int, str | None, datetime]:
    """The run ``which`` names (an id, or ``last``): finished, and planned from this very file."""
    if which.strip().lower() == "last":
        rows = conn.execute(
            "SELECT run_id FROM runs WHERE requests_sha256 = ? AND status <> 'running' "
            "ORDER BY started_at DESC, run_id DESC LIMIT 1",
            [staged.sha256],
        ).fetchall()
        if not rows:
            raise ConfigError(f"--actual last: no finished run or replay of {staged.path} in this database")
        run_id = int(rows[0][0])
    else:
        try:
            run_id = int(which)
        except ValueError:
            raise ConfigError(f"--actual {which!r}: expected a run id or last") from None
    rows = conn.execute(
        "SELECT name, status, requests_sha256, started_at FROM runs WHERE run_id = ?", [run_id]
    ).fetchall()
    if not rows:
        raise ConfigError(f"--actual {run_id}: no such run in this database")
    name, status, sha256, started_at = rows[0]
    if sha256 != staged.sha256:
        raise ConfigError(
            f"--actual {run_id}: run {run_id} was not planned from {staged.path} (its requests file differs)"
        )
    if status != "completed":
        raise ConfigError(
            f"--actual {run_id}: run {run_id} is {status.replace('_', ' ')}; estimate vs actual needs a "
            "finished run (resume it first)"
        )
    return run_id, name, started_at


def _actual(
    conn: duckdb.DuckDBPyConnection, run_id: int, name: str | None, started_at: datetime
) -> ActualRun:
    rows = conn.execute(
        """SELECT min(q.requested_model), count(*),
                  count(*) FILTER (WHERE c.status = 'ok'),
                  coalesce(sum(c.prompt_tokens), 0), coalesce(sum(c.completion_tokens), 0),
                  sum(c.input_cost_usd), sum(c.output_cost_usd), sum(c.cost_usd),
                  bool_or(c.status = 'ok' AND NOT c.priced)
           FROM requests q
           LEFT JOIN request_costs c ON c.run_id = q.run_id AND c.request_id = q.request_id
           WHERE q.run_id = ?
           GROUP BY lower(q.requested_model) ORDER BY 1""",
        [run_id],
    ).fetchall()
    models = tuple(
        ActualModel(
            model=str(model),
            requests=int(count),
            ok=int(ok),
            input_tokens=int(prompt),
            output_tokens=int(completion),
            input_cost_usd=None if unpriced else input_cost,
            output_cost_usd=None if unpriced else output_cost,
            cost_usd=None if unpriced else cost,
        )
        for model, count, ok, prompt, completion, input_cost, output_cost, cost, unpriced in rows
    )
    return ActualRun(run_id, name, started_at, models)


def estimate_file(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    models: Sequence[str] = (),
    *,
    history: Filters | None = None,
    actual_run: str | None = None,
) -> Estimate:
    """Estimate ``path`` on each of ``models`` (default: every priced model, or the models of
    ``actual_run``); ``history`` selects the past requests the expected output is learned from.
    With ``actual_run`` (a run id or ``last``), set the estimate beside that run. Nothing is stored."""
    from costlens import tokens  # lazy: loading a vocabulary takes a second

    if not path.is_file():
        raise InputError("no such file", file=str(path))
    if any(not m.strip() for m in models):
        raise ConfigError("--model must not be empty")
    selection = history or Filters()
    staged = stage_request_file(
        conn, path, default_model=models[0] if models else _ANY_MODEL, store_content=False
    )
    actual: ActualRun | None = None
    if actual_run is not None:
        run_id, name, started_at = _find_run(conn, staged, actual_run)
        actual = _actual(conn, run_id, name, started_at)
        # The estimate that could have been made before the run: without it, and nothing after it began.
        selection = replace(
            selection,
            exclude_run_ids=(*selection.exclude_run_ids, run_id),
            until=started_at if selection.until is None or selection.until > started_at else selection.until,
        )
        if not models:
            models = [m.model for m in actual.models]
    targets = list(dict.fromkeys(models)) or _priced_models(conn)
    lines = _lines(conn)
    now = utcnow()

    # How each model resolves (priced model or none), for the history lookup.
    probe = quote(
        conn,
        [QuoteRequest(key=i, model=m, prompt_tokens=0, completion_tokens=0) for i, m in enumerate(targets)],
        at=now,
    )
    keys = [(probe[i].priced_model or m).lower() for i, m in enumerate(targets)]
    learned = _history(conn, keys, selection)

    prompt_counts: dict[tuple[int, str], int] = {}  # counted once per encoding, not per model
    planned: list[list[_Planned]] = []
    requests: list[QuoteRequest] = []
    for mi, model in enumerate(targets):
        encoding = tokens.encoding_for_model(model)
        per_choice = learned[keys[mi]][1] if keys[mi] in learned else None
        rows: list[_Planned] = []
        for li, line in enumerate(lines):
            prompt = prompt_counts.get((li, encoding))
            if prompt is None:
                prompt = prompt_counts[(li, encoding)] = tokens.count_messages(line.messages, model=model)
            expected = (
                None if per_choice is None else int((per_choice * line.n).to_integral_value(ROUND_HALF_UP))
            )
            kind: _Bound = (
                "bounded" if line.bound is not None else "unbounded" if expected is None else "history"
            )
            row = _Planned(len(requests), prompt, line.bound or expected or 0, expected, kind)
            rows.append(row)
            requests.append(
                QuoteRequest(key=row.key, model=model, prompt_tokens=prompt, completion_tokens=row.worst)
            )
            if expected is not None:
                requests.append(
                    QuoteRequest(
                        key=row.key + 1, model=model, prompt_tokens=prompt, completion_tokens=expected
                    )
                )
        planned.append(rows)
    quotes = quote(conn, requests, at=now)

    results: list[ModelEstimate] = []
    for mi, (model, rows) in enumerate(zip(targets, planned, strict=True)):
        priced = probe[mi].priced
        count = learned[keys[mi]][0] if keys[mi] in learned else 0
        kinds = [r.kind for r in rows]
        input_cost = _sum([quotes[r.key].input_cost_usd for r in rows]) if priced else None
        worst_out = _sum([quotes[r.key].output_cost_usd for r in rows]) if priced else None
        if "unbounded" in kinds:
            worst_out = None
        expected_out = _sum([quotes[r.key + 1].output_cost_usd for r in rows]) if priced and count else None
        results.append(
            ModelEstimate(
                model=model,
                priced_model=probe[mi].priced_model,
                priced=priced,
                requests=len(rows),
                input_tokens=sum(r.prompt for r in rows),
                bounded_requests=kinds.count("bounded"),
                history_bounded_requests=kinds.count("history"),
                unbounded_requests=kinds.count("unbounded"),
                max_output_tokens=sum(r.worst for r in rows),
                input_cost_usd=input_cost,
                worst_output_cost_usd=worst_out,
                worst_total_usd=_sum([input_cost, worst_out]),
                history_requests=count,
                expected_output_tokens=sum(r.expected or 0 for r in rows) if count else None,
                expected_output_cost_usd=expected_out,
                expected_total_usd=_sum([input_cost, expected_out]),
            )
        )
    return Estimate(staged, tuple(results), selection, actual)
