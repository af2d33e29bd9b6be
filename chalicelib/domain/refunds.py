"""Refund rules: the state machine, what a transition does to the order's balances,
what may be refunded, what needs approval, and what a refund puts back.

Plain Python. The repository turns a ``Transition`` into one conditional write
(or one transaction when balances move); callers never set a status directly.

Order balances (all fen) keep one invariant, checked by tests after every race:

    refunded_amount + reserved_amount + refundable_amount == actual_amount

``requested_amount`` is what open (pending_review) refunds ask for and
``applicable_amount = refundable_amount - requested_amount`` is what a new
player application may still ask for. DynamoDB conditions cannot do arithmetic,
so both are stored and moved together.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Sequence

from .enums import InventoryStatus, OrderStatus, RefundStatus, ShippingStatus, SourceType, TaskType
from .errors import Conflict, ErrorCode, invalid, conflict
from .money import fen_to_yuan, pro_rata_step
from . import clock, text, trade_numbers

S = RefundStatus

MAX_REFUNDS_PER_ORDER = 50  # WeChat's limit, enforced here too
REFUND_WINDOW = timedelta(days=365)
MAX_REASON_CHARS = 200
MAX_WECHAT_REASON_BYTES = 80  # WeChat's limit on a refund's reason (UTF-8), which the player sees
REFUND_NO_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# The one table of allowed moves. Same-status "moves" are no-ops handled by callers.
TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    S.PENDING_REVIEW: frozenset({S.SUBMITTED, S.REJECTED}),
    S.SUBMITTED: frozenset({S.PROCESSING, S.SUCCESS, S.CLOSED, S.ABNORMAL, S.FAILED, S.OFFLINE_PENDING}),
    S.PROCESSING: frozenset({S.SUCCESS, S.CLOSED, S.ABNORMAL, S.OFFLINE_PENDING}),
    S.ABNORMAL: frozenset({S.PROCESSING, S.SUCCESS, S.CLOSED, S.OFFLINE_PENDING}),
    # to be paid outside WeChat: an operator records the payout (success) or, when WeChat
    # moved no money, cancels it (closed, the amount is refundable again)
    S.OFFLINE_PENDING: frozenset({S.SUCCESS, S.CLOSED}),
    S.SUCCESS: frozenset(),
    S.CLOSED: frozenset(),
    S.FAILED: frozenset(),
    S.REJECTED: frozenset(),
}
FINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# statuses whose amount is held in the order's ``reserved_amount``
RESERVED = frozenset({S.SUBMITTED, S.PROCESSING, S.ABNORMAL, S.OFFLINE_PENDING})
# statuses whose outcome is WeChat's to give: the poller queries them
AWAITING_WECHAT = frozenset({S.SUBMITTED, S.PROCESSING, S.ABNORMAL})



@dataclass(frozen=True)
class RefundTotals:
    """What an order's refunds add up to, by what they hold of its balance."""

    refunded: int  # succeeded
    reserved: int  # in flight
    requested: int  # asked by open reviews

    @classmethod
    def of(cls, refunds) -> "RefundTotals":
        refunded = reserved = requested = 0
        for r in refunds:
            status = RefundStatus(r.status)
            if status == S.SUCCESS:
                refunded += r.amount
            elif status in RESERVED:
                reserved += r.amount
            elif status == S.PENDING_REVIEW:
                requested += r.requested_amount
        return cls(refunded, reserved, requested)

    def agree_with(self, order) -> bool:
        """True when the order's balances are exactly what its refunds say."""
        return (order.refunded_amount, order.reserved_amount, order.requested_amount) == \
            (self.refunded, self.reserved, self.requested)


MAX_EVENTS_ON_REFUND = 30  # keeps the item (and every write of it) small; all events are also logged


