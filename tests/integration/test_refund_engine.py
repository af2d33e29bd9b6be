"""Admin refunds end to end: the API, DynamoDB (moto) and WeChat (simulator) over HTTP."""
import concurrent.futures as cf

from chalicelib.adapters import repository as repo


def _create(env, order_no, amount, reason="测试退款", key=None, token=None):
    headers = {"Idempotency-Key": key} if key else None
    return env.api.post("/api/admin/pay/refunds", token or env.admin,
                        {"order_no": order_no, "amount": amount, "reason": reason}, headers=headers)


def test_full_refund_reaches_success_and_order_becomes_refunded(env):
    o = env.order(1)
    r = _create(env, o.order_no, o.actual_amount)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] in ("processing", "success") and body["status_label"] in ("退款中", "退款成功")
    refund = env.wait_status(body["refund_no"], "success")
    assert refund.user_received_account and refund.wechat_refund_id
    order = env.fresh(o.order_no)
    assert order.status == 4 and order.refunded_amount == o.actual_amount and order.refundable_amount == 0
    env.check_invariants(o.order_no)
    detail = env.api.get(f"/api/admin/orders/{o.order_no}", env.admin).json()
    assert detail["order"]["status_label"] == "已退款"
    assert detail["refunds"][0]["status_label"] == "退款成功"
    assert detail["refund_actions"]["can_refund"] is False


