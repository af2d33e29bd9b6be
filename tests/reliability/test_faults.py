"""Faults, injected through the WeChat Pay simulator's scenario switches and by breaking our
own infrastructure calls. Each test ends in one correct, explained state: the refund's status,
failure code and event history, the order's balances, manual tasks and restoration."""
from __future__ import annotations

import os
import time

import pytest

from chalicelib.adapters import queue
from chalicelib.adapters.wechat.gateway import reset_gateway
from chalicelib.adapters import repository as repo
from chalicelib.services import poller, restoration

from .helpers import check_restorations, create, created_no, events_to, open_tasks, wait_sim

pytestmark = pytest.mark.slow


def _details(refund) -> list[str]:
    return [e.detail or "" for e in refund.events]


def _settled_ok(env, o, no, amount):
    refund = env.wait_status(no, "success")
    assert len(events_to(refund, "success")) == 1
    assert refund.wechat_refund_id and refund.user_received_account
    assert env.fresh(o.order_no).refunded_amount == amount
    assert env.drain_restorations() == 1
    env.check_invariants(o.order_no)
    check_restorations(env, o.order_no)
    return refund


# ------------------------------------------------------------ outcome unknown at create


@pytest.mark.parametrize("kind", ["SYSTEM_ERROR", "FREQUENCY_LIMITED", "LOSE_REQUEST"])
def test_create_refused_before_processing_is_resubmitted_by_the_poller(env, kind):
    o = env.order(13)
    env.sim.push_scenario(kind, op="create")
    r = create(env, o.order_no, 800)
    assert r.status_code == 201 and r.json()["status"] == "submitted", r.text
    no = r.json()["refund_no"]
    refund = env.refund(no)
    assert any(kind.split("_")[0] in d or "SYSTEM_ERROR" in d for d in _details(refund)), _details(refund)
    assert env.fresh(o.order_no).reserved_amount == 800  # held while the outcome is unknown
    env.check_invariants(o.order_no)
    assert env.sim.refund(no) is None  # WeChat recorded nothing
    report = env.poll()
    assert report.resubmitted == 1, report
    refund = _settled_ok(env, o, no, 800)
    assert env.sim.create_calls(no) == 2 and len(env.sim.refunds()) == 1  # same out_refund_no twice
    assert any(e.actor == "poller" for e in refund.events)


@pytest.mark.parametrize("kind", ["ACCEPT_THEN_ERROR", "BAD_RESPONSE_SIGNATURE"])
def test_create_processed_but_answer_lost_is_settled_by_the_notification(env, kind):
    o = env.order(14)
    env.sim.push_scenario(kind, op="create")
    r = create(env, o.order_no, 600)
    assert r.status_code == 201 and r.json()["status"] == "submitted", r.text
    no = r.json()["refund_no"]
    _settled_ok(env, o, no, 600)
    assert env.sim.create_calls() == 1 and len(env.sim.refunds()) == 1
    assert env.poll().resubmitted == 0


def test_create_timeout_then_notification(env):
    o = env.order(15)
    saved = os.environ.get("WECHAT_TIMEOUT_SECONDS")
    os.environ["WECHAT_TIMEOUT_SECONDS"] = "0.5"
    reset_gateway()
    try:
        env.sim.push_scenario("SLOW", op="create", seconds=2.0)
        started = time.monotonic()
        r = create(env, o.order_no, 400)
        assert time.monotonic() - started < 2.0  # we gave up before WeChat answered
    finally:
        if saved is None:
            os.environ.pop("WECHAT_TIMEOUT_SECONDS", None)
        else:
            os.environ["WECHAT_TIMEOUT_SECONDS"] = saved
        reset_gateway()
    assert r.status_code == 201 and r.json()["status"] == "submitted", r.text
    no = r.json()["refund_no"]
    _settled_ok(env, o, no, 400)
    assert env.sim.create_calls() == 1 and len(env.sim.refunds()) == 1


# ------------------------------------------------------------ refused by WeChat


def test_not_enough_fails_and_gives_the_balance_back(env):
    o = env.order(13)
    env.sim.push_scenario("NOT_ENOUGH", op="create")
    r = create(env, o.order_no, o.actual_amount)
    assert r.status_code == 201, r.text
    refund = env.refund(r.json()["refund_no"])
    assert refund.status == "failed" and refund.failure_code == "NOT_ENOUGH" and refund.failure_message
    assert any("余额不足" in d for d in _details(refund))
    order = env.fresh(o.order_no)
    assert order.refundable_amount == o.actual_amount and order.reserved_amount == 0 and order.status == 2
    assert open_tasks(order_no=o.order_no) == []
    env.check_invariants(o.order_no)
    # after a top-up the operator refunds again, in full
    again = created_no(create(env, o.order_no, o.actual_amount))
    _settled_ok(env, o, again, o.actual_amount)
    assert env.fresh(o.order_no).status == 4


def _payout(env, no, **extra):
    body = {"channel": "bank_transfer", "reference": "BT-20261126-001", **extra}
    return env.api.post(f"/api/admin/pay/refunds/{no}/offline-payout", env.admin, body)


