import click
from flask import Blueprint

from booking.accounts import service

cli = Blueprint("api_token_cli", __name__, cli_group="api-token")


@cli.cli.command("create")
@click.argument("email")
@click.option("--name", default="CLI", help="A label to recognise the token by.")
@click.option(
    "--scopes",
    default="read,write,operate",
    help="What it may do, comma-separated: read, write, operate.",
)
def create(email: str, name: str, scopes: str) -> None:
    """Create a personal API token for EMAIL and print it (last line)."""
    user = service.user_by_email(email)
    if user is None:
        raise click.ClickException(f"No user with e-mail {email!r}.")
    try:
        token, secret = service.create_api_token(
            user, name, [s.strip() for s in scopes.split(",") if s.strip()]
        )
    except service.ServiceError as error:
        raise click.ClickException("; ".join(str(p.message) for p in error.problems)) from None
    click.echo(f"Token {token.prefix}… created for {user.email}. It is shown only once:")
    click.echo(secret)


users_cli = Blueprint("users_cli", __name__, cli_group="users")


@users_cli.cli.command("make-admin")
@click.argument("email")
def make_admin(email: str) -> None:
    """Make the account EMAIL a platform admin (for the first admin of a new deployment)."""
    from booking.extensions import db

    user = service.user_by_email(email)
    if user is None:
        raise click.ClickException(f"No user with e-mail {email!r}. Register first.")
    user.is_platform_admin = True
    db.session.commit()
    click.echo(f"{user.email} is now a platform admin.")
