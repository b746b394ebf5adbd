import click
from flask import Blueprint

from booking.bookings.waitlist import expire_offers

cli = Blueprint("bookings_cli", __name__, cli_group="bookings")


@cli.cli.command("expire-offers")
def expire_offers_command() -> None:
    """Expire waitlist offers that ran out and offer the places to the next in line."""
    count = expire_offers()
    click.echo(f"Waitlist offers checked on {count} resource(s).")
