"""The staff search (GET /api/admin/search?q=): one box finds an order or a refund by any of its
numbers, or a player by id, nickname or phone (with their latest orders). Every hit says how it
matched and links to an order. Reads only (adapters/lookups.py)."""
from __future__ import annotations

from ..adapters import lookups
from ..adapters import repository as repo
from ..domain import clock
from ..domain import search as search_rules
from . import views

USER_ORDERS = 10  # a matched player's latest orders shown with them

MATCHED = {
    "order_no": "订单号",
    "transaction_id": "微信支付单号",
    "refund_no": "商户退款单号",
    "wechat_refund_id": "微信退款单号",
    "user_id": "玩家 ID",
    "nickname": "昵称",
    "phone": "手机号",
}


def _matched(how: str) -> dict:
    return {"matched_by": how, "matched_by_label": MATCHED[how]}


def search(raw_query, operator) -> dict:
    query = search_rules.parse(raw_query)
    found = lookups.find(query)
    user_ids = {o.user_id for o, _ in found.orders.values()} | {r.user_id for r, _ in found.refunds.values()}
    users = repo.get_users(user_ids - set(found.users))
    users.update({uid: u for uid, (u, _) in found.users.items() if u is not None})
    now = clock.now()
    orders = [{**views.order_summary(o, users.get(o.user_id), now), **_matched(how)}
              for o, how in sorted(found.orders.values(), key=lambda pair: pair[0].created_at, reverse=True)]
    refunds = []
    for refund, how in sorted(found.refunds.values(), key=lambda pair: pair[0].created_at, reverse=True):
        item = views.refund_view(refund, operator, with_events=False)
        item["user"] = views.user_view(refund.user_id, users.get(refund.user_id))
        refunds.append({**item, **_matched(how)})
    players = []
    for user_id, (user, how) in sorted(found.users.items()):
        latest = lookups.orders_of_user(user_id, USER_ORDERS)
        players.append({**views.user_view(user_id, user), **_matched(how),
                        "orders": [views.order_summary(o, user, now) for o in latest]})
    return {"q": query.text, "orders": orders, "refunds": refunds, "users": players,
            "count": len(orders) + len(refunds) + len(players)}
