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

__all__ = ["COST_VIEW", "cost_view_sql", "install_cost_view", "scoped_cost_view_sql"]

COST_VIEW = "request_costs"
_SUFFIX = re.compile(r"(_[a-z0-9]+)?")
_TABLES = {"__RESULTS__": "results", "__REQUESTS__": "requests", "__PARAMS__": "request_params",
           "__DETAILS__": "result_details"}  # fmt: skip


def _template() -> str:
    return resources.files("costlens.money").joinpath("sql/request_costs.sql").read_text(encoding="utf-8")


def _fill(sql: str, view: str, suffix: str, sources: dict[str, str]) -> str:
    sql = sql.replace("__VIEW__", view).replace("__SFX__", suffix)
    for placeholder, source in sources.items():
        sql = sql.replace(placeholder, source)
    return sql


def cost_view_sql(suffix: str = "") -> str:
    if not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"bad cost view suffix {suffix!r}")
    return _fill(_template(), COST_VIEW + suffix, suffix, _TABLES)


def scoped_cost_view_sql(view: str, results: str, run_id: int, first_id: int, last_id: int) -> str:
    """The cost view over ``results`` (a table or registered Arrow table of result rows) alone, joined
    to the requests of run ``run_id`` with ids in [first_id, last_id]: the same rules, priced on the
    main sheet, at a cost that grows with those rows rather than with the database (``run --budget``
    prices each committed batch this way instead of re-reading the whole run). Timings are left out:
    they do not change a cost."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", view) or not re.fullmatch(r"[a-z_][a-z0-9_]*", results):
        raise ValueError(f"bad view or table name {view!r} / {results!r}")
    scope = f"run_id = {int(run_id)} AND request_id BETWEEN {int(first_id)} AND {int(last_id)}"
    sources = {
        "__RESULTS__": results,
        "__REQUESTS__": f"(SELECT * FROM requests WHERE {scope})",
        "__PARAMS__": f"(SELECT * FROM request_params WHERE {scope})",
        "__DETAILS__": "(SELECT * FROM result_details WHERE false)",
    }
    return _fill(_template(), view, "", sources)


def install_cost_view(conn: duckdb.DuckDBPyConnection, suffix: str = "") -> str:
    """Create (or replace) the TEMP view ``request_costs{suffix}``; returns its name."""
    conn.execute(cost_view_sql(suffix))
    return COST_VIEW + suffix
