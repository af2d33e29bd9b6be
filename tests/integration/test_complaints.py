"""The 投诉 desk through the stack: complaints made at WeChat (the simulator) arrive by notification
or by the sweep, staff answer them over the API, and WeChat's complaint ends in the right state."""
from __future__ import annotations

import base64
import time

import pytest

from chalicelib.adapters import complaint_store as store
from devstack.driver import LambdaContext, schedule_event

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(80))
BASE = "/api/admin/complaints"


def sweep(env) -> dict:
    """The scheduled sweep, as Lambda runs it (it also registers the complaint notify URL)."""
    return env.stack.handlers().complaints_sweep(schedule_event("ap-east-1"), LambdaContext("complaints_sweep"))


def complain(env, n: int, amount: int, **kwargs) -> str:
    return env.sim.complaints.create(env.order(n).order_no, amount, **kwargs)["complaint_id"]


def stored(env, complaint_id: str, state: str | None = None):
    return env.wait_for(lambda: (c := store.get(complaint_id)) is not None and (state is None or c.state == state)
                        and c, timeout=30)


@pytest.fixture
def desk(env):
    assert sweep(env)["notify_url"] == "created"
    env.support = env.staff("support", "amy")
    return env


def _validate(route: str, method: str, r):
    from openapi_schema_validator import OAS30Validator

    from chalicelib.entrypoints import docs

    doc = docs.document()
    schema = doc["paths"][route][method]["responses"][str(r.status_code)]["content"]["application/json"]["schema"]
    OAS30Validator({**schema, "components": doc["components"]}).validate(r.json())


def test_a_complaint_arrives_by_notification_with_its_countdown(desk):
    env = desk
    complaint_id = complain(env, 6, 990, phone="13800138000", user_tags=["HIGH_RISK"], description="抽中的隐藏款没发货")
    c = stored(env, complaint_id)  # the notification brought it: no sweep ran since
    assert c.order_no == env.order(6).order_no and c.user_id == "u1005" and c.last_action == "CREATE_COMPLAINT"
    r = env.api.get(BASE, env.support)
    assert r.status_code == 200, r.text
    _validate("/api/admin/complaints", "get", r)
    [item] = r.json()["items"]
    assert item["complaint_id"] == complaint_id and item["state_label"] == "待处理"
    assert item["deadline"]["kind"] == "reply" and 23 * 3600 < item["deadline"]["seconds_left"] <= 24 * 3600
    assert item["deadline"]["risk"] == "on_time" and item["user_tags"] == [{"code": "HIGH_RISK", "label": "高风险投诉"}]
    detail = env.api.get(f"{BASE}/{complaint_id}", env.support)
    _validate("/api/admin/complaints/{complaint_id}", "get", detail)
    body = detail.json()
    assert body["payer_phone"] == "138****8000" and body["history"][0]["operate_type"] == "USER_CREATE_COMPLAINT"
    draws = body["evidence"]["draws"]
    assert [(d["result_label"], d["level_label"], d["inventory_status_label"]) for d in draws] == [
        ("中奖", "S", "持有中"), ("中奖", "B", "已消耗"), ("未中奖", None, None)]
    assert body["actions"]["reply"]["allowed"] and body["actions"]["refund"]["allowed"]
    finance = env.api.get(f"{BASE}/{complaint_id}", env.staff("finance", "fay")).json()
    assert finance["payer_phone"] == "13800138000"


def test_dropped_notifications_leave_it_to_the_sweep(desk):
    env = desk
    env.sim.configure(drop_complaint_notifications=True)
    complaint_id = complain(env, 2, 500)
    assert store.get(complaint_id) is None
    assert sweep(env)["new"] == 1
    assert store.get(complaint_id).state == "PENDING"
    assert sweep(env)["pages"] == 1  # nothing new: one page


def test_reply_reaches_wechat_once(desk):
    env = desk
    complaint_id = complain(env, 2, 500)
    stored(env, complaint_id)
    big = PNG + b"\x00" * 1_000_000  # a 1 MB photo: the body is far past other routes' 64 KiB
    body = {"content": "已为您补发，请留意物流", "images": [base64.b64encode(big).decode()]}
    first = env.api.post(f"{BASE}/{complaint_id}/reply", env.support, body)
    assert first.status_code == 200, first.text
    _validate("/api/admin/complaints/{complaint_id}/reply", "post", first)
    again = env.api.post(f"{BASE}/{complaint_id}/reply", env.support, body)
    assert again.status_code == 200 and again.json()["state"] == "PROCESSING"
    sim = env.sim.complaints.get(complaint_id)
    assert sim["state"] == "PROCESSING" and len(sim["responses"]) == 1 and len(sim["responses"][0]["images"]) == 1
    assert first.json()["deadline"]["kind"] == "resolve"
    assert [a["status"] for a in again.json()["actions_log"]] == ["done"]


