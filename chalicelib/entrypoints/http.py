"""What every route shares: auth, JSON parsing, parameter checks, and mapping domain
errors to ``{"code", "message"}`` responses. A handler parses, authorises, calls one
service function and returns its result."""
from __future__ import annotations

import functools
import json
import re
import uuid

from chalice import Response

from ..adapters import auth
from ..domain import staff, text
from ..domain.enums import Permission
from ..domain.errors import DomainError, ErrorCode, OrderNotFound, TaskNotFound, ValidationError, invalid
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


def endpoint(bp, role: str | None, permission: Permission | None = None):
    """Wrap a route: verify the bearer token, check the permission, map errors.

    ``role``: None (public), ``"user"`` (a player), ``"staff"`` (any staff role; then
    ``permission`` is required and a role without it gets 403 PERMISSION_DENIED). The route's
    permission is kept on the view (``view.permission``) and listed in the OpenAPI document as
    ``x-permission``. The handler receives the principal (or None) as its first argument.
    """
    if role == "staff" and not isinstance(permission, Permission):
        raise TypeError("a staff route declares exactly one Permission")
    if role != "staff" and permission is not None:
        raise TypeError("only staff routes declare a permission")

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            request = bp.current_request
            request_id = _request_id(request.headers or {})
            with log_context(request_id=request_id, route=fn.__name__):
                try:
                    principal = auth.verify(request.headers.get("authorization"), role) if role else None
                    if permission is not None:
                        staff.require(principal.staff_role, permission)
                    _check_path_params(kwargs)
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

        wrapper.role = role
        wrapper.permission = permission
        return wrapper

    return decorate


MAX_BODY_BYTES = 16 * 1024  # the largest valid body is well under 2 KB
MAX_JSON_DEPTH = 32  # the deepest valid body is 1 (an object of scalars)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def json_depth(raw: bytes) -> int:
    """How deeply the arrays and objects of the JSON text ``raw`` nest, counted without parsing
    it (so a hostile body cannot make the parser recurse). Brackets inside strings do not count."""
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw))
    depth = deepest = 0
    for b in brackets:
        if b in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _unique_object(pairs: list) -> dict:
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise invalid(key, "重复出现")
        obj[key] = value
    return obj


def _check_strings(value, path: str) -> None:
    """Every key and string in a parsed body is acceptable text (domain/text.py): no lone
    surrogates, no control characters. The error names the field."""
    if isinstance(value, str):
        text.check_text(value, path or "body")
    elif isinstance(value, dict):
        for key, item in value.items():
            text.check_text(key, f"{path}.{key}" if path else "field name")
            _check_strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_strings(item, f"{path}[{i}]")


def json_body(request, max_bytes: int = MAX_BODY_BYTES) -> dict:
    """The request's JSON object, refused with 400 VALIDATION_ERROR when it is larger than
    ``max_bytes`` (MAX_BODY_BYTES unless the route carries images), nests deeper than
    MAX_JSON_DEPTH, is not UTF-8 JSON, repeats a key, uses NaN/Infinity, or holds a string that
    is not acceptable text."""
    try:
        raw = request.raw_body  # from a Lambda event's text body: may not encode as UTF-8
    except (UnicodeError, ValueError):
        raise invalid("body", "不是有效的 JSON（UTF-8）") from None
    if not raw:
        return {}
    if len(raw) > max_bytes:
        raise invalid("body", f"最多 {max_bytes // 1024} KB", max_bytes=max_bytes)
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise invalid("body", f"嵌套超过 {MAX_JSON_DEPTH} 层", max_depth=MAX_JSON_DEPTH)
    try:
        body = json.loads(raw.decode("utf-8").removeprefix("\ufeff"), object_pairs_hook=_unique_object,
                          parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise invalid("body", "不是有效的 JSON（UTF-8）") from None
    if not isinstance(body, dict):
        raise invalid("body", "必须是 JSON 对象")
    _check_strings(body, "")
    return body


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_PATH_PARAM_CHARS = 128
# A path parameter that cannot be an id names nothing: the not-found of what it would name.
_PATH_NOT_FOUND = {"order_no": (OrderNotFound, "订单不存在"), "task_id": (TaskNotFound, "任务不存在")}


def _request_id(headers) -> str:
    """The caller's X-Request-Id when it is a plain token (it goes into every log line), else a new one."""
    given = headers.get("x-request-id")
    return given if isinstance(given, str) and _REQUEST_ID.match(given) else uuid.uuid4().hex


def _check_path_params(params: dict) -> None:
    """Ids in the path are printable text of at most MAX_PATH_PARAM_CHARS characters: anything
    else (control characters, invalid Unicode, a 3 KB id) is refused before any lookup."""
    for name, value in params.items():
        if isinstance(value, str) and 0 < len(value) <= MAX_PATH_PARAM_CHARS and value.isprintable():
            continue
        if name in _PATH_NOT_FOUND:
            error, message = _PATH_NOT_FOUND[name]
            raise error(message)
        raise invalid(name, "不是有效的编号")


def only_fields(body: dict, allowed: set[str]) -> dict:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"不支持的字段：{'、'.join(unknown)}", details={"fields": unknown})
    return body


MAX_QUERY_VALUE_CHARS = 128
MAX_CURSOR_CHARS = 2048  # a list over 8 shards resumes each one


def query(request, allowed: set[str]) -> dict:
    params = dict(request.query_params or {})
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValidationError(f"不支持的查询参数：{'、'.join(unknown)}", details={"fields": unknown})
    for name, value in params.items():
        text.check_text(value, name)
        limit = MAX_CURSOR_CHARS if name == "cursor" else MAX_QUERY_VALUE_CHARS
        if len(value) > limit:
            raise invalid(name, f"最多 {limit} 个字符")
    return params


def int_param(params: dict, name: str, *, enum=None, minimum: int | None = None, maximum: int | None = None,
              default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise invalid(name, "必须是整数")
    value = int(raw)
    if enum is not None and value not in enum.labels():
        raise one_of(name, sorted(enum.labels()))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise invalid(name, f"必须在 {minimum} 到 {maximum} 之间")
    return value


def one_of(name: str, choices) -> ValidationError:
    """400: ``name`` must be one of ``choices``."""
    return invalid(name, f"必须是以下之一：{'、'.join(map(str, choices))}")


def format_param(params: dict) -> str:
    """A list's ``format``: json (the default) or csv."""
    fmt = params.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise one_of("format", ["json", "csv"])
    return fmt


def limit_param(params: dict) -> int:
    return int_param(params, "limit", minimum=1, maximum=100, default=20)


def idempotency_key(request) -> str | None:
    from ..services.refunds import validate_idempotency_key

    key = (request.headers or {}).get("idempotency-key")
    if key is not None and not (isinstance(key, str) and key.isascii() and key.strip().isprintable()):
        raise invalid("Idempotency-Key", "只能包含可打印的 ASCII 字符")
    return validate_idempotency_key(key)
