"""Money is integer fen. Yuan appears only as text, for people."""
from __future__ import annotations

import re

_YUAN_RE = re.compile(r"^(\d{1,12})(?:\.(\d{1,2}))?$")


def fen_to_yuan(fen: int) -> str:
    """1990 -> "19.90"; -5 -> "-0.05". Exact, integer arithmetic only."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be int, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


def yuan_to_fen(text: str) -> int:
    """"19.9" -> 1990. Rejects more than two decimals, signs, exponents and floats."""
    if not isinstance(text, str):
        raise ValueError("amount in yuan must be a string like '19.90'")
    m = _YUAN_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a yuan amount: {text!r}")
    whole, part = m.group(1), (m.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(part)


def pro_rata_cumulative(total_units: int, cumulative: int, base: int) -> int:
    """floor(total_units * cumulative / base): units owed once ``cumulative`` of ``base`` is refunded.

    Computed on cumulative amounts so successive partial refunds add up exactly
    to ``total_units`` at a full refund and never beyond it.
    """
    if base <= 0:
        return 0
    cumulative = max(0, min(cumulative, base))
    return (total_units * cumulative) // base


def pro_rata_step(total_units: int, cumulative_before: int, amount: int, base: int) -> int:
    """Units this refund restores: the growth of the cumulative entitlement."""
    return pro_rata_cumulative(total_units, cumulative_before + amount, base) - pro_rata_cumulative(
        total_units, cumulative_before, base
    )
