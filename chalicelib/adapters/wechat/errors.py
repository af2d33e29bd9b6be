"""WeChat Pay failures as typed errors, and the translation of what the SDK raises or answers into them.

The SDK returns ``(http_status, text)`` for non-2xx answers and raises untyped exceptions for
transport and signature problems. ``translate_exception`` and ``error_from_response`` turn all
of that into the typed errors below; nothing else in the service needs to know the SDK's habits.

Error semantics for callers:

* ``OutcomeUnknown`` (``outcome_known`` False): the request may or may not have
  taken effect. Retry later (or query) with the SAME out_refund_no.
  ``RetryLater`` (FREQUENCY_LIMITED, 429, which is also how the one-minute rule
  between two refunds of one order is modelled) is one of them: not accepted,
  retry the same out_refund_no after ``retry_after_seconds``.
* ``ConfigurationError``: SIGN_ERROR, MCH_NOT_EXISTS, NO_AUTH, or our own keys,
  certificates or settings are unusable. Nothing happened; hold the work and
  retry after the configuration is fixed (raise an alarm). Not a ``Rejected``.
  ``GatewayMisconfigured`` (our side) is also an ``OutcomeUnknown`` as before.
* ``BadSignature`` (``outcome_known`` False): a 2xx answer whose signature could
  not be verified; treat like ``OutcomeUnknown``.
* ``Rejected`` (``outcome_known`` True): WeChat refused; nothing happened.
  ``NotFound`` = RESOURCE_NOT_EXISTS (for a query: WeChat never created the
  refund, so it is safe to resubmit the same out_refund_no);
  ``InsufficientFunds`` = NOT_ENOUGH (may be resubmitted after a top-up).
  ``UserAccountAbnormal`` = USER_ACCOUNT_ABNORMAL: the payer's account cannot
  receive; WeChat will never make this refund, pay the user by other means.
  ``BillNotReady`` (STATEMENT_CREATING) / ``BillNotFound`` (NO_STATEMENT_EXIST: no
  trade or refund that day, or not generated yet).
* ``BillHashMismatch``: a downloaded bill whose SHA1 differs from ``hash_value``.
* ``InvalidNotification``: a notification to answer with a non-2xx status.
"""
from __future__ import annotations

import json
from typing import Any

CONFIGURATION_CODES = ("SIGN_ERROR", "MCH_NOT_EXISTS", "NO_AUTH")
SAME_ORDER_INTERVAL_SECONDS = 60  # refund rules, note 8


