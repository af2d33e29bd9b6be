"""The poller and the sweeper: nothing stays stuck.

Both read the sparse ``pending_work`` index, so their cost follows the backlog (refunds
still awaiting WeChat or restoration), never the history of all refunds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from ..adapters import queue
from ..adapters import repository as repo
from ..config import settings
from ..domain import refunds as rules
from ..domain.enums import RefundStatus
from ..domain.refunds import iso, now_utc
from ..log import get_logger, log_context
from . import submission, transitions

S = RefundStatus
log = get_logger(__name__)


@dataclass
class PollReport:
    due: int = 0
    changed: int = 0
    unchanged: int = 0
    resubmitted: int = 0
    errors: int = 0
    stuck: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def poll(limit: int | None = None) -> PollReport:
    """Query WeChat for refunds whose outcome is overdue and apply it like a notification."""
    report = PollReport()
    now = iso(now_utc())
    due = repo.due_work("poll", now, limit or settings().poll_batch)
    report.due = len(due)
    for refund_no in due:
        try:
            _poll_one(refund_no, report)
        except Exception:  # noqa: BLE001 - one bad refund must not stop the others
            report.errors += 1
            log.exception("poll failed for a refund", extra={"refund_no": refund_no})
    log.info("poll finished", extra=report.to_dict())
    return report


def _poll_one(refund_no: str, report: PollReport) -> None:
    from ..adapters import wechat

    refund = repo.get_refund(refund_no)
    if refund is None:
        return
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        status = RefundStatus(refund.status)
        if status not in rules.AWAITING_WECHAT:  # settled meanwhile: leave the index
            repo.leave_work_queue(refund_no, status=refund.status, work="poll")
            return
        try:
            result = wechat.get_gateway().query_refund(refund_no)
        except wechat.NotFound:
            if status == S.SUBMITTED:  # WeChat never received it: send it again, same refund_no
                report.resubmitted += 1
                log.warning("wechat has no such refund; resubmitting with the same refund_no")
                submission.submit(refund, actor="poller")
            else:
                report.errors += 1
                transitions.check_later(refund)
            return
        except wechat.OutcomeUnknown as err:
            report.errors += 1
            transitions.check_later(refund, seconds=300 if getattr(err, "frequency_limited", False) else None)
            return
        except wechat.WechatError as err:
            report.errors += 1
            log.error("poll query refused", extra={"code": err.code})
            transitions.check_later(refund)
            return
        outcome = submission.outcome_from_result(result, f"主动查询：微信状态 {result.status}")
        after = transitions.apply_outcome(refund, outcome, actor="poller")
        if after.status != status.value:
            report.changed += 1
        else:
            report.unchanged += 1
            report.stuck[status.value] = report.stuck.get(status.value, 0) + 1
            transitions.check_later(after)


def sweep(limit: int | None = None) -> int:
    """Enqueue again the successful refunds whose restoration is overdue (lost enqueue)."""
    now = iso(now_utc())
    due = repo.due_work("restore", now, limit or settings().poll_batch)
    for refund_no in due:
        refund = repo.get_refund(refund_no)
        if refund is None:
            continue
        with log_context(refund_no=refund_no, order_no=refund.order_no):
            log.warning("restoration overdue; enqueueing again")
            queue.publish_restore(refund_no, refund.order_no)
            repo.schedule_work(refund_no, status=refund.status, work="restore",
                               due_at=iso(now_utc() + timedelta(seconds=settings().restore_sweep_seconds)))
    return len(due)
