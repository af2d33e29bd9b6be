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
    """The document as compact JSON text (read and checked once)."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = json.dumps(json.loads(SPEC_PATH.read_text(encoding="utf-8")), ensure_ascii=False,
                                 separators=(",", ":"))
        return _cached


def document() -> dict:
    return json.loads(document_text())


@bp.route("/openapi.json", methods=["GET"])
def openapi():
    return Response(body=document_text(), status_code=200,
                    headers={"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache"})
