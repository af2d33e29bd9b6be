"""The API's OpenAPI 3 document, served as a file shipped with the code.

Public (no token) and read lazily: the JSON is loaded on the first request and
kept for the life of the container, so it costs nothing at import time.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

from chalice import Blueprint, Response

bp = Blueprint(__name__)

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.json"
_lock = threading.Lock()
_cached: str | None = None


def document_text() -> str:
    """The document as compact JSON text (read, completed and checked once)."""
    global _cached
    with _lock:
        if _cached is None:
            doc = with_enums(json.loads(SPEC_PATH.read_text(encoding="utf-8")))
            _cached = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        return _cached


def enum_values() -> dict[str, list]:
    """The values of each enum the document names with ``x-enum``, from the domain (one source)."""
    from ..domain import enums
    from ..domain.errors import ErrorCode

    values: dict[str, list] = {}
    for name in enums.catalogue():
        cls = getattr(enums, name)
        values[name] = list(cls.labels())
    values["RefundChannel"] = enums.refund_channels()
    values["ErrorCode"] = [c.value for c in ErrorCode] + ["FAIL"]  # FAIL: WeChat's notify protocol
    return values


def with_enums(node, values: dict | None = None):
    """Fill every ``{"x-enum": Name}`` schema with ``enum``: the domain's values (and null when
    the schema is nullable)."""
    values = values if values is not None else enum_values()
    if isinstance(node, dict):
        if "x-enum" in node:
            node["enum"] = list(values[node["x-enum"]]) + ([None] if node.get("nullable") else [])
        for child in node.values():
            with_enums(child, values)
    elif isinstance(node, list):
        for child in node:
            with_enums(child, values)
    return node


def document() -> dict:
    return json.loads(document_text())


@bp.route("/openapi.json", methods=["GET"])
def openapi():
    return Response(body=document_text(), status_code=200,
                    headers={"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache"})
