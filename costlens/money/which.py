"""``costlens pricing which``: which sheet, row and rule would price a model id, and why.

The answer comes from the cost view itself (through :func:`costlens.money.quote.quote`): a
hypothetical request for the id is priced inside a rolled-back transaction, and the view's
own ``price_match``, ``price_sheet_name`` and ``price_id`` say how it resolved. Explaining
the rules from a second implementation could disagree with what the bill actually uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import duckdb

from costlens.errors import ConfigError, StoreError
from costlens.money.decimal_text import format_decimal
from costlens.money.quote import QuoteRequest, quote

__all__ = ["Outcome", "Which", "which"]

Outcome = Literal["exact", "alias", "pattern", "prefix", "fallback", "unpriced"]

_ROW = """
SELECT model, provider, service_tier, min_prompt_tokens, input_per_1m, output_per_1m, cached_input_per_1m,
       cache_write_per_1m, cache_write_1h_per_1m, reasoning_per_1m, per_request_usd, effective_from,
       effective_to, source, price_file, price_line
FROM prices WHERE price_id = ?
"""


@dataclass(frozen=True, slots=True)
class Which:
    """How ``model_id`` is priced at ``tier`` for a prompt of ``prompt_tokens`` at time ``at``."""

    model_id: str
    tier: str
    prompt_tokens: int
    at: datetime
    outcome: Outcome
    #: "exact", "alias <alias>", "pattern <kind:pattern>", each prefixed "prefix stripped, " when the
    #: provider prefix had to go first; None when nothing matched.
    rule: str | None
    sheet: str | None
    priced_model: str | None
    price_tier: str | None
    row: dict[str, Any] | None
    note: str | None

    @property
    def reason(self) -> str:
        """One sentence on why the id resolves (or does not) as it does."""
        if self.outcome == "unpriced":
            why = (self.note or "unpriced").removeprefix("unpriced: ")
            if self.priced_model is None:
                return f"no sheet knows {self.model_id!r} (no exact id, alias or pattern, with or without its prefix)"
            return f"{self.priced_model!r} is known to sheet {self.sheet!r}, but {why}"
        how = {
            "exact": "the id itself",
            "alias": "an alias",
            "pattern": "a pattern",
            "prefix": "the id without its provider prefix",
            "fallback": "a fallback sheet (the main sheet does not know it)",
        }[self.outcome]
        text = f"priced as {self.priced_model!r} through {how}: {self.rule}"
        if self.price_tier is not None and self.price_tier != self.tier:
            text += f"; no {self.tier} row, so the standard row is used (tier fallback)"
        return text

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return format_decimal(value)
            if isinstance(value, datetime):
                return value.isoformat()
            return value

        return {
            "model_id": self.model_id,
            "tier": self.tier,
            "input_tokens": self.prompt_tokens,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "rule": self.rule,
            "sheet": self.sheet,
            "priced_model": self.priced_model,
            "price_tier": self.price_tier,
            "row": None if self.row is None else {k: plain(v) for k, v in self.row.items()},
            "note": self.note,
            "reason": self.reason,
        }


def _outcome(rule: str | None, sheet_fallback: bool, priced: bool) -> Outcome:
    if not priced or rule is None:
        return "unpriced"
    if sheet_fallback:
        return "fallback"
    if rule.startswith("prefix stripped"):
        return "prefix"
    kind = rule.split(" ", 1)[0]
    return kind if kind in ("exact", "alias", "pattern") else "unpriced"  # type: ignore[return-value]


def which(
    conn: duckdb.DuckDBPyConnection,
    model_id: str,
    *,
    tier: str = "standard",
    prompt_tokens: int = 0,
    at: datetime,
) -> Which:
    if not model_id.strip():
        raise ConfigError("MODEL_ID is empty")
    if prompt_tokens < 0:
        raise ConfigError("--prompt-tokens must be >= 0")
    q = quote(conn, [QuoteRequest(1, model_id, prompt_tokens, 0, tier)], at=at)[1]
    row: dict[str, Any] | None = None
    if q.price_id is not None:
        try:
            cursor = conn.execute(_ROW, [q.price_id])
            names = [d[0] for d in cursor.description or ()]
            found = cursor.fetchone()
        except duckdb.Error as e:
            raise StoreError(f"cannot read price row {q.price_id}: {e}") from e
        row = None if found is None else dict(zip(names, found, strict=True))
    sheet_fallback = q.price_sheet not in (None, "main")
    outcome = _outcome(q.price_match, sheet_fallback, q.priced and q.price_id is not None)
    return Which(
        model_id=model_id,
        tier=tier,
        prompt_tokens=prompt_tokens,
        at=at,
        outcome=outcome,
        rule=q.price_match,
        sheet=q.price_sheet,
        priced_model=q.priced_model,
        price_tier=q.price_tier,
        row=row,
        note=q.price_note,
    )
