"""Client-side request and token rate limits (``--rpm``, ``--tpm``).

Each limit is a GCRA (generic cell rate algorithm, the "virtual scheduling" form of a
token bucket): a request of cost ``c`` moves the limit's theoretical arrival time on by
``c * 60 / limit`` seconds, and may start once that time is at most ``burst`` seconds
ahead of now. Unlike a plain bucket it never deadlocks on a request that costs more
than a second's worth (a 30,000-token prompt under ``--tpm 20000`` simply waits its
turn), and it spreads a minute's allowance evenly instead of spending it in a burst
that the provider's own, shorter windows would answer with 429s.

Waiters are served first come, first served (one lock), so a big request is not
starved by small ones. The clock and sleep are injectable so tests run instantly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["RateLimiter", "RateLimits"]

_BURST_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """Requests and tokens per minute; None = no limit."""

    rpm: int | None = None
    tpm: int | None = None


class _Gcra:
    def __init__(self, per_minute: int, burst: float) -> None:
        self.interval = 60.0 / per_minute
        self.burst = burst
        self.tat: float | None = None  # theoretical arrival time

    def wait(self, cost: float, now: float) -> float:
        tat = now if self.tat is None else max(self.tat, now)
        return max(0.0, tat - self.burst - now)

    def take(self, cost: float, now: float) -> None:
        tat = now if self.tat is None else max(self.tat, now)
        self.tat = tat + cost * self.interval


class RateLimiter:
    """``await limiter.acquire(tokens)`` before each request."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        burst_seconds: float = _BURST_SECONDS,
    ) -> None:
        self._requests = _Gcra(limits.rpm, burst_seconds) if limits.rpm else None
        self._tokens = _Gcra(limits.tpm, burst_seconds) if limits.tpm else None
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    async def acquire(self, tokens: int = 0) -> float:
        """Wait until one request of ``tokens`` estimated tokens fits both limits; return seconds waited."""
        if not self.active:
            return 0.0
        waited = 0.0
        async with self._lock:
            while True:
                now = self._clock()
                delay = max(
                    self._requests.wait(1, now) if self._requests else 0.0,
                    self._tokens.wait(tokens, now) if self._tokens else 0.0,
                )
                if delay <= 0:
                    break
                await self._sleep(delay)
                waited += delay
            now = self._clock()
            if self._requests:
                self._requests.take(1, now)
            if self._tokens:
                self._tokens.take(tokens, now)
        return waited
