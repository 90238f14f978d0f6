"""Sending requests: the run (``run``: plan, fan-out, budget, batches, journal, resume) over the
async HTTP client (``client``) and rate limiter (``ratelimit``), the progress display
(``progress``) and the simulated provider (``sim``).
"""
