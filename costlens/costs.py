"""Install the cost view: usage joined to the price table, in DuckDB SQL.

The SQL lives in ``costlens/sql/request_costs.sql`` (read it for the rules);
this module only loads it. Prices must be registered first
(``costlens.pricing.register_prices``).
"""

from __future__ import annotations

from importlib import resources

import duckdb

__all__ = ["COST_VIEW", "install_cost_view"]

COST_VIEW = "request_costs"


def install_cost_view(conn: duckdb.DuckDBPyConnection) -> None:
    sql = resources.files("costlens").joinpath("sql/request_costs.sql").read_text(encoding="utf-8")
    conn.execute(sql)
