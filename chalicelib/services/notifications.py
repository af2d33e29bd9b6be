"""Verified WeChat notifications, turned into outcomes. Deduplicated by notification id
in the same transaction as the change they cause, so a redelivery changes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..adapters import balances
from ..adapters import repository as repo
from ..adapters.models import NotifyReceipt
from ..config import settings
from ..domain import refunds as rules
from ..domain.enums import OrderStatus
from ..domain.errors import OutcomeMismatch
from ..domain.refunds import Outcome, iso, now_utc
from ..log import get_logger, log_context
from . import transitions

log = get_logger(__name__)


class NotificationRefused(Exception):
    """Verified but not applicable (unknown refund, mismatch): answered non-2xx so WeChat retries."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _receipt(event, subject: str) -> NotifyReceipt:
    now = now_utc()
    ttl = settings().notify_dedupe_ttl_days
    return NotifyReceipt(event.id, event_type=event.event_type, subject=subject, received_at=iso(now),
                         expires_at=int((now + timedelta(days=ttl)).timestamp()))


def handle_refund_event(event) -> str:
    """REFUND.SUCCESS / CLOSED / ABNORMAL -> the refund's transition. Returns what happened."""
    resource = event.resource or {}
    refund_no = resource.get("out_refund_no")
    status = rules.NOTIFY_EVENTS.get(event.event_type)
    with log_context(refund_no=refund_no, order_no=resource.get("out_trade_no"), notify_id=event.id):
        if status is None or not refund_no:
            raise NotificationRefused(f"not a refund result event: {event.event_type}")
        if rules.WECHAT_STATUS.get(resource.get("refund_status")) != status:
            raise NotificationRefused("refund_status does not match event_type")
        order, refund = repo.get_order_and_refund(resource.get("out_trade_no") or "", refund_no)
        if refund is None:
            log.error("notification for an unknown refund")
            raise NotificationRefused("unknown out_refund_no")
        if order is None or order.order_no != refund.order_no:
            order = None  # out_trade_no is not our order_no here: read it when settling
        amount = (resource.get("amount") or {}).get("refund")
        outcome = Outcome(status=status, wechat_refund_id=resource.get("refund_id"),
                          user_received_account=resource.get("user_received_account"),
                          success_time=resource.get("success_time"), amount=amount,
                          raw=resource, detail=f"微信通知 {event.event_type}")
        try:
            before = refund.status
            after = transitions.apply_outcome(refund, outcome, actor="wechat", receipt=_receipt(event, refund_no),
                                              order=order)
        except OutcomeMismatch:
            raise NotificationRefused("amount does not match the refund") from None
        return f"{before}->{after.status}"


def handle_payment_event(event) -> str:
    """TRANSACTION.SUCCESS: a pending order becomes paid, once, if the amount matches."""
    res = event.resource or {}
    out_trade_no = res.get("out_trade_no")
    with log_context(order_no=out_trade_no, notify_id=event.id):
        if event.event_type != "TRANSACTION.SUCCESS" or res.get("trade_state") != "SUCCESS":
            raise NotificationRefused(f"not a payment success event: {event.event_type}")
        order = repo.get_order(out_trade_no or "")
        if order is None:
            log.error("payment notification for an unknown order")
            raise NotificationRefused("unknown out_trade_no")
        total = (res.get("amount") or {}).get("total")
        if total != order.actual_amount:
            log.error("paid amount does not match the order", extra={"ours": order.actual_amount, "theirs": total})
            raise NotificationRefused("amount does not match the order")
        if order.status != OrderStatus.PENDING.value:
            return "noop"
        paid_at = _to_utc(res.get("success_time")) or iso(now_utc())
        paid = balances.mark_paid(order.order_no, total=total, transaction_id=res.get("transaction_id"),
                                  paid_at=paid_at, now=iso(now_utc()))
        try:
            repo.write([paid, repo.notify_receipt(_receipt(event, out_trade_no))])
        except repo.WriteConflict as c:
            if c.failed("receipt") or c.failed(balances.LABEL):
                return "noop"
            raise
        log.info("order paid", extra={"amount": total})
        return "paid"


def _to_utc(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return iso(datetime.fromisoformat(text).astimezone(timezone.utc))
    except ValueError:
        return None

