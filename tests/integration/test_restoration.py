"""Restoration after a successful refund: exactly once, every branch, and the SQS contract."""
import concurrent.futures as cf
import json

from chalicelib.adapters.models import InventoryItem, PointsEntry, User, UserCoupon
from chalicelib.services import restoration


def _refund(env, order_no, amount, approve=False):
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order_no, "amount": amount})
    assert r.status_code == 201, r.text
    no = r.json()["refund_no"]
    if approve:
        # four-eyes: another operator approves what ops-1 created
        assert env.api.post(f"/api/admin/pay/refunds/{no}/approve", env.admin2, {}).status_code == 200
    env.wait_status(no, "success")
    return no


def _ledger(user_id):
    return [e for e in PointsEntry.query(user_id) if e.action == "refund_restore"]


def test_full_refund_restores_points_coupon_and_cancels_shipment(env):
    o = env.order(1)
    balance = User.get("u1001").points_balance
    no = _refund(env, o.order_no, o.actual_amount)
    assert env.drain_restorations() == 1
    entries = _ledger("u1001")
    assert [(e.entry_id, e.points, e.refund_no) for e in entries] == [(f"refund_restore#{no}", 5000, no)]
    assert User.get("u1001").points_balance == balance + 5000
    assert UserCoupon.get("u1001", "CP-1001-A").status == "unused"
    order = env.fresh(o.order_no)
    assert order.shipping.cancelled is True
    detail = env.api.get(f"/api/admin/orders/{o.order_no}", env.admin).json()
    assert detail["points"]["points_restored"] == 5000
    rf = detail["refunds"][0]
    assert rf["restoration_status"] == "done" and rf["restoration"]["points"] == 5000
    assert "发货已取消" in rf["restoration"]["applied"]


def test_redelivery_and_racing_workers_restore_once(env):
    o = env.order(1)
    balance = User.get("u1001").points_balance
    no = _refund(env, o.order_no, o.actual_amount)
    body = json.dumps({"refund_no": no, "order_no": o.order_no})
    sqs = env.stack.sqs()
    for _ in range(2):  # two more copies: the message arrives three times
        sqs.send_message(QueueUrl=env.stack.queue_url, MessageBody=body)
    with cf.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: restoration.restore(no), range(3)))
    assert env.drain_restorations() == 3
    assert len(_ledger("u1001")) == 1
    assert User.get("u1001").points_balance == balance + 5000


def test_partial_refunds_restore_points_pro_rata_exactly(env):
    o = env.order(11)
    parts = [o.actual_amount // 3, o.actual_amount // 7]
    parts.append(o.actual_amount - sum(parts))
    for p in parts:
        _refund(env, o.order_no, p)
        env.drain_restorations()
    points = [e.points for e in _ledger("u1005")]
    assert sum(points) == o.points_used and all(p >= 0 for p in points)
    assert UserCoupon.get("u1005", "CP-1005-B").status == "unused"  # only after the last one


def test_partial_refund_keeps_coupon_and_goods(env):
    o = env.order(1)
    _refund(env, o.order_no, 1000)
    env.drain_restorations()
    assert UserCoupon.get("u1001", "CP-1001-A").status == "used"
    assert env.fresh(o.order_no).shipping.cancelled is False


def test_lottery_inventory_revoked_or_flagged(env):
    o = env.order(6)
    no = _refund(env, o.order_no, o.actual_amount)
    env.drain_restorations()
    assert InventoryItem.get("u1005", "INV-6-1").status == "revoked"
    assert InventoryItem.get("u1005", "INV-6-2").status == "consumed"
    tasks = env.api.get("/api/admin/manual-tasks", env.admin).json()["items"]
    assert [(t["type"], t["refund_no"]) for t in tasks] == [("inventory_not_revocable", no)]
    o10 = env.order(10)
    _refund(env, o10.order_no, o10.actual_amount)
    env.drain_restorations()
    assert InventoryItem.get("u1002", "INV-10-1").status == "held"
    types = sorted(t["type"] for t in env.api.get("/api/admin/manual-tasks", env.admin).json()["items"])
    assert types == ["inventory_not_revocable", "inventory_not_revocable"]


def test_virtual_fulfilment_revoked_or_flagged(env):
    o4 = env.order(4)  # consumed, revocable: needs approval first
    _refund(env, o4.order_no, o4.actual_amount, approve=True)
    o5 = env.order(5)  # consumed, not revocable
    no5 = _refund(env, o5.order_no, o5.actual_amount, approve=True)
    env.drain_restorations()
    v4 = env.fresh(o4.order_no).virtual
    assert v4.revoked is True and v4.revoked_by_refund
    assert env.fresh(o5.order_no).virtual.revoked is False
    tasks = env.api.get("/api/admin/manual-tasks", env.admin).json()["items"]
    assert [(t["type"], t["refund_no"]) for t in tasks] == [("virtual_not_revocable", no5)]


def test_shipped_goods_are_flagged_not_undone(env):
    o = env.order(2)
    no = _refund(env, o.order_no, o.actual_amount)
    env.drain_restorations()
    order = env.fresh(o.order_no)
    assert order.shipping.status == 4 and order.shipping.exception_reason
    tasks = env.api.get("/api/admin/manual-tasks", env.admin).json()["items"]
    assert [(t["type"], t["refund_no"]) for t in tasks] == [("return_to_warehouse", no)]


def test_failing_message_goes_to_dead_letter_queue(env, monkeypatch):
    o = env.order(14)
    no = _refund(env, o.order_no, 300)

    def broken(refund_no):
        raise RuntimeError("downstream unavailable")

    monkeypatch.setattr(restoration, "restore", broken)
    from devstack.driver import Driver

    sqs = env.stack.sqs()
    driver = Driver(env.stack.handlers(), sqs, env.stack.queue_url, env.stack.queue_arn, "ap-east-1", 3600)
    failures = 0
    for _ in range(10):
        msgs = sqs.receive_message(QueueUrl=env.stack.queue_url, WaitTimeSeconds=2,
                                   AttributeNames=["All"]).get("Messages", [])
        for m in msgs:
            assert driver.deliver(m) is False
            failures += 1
        dead = sqs.receive_message(QueueUrl=env.stack.dlq_url, WaitTimeSeconds=0).get("Messages", [])
        if dead:
            break
    assert failures == env.stack.cfg.max_receive_count
    assert json.loads(dead[0]["Body"])["refund_no"] == no
    assert env.refund(no).restoration_status == "pending"  # visible, and the sweeper will retry
