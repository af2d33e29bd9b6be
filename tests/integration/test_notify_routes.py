"""WeChat notifications reach the service only verified, fresh, of the right type, once."""

import requests

from wechatpay_sim.crypto import signed_headers


def _refund_url(env):
    return f"{env.api.base_url}/api/pay/wechat/notify/refund"


def _payment_url(env):
    return f"{env.api.base_url}/api/pay/wechat/notify/payment"


def _settled_refund(env, n=14, amount=300):
    o = env.order(n)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": o.order_no, "amount": amount})
    no = r.json()["refund_no"]
    env.wait_status(no, "success")
    return o, no


def _send(env, note, url=None, *, body=None, drop=(), key=None, timestamp=None):
    """POST ``note`` signed as WeChat would; ``body`` replaces what is sent after signing (tampering)."""
    headers = signed_headers(key or env.sim.keyset.platform_private_key, env.sim.platform_serial(), note.body,
                             timestamp=timestamp)
    body = note.body if body is None else body
    for name in drop:
        headers.pop(name)
    headers["Content-Type"] = "application/json"
    return requests.post(url or note.url, data=body, headers=headers, timeout=10)


def test_duplicate_refund_notification_changes_nothing(env):
    o, no = _settled_refund(env)
    before = env.refund(no)
    assert env.sim.redeliver(no) == 204
    assert env.sim.redeliver(no) == 204
    after = env.refund(no)
    assert len(after.events) == len(before.events)
    assert env.fresh(o.order_no).refunded_amount == 300
    env.check_invariants(o.order_no)


def test_hostile_notifications_are_refused_and_change_nothing(env):
    o, no = env.refund_without_notification(14, 300)
    assert env.refund(no).status == "processing"
    url = _refund_url(env)
    assert env.sim.send_bad_signature_notification(no, url) == 401  # forged
    assert env.sim.send_stale_notification(no, 600, url) == 401  # stale
    assert env.sim.send_stale_notification(no, -600, url) == 401  # from the future
    assert env.sim.send_probe(url) == 401  # SIGNTEST probe
    note = env.sim.notifier.last_for_refund(no) or env.sim._notification_for(no, url)
    tampered = note.body.replace(b'"summary":"', b'"summary":"x')
    assert _send(env, note, body=tampered).status_code == 401
    for header in ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial"):
        assert _send(env, note, drop=(header,)).status_code == 401, header
    wrong_route = _send(env, note, url=_payment_url(env))
    assert wrong_route.status_code == 400 and wrong_route.json()["code"] == "FAIL"
    assert env.refund(no).status == "processing"
    assert env.fresh(o.order_no).refunded_amount == 0
    # the genuine one still works, once
    assert _send(env, note).status_code == 204
    assert env.refund(no).status == "success"
    assert _send(env, note).status_code == 204  # replayed: no second effect
    assert env.fresh(o.order_no).refunded_amount == 300
    env.check_invariants(o.order_no)


def test_notification_with_wrong_amount_is_refused(env):
    o, no = env.refund_without_notification(15, 300)
    from wechatpay_sim.notifier import Notification

    resource = env.sim.store.get(no).to_resource(env.sim.keyset.mchid)
    resource["amount"]["refund"] = 999
    eid, body = env.sim.notifier.envelope("REFUND.SUCCESS", "退款成功", "refund", resource)
    r = _send(env, Notification(eid, "REFUND.SUCCESS", _refund_url(env), body))
    assert r.status_code == 400 and r.json()["code"] == "FAIL"
    assert env.refund(no).status == "processing"


def test_payment_notification_marks_pending_order_paid_once(env):
    o = env.order(7)
    assert o.status == 1
    url = _payment_url(env)
    for _ in range(3):
        assert env.sim.notify_payment(o.order_no, url) == 204
    paid = env.fresh(o.order_no)
    assert paid.status == 2 and paid.payment.transaction_id and paid.payment.paid_at
    assert paid.refundable_amount == paid.actual_amount
    env.check_invariants(o.order_no)
    # now refundable like any paid order
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": o.order_no, "amount": 100})
    assert r.status_code == 201


def test_payment_notification_for_an_unknown_order_is_recorded_for_a_person(env):
    """Money WeChat took for an order we do not know is never dropped: a task keeps what WeChat
    said, and WeChat is acknowledged once it is stored (a redelivery adds nothing)."""
    env.sim.register_transaction(12345, "NOT-OUR-ORDER")
    for _ in range(2):
        assert env.sim.notify_payment("NOT-OUR-ORDER", _payment_url(env), retry=False) == 204
    tasks = env.api.get("/api/admin/manual-tasks?type=payment_mismatch", env.admin).json()["items"]
    assert [(t["order_no"], t["type_label"]) for t in tasks] == [("NOT-OUR-ORDER", "支付通知与订单不符")]
    assert "123.45" in tasks[0]["action"]
    assert env.fresh(env.order(7).order_no).status == 1
