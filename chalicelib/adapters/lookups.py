"""The search box's reads: every kind of number staff are given, looked up by key or through a
sparse index (never a Scan). Each lookup is exact; ``domain.search`` says what is normalised.

| typed                      | read                                             |
|----------------------------|--------------------------------------------------|
| order number               | GetItem orders                                   |
| 微信支付单号 transaction_id | Query orders.by_transaction (keys.transaction_key) |
| 商户退款单号 refund_no       | GetItem payment_refunds                          |
| 微信退款单号                 | Query payment_refunds.by_wechat_refund_id        |
| player id                  | GetItem users, and orders.by_user (their orders) |
| nickname                   | Query users.by_nickname (keys.nickname_key)       |
| phone                      | Query users.by_phone (keys.phone_key: a keyed hash) |
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..domain.search import SearchQuery
from . import keys, models
from .models import Order, Refund, User

MAX_HITS = 20  # per kind: an exact key matches a handful at most; a common nickname is capped


@dataclass
class Found:
    orders: dict = field(default_factory=dict)  # order_no -> (Order, how it matched)
    refunds: dict = field(default_factory=dict)  # refund_no -> (Refund, how it matched)
    users: dict = field(default_factory=dict)  # user_id -> (User | None, how it matched)


def _keys_of(index, hash_key, key_name: str) -> list[str]:
    return [getattr(item, key_name) for item in index.query(hash_key, limit=MAX_HITS)][:MAX_HITS]


def find(query: SearchQuery) -> Found:
    models.bind()
    found = Found()
    order_nos: dict[str, str] = {}
    refund_nos: dict[str, str] = {}
    user_ids: dict[str, str] = {}
    for number in query.numbers:
        order_nos.setdefault(number, "order_no")
        refund_nos.setdefault(number, "refund_no")
        user_ids.setdefault(number, "user_id")
    if query.numbers:
        for order_no in _keys_of(Order.by_transaction, keys.transaction_key(query.text), "order_no"):
            order_nos.setdefault(order_no, "transaction_id")
        for number in query.numbers:
            for refund_no in _keys_of(Refund.by_wechat_refund_id, number, "refund_no"):
                refund_nos.setdefault(refund_no, "wechat_refund_id")
    if query.nickname:
        for user_id in _keys_of(User.by_nickname, keys.nickname_key(query.text), "user_id"):
            user_ids.setdefault(user_id, "nickname")
    if query.phone:
        for user_id in _keys_of(User.by_phone, keys.phone_key(query.phone), "user_id"):
            user_ids.setdefault(user_id, "phone")
    for order in Order.batch_get(list(order_nos)):
        found.orders[order.order_no] = (order, order_nos[order.order_no])
    for refund in Refund.batch_get(list(refund_nos)):
        found.refunds[refund.refund_no] = (refund, refund_nos[refund.refund_no])
    for user in User.batch_get(list(user_ids)):
        found.users[user.user_id] = (user, user_ids[user.user_id])
    for user_id, how in user_ids.items():
        # a player id with orders but no user record is still that player
        if user_id not in found.users and how == "user_id" and next(iter(Order.by_user.query(user_id, limit=1)), None):
            found.users[user_id] = (None, how)
    return found


def orders_of_user(user_id: str, limit: int) -> list[Order]:
    """A player's latest orders, newest first (one Query)."""
    models.bind()
    return list(Order.by_user.query(user_id, scan_index_forward=False, limit=limit))
