"""WeChat Pay API v3 gateway: refunds and notification parsing.

This is the only module that imports the ``wechatpayv3`` SDK, and it does so
lazily (the SDK pulls in ``cryptography`` and ``requests``, ~100+ ms), so
importing this module is cheap on every Lambda cold start.

The SDK returns ``(http_status, text)`` for non-2xx answers and raises untyped
exceptions for transport and signature problems. ``_translate_exception`` and
``_error_from_response`` turn all of that into the typed errors below; nothing
else in the service needs to know the SDK's habits.

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

Amounts are integer fen. Secrets, request bodies and decrypted notifications
are never logged, and the SDK's debug logger is never enabled.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from chalicelib import config
from chalicelib.log import get_logger, log_context

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import WechatSettings
    from chalicelib.domain.tradebill import BillLine, BillSummary

log = get_logger(__name__)

REFUND_STATUSES = ("PROCESSING", "SUCCESS", "CLOSED", "ABNORMAL")
REFUND_EVENT_TYPES = ("REFUND.SUCCESS", "REFUND.CLOSED", "REFUND.ABNORMAL")
PAYMENT_EVENT_TYPES = ("TRANSACTION.SUCCESS",)
ABNORMAL_REFUND_TYPES = ("USER_BANK_CARD", "MERCHANT_BANK_CARD")
TRADE_STATES = ("SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR")
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
# WeChat's user_received_account when a refund went back to the merchant ("退还商户"):
# 商户基本账户 / 商户结算银行账户 (e.g. an abnormal refund re-routed to MERCHANT_BANK_CARD).
MERCHANT_ACCOUNT_PREFIX = "商户"
CONFIGURATION_CODES = ("SIGN_ERROR", "MCH_NOT_EXISTS", "NO_AUTH")
SAME_ORDER_INTERVAL_SECONDS = 60  # refund rules, note 8
MAX_REASON_BYTES = 80
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
NOTIFICATION_HEADERS = (
    "wechatpay-signature",
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-serial",
    "wechatpay-signature-type",
)
# WeChat allows more characters, but the SDK signs the raw path while requests
# percent-encodes some of them (e.g. "|"), which breaks the query's signature.
_OUT_REFUND_NO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_\-|*@]{1,32}$")
# WeChat's rule for a merchant order number: 6-32 of [A-Za-z0-9_-|*]
_OUT_TRADE_NO_STRICT = re.compile(r"^[A-Za-z0-9_\-|*]{6,32}$")
_BILL_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_PATH_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEX = re.compile(r"^[0-9A-Fa-f]{1,64}$")


# --------------------------------------------------------------------------
# errors


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


# --------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class RefundAmount:
    """A Refund object's ``amount`` in fen. ``payer_refund`` < ``refund`` when a coupon paid part."""

    total: int
    refund: int
    payer_total: int | None = None
    payer_refund: int | None = None
    settlement_refund: int | None = None
    discount_refund: int | None = None
    currency: str = "CNY"

    @classmethod
    def from_wechat(cls, amount: Any) -> "RefundAmount":
        if not isinstance(amount, Mapping):
            raise ValueError("amount missing")
        refund, total = amount.get("refund"), amount.get("total")
        if not (_is_fen(refund) and _is_fen(total)):
            raise ValueError("amount.refund/amount.total must be integers")
        optional = {}
        for name in ("payer_total", "payer_refund", "settlement_refund", "discount_refund"):
            value = amount.get(name)
            if value is not None and not _is_fen(value):
                raise ValueError(f"amount.{name} must be an integer")
            optional[name] = value
        return cls(total=total, refund=refund, currency=str(amount.get("currency") or "CNY"), **optional)


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    out_refund_no: str
    status: str  # PROCESSING | SUCCESS | CLOSED | ABNORMAL
    user_received_account: str | None
    success_time: str | None
    create_time: str | None
    amount_refund: int  # fen
    amount_total: int  # fen
    transaction_id: str | None
    out_trade_no: str | None
    raw: dict = field(repr=False, compare=False)
    channel: str | None = None  # ORIGINAL | BALANCE | OTHER_BALANCE | OTHER_BANKCARD (absent in notifications)
    amount: RefundAmount | None = None
    mchid: str | None = None  # notifications only

    @property
    def paid_to_merchant(self) -> bool:
        """The money went back to the merchant's own account (an abnormal refund re-routed to
        MERCHANT_BANK_CARD), not to the payer: the payer has still not been refunded."""
        return bool(self.user_received_account and self.user_received_account.startswith(MERCHANT_ACCOUNT_PREFIX))

    @property
    def payer_refund(self) -> int:
        """What reaches the payer (fen): ``amount.payer_refund`` when WeChat sends it."""
        if self.amount is not None and self.amount.payer_refund is not None:
            return self.amount.payer_refund
        return self.amount_refund

    @classmethod
    def from_wechat(cls, data: Mapping[str, Any], *, status_field: str = "status") -> "RefundResult":
        """Build from a Refund object (``status``) or a notification resource (``refund_status``).

        Raises ValueError when a required field is missing or mistyped.
        """
        status = data.get(status_field)
        refund_id, out_refund_no = data.get("refund_id"), data.get("out_refund_no")
        amount = RefundAmount.from_wechat(data.get("amount"))
        if status not in REFUND_STATUSES:
            raise ValueError(f"unknown refund status {status!r}")
        if not (isinstance(refund_id, str) and refund_id and isinstance(out_refund_no, str) and out_refund_no):
            raise ValueError("refund_id/out_refund_no missing")
        for name in ("user_received_account", "success_time", "create_time", "transaction_id", "out_trade_no",
                     "channel", "mchid"):
            if data.get(name) is not None and not isinstance(data.get(name), str):
                raise ValueError(f"{name} must be a string")
        if status == "SUCCESS" and status_field == "refund_status" and not data.get("success_time"):
            raise ValueError("success_time missing on a successful refund")
        return cls(
            refund_id=refund_id,
            out_refund_no=out_refund_no,
            status=status,
            user_received_account=data.get("user_received_account"),
            success_time=data.get("success_time"),
            create_time=data.get("create_time"),
            amount_refund=amount.refund,
            amount_total=amount.total,
            transaction_id=data.get("transaction_id"),
            out_trade_no=data.get("out_trade_no"),
            raw=dict(data),
            channel=data.get("channel"),
            amount=amount,
            mchid=data.get("mchid"),
        )


