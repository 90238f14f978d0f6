"""Anthropic Admin API usage report pages (``GET /v1/organizations/usage_report/messages``), saved as returned.

A page is ``{"data": [{"starting_at", "ending_at", "results": [...]}], "has_more", "next_page"}``
with RFC 3339 bucket bounds (start inclusive, end exclusive; 1d, 1h or 1m wide). A result
splits input the way Anthropic bills it: ``uncached_input_tokens``, ``cache_creation``
(``ephemeral_1h_input_tokens`` + ``ephemeral_5m_input_tokens``) and ``cache_read_input_tokens``.
costlens's input tokens are their sum (cache reads and writes included), its cached tokens the
cache reads and its cache-write tokens both lifetimes. The report counts no requests
(``server_tool_use`` counts web searches, not messages). ``model`` and ``service_tier`` are null
unless the report was grouped by them.
"""

from __future__ import annotations

from typing import Final

from costlens.reconcile.sources.base import (
    MAX_COUNT,
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
    rfc3339_field,
)

__all__ = ["AnthropicUsageReader", "anthropic_tier"]

_FIGURES: Final = frozenset(
    {"uncached_input_tokens", "cache_creation", "cache_read_input_tokens", "output_tokens", "server_tool_use"}
)


def anthropic_tier(service_tier: str | None) -> str | None:
    return None if service_tier is None else service_tier.strip().lower()


class AnthropicUsageReader:
    kind = "anthropic-usage"
    family = "anthropic"
    description = "Anthropic Admin API usage report pages (/v1/organizations/usage_report/messages)"
    measures: tuple[Measure, ...] = ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens")

    def detect(self, document: Document) -> bool:
        result = first_result(document, "starting_at")
        return result is not None and "uncached_input_tokens" in result

    def read(self, document: Document) -> ExportRead:
        file = document.file
        rows: list[BucketRow] = []
        windows: list[Window] = []
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
                key = grouping_key(result, _FIGURES)
                if key in seen:
                    raise bad(
                        path, f"duplicate result: same grouping as {seen[key]} in the same bucket", file
                    )
                seen[key] = path
                uncached = count_field(result, "uncached_input_tokens", path, file)
                read = count_field(result, "cache_read_input_tokens", path, file, required=False) or 0
                writes = 0
                creation = result.get("cache_creation")
                if creation is not None:
                    parts = as_object(creation, f"{path}.cache_creation", file)
                    for name in ("ephemeral_1h_input_tokens", "ephemeral_5m_input_tokens"):
                        writes += (
                            count_field(parts, name, f"{path}.cache_creation", file, required=False) or 0
                        )
                assert uncached is not None
                total = uncached + writes + read
                if total > MAX_COUNT:  # each part fits a BIGINT, their sum need not
                    raise bad(
                        path,
                        f"input tokens {total} (uncached + cache writes + cache reads) are above the largest "
                        f"count costlens stores ({MAX_COUNT})",
                        file,
                    )
                rows.append(
                    BucketRow(
                        path=path,
                        day=day,
                        model=optional_text(result, "model", path, file),
                        tier=anthropic_tier(optional_text(result, "service_tier", path, file)),
                        input_tokens=total,
                        cached_tokens=read,
                        cache_write_tokens=writes,
                        output_tokens=count_field(result, "output_tokens", path, file),
                    )
                )
        return ExportRead(rows=tuple(rows), buckets=len(windows), windows=tuple(windows))
