"""Money: price sheets (``pricing``), maintained price databases turned into sheets
(``sources/``), the cost view that prices every request in SQL (``costs`` +
``sql/request_costs.sql``), the selection of priced requests every reader shares
(``filters``: runs, window, models, tags, simulated runs), prices for hypothetical usage (``quote``) and estimates of a
request file (``estimate``).

Reads the store and the ingest readers; never the send or report layers.
"""
