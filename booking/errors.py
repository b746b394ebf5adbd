"""Error pages and JSON errors: never a bare 500 for something a user typed."""

from __future__ import annotations

import logging

from flask import render_template, request
from flask.globals import request_ctx
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from booking.api.views import api_error
from booking.extensions import db
from booking.problems import Problem, ServiceError

log = logging.getLogger(__name__)

MESSAGES = {
    400: _l("The request could not be understood."),
    401: _l("Please sign in."),
    403: _l("You are not allowed to do this."),
    404: _l("Not found."),
    405: _l("This method is not allowed here."),
    413: _l("The upload is too large."),
    415: _l("Send the request body as JSON (Content-Type: application/json)."),
    422: _l("Some of the input is not valid."),
    429: _l("Too many requests. Please wait a moment."),
    500: _l("Something went wrong on our side. It has been logged."),
}
CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "server_error",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _respond(problems: list[Problem], status: int):

    if request_ctx.url_adapter is None:  # an untrusted Host: no page can be built for it
        return str(problems[0].message), status, {"Content-Type": "text/plain; charset=utf-8"}
    if _wants_json():
        return api_error(problems, status)
    return (
        render_template("error.html", status=status, problems=problems),
        status,
    )


def init_app(app) -> None:
    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        db.session.rollback()
        return _respond(error.problems, error.status)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _respond(
            [
                Problem(
                    "csrf", _l("Your session has expired or the form is stale. Please try again.")
                )
            ],
            400,
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        message = MESSAGES.get(status, error.name)
        return _respond([Problem(CODES.get(status, "error"), message)], status)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if app.testing:
            raise error  # tests see the real traceback; a 500 is always a bug
        log.exception("Unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return _respond([Problem("server_error", MESSAGES[500])], 500)
