import click
from flask import Blueprint
from sqlalchemy import select

from booking.billing.invoices import run_invoices
from booking.carriers.models import Carrier
from booking.extensions import db
from booking.problems import ServiceError

cli = Blueprint("invoices_cli", __name__, cli_group="invoices")


@cli.cli.command("run")
@click.option("--period", required=True, help="The billing month, YYYY-MM.")
@click.option("--carrier", "carrier_code", default=None, help="One carrier's code (default: all).")
def run(period: str, carrier_code: str | None) -> None:
    """Create or extend the period's draft invoices with everything not yet billed."""
    stmt = select(Carrier).order_by(Carrier.code)
    if carrier_code:
        stmt = stmt.where(Carrier.code == carrier_code)
    carriers = list(db.session.scalars(stmt))
    if not carriers:
        raise click.ClickException(f"No carrier {carrier_code!r}.")
    for carrier in carriers:
        try:
            result = run_invoices(carrier, period)
        except ServiceError as error:
            raise click.ClickException(str(error)) from None
        click.echo(
            f"{carrier.code}: {result.lines_added} lines on {len(result.invoices)} drafts"
            f" ({result.unpriced} without a rate, {result.unattributed} uses without a paying"
            " organisation)."
        )
