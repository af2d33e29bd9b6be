"""Idempotency-Key: a retried request maps onto the same refund, whatever the timing."""
from __future__ import annotations

import concurrent.futures as cf

import pytest

from chalicelib.adapters import repository as repo

from .helpers import apply, check_restorations, create, created_no

pytestmark = pytest.mark.slow


def test_hundred_retries_of_one_key_make_one_refund(env):
    o = env.order(13)
    with cf.ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(lambda i: create(env, o.order_no, 700, reason="重试", key="retry-key-1"),
                                 range(100)))
    assert {r.status_code for r in results} <= {200, 201}, {r.status_code: r.text for r in results}
    assert [r.status_code for r in results].count(201) == 1
    nos = {r.json()["refund_no"] for r in results}
    assert len(nos) == 1
    no = nos.pop()
    assert [r.refund_no for r in repo.refunds_of_order(o.order_no)] == [no]
    env.wait_status(no, "success")
    assert env.sim.create_calls() == 1 and len(env.sim.refunds()) == 1
    # later retries (after it settled) still answer with that refund, and call nobody
    late = create(env, o.order_no, 700, reason="重试", key="retry-key-1")
    assert late.status_code == 200 and late.json()["refund_no"] == no and late.json()["status"] == "success"
    changed = create(env, o.order_no, 701, reason="重试", key="retry-key-1")
    assert changed.status_code == 409 and changed.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    changed_reason = create(env, o.order_no, 700, reason="别的原因", key="retry-key-1")
    assert changed_reason.status_code == 409 and changed_reason.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert env.sim.create_calls() == 1
    assert env.fresh(o.order_no).refunded_amount == 700 and env.fresh(o.order_no).refund_count == 1
    assert env.drain_restorations() == 1
    env.check_invariants(o.order_no)
    check_restorations(env, o.order_no)


def test_retry_after_an_unknown_outcome_does_not_call_wechat_again(env):
    o = env.order(14)
    env.sim.push_scenario("SYSTEM_ERROR", op="create")
    first = create(env, o.order_no, 500, key="k-unknown")
    assert first.status_code == 201 and first.json()["status"] == "submitted"
    again = create(env, o.order_no, 500, key="k-unknown")
    assert again.status_code == 200 and again.json()["refund_no"] == first.json()["refund_no"]
    assert env.sim.create_calls() == 1  # the replay answers from the record; the poller owns the retry
    env.poll()
    env.wait_status(first.json()["refund_no"], "success")
    assert env.sim.create_calls() == 2 and len(env.sim.refunds()) == 1
    env.check_invariants(o.order_no)


def test_player_application_retries_make_one_application(env):
    o = env.order(1)
    with cf.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: apply(env, "u1001", o.order_no, 900, key="app-key"), range(100)))
    assert {r.status_code for r in results} <= {200, 201}, {r.status_code: r.text for r in results}
    assert len({r.json()["refund_no"] for r in results}) == 1
    assert len(repo.refunds_of_order(o.order_no)) == 1
    order = env.fresh(o.order_no)
    assert order.requested_amount == 900 and order.open_application == results[0].json()["refund_no"]
    changed = apply(env, "u1001", o.order_no, 901, key="app-key")
    assert changed.status_code == 409 and changed.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    env.check_invariants(o.order_no)


def test_same_key_different_orders_are_different_requests_only_with_a_changed_payload(env):
    a, b = env.order(15), env.order(16)
    first = created_no(create(env, a.order_no, 300, key="shared"))
    other = create(env, b.order_no, 300, key="shared")
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert repo.refunds_of_order(b.order_no) == []
    env.wait_status(first, "success")
    env.check_invariants(a.order_no)
    env.check_invariants(b.order_no)
