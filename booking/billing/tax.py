"""VAT (增值税) on invoice lines. Pure: no database, no Flask.

Rates are whole basis points (600 = 6 %). A line's `amount_fen` is always what the customer is
charged *including* tax. Where the carrier's prices include tax (含税, the usual case in China)
the tax is taken out of the priced amount: tax = amount × r ÷ (1 + r). Where they exclude it,
tax = amount × r is added on top. Each line's tax is rounded half up to the fen once, with the
same rule as every other amount (`money.round_fen`); an invoice's amount excluding tax, its tax
and its total are the sums of its lines, as the 数电票 platform computes them line by line, so
the lines always add up to the totals exactly.

A credit takes back tax in proportion to the part of the line it credits, and all the tax that
is left when it credits all that is left, so the tax credited never exceeds the tax charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

from booking.billing.money import round_fen

BASIS = 10_000  # basis points in one
MAX_RATE_BP = 10_000  # 100 %: anything above is a typing mistake


@dataclass(frozen=True)
class LineTax:
    net_fen: int  # amount excluding tax (不含税金额)
    tax_fen: int  # tax (税额)

    @property
    def gross_fen(self) -> int:
        """The amount including tax (价税合计): what the line charges."""
        return self.net_fen + self.tax_fen


@lru_cache(maxsize=4096)  # a pure function of three numbers, asked for each of thousands
def on_price(priced_fen: int, rate_bp: int, included: bool) -> LineTax:  # of report items
    """The tax of a priced amount (a negative amount, a discount, has negative tax)."""
    if included:
        tax = round_fen(Fraction(priced_fen * rate_bp, BASIS + rate_bp))
        return LineTax(priced_fen - tax, tax)
    return LineTax(priced_fen, round_fen(Fraction(priced_fen * rate_bp, BASIS)))


def for_carrier(priced_fen: int, rate_bp: int | None, carrier) -> tuple[LineTax, int]:
    """A priced amount's VAT by its rate's VAT (None: the carrier's) and the carrier's choice
    of prices with or without tax; and the VAT rate used. The estimate and the invoice line
    both call this, so they agree to the fen."""
    used = rate_bp if rate_bp is not None else carrier.tax_rate_bp
    return on_price(priced_fen, used, carrier.prices_include_tax), used


def credited_tax(gross_fen: int, gross_left: int, tax_left: int) -> int:
    """The tax in `gross_fen` credited on a line with `gross_left` fen and `tax_left` fen of tax
    not yet credited: its share, rounded half up, and all of it when all that is left goes."""
    if gross_left <= 0 or gross_fen >= gross_left:
        return max(0, tax_left)
    return min(max(0, tax_left), round_fen(Fraction(tax_left * gross_fen, gross_left)))


def parse_rate(text: str | None) -> int | None:
    """'6', '6 %', '13', '0', '5.5' → basis points; None when it is not a percentage from 0 to
    100 with at most two decimals."""
    cleaned = str(text if text is not None else "").strip().rstrip("%％").strip()
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or value.as_tuple().exponent < -2:
        return None
    bp = value * 100
    if not 0 <= bp <= MAX_RATE_BP:
        return None
    return int(bp)


def format_rate(rate_bp: int) -> str:
    """600 → '6%', 550 → '5.5%', 0 → '0%' (as a 数电票 shows a rate)."""
    whole, part = divmod(rate_bp, 100)
    return f"{whole}%" if not part else f"{whole}.{part:02d}".rstrip("0") + "%"
