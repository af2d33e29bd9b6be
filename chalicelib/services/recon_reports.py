"""Reconciliation reports (对账结果), the read side: a run as the console shows it, the dates that
may be reconciled with their status, and a day's discrepancies as JSON pages or CSV files.
The run itself (download, match, checkpoint, schedule) is ``services/reconciliation.py``."""
from __future__ import annotations

import csv
import io
from datetime import datetime

from .. import config
from ..adapters import reconciliations as store
from ..adapters.models import ReconDiscrepancy, ReconRun
from ..domain import reconciliation as recon_rules
from ..domain.enums import ReconClass, ReconStatus
from ..domain.errors import ReconciliationNotFound
from ..domain.reconciliation import Figures
from ..domain import clock
from ..domain.text import neutralise_csv_cell
from .tasks import CsvFile

CSV_PAGE_ROWS = 5000
CSV_COLUMNS = [
    ("bill_date", "账单日期"), ("class_label", "差异类型"), ("kind", "类别"), ("order_no", "订单号"),
    ("refund_no", "退款单号"), ("ours_amount", "本地金额(分)"), ("theirs_amount", "微信金额(分)"),
    ("ours_status", "本地状态"), ("theirs_status", "微信状态"), ("note", "说明"), ("task_id", "任务编号"),
]


def view(run: ReconRun) -> dict:
    """A run's report: its status and figures (a running run's from its last checkpoint)."""
    status = ReconStatus(run.status)
    figures = Figures.from_dict(run.figures).to_dict()
    if status == ReconStatus.RUNNING and run.checkpoint:
        figures = Figures.from_dict((run.checkpoint or {}).get("figures")).to_dict()
    figures["classes"] = [{"class": c.value, "label": c.label, **figures["classes"][c.value]} for c in ReconClass]
    return {"bill_date": run.bill_date, "status": status.value, "status_label": status.label,
            "reason": run.reason, "generation": run.generation, "started_by": run.started_by,
            "started_at": run.started_at, "finished_at": run.finished_at, "duration_ms": run.duration_ms,
            "lines_done": (run.checkpoint or {}).get("offset") if status == ReconStatus.RUNNING else None,
            "refused": run.refused, **figures}


def _run_for(bill_date: str) -> ReconRun:
    run = store.get_run(bill_date)
    if run is None:
        raise ReconciliationNotFound("该日期尚未对账")
    return run


def report(bill_date: str) -> dict:
    return view(_run_for(bill_date))


def list_runs(now: datetime | None = None) -> dict:
    """Every date that may be reconciled (newest first) with its run's status, if any, and
    ``overdue`` for a day still not reconciled past its hour (its bill late, or its runs failing)."""
    now = now or clock.now()
    days = recon_rules.dates(now)
    known = store.runs(days)
    hour = config.recon_settings().overdue_hour
    items = []
    for day in days:
        run = known.get(day)
        status = ReconStatus(run.status) if run is not None else None
        # only days the schedule looks after (the last week) are overdue; older ones were never asked for
        overdue = day >= recon_rules.adjacent(recon_rules.previous_day(now), -6) and recon_rules.overdue(
            day, status.value if status else None, now, hour)
        if run is None:
            items.append({"bill_date": day, "status": None, "status_label": "未对账", "overdue": overdue})
            continue
        f = run.figures or {}
        items.append({"bill_date": day, "status": status.value, "status_label": status.label, "reason": run.reason,
                      "lines_read": f.get("lines_read"), "matched": f.get("matched"),
                      "discrepancies": f.get("discrepancies"), "finished_at": run.finished_at, "overdue": overdue,
                      "refused": run.refused, "started_at": run.started_at,
                      "lines_done": (run.checkpoint or {}).get("offset") if status == ReconStatus.RUNNING else None})
    return {"items": items}


def discrepancy_view(d: ReconDiscrepancy) -> dict:
    cls = ReconClass(d.cls)
    return {"class": cls.value, "class_label": cls.label, "kind": d.kind, "order_no": d.order_no,
            "refund_no": d.refund_no, "ours_amount": d.ours_amount, "theirs_amount": d.theirs_amount,
            "ours_status": d.ours_status, "theirs_status": d.theirs_status, "line_no": d.line_no, "note": d.note,
            "task_id": d.task_id, "found_at": d.found_at}


def list_discrepancies(bill_date: str, *, limit: int, cursor: str | None) -> dict:
    """One page of the latest run's discrepancies; ``next_cursor`` is signed for this day and run."""
    run = _run_for(bill_date)
    page = store.discrepancies(bill_date, run.generation, limit=limit, cursor=cursor)
    return {"items": [discrepancy_view(d) for d in page.items], "next_cursor": page.next_cursor}


def export_csv(bill_date: str, *, limit: int, cursor: str | None) -> CsvFile:
    """A day's discrepancies as CSV (UTF-8 with BOM), every cell neutralised against formula
    injection; ``X-Next-Cursor`` names the next file when more rows follow."""
    run = _run_for(bill_date)
    page = store.discrepancies(bill_date, run.generation, limit=limit, cursor=cursor)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow([title for _, title in CSV_COLUMNS])
    for d in page.items:
        row = {**discrepancy_view(d), "bill_date": bill_date,
               "kind": "退款" if d.kind == "refund" else "支付"}
        writer.writerow([neutralise_csv_cell("" if row.get(k) is None else row.get(k)) for k, _ in CSV_COLUMNS])
    return CsvFile("\ufeff" + out.getvalue(), f"reconciliation-{bill_date}.csv", page.next_cursor)
