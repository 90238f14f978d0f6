"""Import a saved models.dev ``api.json`` into a costlens price sheet.

The file is ``{provider_id: {"models": {model_id: {"cost": {...}, "limit": {...},
"modalities": {...}}}}}`` with prices already in USD **per 1M tokens**, as JSON numbers (read
as ``Decimal`` from their text; more than 9 places is rounded and listed).

* ``cost.input`` / ``cost.output`` -> input / output (``0`` = free); both are needed, else the
  model is skipped. ``cost.cache_read`` / ``cache_write`` / ``reasoning``: ``0`` means "not priced
  separately" (empty cell: billed at input/output), the same reading as OpenRouter's, because
  models.dev writes ``cache_write: 0`` for providers that bill cache writes as plain input.
  models.dev has no 1-hour cache-write price and no per-request fee.
* Long context: ``cost.tiers`` ``[{"tier": {"type": "context", "size": N}, "input", ...}]`` is
  preferred over the legacy ``cost.context_over_200k`` (read as a context tier of size
  200000). A context tier applies *above* ``size`` -> a row at ``min_prompt_tokens = N + 1``
  holding every field at that level (a field the tier does not give keeps the price of the
  level below). A tier of another type is listed as omitted.
* ``cost.input_audio`` / ``output_audio`` and other non-zero prices costlens does not meter
  are listed as omitted. ``limit.context`` is the context window (0 = unknown).
* No ``cost`` -> skipped. Output modalities without ``"text"`` (embeddings, image or audio
  generators) -> skipped as non-chat.

The same model id under several providers (models.dev lists a model under every provider
that serves it): the first provider in the file's order is kept (JSON object order, which
is models.dev's own order), the others are listed as duplicates; with ``--provider`` only
those providers take part and the first in the given order wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from costlens.errors import ConfigError
from costlens.money.sources.base import (
    MAX_COUNT,
    ImportResult,
    Listed,
    SheetRow,
    expect_object,
    json_path,
    load_json,
    model_id,
    narrow_providers,
    optional_count,
    optional_number,
    pick_owners,
    price_cell,
    value_error,
)

__all__ = ["ModelsDevImporter"]

_FIELDS: Final[Mapping[str, tuple[str, bool]]] = {
    # cost key -> (sheet column, whether 0 means "not priced separately")
    "input": ("input_per_1m", False),
    "output": ("output_per_1m", False),
    "cache_read": ("cached_input_per_1m", True),
    "cache_write": ("cache_write_per_1m", True),
    "reasoning": ("reasoning_per_1m", True),
}
_STRUCTURE: Final = frozenset({"tiers", "context_over_200k"})
_LEGACY_SIZE: Final = 200_000


@dataclass(frozen=True, slots=True)
class _Entry:
    provider: str
    model: str
    value: Mapping[str, Any]


class ModelsDevImporter:
    """``pricing import models-dev FILE``: a saved https://models.dev/api.json."""

    name = "models-dev"
    needs_file = True

    def load(self, file: Path | None, *, providers: Sequence[str] = ()) -> ImportResult:
        if file is None:
            raise ConfigError("models-dev needs the saved api.json FILE")
        name = str(file)
        data, digest = load_json(file)
        label = f"models-dev sha256:{digest}"
        top = expect_object(data, "$", name, "a JSON object of providers")
        entries: list[_Entry] = []
        for provider_id, provider in top.items():
            obj = expect_object(provider, json_path(provider_id), name)
            models = expect_object(obj.get("models"), json_path(provider_id, "models"), name)
            for key, model in models.items():
                path = json_path(provider_id, "models", key)
                entries.append(
                    _Entry(provider_id, model_id(key, path, name), expect_object(model, path, name))
                )
        wanted = narrow_providers(providers, list(top), source="models-dev")
        kept, listed = pick_owners(
            entries, model_of=lambda e: e.model, provider_of=lambda e: e.provider, providers=wanted
        )
        rows: list[SheetRow] = []
        imported = skipped = 0
        for entry in kept:
            model_rows = _rows(entry, label, name, listed)
            if model_rows:
                imported += 1
                rows.extend(model_rows)
            else:
                skipped += 1
        return ImportResult(
            source=label,
            rows=tuple(rows),
            listed=tuple(listed),
            models_imported=imported,
            models_skipped=skipped,
        )


