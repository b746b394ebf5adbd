"""What each webhook event's body looks like, for the OpenAPI document's `webhooks` section
(OpenAPI 3.1). The bodies themselves are built in events.py and by the services that emit;
tests/test_api_contract.py checks real deliveries against these models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from booking.webhooks.events import EVENTS


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BookingEventData(_Data):
    id: int
    status: str
    resource_id: int
    carrier: str = Field(description="The carrier's code.")
    start: str = Field(description="ISO 8601, UTC.")
    end: str = Field(description="ISO 8601, UTC.")
    quantity: int
    user_id: int
    organisation_id: int
    sequence: int = Field(description="Grows with every change; order events by it.")


class UsageEventData(_Data):
    id: int
    resource_id: int
    booking_id: int | None
    user_id: int | None
    organisation_id: int | None
    start: str
    end: str | None = Field(description="null while the session is still running.")
    quantity: int
    source: str


class InvoiceEventData(_Data):
    id: int
    number: str | None
    kind: str = Field(description="invoice or credit_note.")
    organisation_id: int
    period: str
    total_fen: int = Field(description="Amounts in fen (1/100 CNY).")
    tax_fen: int
    subsidy_fen: int
    due_fen: int
    due_on: str | None


class VoucherEventData(_Data):
    voucher_id: int
    programme_id: int
    organisation_id: int
    invoice_id: int
    amount_fen: int
    balance_fen: int


DATA_OF: dict[str, type[_Data]] = {
    "booking.created": BookingEventData,
    "booking.approved": BookingEventData,
    "booking.changed": BookingEventData,
    "booking.cancelled": BookingEventData,
    "booking.no_show": BookingEventData,
    "usage.recorded": UsageEventData,
    "invoice.issued": InvoiceEventData,
    "voucher.drawn": VoucherEventData,
    "voucher.returned": VoucherEventData,
}
assert set(DATA_OF) == set(EVENTS), "every event has a described body"


def event_model(event: str) -> type[BaseModel]:
    data_model = DATA_OF[event]
    name = "".join(part.capitalize() for part in event.replace(".", "_").split("_")) + "Event"
    return type(
        name,
        (_Data,),
        {
            "__annotations__": {"type": Literal[event], "timestamp": str, "data": data_model},
            "__doc__": f"The body of a {event} delivery (signed per Standard Webhooks).",
        },
    )


EVENT_MODELS = {event: event_model(event) for event in EVENTS}

_SIGNATURE_HEADERS = [
    {
        "name": name,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }
    for name, description in (
        ("webhook-id", "The message id; the same on every retry (deduplicate by it)."),
        ("webhook-timestamp", "Seconds since 1970 when this attempt was signed."),
        (
            "webhook-signature",
            "v1,<base64 HMAC-SHA256 of id.timestamp.body with the endpoint's secret>.",
        ),
    )
]


def webhooks_section() -> tuple[dict[str, Any], dict[str, Any]]:
    """The document's `webhooks` (one POST per event) and the schemas they refer to."""
    section: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for event, model in EVENT_MODELS.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        section[event] = {
            "post": {
                "summary": event,
                "description": model.__doc__,
                "parameters": _SIGNATURE_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                        }
                    },
                },
                "responses": {
                    "2XX": {"description": "Received; any other answer is retried with back-off."}
                },
            }
        }
    return section, schemas
