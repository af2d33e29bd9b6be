"""WeChat Pay API v3 calls for one merchant configuration: refund create and query, the
abnormal-refund re-route, payment query, trade bill, consumer complaints (``complaints``) and
notification parsing; and the
process-wide gateway (``get_gateway`` / ``reset_gateway``).

Each call checks its arguments, runs one SDK call and returns a typed result
(``results``) or raises a typed error (``errors``). The SDK client is built lazily
(``keys.build_client``), so importing this module does not load the SDK. Amounts are
integer fen. Request bodies are never logged.
"""
from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping

from chalicelib import config
from chalicelib.domain.refunds import MAX_WECHAT_REASON_BYTES
from chalicelib.domain.trade_numbers import valid_out_trade_no
from chalicelib.log import get_logger, log_context

from . import bills, notifications
from .errors import OutcomeUnknown, Rejected, WechatError, error_from_response, translate_exception
from .keys import PlatformCertificates, build_client
from .results import NotificationEvent, PaymentResult, RefundResult, is_fen

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import WechatSettings

    from .complaints import ComplaintApi

log = get_logger(__package__)

ABNORMAL_REFUND_TYPES = ("USER_BANK_CARD", "MERCHANT_BANK_CARD")
# WeChat allows more characters, but the SDK signs the raw path while requests
# percent-encodes some of them, which breaks the query's signature.
_OUT_REFUND_NO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PATH_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def truncate_utf8(text: str, max_bytes: int = MAX_WECHAT_REASON_BYTES) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def _check_out_refund_no(out_refund_no: str) -> None:
    if not isinstance(out_refund_no, str) or not _OUT_REFUND_NO.match(out_refund_no):
        raise ValueError("out_refund_no must be 1-64 characters of [A-Za-z0-9_-]")


