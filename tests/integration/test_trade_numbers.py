"""Merchant order numbers (out_trade_no) through the running stack: one WeChat does not take
(6-32 of [A-Za-z0-9_-|*], chalicelib/domain/trade_numbers.py) is refused with its reason on every
path that would send or accept it, and is never sent to WeChat."""
from __future__ import annotations

import requests

from chalicelib.adapters import repository as repo
from chalicelib.adapters.models import Order
from chalicelib.domain import clock
from chalicelib.services import payments
from wechatpay_sim.crypto import signed_headers
from wechatpay_sim.notifier import Notification


def _tasks(env, task_type=None):
    query = f"?type={task_type}" if task_type else ""
    return env.api.get(f"/api/admin/manual-tasks{query}", env.admin).json()["items"]


def _renumber(order_no: str, out_trade_no: str) -> None:
    """The order's payment now names ``out_trade_no`` (data from elsewhere, a migration, a bug)."""
    repo.update(Order(order_no), [Order.payment.out_trade_no.set(out_trade_no)])


def _post_signed(env, event_type: str, resource: dict, url: str) -> requests.Response:
    """A notification WeChat's keys sign, carrying ``resource``."""
    original = "refund" if event_type.startswith("REFUND.") else "transaction"
    event_id, body = env.sim.notifier.envelope(event_type, "通知", original, resource)
    note = Notification(event_id, event_type, url, body)
    headers = signed_headers(env.sim.keyset.platform_private_key, env.sim.platform_serial(), note.body)
    headers["Content-Type"] = "application/json"
    return requests.post(url, data=note.body, headers=headers, timeout=10)


def test_a_refund_of_an_order_whose_number_wechat_never_takes_is_refused_and_never_sent(env):
    o = env.order(14)
    _renumber(o.order_no, "GB14")  # four characters: API v3 takes 6-32
    calls = env.sim.create_calls()
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": o.order_no, "amount": 100})
    assert r.status_code == 409 and r.json()["code"] == "ORDER_NOT_REFUNDABLE"
    assert "GB14" in r.json()["message"] and "6-32 位" in r.json()["message"]
    assert r.json()["details"] == {"out_trade_no": "GB14"}
    detail = env.api.get(f"/api/admin/orders/{o.order_no}", env.admin).json()
    assert not detail["refund_actions"]["can_refund"]
    assert detail["refund_actions"]["why_not"]["code"] == "ORDER_NOT_REFUNDABLE"
    assert env.sim.create_calls() == calls  # nothing reached WeChat
    assert env.fresh(o.order_no).reserved_amount == 0
    env.check_invariants(o.order_no)


def test_a_payment_check_never_asks_about_a_number_wechat_never_takes(env):
    o = env.order(7)  # pending: the poller would ask WeChat about it
    _renumber(o.order_no, "GB 0007")
    repo.schedule_pay_check(o.order_no, due_at=clock.iso(clock.now()), attempts=0)
    env.sim.push_scenario("SYSTEM_ERROR", op="query_payment")  # consumed by the first query that arrives
    report = payments.poll_payments()
    assert (report.due, report.invalid, report.errors, report.paid) == (1, 1, 0, 0)
    assert report.results == {o.order_no: "invalid_out_trade_no"}
    assert [s["kind"] for s in env.sim.scenarios()["queue"]] == ["SYSTEM_ERROR"]  # never asked
    assert env.fresh(o.order_no).pay_check is None  # and not asked again
    assert payments.poll_payments().due == 0


def test_a_payment_notification_naming_a_number_wechat_never_takes_is_refused(env):
    url = env.stack.env["WECHAT_PAYMENT_NOTIFY_URL"]
    env.sim.register_transaction(100, "SHORT")  # the simulator, like API v2, takes 1-32 characters
    assert env.sim.notify_payment("SHORT", url, retry=False) == 401
    txn = env.sim.store.transaction_object("SHORT")
    r = _post_signed(env, "TRANSACTION.SUCCESS", txn.payment_resource(env.sim.keyset.appid, env.sim.keyset.mchid,
                                                                      "SUCCESS"), url)
    assert r.status_code == 401 and "out_trade_no" in r.json()["message"]
    assert _tasks(env) == []  # not one of ours: nothing recorded against an order


def test_a_refund_notification_naming_a_number_wechat_never_takes_is_refused(env):
    o, no = env.refund_without_notification(14, 300)
    resource = env.sim.store.get(no).to_resource(env.sim.keyset.mchid)
    url = env.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    for number in ("GB14", "GB@0000014", "G" * 33):
        r = _post_signed(env, "REFUND.SUCCESS", {**resource, "out_trade_no": number}, url)
        assert r.status_code == 401 and "out_trade_no" in r.json()["message"], number
    assert env.refund(no).status == "processing" and env.fresh(o.order_no).refunded_amount == 0
    assert _post_signed(env, "REFUND.SUCCESS", resource, url).status_code == 204  # the true one
    assert env.refund(no).status == "success"
    env.check_invariants(o.order_no)


def test_a_bill_line_of_an_api_v2_order_with_a_short_number_does_not_stop_reconciliation(env):
    """The bill covers the whole merchant number: an older app's v2 order may have 1-5 characters.
    It is WeChat's line, not ours: the run reads it and reports it, and does not fail."""
    env.sim.configure(bill_ready_hour=None)
    env.sim.register_transaction(1200, "V2OLD")
    today = clock.beijing_day(clock.now())
    run = env.api.post("/api/admin/reconciliations", env.admin, {"bill_date": today})
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "done", run.json()
    listed = env.api.get(f"/api/admin/reconciliations/{today}/discrepancies?limit=100", env.admin).json()["items"]
    assert "V2OLD" in {d["order_no"] for d in listed}