def test_partials_sum_exactly_to_total(env):
    o = env.order(11)
    parts = [o.actual_amount // 3, o.actual_amount // 3]
    parts.append(o.actual_amount - sum(parts))
    nos = []
    for p in parts:
        r = _create(env, o.order_no, p)
        assert r.status_code == 201, r.text
        nos.append(r.json()["refund_no"])
        env.wait_status(nos[-1], "success")
        env.check_invariants(o.order_no)
        assert env.fresh(o.order_no).status == (4 if len(nos) == 3 else 2)
    r = _create(env, o.order_no, 1)
    assert r.status_code == 409 and r.json()["code"] == "ORDER_NOT_REFUNDABLE"


def test_over_refund_and_bad_input_are_refused(env):
    o = env.order(2)
    r = _create(env, o.order_no, o.actual_amount + 1)
    assert r.status_code == 409 and r.json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE"
    for amount in (0, -5, 1.5, "100", None, True):
        r = _create(env, o.order_no, amount)
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", amount
    r = env.api.call("POST", "/api/admin/pay/refunds", env.admin, raw=b"{not json",
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"
    r = _create(env, "NO-SUCH-ORDER", 100)
    assert r.status_code == 404 and r.json()["code"] == "ORDER_NOT_FOUND"
    r = _create(env, env.order(8).order_no, 100)
    assert r.status_code == 409 and r.json()["code"] == "ORDER_NOT_REFUNDABLE"
    r = _create(env, env.order(12).order_no, 100)
    assert r.status_code == 409 and r.json()["code"] == "REFUND_WINDOW_EXPIRED"
    assert env.sim.create_calls() == 0
    env.check_invariants(o.order_no)


def test_idempotent_replay_and_changed_payload(env):
    o = env.order(13)
    first = _create(env, o.order_no, 500, key="key-1")
    assert first.status_code == 201
    again = _create(env, o.order_no, 500, key="key-1")
    assert again.status_code == 200 and again.json()["refund_no"] == first.json()["refund_no"]
    changed = _create(env, o.order_no, 600, key="key-1")
    assert changed.status_code == 409 and changed.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert env.sim.create_calls() == 1
    assert len(repo.refunds_of_order(o.order_no)) == 1
    # the same key from another operator is another request
    other = _create(env, o.order_no, 500, key="key-1", token=env.admin2)
    assert other.status_code == 201 and other.json()["refund_no"] != first.json()["refund_no"]


def test_concurrent_partials_never_exceed_what_was_paid(env):
    o = env.order(11)
    amount = o.actual_amount // 10 + 7  # 20 x this is about twice the balance
    with cf.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: _create(env, o.order_no, amount, reason=f"并发{i}"), range(20)))
    codes = [r.status_code for r in results]
    ok = [r for r in results if r.status_code == 201]
    assert set(codes) <= {201, 409}, codes
    assert all(r.json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE" for r in results if r.status_code == 409)
    assert len(ok) == o.actual_amount // amount  # exactly as many as fit
    # their notifications come together: those that lose their turn on the order are left to the poller
    nos = [r.json()["refund_no"] for r in ok]
    env.wait_deliveries(nos)
    assert env.stack.wait_api_idle(30)
    env.poll()
    for no in nos:
        env.wait_status(no, "success")
    order = env.fresh(o.order_no)
    assert order.refunded_amount == amount * len(ok) <= o.actual_amount
    env.check_invariants(o.order_no)
    assert env.sim.create_calls() == len(ok)


def test_preview_writes_nothing_and_matches_rules(env):
    o = env.order(1)
    r = env.api.post("/api/admin/pay/refunds/preview", env.admin, {"order_no": o.order_no, "amount": o.actual_amount})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["points"] == o.points_used and p["coupon"]["restore"] is True and p["cancel_shipment"] is True
    assert p["requires_approval"] is False and p["remaining_after"] == 0
    half = env.api.post("/api/admin/pay/refunds/preview", env.admin, {"order_no": o.order_no, "amount": o.actual_amount // 2}).json()
    assert half["points"] == o.points_used * (o.actual_amount // 2) // o.actual_amount
    assert half["coupon"]["restore"] is False and half["cancel_shipment"] is False
    assert repo.refunds_of_order(o.order_no) == [] and env.sim.create_calls() == 0
    signed = env.api.post("/api/admin/pay/refunds/preview", env.admin, {"order_no": env.order(3).order_no, "amount": 100}).json()
    assert signed["requires_approval"] is True and signed["resulting_status"] == "pending_review"


def test_signed_order_needs_review(env):
    o = env.order(3)
    r = _create(env, o.order_no, o.actual_amount)
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "pending_review" and body["requires_manual_review"] is True
    assert env.sim.create_calls() == 0
    order = env.fresh(o.order_no)
    assert order.reserved_amount == 0 and order.requested_amount == o.actual_amount
    env.check_invariants(o.order_no)


def test_refund_detail_has_event_history_and_list_filters(env):
    o = env.order(14)
    no = _create(env, o.order_no, 300).json()["refund_no"]
    env.wait_status(no, "success")
    d = env.api.get(f"/api/admin/pay/refunds/{no}", env.admin).json()
    assert [e["to"] for e in d["events"]][:1] == ["submitted"] and d["events"][-1]["to"] == "success"
    assert any(e["actor"] == "wechat" for e in d["events"])
    listed = env.api.get("/api/admin/pay/refunds?status=success", env.admin).json()["items"]
    assert [x["refund_no"] for x in listed] == [no]
    by_order = env.api.get(f"/api/admin/pay/refunds?order_no={o.order_no}", env.admin).json()["items"]
    assert by_order[0]["refund_no"] == no
    assert env.api.get("/api/admin/pay/refunds?status=bogus", env.admin).status_code == 400
    assert env.api.get("/api/admin/pay/refunds/NOPE", env.admin).json()["code"] == "REFUND_NOT_FOUND"
    assert env.api.get("/api/admin/pay/refunds/bad|no", env.admin).status_code in (400, 404)


def test_notifications_of_many_refunds_of_one_order_at_once_are_all_answered_and_all_settle(env):
    """A hot order: WeChat's notifications of ten refunds of one order arrive together. Each is
    acknowledged (none answered 5xx for WeChat to send again); those that lost their turn on the
    order are settled by the next poll, each in its own place in the order's refunded total."""
    import threading

    o = env.order(11)
    env.sim.configure(drop_notifications=True)
    nos = [_create(env, o.order_no, 100 * (k + 1)).json()["refund_no"] for k in range(10)]
    for no in nos:
        env.wait_for(lambda no=no: env.sim.refund(no)["status"] == "SUCCESS")
    url = env.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    together = threading.Barrier(len(nos))

    def deliver(no):
        together.wait()
        return env.sim.redeliver(no, url)

    with cf.ThreadPoolExecutor(len(nos)) as pool:
        answers = list(pool.map(deliver, nos))
    assert answers == [204] * len(nos)
    assert env.stack.wait_api_idle(30)
    env.poll()
    refunds = sorted((repo.get_refund(no) for no in nos), key=lambda r: r.cumulative_refunded)
    assert [r.status for r in refunds] == ["success"] * len(nos)
    totals = [r.cumulative_refunded for r in refunds]
    assert totals[-1] == sum(100 * (k + 1) for k in range(10)) == env.fresh(o.order_no).refunded_amount
    assert all(b - a == r.amount for a, b, r in zip([0] + totals, totals, refunds))  # no two share a place
    assert env.drain_restorations() == len(nos)
    env.check_invariants(o.order_no)
