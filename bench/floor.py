"""The floor under booking throughput (#15): one endpoint for the benchmarks only, served
with the app exactly as `gunicorn wsgi:app` serves it (bench/floor_app.py). It signs in by
API token as every API request does (`api_token_for`), inserts one row and commits. No
booking can cost less than this sign-in, one write and one commit, so its ratio to
`/healthz` bounds what the booking ratio can reach on the same machine. Measured by
`throughput` and `request_costs` in bench/run.py; never part of the product."""

from flask import request
from sqlalchemy import text

from booking.accounts.service import api_token_for
from booking.extensions import csrf, db

FLOOR_TABLE = "CREATE TABLE bench_floor (id BIGSERIAL PRIMARY KEY, user_id INTEGER NOT NULL)"


@csrf.exempt
def floor():
    found = api_token_for(request.headers.get("Authorization", "").partition(" ")[2])
    if found is None:
        return {"error": "invalid_token"}, 401
    db.session.execute(
        text("INSERT INTO bench_floor (user_id) VALUES (:user)"), {"user": found[0].id}
    )
    db.session.commit()
    return {"ok": True}, 201


def with_floor(flask_app):
    """The app with the floor's endpoint (its table made by FLOOR_TABLE)."""
    flask_app.add_url_rule("/bench/floor", view_func=floor, methods=["POST"])
    return flask_app
