"""Provider exports for ``costlens reconcile``: one module per export kind behind one interface.

Each module holds one :class:`~costlens.reconcile.sources.base.ExportReader` that recognises a
saved file of its kind and reads it into normalized bucket rows. Adding a kind means adding a
module and one line in :data:`SOURCES`: the CLI lists ``--source`` choices and detection runs
from this registry, never from a switch. Detection tries the readers in registry order and
takes the first that recognises the file.
"""

from __future__ import annotations

from typing import Final

from costlens.errors import ConfigError, InputError
from costlens.reconcile.sources.anthropic_cost import AnthropicCostReader, cents_to_usd
from costlens.reconcile.sources.anthropic_usage import AnthropicUsageReader
from costlens.reconcile.sources.base import (
    MEASURES,
    BucketRow,
    Document,
    ExportRead,
    ExportReader,
    Measure,
    Window,
    load_document,
)
from costlens.reconcile.sources.litellm_spend import LitellmSpendReader
from costlens.reconcile.sources.openai_costs import OpenAICostsReader, split_line_item
from costlens.reconcile.sources.openai_usage import OpenAIUsageReader

__all__ = [
    "MEASURES",
    "SOURCES",
    "BucketRow",
    "Document",
    "ExportRead",
    "ExportReader",
    "Measure",
    "Window",
    "cents_to_usd",
    "detect",
    "get_source",
    "load_document",
    "split_line_item",
]

SOURCES: Final[dict[str, ExportReader]] = {
    reader.kind: reader
    for reader in (
        OpenAIUsageReader(),
        OpenAICostsReader(),
        AnthropicUsageReader(),
        AnthropicCostReader(),
        LitellmSpendReader(),
    )
}


def get_source(kind: str) -> ExportReader:
    """The reader registered as ``kind``; ``ConfigError`` lists the valid kinds otherwise."""
    try:
        return SOURCES[kind]
    except KeyError:
        raise ConfigError(f"unknown export kind {kind!r} (valid: {', '.join(SOURCES)})") from None


def detect(document: Document) -> ExportReader:
    """The first reader that recognises ``document``; ``InputError`` when none does."""
    for reader in SOURCES.values():
        if reader.detect(document):
            return reader
    raise InputError(
        "cannot tell which export this is (no result to recognise it by, or an unknown shape); "
        f"give --source ({', '.join(SOURCES)})",
        file=document.file,
    )