@dataclass(frozen=True)
class PaymentAmount:
    total: int  # fen
    payer_total: int | None  # fen; < total when a coupon paid part (absent until paid)
    currency: str = "CNY"


@dataclass(frozen=True)
class PaymentResult:
    """A Transaction object (payment query answer or TRANSACTION.* resource)."""

    appid: str | None
    mchid: str | None
    out_trade_no: str
    transaction_id: str | None  # absent until paid
    trade_state: str  # SUCCESS | REFUND | NOTPAY | CLOSED | REVOKED | USERPAYING | PAYERROR
    trade_state_desc: str | None
    success_time: str | None
    amount: PaymentAmount
    raw: dict = field(repr=False, compare=False)  # holds the payer's openid: never log it

    @property
    def paid(self) -> bool:
        """WeChat holds the money: SUCCESS, or REFUND (paid, then refunds were accepted)."""
        return self.trade_state in ("SUCCESS", "REFUND")

    def mismatches(self, *, appid: str, mchid: str) -> tuple[str, ...]:
        """Which of appid / mchid differ from ours."""
        return tuple(name for name, ours in (("appid", appid), ("mchid", mchid))
                     if getattr(self, name) is not None and getattr(self, name) != ours)

    @classmethod
    def from_wechat(cls, data: Mapping[str, Any]) -> "PaymentResult":
        """Raises ValueError when a required field is missing or mistyped."""
        out_trade_no, state = data.get("out_trade_no"), data.get("trade_state")
        if not isinstance(out_trade_no, str) or not out_trade_no:
            raise ValueError("out_trade_no missing")
        if state not in TRADE_STATES:
            raise ValueError(f"unknown trade_state {state!r}")
        amount = data.get("amount")
        if not isinstance(amount, Mapping) or not _is_fen(amount.get("total")):
            raise ValueError("amount.total must be an integer")
        payer_total = amount.get("payer_total")
        if payer_total is not None and not _is_fen(payer_total):
            raise ValueError("amount.payer_total must be an integer")
        for name in ("appid", "mchid", "transaction_id", "success_time", "trade_state_desc"):
            if data.get(name) is not None and not isinstance(data.get(name), str):
                raise ValueError(f"{name} must be a string")
        if state == "SUCCESS" and not (data.get("transaction_id") and data.get("success_time")):
            raise ValueError("a paid transaction needs transaction_id and success_time")
        return cls(
            appid=data.get("appid"),
            mchid=data.get("mchid"),
            out_trade_no=out_trade_no,
            transaction_id=data.get("transaction_id") or None,
            trade_state=state,
            trade_state_desc=data.get("trade_state_desc"),
            success_time=data.get("success_time"),
            amount=PaymentAmount(total=amount["total"], payer_total=payer_total,
                                 currency=str(amount.get("currency") or "CNY")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class NotificationEvent:
    """A verified, decrypted notification. ``refund`` (REFUND.*) or ``payment``
    (TRANSACTION.*) is the validated payload; ``resource`` the decrypted dict as sent."""

    id: str
    event_type: str  # REFUND.SUCCESS | REFUND.CLOSED | REFUND.ABNORMAL | TRANSACTION.SUCCESS | ...
    create_time: str | None
    resource_type: str
    summary: str | None
    resource: dict = field(repr=False)  # decrypted
    refund: RefundResult | None = field(default=None, repr=False)
    payment: PaymentResult | None = field(default=None, repr=False)
    # payment events: which of appid / mchid are not ours (recorded by the service, not refused)
    merchant_mismatches: tuple[str, ...] = ()

    @property
    def is_refund(self) -> bool:
        return self.event_type in REFUND_EVENT_TYPES

    def refund_result(self) -> RefundResult:
        """The decrypted resource of a REFUND.* event as a RefundResult (status = refund_status)."""
        if not self.is_refund:
            raise InvalidNotification("MALFORMED", f"not a refund event: {self.event_type}")
        if self.refund is not None:
            return self.refund
        try:
            return RefundResult.from_wechat(self.resource, status_field="refund_status")
        except ValueError as exc:
            raise InvalidNotification("MALFORMED", f"refund resource: {exc}") from None


# --------------------------------------------------------------------------
# helpers


def _is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def truncate_utf8(text: str, max_bytes: int = MAX_REASON_BYTES) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def _point_at(client: Any, base_url: str) -> None:
    """Aim the SDK at ``base_url``. The SDK hard-codes api.mch.weixin.qq.com; this is
    the one place that overrides it (the local simulator, tests)."""
    client._core._gate_way = base_url.rstrip("/")


def _lower_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): v for k, v in headers.items()}