class WechatGateway:
    """The WeChat Pay calls for one merchant configuration.

    The SDK client is built on first use (thread-safe) and reused.
    """

    def __init__(self, settings: "WechatSettings"):
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()
        self.certificates = PlatformCertificates(settings)  # fetched when a notification names one

    def _sdk(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = build_client(self.settings)
                    except WechatError as err:
                        log.warning("wechat client init failed: %s", err.code)
                        raise
                    except Exception as exc:
                        err = translate_exception(exc, "init")
                        log.warning("wechat client init failed: %s", err.code)
                        raise err from exc
                client = self._client
        return client

    def _invoke(self, op: str, call: Callable[[Any], tuple[int, Any]], *, no_content: bool = False) -> dict:
        """Run one SDK call; return the verified JSON body of a 2xx or raise a typed error
        (``no_content``: the call answers 204 without a body, returned as ``{}``)."""
        client = self._sdk()
        try:
            status, text = call(client)
        except Exception as exc:
            err = translate_exception(exc, op)
            log.warning("wechat %s failed: %s %s", op, err.code, err.message)
            raise err from exc
        if not 200 <= status < 300:
            err = error_from_response(op, status, text)
            log.warning("wechat %s answered %s %s: %s", op, status, err.code, err.message)
            raise err
        if no_content and status == 204:
            return {}
        try:
            body = json.loads(text)
        except (TypeError, ValueError):
            body = None
        if not isinstance(body, dict):
            raise OutcomeUnknown("MALFORMED_RESPONSE", f"{op}: 2xx body is not a JSON object", status)
        return body

    def _refund_call(self, op: str, out_refund_no: str, call: Callable[[Any], tuple[int, Any]]) -> RefundResult:
        """Run one SDK call answering a Refund object, which must be about ``out_refund_no``."""
        body = self._invoke(op, call)
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
        if not (is_fen(amount) and is_fen(total)) or not 0 < amount <= total:
            raise ValueError("amount and total are integer fen with 0 < amount <= total")
        if transaction_id:
            out_trade_no = None
            if not _PATH_ID.match(transaction_id):
                raise ValueError("transaction_id must be 1-64 characters of [A-Za-z0-9_-]")
        elif not out_trade_no:
            raise ValueError("give out_trade_no or transaction_id")
        elif not valid_out_trade_no(out_trade_no):
            raise ValueError("out_trade_no must be 6-32 characters of [A-Za-z0-9_-|*]")
        reason = truncate_utf8(reason) if reason else None
        notify_url = self.settings.refund_notify_url  # explicit: the SDK would fall back to the payment URL
        with log_context(refund_no=out_refund_no, order_no=out_trade_no):
            return self._refund_call("create_refund", out_refund_no, lambda c: c.refund(
                out_refund_no=out_refund_no,
                amount={"refund": amount, "total": total, "currency": "CNY"},
                transaction_id=transaction_id,
                out_trade_no=out_trade_no,
                reason=reason,
                notify_url=notify_url,
            ))

    def query_refund(self, out_refund_no: str) -> RefundResult:
        """Current state of a refund; ``NotFound`` if WeChat never created it."""
        _check_out_refund_no(out_refund_no)
        with log_context(refund_no=out_refund_no):
            return self._refund_call("query_refund", out_refund_no,
                                     lambda c: c.query_refund(out_refund_no=out_refund_no))

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
            return self._refund_call("apply_abnormal_refund", out_refund_no, lambda c: c.abnormal_refund(
                refund_id=refund_id,
                out_refund_no=out_refund_no,
                type=type,
                bank_type=bank_type,
                bank_account=bank_account,
                real_name=real_name,
            ))

    # ---- payments --------------------------------------------------------
    def query_payment(self, out_trade_no: str) -> PaymentResult:
        """A payment's state at WeChat (``GET /v3/pay/transactions/out-trade-no/{no}``);
        ``NotFound`` (ORDER_NOT_EXIST) when WeChat has no such order."""
        if not valid_out_trade_no(out_trade_no):
            raise ValueError("out_trade_no must be 6-32 characters of [A-Za-z0-9_-|*]")
        # the SDK signs the path as given while requests sends "|" as %7C: give it the path as sent
        in_path = out_trade_no.replace("|", "%7C")
        with log_context(order_no=out_trade_no):
            body = self._invoke("query_payment", lambda c: c.query(out_trade_no=in_path))
            try:
                result = PaymentResult.from_wechat(body)
            except ValueError as exc:
                raise OutcomeUnknown("MALFORMED_RESPONSE", f"query_payment: {exc}", 200) from None
            if result.out_trade_no != out_trade_no:
                raise OutcomeUnknown("MALFORMED_RESPONSE", "query_payment: answer is about another order", 200)
            log.info("wechat payment queried", extra={"trade_state": result.trade_state})
            return result

    # ---- trade bill ------------------------------------------------------
    def download_trade_bill(self, bill_date: str, *, bill_type: str = "ALL") -> bills.TradeBill:
        """Fetch a day's trade bill (Beijing date ``YYYY-MM-DD``), verified.

        Asks for the bill (SDK ``trade_bill``, signed answer), downloads ``download_url``
        with a signed GET into a temporary file (streamed: the answer is not signed, the
        SHA1 proves it), and checks the SHA1 of the decompressed bill against
        ``hash_value`` before anything is returned: ``BillHashMismatch`` otherwise.
        ``BillNotReady`` / ``BillNotFound`` when WeChat has no bill (yet). Iterate the
        returned ``TradeBill`` for ``BillLine``s then the ``BillSummary``; it holds one
        line at a time. Close it (or use ``with``) when done.
        """
        bills.check_request(bill_date, bill_type)
        with log_context(bill_date=bill_date):
            for attempt in (1, 2):
                answer = self._invoke(
                    "trade_bill", lambda c: c.trade_bill(bill_date=bill_date, bill_type=bill_type, tar_type="GZIP")
                )
                try:
                    return bills.fetch_verified(self.settings, self._sdk(), answer, bill_date=bill_date,
                                                bill_type=bill_type)
                except Rejected as err:
                    # "download_url ... 5min内有效": an expired link answers INVALID_REQUEST; a new
                    # trade_bill call hands out a new one (shared/wechatpay-v3.md, the trade bill)
                    if err.code != "INVALID_REQUEST" or attempt == 2:
                        raise
                    log.warning("trade bill download link expired; asking for a new one")
        raise AssertionError("unreachable")  # pragma: no cover: the second attempt returns or raises

    # ---- consumer complaints (投诉2.0) --------------------------------------
    @property
    def complaints(self) -> "ComplaintApi":
        """The complaint API calls of this merchant (``complaints.ComplaintApi``)."""
        from .complaints import ComplaintApi

        return ComplaintApi(self)

    # ---- notifications ---------------------------------------------------
    def parse_notification(
        self,
        headers: Mapping[str, Any],
        body: bytes,
        *,
        now: float | None = None,
        max_skew_seconds: int = 300,
    ) -> NotificationEvent:
        """Verify, decrypt and validate a notification (refund or payment): ``notifications.parse``."""
        return notifications.parse(self.settings, self._sdk, headers, body, now=now,
                                   max_skew_seconds=max_skew_seconds, certificates=self.certificates)


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
