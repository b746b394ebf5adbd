"""Money: integer fen (分) everywhere; one rounding rule (half-up to the fen) in one place."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

from flask_babel import lazy_gettext as _l

MAX_FEN = 10**12  # ten billion yuan: anything above is a typing mistake


def round_fen(amount: Fraction | Decimal | int) -> int:
    """Round an exact amount in fen half-up to a whole fen: the one rounding rule."""
    exact = Fraction(amount)
    sign = -1 if exact < 0 else 1
    return sign * math.floor(abs(exact) + Fraction(1, 2))


# Full-width digits and marks, as a Chinese input method types them.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９，．￥", "0123456789,.¥")
# An amount as people write it: a sign, a yuan sign, whole yuan with or without thousands
# separators (a comma, or a space, before each group of three digits; "0,500" is someone's
# 0.5), and decimals after a point. Nothing else: "1,5" or "10,,0" is a mistake, not 15 or 100.
_AMOUNT = re.compile(
    r"(?P<sign>[+-]?) ?¥? ?"
    r"(?P<whole>[1-9][0-9]{0,2}(?:,[0-9]{3})+|[1-9][0-9]{0,2}(?: [0-9]{3})+|[0-9]*)"
    r"(?:\.(?P<decimals>[0-9]*))?"
    r"(?P<exponent>[eE][+-]?[0-9]{1,3})?"  # "1e20" is a number, too large (not "1e99999")
)


def _amount(text: str | None) -> Decimal | None:
    """The exact amount a typed text means, or None when it is not a well-formed amount."""
    found = _AMOUNT.fullmatch(str(text or "").strip().translate(_FULL_WIDTH))
    if found is None or not (found["whole"] or found["decimals"]):
        return None
    whole = found["whole"].replace(",", "").replace(" ", "")
    exponent = found["exponent"] or ""
    return Decimal(f"{found['sign']}{whole or '0'}.{found['decimals'] or ''}{exponent}")


def parse_yuan(text: str | None) -> int | None:
    """'360', '360.5', '¥1,234.56' → fen; None when it is not a non-negative amount with at
    most two decimals (more precision than money keeps is refused, not rounded)."""
    value = _amount(text)
    if value is None or value < 0 or value.as_tuple().exponent < -2:
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
    if not str(text or "").strip():
        return "empty"
    value = _amount(text)
    if value is None:
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


# What each of amount_problem's codes tells the person who typed the amount.
AMOUNT_MESSAGES = {
    "empty": _l("Enter an amount in yuan, e.g. 120.50."),
    "not_a_number": _l("Enter an amount in yuan, e.g. 120.50."),
    "too_precise": _l("Money has at most two decimals (fen): e.g. 15.01, not 15.005."),
    "negative": _l("The amount must not be negative here."),
    "zero": _l("The amount must not be zero."),
    "too_large": _l("The amount is too large."),
}
