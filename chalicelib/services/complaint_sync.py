"""Keeping our copy of WeChat's consumer complaints (投诉) true: a complaint is ingested (its
detail and the history entries not stored yet) when a COMPLAINT.* notification names it, when
the scheduled sweep of the list finds it new or changed, and after each of our actions. The
sweep also follows up refund decisions waiting on the refund engine, watches the deadlines
(metrics, and a 投诉处理超时 task past one) and keeps the notify URL registered.

WeChat is reached only through ``edges.gateway().complaints`` (adapters/wechat/complaints.py).
Every write is idempotent: history entries are keyed by their place in WeChat's history, and
the complaint item moves only from the history count it was read with."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from .. import config, metrics
from ..adapters import complaint_store as store
from ..adapters import repository as repo
from ..domain import clock
from ..domain import complaints as rules
from ..domain.enums import ComplaintRefundProgress as Progress, ComplaintState, RefundStatus, TaskType
from ..domain.tasks import Task
from ..log import get_logger, log_context
from . import edges

log = get_logger(__name__)
S = RefundStatus
PAGE = 50  # "limit ... 范围【1,50】": the largest page the list gives
CLAIM_STALE_SECONDS = 300  # a refund claimed this long ago without its refund was cut short
# the engine's refund statuses once it has gone to WeChat (a complaint's APPROVE may follow)
SENT = frozenset({S.SUBMITTED, S.PROCESSING, S.SUCCESS, S.ABNORMAL, S.OFFLINE_PENDING})
GONE = frozenset({S.REJECTED, S.FAILED, S.CLOSED})


class NotificationRefused(Exception):
    """A verified notification that is not a complaint event we can read (answered 4xx)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _utc(text: str | None) -> str | None:
    moment = clock.parse(text)
    return clock.iso(moment) if moment else None


# ---------------------------------------------------------------- one complaint


def ingest(complaint_id: str, *, action_type: str | None = None, receipt: repo.Receipt | None = None):
    """Read the complaint's detail and the history entries not stored yet from WeChat and store
    them; returns the stored complaint. A notification seen before (``receipt``) changes nothing."""
    api = edges.gateway().complaints
    with log_context(complaint_id=complaint_id):
        for _attempt in range(3):
            stored = store.get(complaint_id)
            detail = api.detail(complaint_id)
            start = int(stored.history_count) if stored else 0
            entries = api.history_from(complaint_id, start)
            fields, also = _snapshot(detail, stored, entries, action_type)
            logs = store.log_entries(complaint_id, start, [_log(e) for e in entries])
            last = [store.snapshot(complaint_id, fields, stored_history=start if stored else None), *also]
            if receipt is not None:
                last.append(repo.notify_receipt(receipt))
            try:
                store.write_chunked(logs, last)
            except repo.WriteConflict as c:
                if c.failed("receipt"):
                    return store.get(complaint_id)  # processed before
                if c.failed("complaint"):
                    continue  # another reader stored it meanwhile: read again
                raise
            complaint = store.get(complaint_id)
            log.info("complaint stored", extra={"state": complaint.state, "new_entries": len(entries)})
            return follow_up(complaint)
        return store.get(complaint_id)


def _log(entry) -> dict:
    return {"log_id": entry.log_id, "operator": entry.operator or None, "operate_time": _utc(entry.operate_time),
            "operate_type": entry.operate_type, "operate_details": entry.operate_details or None,
            "image_urls": list(entry.image_urls) or None}