def capped_events(known: list, event) -> tuple[list, int]:
    """A refund's history once ``event`` is appended, and how many earlier events it leaves
    out: past MAX_EVENTS_ON_REFUND, the first event (who asked) and the latest are kept."""
    events = list(known) + [event]
    if len(events) <= MAX_EVENTS_ON_REFUND:
        return events, 0
    kept = [events[0]] + events[len(events) - (MAX_EVENTS_ON_REFUND - 1):]
    return kept, len(events) - len(kept)


MAX_POLL_BACKOFF_SECONDS = 3600
MAX_ABNORMAL_BACKOFF_SECONDS = 6 * 3600


def poll_delay(status: RefundStatus, attempts: int, *, poll_after: int, abnormal_every: int) -> int:
    """Seconds until a refund awaiting WeChat is queried again: the one backoff formula.

    Doubles with every check that found it unchanged (or could not ask), from the first
    check's delay up to a cap; an abnormal refund (waiting for a person) starts slower."""
    if status == S.ABNORMAL:
        base, cap = abnormal_every, MAX_ABNORMAL_BACKOFF_SECONDS
    else:
        base, cap = poll_after, MAX_POLL_BACKOFF_SECONDS
    return min(base * 2 ** min(max(attempts, 0), 10), max(cap, base))


class Balance(Enum):
    """What a transition does to the order's balance attributes."""

    NONE = "none"
    RESERVE = "reserve"  # pending_review -> submitted: requested -> reserved
    WITHDRAW = "withdraw"  # pending_review -> rejected: requested released
    RELEASE = "release"  # in flight -> closed/failed: reserved -> refundable again
    SETTLE = "settle"  # in flight -> success: reserved -> refunded


def can_transition(src: RefundStatus, dst: RefundStatus) -> bool:
    return dst in TRANSITIONS[src]


def balance_effect(src: RefundStatus, dst: RefundStatus) -> Balance:
    if src == S.PENDING_REVIEW:
        return Balance.RESERVE if dst == S.SUBMITTED else Balance.WITHDRAW
    if dst == S.SUCCESS:
        return Balance.SETTLE
    if dst in (S.CLOSED, S.FAILED):
        return Balance.RELEASE
    return Balance.NONE


def release_uncounts(src: RefundStatus, dst: RefundStatus) -> bool:
    """A released refund that WeChat refused outright (failed, or an offline refund cancelled
    after WeChat said the account cannot receive) never counted towards WeChat's 50 per order."""
    return dst == S.FAILED or (src == S.OFFLINE_PENDING and dst == S.CLOSED)


WECHAT_STATUS = {
    "PROCESSING": S.PROCESSING,
    "SUCCESS": S.SUCCESS,
    "CLOSED": S.CLOSED,
    "ABNORMAL": S.ABNORMAL,
}
NOTIFY_EVENTS = {
    "REFUND.SUCCESS": S.SUCCESS,
    "REFUND.CLOSED": S.CLOSED,
    "REFUND.ABNORMAL": S.ABNORMAL,
}


@dataclass(frozen=True)
class Outcome:
    """Something learned about a refund, from any source, in one shape."""

    status: RefundStatus
    wechat_refund_id: str | None = None
    user_received_account: str | None = None
    success_time: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    amount: int | None = None  # what WeChat says was refunded; cross-checked
    raw: dict | None = None
    detail: str | None = None
    offline_reason: str | None = None  # why it must be paid outside WeChat (OfflineReason)
    accepted_at: str | None = None  # when WeChat accepted the refund (its create_time): the day it is billed on
    payer_refund: int | None = None  # the payer's cash share of ``amount`` (a coupon's is the rest), when told

    RECORDED = ("wechat_refund_id", "user_received_account", "success_time", "failure_code", "failure_message",
                "raw", "offline_reason", "accepted_at", "payer_refund")

    def fields(self) -> dict:
        """What this outcome records on the refund (only what it knows)."""
        return {name: getattr(self, name) for name in self.RECORDED if getattr(self, name) is not None}