def test_refund_settles_through_wechat_and_restores_like_any_refund(desk):
    env = desk
    order = env.order(1)  # points, a coupon, goods not yet shipped
    complaint_id = complain(env, 1, order.actual_amount)
    stored(env, complaint_id)
    r = env.api.post(f"{BASE}/{complaint_id}/refund", env.admin, {"amount": order.actual_amount, "reason": "投诉退款"})
    assert r.status_code == 200, r.text
    refund_no = r.json()["refund_no"]
    assert r.json()["refund_action"] == "APPROVE"
    refund = env.wait_status(refund_no, "success")
    assert refund.complaint_id == complaint_id
    assert env.drain_restorations() == 1
    assert env.fresh(order.order_no).status == 4  # 已退款, its points and coupon restored
    env.check_invariants(order.order_no)
    # WeChat completes the complaint when the money arrives and tells us
    c = stored(env, complaint_id, "PROCESSED")
    assert c.refund_progress == "refunded"
    sim = env.sim.complaints.get(complaint_id)
    assert sim["state"] == "PROCESSED" and sim["refund_progress"]["action"] == "APPROVE" and sim["refunds"] == [refund_no]
    retry = env.api.post(f"{BASE}/{complaint_id}/refund", env.admin, {"amount": order.actual_amount, "reason": "投诉退款"})
    assert retry.status_code == 200 and retry.json()["refund_no"] == refund_no
    assert len(env.sim.complaints.get(complaint_id)["refunds"]) == 1


def test_reject_and_complete_reach_wechat(desk):
    env = desk
    rejected = complain(env, 13, 300)
    done = complain(env, 14, 300, problem_type="SERVICE_NOT_WORK")
    stored(env, rejected), stored(env, done)
    r = env.api.post(f"{BASE}/{rejected}/reject", env.support,
                     {"reason": "抽奖结果已公示，奖品已发出", "images": [base64.b64encode(PNG).decode()]})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "PROCESSED" and r.json()["refund_progress"] == "rejected"
    sim = env.sim.complaints.get(rejected)
    assert sim["refund_progress"]["action"] == "REJECT" and len(sim["refund_progress"]["reject_media_list"]) == 1
    c = env.api.post(f"{BASE}/{done}/complete", env.support, {})
    assert c.status_code == 200 and c.json()["state"] == "PROCESSED"
    assert env.sim.complaints.get(done)["completed"] is True
    again = env.api.post(f"{BASE}/{done}/complete", env.support, {})
    assert again.status_code == 200  # a retry: the same answer
    late = env.api.post(f"{BASE}/{done}/reply", env.support, {"content": "还有问题吗？"})
    assert late.status_code == 409 and late.json()["code"] == "INVALID_COMPLAINT_STATE"


def test_errors_are_documented_codes(desk):
    env = desk
    other = complain(env, 15, 100, problem_type="OTHERS")
    stored(env, other)
    cases = [
        (f"{BASE}/2002000000000000000000000001", None, 404, "COMPLAINT_NOT_FOUND"),
        (f"{BASE}/{other}/refund", {"amount": 100, "reason": "x"}, 409, "INVALID_COMPLAINT_STATE"),
        (f"{BASE}/{other}/reply", {"content": "长" * 201}, 400, "VALIDATION_ERROR"),
        (f"{BASE}/{other}/reply", {"content": "好", "images": ["R0lGODlh"]}, 400, "VALIDATION_ERROR"),
        (f"{BASE}/{other}/reject", {"reason": "x"}, 409, "INVALID_COMPLAINT_STATE"),
        (f"{BASE}/{other}/complete", {"x": 1}, 400, "VALIDATION_ERROR"),
    ]
    for path, body, status, code in cases:
        r = env.api.get(path, env.support) if body is None else env.api.post(path, env.support, body)
        assert (r.status_code, r.json()["code"]) == (status, code), (path, r.text)
        assert r.json()["message"]
    player = env.api.get(BASE, env.user("u1001"))
    assert player.status_code == 403
    refund = complain(env, 16, 100)
    stored(env, refund)
    env.sim.push_scenario("SYSTEM_ERROR", op="complaint")  # WeChat's answer is unknown: retry finishes it
    r = env.api.post(f"{BASE}/{refund}/reply", env.support, {"content": "已处理"})
    assert (r.status_code, r.json()["code"]) == (503, "UPSTREAM_UNAVAILABLE")
    r = env.api.post(f"{BASE}/{refund}/reply", env.support, {"content": "已处理"})
    assert r.status_code == 200 and len(env.sim.complaints.get(refund)["responses"]) == 1


