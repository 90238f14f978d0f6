"""Install the cost view: usage joined to the price sheets, in DuckDB SQL.

The SQL lives in ``costlens/money/sql/request_costs.sql`` (read it for the rules);
this module only loads it. Prices must be registered first
(``costlens.money.pricing.register_prices``) under the same ``suffix``: the main view
``request_costs`` reads ``prices``, ``model_aliases``, ``model_matches`` and
``price_sheets``; a comparison view ``request_costs_cmp1`` reads ``prices_cmp1`` and so on,
so one query can price the same usage on several sheets with the one set of rules.
"""

from __future__ import annotations

import re
from importlib import resources

import duckdb

__all__ = ["COST_VIEW", "cost_view_sql", "install_cost_view"]

COST_VIEW = "request_costs"
_SUFFIX = re.compile(r"(_[a-z0-9]+)?")


def cost_view_sql(suffix: str = "") -> str:
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"bad cost view suffix {suffix!r}")
    sql = resources.files("costlens.money").joinpath("sql/request_costs.sql").read_text(encoding="utf-8")
    return sql.replace("__VIEW__", COST_VIEW + suffix).replace("__SFX__", suffix)


def install_cost_view(conn: duckdb.DuckDBPyConnection, suffix: str = "") -> str:
    """Create (or replace) the TEMP view ``request_costs{suffix}``; returns its name."""
    conn.execute(cost_view_sql(suffix))
    return COST_VIEW + suffix
