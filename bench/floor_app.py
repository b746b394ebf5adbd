"""The floor under booking throughput (#15): the app exactly as `gunicorn wsgi:app` serves it,
plus one endpoint for this benchmark only. It signs in by API token as every API request does
(`api_token_for`), inserts one row and commits. No booking can cost less than this sign-in,
one write and one commit, so its ratio to `/healthz` bounds what the booking ratio can reach
on the same machine. Served by `throughput` in bench/run.py; never part of the product."""

from flask import request
from sqlalchemy import text

from booking.accounts.service import api_token_for
from booking.extensions import csrf, db
from wsgi import app


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


app.add_url_rule("/bench/floor", view_func=floor, methods=["POST"])
