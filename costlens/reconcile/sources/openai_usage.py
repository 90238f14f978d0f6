"""OpenAI organization Usage API pages (``GET /v1/organization/usage/completions``), saved as returned.

A page is ``{"object": "page", "data": [bucket...], "has_more", "next_page"}``; a bucket has
Unix-second ``start_time`` (inclusive) and ``end_time`` (exclusive) and ``results``, one per
group (model, batch, service tier, project...; a field is null unless the request grouped by
it). ``input_tokens`` includes ``input_cached_tokens``, as costlens's input tokens do; the API
reports no cache writes. Buckets may be 1d, 1h or 1m wide; finer ones add up to their UTC day.

Tier: ``batch: true`` is ``batch``; a ``service_tier`` (``default`` = ``standard``) is that tier;
``batch: false`` alone is ``non-batch``; neither (not grouped by them) is every tier.
"""

from __future__ import annotations

from typing import Any, Final

from costlens.reconcile.sources.base import (
    BucketRow,
    Document,
    ExportRead,
    Measure,
    Window,
    as_object,
    bad,
    count_field,
    day_of_window,
    first_result,
    grouping_key,
    json_path,
    optional_text,
    results_of,
    unix_time_field,
)

__all__ = ["OpenAIUsageReader", "openai_tier"]

RESULT_OBJECT: Final = "organization.usage.completions.result"
_FIGURES: Final = frozenset(
    {
        "object",
        "input_tokens",
        "output_tokens",
        "input_cached_tokens",
        "input_audio_tokens",
        "output_audio_tokens",
        "num_model_requests",
    }
)
_TIER_NAMES: Final = {"default": "standard", "auto": "standard", "scale": "priority"}


def openai_tier(batch: Any, service_tier: str | None, path: str, file: str) -> str | None:
    if batch is not None and not isinstance(batch, bool):
        raise bad(f"{path}.batch", "expected true, false or null", file)
    if batch is True:
        return "batch"
    if service_tier is not None:
        name = service_tier.strip().lower()
        return _TIER_NAMES.get(name, name)
    return "non-batch" if batch is False else None


class OpenAIUsageReader:
    kind = "openai-usage"
    family = "openai"
    description = "OpenAI organization Usage API pages (/v1/organization/usage/completions)"
    measures: tuple[Measure, ...] = ("requests", "input_tokens", "cached_tokens", "output_tokens")

    def detect(self, document: Document) -> bool:
        result = first_result(document, "start_time")
        if result is None:
            return False
        if "object" in result:
            return bool(result["object"] == RESULT_OBJECT)
        return "num_model_requests" in result and "input_tokens" in result

    def read(self, document: Document) -> ExportRead:
        file = document.file
        rows: list[BucketRow] = []
        windows: list[Window] = []
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
                        f"expected {RESULT_OBJECT!r}, got {kind!r} (not a usage/completions page?)",
                        file,
                    )
                key = grouping_key(result, _FIGURES)
                if key in seen:
                    raise bad(
                        path, f"duplicate result: same grouping as {seen[key]} in the same bucket", file
                    )
                seen[key] = path
                input_tokens = count_field(result, "input_tokens", path, file)
                cached = count_field(result, "input_cached_tokens", path, file, required=False) or 0
                assert input_tokens is not None
                if cached > input_tokens:
                    raise bad(
                        f"{path}.input_cached_tokens",
                        f"{cached} cached tokens exceed the {input_tokens} input tokens they are part of",
                        file,
                    )
                rows.append(
                    BucketRow(
                        path=path,
                        day=day,
                        model=optional_text(result, "model", path, file),
                        tier=openai_tier(
                            result.get("batch"), optional_text(result, "service_tier", path, file), path, file
                        ),
                        requests=count_field(result, "num_model_requests", path, file),
                        input_tokens=input_tokens,
                        cached_tokens=cached,
                        output_tokens=count_field(result, "output_tokens", path, file),
                    )
                )
        return ExportRead(rows=tuple(rows), buckets=len(windows), windows=tuple(windows))
