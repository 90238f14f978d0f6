"""OpenAI organization Costs API pages (``GET /v1/organization/costs``, 1d buckets), saved as returned.

Results are ``{"object": "organization.costs.result", "amount": {"value": 0.06, "currency":
"usd"}, "line_item": ..., "project_id": ...}``. ``value`` arrives as a JSON number or as a
string; both are read as an exact decimal from their text. Costs already include batch
discounts, so they are compared as they are (the discount is applied once, by OpenAI).

``line_item`` (when grouped by it) is free text such as ``"gpt-4o-2024-08-06, input"``: the model,
then the token type. Costs are added up per model; a line item whose first part is not a model
id (it has spaces: ``"web search tool calls"``) is a charge without a model, kept apart and
named as such. Without ``line_item`` (not grouped by it) a result is every model's cost.
Every amount must be in USD: another currency, or two in one reconciliation, is an error.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from typing import Final

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
    unix_time_field,
    usd,
)

__all__ = ["OpenAICostsReader", "split_line_item"]

RESULT_OBJECT: Final = "organization.costs.result"
# A model id: no spaces; letters, digits and the punctuation ids use (ft:gpt-4o-mini:org::abc).
_MODEL_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")


@functools.lru_cache(maxsize=4096)  # a year of pages repeats a few hundred line items
def split_line_item(text: str) -> tuple[str | None, str]:
    """``"gpt-4o-2024-08-06, input"`` -> ``("gpt-4o-2024-08-06", "input")``; a line item whose
    first part is no model id -> ``(None, text)``."""
    head, _, rest = text.partition(",")
    head = head.strip()
    if _MODEL_ID.fullmatch(head):
        return head, rest.strip()
    return None, text.strip()


class OpenAICostsReader:
    kind = "openai-costs"
    family = "openai"
    description = "OpenAI organization Costs API pages (/v1/organization/costs)"
    measures: tuple[Measure, ...] = ("cost_usd",)

    def detect(self, document: Document) -> bool:
        result = first_result(document, "start_time")
        if result is None:
            return False
        if "object" in result:
            return bool(result["object"] == RESULT_OBJECT)
        return isinstance(result.get("amount"), dict)

    def read(self, document: Document) -> ExportRead:
        file = document.file
        rows: list[BucketRow] = []
        windows: list[Window] = []
        first_currency: tuple[str, str] | None = None
        for i, bucket in results_of(document.json, file, start_key="start_time", end_key="end_time"):
            where = json_path("data", i)
            if bucket.get("object", "bucket") != "bucket":
                raise bad(f"{where}.object", f"expected 'bucket', got {bucket.get('object')!r}", file)
            start = unix_time_field(bucket, "start_time", where, file)
            end = unix_time_field(bucket, "end_time", where, file)
            day = day_of_window(start, end, where, file)
            windows.append(Window(start, end, where))
            seen: dict[tuple[tuple[str, str], ...], str] = {}
            for j, item in enumerate(bucket["results"]):
                path = f"{where}.results[{j}]"
                result = as_object(item, path, file)
                kind = result.get("object", RESULT_OBJECT)
                if kind != RESULT_OBJECT:
                    raise bad(
                        f"{path}.object",
                        f"expected {RESULT_OBJECT!r}, got {kind!r} (not a costs page?)",
                        file,
                    )
                key = grouping_key(result, ("object", "amount"))
                if key in seen:
                    raise bad(
                        path, f"duplicate result: same grouping as {seen[key]} in the same bucket", file
                    )
                seen[key] = path
                amount = as_object(result.get("amount"), f"{path}.amount", file)
                currency = amount.get("currency")
                if not isinstance(currency, str) or not currency.strip():
                    raise bad(
                        f"{path}.amount.currency",
                        f"expected a currency code, got {json_type(currency)}",
                        file,
                    )
                code = currency.strip().lower()
                if first_currency is None:
                    first_currency = (code, f"{path}.amount.currency")
                elif code != first_currency[0]:
                    raise bad(
                        f"{path}.amount.currency",
                        f"mixed currencies: {currency!r} here, {first_currency[0]!r} at {first_currency[1]}",
                        file,
                    )
                if code != "usd":
                    raise bad(
                        f"{path}.amount.currency",
                        f"currency {currency!r}: costlens's figures are USD, so only a USD export can be compared",
                        file,
                    )
                value = amount.get("value")
                if isinstance(value, str):
                    cost = decimal_text(value, f"{path}.amount.value", file)
                elif isinstance(value, Decimal):
                    cost = value
                else:
                    raise bad(
                        f"{path}.amount.value",
                        f"expected a number or a decimal string, got {json_type(value)}",
                        file,
                    )
                line_item = optional_text(result, "line_item", path, file)
                model: str | None = None
                unattributed: str | None = None
                if line_item is not None:
                    model, _ = split_line_item(line_item)
                    if model is None:
                        unattributed = f"line item {line_item!r}"
                rows.append(
                    BucketRow(
                        path=path,
                        day=day,
                        model=model,
                        unattributed=unattributed,
                        cost_usd=usd(cost, f"{path}.amount.value", file),
                    )
                )
        return ExportRead(rows=tuple(rows), buckets=len(windows), windows=tuple(windows))
