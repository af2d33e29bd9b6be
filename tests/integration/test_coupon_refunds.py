"""A refund of an order a coupon paid part of, through the running stack: WeChat pays the payer's
cash share (amount.payer_refund) and gives the rest back to the coupon; whichever answer tells it
(the create answer, a notification, a query) is stored and shown in the refund's views, the
activity log and its CSV."""
from __future__ import annotations

import csv
import io

from chalicelib.services import poller

# seeded order 13: 70.00 元, of which the payer paid 56.00 and a merchant-funded coupon 14.00 (20%)
ORDER, TOTAL, PAYER_TOTAL = 13, 7000, 5600


def _create(env, order_no: str, amount: int, token=None) -> dict:
    r = env.api.post("/api/admin/pay/refunds", token or env.admin, {"order_no": order_no, "amount": amount})
    assert r.status_code == 201, r.text
    return r.json()


def _split(body: dict) -> tuple:
    return body["payer_refund"], body["payer_refund_yuan"], body["coupon_refund"], body["coupon_refund_yuan"]


def test_the_create_answer_tells_the_cash_share_and_every_view_shows_it(env):
    order = env.coupon_paid(ORDER, PAYER_TOTAL)
    body = _create(env, order.order_no, 1000)
    # WeChat's answer to the create call already names the split: 1000 * 20% back to the coupon
    assert body["status"] in ("processing", "success")
    assert _split(body) == (800, "8.00", 200, "2.00")
    refund_no = body["refund_no"]
    env.wait_status(refund_no, "success")
    assert env.refund(refund_no).payer_refund == 800
    assert env.sim.refund(refund_no)["amount"]["payer_refund"] == 800  # what WeChat holds
    detail = env.api.get(f"/api/admin/pay/refunds/{refund_no}", env.admin).json()
    assert _split(detail) == (800, "8.00", 200, "2.00") and detail["amount"] == 1000
    [listed] = env.api.get(f"/api/admin/pay/refunds?order_no={order.order_no}", env.admin).json()["items"]
    assert _split(listed) == (800, "8.00", 200, "2.00")
    [on_order] = env.api.get(f"/api/admin/orders/{order.order_no}", env.admin).json()["refunds"]
    assert _split(on_order) == (800, "8.00", 200, "2.00")
    env.check_invariants(order.order_no)


def test_a_notification_or_a_query_tells_it_when_the_create_answer_was_lost(env):
    order = env.coupon_paid(ORDER, PAYER_TOTAL)
    # accepted, but the answer is lost: the notification brings the split
    env.sim.push_scenario("ACCEPT_THEN_ERROR")
    notified = _create(env, order.order_no, 500)
    assert notified["status"] == "submitted" and notified["payer_refund"] is None  # not known yet
    assert env.wait_status(notified["refund_no"], "success").payer_refund == 400
    # accepted, answer lost and no notification: the poller's query brings it
    env.sim.configure(drop_notifications=True)
    env.sim.push_scenario("ACCEPT_THEN_ERROR")
    queried = _create(env, order.order_no, 1500)
    env.wait_for(lambda: env.sim.refund(queried["refund_no"])["status"] == "SUCCESS")
    assert env.refund(queried["refund_no"]).payer_refund is None
    assert poller.poll().changed == 1
    refund = env.refund(queried["refund_no"])
    assert (refund.status, refund.payer_refund) == ("success", 1200)  # 1500 - 1400 * 1500 // 7000
    detail = env.api.get(f"/api/admin/pay/refunds/{queried['refund_no']}", env.admin).json()
    assert _split(detail) == (1200, "12.00", 300, "3.00")
    env.check_invariants(order.order_no)


def test_an_order_paid_in_cash_alone_shows_no_coupon_share(env):
    body = _create(env, env.order(14).order_no, 300)
    env.wait_status(body["refund_no"], "success")
    detail = env.api.get(f"/api/admin/pay/refunds/{body['refund_no']}", env.admin).json()
    assert _split(detail) == (300, "3.00", 0, "0.00")


def test_the_activity_log_and_its_csv_show_the_split(env):
    order = env.coupon_paid(ORDER, PAYER_TOTAL)
    alice, finance = env.staff("admin", "alice"), env.staff("finance", "fay")
    coupon = _create(env, order.order_no, 1000, alice)["refund_no"]
    env.sim.push_scenario("LOSE_REQUEST")  # never reached WeChat: nothing told
    lost = _create(env, env.order(14).order_no, 300, alice)["refund_no"]
    env.wait_status(coupon, "success")
    items = env.api.get("/api/admin/activity?operator=alice", finance).json()["items"]
    by_no = {i["refund_no"]: i for i in items}
    assert _split(by_no[coupon]) == (800, "8.00", 200, "2.00")
    assert _split(by_no[lost]) == (None, None, None, None)
    export = env.api.get("/api/admin/activity?operator=alice&format=csv", finance)
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8").lstrip("\ufeff"))))
    split = {r["退款单号"]: (r["金额（元）"], r["其中现金（元）"], r["其中优惠券（元）"]) for r in rows}
    assert split == {coupon: ("10.00", "8.00", "2.00"), lost: ("3.00", "", "")}