def _translate_exception(exc: Exception, op: str) -> WechatError:
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


def _error_from_response(op: str, status: int, text: Any) -> WechatError:
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


def _default_cert_dir(mchid: str) -> str:
    import tempfile

    return os.path.join(tempfile.gettempdir(), "wechatpay-platform-certs", mchid)


def _has_valid_certificate(cert_dir: str) -> bool:
    from wechatpayv3.utils import load_certificate
    from datetime import datetime, timezone

    if not os.path.isdir(cert_dir):
        return False
    now = datetime.now(timezone.utc)
    for name in os.listdir(cert_dir):
        if not name.lower().endswith(".pem"):
            continue
        with open(os.path.join(cert_dir, name), encoding="utf-8") as fh:
            cert = load_certificate(fh.read())
        if cert is not None and cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return True
    return False


def _download_platform_certificates(s: "WechatSettings", cert_dir: str) -> None:
    """Fetch GET /v3/certificates from ``s.base_url`` into ``cert_dir``.

    The SDK would do this itself inside its constructor, but against its
    hard-coded host, before ``_point_at`` can run. The certificates are
    AES-GCM sealed with the APIv3 key, which authenticates them.
    """
    import requests
    from wechatpayv3.utils import aes_decrypt, build_authorization, load_certificate, load_private_key

    path = "/v3/certificates"
    authorization = build_authorization(path, "GET", s.mchid, s.cert_serial_no, load_private_key(s.private_key))
    response = requests.get(
        s.base_url.rstrip("/") + path,
        headers={"Authorization": authorization, "Accept": "application/json"},
        timeout=s.timeout_seconds,
    )
    if response.status_code != 200:
        raise _error_from_response("certificates", response.status_code, response.text)
    os.makedirs(cert_dir, exist_ok=True)
    written = 0
    for item in response.json().get("data") or []:
        sealed = item.get("encrypt_certificate") or {}
        serial = str(item.get("serial_no") or "")
        if not _HEX.match(serial):
            continue
        pem = aes_decrypt(
            nonce=sealed.get("nonce", ""),
            ciphertext=sealed.get("ciphertext", ""),
            associated_data=sealed.get("associated_data", ""),
            apiv3_key=s.apiv3_key,
        )
        if not pem or load_certificate(pem) is None:
            continue
        tmp = os.path.join(cert_dir, f".{serial}.pem.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(pem)
        os.replace(tmp, os.path.join(cert_dir, f"{serial}.pem"))
        written += 1
    if not written:
        raise GatewayMisconfigured("CONFIG_ERROR", "no usable platform certificate (check the APIv3 key)")


def _build_client(s: "WechatSettings") -> Any:
    from wechatpayv3 import WeChatPay, WeChatPayType

    if not s.timeout_seconds or s.timeout_seconds <= 0:
        raise GatewayMisconfigured("CONFIG_ERROR", "timeout_seconds must be positive")
    if len(s.apiv3_key.encode()) != 32:
        raise GatewayMisconfigured("CONFIG_ERROR", "the APIv3 key must be 32 bytes")
    common = dict(
        wechatpay_type=WeChatPayType.JSAPI,
        mchid=s.mchid,
        private_key=s.private_key,
        cert_serial_no=s.cert_serial_no,
        appid=s.appid,
        apiv3_key=s.apiv3_key,
        notify_url=s.payment_notify_url,  # refunds always pass their own notify_url
        logger=None,  # the SDK's debug log prints headers, bodies and decrypted callbacks
        timeout=s.timeout_seconds,  # None would mean "wait forever"
    )
    if s.public_key_id:
        if not s.public_key:
            raise GatewayMisconfigured("CONFIG_ERROR", "public_key_id is set but public_key is not")
        client = WeChatPay(**common, public_key=s.public_key, public_key_id=s.public_key_id)
        if s.cert_dir:
            # Both key modes (a switch period): the SDK picks the public key when the serial is
            # the public key id and a platform certificate otherwise.
            if not _has_valid_certificate(s.cert_dir):
                _download_platform_certificates(s, s.cert_dir)
            client._core._cert_dir = s.cert_dir.rstrip("/") + "/"
            client._core._init_certificates()
    else:
        cert_dir = s.cert_dir or _default_cert_dir(s.mchid)
        if not _has_valid_certificate(cert_dir):
            _download_platform_certificates(s, cert_dir)
        client = WeChatPay(**common, cert_dir=cert_dir)
    _point_at(client, s.base_url)
    return client


def valid_out_trade_no(out_trade_no: object) -> bool:
    """WeChat's rule for a merchant order number: 6-32 characters of [A-Za-z0-9_-|*]."""
    return isinstance(out_trade_no, str) and bool(_OUT_TRADE_NO_STRICT.match(out_trade_no))


def bill_timeout_seconds() -> float:
    """Read timeout of a bill download (``WECHAT_BILL_TIMEOUT_SECONDS``, default 60)."""
    raw = os.environ.get("WECHAT_BILL_TIMEOUT_SECONDS") or "60"
    try:
        value = float(raw)
    except ValueError:
        raise GatewayMisconfigured("CONFIG_ERROR", "WECHAT_BILL_TIMEOUT_SECONDS must be a number") from None
    if value <= 0:
        raise GatewayMisconfigured("CONFIG_ERROR", "WECHAT_BILL_TIMEOUT_SECONDS must be positive")
    return value


def _check_out_refund_no(out_refund_no: str) -> None:
    if not isinstance(out_refund_no, str) or not _OUT_REFUND_NO.match(out_refund_no):
        raise ValueError("out_refund_no must be 1-64 characters of [A-Za-z0-9_-]")


# --------------------------------------------------------------------------
# gateway


class WechatGateway:
    """Refund calls and notification parsing for one merchant configuration.

    The SDK client is built on first use (thread-safe) and reused.
    """

    def __init__(self, settings: "WechatSettings"):
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def _sdk(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = _build_client(self.settings)
                    except WechatError as err:
                        log.warning("wechat client init failed: %s", err.code)
                        raise
                    except Exception as exc:
                        err = _translate_exception(exc, "init")
                        log.warning("wechat client init failed: %s", err.code)
                        raise err from exc
                client = self._client
        return client

    def _invoke(self, op: str, call: Callable[[Any], tuple[int, Any]]) -> dict:
        """Run one SDK call; return the verified JSON body of a 2xx or raise a typed error."""
        client = self._sdk()
        try:
            status, text = call(client)
        except Exception as exc:
            err = _translate_exception(exc, op)
            log.warning("wechat %s failed: %s %s", op, err.code, err.message)
            raise err from exc
        if not 200 <= status < 300:
            err = _error_from_response(op, status, text)
            log.warning("wechat %s answered %s %s: %s", op, status, err.code, err.message)
            raise err
        try:
            body = json.loads(text)
        except (TypeError, ValueError):
            body = None
        if not isinstance(body, dict):
            raise OutcomeUnknown("MALFORMED_RESPONSE", f"{op}: 2xx body is not a JSON object", status)
        return body

    def _refund_result(self, op: str, body: dict, out_refund_no: str) -> RefundResult:
        try:
            result = RefundResult.from_wechat(body)
        except ValueError as exc:
            raise OutcomeUnknown("MALFORMED_RESPONSE", f"{op}: {exc}", 200) from None
        if result.out_refund_no != out_refund_no:
            raise OutcomeUnknown("MALFORMED_RESPONSE", f"{op}: answer is about another out_refund_no", 200)
        log.info("wechat %s answered %s", op, result.status,
                 extra={"channel": result.channel, "paid_to_merchant": result.paid_to_merchant})
        return result

    # ---- refunds ---------------------------------------------------------
    def create_refund(
        self,
        *,
        out_refund_no: str,
        amount: int,
        total: int,
        out_trade_no: str | None = None,
        transaction_id: str | None = None,
        reason: str | None = None,
    ) -> RefundResult:
        """Apply for a refund of ``amount`` fen of an order of ``total`` fen.

        At least one of ``out_trade_no`` / ``transaction_id``; with both, only
        ``transaction_id`` is sent (as the SDK does). Submitting the same
        ``out_refund_no`` again never refunds twice. A 200 means accepted
        (usually PROCESSING); the outcome comes by notification or query.
        Raises ValueError for arguments WeChat would reject anyway.
        """
        _check_out_refund_no(out_refund_no)
        if not (_is_fen(amount) and _is_fen(total)) or not 0 < amount <= total:
            raise ValueError("amount and total are integer fen with 0 < amount <= total")
        if transaction_id:
            out_trade_no = None
            if not _PATH_ID.match(transaction_id):
                raise ValueError("transaction_id must be 1-64 characters of [A-Za-z0-9_-]")
        elif not out_trade_no:
            raise ValueError("give out_trade_no or transaction_id")
        elif not _OUT_TRADE_NO.match(out_trade_no):
            raise ValueError("out_trade_no must be 1-32 characters of [A-Za-z0-9_-|*@]")
        reason = truncate_utf8(reason) if reason else None
        notify_url = self.settings.refund_notify_url  # explicit: the SDK would fall back to the payment URL
        with log_context(refund_no=out_refund_no, order_no=out_trade_no):
            return self._create_refund(out_refund_no, amount, total, out_trade_no, transaction_id, reason, notify_url)

    def _create_refund(self, out_refund_no, amount, total, out_trade_no, transaction_id, reason, notify_url):
        body = self._invoke(
            "create_refund",
            lambda c: c.refund(
                out_refund_no=out_refund_no,
                amount={"refund": amount, "total": total, "currency": "CNY"},
                transaction_id=transaction_id,
                out_trade_no=out_trade_no,
                reason=reason,
                notify_url=notify_url,
            ),
        )
        return self._refund_result("create_refund", body, out_refund_no)

    def query_refund(self, out_refund_no: str) -> RefundResult:
        """Current state of a refund; ``NotFound`` if WeChat never created it."""
        _check_out_refund_no(out_refund_no)
        with log_context(refund_no=out_refund_no):
            body = self._invoke("query_refund", lambda c: c.query_refund(out_refund_no=out_refund_no))
            return self._refund_result("query_refund", body, out_refund_no)

    def apply_abnormal_refund(
        self,
        *,
        refund_id: str,
        out_refund_no: str,
        type: str,  # noqa: A002 - WeChat's field name
        bank_type: str | None = None,
        bank_account: str | None = None,
        real_name: str | None = None,
    ) -> RefundResult:
        """Re-route an ABNORMAL refund to a bank card (USER_BANK_CARD: bank_type, bank_account
        and real_name required; the SDK RSA-encrypts the last two) or to the merchant's
        account (MERCHANT_BANK_CARD)."""
        _check_out_refund_no(out_refund_no)
        if not isinstance(refund_id, str) or not _PATH_ID.match(refund_id):
            raise ValueError("refund_id must be 1-64 characters of [A-Za-z0-9_-]")
        if type not in ABNORMAL_REFUND_TYPES:
            raise ValueError(f"type must be one of {ABNORMAL_REFUND_TYPES}")
        if type == "USER_BANK_CARD" and not (bank_type and bank_account and real_name):
            raise ValueError("USER_BANK_CARD needs bank_type, bank_account and real_name")
        if type == "MERCHANT_BANK_CARD":
            bank_type = bank_account = real_name = None
        with log_context(refund_no=out_refund_no):
            return self._apply_abnormal(refund_id, out_refund_no, type, bank_type, bank_account, real_name)

    def _apply_abnormal(self, refund_id, out_refund_no, type, bank_type, bank_account, real_name):  # noqa: A002
        body = self._invoke(
            "apply_abnormal_refund",
            lambda c: c.abnormal_refund(
                refund_id=refund_id,
                out_refund_no=out_refund_no,
                type=type,
                bank_type=bank_type,
                bank_account=bank_account,
                real_name=real_name,
            ),
        )
        return self._refund_result("apply_abnormal_refund", body, out_refund_no)

    # ---- payments --------------------------------------------------------
    def query_payment(self, out_trade_no: str) -> PaymentResult:
        """A payment's state at WeChat (``GET /v3/pay/transactions/out-trade-no/{no}``);
        ``NotFound`` (ORDER_NOT_EXIST) when WeChat has no such order."""
        if not isinstance(out_trade_no, str) or not _OUT_TRADE_NO.match(out_trade_no):
            raise ValueError("out_trade_no must be 1-32 characters of [A-Za-z0-9_-|*@]")
        with log_context(order_no=out_trade_no):
            body = self._invoke("query_payment", lambda c: c.query(out_trade_no=out_trade_no))
            try:
                result = PaymentResult.from_wechat(body)
            except ValueError as exc:
                raise OutcomeUnknown("MALFORMED_RESPONSE", f"query_payment: {exc}", 200) from None
            if result.out_trade_no != out_trade_no:
                raise OutcomeUnknown("MALFORMED_RESPONSE", "query_payment: answer is about another order", 200)
            log.info("wechat payment queried", extra={"trade_state": result.trade_state})
            return result

    # ---- trade bill ------------------------------------------------------
    def download_trade_bill(self, bill_date: str, *, bill_type: str = "ALL") -> "TradeBill":
        """Fetch a day's trade bill (Beijing date ``YYYY-MM-DD``), verified.

        Asks for the bill (SDK ``trade_bill``, signed answer), downloads ``download_url``
        with a signed GET into a temporary file (streamed: the answer is not signed, the
        SHA1 proves it), and checks the SHA1 of the decompressed bill against
        ``hash_value`` before anything is returned: ``BillHashMismatch`` otherwise.
        ``BillNotReady`` / ``BillNotFound`` when WeChat has no bill (yet). Iterate the
        returned ``TradeBill`` for ``BillLine``s then the ``BillSummary``; it holds one
        line at a time. Close it (or use ``with``) when done.
        """
        if not isinstance(bill_date, str) or not _BILL_DATE.match(bill_date):
            raise ValueError("bill_date must be YYYY-MM-DD")
        if bill_type not in BILL_TYPES:
            raise ValueError(f"bill_type must be one of {BILL_TYPES}")
        with log_context(bill_date=bill_date):
            body = self._invoke(
                "trade_bill", lambda c: c.trade_bill(bill_date=bill_date, bill_type=bill_type, tar_type="GZIP")
            )
            url, hash_type, hash_value = body.get("download_url"), body.get("hash_type"), body.get("hash_value")
            if not (isinstance(url, str) and isinstance(hash_value, str) and hash_type == "SHA1"):
                raise OutcomeUnknown("MALFORMED_RESPONSE", "trade_bill: download_url/hash_value/hash_type", 200)
            fh = self._download(url)
            try:
                digest, size = _gunzip_sha1(fh)
            except (OSError, EOFError) as exc:  # not gzip, or cut short
                fh.close()
                raise BillHashMismatch("MALFORMED_BILL", f"the download is not a complete gzip file: {exc}") from None
            if digest.lower() != hash_value.lower():
                fh.close()
                log.error("trade bill hash mismatch: refused", extra={"bytes": size})
                raise BillHashMismatch("HASH_MISMATCH", "the bill's SHA1 does not match hash_value")
            log.info("trade bill downloaded and verified", extra={"bytes": size})
            return TradeBill(bill_date=bill_date, bill_type=bill_type, hash_value=hash_value, size=size, file=fh)

    def _download(self, url: str):
        """Signed GET of a bill download URL, streamed into a temporary file (rewound)."""
        import tempfile
        from urllib.parse import urlsplit

        import requests
        from wechatpayv3.utils import build_authorization

        client = self._sdk()
        base, target = urlsplit(self.settings.base_url), urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            # never send our Authorization to a host that is not WeChat's
            raise OutcomeUnknown("MALFORMED_RESPONSE", "download_url is not on the WeChat Pay host", 200)
        path = target.path + (f"?{target.query}" if target.query else "")
        authorization = build_authorization(
            path, "GET", self.settings.mchid, self.settings.cert_serial_no, client._core._private_key
        )
        fh = tempfile.TemporaryFile()
        try:
            with requests.get(url, headers={"Authorization": authorization, "Accept": "application/json"},
                              stream=True, timeout=(self.settings.timeout_seconds, bill_timeout_seconds())) as resp:
                if resp.status_code != 200:
                    raise _error_from_response("download_bill", resp.status_code, resp.text)
                for chunk in resp.iter_content(chunk_size=64 * 1024):
                    fh.write(chunk)
        except WechatError:
            fh.close()
            raise
        except Exception as exc:
            fh.close()
            err = _translate_exception(exc, "download_bill")
            log.warning("wechat download_bill failed: %s", err.code)
            raise err from exc
        fh.seek(0)
        return fh

    # ---- notifications ---------------------------------------------------
    def parse_notification(
        self,
        headers: Mapping[str, Any],
        body: bytes,
        *,
        now: float | None = None,
        max_skew_seconds: int = 300,
    ) -> NotificationEvent:
        """Verify and decrypt a notification (refund or payment).

        ``body`` must be the raw request bytes. Raises ``InvalidNotification``
        (answer 4xx) for anything that must be refused; ``OutcomeUnknown`` /
        ``GatewayMisconfigured`` for transient or configuration problems
        (answer 5xx so WeChat retries). The event type is not checked here.
        """
        h = _lower_headers(headers)
        signature = h.get("wechatpay-signature")
        if not signature:
            raise InvalidNotification("MISSING_HEADER", "Wechatpay-Signature")
        if str(signature).startswith(SIGNTEST_PREFIX):
            raise InvalidNotification("SIGNTEST_PROBE", "signature test probe")
        missing = [name for name in NOTIFICATION_HEADERS if not h.get(name)]
        if missing:
            raise InvalidNotification("MISSING_HEADER", ", ".join(missing))
        try:
            timestamp = int(h["wechatpay-timestamp"])
        except (TypeError, ValueError):
            raise InvalidNotification("MALFORMED", "Wechatpay-Timestamp is not an integer") from None
        now = time.time() if now is None else now
        if now - timestamp > max_skew_seconds:
            raise InvalidNotification("STALE_TIMESTAMP", f"{int(now - timestamp)} s old")
        if timestamp - now > max_skew_seconds:
            raise InvalidNotification("FUTURE_TIMESTAMP", f"{int(timestamp - now)} s ahead")
        if h["wechatpay-signature-type"] != SIGNATURE_TYPE:
            raise InvalidNotification("BAD_SIGNATURE", "unsupported Wechatpay-Signature-Type")
        serial = str(h["wechatpay-serial"])
        # Public key mode: the serial is the public key id. Certificate mode: a certificate's
        # hex serial. Both configured (a switch period): either, picked by the serial.
        cert_mode = not self.settings.public_key_id or bool(self.settings.cert_dir)
        if serial == self.settings.public_key_id:
            pass
        elif not cert_mode or not _HEX.match(serial):
            # anything else would make the SDK fetch certificates: refuse up front
            raise InvalidNotification("BAD_SIGNATURE", "unknown Wechatpay-Serial")
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidNotification("MALFORMED", "body is not UTF-8") from None

        client = self._sdk()
        try:
            data = client.callback(h, raw)  # verifies over the raw bytes, then decrypts
        except Exception as exc:
            err = _translate_exception(exc, "notification")
            log.warning("wechat notification refused: %s %s", err.code, err.message)
            raise err from exc
        if data is None:
            raise InvalidNotification("BAD_SIGNATURE", "signature verification or decryption failed")
        resource = data.get("resource")
        event_id, event_type = data.get("id"), data.get("event_type")
        if not isinstance(resource, dict) or not isinstance(event_id, str) or not isinstance(event_type, str):
            raise InvalidNotification("MALFORMED", "id, event_type or resource missing")
        refund = payment = None
        mismatches: tuple[str, ...] = ()
        try:
            if event_type in REFUND_EVENT_TYPES:
                refund = RefundResult.from_wechat(resource, status_field="refund_status")
                if refund.mchid not in (None, self.settings.mchid):
                    raise InvalidNotification("MALFORMED", "notification for another merchant")
                if f"REFUND.{refund.status}" != event_type:
                    raise InvalidNotification("MALFORMED", "refund_status does not match event_type")
            elif event_type.startswith("TRANSACTION."):
                payment = PaymentResult.from_wechat(resource)
                if not _OUT_TRADE_NO.match(payment.out_trade_no):
                    raise ValueError("out_trade_no is not a WeChat merchant order number")
                mismatches = payment.mismatches(appid=self.settings.appid, mchid=self.settings.mchid)
            elif resource.get("mchid") not in (None, self.settings.mchid):
                raise InvalidNotification("MALFORMED", "notification for another merchant")
        except ValueError as exc:
            raise InvalidNotification("MALFORMED", f"{event_type} resource: {exc}") from None
        with log_context(
            refund_no=refund.out_refund_no if refund else None,
            order_no=(refund.out_trade_no if refund else payment.out_trade_no if payment else None),
        ):
            if mismatches:
                log.warning("payment notification names another %s", "/".join(mismatches),
                            extra={"notify_id": event_id})
            log.info("wechat notification verified", extra={"notify_id": event_id, "event_type": event_type,
                                                            "serial": serial})
        return NotificationEvent(
            id=event_id,
            event_type=event_type,
            create_time=data.get("create_time"),
            resource_type=str(data.get("resource_type")),
            summary=data.get("summary"),
            resource=resource,
            refund=refund,
            payment=payment,
            merchant_mismatches=mismatches,
        )


# --------------------------------------------------------------------------
# trade bill file


def _gunzip_sha1(fh) -> tuple[str, int]:
    """SHA1 (hex) and size of the decompressed content of a gzip file object; rewinds it."""
    import gzip
    import hashlib

    digest, size = hashlib.sha1(), 0
    fh.seek(0)
    with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
        while chunk := gz.read(64 * 1024):
            digest.update(chunk)
            size += len(chunk)
    fh.seek(0)
    return digest.hexdigest(), size


class TradeBill:
    """A verified trade bill on disk. Iterating yields ``BillLine`` objects, then the
    ``BillSummary`` (``chalicelib.domain.tradebill``), decompressing as it goes."""

    def __init__(self, *, bill_date: str, bill_type: str, hash_value: str, size: int, file) -> None:
        self.bill_date = bill_date
        self.bill_type = bill_type
        self.hash_value = hash_value
        self.size = size  # bytes, decompressed
        self._file = file

    def __iter__(self) -> "Iterator[BillLine | BillSummary]":
        import gzip
        import io

        from chalicelib.domain.tradebill import iter_bill

        if self._file is None:
            raise ValueError("the bill is closed")
        self._file.seek(0)
        gz = gzip.GzipFile(fileobj=self._file, mode="rb")
        with io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
            yield from iter_bill(text)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "TradeBill":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------
# module-level gateway

_gateway_lock = threading.Lock()
_gateway: WechatGateway | None = None


def get_gateway() -> WechatGateway:
    """The process-wide gateway for the current ``config.wechat_settings()``: built on first use
    and again whenever the settings change (a rotated key, read through the secrets' time-to-live
    cache, takes effect without a cold start)."""
    global _gateway
    current = config.wechat_settings()
    gateway = _gateway
    if gateway is None or gateway.settings != current:
        with _gateway_lock:
            if _gateway is None or _gateway.settings != current:
                if _gateway is not None:
                    log.info("wechat settings changed; gateway rebuilt")
                _gateway = WechatGateway(current)
            gateway = _gateway
    return gateway


def reset_gateway() -> None:
    """Forget the cached gateway (tests change settings between cases)."""
    global _gateway
    with _gateway_lock:
        _gateway = None
