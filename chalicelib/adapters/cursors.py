"""Opaque, tamper-evident pagination cursors.

A cursor is ``c1.<payload>.<mac>``: a version, the DynamoDB start key (base64url JSON) and an
HMAC-SHA256 over the version, the *scope* and the payload, keyed with the ``CURSOR_SECRET``
secret. The scope names the query a page belongs to (table, index, partition, filter,
direction) and is not in the cursor: a cursor is accepted only by the query it was issued for,
so one from another route or another filter, an edited one and one signed with another secret
are all refused the same way, before DynamoDB sees anything.

Rotating ``CURSOR_SECRET`` invalidates the cursors in flight (a client starts from page one).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from .. import config

VERSION = "c1"
SECRET_NAME = "CURSOR_SECRET"


class InvalidCursor(ValueError):
    """Not a cursor this service issued for this query."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(scope: str, payload: str) -> str:
    key = config.secret(SECRET_NAME).encode("utf-8")
    message = f"{VERSION}\n{scope}\n{payload}".encode("utf-8", "surrogatepass")
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def sign(value: dict, scope: str) -> str:
    """The cursor carrying ``value`` (a JSON object) for the query named ``scope``."""
    payload = _b64(json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{VERSION}.{payload}.{_mac(scope, payload)}"


def verify(cursor: str, scope: str) -> dict:
    """The object inside ``cursor`` when this service signed it for ``scope``; else InvalidCursor."""
    if not isinstance(cursor, str) or not cursor.isascii():
        raise InvalidCursor("not a cursor")
    parts = cursor.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise InvalidCursor("unknown cursor format")
    _, payload, mac = parts
    if not hmac.compare_digest(_mac(scope, payload), mac):
        raise InvalidCursor("cursor signature does not match this query")
    try:
        value = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):  # pragma: no cover - signed by us, so well formed
        raise InvalidCursor("cursor payload is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidCursor("cursor payload is not an object")
    return value
