"""Payments WeChat reports: a notification, or the poller's query when no notification came.

Both end in ``apply_payment``. A payment for a pending order of exactly its amount pays it.
Every other payment moved real money too, so none is dropped: one for a cancelled order is
recorded on it (refundable by an operator) with a task; one that does not match (amount,
appid, mchid, an order we do not know, a second payment) becomes a task holding what WeChat
said. The record is written before WeChat is acknowledged, in one transaction with the
notification's receipt."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

from .. import metrics
from ..adapters import balances
from ..adapters import repository as repo
from ..adapters.models import Order
from ..config import settings
from ..domain.enums import OrderStatus, TaskType
from ..domain.tasks import Task
from ..domain.money import fen_to_yuan
from ..domain.trade_numbers import valid_out_trade_no, why_invalid
from . import edges
from ..log import get_logger, log_context
from ..domain import clock

log = get_logger(__name__)


def pay_check_due(created_at: str, attempts: int = 0) -> str:
    """When a pending order's payment is (next) asked about: ``payment_query_after_seconds``
    after it was created, then backing off from now. The shop's order writer sets the first."""
    after = settings().payment_query_after_seconds
    if attempts == 0:
        return clock.iso(datetime.fromisoformat(created_at.replace("Z", "+00:00")) + timedelta(seconds=after))
    return clock.iso(clock.now() + timedelta(seconds=max(after, 30) * 2 ** min(attempts - 1, 8)))


def _task(order_no: str, task_type: TaskType, key: str | None, action: str, detail: dict,
          user_id: str | None) -> Task:
    """A payment's task: about the order, one per payment (``key``: WeChat's transaction id)."""
    return Task(task_type, order_no, action, order_no=order_no, part=key, user_id=user_id, detail=detail)


def _paid_at(text: str | None) -> str:
    if text:
        try:
            return clock.iso(datetime.fromisoformat(text).astimezone(timezone.utc))
        except ValueError:
            pass
    return clock.iso(clock.now())


def apply_payment(payment, *, actor: str, receipt: repo.Receipt | None = None,
                  merchant_mismatches: tuple[str, ...] = ()) -> str:
    """Book what WeChat says was paid (``payment``: the gateway's PaymentResult, trade_state
    SUCCESS). Returns what happened: paid, paid_after_cancel, recorded (a task), noop."""
    out_trade_no = payment.out_trade_no
    with log_context(order_no=out_trade_no):
        order = repo.get_order(out_trade_no)
        total = payment.amount.total
        seen = {"out_trade_no": out_trade_no, "transaction_id": payment.transaction_id, "total": total,
                "total_yuan": fen_to_yuan(total), "appid": payment.appid, "mchid": payment.mchid,
                "success_time": payment.success_time, "actor": actor}
        key = payment.transaction_id or "unknown"
        if order is None:
            return _record(None, out_trade_no, TaskType.PAYMENT_MISMATCH, key, seen, receipt,
                           f"微信收到订单号 {out_trade_no} 的付款 {fen_to_yuan(total)} 元，但本系统没有该订单：请核对并退款")
        if merchant_mismatches:
            return _record(order, out_trade_no, TaskType.PAYMENT_MISMATCH, key, seen, receipt,
                           f"支付通知的 {'/'.join(merchant_mismatches)} 与本商户不符：请核对该笔付款")
        if total != order.actual_amount:
            return _record(order, out_trade_no, TaskType.PAYMENT_MISMATCH, key, seen, receipt,
                           f"付款金额 {fen_to_yuan(total)} 元与订单实付 {fen_to_yuan(order.actual_amount)} 元不符："
                           "订单未标记为已支付，请核对并处理")
        transaction = order.payment.transaction_id if order.payment else None
        if transaction and transaction == payment.transaction_id:
            return "noop"  # this payment is booked already
        now = clock.iso(clock.now())
        status = OrderStatus(order.status)
        if status == OrderStatus.PENDING:
            move = balances.mark_paid(order.order_no, total=total, transaction_id=payment.transaction_id,
                                      paid_at=_paid_at(payment.success_time), now=now)
            return _commit([move], receipt, "paid", lambda: apply_payment(payment, actor=actor, receipt=receipt))
        if status == OrderStatus.CANCELLED and not order.paid_after_cancel:
            move = balances.mark_paid_after_cancel(order.order_no, total=total, transaction_id=payment.transaction_id,
                                                   paid_at=_paid_at(payment.success_time), now=now)
            task = _task(order.order_no, TaskType.PAID_AFTER_CANCEL, None,
                         f"订单已取消后收到付款 {fen_to_yuan(total)} 元：请在订单详情中全额退款给用户", seen, order.user_id)
            metrics.count(metrics.PAYMENT_ANOMALIES)
            log.error("payment arrived for a cancelled order; recorded for a refund", extra={"amount": total})
            return _commit([move, repo.open_task(task, now=now, by=actor)], receipt, "paid_after_cancel",
                           lambda: apply_payment(payment, actor=actor, receipt=receipt))
        return _record(order, out_trade_no, TaskType.PAYMENT_MISMATCH, key, seen, receipt,
                       f"订单状态为{status.label}，又收到一笔付款 {fen_to_yuan(total)} 元（微信支付单号 "
                       f"{payment.transaction_id}）：请核对是否重复支付并退款")