def test_user_account_abnormal_keeps_the_amount_reserved_until_an_offline_payout(env):
    """WeChat cannot pay this player (USER_ACCOUNT_ABNORMAL): nothing is refunded and nothing is
    released; the refund waits as 待线下退款 with a task, until an operator records the payout."""
    o = env.order(14)
    env.sim.push_scenario("USER_ACCOUNT_ABNORMAL", op="create")
    no = created_no(create(env, o.order_no, 500))
    refund = env.refund(no)
    assert refund.status == "offline_pending" and refund.failure_code == "USER_ACCOUNT_ABNORMAL"
    assert refund.offline_reason == "USER_ACCOUNT_ABNORMAL" and refund.work is None
    tasks = open_tasks(refund_no=no)
    assert [t.type for t in tasks] == ["account_abnormal"] and tasks[0].status == "open"
    order = env.fresh(o.order_no)
    assert order.reserved_amount == 500 and order.refundable_amount == o.actual_amount - 500
    env.check_invariants(o.order_no)
    listed = env.api.get("/api/admin/manual-tasks?type=account_abnormal", env.admin).json()["items"]
    assert [t["refund_no"] for t in listed] == [no]
    view = env.api.get(f"/api/admin/pay/refunds/{no}", env.admin).json()
    assert view["status_label"] == "待线下退款" and view["offline_reason_label"].startswith("用户微信账户异常")
    from chalicelib.adapters.models import Refund

    Refund(no).update(actions=[Refund.created_at.set("2026-01-01T00:00:00.000000Z")])  # it was made before the payout
    r = _payout(env, no, paid_at="2026-01-02T10:00:00+08:00", note="用户提供的银行卡")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success" and body["offline_payout"]["channel"] == "bank_transfer"
    assert body["offline_payout"]["reference"] == "BT-20261126-001" and body["channel"] == "bank_transfer"
    assert body["offline_payout"]["recorded_by"] == "admin:ops-1"
    assert env.fresh(o.order_no).refunded_amount == 500
    assert env.drain_restorations() == 1
    env.check_invariants(o.order_no)
    assert [(t.status, t.done_by) for t in open_tasks(refund_no=no)] == [("done", "admin:ops-1")]  # closed by the payout
    again = _payout(env, no)
    assert again.status_code == 409 and again.json()["code"] == "INVALID_REFUND_STATE"


