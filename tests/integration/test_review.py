"""Player applications and admin review; manual tasks and their CSV."""
import concurrent.futures as cf
import csv
import io

from chalicelib.adapters.models import ManualTask


def _apply(env, user, order_no, amount, reason="不想要了", key=None):
    headers = {"Idempotency-Key": key} if key else None
    return env.api.post(f"/api/app/orders/{order_no}/refund/apply", env.user(user),
                        {"amount": amount, "reason": reason}, headers=headers)


def test_player_applies_admin_approves_and_it_succeeds(env):
    o = env.order(1)  # u1001's
    r = _apply(env, "u1001", o.order_no, 1000)
    assert r.status_code == 201, r.text
    no = r.json()["refund_no"]
    assert r.json()["status"] == "pending_review" and r.json()["status_label"] == "待审核"
    assert env.sim.create_calls() == 0
    env.check_invariants(o.order_no)
    queue = env.api.get("/api/admin/pay/refunds?status=pending_review&order=oldest", env.admin).json()["items"]
    assert [x["refund_no"] for x in queue] == [no]
    ok = env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin, {})
    assert ok.status_code == 200, ok.text
    env.wait_status(no, "success")
    env.check_invariants(o.order_no)
    mine = env.api.get(f"/api/app/orders/{o.order_no}/refunds", env.user("u1001")).json()["items"]
    assert mine[0]["status_label"] == "退款成功"
    assert env.fresh(o.order_no).open_application is None


def test_ownership_and_roles(env):
    o = env.order(1)
    assert _apply(env, "u1002", o.order_no, 100).json()["code"] == "ORDER_NOT_FOUND"
    assert env.api.get(f"/api/app/orders/{o.order_no}/refunds", env.user("u1002")).status_code == 404
    r = env.api.post(f"/api/app/orders/{o.order_no}/refund/apply", env.admin, {"amount": 1, "reason": "x"})
    assert r.status_code == 403
    assert env.api.get("/api/admin/pay/refunds?status=pending_review", env.user("u1001")).status_code == 403
    assert _apply(env, "u1001", o.order_no, 100, reason="").json()["code"] == "VALIDATION_ERROR"
    assert _apply(env, "u1001", o.order_no, 100, reason="长" * 201).json()["code"] == "VALIDATION_ERROR"


def test_one_open_application_and_balance_rules(env):
    o = env.order(1)
    assert _apply(env, "u1001", o.order_no, o.actual_amount + 1).json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE"
    assert _apply(env, "u1001", o.order_no, 500).status_code == 201
    r = _apply(env, "u1001", o.order_no, 100)
    assert r.status_code == 409 and r.json()["code"] == "REFUND_APPLICATION_PENDING"
    assert _apply(env, "u1003", env.order(8).order_no, 100).json()["code"] == "ORDER_NOT_REFUNDABLE"


def test_application_cannot_ask_what_open_reviews_already_ask(env):
    o = env.order(3)  # signed: an admin refund opens a review too
    admin = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": o.order_no, "amount": o.actual_amount - 100})
    assert admin.json()["status"] == "pending_review"
    r = _apply(env, "u1003", o.order_no, 101)
    assert r.status_code == 409 and r.json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE"
    assert _apply(env, "u1003", o.order_no, 100).status_code == 201
    env.check_invariants(o.order_no)


def test_double_approval_executes_once(env):
    o = env.order(1)
    no = _apply(env, "u1001", o.order_no, 800).json()["refund_no"]
    with cf.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda t: env.api.post(f"/api/admin/pay/refunds/{no}/approve", t, {}),
                                [env.admin, env.admin2]))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.text for r in results]
    assert [r.json()["code"] for r in results if r.status_code == 409] == ["INVALID_REFUND_STATE"]
    env.wait_status(no, "success")
    assert env.sim.create_calls() == 1
    env.check_invariants(o.order_no)


def test_reject_records_reason_and_blocks_approval(env):
    o = env.order(1)
    no = _apply(env, "u1001", o.order_no, 800).json()["refund_no"]
    assert env.api.post(f"/api/admin/pay/refunds/{no}/reject", env.admin, {}).json()["code"] == "VALIDATION_ERROR"
    r = env.api.post(f"/api/admin/pay/refunds/{no}/reject", env.admin, {"reason": "盲盒已拆封"})
    assert r.status_code == 200 and r.json()["status_label"] == "已拒绝"
    assert r.json()["reviewer"] == "admin:ops-1"
    again = env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin, {})
    assert again.status_code == 409 and again.json()["code"] == "INVALID_REFUND_STATE"
    mine = env.api.get(f"/api/app/orders/{o.order_no}/refunds", env.user("u1001")).json()["items"]
    assert mine[0]["reject_reason"] == "盲盒已拆封" and mine[0]["status_label"] == "已拒绝"
    env.check_invariants(o.order_no)
    assert env.fresh(o.order_no).open_application is None
    assert _apply(env, "u1001", o.order_no, 100).status_code == 201  # may apply again