def _commit(items: list, receipt: repo.Receipt | None, result: str, again: Callable[[], str]) -> str:
    if receipt is not None:
        items.append(repo.notify_receipt(receipt))
    try:
        repo.write(items)
    except repo.WriteConflict as c:
        if c.failed("receipt"):
            return "noop"  # delivered before
        if c.failed(balances.LABEL):
            return again()  # the order changed under us (paid or cancelled meanwhile): decide again
        raise
    log.info("payment booked", extra={"result": result})
    return result


def _record(order, order_no: str, task_type: TaskType, key: str, seen: dict, receipt, action: str) -> str:
    """A payment that cannot be applied: keep what WeChat said in a task (once per payment)."""
    metrics.count(metrics.PAYMENT_ANOMALIES)
    log.error("payment cannot be applied; recorded for a person", extra={"task_type": task_type.value})
    task = _task(order_no, task_type, key, action, seen, order.user_id if order is not None else None)
    items = [repo.open_task(task, now=clock.iso(clock.now()), by=seen["actor"])]
    if receipt is not None:
        items.append(repo.notify_receipt(receipt))
    try:
        repo.write(items)
    except repo.WriteConflict:
        return "noop"  # this delivery is recorded already
    return "recorded"


# ---------------------------------------------------------------- asking WeChat


@dataclass
class PaymentPollReport:
    due: int = 0
    paid: int = 0
    unpaid: int = 0
    errors: int = 0
    expired: int = 0
    deferred: int = 0
    mismatched: int = 0  # paid at WeChat, but not as the order says: a task, and asked again later
    invalid: int = 0  # pending orders whose out_trade_no WeChat never takes: not asked, not asked again
    results: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def poll_payments(limit: int | None = None, *, time_left: Callable[[], float] | None = None,
                  reserve_seconds: float = 0) -> PaymentPollReport:
    """Ask WeChat about pending orders whose payment notification has not come: SUCCESS is
    booked like the notification; NOTPAY/CLOSED leave the order alone and ask again later, until
    ``payment_check_hours`` after it was created. Cost: O(pending orders), through the sparse
    ``awaiting_payment`` index."""
    from ..adapters.wechat.errors import NotFound
    from ..adapters.wechat.gateway import get_gateway

    report = PaymentPollReport()
    due = repo.due_payment_checks(clock.iso(clock.now()), limit or settings().poll_batch)
    report.due = len(due)
    for i, order_no in enumerate(due):
        if time_left is not None and time_left() < reserve_seconds:
            report.deferred = len(due) - i
            break
        with log_context(order_no=order_no):
            try:
                order = repo.get_order(order_no)
                cancelled = order is not None and order.status == OrderStatus.CANCELLED.value
                if order is None or (order.status != OrderStatus.PENDING.value and not cancelled):
                    repo.end_pay_check(order_no)
                    continue
                if not valid_out_trade_no(order.payment.out_trade_no):  # WeChat cannot have taken it
                    log.error("pending order's out_trade_no is not one WeChat takes; not asked",
                              extra={"reason": why_invalid(order.payment.out_trade_no)})
                    report.invalid += 1
                    report.results[order_no] = "invalid_out_trade_no"
                    repo.end_pay_check(order_no)
                    continue
                try:
                    result = edges.gateway().query_payment(order.payment.out_trade_no)
                except NotFound:
                    result = None  # WeChat has no such order yet: the player has not paid
                if result is not None and result.paid:
                    outcome = apply_payment(result, actor="poller")
                    report.results[order_no] = outcome
                    if outcome in ("paid", "paid_after_cancel", "noop"):
                        report.paid += 1
                        repo.end_pay_check(order_no)
                        continue
                    report.mismatched += 1  # recorded for a person (one task); asked again later, backing off
                else:
                    report.unpaid += 1
                if cancelled:  # a cancelled order is asked about once: its payment is booked or recorded
                    repo.end_pay_check(order_no)
                    continue
                _ask_later(order, report)
            except Exception:  # noqa: BLE001 - one order must not stop the others
                report.errors += 1
                log.exception("payment check failed")
                try:
                    order = repo.get_order(order_no)
                    if order is not None:
                        _ask_later(order, report)
                except Exception:  # noqa: BLE001 - the next run tries again
                    log.exception("could not reschedule a payment check")
    if report.due:
        log.info("payment check finished", extra=report.to_dict())
    return report


def _ask_later(order: Order, report: PaymentPollReport) -> None:
    created = datetime.fromisoformat(order.created_at.replace("Z", "+00:00"))
    if clock.now() - created > timedelta(hours=settings().payment_check_hours):
        repo.end_pay_check(order.order_no)  # past WeChat's notification retries: stop asking
        report.expired += 1
        return
    attempts = (order.pay_check_attempts or 0) + 1
    repo.schedule_pay_check(order.order_no, due_at=pay_check_due(order.created_at, attempts), attempts=attempts)
