"""Every outcome WeChat Pay can give ends in a booked state that someone owns, through the running
stack (HTTP API, the simulator, the local AWS endpoint). GIVEN what WeChat answers, WHEN the
service hears it, THEN the order's balances stay right and a status, task or alarm says so."""
from __future__ import annotations

import json
import os

from chalicelib.adapters import repository as repo
from chalicelib.services import payments, poller
from chalicelib.domain import clock


def _payment_url(env):
    return env.stack.env["WECHAT_PAYMENT_NOTIFY_URL"]


def _tasks(env, task_type):
    return env.api.get(f"/api/admin/manual-tasks?type={task_type}", env.admin).json()["items"]


def _create(env, order_no, amount):
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order_no, "amount": amount})
    assert r.status_code == 201, r.text
    return r.json()


def _due_now(order_no):
    """Time passes: the order's payment check is due."""
    repo.schedule_pay_check(order_no, due_at=clock.iso(clock.now()), attempts=0)


# ---------------------------------------------------------------- payments


def test_a_lost_payment_notification_is_found_by_asking_wechat(env):
    o = env.order(7)  # pending; paid at WeChat, its notification never comes
    assert o.status == 1 and o.pay_check.startswith("pending#")
    _due_now(o.order_no)
    report = payments.poll_payments()
    assert (report.due, report.paid, report.results) == (1, 1, {o.order_no: "paid"})
    paid = env.fresh(o.order_no)
    assert paid.status == 2 and paid.payment.transaction_id and paid.pay_check is None
    assert paid.refundable_amount == paid.actual_amount
    env.check_invariants(o.order_no)
    assert payments.poll_payments().due == 0  # it left the index
    assert env.sim.notify_payment(o.order_no, _payment_url(env)) == 204  # the late notification: no effect
    assert env.fresh(o.order_no).payment.transaction_id == paid.payment.transaction_id


def test_an_unpaid_order_is_asked_about_again_later_and_left_alone(env):
    o = env.order(7)
    env.sim.register_transaction(o.actual_amount, "GBUNPAID0001", state="NOTPAY")
    from chalicelib.adapters.models import Order

    repo.update(Order(o.order_no), [Order.payment.out_trade_no.set("GBUNPAID0001")])
    _due_now(o.order_no)
    report = payments.poll_payments()
    assert (report.due, report.unpaid, report.paid) == (1, 1, 0)
    after = env.fresh(o.order_no)
    assert after.status == 1 and after.pay_check.startswith("pending#") and after.pay_check_due_at > clock.iso(clock.now())
    assert after.pay_check_attempts == 1
    assert payments.poll_payments().due == 0  # not due again yet


def test_a_payment_for_a_cancelled_order_is_recorded_and_refunded_through_the_engine(env):
    cancelled = next(o for o in (env.order(n) for n in range(1, 41) if n in _seeded(env)) if o.status == 3)
    amount = cancelled.actual_amount
    env.sim.pay(cancelled.order_no, amount, url=_payment_url(env))
    order = env.wait_for(lambda: (x := env.fresh(cancelled.order_no)).paid_after_cancel and x)
    assert order.status == 3 and order.payment.transaction_id and order.refundable_amount == amount
    env.check_invariants(cancelled.order_no)
    [task] = _tasks(env, "paid_after_cancel")
    assert task["order_no"] == cancelled.order_no and task["type_label"] == "已取消订单收到付款"
    detail = env.api.get(f"/api/admin/orders/{cancelled.order_no}", env.admin).json()
    assert detail["refund_actions"]["can_refund"] and detail["refund_actions"]["max_refundable"] == amount
    too_much = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": cancelled.order_no, "amount": amount + 1})
    assert too_much.status_code == 409 and too_much.json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE"
    body = _create(env, cancelled.order_no, amount)
    refund = env.wait_status(body["refund_no"], "success")
    assert env.drain_restorations() == 1
    refund = env.refund(refund.refund_no)
    assert refund.restoration["points"] == 0 and not refund.restoration["manual_tasks"]
    env.check_invariants(cancelled.order_no)
    # a player cannot apply on it
    r = env.api.post(f"/api/app/orders/{cancelled.order_no}/refund/apply", env.user(cancelled.user_id),
                     {"amount": 1, "reason": "取消后付款"})
    assert r.status_code == 409


def _seeded(env):
    from devstack.seed import SEEDED_ORDERS

    return SEEDED_ORDERS


def test_a_payment_that_does_not_match_is_recorded_and_acknowledged(env):
    o = env.order(7)
    url = _payment_url(env)
    assert env.sim.notify_payment(o.order_no, url, total=o.actual_amount - 1) == 204
    assert env.sim.notify_payment(o.order_no, url, appid="wx_someone_else") == 204
    tasks = _tasks(env, "payment_mismatch")
    assert len(tasks) == 1  # one payment (one transaction id), recorded once
    assert "不符" in tasks[0]["action"]
    order = env.fresh(o.order_no)
    assert order.status == 1 and order.refundable_amount == 0  # not paid by a payment that does not match


