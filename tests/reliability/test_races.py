"""Races over the real HTTP API: paths that reach the same refund or order at the same
moment. After each: the money invariants, one restoration per refund, exact ledger sums."""
from __future__ import annotations

import concurrent.futures as cf
import time

import pytest

from chalicelib.adapters import repository as repo
from chalicelib.services import poller, restoration

from .helpers import (
    apply, approve, at_once, check_restorations, create, created_no, events_to, open_tasks, restore_entries,
    settle_all, wait_sim,
)

pytestmark = pytest.mark.slow


def test_fifty_concurrent_partials_never_exceed_what_was_paid(env):
    o = env.order(11)  # 648.00, points, coupon, pending shipment
    amount = o.actual_amount // 30 + 1  # 50 of these ask for ~1.7x what was paid; 29 fit
    fit = o.actual_amount // amount
    with cf.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda i: create(env, o.order_no, amount, reason=f"并发{i}"), range(50)))
    ok = [r for r in results if r.status_code == 201]
    refused = [r for r in results if r.status_code != 201]
    assert {r.status_code for r in refused} == {409}, [r.text for r in refused if r.status_code != 409]
    assert {r.json()["code"] for r in refused} == {"AMOUNT_EXCEEDS_REFUNDABLE"}
    assert len(ok) == fit and len({r.json()["refund_no"] for r in ok}) == fit
    settle_all(env, [r.json()["refund_no"] for r in ok])
    order = env.fresh(o.order_no)
    assert order.refunded_amount == amount * fit and order.refundable_amount == o.actual_amount - amount * fit
    assert order.refund_count == fit and order.status == 2
    assert env.sim.create_calls() == fit and len(env.sim.refunds()) == fit
    assert env.drain_restorations() == fit
    env.check_invariants(o.order_no)
    check_restorations(env, o.order_no)
    # each success took its own step of the cumulative total: the pro-rata points telescope
    cumulative = sorted(r.cumulative_refunded for r in repo.refunds_of_order(o.order_no))
    assert cumulative == [amount * (i + 1) for i in range(fit)]


def test_local_server_keeps_each_request_on_its_own_thread(stack):
    from chalice.local import LocalChalice

    assert isinstance(stack.app().chalice_app, LocalChalice)


def test_two_admins_approve_one_application_at_once(env):
    for n, user in ((1, "u1001"), (13, None), (6, "u1005")):
        o = env.order(n)
        user = user or o.user_id
        no = created_no(apply(env, user, o.order_no, o.actual_amount))
        a, b = at_once(lambda: approve(env, no, env.admin), lambda: approve(env, no, env.admin2))
        codes = sorted([a.status_code, b.status_code])
        assert codes == [200, 409], (a.text, b.text)
        loser = a if a.status_code == 409 else b
        assert loser.json()["code"] == "INVALID_REFUND_STATE"
        refund = env.wait_status(no, "success")
        assert env.sim.create_calls(no) == 1
        assert len(events_to(refund, "submitted")) == 1
        assert refund.reviewer in ("admin:ops-1", "admin:ops-2")
        assert env.drain_restorations() == 1
        env.check_invariants(o.order_no)
        check_restorations(env, o.order_no)
        assert env.fresh(o.order_no).open_application is None


def test_approve_and_reject_at_once_one_wins(env):
    o = env.order(1)
    no = created_no(apply(env, "u1001", o.order_no, 1000))
    ok, rej = at_once(lambda: approve(env, no, env.admin),
                      lambda: env.api.post(f"/api/admin/pay/refunds/{no}/reject", env.admin2, {"reason": "并发拒绝"}))
    assert sorted([ok.status_code, rej.status_code]) == [200, 409], (ok.text, rej.text)
    refund = env.refund(no)
    if ok.status_code == 200:
        refund = env.wait_status(no, "success")
        assert env.sim.create_calls(no) == 1
    else:
        assert refund.status == "rejected" and env.sim.create_calls() == 0
    env.check_invariants(o.order_no)
    assert env.fresh(o.order_no).open_application is None


