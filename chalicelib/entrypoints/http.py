"""What every route shares: auth, JSON parsing, parameter checks, and mapping domain
errors to ``{"code", "message"}`` responses. A handler parses, authorises, calls one
service function and returns its result."""
from __future__ import annotations

import functools
import json
import uuid

from chalice import Response

from ..adapters import auth
from ..domain.errors import DomainError, ErrorCode, ValidationError
from ..log import get_logger, log_context
from .errors import http_status

log = get_logger(__name__)
# JSON bodies; curl and some clients label them form-encoded or plain text, so accept those
# labels and let json_body() decide (a non-JSON body is a 400 VALIDATION_ERROR, never a 415).
JSON_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
              "application/x-www-form-urlencoded"]


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    h = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    h.update(headers or {})
    return Response(body=json.dumps(body, ensure_ascii=False), status_code=status, headers=h)


def csv_response(export) -> Response:
    """A CSV export page. The body is text, not bytes: API Gateway's Lambda proxy response must
    be JSON, and a text content type is not base64-encoded; the gateway sends it as UTF-8."""
    headers = {"Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
               "Content-Disposition": f'attachment; filename="{export.filename}"'}
    if export.next_cursor:
        headers["X-Next-Cursor"] = export.next_cursor
    return Response(body=export.text, status_code=200, headers=headers)


def error_response(code: str, message: str, status: int, details=None) -> Response:
    body = {"code": code, "message": message}
    if details:
        body["details"] = details
    return json_response(body, status)


def endpoint(bp, role: str | None):
    """Wrap a route: verify the bearer token for ``role`` (None: public), map errors.

    The handler receives the principal (or None) as its first argument.
    """

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            request = bp.current_request
            request_id = (request.headers or {}).get("x-request-id") or uuid.uuid4().hex
            with log_context(request_id=request_id, route=fn.__name__):
                try:
                    principal = auth.verify(request.headers.get("authorization"), role) if role else None
                    result = fn(principal, *args, **kwargs)
                    if isinstance(result, Response):
                        return result
                    return json_response(result)
                except DomainError as err:
                    status = http_status(err.code)
                    if status >= 500:
                        log.error("request failed", extra={"code": err.code.value})
                    return error_response(err.code.value, err.message, status, err.details)
                except Exception:  # noqa: BLE001 - never a stack trace in a response
                    log.exception("unhandled error")
                    return error_response(ErrorCode.INTERNAL_ERROR.value, "服务暂时不可用，请稍后重试", 500)

        return wrapper

    return decorate


def json_body(request) -> dict:
    raw = request.raw_body
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")
    return body


def only_fields(body: dict, allowed: set[str]) -> dict:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(unknown)}", details={"fields": unknown})
    return body


def query(request, allowed: set[str]) -> dict:
    params = dict(request.query_params or {})
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValidationError(f"unknown filter(s): {', '.join(unknown)}", details={"fields": unknown})
    return params


def int_param(params: dict, name: str, *, enum=None, minimum: int | None = None, maximum: int | None = None,
              default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationError(f"{name} must be an integer", details={"field": name})
    value = int(raw)
    if enum is not None and value not in enum.labels():
        raise ValidationError(f"{name} must be one of {sorted(enum.labels())}", details={"field": name})
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValidationError(f"{name} must be between {minimum} and {maximum}", details={"field": name})
    return value


def limit_param(params: dict) -> int:
    return int_param(params, "limit", minimum=1, maximum=100, default=20)


def idempotency_key(request) -> str | None:
    from ..services.refunds import validate_idempotency_key

    return validate_idempotency_key((request.headers or {}).get("idempotency-key"))