def state_refusal(status: RefundStatus | str, action: str) -> Conflict:
    """409 INVALID_REFUND_STATE: a refund in ``status`` does not allow ``action`` (审批, 拒绝, 撤回)."""
    status = RefundStatus(status)
    return conflict(ErrorCode.INVALID_REFUND_STATE, f"退款单当前状态为{status.label}，不能{action}",
                    status=status.value)


# ---------------------------------------------------------------- validation


def parse_amount(raw: object, field_name: str = "amount") -> int:
    """A positive integer number of fen. Floats, strings, booleans are refused."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise invalid(field_name, "必须是正整数，单位为分")
    if raw <= 0:
        raise invalid(field_name, "必须大于 0")
    if raw > 10**12:
        raise invalid(field_name, "过大")
    return raw


def parse_reason(raw: object, *, required: bool, field_name: str = "reason",
                 sent_to_wechat: bool | None = None) -> str:
    """Free text from a person, by the rules of ``domain/text.py``: invalid Unicode and control
    characters refused, NFC, trimmed, blank (only whitespace or invisible characters) counts as
    missing, at most MAX_REASON_CHARS characters.

    A refund reason is sent to WeChat, which takes at most MAX_WECHAT_REASON_BYTES bytes and shows
    it to the player; it is limited in that unit here, so what is stored is exactly what WeChat
    receives. ``sent_to_wechat`` defaults to True for ``reason`` and False for anything else; a
    reject reason or a task note stays with us and may be longer."""
    if sent_to_wechat is None:
        sent_to_wechat = field_name == "reason"
    return text.clean_text(
        raw, field=field_name, required=required, max_chars=MAX_REASON_CHARS,
        max_bytes=MAX_WECHAT_REASON_BYTES if sent_to_wechat else None,
        bytes_hint=(f"最多 {MAX_WECHAT_REASON_BYTES} 字节（约 {MAX_WECHAT_REASON_BYTES // 3} 个汉字），"
                    "这是微信接受的上限"))


def validate_refund_no(raw: str) -> str:
    if not isinstance(raw, str) or not REFUND_NO_RE.fullmatch(raw):
        raise invalid("refund_no", "只能包含字母、数字、“_”和“-”，最多 64 个字符")
    return raw


# ---------------------------------------------------------------- order rules


@dataclass(frozen=True)
class RefundActions:
    can_refund: bool
    requires_approval: bool
    approval_reasons: tuple[str, ...]
    max_refundable: int
    why_not: dict | None

    def to_dict(self) -> dict:
        return {
            "can_refund": self.can_refund,
            "requires_approval": self.requires_approval,
            "approval_reasons": list(self.approval_reasons),
            "max_refundable": self.max_refundable,
            "max_refundable_yuan": fen_to_yuan(self.max_refundable),
            "button_label": "申请退款" if self.requires_approval else "退款",
            "why_not": self.why_not,
        }


def approval_reasons(order) -> tuple[str, ...]:
    """Why a refund of this order needs a second decision (seed: signed / fulfilled)."""
    reasons = []
    shipping = getattr(order, "shipping", None)
    if shipping is not None and shipping.status == ShippingStatus.SIGNED:
        reasons.append("货已签收，需人工审批")
    virtual = getattr(order, "virtual", None)
    if virtual is not None and virtual.is_consumed and not virtual.revoked:
        reasons.append("虚拟商品已履约，需人工审批")
    return tuple(reasons)


def check_payout_time(paid_at: str | None, created_at: str) -> None:
    """An offline payout is paid after its refund was made (400 otherwise: a typo, or 1970)."""
    if paid_at is not None and clock.parse(paid_at) < clock.parse(created_at):
        raise invalid("paid_at", f"不能早于退款单创建时间（{created_at}）")


def past_refund_window(order, now: datetime) -> bool:
    """WeChat no longer refunds an order paid more than a year ago (refund API notes)."""
    paid_at = clock.parse(order.payment.paid_at if order.payment else None)
    return paid_at is not None and now - paid_at > REFUND_WINDOW


def refund_blocker(order, now: datetime) -> Conflict | None:
    """Why no refund at all can be made on this order right now (None if one can)."""
    status = OrderStatus(order.status)
    if status != OrderStatus.PAID and not (status == OrderStatus.CANCELLED and getattr(order, "paid_after_cancel", None)):
        return conflict("ORDER_NOT_REFUNDABLE", f"订单状态为{status.label}，不可退款",
                        order_status=status.value)
    if getattr(order, "refund_hold", None):
        return conflict("ORDER_NOT_REFUNDABLE", f"订单已暂停退款：{order.refund_hold}")
    if order.refund_count >= MAX_REFUNDS_PER_ORDER:
        return conflict("REFUND_LIMIT_REACHED", f"每笔订单最多退款{MAX_REFUNDS_PER_ORDER}次")
    if clock.parse(order.payment.paid_at if order.payment else None) is None:
        return conflict("ORDER_NOT_REFUNDABLE", "订单没有支付记录，不可退款")
    if not trade_numbers.valid_out_trade_no(order.payment.out_trade_no):  # never sent to WeChat
        number = order.payment.out_trade_no
        return conflict("ORDER_NOT_REFUNDABLE", f"{trade_numbers.why_invalid(number)}，不能通过微信退款",
                        out_trade_no=number)
    if past_refund_window(order, now):
        return conflict("REFUND_WINDOW_EXPIRED", "已超过支付后365天的退款期限")
    if order.refundable_amount <= 0:
        return conflict("AMOUNT_EXCEEDS_REFUNDABLE", "订单已无可退余额",
                        max_refundable=0)
    return None


def refund_actions(order, now: datetime) -> RefundActions:
    blocker = refund_blocker(order, now)
    reasons = approval_reasons(order)
    return RefundActions(
        can_refund=blocker is None,
        requires_approval=bool(reasons),
        approval_reasons=reasons,
        max_refundable=max(0, order.refundable_amount) if blocker is None else 0,
        why_not=blocker.to_dict() if blocker else None,
    )


def check_refundable(order, amount: int, now: datetime, *, against: str = "refundable") -> None:
    """Raise the precise 409 for ``amount`` on ``order``; the transaction re-checks atomically."""
    blocker = refund_blocker(order, now)
    if blocker is not None:
        raise blocker
    limit = order.refundable_amount if against == "refundable" else order.applicable_amount
    if amount > limit:
        raise conflict(
            "AMOUNT_EXCEEDS_REFUNDABLE",
            f"退款金额 {fen_to_yuan(amount)} 元超过可退余额 {fen_to_yuan(max(limit, 0))} 元",
            max_refundable=max(limit, 0),
        )


# ---------------------------------------------------------------- restoration


@dataclass(frozen=True)
class ManualTaskSpec:
    """A task restoration leaves for a person (``domain/tasks.py``), one per ``subject`` of the
    refund: a lottery prize's inventory id, "shipment" or "virtual"."""

    type: TaskType
    subject: str
    action: str  # what a person should do