# ---------------------------------------------------------------- refunds


def test_a_configuration_error_holds_the_refund_until_it_is_fixed(env, capsys):
    o = env.order(14)
    env.sim.push_scenario("SIGN_ERROR", op="create")
    body = _create(env, o.order_no, 300)
    assert body["status"] == "submitted" and body["failure_code"] == "SIGN_ERROR"
    assert env.fresh(o.order_no).reserved_amount == 300
    env.check_invariants(o.order_no)
    alarms = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"WechatConfigErrors"' in x]
    assert alarms and alarms[0]["WechatConfigErrors"] == 1
    # fixed: the poller finds WeChat never got it and sends it again, same refund_no
    report = poller.poll()
    assert report.resubmitted == 1
    env.wait_status(body["refund_no"], "success")
    env.check_invariants(o.order_no)


def test_two_refunds_of_one_order_within_a_minute_wait_and_go_through(env):
    o = env.order(11)
    env.sim.configure(refund_interval_seconds=3600)
    first = _create(env, o.order_no, 100)
    second = _create(env, o.order_no, 100)
    assert second["status"] == "submitted" and env.sim.refund(second["refund_no"]) is None
    events = env.api.get(f"/api/admin/pay/refunds/{second['refund_no']}", env.admin).json()["events"]
    assert "稍后重试" in events[-1]["detail"]
    env.sim.configure(refund_interval_seconds=0)  # the minute has passed
    env.wait_status(first["refund_no"], "success")
    poller.poll()
    env.wait_status(second["refund_no"], "success")
    env.check_invariants(o.order_no)


def test_wechat_may_answer_the_create_call_with_a_final_status(env):
    o = env.order(13)
    env.sim.push_scenario("IMMEDIATE_SUCCESS", op="create")
    ok = _create(env, o.order_no, 100)
    assert ok["status"] == "success"
    env.sim.push_scenario("IMMEDIATE_CLOSED", op="create")
    closed = _create(env, o.order_no, 100)
    assert closed["status"] == "closed"
    order = env.fresh(o.order_no)
    assert order.refunded_amount == 100 and order.reserved_amount == 0
    env.check_invariants(o.order_no)


def test_a_notification_for_a_refund_never_made_is_booked_or_kept_for_a_person(env):
    """A refund made on the merchant platform is booked against our order (services/external.py,
    tests/integration/test_books.py); one on an order we do not have is kept in a task, once."""
    o = env.order(13)
    url = env.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    result = env.sim.foreign_refund(o.order_no, 500, out_refund_no="MERCHANTPLATFORM0001", url=url)
    assert result["notified"] == 204
    booked = env.refund("MERCHANTPLATFORM0001")
    assert booked.origin == "external" and booked.status == "success"
    assert env.fresh(o.order_no).refunded_amount == 500 and _tasks(env, "unknown_refund") == []
    env.check_invariants(o.order_no)
    env.sim.register_transaction(800, "GBNOTOURS0002")
    result = env.sim.foreign_refund("GBNOTOURS0002", 800, out_refund_no="MERCHANTPLATFORM0002", url=url)
    assert result["notified"] == 204
    [task] = _tasks(env, "unknown_refund")
    assert task["refund_no"] == "MERCHANTPLATFORM0002" and task["order_no"] == "GBNOTOURS0002"
    assert "8.00" in task["action"]
    assert env.sim.redeliver("MERCHANTPLATFORM0002", url) == 204
    assert len(_tasks(env, "unknown_refund")) == 1


def test_notifications_in_either_key_mode_are_accepted_during_a_switch(env, tmp_path, monkeypatch):
    monkeypatch.setenv("WECHAT_CERT_DIR", str(tmp_path / "platform-certs"))
    o = env.order(11)
    nos = []
    # one refund's notification signed with each key in turn (set per refund, so no other
    # delivery or retry on a loaded machine can shift which key signs which)
    for mode in ("public_key", "certificate"):
        env.sim.configure(key_mode="both", notify_key_mode=mode)
        nos.append(_create(env, o.order_no, 100)["refund_no"])
        env.wait_status(nos[-1], "success")
    delivered = env.wait_deliveries(nos, at_least=2)
    assert {n["serial"] for n in delivered} == {env.sim.keyset.public_key_id, env.sim.keyset.platform_cert_serial}
    assert all(n["ok"] for n in delivered)  # each accepted, whichever key signed it
    env.check_invariants(o.order_no)


def _platform_cert_cache(monkeypatch):
    """As deployed: no WECHAT_CERT_DIR, certificates kept in the temp dir (Lambda: /tmp), starting
    empty, and a gateway built anew."""
    import shutil

    from chalicelib import config
    from chalicelib.adapters.wechat.gateway import reset_gateway
    from chalicelib.adapters.wechat.keys import cert_cache_dir

    monkeypatch.delenv("WECHAT_CERT_DIR", raising=False)
    folder = cert_cache_dir(config.wechat_settings())
    shutil.rmtree(folder, ignore_errors=True)
    reset_gateway()
    return folder


