"""Name a price sheet on the command line: a CSV file, or a maintained price database by name.

``--fallback-pricing``, ``--compare-pricing`` and ``pricing diff`` take either a path to a
price CSV or the name of a built-in source that needs no file (today ``genai-prices``: the
installed package's bundled data, imported on the fly through the same importer and CSV
reader as ``costlens pricing import``, so a sheet used live and the same sheet written to a
file price identically).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from importlib import metadata
from pathlib import Path

from costlens.errors import CostlensError, PricingError
from costlens.money.pricing import PriceFile, SheetSpec, parse_price_sheet

__all__ = ["BUILTIN_SHEETS", "cache_dir", "resolve_sheet"]

BUILTIN_SHEETS = ("genai-prices",)


def cache_dir() -> Path:
    """Where imported built-in sheets are kept: ``COSTLENS_CACHE_DIR``, else ``$XDG_CACHE_HOME/costlens``."""
    explicit = os.environ.get("COSTLENS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "costlens"


def _cache_key(name: str) -> str:
    """Changes with the package data (its version) and with the importer code (its sha256)."""
    sources = Path(__file__).resolve().parent / "sources"
    digest = hashlib.sha256()
    for module in sorted(sources.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    digest.update(Path(__file__).resolve().parent.joinpath("pricing.py").read_bytes())
    return f"{name}-{metadata.version(name)}-{digest.hexdigest()[:16]}.csv"


def _builtin(name: str) -> PriceFile:
    """Import a built-in source on the fly, through a cache of the sheet it renders.

    The import itself (genai-prices' 1.6 MB data module and ~2,300 models) costs ~0.5 s; the
    rendered CSV is the same bytes for the same package version and importer code, so it is
    kept and parsed like any sheet. The label does not depend on whether the cache was hit.
    """
    label = f"{name} {metadata.version(name)}"
    path = cache_dir() / _cache_key(name)
    try:
        return parse_price_sheet(path.read_bytes(), label=label)
    except (OSError, PricingError):
        pass  # no cache yet, or an entry someone edited: import again and replace it
    from costlens.money.sources import get_source  # imported on use: loading genai-prices takes ~0.5 s
    from costlens.money.sources.writer import render_csv, write_atomically

    result = get_source(name).load(None)
    data = render_csv(result)
    with contextlib.suppress(CostlensError, OSError):  # a cache that cannot be written is no cache
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
    return parse_price_sheet(data, label=result.source)


def resolve_sheet(spec: str) -> tuple[str, SheetSpec]:
    """``(name, sheet)`` for ``spec``: a built-in source name, else a CSV path."""
    if spec in BUILTIN_SHEETS:
        parsed = _builtin(spec)
        return parsed.source.path, parsed
    return spec, [Path(spec)]