def _snapshot(detail, stored, entries, action_type) -> tuple[dict, list]:
    """The complaint's fields from WeChat's detail and its new history entries (and what follows:
    its deadlines, its refund progress, its order and player), and other writes that go with it."""
    s = config.complaint_settings()
    now = clock.now()
    complained_at = clock.parse(detail.complaint_time) or now
    deadlines = rules.Deadlines.of(complained_at, reply_hours=s.reply_hours, resolve_hours=s.resolve_hours)
    first_reply = stored.first_reply_at if stored else None
    first_reply = first_reply or next((_utc(e.operate_time) for e in entries
                                       if e.operate_type == rules.MERCHANT_RESPONSE), None)
    current = rules.current_deadline(detail.state, bool(first_reply), deadlines)
    order = detail.order
    fields = {
        "complaint_time": clock.iso(complained_at), "state": detail.state, "detail": detail.detail or None,
        "problem_type": detail.problem_type, "problem_description": detail.problem_description,
        "apply_refund_amount": detail.apply_refund_amount, "user_complaint_times": detail.user_complaint_times,
        "user_tags": list(detail.user_tags) or None, "full_refunded": detail.full_refunded,
        "incoming_user_response": detail.incoming_user_response, "media_urls": list(detail.media_urls) or None,
        "order_no": order.out_trade_no if order else None, "transaction_id": order.transaction_id if order else None,
        "order_amount": order.amount if order else None, "payer_openid": detail.payer_openid,
        "payer_phone": detail.payer_phone, "reply_due_at": clock.iso(deadlines.reply_due),
        "resolve_due_at": clock.iso(deadlines.resolve_due), "first_reply_at": first_reply,
        "due_at": clock.iso(current[1]) if current else None, "due_kind": current[0] if current else None,
        "history_count": (int(stored.history_count) if stored else 0) + len(entries),
        "synced_at": clock.iso(now), "updated_at": clock.iso(now),
    }
    if action_type:
        fields["last_action"] = action_type
    if stored is None:
        fields["created_at"] = clock.iso(now)
    if stored is None or not stored.order_known:
        found = repo.get_order(fields["order_no"]) if fields["order_no"] else None
        fields["order_known"] = found is not None
        fields["user_id"] = found.user_id if found else None
    also = []
    if detail.state == ComplaintState.PROCESSED.value:
        if not (stored and stored.processed_at):
            fields["processed_at"] = clock.iso(now)
        if stored and stored.overdue_task:  # a task for a deadline no longer running closes itself
            also.append(repo.settle_task(stored.overdue_task, by="wechat", note="投诉已处理完成", now=clock.iso(now)))
            fields["overdue_task"] = None
    types = {e.operate_type for e in entries}
    progress = stored.refund_progress if stored else None
    if rules.ENTRUSTED_REFUND in types:
        # "COMPLAINT_ENTRUSTED_REFUND_SYSTEM_MESSAGE(投诉单受托退款系统通知)": WeChat refunded the player itself
        fields["refund_progress"], fields["followup"] = Progress.ENTRUSTED.value, False
        booked = None if stored and stored.entrusted_refund_no else _entrusted_refund(detail.complaint_id,
                                                                                       fields["order_no"])
        if booked is not None:
            fields["entrusted_refund_no"] = booked.refund_no
            if booked.complaint_id != detail.complaint_id:
                also.append(store.link_refund(booked.refund_no, detail.complaint_id))
    elif rules.REFUND_RECEIVED in types and progress == Progress.APPROVED.value:
        # "退款到账后,投诉单的状态将自动扭转为'处理完成'"
        fields["refund_progress"], fields["followup"] = Progress.REFUNDED.value, False
    return fields, also


# ---------------------------------------------------------------- WeChat's own refund (受托退款)


def _entrusted_refund(complaint_id: str, order_no: str | None):
    """The refund WeChat made itself for this complaint, once booked against its order
    (``services/external.py``): the external refund of the order linked to it, else the one
    external refund of the order linked to no complaint. None until it is booked (its
    notification, query or bill line books it, and links it through ``complaint_of_refund``)."""
    from ..domain.enums import RefundOrigin

    if not order_no:
        return None
    external = [r for r in repo.refunds_of_order(order_no) if r.origin == RefundOrigin.EXTERNAL.value]
    mine = [r for r in external if r.complaint_id == complaint_id]
    free = [r for r in external if not r.complaint_id]
    return mine[0] if mine else free[0] if len(free) == 1 else None


def complaint_of_refund(result) -> str | None:
    """The complaint a refund WeChat made without us answers, to book it with: WeChat refunds the
    player itself when a complaint passes its deadline ("受托退款"), before it tells us the
    complaint changed. The one open complaint of the order without a refund of ours (the one
    asking for that amount, when several are open); None when that cannot be told."""
    if not result.out_trade_no:
        return None
    listed = store.of_order(result.out_trade_no, limit=50, cursor=None).items
    open_ = [c for c in listed if not c.refund_no and not c.entrusted_refund_no
             and c.refund_progress not in (Progress.REFUNDED.value, Progress.REJECTED.value)]
    asking = [c for c in open_ if c.apply_refund_amount == result.amount_refund]
    chosen = asking if len(asking) == 1 else open_
    return chosen[0].complaint_id if len(chosen) == 1 else None


def link_external(complaint_id: str, refund_no: str) -> None:
    """The complaint names the refund WeChat made for it (the refund already names the complaint)."""
    _write([store.change(complaint_id, {"entrusted_refund_no": refund_no, "updated_at": clock.iso(clock.now())})])


