"""The order list tells the truth about money: 退款中 (reserved), what can really be refunded now
(0 past WeChat's one-year limit, with the reason) and a Beijing day range filter."""
from __future__ import annotations

from chalicelib.domain import clock


def _items(env, query: str = "") -> list[dict]:
    items, cursor = [], None
    while True:
        r = env.api.get(f"/api/admin/orders?limit=7{query}" + (f"&cursor={cursor}" if cursor else ""), env.admin)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


def test_year_old_order_shows_nothing_refundable_with_the_reason(env):
    by_no = {o["order_no"]: o for o in _items(env)}
    old = by_no[env.order(12).order_no]
    assert old["refundable_amount"] == 2900 and old["refundable_now"] == 0 and old["refundable_now_yuan"] == "0.00"
    assert old["refund_blocked"]["code"] == "REFUND_WINDOW_EXPIRED" and "365" in old["refund_blocked"]["message"]
    fresh = by_no[env.order(1).order_no]
    assert fresh["refundable_now"] == fresh["refundable_amount"] > 0 and fresh["refund_blocked"] is None
    cancelled = by_no[env.order(8).order_no]
    assert cancelled["refundable_now"] == 0 and cancelled["refund_blocked"]["code"] == "ORDER_NOT_REFUNDABLE"


def test_money_in_flight_is_shown(env):
    env.sim.configure(drop_notifications=True)
    order = env.order(2)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": 300})
    assert r.status_code == 201, r.text
    listed = {o["order_no"]: o for o in _items(env)}[order.order_no]
    assert (listed["reserved_amount"], listed["reserved_amount_yuan"]) == (300, "3.00")
    assert listed["refundable_now"] == order.refundable_amount - 300


def test_day_range_filter_on_every_index(env):
    every = _items(env)
    day = clock.beijing_day_of(every[len(every) // 2]["created_at"])
    expected = {o["order_no"] for o in every if clock.beijing_day_of(o["created_at"]) == day}
    assert expected and len(expected) < len(every)
    assert {o["order_no"] for o in _items(env, f"&from={day}&to={day}")} == expected
    paid = {o["order_no"] for o in every if o["status"] == 2 and clock.beijing_day_of(o["created_at"]) == day}
    assert {o["order_no"] for o in _items(env, f"&from={day}&status=2")} == paid
    u = every[len(every) // 2]["user"]["user_id"]
    mine = {o["order_no"] for o in every if o["user"]["user_id"] == u and clock.beijing_day_of(o["created_at"]) == day}
    assert {o["order_no"] for o in _items(env, f"&to={day}&user_id={u}")} == mine
    r = env.api.get("/api/admin/orders?from=2026-02-30", env.admin)
    assert r.status_code == 400 and r.json()["details"]["field"] == "from"
