"""`gunicorn bench.floor_app:app`: the app as `gunicorn wsgi:app` serves it, with the floor's
endpoint (bench/floor.py) for `throughput` in bench/run.py."""

from bench.floor import with_floor
from wsgi import app

with_floor(app)