def test_the_queue_pages_past_its_page_size_and_filters(desk):
    env = desk
    env.sim.configure(drop_complaint_notifications=True)
    now = time.time()
    made = [complain(env, 13 + i % 20, 100, at=now - (30 - i) * 3600) for i in range(25)]  # 30 h ... 6 h old
    swept = sweep(env)
    assert (swept["new"], swept["overdue"], swept["open_near"], swept["tasks_opened"]) == (25, 7, 6, 7)
    first = env.api.get(BASE, env.support).json()
    assert len(first["items"]) == 20 and first["next_cursor"]
    second = env.api.get(f"{BASE}?cursor={first['next_cursor']}", env.support).json()
    assert len(second["items"]) == 5 and second["next_cursor"] is None
    listed = [i["complaint_id"] for i in first["items"] + second["items"]]
    assert listed == made  # the nearest deadline (the oldest complaint) first
    overdue = env.api.get(f"{BASE}?deadline=overdue&limit=100", env.support).json()["items"]
    assert [i["complaint_id"] for i in overdue] == made[:7]  # more than 24 h old: past the first reply
    assert all(i["deadline"]["risk"] == "overdue" for i in overdue)
    near = env.api.get(f"{BASE}?deadline=near&limit=100", env.support).json()["items"]
    assert [i["complaint_id"] for i in near] == made[:13]  # within 6 h of it, or past it
    order_no = env.order(13).order_no
    of_order = env.api.get(f"{BASE}?order_no={order_no}", env.support).json()["items"]
    assert {i["complaint_id"] for i in of_order} == {made[0], made[20]}
    bad = env.api.get(f"{BASE}?state=PENDING&cursor={first['next_cursor']}", env.support)
    assert (bad.status_code, bad.json()["code"]) == (400, "VALIDATION_ERROR")
    assert env.api.get(f"{BASE}?deadline=soon", env.support).status_code == 400
    assert sweep(env)["tasks_opened"] == 0  # one task a deadline
    tasks = env.api.get("/api/admin/manual-tasks?type=complaint_overdue&limit=100", env.support).json()["items"]
    assert sorted(t["detail"]["complaint_id"] for t in tasks) == sorted(made[:7])


def test_an_expired_complaints_wechat_refund_is_booked_and_not_refunded_again(desk):
    """Past the deadline WeChat refunds the player from the merchant's money (受托退款): its
    REFUND.SUCCESS names a refund we never made; it is booked against the order as an external
    refund linked to the complaint, and neither the complaint nor the order can refund it again."""
    from chalicelib.adapters import repository as repo

    env = desk
    order = env.order(2)
    complaint_id = complain(env, 2, order.actual_amount)
    stored(env, complaint_id)
    expired = env.sim.complaints.expire(complaint_id, url=env.stack.env["WECHAT_REFUND_NOTIFY_URL"])
    wechat_refund = expired["refund"]["out_refund_no"]
    c = env.wait_for(lambda: (c := store.get(complaint_id)) and c.state == "PROCESSED" and c.entrusted_refund_no
                     and c, timeout=30)
    assert c.entrusted_refund_no == wechat_refund and c.refund_progress == "entrusted"
    booked = env.wait_status(wechat_refund, "success")
    assert booked.origin == "external" and booked.complaint_id == complaint_id and booked.amount == order.actual_amount
    fresh = env.fresh(order.order_no)
    assert fresh.refundable_amount == 0 and fresh.refunded_amount == order.actual_amount
    env.check_invariants(order.order_no)
    again = env.api.post(f"{BASE}/{complaint_id}/refund", env.admin, {"amount": 100, "reason": "投诉退款"})
    assert (again.status_code, again.json()["code"]) == (409, "INVALID_COMPLAINT_STATE")
    direct = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": 100})
    assert direct.status_code == 409 and direct.json()["code"] in ("ORDER_NOT_REFUNDABLE", "AMOUNT_EXCEEDS_REFUNDABLE")
    view = env.api.get(f"{BASE}/{complaint_id}", env.support).json()
    assert view["refund_progress_label"] == "微信已受托退款" and view["entrusted_refund_no"] == wechat_refund
    assert [r["refund_no"] for r in view["refunds"]] == [wechat_refund]
    assert [r.refund_no for r in repo.refunds_of_order(order.order_no)] == [wechat_refund]  # booked once
