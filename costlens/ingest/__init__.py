"""Reading what users hand costlens: the streaming line reader (``jsonl``), rejected lines
(``rejects``), request files (``requests_file``) and recorded result files (``replay``).

Everything here writes into ``costlens.store`` and knows nothing of prices.
"""