@pytest.mark.parametrize("n", [1, 11, 13, 14, 15])
def test_notification_and_poll_resolve_the_same_refund_at_once(env, n):
    env.sim.configure(drop_notifications=True)
    o = env.order(n)
    no = created_no(create(env, o.order_no, o.actual_amount // 2))
    wait_sim(env, no, "SUCCESS")
    assert env.refund(no).status == "processing"  # its notification was dropped
    url = env.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    delivered, report = at_once(lambda: env.sim.redeliver(no, url), env.poll)
    assert delivered == 204, delivered
    assert report.errors == 0
    refund = env.refund(no)
    assert refund.status == "success"
    assert len(events_to(refund, "success")) == 1, [(e.actor, e.to_status) for e in refund.events]
    assert env.fresh(o.order_no).refunded_amount == o.actual_amount // 2
    assert env.drain_restorations() == 1  # exactly one path enqueued the restoration
    env.check_invariants(o.order_no)
    check_restorations(env, o.order_no)


@pytest.mark.parametrize("n", [1, 6, 4])
def test_two_restoration_workers_on_one_message(env, n):
    o = env.order(n)  # 1: points+coupon+shipment; 6: lottery inventory; 4: revocable virtual goods
    no = created_no(create(env, o.order_no, o.actual_amount))
    if env.refund(no).status == "pending_review":
        created_no(approve(env, no))
    env.wait_status(no, "success")
    results = at_once(lambda: restoration.restore(no), lambda: restoration.restore(no))
    assert sorted(r["result"] for r in results) == ["already_done", "done"], results
    assert env.drain_restorations() == 1  # the queued message too: a third worker, a no-op
    refund = env.refund(no)
    assert refund.restoration_status == "done"
    entries = restore_entries(o.user_id)
    assert list(entries) == ([f"refund_restore#{no}"] if o.points_used else [])
    tasks = open_tasks(refund_no=no)
    assert len(tasks) == len({t.task_id for t in tasks})
    assert len(tasks) == len(refund.restoration["manual_tasks"])
    env.check_invariants(o.order_no)
    check_restorations(env, o.order_no)
    assert poller.sweep() == 0  # nothing left overdue


def test_order_detail_is_a_consistent_view_while_refunds_settle(env):
    """Reads of the order detail racing with settlements: every answer's balances are exactly
    what the refunds in that same answer add up to (the order and its refunds are two reads)."""
    o = env.order(11)
    amount = o.actual_amount // 20
    with cf.ThreadPoolExecutor(max_workers=10) as pool:
        created = list(pool.map(lambda i: create(env, o.order_no, amount, reason=f"读{i}"), range(10)))
    nos = [r.json()["refund_no"] for r in created]

    def consistent_reads() -> int:
        n, deadline = 0, time.monotonic() + 180
        while time.monotonic() < deadline:
            d = env.api.get(f"/api/admin/orders/{o.order_no}", env.admin).json()
            refunds = d["refunds"]
            success = sum(r["amount"] for r in refunds if r["status"] == "success")
            in_flight = sum(r["amount"] for r in refunds if r["status"] in ("submitted", "processing", "abnormal"))
            assert d["order"]["refunded_amount"] == success, d["order"]
            assert d["order"]["reserved_amount"] == in_flight, d["order"]
            n += 1
            if all(r["status"] == "success" for r in refunds if r["refund_no"] in nos) and len(refunds) >= len(nos):
                return n
        raise AssertionError("the refunds did not all settle")

    # notifications settle them, and the poller those whose notification lost its turn on the order
    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        settling = pool.submit(settle_all, env, nos)
        reads = list(pool.map(lambda _: consistent_reads(), range(3)))
        settling.result()
    assert sum(reads) >= 3
    env.check_invariants(o.order_no)
