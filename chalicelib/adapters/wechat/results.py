"""What WeChat Pay answers, typed and validated: refunds, payments and notification events
(amounts in integer fen), and the vocabularies they are checked against."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from chalicelib.domain.trade_numbers import valid_out_trade_no

from .errors import InvalidNotification

# A Refund object's status (wechatpay-v3.md, create refund): "`PROCESSING` (in flight), `SUCCESS`
# (refunded), `CLOSED` (failed; a new attempt needs a new out_refund_no), `ABNORMAL` (bank card
# cancelled/frozen; not final: fix through the abnormal-refund API)".
REFUND_STATUSES = ("PROCESSING", "SUCCESS", "CLOSED", "ABNORMAL")
# "refund events: `REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`" (wechatpay-v3.md,
# notifications): one per status a refund can reach, none for PROCESSING; a notification's
# refund_status is the event type's suffix (checked when a notification is parsed).
REFUND_EVENT_TYPES = tuple(f"REFUND.{status}" for status in REFUND_STATUSES if status != "PROCESSING")
TRADE_STATES = ("SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR")
# WeChat's user_received_account when a refund went back to the merchant ("退还商户"):
# 商户基本账户 / 商户结算银行账户 (e.g. an abnormal refund re-routed to MERCHANT_BANK_CARD).
MERCHANT_ACCOUNT_PREFIX = "商户"


def is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        if not (is_fen(refund) and is_fen(total)):
            raise ValueError("amount.refund/amount.total must be integers")
        optional = {}
        for name in ("payer_total", "payer_refund", "settlement_refund", "discount_refund"):
            value = amount.get(name)
            if value is not None and not is_fen(value):
                raise ValueError(f"amount.{name} must be an integer")
            optional[name] = value
        # payer_refund is the part of refund that reaches the payer (a coupon's share is the rest)
        if optional["payer_refund"] is not None and not 0 <= optional["payer_refund"] <= refund:
            raise ValueError("amount.payer_refund must be between 0 and amount.refund")
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
        if data.get("out_trade_no") is not None and not valid_out_trade_no(data["out_trade_no"]):
            raise ValueError("out_trade_no is not a merchant order number WeChat takes (6-32 of [A-Za-z0-9_-|*])")
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
        if not valid_out_trade_no(out_trade_no):
            raise ValueError("out_trade_no missing or not a merchant order number WeChat takes (6-32 of "
                             "[A-Za-z0-9_-|*])")
        if state not in TRADE_STATES:
            raise ValueError(f"unknown trade_state {state!r}")
        amount = data.get("amount")
        if not isinstance(amount, Mapping) or not is_fen(amount.get("total")):
            raise ValueError("amount.total must be an integer")
        payer_total = amount.get("payer_total")
        if payer_total is not None and not is_fen(payer_total):
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
