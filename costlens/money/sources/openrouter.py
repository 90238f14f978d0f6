"""Import a saved OpenRouter ``GET /api/v1/models`` response into a costlens price sheet.

The response is ``{"data": [{"id", "pricing": {...}, "context_length", ...}]}`` with prices as
decimal **strings**, USD per token (per request for ``request``). They are parsed as exact
decimals and moved to per 1M tokens; more than 9 places is rounded and listed.

What the numbers mean, and how they land in the sheet:

* ``prompt`` / ``completion`` -> input / output. Both ``"0"`` (the ``:free`` ids) is a free
  model: ``0`` cells, not unpriced.
* ``input_cache_read``, ``input_cache_write``, ``internal_reasoning``: ``"0"`` means "not priced
  separately" — the cell stays empty, so costlens bills those tokens at the input/output
  price — not "free".
* ``request`` -> ``per_request_usd`` when non-zero.
* ``-1`` (router / auto models whose price depends on where they route) skips the model.
* ``web_search``, ``image`` and any other non-zero price costlens does not meter is listed as
  omitted. OpenRouter has no long-context tiers and no batch prices, so every model gets
  exactly one standard row.
* A model whose ``architecture.output_modalities`` lacks ``"text"`` is skipped (non-chat).

The provider is the id's prefix before ``/``. A repeated id (case-insensitively) is an error
naming both JSON paths: OpenRouter ids are unique, so a repeat means a corrupted save.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from costlens.errors import ConfigError
from costlens.money.sources.base import (
    MAX_EXPONENT,
    ImportResult,
    Listed,
    SheetRow,
    expect_object,
    json_path,
    load_json,
    narrow_providers,
    optional_count,
    per_token_to_per_1m,
    price_cell,
    value_error,
)
from costlens.money.sources.base import model_id as check_id  # (model_id is a local name here)

__all__ = ["OpenRouterImporter"]

_DECIMAL: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# pricing key -> (sheet column, whether "0" means "not priced separately")
_MAPPED: Final[Mapping[str, tuple[str, bool]]] = {
    "prompt": ("input_per_1m", False),
    "completion": ("output_per_1m", False),
    "input_cache_read": ("cached_input_per_1m", True),
    "input_cache_write": ("cache_write_per_1m", True),
    "internal_reasoning": ("reasoning_per_1m", True),
}
_OMITTED_NAMES: Final[Mapping[str, str]] = {
    "web_search": "web search fees",
    "image": "image input prices",
}


# Keys whose type is checked; any other key is listed when non-zero and otherwise ignored.
_STRICT: Final = frozenset({*_MAPPED, "request", *_OMITTED_NAMES})


class OpenRouterImporter:
    """``pricing import openrouter FILE``: a saved /api/v1/models response."""

    name = "openrouter"
    needs_file = True

    def load(self, file: Path | None, *, providers: Sequence[str] = ()) -> ImportResult:
        if file is None:
            raise ConfigError("openrouter needs the saved /api/v1/models response FILE")
        name = str(file)
        data, digest = load_json(file)
        label = f"openrouter sha256:{digest}"
        top = expect_object(data, "$", name, 'an object with "data"')
        models = top.get("data")
        if not isinstance(models, list):
            raise value_error(json_path("data"), "expected an array of models", name)
        seen: dict[str, str] = {}
        entries: list[tuple[str, str, Mapping[str, Any], int]] = []
        for i, raw in enumerate(models):
            obj = expect_object(raw, json_path("data", i), name)
            model_id = obj.get("id")
            id_path = json_path("data", i, "id")
            if not isinstance(model_id, str) or not model_id.strip():
                raise value_error(id_path, "expected a non-empty string id", name)
            check_id(model_id, id_path, name)
            earlier = seen.get(model_id.lower())
            if earlier is not None:
                raise value_error(id_path, f"duplicate id {model_id!r} (also {earlier})", name)
            seen[model_id.lower()] = id_path
            provider = model_id.partition("/")[0] if "/" in model_id else ""
            entries.append((model_id, provider, obj, i))
        wanted = narrow_providers(providers, {p for _, p, _, _ in entries if p}, source="openrouter")
        rank = {p: n for n, p in enumerate(wanted)}
        rows: list[SheetRow] = []
        listed: list[Listed] = []
        imported = skipped = 0
        for model_id, provider, obj, i in entries:
            if wanted and provider not in rank:
                continue
            row = _row(model_id, provider, obj, i, label, name, listed)
            if row is None:
                skipped += 1
            else:
                imported += 1
                rows.append(row)
        return ImportResult(
            source=label,
            rows=tuple(rows),
            listed=tuple(listed),
            models_imported=imported,
            models_skipped=skipped,
        )


def _decimal(value: Any, path: str, file: str) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str) or _DECIMAL.fullmatch(value.strip()) is None:
        shown = (
            f"{value!r}"
            if isinstance(value, str)
            else "a JSON number"
            if isinstance(value, Decimal)
            else "a value"
        )
        raise value_error(path, f'expected a decimal string such as "0.0000025", got {shown}', file)
    try:
        number = Decimal(value.strip())
    except InvalidOperation:  # an exponent beyond what Decimal reads (1e-9999999999999999999999)
        number = None
    exponent = None if number is None else number.as_tuple().exponent
    if not isinstance(exponent, int) or abs(exponent) > MAX_EXPONENT:
        shown = value if len(value) <= 40 else value[:20] + "..." + value[-12:]
        raise value_error(path, f"{shown!r} is out of range (an exponent beyond ±{MAX_EXPONENT})", file)
    return number


def _row(
    model_id: str, provider: str, obj: Mapping[str, Any], i: int, label: str, file: str, listed: list[Listed]
) -> SheetRow | None:
    def skip(reason: str) -> None:
        listed.append(Listed(model_id, provider, reason, "skipped"))

    architecture = obj.get("architecture")
    if isinstance(architecture, dict):
        outputs = architecture.get("output_modalities")
        if isinstance(outputs, list) and outputs and "text" not in outputs:
            skip(f"not a chat model: output modalities {', '.join(map(str, outputs))}")
            return None
    pricing_path = json_path("data", i, "pricing")
    pricing = expect_object(obj.get("pricing"), pricing_path, file)
    values: dict[str, Decimal | None] = {}
    for key, value in pricing.items():
        if key in _STRICT:
            values[key] = _decimal(value, json_path("data", i, "pricing", key), file)
        elif _nonzero(value):  # a price OpenRouter added later: not metered, but not hidden
            listed.append(
                Listed(model_id, provider, f"prices ({key}) are not metered by costlens", "omitted")
            )
    if any(v == -1 for v in values.values()):
        skip("router/auto model: price -1 (depends on the model it routes to)")
        return None
    for key, value in values.items():
        if value is not None and value < 0:
            raise value_error(json_path("data", i, "pricing", key), f"negative price {value}", file)
    if values.get("prompt") is None or values.get("completion") is None:
        skip("no prompt/completion price")
        return None
    cells: dict[str, str] = {}
    for key, (column, zero_is_unpriced) in _MAPPED.items():
        value = values.get(key)
        if value is None or (zero_is_unpriced and value == 0):
            continue
        cells[column] = per_token_to_per_1m(
            value,
            path=json_path("data", i, "pricing", key),
            file=file,
            model=model_id,
            provider=provider,
            listed=listed,
        )
    request = values.get("request")
    if request:
        cells["per_request_usd"] = price_cell(
            request,
            shift=0,
            path=json_path("data", i, "pricing", "request"),
            file=file,
            model=model_id,
            provider=provider,
            listed=listed,
        )
    for key, value in values.items():
        if key in _MAPPED or key == "request" or not value:
            continue
        what = _OMITTED_NAMES[key]
        listed.append(Listed(model_id, provider, f"{what} ({key}) are not metered by costlens", "omitted"))
    context = optional_count(obj, "context_length", json_path("data", i, "context_length"), file)
    return SheetRow(
        model=model_id,
        provider=provider,
        context_window=str(context) if context else "",
        **cells,
        service_tier="standard",
        min_prompt_tokens="0",
        currency="USD",
        source=f"{label} {model_id}",
    )


def _nonzero(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value != 0
    if isinstance(value, str):
        text = value.strip()
        return bool(text) and not (_DECIMAL.fullmatch(text) is not None and Decimal(text) == 0)
    return False
