"""Lambda event handlers (SQS restoration, scheduled poll). Thin: parse, call, log."""
from __future__ import annotations

import json

from ..log import get_logger, log_context

log = get_logger(__name__)


def restore_record(body: str, message_id: str | None = None) -> dict:
    """One SQS record -> one restoration. Raises on failure so SQS redelivers it and,
    after maxReceiveCount, moves it to the dead-letter queue."""
    from ..services import restoration

    try:
        payload = json.loads(body)
        refund_no = payload["refund_no"]
    except (ValueError, KeyError, TypeError):
        log.error("restore message is malformed; dropped", extra={"message_id": message_id})
        return {"result": "malformed"}
    with log_context(refund_no=refund_no, order_no=payload.get("order_no"), message_id=message_id):
        try:
            return restoration.restore(refund_no, payload.get("order_no"))
        except Exception:
            log.exception("restoration failed; the message will be redelivered")
            raise


def poll_and_sweep(context=None) -> dict:
    """The scheduled run. Takes no new work when the invocation's remaining time runs low, and
    emits its metrics whatever happened (an alarm must tell "nothing stuck" from "did not run")."""
    from ..metrics import emit_metrics
    from ..services import payments, poller

    remaining = getattr(context, "get_remaining_time_in_millis", None)
    time_left = (lambda: remaining() / 1000) if callable(remaining) else None
    report, swept, paid = poller.PollReport(), None, payments.PaymentPollReport()
    try:
        report = poller.poll(time_left=time_left)
        if time_left is None or time_left() > poller.SWEEP_RESERVE_SECONDS:
            swept = poller.sweep()
        paid = payments.poll_payments(time_left=time_left, reserve_seconds=poller.reserve_seconds())
    finally:
        emit_metrics(report, swept=swept, payments=paid)
        relayed = _relay_events()  # last: the run's own changes are told in the same run
        messaged = _send_player_messages()
    return {"poll": report.to_dict(), "swept": swept, "payments": paid.to_dict(), "events": relayed,
            "messages": messaged}


def _send_player_messages() -> dict | None:
    """Send the players' pending subscription messages; a failure never fails the run (they wait)."""
    from ..services import player_messages

    try:
        return player_messages.send_due().to_dict()
    except Exception:  # noqa: BLE001 - the messages stay pending for the next run
        log.exception("sending subscription messages failed")
        return None


def _relay_events() -> dict | None:
    """Publish the outbox's domain events; a failure here never fails the run (they wait)."""
    from ..services import events

    try:
        return events.relay().to_dict()
    except Exception:  # noqa: BLE001 - the events stay in the outbox for the next run
        log.exception("relaying domain events failed")
        return None


def sweep_complaints(context=None) -> dict:
    """The scheduled complaint sweep; its metrics are emitted whatever happened."""
    from ..services import complaint_sync

    remaining = getattr(context, "get_remaining_time_in_millis", None)
    time_left = (lambda: remaining() / 1000) if callable(remaining) else None
    report = complaint_sync.SweepReport(errors=1)
    try:
        report = complaint_sync.sweep(time_left=time_left)
    finally:
        complaint_sync.emit(report)
    return report.to_dict()
