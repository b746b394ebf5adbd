"""Standard Webhooks signatures (https://www.standardwebhooks.com). Pure: no database, no web.

The signed content is "{webhook-id}.{webhook-timestamp}.{body}"; the signature is HMAC-SHA256
with the endpoint's secret (base64 after the "whsec_" prefix), sent as "v1,<base64>" in the
webhook-signature header beside webhook-id and webhook-timestamp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
        "Content-Type": "application/json",
    }


# After the n-th failed attempt, wait RETRY_SECONDS[n - 1]; after the last, give up. The waits
# add up to 27.6 hours, so an endpoint down for a day still gets every event.
RETRY_SECONDS = (60, 300, 1800, 7200, 18000, 36000, 36000)
