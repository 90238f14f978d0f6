"""The DuckDB file: opening and locking it (``db``), its numbered append-only schema
(``migrations``) and the small SQL macros the loaders share (``macros``).

The bottom layer: it imports nothing else of costlens but ``costlens.errors``.
"""
