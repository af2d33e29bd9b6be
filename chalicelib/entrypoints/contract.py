"""One error contract for every answer the API gives before or around a handler.

The handlers already answer errors as ``{"code", "message"}`` JSON (``http.error_response``).
Chalice itself answers some requests without a handler: a method the route does not have
(405 ``{"Code", "Message"}``), a body of a type the route does not take (415, echoing the
request's Content-Type), an unhandled exception (500). This middleware, registered on the
app, gives those the same shape with stable codes, answers a path no route has with 404
``NOT_FOUND`` and refuses a body larger than the service ever needs (413) before a handler
parses it. The local server (``devstack.stack``) and API Gateway's own answers
(``deploy.build_resources.gateway_responses``) use the same codes and words.
"""
from __future__ import annotations

from chalice import Response

from ..domain.errors import ErrorCode as E
from ..log import get_logger
from .http import error_response

log = get_logger(__name__)

# The largest request body any route needs is a refund or review of a few hundred bytes, and
# a WeChat notification of a few KiB; API Gateway's own limit is 10 MB. A complaint's reply or
# refusal carries its images (domain/complaints.py: IMAGE_BODY_BYTES, entrypoints/complaints.py).
MAX_BODY_BYTES = 64 * 1024


def body_limit(resource_path: str | None) -> int:
    """The largest body the route ``resource_path`` takes."""
    from ..domain.complaints import IMAGE_BODY_BYTES
    from .complaints import IMAGE_ROUTES

    return IMAGE_BODY_BYTES if resource_path in IMAGE_ROUTES else MAX_BODY_BYTES

# status -> (code, message) for the answers the framework or the gateway gives (codes: ErrorCode)
ERRORS = {
    400: (E.VALIDATION_ERROR.value, "请求格式有误"),
    401: (E.UNAUTHENTICATED.value, "登录已失效或令牌无效，请重新登录"),
    403: (E.FORBIDDEN.value, "没有权限执行此操作"),
    404: (E.NOT_FOUND.value, "接口不存在，请检查请求地址"),
    405: (E.METHOD_NOT_ALLOWED.value, "该接口不支持此请求方法"),
    413: (E.PAYLOAD_TOO_LARGE.value, f"请求体过大（不超过 {MAX_BODY_BYTES // 1024} KiB）"),
    414: (E.URI_TOO_LONG.value, "请求地址过长"),
    415: (E.UNSUPPORTED_MEDIA_TYPE.value, "不支持的请求体类型，请以 application/json 发送"),
    429: (E.TOO_MANY_REQUESTS.value, "请求过于频繁，请稍后重试"),
    431: (E.HEADERS_TOO_LARGE.value, "请求头过大"),
    500: (E.INTERNAL_ERROR.value, "服务暂时不可用，请稍后重试"),
    502: (E.INTERNAL_ERROR.value, "服务暂时不可用，请稍后重试"),
    503: (E.UPSTREAM_UNAVAILABLE.value, "服务暂时不可用，请稍后重试"),
    504: (E.UPSTREAM_UNAVAILABLE.value, "服务处理超时，请稍后重试"),
}


def error_for(status: int, headers: dict | None = None) -> Response:
    """The contract's answer for ``status`` (a 4xx/5xx the framework or a server produced)."""
    code, message = ERRORS.get(status) or ERRORS[500 if status >= 500 else 400]
    response = error_response(code, message, status)
    response.headers.update(headers or {})
    return response


def _conform(response: Response) -> Response:
    """A framework error (``{"Code", "Message"}`` or any non-JSON-object body) in the contract's shape;
    the service's own ``{"code", "message"}`` answers and every 2xx/3xx pass unchanged."""
    if response.status_code < 400:
        return response
    body = response.body
    if isinstance(body, str) and body.startswith("{") and '"code"' in body:
        return response  # already the contract (the handlers' error_response)
    if isinstance(body, dict) and "code" in body and "message" in body:
        return response
    keep = {k: v for k, v in (response.headers or {}).items() if k.lower() == "allow"}
    return error_for(response.status_code, keep)


def middleware(app):
    """The HTTP middleware for ``app`` (``app.register_middleware(middleware(app), "http")``)."""

    def error_contract(request, get_response):
        if request is None:  # not an API Gateway proxy event: nothing to route
            return error_for(404)
        context = request.context or {}
        if context.get("resourcePath") not in app.routes:
            return error_for(404)
        if len(request.raw_body or b"") > body_limit(context.get("resourcePath")):
            return error_for(413)
        try:
            response = get_response(request)
        except Exception:  # noqa: BLE001 - never a stack trace or a framework body in an answer
            log.exception("unhandled error")
            return error_for(500)
        return _conform(response)

    return error_contract