def handle_notification(event) -> str:
    """A verified COMPLAINT.* notification -> the complaint ingested. Deduplicated by its id: a
    redelivery costs one read and no call to WeChat."""
    from ..adapters.wechat.complaints import complaint_event
    from ..adapters.wechat.errors import InvalidNotification
    from .notifications import _receipt

    try:
        complaint = complaint_event(event)
    except InvalidNotification as err:
        raise NotificationRefused(err.message) from None
    with log_context(complaint_id=complaint.complaint_id, notify_id=complaint.id):
        if store.receipt_seen(complaint.id):
            return "duplicate"
        stored = ingest(complaint.complaint_id, action_type=complaint.action_type,
                        receipt=_receipt(complaint, complaint.complaint_id))
        return f"{complaint.action_type}: {stored.state}"


# ---------------------------------------------------------------- refund decisions waiting on the engine


def follow_up(complaint):
    """Carry a complaint's refund decision on as its refund moves: an approval under review that
    was approved is told to WeChat (APPROVE, the refund is on its way today), one that was
    rejected or failed gives the complaint back to the operator, a refund that arrived is marked.
    Returns the complaint as stored afterwards."""
    if complaint is None or not complaint.followup or not complaint.refund_no:
        return complaint
    from .complaints import tell_wechat_approved

    refund = repo.get_refund(complaint.refund_no)
    now = clock.now()
    progress, cid = complaint.refund_progress, complaint.complaint_id
    with log_context(complaint_id=cid, refund_no=complaint.refund_no):
        if refund is None:
            claimed = clock.parse(complaint.updated_at) or now
            if now - claimed > timedelta(seconds=CLAIM_STALE_SECONDS):
                _write([store.change(cid, release(complaint), refund_no=complaint.refund_no)])
        elif S(refund.status) in GONE:
            log.info("the complaint's refund ended without money moving; the complaint is open again")
            _write([store.change(cid, release(complaint, bump=True), refund_no=complaint.refund_no)])
        elif progress == Progress.AWAITING_REVIEW.value and S(refund.status) in SENT:
            tell_wechat_approved(complaint, actor="complaint-sweep")
        elif progress == Progress.APPROVED.value and S(refund.status) == S.SUCCESS:
            _write([store.change(cid, {"refund_progress": Progress.REFUNDED.value, "followup": False,
                                       "updated_at": clock.iso(now)}, refund_no=complaint.refund_no)])
        return store.get(cid)


def release(complaint, *, bump: bool = False) -> dict:
    """The fields that let go of a complaint's refund (another may be made; ``bump``: under a new
    number, the old one being used up). WeChat's APPROVE, once told, stays."""
    fields = {"refund_no": None, "refund_amount": None, "followup": False, "updated_at": clock.iso(clock.now()),
              "refund_progress": Progress.APPROVED.value if complaint.refund_action == "APPROVE" else None}
    if bump:
        fields["refund_attempt"] = int(complaint.refund_attempt or 0) + 1
    return fields


def _write(items: list) -> bool:
    try:
        repo.write(items)
        return True
    except repo.WriteConflict:
        return False  # it moved on meanwhile: the next look sees it as it is


# ---------------------------------------------------------------- the sweep


@dataclass
class SweepReport:
    pages: int = 0  # list calls to WeChat
    total: int | None = None  # WeChat's count in the window
    new: int = 0
    updated: int = 0
    followed_up: int = 0
    open_near: int = 0
    overdue: int = 0
    tasks_opened: int = 0
    errors: int = 0
    complete: bool = False  # the whole window was read (or nothing was new)
    notify_url: str | None = None  # what registering the notify URL did
    window: tuple = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def window(now: datetime, days: int) -> tuple[str, str]:
    """The list's date span, Beijing dates ("begin_date ... end_date ... 查询日期跨度不超过30天")."""
    end = clock.beijing_date(now)
    return (end - timedelta(days=days)).isoformat(), end.isoformat()


