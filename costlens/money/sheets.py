"""Name a price sheet on the command line: a CSV file, or a maintained price database by name.

``--fallback-pricing``, ``--compare-pricing`` and ``pricing diff`` take either a path to a
price CSV or the name of a built-in source that needs no file (today ``genai-prices``: the
installed package's bundled data, imported on the fly through the same importer and CSV
reader as ``costlens pricing import``, so a sheet used live and the same sheet written to a
file price identically).
"""

from __future__ import annotations

from pathlib import Path

from costlens.money.pricing import PriceFile, SheetSpec, parse_price_sheet

__all__ = ["BUILTIN_SHEETS", "resolve_sheet", "sheet_label"]

BUILTIN_SHEETS = ("genai-prices",)


def sheet_label(spec: str) -> str:
    """The name a sheet is shown under: the path as given, or the source's own label."""
    return spec


def _builtin(name: str) -> PriceFile:
    from costlens.money.sources import get_source  # imported on use: loading genai-prices takes ~0.5 s
    from costlens.money.sources.writer import render_csv

    result = get_source(name).load(None)
    return parse_price_sheet(render_csv(result), label=result.source)


def resolve_sheet(spec: str) -> tuple[str, SheetSpec]:
    """``(name, sheet)`` for ``spec``: a built-in source name, else a CSV path."""
    if spec in BUILTIN_SHEETS:
        parsed = _builtin(spec)
        return parsed.source.path, parsed
    return spec, [Path(spec)]