def test_reject_after_approve_is_refused(env):
    o = env.order(1)
    no = _apply(env, "u1001", o.order_no, 800).json()["refund_no"]
    assert env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin, {}).status_code == 200
    r = env.api.post(f"/api/admin/pay/refunds/{no}/reject", env.admin, {"reason": "晚了"})
    assert r.status_code == 409 and r.json()["code"] == "INVALID_REFUND_STATE"


def test_partial_approval_and_limits(env):
    o = env.order(1)
    no = _apply(env, "u1001", o.order_no, 800).json()["refund_no"]
    more = env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin, {"amount": 801})
    assert more.status_code == 409 and more.json()["code"] == "AMOUNT_EXCEEDS_REQUESTED"
    r = env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin, {"amount": 500})
    assert r.status_code == 200 and r.json()["amount"] == 500 and r.json()["requested_amount"] == 800
    env.wait_status(no, "success")
    order = env.fresh(o.order_no)
    assert order.refunded_amount == 500 and order.requested_amount == 0
    env.check_invariants(o.order_no)


def test_approval_when_balance_no_longer_covers_it_stays_pending(env):
    o = env.order(1)
    no = _apply(env, "u1001", o.order_no, o.actual_amount).json()["refund_no"]
    direct = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": o.order_no, "amount": 100})
    assert direct.status_code == 201
    r = env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin, {})
    assert r.status_code == 409 and r.json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE"
    assert env.refund(no).status == "pending_review"
    env.check_invariants(o.order_no)
    ok = env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin, {"amount": o.actual_amount - 100})
    assert ok.status_code == 200
    env.wait_status(no, "success")
    env.check_invariants(o.order_no)


def test_signed_shipment_refund_leaves_open_task_in_csv(env):
    o = env.order(3)
    no = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": o.order_no, "amount": o.actual_amount}).json()["refund_no"]
    # four-eyes: another operator approves what ops-1 created
    assert env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin2, {}).status_code == 200
    env.wait_status(no, "success")
    assert env.drain_restorations() >= 1
    tasks = env.api.get("/api/admin/manual-tasks?status=open", env.admin).json()["items"]
    assert [(t["type"], t["type_label"], t["refund_no"]) for t in tasks] == [("return_to_warehouse", "退货入库", no)]
    r = env.api.get("/api/admin/manual-tasks?status=open&format=csv", env.admin)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 1 and rows[0]["类型"] == "退货入库" and rows[0]["状态"] == "待处理"
    assert rows[0]["订单号"] == o.order_no and rows[0]["退款单号"] == no
    task_id = tasks[0]["task_id"]
    done = env.api.post(f"/api/admin/manual-tasks/{task_id}/done", env.admin, {"note": "已退货入库"})
    assert done.status_code == 200 and done.json()["status_label"] == "已处理"
    assert env.api.post(f"/api/admin/manual-tasks/{task_id}/done", env.admin, {}).json()["code"] == "TASK_ALREADY_DONE"
    assert env.api.get("/api/admin/manual-tasks?status=open", env.admin).json()["items"] == []
    assert env.fresh(o.order_no).shipping.status == 4


def test_csv_export_is_paged_by_cursor(env):
    for i in range(3):
        ManualTask(f"TASK-CSV-{i}", type="inventory_not_revocable", order_no="GB1", refund_no=f"RF{i}",
                   user_id="u1001", action="联系用户", status="open", created_at=f"2026-11-25T00:00:0{i}Z").save()
    seen, cursor = [], None
    for expected_rows, more in ((2, True), (1, False)):
        query = "status=open&format=csv&limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = env.api.get(f"/api/admin/manual-tasks?{query}", env.admin)
        assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert len(rows) == expected_rows and ("X-Next-Cursor" in r.headers) is more
        seen += [row["任务编号"] for row in rows]
        cursor = r.headers.get("X-Next-Cursor")
    assert seen == ["TASK-CSV-2", "TASK-CSV-1", "TASK-CSV-0"]
    too_many = env.api.get("/api/admin/manual-tasks?format=csv&limit=5001", env.admin)
    assert too_many.status_code == 400 and too_many.json()["code"] == "VALIDATION_ERROR"
    json_page = env.api.get("/api/admin/manual-tasks?limit=101", env.admin)
    assert json_page.status_code == 400