@dataclass(frozen=True)
class RestorationPlan:
    """What a successful refund puts back; computed identically for preview and execution."""

    amount: int
    cumulative_after: int
    fully_refunded: bool
    points: int
    restore_coupon: bool
    coupon_id: str | None
    revoke_inventory: tuple[str, ...]
    revoke_virtual: bool
    cancel_shipment: bool
    mark_shipping_exception: bool
    manual_tasks: tuple[ManualTaskSpec, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {
            "amount": self.amount,
            "amount_yuan": fen_to_yuan(self.amount),
            "fully_refunded": self.fully_refunded,
            "points": self.points,
            "coupon": {"coupon_id": self.coupon_id, "restore": self.restore_coupon} if self.coupon_id else None,
            "revoke_inventory": list(self.revoke_inventory),
            "revoke_virtual": self.revoke_virtual,
            "cancel_shipment": self.cancel_shipment,
            "mark_shipping_exception": self.mark_shipping_exception,
            "manual_tasks": [
                {"type": t.type.value, "type_label": t.type.label, "subject": t.subject, "action": t.action}
                for t in self.manual_tasks
            ],
            "notes": list(self.notes),
        }


def coupon_restores(order, fully_refunded: bool) -> bool:
    """Coupon policy, in one place: a used coupon comes back only with a full refund."""
    return bool(getattr(order, "coupon_id", None)) and fully_refunded


def restoration_plan(order, amount: int, cumulative_before: int, inventory: Sequence = ()) -> RestorationPlan:
    """What a refund of ``amount`` puts back once it succeeds.

    ``cumulative_before`` is what had succeeded before it (for a preview: refunded
    plus in-flight amounts, as if they all succeed). Goods are undone only when the
    order ends fully refunded; a partial refund gives back points pro rata and
    leaves goods alone.
    """
    actual = order.actual_amount
    cumulative_after = min(actual, cumulative_before + amount)
    if getattr(order, "paid_after_cancel", None):
        # the order was cancelled (and unwound) before its payment arrived: only money goes back
        return RestorationPlan(amount=amount, cumulative_after=cumulative_after, fully_refunded=cumulative_after >= actual,
                               points=0, restore_coupon=False, coupon_id=None, revoke_inventory=(), revoke_virtual=False,
                               cancel_shipment=False, mark_shipping_exception=False,
                               notes=("订单已取消后收到付款：仅退还该笔付款，无需还原积分、优惠券与商品",))
    full = cumulative_after >= actual
    points = pro_rata_step(order.points_used or 0, cumulative_before, amount, actual)
    tasks: list[ManualTaskSpec] = []
    notes: list[str] = []
    revoke_inventory: list[str] = []
    revoke_virtual = cancel_shipment = shipping_exception = False

    if full:
        if order.source_type == SourceType.LOTTERY:
            for item in inventory:
                if item.status == InventoryStatus.HELD and item.revocable:
                    revoke_inventory.append(item.item_id)
                elif item.status != InventoryStatus.REVOKED:
                    why = "已消耗" if item.status == InventoryStatus.CONSUMED else "不可撤销"
                    tasks.append(ManualTaskSpec(TaskType.INVENTORY_NOT_REVOCABLE, item.item_id,
                                                f"抽奖资产 {item.name or item.item_id} {why}，请人工处理"))
        virtual = getattr(order, "virtual", None)
        if virtual is not None and virtual.is_consumed and not virtual.revoked:
            if virtual.revocable:
                revoke_virtual = True
            else:
                tasks.append(ManualTaskSpec(TaskType.VIRTUAL_NOT_REVOCABLE, "virtual",
                                            "虚拟商品已履约且不可撤销，请人工处理"))
        shipping = getattr(order, "shipping", None)
        if shipping is not None and not shipping.cancelled:
            if shipping.status in (ShippingStatus.SHIPPED, ShippingStatus.SIGNED):
                shipping_exception = True
                tasks.append(ManualTaskSpec(TaskType.RETURN_TO_WAREHOUSE, "shipment",
                                            f"货物{ShippingStatus(shipping.status).label}，请联系用户退货入库"))
            elif shipping.status == ShippingStatus.PENDING:
                cancel_shipment = True
    else:
        notes.append("部分退款：按比例退还积分，商品、资产与优惠券保持不变")

    return RestorationPlan(
        amount=amount,
        cumulative_after=cumulative_after,
        fully_refunded=full,
        points=points,
        restore_coupon=coupon_restores(order, full),
        coupon_id=getattr(order, "coupon_id", None) or None,
        revoke_inventory=tuple(revoke_inventory),
        revoke_virtual=revoke_virtual,
        cancel_shipment=cancel_shipment,
        mark_shipping_exception=shipping_exception,
        manual_tasks=tuple(tasks),
        notes=tuple(notes),
    )
