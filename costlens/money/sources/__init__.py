"""Price sources for ``costlens pricing import``: one module per source behind one interface.

Each source module holds one :class:`~costlens.money.sources.base.Importer` that reads a
maintained price database (the genai-prices package's bundled data, or a saved LiteLLM,
OpenRouter or models.dev file) and returns sheet rows; :mod:`.writer` turns any result into
the same deterministic CSV. Adding a source means adding a module and one line in
:data:`SOURCES` — the CLI lists and dispatches from this registry, never from a switch.

:func:`import_to_file` is the whole job without the CLI: load, render, write atomically.
Loading happens first and completely, so a malformed source raises before anything is
written and the previous sheet (if any) stays as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from costlens.errors import ConfigError
from costlens.money.sources.base import (
    COLUMNS,
    SERVICE_TIERS,
    Importer,
    ImportResult,
    Listed,
    ListedKind,
    ServiceTier,
    SheetRow,
)
from costlens.money.sources.genai_prices import GenaiPricesImporter
from costlens.money.sources.litellm import LitellmImporter
from costlens.money.sources.models_dev import ModelsDevImporter
from costlens.money.sources.openrouter import OpenRouterImporter
from costlens.money.sources.writer import render_csv, write_atomically

__all__ = [
    "COLUMNS",
    "SERVICE_TIERS",
    "SOURCES",
    "ImportResult",
    "Importer",
    "Listed",
    "ListedKind",
    "ServiceTier",
    "SheetRow",
    "get_source",
    "import_to_file",
    "render_csv",
    "write_atomically",
]

SOURCES: Final[dict[str, Importer]] = {
    "genai-prices": GenaiPricesImporter(),
    "litellm": LitellmImporter(),
    "openrouter": OpenRouterImporter(),
    "models-dev": ModelsDevImporter(),
}


def get_source(name: str) -> Importer:
    """The importer registered as ``name``; ``ConfigError`` lists the valid names otherwise."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown price source {name!r} (valid: {', '.join(sorted(SOURCES))})") from None


def import_to_file(
    source: str | Importer, file: Path | None, out: Path, providers: Sequence[str] = ()
) -> ImportResult:
    """Load ``source`` (from ``file`` when it needs one), render the sheet, write it to ``out``.

    Nothing is written unless the load succeeded; ``out`` is replaced in one rename.
    """
    importer = get_source(source) if isinstance(source, str) else source
    if importer.needs_file and file is None:
        raise ConfigError(f"{importer.name} needs the saved source FILE to import")
    if not importer.needs_file and file is not None:
        raise ConfigError(f"{importer.name} takes no FILE")
    result = importer.load(Path(file) if file is not None else None, providers=providers)
    write_atomically(Path(out), render_csv(result))
    return result
