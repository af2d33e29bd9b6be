"""The admin console: one HTML page and its static files, served by the service itself.

Only the files shipped in ``chalicelib/console`` are served, from a table built at
import time. Asset URLs carry a content hash (``/admin/static/<version>/...``) so they
can be cached for a long time; the page itself is never cached.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from chalice import Blueprint, Response

from ..domain import enums, labels, refunds
from .http import error_response

bp = Blueprint(__name__)

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _load() -> tuple[str, dict[str, tuple[str, str]]]:
    """(version, {relative name: (content type, text)}) for every servable asset."""
    assets = {}
    for path in sorted(CONSOLE_DIR.rglob("*")):
        ctype = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and ctype and path.name != "index.html":
            assets[path.relative_to(CONSOLE_DIR).as_posix()] = (ctype, path.read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    for name, (_, text) in assets.items():
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()[:12], assets


def catalogue_json() -> str:
    """The domain's labels (code -> label for every enum) and the refund status groups, as JSON that
    is safe inside a ``<script type="application/json">`` element: ``<``, ``>`` and ``&`` are escaped
    so no text can close the element or open a comment, and JSON.parse reads it back unchanged."""
    data = {
        "labels": enums.catalogue(),
        "details": labels.catalogue(),
        "groups": {"RESERVED": sorted(refunds.RESERVED), "AWAITING_WECHAT": sorted(refunds.AWAITING_WECHAT)},
    }
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


VERSION, ASSETS = _load()
# the page with everything but the request's base path filled in
INDEX = (CONSOLE_DIR / "index.html").read_text(encoding="utf-8").replace("{{CATALOGUE}}", catalogue_json())


def _base_path(request) -> str:
    """The prefix the service is reached under (API Gateway stage or mapping), '' locally."""
    context = request.context or {}
    path, resource = context.get("path") or "", context.get("resourcePath") or ""
    if resource and path.endswith(resource):
        return path[: len(path) - len(resource)].rstrip("/")
    return ""


@bp.route("/admin", methods=["GET"])
def index():
    base = _base_path(bp.current_request)
    html = INDEX.replace("{{BASE}}", base).replace("{{STATIC}}", f"{base}/admin/static/{VERSION}")
    return Response(body=html, status_code=200, headers={"Content-Type": CONTENT_TYPES[".html"], **PAGE_HEADERS})


def _asset(version: str, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        return error_response("NOT_FOUND", "文件不存在", 404)
    ctype, text = asset
    etag = f'"{VERSION}"'
    cache = "public, max-age=31536000, immutable" if version == VERSION else "no-cache"
    headers = {"Content-Type": ctype, "Cache-Control": cache, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if (bp.current_request.headers or {}).get("if-none-match") == etag:
        return Response(body="", status_code=304, headers=headers)
    return Response(body=text, status_code=200, headers=headers)


@bp.route("/admin/static/{version}/{name}", methods=["GET"])
def static_file(version, name):
    return _asset(version, name)


@bp.route("/admin/static/{version}/js/{name}", methods=["GET"])
def static_script(version, name):
    return _asset(version, f"js/{name}")
