"""Refunds WeChat made without us: booked against their order so the money is never refunded twice.

Money leaves through other doors than this service: a person refunds on the merchant platform
(one by one, or a 批量退款 file), and WeChat refunds a player itself when a complaint passes its
deadline. Such a refund reaches us only as a notification, a query answer or a bill line for an
``out_refund_no`` we never made (shared/wechatpay-v3.md, "money WeChat moves by itself"). Whoever
hears of it first books it here, keyed by WeChat's own refund number, so the notification, the
bill and the query book it once:

- a refund record of origin 外部退款 holds the amount of the order's refundable balance like one
  of ours, then follows WeChat's status through ``transitions.apply_outcome`` (a success settles
  it, the order becomes 已退款 when everything paid has come back, restoration is queued);
- a task 微信侧退款待确认 asks a person to confirm it;
- when it is more than the order can still refund (our own refunds in flight or done already
  cover the rest), nothing is booked against the balance: the order is put on hold (no refund
  of ours can go out) and a task 微信侧退款超出可退余额 says why.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import metrics
from ..adapters import balances
from ..adapters import repository as repo
from ..adapters.models import Refund
from ..domain import clock
from ..domain import tasks as task_rules
from ..domain.enums import RefundOrigin, RefundStatus, TaskType
from ..domain.money import fen_to_yuan
from ..log import get_logger, log_context
from . import transitions
from .outcomes import outcome_from_result

log = get_logger(__name__)


@dataclass(frozen=True)
class Booking:
    """What became of a refund WeChat made without us: ``refund`` as stored (None when it was
    not booked), ``held`` when it was more than its order could still refund (the order is on
    hold, with its task), neither when WeChat names an order we do not have."""

    refund: Refund | None = None
    held: bool = False

    @property
    def task_id(self) -> str | None:
        if self.refund is not None and self.refund.origin == RefundOrigin.EXTERNAL.value:
            return task_rules.task_id(TaskType.EXTERNAL_REFUND, self.refund.refund_no)
        return None


def book_external_refund(result, *, actor: str, complaint_id: str | None = None) -> Booking:
    """Book ``result`` (the gateway's RefundResult of a refund we did not make). Idempotent:
    a refund booked before follows WeChat's status; one of ours is returned as it is."""
    from ..domain.trade_numbers import valid_out_trade_no

    with log_context(refund_no=result.out_refund_no, order_no=result.out_trade_no):
        existing = repo.get_refund(result.out_refund_no)
        if existing is None:
            order = repo.get_order(result.out_trade_no) if valid_out_trade_no(result.out_trade_no) else None
            if order is None:
                return Booking()
            booking = _book(order, result, actor=actor, complaint_id=complaint_id)
            if booking.refund is None:
                return booking
            existing = booking.refund
        if existing.origin == RefundOrigin.EXTERNAL.value:
            transitions.apply_outcome(existing, outcome_from_result(result, f"微信侧退款：{result.status}"),
                                      actor=actor)
        return Booking(existing)


def _book(order, result, *, actor: str, complaint_id: str | None) -> Booking:
    amount = result.amount_refund
    now = clock.iso(clock.now())
    seen = {"out_refund_no": result.out_refund_no, "refund_id": result.refund_id, "status": result.status,
            "refund": amount, "refund_yuan": fen_to_yuan(amount), "accepted_at": result.create_time,
            "success_time": result.success_time, "heard_by": actor, "complaint_id": complaint_id}
    if amount > order.refundable_amount:
        reason = (f"微信侧退款 {result.out_refund_no} 为 {fen_to_yuan(amount)} 元，超过订单可退余额 "
                  f"{fen_to_yuan(max(order.refundable_amount, 0))} 元")
        task = task_rules.Task(TaskType.EXTERNAL_REFUND_EXCESS, result.out_refund_no, order_no=order.order_no,
                               refund_no=result.out_refund_no, user_id=order.user_id, detail=seen,
                               action=reason + "：已暂停该订单的退款，请核对资金去向（勿再退款）")
        repo.write([balances.hold(order.order_no, reason, now), repo.open_task(task, now=now, by=actor)])
        log.error("external refund exceeds what the order can refund; order on hold", extra={"amount": amount})
        return Booking(held=True)
    put = repo.new_refund(result.out_refund_no, dict(
        order_no=order.order_no, user_id=order.user_id, channel="wechat", origin=RefundOrigin.EXTERNAL.value,
        amount=amount, requested_amount=amount, reason=None, status=RefundStatus.PROCESSING.value,
        created_by=actor, out_trade_no=order.payment.out_trade_no if order.payment else order.order_no,
        transaction_id=result.transaction_id or (order.payment.transaction_id if order.payment else None),
        order_total=order.actual_amount, wechat_refund_id=result.refund_id, accepted_at=result.create_time,
        complaint_id=complaint_id, poll_attempts=0, created_at=now, updated_at=now,
        events=[repo.refund_event(at=now, actor=actor, from_status=None, to_status=RefundStatus.PROCESSING.value,
                                  detail="微信侧退款（非本系统发起），已记入订单")],
        **transitions.work_for(RefundStatus.PROCESSING, clock.now())))
    task = task_rules.Task(TaskType.EXTERNAL_REFUND, result.out_refund_no, order_no=order.order_no,
                           refund_no=result.out_refund_no, user_id=order.user_id, detail=seen,
                           action=(f"微信侧退款 {fen_to_yuan(amount)} 元（商户平台人工退款，或投诉超时由微信退款），"
                                   "本系统未发起：已记入订单并按退款恢复权益，请确认"))
    try:
        repo.write([put, balances.reserve_external(order.order_no, amount), repo.open_task(task, now=now, by=actor),
                    transitions.created_event(put.model)])
    except repo.WriteConflict as conflict:
        if conflict.failed("refund"):  # booked meanwhile by another source
            return Booking(repo.get_refund(result.out_refund_no))
        if conflict.failed(balances.LABEL):  # the balance moved meanwhile: decide again
            fresh = repo.get_order(order.order_no)
            return _book(fresh, result, actor=actor, complaint_id=complaint_id) if fresh is not None else Booking()
        raise
    metrics.count(metrics.EXTERNAL_REFUNDS)
    log.warning("external refund booked against its order", extra={"amount": amount, "actor": actor})
    return Booking(put.model)
