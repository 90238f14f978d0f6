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

from costlens.errors import StoreError
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

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_DB", "Session", "Settings", "open_session"]

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
