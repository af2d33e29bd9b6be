"""Domain errors: a stable machine-readable ``ErrorCode`` and a human message, in Chinese: the
console and the mini-app show it as it is (``invalid`` words one about a request field).

The domain says *what* went wrong; which HTTP status that is belongs to the entrypoints
(``chalicelib/entrypoints/errors.py``). The README's error table and the OpenAPI
document list exactly these codes (a test keeps the three in step).
"""
from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Every code an API error can carry. Compares equal to its string value."""

    # the request itself
    VALIDATION_ERROR = "VALIDATION_ERROR"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    FOUR_EYES_REQUIRED = "FOUR_EYES_REQUIRED"
    NOT_FOUND = "NOT_FOUND"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    REFUND_NOT_FOUND = "REFUND_NOT_FOUND"
    TASK_NOT_FOUND = "TASK_NOT_FOUND"
    RECONCILIATION_NOT_FOUND = "RECONCILIATION_NOT_FOUND"
    COMPLAINT_NOT_FOUND = "COMPLAINT_NOT_FOUND"
    # the state does not allow it
    ORDER_NOT_REFUNDABLE = "ORDER_NOT_REFUNDABLE"
    AMOUNT_EXCEEDS_REFUNDABLE = "AMOUNT_EXCEEDS_REFUNDABLE"
    REFUND_LIMIT_REACHED = "REFUND_LIMIT_REACHED"
    REFUND_WINDOW_EXPIRED = "REFUND_WINDOW_EXPIRED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    REFUND_APPLICATION_PENDING = "REFUND_APPLICATION_PENDING"
    INVALID_REFUND_STATE = "INVALID_REFUND_STATE"
    AMOUNT_EXCEEDS_REQUESTED = "AMOUNT_EXCEEDS_REQUESTED"
    TASK_ALREADY_DONE = "TASK_ALREADY_DONE"
    TASK_MONEY_UNSETTLED = "TASK_MONEY_UNSETTLED"
    PAYOUT_REFERENCE_USED = "PAYOUT_REFERENCE_USED"
    WECHAT_REJECTED = "WECHAT_REJECTED"
    DAILY_LIMIT_EXCEEDED = "DAILY_LIMIT_EXCEEDED"
    OUTCOME_MISMATCH = "OUTCOME_MISMATCH"
    RECONCILIATION_RUNNING = "RECONCILIATION_RUNNING"
    INVALID_COMPLAINT_STATE = "INVALID_COMPLAINT_STATE"
    # the request as a whole (answered by the framework, the local server or API Gateway)
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    URI_TOO_LONG = "URI_TOO_LONG"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
    REQUEST_REJECTED = "REQUEST_REJECTED"
    # our side or WeChat's cannot answer now
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    BILL_HASH_MISMATCH = "BILL_HASH_MISMATCH"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    def __str__(self) -> str:
        return self.value


class DomainError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, code: ErrorCode | None = None, details=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = ErrorCode(code)
        self.details = details

    def to_dict(self) -> dict:
        body = {"code": self.code.value, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ValidationError(DomainError):
    code = ErrorCode.VALIDATION_ERROR


# How a message names a request field: its Chinese name for people, then the field for API clients.
FIELD_LABELS = {
    "amount": "金额", "reason": "原因", "note": "备注", "order_no": "订单号", "refund_no": "退款单号",
    "q": "搜索内容", "task_id": "任务编号", "status": "状态", "source_type": "来源", "user_id": "用户ID", "cursor": "分页游标",
    "limit": "每页数量", "order": "排序", "type": "类型", "bank_type": "银行类型", "bank_account": "银行卡号",
    "real_name": "户名", "channel": "付款渠道", "reference": "付款凭证号", "paid_at": "付款时间", "format": "格式",
    "operator": "操作员", "from": "开始日期", "to": "结束日期", "bill_date": "账单日期",
    "content": "回复内容", "images": "图片", "state": "状态", "deadline": "时限", "complaint_id": "投诉单号",
    "Idempotency-Key": "幂等键", "body": "请求体", "field name": "字段名",
}


def field_name(field: str) -> str:
    """``金额（amount）`` for a known field, else the field itself."""
    label = FIELD_LABELS.get(field)
    return f"{label}（{field}）" if label else field


def invalid(field: str, problem: str, **details) -> "ValidationError":
    """400 VALIDATION_ERROR about ``field``: its name followed by ``problem`` (Chinese), with
    ``details.field``."""
    return ValidationError(f"{field_name(field)}{problem}", details={"field": field, **details})


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class PermissionDenied(DomainError):
    """A staff token whose role lacks the permission the action needs."""

    code = ErrorCode.PERMISSION_DENIED


class FourEyesRequired(DomainError):
    """The person who created a refund that needs approval tried to approve it."""

    code = ErrorCode.FOUR_EYES_REQUIRED


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class OrderNotFound(NotFound):
    code = ErrorCode.ORDER_NOT_FOUND


class RefundNotFound(NotFound):
    code = ErrorCode.REFUND_NOT_FOUND


class TaskNotFound(NotFound):
    code = ErrorCode.TASK_NOT_FOUND


class ReconciliationNotFound(NotFound):
    code = ErrorCode.RECONCILIATION_NOT_FOUND


class ComplaintNotFound(NotFound):
    code = ErrorCode.COMPLAINT_NOT_FOUND


class Conflict(DomainError):
    """The request is well formed but the current state does not allow it."""

    code = ErrorCode.INVALID_REFUND_STATE


def conflict(code: ErrorCode, message: str, **details) -> Conflict:
    return Conflict(message, code=code, details=details or None)


class OutcomeMismatch(Conflict):
    """What WeChat reports for a refund does not match our record (e.g. another amount)."""

    code = ErrorCode.OUTCOME_MISMATCH

    def __init__(self, message: str, *, ours: int | None = None, theirs: int | None = None):
        super().__init__(message, details={"ours": ours, "theirs": theirs})
        self.ours = ours
        self.theirs = theirs


class UpstreamUnavailable(DomainError):
    code = ErrorCode.UPSTREAM_UNAVAILABLE


class BillRefused(DomainError):
    """WeChat's trade bill failed its SHA1 check: it was refused and no result was taken from it
    (the attempt itself is listed)."""

    code = ErrorCode.BILL_HASH_MISMATCH
