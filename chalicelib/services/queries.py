"""The read side: orders and refunds as the admin API and the player app see them
(lists, detail, a player's own refunds). Reads only; views.py shapes the answers."""
from __future__ import annotations

from ..adapters import repository as repo
from ..domain.errors import OrderNotFound
from ..domain.refunds import now_utc
from . import views


def list_orders(*, status, source_type, user_id, limit: int, cursor: str | None) -> dict:
    page = repo.list_orders(status=status, source_type=source_type, user_id=user_id, limit=limit, cursor=cursor)
    users = repo.get_users(o.user_id for o in page.items)
    return {"items": [views.order_summary(o, users.get(o.user_id)) for o in page.items],
            "next_cursor": page.next_cursor}


def order_detail(order_no: str) -> dict:
    """Three reads whatever the refund count: the order, its user, one Query of its refunds."""
    order = repo.get_order(order_no)
    if order is None:
        raise OrderNotFound("订单不存在")
    user = repo.get_user(order.user_id)
    refunds = repo.refunds_of_order(order_no)
    return views.order_detail(order, user, refunds, now_utc())


def player_refunds(user_id: str, order_no: str) -> dict:
    order = repo.get_order(order_no)
    if order is None or order.user_id != user_id:
        raise OrderNotFound("订单不存在")
    refunds = [r for r in repo.refunds_of_order(order_no) if r.user_id == user_id]
    return {"order_no": order_no, "items": [views.refund_view(r, for_player=True) for r in refunds]}


def refund_detail(refund_no: str) -> dict:
    from .refunds import get_refund

    return views.refund_view(get_refund(refund_no))


def list_refunds(*, status: str | None, order_no: str | None, oldest_first: bool, limit: int,
                 cursor: str | None) -> dict:
    page = repo.list_refunds(status=status, order_no=order_no, oldest_first=oldest_first, limit=limit,
                             cursor=cursor)
    users = repo.get_users(r.user_id for r in page.items)
    items = []
    for r in page.items:
        item = views.refund_view(r, with_events=False)
        item["user"] = views.user_view(r.user_id, users.get(r.user_id))
        items.append(item)
    return {"items": items, "next_cursor": page.next_cursor}
