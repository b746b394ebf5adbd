"""The API's reference: the OpenAPI 3.1 document at /api/v1/openapi.json and Swagger UI at
/api/docs, whose files come from the flask-swagger-ui package (no CDN: carriers' networks may
block foreign CDNs or be offline)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, abort, jsonify, render_template, send_from_directory, url_for

from booking.api.contract import api_spec
from booking.api.views import bp
from booking.webhooks.schemas import webhooks_section

SWAGGER_FILES = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
# Only what the page loads; nothing else of the package's folder is served.
SWAGGER_ASSETS = frozenset(
    {"swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
)

docs_bp = Blueprint("api_docs", __name__, url_prefix="/api/docs")


def openapi_document() -> dict:
    """The generated document, with the webhook events added (spectree describes paths only)."""
    document = dict(api_spec.spec)
    document["webhooks"], event_schemas = webhooks_section()
    document["components"] = {
        **document["components"],
        "schemas": {**document["components"]["schemas"], **event_schemas},
    }
    return document


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi_document())


@docs_bp.get("/")
def page():
    return render_template("api/docs.html", document_url=url_for("api.openapi_json"))


@docs_bp.get("/assets/<name>")
def asset(name: str):
    if name not in SWAGGER_ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_FILES, name, max_age=86400)
