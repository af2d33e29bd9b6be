"""Domain errors carry a stable machine-readable code and the HTTP status they map to."""
from __future__ import annotations


class DomainError(Exception):
    code = "ERROR"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None, details=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.details = details

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ValidationError(DomainError):
    code, http_status = "VALIDATION_ERROR", 400


class Unauthenticated(DomainError):
    code, http_status = "UNAUTHENTICATED", 401


class Forbidden(DomainError):
    code, http_status = "FORBIDDEN", 403


class NotFound(DomainError):
    http_status = 404


class OrderNotFound(NotFound):
    code = "ORDER_NOT_FOUND"


class RefundNotFound(NotFound):
    code = "REFUND_NOT_FOUND"


class TaskNotFound(NotFound):
    code = "TASK_NOT_FOUND"


class Conflict(DomainError):
    """409: the request is well formed but the current state does not allow it."""

    code, http_status = "CONFLICT", 409


def conflict(code: str, message: str, **details) -> Conflict:
    return Conflict(message, code=code, details=details or None)


class UpstreamUnavailable(DomainError):
    code, http_status = "UPSTREAM_UNAVAILABLE", 503