def _rows(entry: _Entry, label: str, file: str, listed: list[Listed]) -> list[SheetRow]:
    provider, model, obj = entry.provider, entry.model, entry.value
    base = (provider, "models", model)

    def skip(reason: str) -> list[SheetRow]:
        listed.append(Listed(model, provider, reason, "skipped"))
        return []

    def omit(reason: str) -> None:
        listed.append(Listed(model, provider, reason, "omitted"))

    modalities = obj.get("modalities")
    if modalities is not None:
        outputs = expect_object(modalities, json_path(*base, "modalities"), file).get("output")
        if isinstance(outputs, list) and "text" not in outputs:
            return skip(f"not a chat model: output modalities {', '.join(map(str, outputs)) or 'none'}")
    if obj.get("cost") is None:
        return skip("no cost")
    cost = expect_object(obj["cost"], json_path(*base, "cost"), file)

    def prices(part: Mapping[str, Any], *where: str | int) -> dict[str, str]:
        cells: dict[str, str] = {}
        for key, (column, zero_is_unpriced) in _FIELDS.items():
            path = json_path(*base, "cost", *where, key)
            value = optional_number(part, key, path, file)
            if value is None or (zero_is_unpriced and value == 0):
                continue
            cells[column] = price_cell(
                value, shift=0, path=path, file=file, model=model, provider=provider, listed=listed
            )
        return cells

    level_prices: list[tuple[int, dict[str, str]]] = [(0, prices(cost))]
    if "input_per_1m" not in level_prices[0][1] or "output_per_1m" not in level_prices[0][1]:
        return skip("no input/output price")
    for key, value in cost.items():
        if key in _FIELDS or key in _STRUCTURE:
            continue
        if _nonzero(value):
            omit(f"{key} prices (cost.{key}) are not metered by costlens")
    tiers = cost.get("tiers")
    if tiers is not None:
        if not isinstance(tiers, list):
            raise value_error(json_path(*base, "cost", "tiers"), "expected an array", file)
        for n, raw in enumerate(tiers):
            tier = expect_object(raw, json_path(*base, "cost", "tiers", n), file)
            spec = expect_object(tier.get("tier"), json_path(*base, "cost", "tiers", n, "tier"), file)
            kind = spec.get("type")
            if kind != "context":
                omit(f"price tier of type {kind!r} (cost.tiers[{n}]) is not expressible")
                continue
            size = optional_count(spec, "size", json_path(*base, "cost", "tiers", n, "tier", "size"), file)
            if size is None:
                raise value_error(
                    json_path(*base, "cost", "tiers", n, "tier", "size"), "missing tier size", file
                )
            if size >= MAX_COUNT:  # the row starts at size + 1, a BIGINT in the sheet
                raise value_error(
                    json_path(*base, "cost", "tiers", n, "tier", "size"),
                    f"tier size {size} leaves no prompt size above it that a sheet can hold",
                    file,
                )
            level_prices.append((size + 1, prices(tier, "tiers", n)))
    elif cost.get("context_over_200k") is not None:
        legacy = expect_object(cost["context_over_200k"], json_path(*base, "cost", "context_over_200k"), file)
        level_prices.append((_LEGACY_SIZE + 1, prices(legacy, "context_over_200k")))
    levels: dict[int, dict[str, str]] = {}
    for level, cells in sorted(level_prices, key=lambda item: item[0]):
        if level in levels and level != 0:
            raise value_error(
                json_path(*base, "cost", "tiers"), f"two context tiers of size {level - 1}", file
            )
        below = levels[max(levels)] if levels else {}
        levels[level] = {**below, **cells}
    limit = obj.get("limit")
    context = None
    if limit is not None:
        limits = expect_object(limit, json_path(*base, "limit"), file)
        context = optional_count(limits, "context", json_path(*base, "limit", "context"), file)
    return [
        SheetRow(
            model=model,
            provider=provider,
            context_window=str(context) if context else "",
            **cells,
            service_tier="standard",
            min_prompt_tokens=str(level),
            currency="USD",
            source=f"{label} {provider}/{model}",
        )
        for level, cells in levels.items()
    ]


def _nonzero(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value != 0
    if isinstance(value, dict):
        return any(_nonzero(v) for v in value.values())
    if isinstance(value, list):
        return any(_nonzero(v) for v in value)
    return False