class WechatError(Exception):
    """Base of every WeChat Pay failure. ``http_status`` is None without an HTTP answer."""

    outcome_known = True

    def __init__(self, code: str, message: str = "", http_status: int | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.http_status = http_status


class OutcomeUnknown(WechatError):
    """SYSTEM_ERROR, FREQUENCY_LIMITED, 5xx, timeout, connection error: retry with the same number."""

    outcome_known = False

    def __init__(self, code: str, message: str = "", http_status: int | None = None, *, frequency_limited: bool = False):
        super().__init__(code, message, http_status)
        self.frequency_limited = frequency_limited


class RetryLater(OutcomeUnknown):
    """FREQUENCY_LIMITED (429): not accepted; retry the same number after ``retry_after_seconds``.

    WeChat's rule of a minute between two refunds of one order has no documented error
    code of its own; it is expected (and simulated) as this answer."""

    def __init__(self, code: str, message: str = "", http_status: int | None = None,
                 retry_after_seconds: int = SAME_ORDER_INTERVAL_SECONDS):
        super().__init__(code, message, http_status, frequency_limited=True)
        self.retry_after_seconds = retry_after_seconds


class ConfigurationError(WechatError):
    """SIGN_ERROR / MCH_NOT_EXISTS / NO_AUTH from WeChat, or unusable keys, certificates or
    settings on our side: nothing happened. Hold the work, alarm, retry after the fix."""


class GatewayMisconfigured(ConfigurationError, OutcomeUnknown):
    """The SDK client cannot be built (bad key, missing public key...). Nothing was sent;
    retrying after the configuration is fixed is safe. Also an ``OutcomeUnknown``, as it
    always was, so callers that hold unknown outcomes keep doing so."""

    outcome_known = False


class Rejected(WechatError):
    """WeChat refused the request (4xx): terminal for these parameters."""


class NotFound(Rejected):
    """RESOURCE_NOT_EXISTS."""


class InsufficientFunds(Rejected):
    """NOT_ENOUGH: the merchant balance is too low."""


class UserAccountAbnormal(Rejected):
    """USER_ACCOUNT_ABNORMAL: the payer's account cannot receive (closed). WeChat did not and
    will not make the refund; the merchant must pay the user by other means."""


class BillNotReady(Rejected):
    """STATEMENT_CREATING: the day's bill is being generated (ready the next day from ~10:00)."""


class BillNotFound(Rejected):
    """NO_STATEMENT_EXIST: WeChat has no bill for that day (no trade or refund then)."""


class BillHashMismatch(WechatError):
    """The downloaded bill does not match the SHA1 WeChat announced: nothing was read."""


class BadSignature(WechatError):
    """A 2xx answer whose signature could not be verified: the outcome is unknown."""

    outcome_known = False


class InvalidNotification(WechatError):
    """A notification to refuse. ``code``: BAD_SIGNATURE, STALE_TIMESTAMP, FUTURE_TIMESTAMP,
    SIGNTEST_PROBE, MISSING_HEADER or MALFORMED."""


def translate_exception(exc: Exception, op: str) -> WechatError:
    """Map whatever the SDK (or requests under it) raised to a typed error.

    ``op`` "notification" yields InvalidNotification for verification problems.
    """
    import requests  # already loaded by the SDK at this point

    message = str(exc)
    notification = op == "notification"
    if isinstance(exc, requests.exceptions.Timeout):
        return OutcomeUnknown("TIMEOUT", f"{op}: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return OutcomeUnknown("CONNECTION_ERROR", f"{op}: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.RequestException):
        return OutcomeUnknown("HTTP_ERROR", f"{op}: {type(exc).__name__}")
    if "failed to verify the signature" in message:
        return BadSignature("BAD_SIGNATURE", f"{op}: response signature does not verify")
    if "does not support this algorithm" in message:
        # a missing/unknown Wechatpay-Signature-Type, or (notifications) an unknown
        # resource algorithm
        if notification:
            return InvalidNotification("MALFORMED", "unsupported signature type or algorithm")
        return BadSignature("MISSING_SIGNATURE_TYPE", f"{op}: {message}")
    if isinstance(exc, ValueError):
        # json.JSONDecodeError, or int('0x' + serial) on a serial that is not hex
        if notification:
            return InvalidNotification("MALFORMED", f"{type(exc).__name__}")
        return BadSignature("UNVERIFIABLE_RESPONSE", f"{op}: {type(exc).__name__}")
    if "private key" in message or "public key" in message or "platform certificate" in message:
        return GatewayMisconfigured("CONFIG_ERROR", message)
    # Unknown: the request may have gone out, so the outcome is not known.
    return OutcomeUnknown("UNEXPECTED", f"{op}: {type(exc).__name__}: {message}")


def error_from_response(op: str, status: int, text: Any) -> WechatError:
    """The typed error for a non-2xx answer ``{"code","message"}``."""
    body: Any = None
    try:
        body = json.loads(text) if text else None
    except (TypeError, ValueError):
        pass
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"HTTP_{status}")
    message = str(body.get("message") or "")
    if code in ("FREQUENCY_LIMITED", "RATELIMIT_EXCEED") or status == 429:
        return RetryLater(code, message, status)
    if status >= 500 or code == "SYSTEM_ERROR" or status == 408:
        return OutcomeUnknown(code, message, status)
    if code in CONFIGURATION_CODES or status == 401:
        return ConfigurationError(code, message, status)
    if code in ("RESOURCE_NOT_EXISTS", "ORDER_NOT_EXIST", "ORDER_NOT_EXISTS"):
        return NotFound(code, message, status)
    if code == "NOT_ENOUGH":
        return InsufficientFunds(code, message, status)
    if code == "USER_ACCOUNT_ABNORMAL":
        return UserAccountAbnormal(code, message, status)
    if code == "STATEMENT_CREATING":
        return BillNotReady(code, message, status)
    if code == "NO_STATEMENT_EXIST":
        return BillNotFound(code, message, status)
    if 400 <= status < 500:
        return Rejected(code, message, status)
    return OutcomeUnknown(code, f"unexpected HTTP status {status}", status)
