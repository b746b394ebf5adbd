"""Entry point for `flask --app wsgi` and `gunicorn wsgi:app`."""

import gc

from booking import create_app

app = create_app()

# Everything made while starting (modules, the app, SQLAlchemy's mappers, pydantic models)
# lives as long as the process: keep it out of the garbage collector's full passes, which
# otherwise walk all of it whenever a request's allocations trigger one.
gc.collect()
gc.freeze()
