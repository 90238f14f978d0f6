"""A ready-to-query session: the DuckDB store opened and migrated, prices loaded, cost view installed.

Every command that reads or writes costs starts here, so the price table in
force and the SQL that applies it are the same for replay, summary, export and
report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from costlens.errors import ConfigError, StoreError
from costlens.money.costs import install_cost_view
from costlens.money.pricing import (
    PriceTable,
    default_aliases_path,
    default_pricing_path,
    load_price_table,
    register_prices,
)
from costlens.money.sheets import resolve_sheet
from costlens.store.db import open_store
from costlens.store.macros import install_macros

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DB",
    "MAIN_SHEET",
    "CompareSheet",
    "Session",
    "Settings",
    "load_compare_sheets",
    "load_sheet_alone",
    "open_session",
    "register_compare_sheets",
]

DEFAULT_DB = "costlens.duckdb"
# Where `costlens run` sends requests unless told otherwise (here, so the CLI need not import run.py).
DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where the data lives and which prices apply (global CLI options / env)."""

    db_path: Path = Path(DEFAULT_DB)
    pricing_path: Path | None = None
    extra_pricing: Sequence[Path] = field(default_factory=tuple)
    extra_aliases: Sequence[Path] = field(default_factory=tuple)
    # --fallback-pricing: CSV paths or built-in source names (genai-prices), consulted in order
    # for models the main sheet does not know.
    fallback_pricing: Sequence[str] = field(default_factory=tuple)

    def price_files(self) -> list[Path]:
        return [self.pricing_path or default_pricing_path(), *self.extra_pricing]

    def alias_files(self) -> list[Path]:
        return [default_aliases_path(), *self.extra_aliases]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            db_path=Path(env.get("COSTLENS_DB") or DEFAULT_DB),
            pricing_path=Path(env["COSTLENS_PRICING"]) if env.get("COSTLENS_PRICING") else None,
        )


@dataclass(frozen=True)
class Session:
    conn: duckdb.DuckDBPyConnection
    prices: PriceTable
    settings: Settings

    @property
    def pricing_sha256(self) -> str:
        """sha256 of each price sheet in force (main, then fallbacks), comma-separated in load order.

        Recorded with each run, so a figure can be traced to the exact sheets that priced it.
        """
        return ",".join(s.sha256 for s in self.prices.sources if s.kind == "price")


def load_prices(settings: Settings) -> PriceTable:
    fallbacks = [resolve_sheet(spec) for spec in settings.fallback_pricing]
    return load_price_table(settings.price_files(), settings.alias_files(), fallbacks=fallbacks)


@contextmanager
def open_session(settings: Settings) -> Iterator[Session]:
    """Load and validate the price table *before* touching the DB, then open it."""
    prices = load_prices(settings)
    with open_store(settings.db_path) as conn:
        try:
            install_macros(conn)
            register_prices(conn, prices)
            install_cost_view(conn)
        except duckdb.Error as e:
            raise StoreError(f"cannot prepare database {settings.db_path}: {e}") from e
        yield Session(conn, prices, settings)


# --- other sheets priced side by side (--compare-pricing, pricing diff) ------------------------

MAIN_SHEET = "main"
"""What the price table in force (shipped or --pricing, layers and fallbacks) is called next to others."""


@dataclass(frozen=True)
class CompareSheet:
    """A sheet to price the same usage on: its display name, the spec given, its table (priced alone)."""

    name: str
    spec: str
    table: PriceTable


def load_sheet_alone(settings: Settings, spec: str) -> PriceTable:
    """The sheet ``spec`` (a CSV path or a built-in name) with the alias files and nothing else.

    No ``--extra-pricing`` layers and no ``--fallback-pricing`` sheets: a compared sheet prices
    exactly what ``--pricing FILE`` alone would, and a model it does not know stays unpriced
    instead of being priced, unseen, by the main table's fallbacks.
    """
    _, sheet = resolve_sheet(spec)
    # load_price_table takes a parsed sheet (a built-in source) for its main sheet as well as paths.
    return load_price_table(sheet, settings.alias_files())


def _split_name(value: str, option: str) -> tuple[str, str]:
    """``NAME=FILE`` or ``FILE`` -> (name, spec); the name defaults to the spec as given."""
    name, sep, spec = value.partition("=")
    if not sep:
        return value, value
    name, spec = name.strip(), spec.strip()
    if not name:
        raise ConfigError(f"{option} {value!r}: empty NAME (write NAME=FILE, or FILE alone)")
    if not spec:
        raise ConfigError(f"{option} {value!r}: empty FILE after {name}=")
    return name, spec


def load_compare_sheets(
    settings: Settings, values: Sequence[str], *, option: str = "--compare-pricing"
) -> list[CompareSheet]:
    """Parse ``[NAME=]FILE`` values and load each sheet alone; call before opening the database.

    Names are checked first (empty or repeated names, or the main sheet's own name, are a
    ConfigError), then every sheet is read and validated (a PricingError names file:line:column),
    so a bad option never gets as far as the database.
    """
    named = [_split_name(value, option) for value in values]
    seen: set[str] = set()
    for name, _ in named:
        if name == MAIN_SHEET:
            raise ConfigError(
                f"{option}: {name!r} names the price table in force; give the sheet another NAME="
            )
        if name in seen:
            raise ConfigError(f"{option}: sheet name {name!r} given twice (tell them apart with NAME=FILE)")
        seen.add(name)
    return [CompareSheet(name, spec, load_sheet_alone(settings, spec)) for name, spec in named]


def register_compare_sheets(session: Session, sheets: Sequence[CompareSheet]) -> list[tuple[str, str]]:
    """Register each sheet under ``_cmp1``, ``_cmp2``, ... and install its cost view.

    Returns ``(name, suffix)`` pairs: ``request_costs{suffix}`` prices every request of the
    session on that sheet with the same SQL as ``request_costs``.
    """
    pairs: list[tuple[str, str]] = []
    for number, sheet in enumerate(sheets, start=1):
        suffix = f"_cmp{number}"
        try:
            register_prices(session.conn, sheet.table, suffix)
            install_cost_view(session.conn, suffix)
        except duckdb.Error as e:
            raise StoreError(f"cannot price on sheet {sheet.name}: {e}") from e
        pairs.append((sheet.name, suffix))
    return pairs
