"""The API's reference: the OpenAPI 3.1 document at /api/v1/openapi.json and Swagger UI at
/api/docs, whose files come from the flask-swagger-ui package (no CDN: carriers' networks may
block foreign CDNs or be offline)."""

from __future__ import annotations

import json
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
    """The generated document, with the webhook events added (spectree describes paths only).

    Made plain JSON (spectree leaves an `any()` converter's choices as a tuple), and an optional
    field's `default: null` is left out where the field's type has no null: it only means
    "may be absent", and a validator rightly says null is not, say, a date-time."""
    document = json.loads(json.dumps(api_spec.spec))
    document["webhooks"], event_schemas = webhooks_section()
    document["components"]["schemas"].update(event_schemas)
    _drop_null_defaults(document)
    return document


def _drop_null_defaults(node) -> None:
    if isinstance(node, dict):
        if "default" in node and node["default"] is None and not _allows_null(node):
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)


def _allows_null(schema: dict) -> bool:
    return schema.get("type") == "null" or any(
        _allows_null(option) for option in schema.get("anyOf", []) + schema.get("oneOf", [])
    )


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
