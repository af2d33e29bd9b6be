"""Which HTTP status each domain error code is. The one place the API's error
statuses are chosen; the domain only names what went wrong."""
from __future__ import annotations

from ..domain.errors import ErrorCode as E

HTTP_STATUS: dict[E, int] = {
    E.VALIDATION_ERROR: 400,
    E.UNAUTHENTICATED: 401,
    E.FORBIDDEN: 403,
    E.PERMISSION_DENIED: 403,
    E.FOUR_EYES_REQUIRED: 403,
    E.NOT_FOUND: 404,
    E.ORDER_NOT_FOUND: 404,
    E.REFUND_NOT_FOUND: 404,
    E.TASK_NOT_FOUND: 404,
    E.ORDER_NOT_REFUNDABLE: 409,
    E.AMOUNT_EXCEEDS_REFUNDABLE: 409,
    E.REFUND_LIMIT_REACHED: 409,
    E.REFUND_WINDOW_EXPIRED: 409,
    E.IDEMPOTENCY_KEY_REUSED: 409,
    E.REFUND_APPLICATION_PENDING: 409,
    E.INVALID_REFUND_STATE: 409,
    E.AMOUNT_EXCEEDS_REQUESTED: 409,
    E.TASK_ALREADY_DONE: 409,
    E.WECHAT_REJECTED: 409,
    E.DAILY_LIMIT_EXCEEDED: 409,
    E.OUTCOME_MISMATCH: 409,
    E.UPSTREAM_UNAVAILABLE: 503,
    E.INTERNAL_ERROR: 500,
}


def http_status(code: E) -> int:
    return HTTP_STATUS[E(code)]
