"""How ``costlens run`` shows its progress: a live bar on a terminal, plain lines under cron.

The run itself (:mod:`costlens.send.run`) only hands out :class:`~costlens.send.run.RunProgress`
snapshots; this module turns them into output, so the core never prints. On a terminal a
rich progress bar shows requests done and failed, tokens, spend so far and the ETA; without
one (cron, a pipe) a plain line is written every ``interval`` seconds, because a bar's cursor
codes would litter a log file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from costlens.send.run import RunProgress

__all__ = ["RunProgressDisplay", "describe_progress"]

Money = Callable[[Decimal | None], str]


def _eta(p: RunProgress) -> str:
    if p.done == 0 or p.elapsed_s <= 0:
        return "?"
    seconds = int((p.total - p.done) / (p.done / p.elapsed_s))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def describe_progress(p: RunProgress, money: Money) -> str:
    """One plain line, e.g. ``run 3: 120/1,000 done (118 ok, 2 failed), 12,345 tokens, $0.0123 spent, ETA 3m12s``."""
    rate = p.done / p.elapsed_s if p.elapsed_s > 0 else 0.0
    return (
        f"run {p.run_id}: {p.done:,}/{p.total:,} done ({p.ok:,} ok, {p.failed:,} failed, {p.in_flight:,} in flight), "
        f"{p.prompt_tokens + p.completion_tokens:,} tokens, {money(p.spent_usd)} spent, "
        f"{rate:,.1f} req/s, ETA {_eta(p)}"
    )


class RunProgressDisplay:
    """Callable progress sink; call :meth:`close` when the run returns."""

    def __init__(self, console: Console, money: Money, *, interval: float = 5.0) -> None:
        self.console = console
        self.money = money
        self.interval = interval
        self.last_line = 0.0
        self.bar: Progress | None = None
        self.task: int | None = None
        if console.is_terminal:
            self.bar = Progress(
                TextColumn("run {task.fields[run_id]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )

    def __call__(self, p: RunProgress) -> None:
        status = (
            f"{p.ok:,} ok, {p.failed:,} failed, {p.prompt_tokens + p.completion_tokens:,} tok, "
            f"{self.money(p.spent_usd)}"
        )
        if self.bar is not None:
            if self.task is None:
                self.bar.start()
                self.task = self.bar.add_task("run", total=p.total, run_id=p.run_id, status=status)
            self.bar.update(self.task, completed=p.done, status=status)  # type: ignore[arg-type]
            return
        now = time.monotonic()
        if p.final or now - self.last_line < self.interval or p.done == 0:
            return
        self.last_line = now
        self.console.print(describe_progress(p, self.money), markup=False, highlight=False)

    def notice(self, text: str) -> None:
        """A sentence about the run (what a Ctrl-C is doing), above the bar or as a plain line."""
        self.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.stop()