def sweep(*, time_left: Callable[[], float] | None = None) -> SweepReport:
    """Read the complaint list of the last ``sweep_days`` days, 50 a page, and ingest what is not
    stored or has changed. WeChat's count of the window (``total_count``, on the first page only)
    against the watermark of the last complete read tells whether anything is new: a sweep with
    nothing new reads one page. The window's complaints never go away, so an equal count means
    none came; a new window (the next day) is read whole once. Then the refund decisions waiting
    on the engine and the deadlines."""
    s = config.complaint_settings()
    report = SweepReport()
    now = clock.now()
    begin, end = report.window = window(now, s.sweep_days)
    api = edges.gateway().complaints

    def out_of_time() -> bool:
        return time_left is not None and time_left() < s.sweep_budget_seconds

    report.notify_url = register_notify_url()
    try:
        page = api.list_page(begin_date=begin, end_date=end, offset=0, limit=PAGE)
        report.pages, report.total = 1, page.total_count
        mark = store.sweep_mark()
        unchanged = (mark is not None and (mark.begin_date, mark.end_date) == (begin, end)
                     and page.total_count is not None and mark.total_count == page.total_count)
        offset = 0
        while not unchanged:
            _take(page.items, report)
            offset += len(page.items)
            if not page.items or len(page.items) < PAGE or (report.total is not None and offset >= report.total):
                if not report.errors:  # a complaint that failed is read again by the next sweep
                    store.put_sweep_mark(begin_date=begin, end_date=end, total_count=report.total,
                                         updated_at=clock.iso(clock.now()))
                break
            if out_of_time():
                log.warning("complaint sweep stopped early: time is running out", extra={"offset": offset})
                break
            page = api.list_page(begin_date=begin, end_date=end, offset=offset, limit=PAGE)
            report.pages += 1
        report.complete = unchanged or offset >= (report.total or 0)
    except Exception:  # noqa: BLE001 - the follow-ups and deadlines still run
        report.errors += 1
        log.exception("complaint list sweep failed")
    for complaint_id in store.followups(100):
        if out_of_time():
            break
        try:
            follow_up(store.get(complaint_id))
            report.followed_up += 1
        except Exception:  # noqa: BLE001 - one complaint must not stop the others
            report.errors += 1
            log.exception("complaint follow-up failed", extra={"complaint_id": complaint_id})
    check_deadlines(report)
    log.info("complaint sweep finished", extra=report.to_dict())
    return report


def _take(items, report: SweepReport) -> None:
    """Ingest the listed complaints that are new, or whose state or pending message differs from
    ours (one BatchGetItem for the page)."""
    stored = store.get_many(c.complaint_id for c in items)
    for listed in items:
        known = stored.get(listed.complaint_id)
        if known is not None and known.state == listed.state and \
                bool(known.incoming_user_response) == listed.incoming_user_response:
            continue
        try:
            ingest(listed.complaint_id)
            report.new += known is None
            report.updated += known is not None
        except Exception:  # noqa: BLE001 - the next sweep tries it again (the watermark waits)
            report.errors += 1
            log.exception("complaint ingest failed", extra={"complaint_id": listed.complaint_id})


def register_notify_url() -> str | None:
    """Make the configured complaint notify URL WeChat's ("商户创建投诉通知回调URL后,当有新的投诉
    事件发生、投诉状态发生变化时,商户会收到通知回调"), once per URL: the watermark remembers it."""
    url = edges.gateway().settings.complaint_notify_url
    if not url:
        return None
    mark = store.sweep_mark()
    if mark is not None and mark.notify_url == url:
        return "known"
    try:
        done = edges.gateway().complaints.register_notify_url(url)
    except Exception:  # noqa: BLE001 - the sweep reads the list all the same
        log.exception("complaint notify URL could not be registered")
        return "failed"
    store.put_sweep_mark(notify_url=url, updated_at=clock.iso(clock.now()))
    log.info("complaint notify URL registered", extra={"result": done})
    return done


# ---------------------------------------------------------------- deadlines


def check_deadlines(report: SweepReport, limit: int = 1000) -> None:
    """Count the open complaints near or past their deadline, and open one 投诉处理超时 task for
    each deadline passed (the complaint remembers it: the next sweep opens none again)."""
    s = config.complaint_settings()
    now = clock.now()
    due = store.due_before(clock.iso(now + timedelta(hours=s.near_hours)), limit)
    for complaint in due:
        if complaint.due_at > clock.iso(now):
            report.open_near += 1
            continue
        report.overdue += 1
        task = overdue_task(complaint)
        if complaint.overdue_task == task.task_id:
            continue
        items = [repo.open_task(task, now=clock.iso(now), by="complaint-sweep"),
                 store.change(complaint.complaint_id, {"overdue_task": task.task_id})]
        if _write(items):
            report.tasks_opened += 1
            log.warning("complaint past its deadline; task opened",
                        extra={"complaint_id": complaint.complaint_id, "deadline": complaint.due_kind})


def overdue_task(complaint) -> Task:
    what = "首次回复" if complaint.due_kind == "reply" else "处理完成"
    return Task(TaskType.COMPLAINT_OVERDUE, complaint.complaint_id, part=complaint.due_kind,
                order_no=complaint.order_no or "-", user_id=complaint.user_id,
                action=(f"消费者投诉 {complaint.complaint_id} 已超过{what}时限：请尽快回复或处理；"
                        "超过 72 小时微信可能直接从商户账户退款给用户"),
                detail={"complaint_id": complaint.complaint_id, "deadline": complaint.due_kind,
                        "due_at": complaint.due_at, "state": complaint.state})


def emit(report: SweepReport) -> dict | None:
    return metrics.emit_complaint_sweep(report.to_dict())
