"""Price requests that have not happened yet, through the cost view itself.

``costlens run --budget`` reserves each request's worst case before sending it, and
``costlens estimate`` prices a request file without sending anything. Both need the
cost of *hypothetical* usage on a model, and it has to be the same figure the cost
view would give for that usage: the same model resolution (aliases, provider
prefixes, case), the same tier fallback, the same long-context row, the same price
row in force. Re-implementing those rules in Python would let the two drift apart.

So the hypothetical requests are written into ``requests``/``results`` under run id
-1 inside a transaction, priced by the ``request_costs`` view, read back, and the
transaction is rolled back: nothing is ever stored, and every figure comes from the
one place where money is computed (``costlens/money/sql/request_costs.sql``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from costlens.errors import StoreError

__all__ = ["QUOTE_RUN_ID", "Quote", "QuoteRequest", "output_bound", "quote"]

QUOTE_RUN_ID = -1
_SOURCE = "quote"


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    """Usage to price: ``key`` is the caller's id for the row (unique within one call)."""

    key: int
    model: str
    prompt_tokens: int
    completion_tokens: int
    service_tier: str = "standard"


@dataclass(frozen=True, slots=True)
class Quote:
    """What the cost view says; costs are None when the model or its price is unknown."""

    key: int
    input_cost_usd: Decimal | None
    output_cost_usd: Decimal | None
    cost_usd: Decimal | None
    priced: bool
    priced_model: str | None
    price_note: str | None
    # How the price was found (for ``pricing which``): the row, its tier and sheet, and the rule.
    price_id: int | None = None
    price_tier: str | None = None
    price_sheet: str | None = None
    price_match: str | None = None
    request_cost_usd: Decimal | None = None


def output_bound(body: Mapping[str, Any], max_tokens: int | None, n: int | None) -> int | None:
    """Most output tokens a request can produce: ``max_tokens`` (else ``max_completion_tokens``) x ``n``."""
    bound = max_tokens
    if bound is None:
        extra = body.get("max_completion_tokens")
        bound = extra if isinstance(extra, int) and not isinstance(extra, bool) and extra > 0 else None
    return None if bound is None else int(bound) * int(n or 1)


_PRICE = """
SELECT request_id, input_cost_usd, output_cost_usd, cost_usd, priced, priced_model, price_note,
       price_id, price_tier, price_sheet_name, price_match, request_cost_usd
FROM request_costs WHERE run_id = $run_id ORDER BY request_id
"""


def quote(
    conn: duckdb.DuckDBPyConnection, requests: Sequence[QuoteRequest], *, at: datetime
) -> dict[int, Quote]:
    """Price each request at time ``at`` (naive UTC). Must not be called inside a transaction."""
    if not requests:
        return {}
    table = pa.table(
        {
            "key": pa.array([r.key for r in requests], pa.int64()),
            "model": pa.array([r.model for r in requests], pa.string()),
            "prompt_tokens": pa.array([r.prompt_tokens for r in requests], pa.int64()),
            "completion_tokens": pa.array([r.completion_tokens for r in requests], pa.int64()),
            "service_tier": pa.array([r.service_tier for r in requests], pa.string()),
        }
    )
    params = {"run_id": QUOTE_RUN_ID}
    try:
        conn.execute("BEGIN TRANSACTION")
    except duckdb.Error as e:
        raise StoreError(f"cannot price requests: {e}") from e
    try:
        conn.register("cl_quote_in", table)
        try:
            conn.execute(
                "INSERT INTO requests (run_id, request_id, custom_id, requested_model) "
                "SELECT $run_id, key, 'quote', model FROM cl_quote_in",
                params,
            )
            conn.execute(
                f"""INSERT INTO results (run_id, request_id, source_format, service_tier, status,
                                         usage_source, prompt_tokens, completion_tokens, total_tokens, priced_at)
                    SELECT $run_id, key, '{_SOURCE}', service_tier, 'ok', 'reported', prompt_tokens,
                           completion_tokens, prompt_tokens + completion_tokens, $at
                    FROM cl_quote_in""",
                {**params, "at": at},
            )
        finally:
            conn.unregister("cl_quote_in")
        rows = conn.execute(_PRICE, params).fetchall()
    except duckdb.Error as e:
        raise StoreError(f"cannot price requests: {e}") from e
    finally:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
    return {
        int(row[0]): Quote(int(row[0]), row[1], row[2], row[3], bool(row[4]), *row[5:])  # type: ignore[arg-type]
        for row in rows
    }
