"""Anthropic Admin API cost report pages (``GET /v1/organizations/cost_report``, 1d buckets), saved as returned.

Results are ``{"amount": "123.45", "currency": "USD", "cost_type": "tokens", "description",
"model", "service_tier": "batch", "token_type", "context_window", "workspace_id"}``.
**``amount`` is a decimal string in cents** (the currency's lowest unit): ``"123.45"`` is
$1.2345, read exactly from its text and moved two places, never through a float. Costs already
include the batch discount (they are compared as they are). Priority-tier costs are not in this
report (Anthropic says so).

Grouped by description, a token cost names its ``model``; a cost without one (``cost_type``
``web_search``, ``code_execution``) is a charge without a model, kept apart and named as such.
Not grouped (``model``, ``cost_type`` and ``description`` all null), a result is every model's cost.
"""

from __future__ import annotations

from decimal import Decimal

from costlens.reconcile.sources.anthropic_usage import anthropic_tier
from costlens.reconcile.sources.base import (
    BucketRow,
    Document,
    ExportRead,
    Measure,
    Window,
    as_object,
    bad,
    day_of_window,
    decimal_text,
    first_result,
    grouping_key,
    json_path,
    json_type,
    optional_text,
    results_of,
    rfc3339_field,
    usd,
)

__all__ = ["AnthropicCostReader", "cents_to_usd"]


def cents_to_usd(cents: Decimal) -> Decimal:
    """``Decimal("123.45")`` cents -> ``Decimal("1.2345")`` USD, exactly (the exponent moves by 2;
    ``scaleb`` would round to the context's 28 digits)."""
    sign, digits, exponent = cents.as_tuple()
    assert isinstance(exponent, int)  # decimal_text admits finite values only
    return Decimal((sign, digits, exponent - 2))


class AnthropicCostReader:
    kind = "anthropic-cost"
    family = "anthropic"
    description = "Anthropic Admin API cost report pages (/v1/organizations/cost_report)"
    measures: tuple[Measure, ...] = ("cost_usd",)

    def detect(self, document: Document) -> bool:
        result = first_result(document, "starting_at")
        return result is not None and "amount" in result and "uncached_input_tokens" not in result

    def read(self, document: Document) -> ExportRead:
        file = document.file
        rows: list[BucketRow] = []
        windows: list[Window] = []
        first_currency: tuple[str, str] | None = None
        for i, bucket in results_of(document.json, file, start_key="starting_at", end_key="ending_at"):
            where = json_path("data", i)
            start = rfc3339_field(bucket, "starting_at", where, file)
            end = rfc3339_field(bucket, "ending_at", where, file)
            day = day_of_window(start, end, where, file)
            windows.append(Window(start, end, where))
            seen: dict[tuple[tuple[str, str], ...], str] = {}
            for j, item in enumerate(bucket["results"]):
                path = f"{where}.results[{j}]"
                result = as_object(item, path, file)
                key = grouping_key(result, ("amount",))
                if key in seen:
                    raise bad(
                        path, f"duplicate result: same grouping as {seen[key]} in the same bucket", file
                    )
                seen[key] = path
                currency = result.get("currency")
                if not isinstance(currency, str) or not currency.strip():
                    raise bad(
                        f"{path}.currency", f"expected a currency code, got {json_type(currency)}", file
                    )
                code = currency.strip().upper()
                if first_currency is None:
                    first_currency = (code, f"{path}.currency")
                elif code != first_currency[0]:
                    raise bad(
                        f"{path}.currency",
                        f"mixed currencies: {currency!r} here, {first_currency[0]!r} at {first_currency[1]}",
                        file,
                    )
                if code != "USD":
                    raise bad(
                        f"{path}.currency",
                        f"currency {currency!r}: costlens's figures are USD, so only a USD export can be compared",
                        file,
                    )
                amount = result.get("amount")
                if not isinstance(amount, str):
                    raise bad(
                        f"{path}.amount",
                        f'expected a decimal string in cents (such as "123.45"), got {json_type(amount)}',
                        file,
                    )
                cost = cents_to_usd(decimal_text(amount, f"{path}.amount", file))
                model = optional_text(result, "model", path, file)
                cost_type = optional_text(result, "cost_type", path, file)
                description = optional_text(result, "description", path, file)
                unattributed = None
                if model is None and (cost_type is not None or description is not None):
                    unattributed = ", ".join(
                        part for part in (cost_type, repr(description) if description else None) if part
                    )
                rows.append(
                    BucketRow(
                        path=path,
                        day=day,
                        model=model,
                        unattributed=unattributed,
                        tier=anthropic_tier(optional_text(result, "service_tier", path, file)),
                        cost_usd=usd(cost, f"{path}.amount", file),
                    )
                )
        return ExportRead(rows=tuple(rows), buckets=len(windows), windows=tuple(windows))
