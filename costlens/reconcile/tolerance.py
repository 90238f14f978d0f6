"""How far apart the two sides of a cell may be and still agree (``--tolerance``).

Two forms, one per reconciliation:

* ``USD`` (a plain amount, ``0.01`` or ``$0.01``): money may differ by at most that many dollars
  per cell; counts (requests, tokens) must be equal. The default is ``0.01``: a cent per cell,
  what a finance sign-off rounds to, and far above the float noise of any export.
* ``N%``: every figure, money and counts alike, may differ by at most N% of the provider's
  figure (so a cell the provider shows as 0 must be 0 on costlens's side too).

The limit is inclusive (a difference equal to it agrees). The comparison itself runs in SQL
(:mod:`costlens.reconcile.compare`); :meth:`Tolerance.allows` states the same rule in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from costlens.errors import ConfigError
from costlens.money.decimal_text import format_decimal

__all__ = ["DEFAULT_TOLERANCE", "Tolerance", "parse_tolerance"]

_NUMBER: Final = re.compile(r"\d+(\.\d*)?|\.\d+")


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Exactly one of ``usd`` (absolute, money only; counts exact) or ``percent`` (relative, all)."""

    usd: Decimal | None = None
    percent: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.usd is None) == (self.percent is None):
            raise ValueError("a tolerance is either USD or a percentage")

    @property
    def text(self) -> str:
        """As given on the command line, canonical: ``0.01`` or ``2.5%`` (stored with each run)."""
        if self.percent is not None:
            return f"{format_decimal(self.percent)}%"
        assert self.usd is not None
        return format_decimal(self.usd)

    def describe(self) -> str:
        if self.percent is not None:
            return (
                f"{format_decimal(self.percent)}% of the provider's figure per cell, money and counts alike"
            )
        assert self.usd is not None
        return f"${format_decimal(self.usd)} per cell on money; counts exactly"

    def limit(self, measure: str, provider: Decimal | None) -> Decimal:
        """The largest difference that still agrees, for a cell of ``measure``."""
        if self.percent is not None:
            return abs(provider or Decimal(0)) * self.percent / 100
        assert self.usd is not None
        return self.usd if measure == "cost_usd" else Decimal(0)

    def allows(self, measure: str, provider: Decimal | None, costlens: Decimal | None) -> bool:
        difference = (costlens or Decimal(0)) - (provider or Decimal(0))
        return abs(difference) <= self.limit(measure, provider)


DEFAULT_TOLERANCE: Final = Tolerance(usd=Decimal("0.01"))


def parse_tolerance(text: str) -> Tolerance:
    """``0.01`` / ``$0.01`` (USD) or ``1%`` / ``0.5%`` (relative); ``ConfigError`` otherwise."""
    raw = text.strip()
    percent = raw.endswith("%")
    number = raw.removesuffix("%").strip() if percent else raw.removeprefix("$").strip()
    if not _NUMBER.fullmatch(number):
        raise ConfigError(
            f"--tolerance {text!r}: expected an amount of USD such as 0.01, or a percentage such as 1%"
        )
    try:
        value = Decimal(number)
    except InvalidOperation as e:  # pragma: no cover - the pattern admits only valid decimals
        raise ConfigError(f"--tolerance {text!r}: not a number") from e
    if percent:
        if value > 100:
            raise ConfigError(f"--tolerance {text!r}: a percentage above 100% lets any figure agree")
        return Tolerance(percent=value)
    return Tolerance(usd=value)
