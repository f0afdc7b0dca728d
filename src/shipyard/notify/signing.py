"""How a receiver knows an event came from this server, unchanged and recently.

Every ``json`` event carries::

    X-Shipyard-Timestamp: <unix seconds when this attempt was sent>
    X-Shipyard-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The timestamp is inside the signed text, so a captured request cannot be replayed with a
fresh timestamp; a receiver refuses timestamps older than a few minutes (``verify``'s
``tolerance_s``) and drops repeated event ids (the envelope's ``id``).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Shipyard-Signature"
TIMESTAMP_HEADER = "X-Shipyard-Timestamp"
EVENT_HEADER = "X-Shipyard-Event"
DELIVERY_HEADER = "X-Shipyard-Delivery"
"""The event's idempotency key (also the envelope's ``id``)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Shipyard-Signature`` value for ``body`` sent at ``timestamp``."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The timestamp and signature headers of one attempt."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    given: str | None,
    *,
    now: float,
    tolerance_s: float = 300.0,
) -> bool:
    """Whether ``given`` signs ``body`` at ``timestamp`` and that is within ``tolerance_s``
    of ``now`` (what a receiver checks; compared in constant time)."""
    if not timestamp or not given or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), given)


__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "signature",
    "signed_headers",
    "verify",
]
