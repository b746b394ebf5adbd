"""How a credit note is split over the lines it credits. Pure: no database.

A credit is an amount of what the customer was due (paid or owed): it can never exceed what is
left due on the invoice. Each credited line also gives back its share of the voucher subsidy
(to the vouchers it drew on), so list price, subsidy and amount due stay consistent:
list credited = due credited + subsidy returned."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from booking.billing.money import round_fen


@dataclass(frozen=True)
class Creditable:
    """What is left to credit on one line of the original invoice."""

    line_id: int
    due_left: int  # fen the customer was due for it, less earlier credits
    subsidy_left: int  # fen of voucher subsidy on it, less earlier returns
    amount_left: int = 0  # its amount (tax included), less earlier credits
    tax_left: int = 0  # the VAT in it, less the VAT earlier credits took back


@dataclass(frozen=True)
class CreditPart:
    line_id: int
    due: int  # fen returned to the customer (> 0)
    subsidy: int  # fen returned to the vouchers (>= 0)

    @property
    def amount(self) -> int:
        """The list price credited: what the customer gets back plus what the vouchers do."""
        return self.due + self.subsidy


def due_left(lines: list[Creditable]) -> int:
    return sum(max(0, line.due_left) for line in lines)


def split_credit(amount_fen: int, lines: list[Creditable]) -> list[CreditPart]:
    """Credit `amount_fen` of what was due, line by line in order; each line's subsidy comes
    back in proportion (all of it when the line's whole due is credited), rounded half up once.
    Raises ValueError when the amount is not positive or exceeds what is left due."""
    if amount_fen <= 0 or amount_fen > due_left(lines):
        raise ValueError("credit out of range")
    parts, left = [], amount_fen
    for line in lines:
        if left == 0:
            break
        due = min(max(0, line.due_left), left)
        if due == 0:
            continue
        if due == line.due_left:
            subsidy = line.subsidy_left
        else:
            subsidy = round_fen(Fraction(line.subsidy_left * due, line.due_left))
        parts.append(CreditPart(line.line_id, due, max(0, subsidy)))
        left -= due
    return parts
