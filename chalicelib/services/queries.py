"""The read side: orders and refunds as the admin API and the player app see them
(lists, detail, a player's own refunds). Reads only; views.py shapes the answers."""
from __future__ import annotations

import csv
import io
import time

from ..adapters import claims, players
from ..adapters import counts, refund_lists
from ..adapters.refund_lists import RefundFilter  # noqa: F401 (the routes build the filter through here)
from ..adapters import repository as repo
from ..domain import refunds as refund_rules
from ..domain.errors import OrderNotFound
from ..log import get_logger
from ..domain.text import neutralise_csv_cell
from . import views
from .tasks import CsvFile
from ..domain import clock

log = get_logger(__name__)


def list_orders(*, status, source_type, user_id, limit: int, cursor: str | None,
                created: tuple[str, str] | None = None) -> dict:
    page = repo.list_orders(status=status, source_type=source_type, user_id=user_id, limit=limit, cursor=cursor,
                            created=created)
    users = repo.get_users(o.user_id for o in page.items)
    now = clock.now()
    return {"items": [views.order_summary(o, users.get(o.user_id), now) for o in page.items],
            "next_cursor": page.next_cursor}


SNAPSHOT_TRIES = 10


def order_detail(order_no: str, operator) -> dict:
    """The order, its user and its refunds as one consistent view, in two DynamoDB calls when it
    has refunds (three when it has none, which reads the user after the order).

    The refunds' numbers come from the by-order index; the order, the user and those refunds are
    then read in one transactional snapshot, so a refund settling meanwhile is either wholly in
    it or not at all. A refund created between the two reads shows as balances its refunds do
    not add up to, and both are read again."""
    for attempt in range(SNAPSHOT_TRIES):
        listed = repo.refunds_of_order(order_no)
        user_id = listed[0].user_id if listed else None
        order, user, refunds = repo.order_snapshot(order_no, [r.refund_no for r in listed], user_id)
        if order is None:
            raise OrderNotFound("订单不存在")
        if user_id is None:
            user = repo.get_user(order.user_id)
        if refund_rules.RefundTotals.of(refunds).agree_with(order):
            break
        time.sleep(0.01 * (attempt + 1))  # a refund was just created: list them again
    else:
        log.warning("order detail served while refunds were being created", extra={"order_no": order_no})
    return views.order_detail(order, user, refunds, clock.now(), operator)


def player_refunds(user_id: str, order_no: str) -> dict:
    order = repo.get_order(order_no)
    if order is None or order.user_id != user_id:
        raise OrderNotFound("订单不存在")
    refunds = [r for r in repo.refunds_of_order(order_no) if r.user_id == user_id]
    return {"order_no": order_no, "items": [views.player_refund_view(r) for r in refunds]}


def my_refunds(user_id: str, *, limit: int, cursor: str | None) -> dict:
    """GET /api/app/refunds: the player's refunds and applications over every order, newest first."""
    page = players.refunds_of_user(user_id, limit=limit, cursor=cursor)
    return {"items": [views.player_refund_history(r) for r in page.items], "next_cursor": page.next_cursor}


def user_refunds(user_id: str, *, limit: int, cursor: str | None, operator) -> dict:
    """GET /api/admin/users/{user_id}/refunds: the customer view's timeline of one player."""
    page = players.refunds_of_user(user_id, limit=limit, cursor=cursor)
    items = []
    for r in page.items:
        item = views.refund_view(r, operator)
        item["claim"] = views.claim_view(r)
        items.append(item)
    return {"user": views.user_view(user_id, repo.get_user(user_id)), "items": items,
            "next_cursor": page.next_cursor}


def minor_claims(*, status: str, limit: int, cursor: str | None, operator) -> dict:
    """GET /api/admin/minor-claims: guardians' claims of one status, each with the claim and its first review."""
    page = claims.minor_claims(status, limit=limit, cursor=cursor)
    users = repo.get_users(r.user_id for r in page.items)
    items = []
    for r in page.items:
        item = views.refund_view(r, operator, with_events=False)
        item["user"] = views.user_view(r.user_id, users.get(r.user_id))
        item["claim"] = views.claim_view(r)
        items.append(item)
    return {"items": items, "next_cursor": page.next_cursor}


def refund_detail(refund_no: str, operator) -> dict:
    from .refunds import get_refund

    return views.refund_view(get_refund(refund_no), operator)


def list_refunds(f, *, oldest_first: bool, limit: int, cursor: str | None, operator) -> dict:
    """GET /api/admin/pay/refunds: ``f`` is an ``adapters.refund_lists.RefundFilter``."""
    page = refund_lists.list_refunds(f, oldest_first=oldest_first, limit=limit, cursor=cursor)
    users = repo.get_users(r.user_id for r in page.items)
    items = []
    for r in page.items:
        item = views.refund_view(r, operator, with_events=False)
        item["user"] = views.user_view(r.user_id, users.get(r.user_id))
        items.append(item)
    return {"items": items, "next_cursor": page.next_cursor}


REFUND_CSV_COLUMNS = [
    ("refund_no", "商户退款单号"), ("wechat_refund_id", "微信退款单号"), ("order_no", "订单号"), ("user_id", "用户ID"),
    ("status_label", "状态"), ("origin_label", "来源"), ("amount_yuan", "退款金额（元）"),
    ("payer_refund_yuan", "退至用户（元）"), ("coupon_refund_yuan", "优惠券部分（元）"), ("reason", "原因"),
    ("created_by", "发起人"), ("reviewer", "审核人"), ("created_at", "申请时间（北京时间）"),
    ("success_time", "成功时间（北京时间）"), ("failure_message", "失败原因"),
]


def export_refunds_csv(f, *, limit: int, cursor: str | None, operator) -> CsvFile:
    """The refund list as CSV, by the other exports' rules: UTF-8 with BOM, every cell quoted, a cell
    that could start a formula neutralised, times in Beijing time; ``X-Next-Cursor`` names the next
    file (newest first)."""
    page = refund_lists.list_refunds(f, oldest_first=False, limit=limit, cursor=cursor)
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow([title for _, title in REFUND_CSV_COLUMNS])
    for refund in page.items:
        view = views.refund_view(refund, operator, with_events=False)
        for name in ("created_at", "success_time"):
            view[name] = clock.beijing_text(view[name]) if view.get(name) else None
        writer.writerow([neutralise_csv_cell("" if view.get(k) is None else view[k]) for k, _ in REFUND_CSV_COLUMNS])
    return CsvFile("\ufeff" + out.getvalue(), f"refunds-{f.status or 'all'}.csv", page.next_cursor)


def backlog() -> dict:
    """GET /api/admin/counts: what waits for people (the console's nav counts)."""
    return counts.backlog()
