import click
from flask import Blueprint

from booking.calendars.sources import refresh_all

cli = Blueprint("calendars_cli", __name__, cli_group="calendars")


@cli.cli.command("refresh")
def refresh() -> None:
    """Fetch every imported calendar again; failures keep the last good busy times."""
    count, failed = refresh_all()
    click.echo(f"Refreshed {count} calendar(s); {failed} failed (see the operators' pages).")
