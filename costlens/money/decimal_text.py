"""Money as text: the one plain-decimal rendering shared by JSON output, exports and reports.

Exact values leave costlens as decimal strings (no exponent, no float), so this
lives beside the price sheet rather than in a report module: every layer that
writes money uses it.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["format_decimal"]


def format_decimal(value: Decimal, places: int | None = None) -> str:
    """A plain decimal string: no exponent, trailing zeros trimmed (unless ``places`` is given)."""
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
        return f"{value:f}"
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
