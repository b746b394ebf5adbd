"""Money: integer fen (分) everywhere; one rounding rule (half-up to the fen) in one place."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction

MAX_FEN = 10**12  # ten billion yuan: anything above is a typing mistake


def round_fen(amount: Fraction | Decimal | int) -> int:
    """Round an exact amount in fen half-up to a whole fen: the one rounding rule."""
    exact = Fraction(amount)
    sign = -1 if exact < 0 else 1
    return sign * math.floor(abs(exact) + Fraction(1, 2))


def parse_yuan(text: str | None) -> int | None:
    """'360', '360.5', '¥1,234.56' → fen; None when it is not a non-negative amount with at
    most two decimals (more precision than money keeps is refused, not rounded)."""
    if text is None:
        return None
    cleaned = str(text).strip().replace("¥", "").replace("￥", "").replace(",", "").replace(" ", "")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2:
        return None
    fen = value * 100
    if fen > MAX_FEN:
        return None
    return int(fen)


def format_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def amount_problem(text: str | None, allow_negative: bool = False) -> str | None:
    """Why a typed amount is not one money can hold, as a code: "empty", "not_a_number",
    "too_precise" (more than two decimals), "negative", "zero", "too_large"; None when fine."""
    cleaned = str(text or "").strip().replace("¥", "").replace("￥", "").replace(",", "")
    cleaned = cleaned.replace(" ", "")
    if not cleaned:
        return "empty"
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return "not_a_number"
    if not value.is_finite():
        return "not_a_number"
    if value.as_tuple().exponent < -2:
        return "too_precise"
    if value < 0 and not allow_negative:
        return "negative"
    if value == 0:
        return "zero"
    if abs(value) * 100 > MAX_FEN:
        return "too_large"
    return None
