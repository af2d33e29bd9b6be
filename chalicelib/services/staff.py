"""Staff use cases: who is signed in and what they may do (for the console), the operator's
limits and today's allowance, and the per-operator activity view (JSON and CSV) for finance."""
from __future__ import annotations

import csv
import io

from .. import config
from ..adapters import directory
from ..adapters import repository as repo
from ..adapters import staff as store
from ..adapters.auth import Principal
from ..domain import staff as staff_rules
from ..domain.enums import RefundOrigin, RefundStatus, StaffAction, StaffRole
from ..domain.errors import invalid
from ..domain.money import fen_to_yuan
from ..domain.text import neutralise_csv_cell
from . import views
from .tasks import CsvFile
from ..domain import clock

CSV_PAGE_ROWS = 5000
MAX_OPERATOR_CHARS = 128


def allowance(subject: str, role: StaffRole, now=None) -> dict:
    """The operator's limits and what is left of today's (Beijing) allowance."""
    limits = config.staff_limits()
    role = StaffRole(role)
    day = clock.beijing_day(now or clock.now())
    used = store.used_on(subject, day)
    daily = limits.daily[role.value]
    remaining = max(0, daily - used)
    return {
        "day": day,
        "refund_limit": limits.refund[role.value], "refund_limit_yuan": fen_to_yuan(limits.refund[role.value]),
        "daily_limit": daily, "daily_limit_yuan": fen_to_yuan(daily),
        "daily_used": used, "daily_used_yuan": fen_to_yuan(used),
        "daily_remaining": remaining, "daily_remaining_yuan": fen_to_yuan(remaining),
        "finance_approval_threshold": limits.finance_approval,
        "finance_approval_threshold_yuan": fen_to_yuan(limits.finance_approval),
    }


def operator(actor: str) -> staff_rules.Operator:
    """The staff ``actor`` as the review rules see them, with this deployment's finance threshold
    and the player accounts the person holds (the staff directory)."""
    return staff_rules.Operator(actor, config.staff_limits().finance_approval,
                                directory.players_of(staff_rules.subject_of(actor)))


def me(principal: Principal) -> dict:
    """GET /api/admin/me: the signed-in operator, their permissions and limits. The console shows
    only the actions listed in ``permissions``."""
    role = principal.staff_role
    return {
        "actor": principal.actor,
        "subject": principal.subject,
        "person": principal.person,
        "role": role.value,
        "role_label": role.label,
        "issuer": principal.issuer,
        "permissions": staff_rules.permissions_of(role),
        "limits": allowance(principal.person, role),
    }


def parse_operator(raw) -> str:
    """The person to look up: a subject (``alice``) or an actor (``support:alice``)."""
    if not isinstance(raw, str) or not raw.strip():
        raise invalid("operator", "必填（操作员的编号）")
    value = raw.strip()
    subject = staff_rules.subject_of(value) or value
    if len(subject) > MAX_OPERATOR_CHARS or not subject.isprintable():
        raise invalid("operator", "不是有效的操作员编号")
    return subject


def _range(start_day: str | None, end_day: str | None) -> tuple[str, str, str, str]:
    today = clock.beijing_date(clock.now())
    start = staff_rules.parse_day(start_day or today.isoformat(), "from", today)
    end = staff_rules.parse_day(end_day or start_day or today.isoformat(), "to", today)
    first, last = staff_rules.day_range(start, end)
    return clock.iso(first), clock.iso(last), start.isoformat(), end.isoformat()


def activity_view(item, split: dict | None = None) -> dict:
    """One line of the activity log; ``split``: its refund's cash and coupon shares as they are now
    (``views.refund_split``; all None when not known)."""
    action = StaffAction(item.action)
    status = RefundStatus(item.status)
    return {
        "at": item.at,
        "operator": item.operator,
        "actor": item.actor,
        "action": action.value,
        "action_label": action.label,
        "refund_no": item.refund_no,
        "order_no": item.order_no,
        "amount": int(item.amount),
        "amount_yuan": fen_to_yuan(int(item.amount)),
        "status": status.value,
        "status_label": status.label,
        "origin": item.origin,
        "origin_label": RefundOrigin(item.origin).label if item.origin else None,
        "detail": item.detail,
        **(split or views.refund_split(None)),
    }


def _activity_views(items) -> list[dict]:
    """The lines of a page, each with its refund's cash and coupon shares (one batch read)."""
    refunds = repo.get_refunds(i.refund_no for i in items)
    return [activity_view(i, views.refund_split(refunds.get(i.refund_no))) for i in items]


def activity(*, operator: str, start_day: str | None, end_day: str | None, limit: int, cursor: str | None) -> dict:
    """GET /api/admin/activity: what one operator created, approved, rejected and paid offline
    over Beijing days ``from``..``to`` (inclusive), oldest first, with totals of this page."""
    start, end, first, last = _range(start_day, end_day)
    page = store.list_activity(operator, start=start, end=end, limit=limit, cursor=cursor)
    return {"operator": operator, "from": first, "to": last,
            "items": _activity_views(page.items), "next_cursor": page.next_cursor}


CSV_COLUMNS = [
    ("at", "时间"), ("actor", "操作员"), ("action_label", "操作"), ("refund_no", "退款单号"), ("order_no", "订单号"),
    ("amount_yuan", "金额（元）"), ("payer_refund_yuan", "其中现金（元）"), ("coupon_refund_yuan", "其中优惠券（元）"),
    ("status_label", "退款状态"), ("origin_label", "来源"), ("detail", "说明"),
]


def export_activity_csv(*, operator: str, start_day: str | None, end_day: str | None, limit: int,
                        cursor: str | None) -> CsvFile:
    """The same rows as CSV, by the manual-task CSV's rules: UTF-8 with BOM, every cell quoted,
    a cell that could start a formula prefixed with ``'``; ``X-Next-Cursor`` names the next file."""
    start, end, first, last = _range(start_day, end_day)
    page = store.list_activity(operator, start=start, end=end, limit=limit, cursor=cursor)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow([title for _, title in CSV_COLUMNS])
    for view in _activity_views(page.items):
        writer.writerow([neutralise_csv_cell("" if view.get(k) is None else view[k]) for k, _ in CSV_COLUMNS])
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in operator)
    return CsvFile("\ufeff" + out.getvalue(), f"activity-{safe}-{first}-{last}.csv", page.next_cursor)
