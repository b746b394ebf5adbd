"""Entry point for `flask --app wsgi` and `gunicorn wsgi:app`."""

from booking import create_app

app = create_app()
