"""Manual-handling tasks: what a refund could not undo by itself, for a person."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from ..adapters import repository as repo
from ..domain import refunds as refund_rules
from ..domain import staff as staff_rules
from ..domain import tasks as task_rules
from ..domain.enums import RefundStatus, StaffRole, TaskStatus, TaskType
from ..domain.errors import ErrorCode, TaskNotFound, conflict
from ..domain.text import neutralise_csv_cell
from . import views
from ..domain import clock

CSV_COLUMNS = [
    ("task_id", "任务编号"), ("type_label", "类型"), ("status_label", "状态"), ("order_no", "订单号"),
    ("refund_no", "退款单号"), ("user_id", "用户ID"), ("action", "处理事项"), ("created_at", "创建时间"),
    ("done_by", "处理人"), ("done_at", "处理时间"), ("note", "备注"),
]


def list_tasks(*, status: str, task_type: str | None, limit: int, cursor: str | None) -> dict:
    page = repo.list_tasks(status=status, task_type=task_type, limit=limit, cursor=cursor)
    return {"items": [views.task_view(t) for t in page.items], "next_cursor": page.next_cursor}


CSV_PAGE_ROWS = 5000  # ~1 MB: far below Lambda's 6 MB response limit


@dataclass(frozen=True)
class CsvFile:
    """A CSV export page: its text (BOM first), a file name, and where the next page starts."""

    text: str
    filename: str
    next_cursor: str | None


def export_csv(*, status: str, task_type: str | None, limit: int, cursor: str | None) -> CsvFile:
    """Newest first, ``limit`` rows from ``cursor``: UTF-8 with BOM so Excel shows the Chinese
    labels. When more rows follow, ``X-Next-Cursor`` says where the next file starts (the console
    follows it and saves one file)."""
    page = repo.list_tasks(status=status, task_type=task_type, limit=limit, cursor=cursor)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)  # every cell quoted, and none starts a formula
    writer.writerow([title for _, title in CSV_COLUMNS])
    for task in page.items:
        view = views.task_view(task)
        writer.writerow([neutralise_csv_cell("" if view.get(k) is None else view[k]) for k, _ in CSV_COLUMNS])
    return CsvFile("\ufeff" + out.getvalue(), f"manual-tasks-{status}.csv", page.next_cursor)


def mark_done(*, task_id: str, actor: str, role: StaffRole, note: str) -> dict:
    """A person marks a task done: with the permission its kind names, and, for a task bound to
    a refund's money, only once that money is settled (until then it closes itself)."""
    task = repo.get_task(task_id)
    if task is None:
        raise TaskNotFound("任务不存在")
    kind = task_rules.kind_of(task.type)
    staff_rules.require(role, kind.close_permission)
    if task.status == TaskStatus.DONE.value:
        raise conflict(ErrorCode.TASK_ALREADY_DONE, "任务已处理")
    if kind.bound_to_money and task.refund_no:
        refund = repo.get_refund(task.refund_no)
        if refund is not None and RefundStatus(refund.status) not in refund_rules.FINAL:
            raise conflict(ErrorCode.TASK_MONEY_UNSETTLED,
                           f"退款 {refund.refund_no} 仍为{RefundStatus(refund.status).label}，资金尚未结清："
                           "该任务会在退款结束时自动关闭，不能手动标记为已处理",
                           refund_no=refund.refund_no, status=refund.status)
    now = clock.iso(clock.now())
    if not repo.finish_task(task_id, by=actor, note=note or None, now=now):
        raise conflict(ErrorCode.TASK_ALREADY_DONE, "任务已处理")
    return views.task_view(repo.get_task(task_id))


def reopen(*, task_id: str, actor: str, role: StaffRole, note: str | None) -> dict:
    """A person reopens a done task (closed by mistake, or the problem came back), with the
    permission its kind names for closing it. Reopening an open task changes nothing (a retry)."""
    task = repo.get_task(task_id)
    if task is None:
        raise TaskNotFound("任务不存在")
    staff_rules.require(role, task_rules.kind_of(task.type).close_permission)
    if task.status == TaskStatus.DONE.value:
        repo.reopen_task(task_id, by=actor, note=note or None, now=clock.iso(clock.now()))
    return views.task_view(repo.get_task(task_id))