def test_an_offline_refund_wechat_never_paid_can_be_cancelled(env):
    o = env.order(14)
    env.sim.push_scenario("USER_ACCOUNT_ABNORMAL", op="create")
    no = created_no(create(env, o.order_no, 500))
    r = env.api.post(f"/api/admin/pay/refunds/{no}/cancel-offline", env.admin, {"reason": "用户放弃退款"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed"
    order = env.fresh(o.order_no)
    assert order.reserved_amount == 0 and order.refundable_amount == o.actual_amount
    assert order.refund_count == 0  # WeChat refused it: not one of its 50
    env.check_invariants(o.order_no)
    assert _payout(env, no).status_code == 409


def test_closed_releases_the_balance_and_restores_nothing(env):
    o = env.order(1)
    env.sim.queue_outcome("CLOSED")
    no = created_no(create(env, o.order_no, 1200))
    refund = env.wait_status(no, "closed")
    assert refund.restoration_status is None and refund.work is None
    order = env.fresh(o.order_no)
    assert order.refundable_amount == o.actual_amount and order.reserved_amount == 0
    assert env.drain_restorations() == 0
    assert env.poll().due == 0
    env.check_invariants(o.order_no)
    check_restorations(env, o.order_no)


def test_abnormal_holds_the_balance_opens_a_task_and_resolves_to_a_card(env):
    o = env.order(1)
    env.sim.queue_outcome("ABNORMAL")
    no = created_no(create(env, o.order_no, o.actual_amount))
    refund = env.wait_status(no, "abnormal")
    assert [t.type for t in open_tasks(refund_no=no)] == ["refund_abnormal"]
    order = env.fresh(o.order_no)
    assert order.reserved_amount == o.actual_amount and order.refundable_amount == 0
    env.check_invariants(o.order_no)
    r = env.api.post(f"/api/admin/pay/refunds/{no}/abnormal-refund", env.admin, {"type": "MERCHANT_BANK_CARD"})
    assert r.status_code == 200, r.text
    # WeChat paid the merchant's card, not the player: still reserved, waiting for the payout
    refund = env.wait_status(no, "offline_pending")
    assert refund.offline_reason == "MERCHANT_BANK_CARD" and refund.user_received_account.startswith("商户")
    assert sorted(t.type for t in open_tasks(refund_no=no)) == ["offline_payout", "refund_abnormal"]
    assert env.fresh(o.order_no).reserved_amount == o.actual_amount
    env.check_invariants(o.order_no)
    cancel = env.api.post(f"/api/admin/pay/refunds/{no}/cancel-offline", env.admin, {"reason": "x"})
    assert cancel.status_code == 409  # that money is the player's: it cannot be released
    assert _payout(env, no).status_code == 200
    refund = _settled_ok(env, o, no, o.actual_amount)
    assert env.fresh(o.order_no).status == 4
    assert [e.to_status for e in refund.events if e.to_status != e.from_status][-4:] == \
        ["abnormal", "processing", "offline_pending", "success"]


# ------------------------------------------------------------ notifications


def test_dropped_notification_is_recovered_by_the_poller(env):
    env.sim.configure(drop_notifications=True)
    o = env.order(11)
    no = created_no(create(env, o.order_no, 2000))
    wait_sim(env, no, "SUCCESS")
    assert env.refund(no).status == "processing"
    report = env.poll()
    assert report.changed == 1 and report.errors == 0
    refund = _settled_ok(env, o, no, 2000)
    assert events_to(refund, "success")[0].actor == "poller"


def test_duplicated_notifications_change_things_once(env):
    env.sim.configure(notification_copies=3)
    o = env.order(11)
    no = created_no(create(env, o.order_no, 3000))
    _settled_ok(env, o, no, 3000)
    deliveries = env.wait_deliveries([no], at_least=3)
    assert len(deliveries) >= 3 and all(n["ok"] for n in deliveries), deliveries
    assert env.sim.redeliver(no) == 204
    assert env.drain_restorations() == 0
    assert len(events_to(env.refund(no), "success")) == 1
    env.check_invariants(o.order_no)
    check_restorations(env, o.order_no)


def test_query_errors_during_poll_reschedule_without_changing_anything(env):
    env.sim.configure(drop_notifications=True)
    o = env.order(13)
    no = created_no(create(env, o.order_no, 900))
    wait_sim(env, no, "SUCCESS")
    env.sim.push_scenario("FREQUENCY_LIMITED", op="query")
    report = env.poll()
    assert report.errors == 1 and report.changed == 0
    refund = env.refund(no)
    assert refund.status == "processing" and refund.poll_attempts == 1
    assert refund.work.startswith("poll#") and refund.work_due_at > refund.updated_at  # pushed back (~5 min)
    assert env.poll().due == 0  # not due again yet
    env.check_invariants(o.order_no)


# ------------------------------------------------------------ our own infrastructure


@pytest.mark.parametrize("how", ["returns_false", "raises"])
def test_crash_between_commit_and_enqueue_is_swept(env, monkeypatch, how):
    def broken(refund_no, order_no):
        if how == "raises":
            raise ConnectionError("SQS unreachable")
        return False

    monkeypatch.setattr(queue, "publish_restore", broken)
    o = env.order(1)
    no = created_no(create(env, o.order_no, o.actual_amount))
    refund = env.wait_status(no, "success")
    time.sleep(1.0)  # let WeChat's retries (if any) arrive while the queue is still broken
    refund = env.refund(no)
    assert refund.restoration_status == "pending" and refund.work.startswith("restore#")  # the durable marker
    assert env.drain_restorations() == 0  # nothing reached the queue
    assert len(events_to(refund, "success")) == 1
    env.check_invariants(o.order_no)
    monkeypatch.undo()
    assert poller.sweep() == 1
    assert env.drain_restorations() == 1
    check_restorations(env, o.order_no)
    assert env.fresh(o.order_no).shipping.cancelled is True
    assert poller.sweep() == 0


class _FailingRepo:
    """The repository, except that the first restoration transaction fails (a crash mid-restoration)."""

    def __init__(self):
        self.failed = False

    def __getattr__(self, name):
        return getattr(repo, name)

    def write(self, items):
        if any(it.label == "coupon" for it in items) and not self.failed:
            self.failed = True
            raise ConnectionError("DynamoDB unreachable")
        return repo.write(items)


def test_sqs_redelivery_after_a_crash_mid_restoration_restores_once(env, monkeypatch):
    from chalicelib.adapters.models import UserCoupon

    o = env.order(1)  # points, the coupon and the shipment: one transaction, which fails once
    no = created_no(create(env, o.order_no, o.actual_amount))
    env.wait_status(no, "success")
    points_before = repo.get_user(o.user_id).points_balance
    failing = _FailingRepo()
    monkeypatch.setattr(restoration, "repo", failing)
    assert env.drain_restorations() == 1  # delivered, handler raised, message left on the queue
    assert failing.failed and env.refund(no).restoration_status == "pending"
    # all or nothing: the crash left no half-restored state behind
    assert repo.get_user(o.user_id).points_balance == points_before
    assert UserCoupon.get(o.user_id, o.coupon_id).status == "used"
    assert env.fresh(o.order_no).shipping.cancelled is False
    deadline = time.monotonic() + 10
    n = 0
    while n == 0 and time.monotonic() < deadline:  # visibility timeout (1 s), then redelivery
        time.sleep(0.3)
        n = env.drain_restorations()
    assert n == 1
    refund = env.refund(no)
    assert refund.restoration_status == "done"
    assert repo.get_user(o.user_id).points_balance == points_before + refund.restoration["points"] > points_before
    check_restorations(env, o.order_no)
    env.check_invariants(o.order_no)
