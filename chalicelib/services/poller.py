"""The poller and the sweeper: nothing stays stuck.

Both read the sparse ``pending_work`` index, so their cost follows the backlog (refunds
still awaiting WeChat or restoration), never the history of all refunds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable


from ..adapters import repository as repo
from ..config import settings, wechat_timeout_seconds
from ..domain import refunds as refund_rules
from ..domain import tasks as task_rules
from ..domain.enums import RefundStatus, TaskType
from . import edges
from ..log import get_logger, log_context
from . import submission, transitions
from ..domain import clock
from .outcomes import outcome_from_result

S = RefundStatus
log = get_logger(__name__)


@dataclass
class PollReport:
    due: int = 0
    changed: int = 0
    unchanged: int = 0
    resubmitted: int = 0
    errors: int = 0
    deferred: int = 0  # due but left for the next run: this invocation's time ran low
    stuck: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


# a poll of one refund may take a query and a resubmission, each up to the WeChat timeout
SECONDS_PER_REFUND_RESERVE = 2
SWEEP_RESERVE_SECONDS = 3  # the sweep sends a few SQS messages and small writes


def poll(limit: int | None = None, *, time_left: Callable[[], float] | None = None) -> PollReport:
    """Query WeChat for refunds whose outcome is overdue and apply it like a notification.

    ``time_left`` (seconds, from the Lambda context) stops the run from taking another refund
    when it could not finish it in time; what is left stays due for the next run. One refund
    that fails (any error) is rescheduled with backoff and never delays the others."""
    report = PollReport()
    now = clock.iso(clock.now())
    due = repo.due_work("poll", now, limit or settings().poll_batch)
    report.due = len(due)
    reserve = reserve_seconds()
    for i, refund_no in enumerate(due):
        if time_left is not None and time_left() < reserve:
            report.deferred = len(due) - i
            log.warning("poll stopped early: this invocation's time is running out",
                        extra={"deferred": report.deferred})
            break
        refund = None
        try:
            refund = repo.get_refund(refund_no)
            if refund is not None:
                _poll_one(refund, report)
        except Exception as exc:  # noqa: BLE001 - one bad refund must not stop the others
            report.errors += 1
            log.exception("poll failed for a refund", extra={"refund_no": refund_no})
            _failed(refund, type(exc).__name__)
    log.info("poll finished", extra=report.to_dict())
    return report


def reserve_seconds() -> float:
    """Seconds one more refund (or payment) check may take: never start one without them."""
    return SECONDS_PER_REFUND_RESERVE * wechat_timeout_seconds() + 1


def _failed(refund, reason: str, *, what: str = "退款状态查询") -> None:
    """Back a failing refund off; after ``poll_failure_task_after`` failures in a row, a person
    is told (one task per refund; it stays in the queue and keeps being tried). ``what`` failed:
    the status query, or sending the refund again."""
    if refund is None:
        return
    with log_context(refund_no=refund.refund_no, order_no=refund.order_no):
        try:
            failures = transitions.check_later(refund, failed=True)
            if failures >= settings().poll_failure_task_after:
                task = task_rules.for_refund(refund, TaskType.POLL_FAILING,
                                             f"{what}连续失败 {failures} 次（{reason}），请核对微信商户平台中的退款结果"
                                             "与商户配置")
                if task.task_id not in (refund.open_tasks or ()):
                    try:
                        repo.write(repo.bind_task(refund, task, now=clock.iso(clock.now()), by="poller"))
                    except repo.WriteConflict:
                        return  # the refund moved on meanwhile: nothing is stuck
                    log.error("polling keeps failing for a refund; task opened", extra={"failures": failures})
        except Exception:  # noqa: BLE001 - the store itself is failing: the next run tries again
            log.exception("could not reschedule a failing refund")


def _poll_one(refund, report: PollReport) -> None:
    from ..adapters.wechat.errors import NotFound, OutcomeUnknown, WechatError
    from ..adapters.wechat.gateway import get_gateway

    refund_no = refund.refund_no
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        status = RefundStatus(refund.status)
        if status not in refund_rules.AWAITING_WECHAT:  # settled meanwhile: leave the index
            repo.leave_work_queue(refund_no, status=refund.status, work="poll")
            return
        try:
            result = edges.gateway().query_refund(refund_no)
        except NotFound:
            if status == S.SUBMITTED:  # WeChat never received it: send it again, same refund_no
                report.resubmitted += 1
                log.warning("wechat has no such refund; resubmitting with the same refund_no")
                after = submission.submit(refund, actor="poller")
                if after.status == S.SUBMITTED.value:
                    # not taken this time either (e.g. NO_AUTH for creating refunds only: an IP
                    # allow-list): back off like any failing check, and in the end tell a person
                    report.errors += 1
                    _failed(after, after.events[-1].detail if after.events else "未受理", what="重新提交退款")
            else:
                report.errors += 1
                _failed(refund, "RESOURCE_NOT_EXISTS")
            return
        except OutcomeUnknown as err:
            report.errors += 1
            transitions.check_later(refund, seconds=300 if getattr(err, "frequency_limited", False) else None,
                                    failed=True)
            return
        except WechatError as err:
            report.errors += 1
            log.error("poll query refused", extra={"code": err.code})
            _failed(refund, err.code)
            return
        outcome = outcome_from_result(result, f"主动查询：微信状态 {result.status}")
        after = transitions.apply_outcome(refund, outcome, actor="poller")
        if after.status != status.value:
            report.changed += 1
        else:
            report.unchanged += 1
            report.stuck[status.value] = report.stuck.get(status.value, 0) + 1
            transitions.check_later(after)


def sweep(limit: int | None = None) -> int:
    """Enqueue again the successful refunds whose restoration is overdue (lost enqueue)."""
    now = clock.iso(clock.now())
    due = repo.due_work("restore", now, limit or settings().poll_batch)
    for refund_no in due:
        refund = repo.get_refund(refund_no)
        if refund is None:
            continue
        with log_context(refund_no=refund_no, order_no=refund.order_no):
            log.warning("restoration overdue; enqueueing again")
            edges.publisher().publish_restore(refund_no, refund.order_no)
            repo.schedule_work(refund_no, status=refund.status, work="restore",
                               due_at=clock.iso(clock.now() + timedelta(seconds=settings().restore_sweep_seconds)))
    return len(due)
