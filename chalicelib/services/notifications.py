"""Verified WeChat notifications, turned into outcomes. Deduplicated by notification id
in the same transaction as the change they cause, so a redelivery changes nothing."""
from __future__ import annotations

from datetime import timedelta

from ..adapters import repository as repo
from ..config import settings
from ..domain import labels
from ..domain import refunds as refund_rules
from ..domain.enums import TaskType
from ..domain.tasks import Task
from ..domain.errors import OutcomeMismatch
from ..domain.money import fen_to_yuan
from ..log import get_logger, log_context
from . import external, payments, transitions
from ..domain import clock
from .outcomes import outcome_from_result

log = get_logger(__name__)


class NotificationRefused(Exception):
    """Verified but not applicable (unknown refund, mismatch): answered non-2xx so WeChat retries."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _receipt(event, subject: str) -> repo.Receipt:
    now = clock.now()
    ttl = settings().notify_dedupe_ttl_days
    return repo.Receipt(event.id, event.event_type, subject, clock.iso(now),
                        int((now + timedelta(days=ttl)).timestamp()))


def handle_refund_event(event) -> str:
    """REFUND.SUCCESS / CLOSED / ABNORMAL -> the refund's outcome. Returns what happened.

    ``event`` comes from the gateway's one notification parser: its refund payload is validated
    (and its refund_status matches its event type) before it gets here."""
    result = event.refund_result()
    refund_no = result.out_refund_no
    with log_context(refund_no=refund_no, order_no=result.out_trade_no, notify_id=event.id):
        if event.event_type not in refund_rules.NOTIFY_EVENTS:
            raise NotificationRefused(f"not a refund result event: {event.event_type}")
        if result.out_trade_no:
            order, refund = repo.get_order_and_refund(result.out_trade_no, refund_no)
        else:
            order, refund = None, repo.get_refund(refund_no)
        if refund is None:
            from . import complaint_sync  # a refund WeChat made for an overdue complaint names it

            complaint_id = complaint_sync.complaint_of_refund(result)
            booking = external.book_external_refund(result, actor="wechat", complaint_id=complaint_id)
            if complaint_id and booking.refund is not None and booking.refund.complaint_id == complaint_id:
                complaint_sync.link_external(complaint_id, booking.refund.refund_no)
            if booking.refund is not None:
                return f"external->{booking.refund.status}"
            if booking.held:
                return "external_held"  # more than the order can refund: on hold, with its task
            return _unknown_refund(event, result)
        if order is None or order.order_no != refund.order_no:
            order = None  # out_trade_no is not our order_no here: read it when settling
        outcome = outcome_from_result(result, f"微信通知 {event.event_type}")
        receipt = _receipt(event, refund_no)
        try:
            before = refund.status
            after = transitions.apply_outcome(refund, outcome, actor="wechat", receipt=receipt, order=order,
                                              contended_after=SETTLE_TURNS)
        except OutcomeMismatch:
            raise NotificationRefused("amount does not match the refund") from None
        except transitions.SettleContended:
            return _settle_later(refund, receipt)
        return f"{before}->{after.status}"


# A notification settles its refund at once unless other refunds of the same order keep settling
# first: after this many lost turns it is acknowledged and the refund is settled by the poller.
# WeChat: "Acknowledge: 200 or 204 within 5 s" (wechatpay-v3.md, "Notifications"), else it sends it again.
SETTLE_TURNS = 1


def _settle_later(refund, receipt: repo.Receipt) -> str:
    """Many refunds of one order settle at once (a sale's cancellations): store the receipt, make
    the refund due for the poller now (it asks WeChat and settles, one at a time) and acknowledge,
    rather than keep WeChat waiting past its 5 s while the order's refunds take turns."""
    log.info("order busy: settlement left to the poller")
    try:
        repo.write([repo.notify_receipt(receipt)])
    except repo.WriteConflict:
        return "duplicate"  # seen before: the poller has it already
    repo.schedule_work(refund.refund_no, due_at=clock.iso(clock.now()), status=refund.status)
    return "settle_later"


def _unknown_refund(event, result) -> str:
    """WeChat reports a refund this service never made: money may have moved outside it. The
    report is kept in a task for a person (once), and then acknowledged."""
    log.error("notification for a refund this service never made; task opened")
    seen = {"out_refund_no": result.out_refund_no, "out_trade_no": result.out_trade_no,
            "refund_id": result.refund_id, "status": result.status, "refund": result.amount_refund,
            "refund_yuan": fen_to_yuan(result.amount_refund), "success_time": result.success_time,
            "event_type": event.event_type}
    task = Task(TaskType.UNKNOWN_REFUND, result.out_refund_no, order_no=result.out_trade_no or "-",
                refund_no=result.out_refund_no, detail=seen, action=(
                    f"微信通知退款单 {result.out_refund_no}"
                    f"（{labels.WECHAT_REFUND_STATES.get(result.status, result.status)}，{fen_to_yuan(result.amount_refund)} 元），"
                    "本系统没有该退款单：请在商户平台核对资金去向"))
    try:
        repo.write([repo.open_task(task, now=clock.iso(clock.now()), by="wechat"),
                    repo.notify_receipt(_receipt(event, result.out_refund_no))])
    except repo.WriteConflict:
        return "noop"  # recorded before
    return "unknown_refund_recorded"


def handle_payment_event(event) -> str:
    """TRANSACTION.SUCCESS -> ``payments.apply_payment``: a pending order is paid once; any other
    payment is recorded for a person. Acknowledged only once what it says is stored."""
    payment = event.payment
    with log_context(order_no=payment.out_trade_no if payment else None, notify_id=event.id):
        if event.event_type != "TRANSACTION.SUCCESS" or payment is None or not payment.paid:
            raise NotificationRefused(f"not a payment success event: {event.event_type}")
        return payments.apply_payment(payment, actor="wechat", receipt=_receipt(event, payment.out_trade_no),
                                      merchant_mismatches=event.merchant_mismatches)