def test_a_certificate_signed_notification_is_verified_as_deployed_and_the_certificate_fetched_once(env, monkeypatch):
    """The template sets the WeChat Pay public key and no certificate folder. During a key-mode
    switch WeChat signs notifications with its platform certificate: it is downloaded from WeChat
    once, kept in the temp dir, and every later notification (a new gateway too) is verified
    without asking again."""
    folder = _platform_cert_cache(monkeypatch)
    env.sim.configure(key_mode="both", notify_key_mode="certificate")
    o = env.order(11)
    nos = [_create(env, o.order_no, 100)["refund_no"] for _ in range(2)]
    delivered = env.wait_deliveries(nos, at_least=2)
    assert {n["serial"] for n in delivered} == {env.sim.keyset.platform_cert_serial}
    assert all(n["ok"] for n in delivered)
    # both notifications wait on the one download and reach the order together: one settles it,
    # the other is acknowledged and left to the poller (a query, signed with the public key)
    if any(env.refund(no).status != "success" for no in nos):
        env.poll()
    for no in nos:
        env.wait_status(no, "success")
    assert env.sim.certificate_calls() == 1
    assert sorted(os.listdir(folder)) == [f"{env.sim.keyset.platform_cert_serial}.pem"]
    from chalicelib.adapters.wechat.gateway import reset_gateway

    reset_gateway()  # a gateway built anew (rotated settings, another handler) reads the kept file
    third = _create(env, o.order_no, 100)["refund_no"]
    env.wait_status(third, "success")
    assert env.sim.certificate_calls() == 1
    env.check_invariants(o.order_no)


def test_configured_platform_certificates_are_used_without_asking_wechat(env, monkeypatch):
    _platform_cert_cache(monkeypatch)
    monkeypatch.setenv("WECHAT_PLATFORM_CERTS_FILE", env.sim.keyset.path("platform_cert.pem"))  # as from SSM
    env.sim.configure(key_mode="both", notify_key_mode="certificate")
    o = env.order(11)
    no = _create(env, o.order_no, 100)["refund_no"]
    env.wait_status(no, "success")
    assert env.sim.certificate_calls() == 0


# ---------------------------------------------------------------- tasks bound to money


def test_a_stuck_refunds_task_cannot_be_closed_by_hand_and_closes_itself_when_the_money_settles(env):
    """A task is a claim on money: support may not close a finance task, nobody may close it while
    the refund is stuck, and the write that settles the refund closes it (one task per cause)."""
    env.sim.queue_outcome("ABNORMAL")
    order = env.order(15)
    body = _create(env, order.order_no, 400)
    env.wait_status(body["refund_no"], "abnormal")
    [task] = _tasks(env, "refund_abnormal")
    assert task["task_id"] == f"refund_abnormal.{body['refund_no']}"
    assert repo.get_refund(body["refund_no"]).open_tasks == {task["task_id"]}

    support = env.api.post(f"/api/admin/manual-tasks/{task['task_id']}/done", env.staff("support", "sam"),
                           {"note": "已联系用户"})
    assert support.status_code == 403 and support.json()["code"] == "PERMISSION_DENIED"
    finance = env.api.post(f"/api/admin/manual-tasks/{task['task_id']}/done", env.staff("finance", "fay"),
                           {"note": "先关掉"})
    assert finance.status_code == 409 and finance.json()["code"] == "TASK_MONEY_UNSETTLED"
    assert finance.json()["details"]["status"] == "abnormal" and "自动关闭" in finance.json()["message"]
    assert repo.get_task(task["task_id"]).status == "open"

    resolved = env.api.post(f"/api/admin/pay/refunds/{body['refund_no']}/abnormal-refund", env.admin,
                            {"type": "MERCHANT_BANK_CARD"})
    assert resolved.status_code == 200, resolved.text
    env.wait_status(body["refund_no"], "offline_pending")
    payout = env.api.post(f"/api/admin/pay/refunds/{body['refund_no']}/offline-payout", env.admin,
                          {"channel": "bank_transfer", "reference": "TRX-1"})
    assert payout.status_code == 200, payout.text
    done = repo.get_task(task["task_id"])
    assert done.status == "done" and done.done_by == "admin:ops-1" and "TRX-1" in done.note
    assert [e.what for e in done.history] == ["opened", "settled"]
    offline = repo.get_task(f"offline_payout.{body['refund_no']}")
    assert offline.status == "done" and [e.what for e in offline.history] == ["opened", "settled"]
    assert repo.get_refund(body["refund_no"]).open_tasks is None
    assert _tasks(env, "refund_abnormal") == [] and _tasks(env, "offline_payout") == []
