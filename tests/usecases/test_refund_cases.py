"""Use cases in-process (no HTTP): GIVEN the demo shop, WHEN a use case runs on the edges
passed in, THEN the books, WeChat (the simulator) and the queues say what they should."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.adapters import repository as repo
from chalicelib.adapters.models import User, UserCoupon
from chalicelib.domain import clock
from chalicelib.domain.errors import DomainError
from chalicelib.services import edges, notifications, poller, refunds, restoration

ADMIN, OTHER = "admin:ops-1", "admin:ops-2"


def test_create_notify_restore(case):
    order = case.order(1)  # u1001: points, a coupon, goods not yet shipped
    points = User.get("u1001").points_balance
    created = refunds.create_admin_refund(actor=ADMIN, order_no=order.order_no, amount=order.actual_amount,
                                          reason="质量问题", idempotency_key="case-1")
    assert created.created and created.refund.status == "processing"
    assert case.sim.refund(created.refund.refund_no)["amount"]["refund"] == order.actual_amount
    again = refunds.create_admin_refund(actor=ADMIN, order_no=order.order_no, amount=order.actual_amount,
                                        reason="质量问题", idempotency_key="case-1")
    assert not again.created and again.refund.refund_no == created.refund.refund_no

    event = case.notification_for(created.refund.refund_no)
    assert notifications.handle_refund_event(event) == "processing->success"
    assert notifications.handle_refund_event(event) == "noop" or repo.get_refund(created.refund.refund_no).status == "success"
    assert case.published.restores == [(created.refund.refund_no, order.order_no)]  # queued once

    outcome = restoration.restore(created.refund.refund_no, order.order_no)
    assert outcome["points"] == 5000 and User.get("u1001").points_balance == points + 5000
    assert UserCoupon.get("u1001", "CP-1001-A").status == "unused"
    assert restoration.restore(created.refund.refund_no, order.order_no)["points"] == 5000  # redelivery: once
    assert User.get("u1001").points_balance == points + 5000
    assert repo.get_order(order.order_no).status == 4  # 已退款
    case.check_invariants(order.order_no)


def test_apply_approve_and_reject(case):
    order = case.order(1)
    applied = refunds.apply_for_refund(user_id="u1001", order_no=order.order_no, amount=1000, reason="不想要了",
                                       idempotency_key=None)
    assert applied.refund.status == "pending_review" and case.sim.create_calls() == 0
    approved = refunds.approve(actor=ADMIN, refund_no=applied.refund.refund_no, amount=800)
    assert approved.status in ("submitted", "processing") and approved.amount == 800
    assert case.sim.refund(approved.refund_no)["amount"]["refund"] == 800
    case.check_invariants(order.order_no)

    second = refunds.apply_for_refund(user_id="u1001", order_no=order.order_no, amount=300, reason="再退一点",
                                      idempotency_key=None)
    rejected = refunds.reject(actor=OTHER, refund_no=second.refund.refund_no, reason="已超出可退范围")
    assert rejected.status == "rejected" and repo.get_order(order.order_no).requested_amount == 0
    case.check_invariants(order.order_no)


def test_the_poller_settles_what_no_notification_told(case):
    case.sim.configure(drop_notifications=True)
    order = case.order(2)
    created = refunds.create_admin_refund(actor=ADMIN, order_no=order.order_no, amount=100, reason="",
                                          idempotency_key=None)
    no = created.refund.refund_no
    deadline = clock.now() + timedelta(seconds=20)
    while case.sim.refund(no)["status"] != "SUCCESS":  # WeChat settles it after its outcome delay
        assert clock.now() < deadline, "the simulator never settled the refund"
        case.sim.complete(no)
    later = clock.now() + timedelta(hours=1)  # the refund's check is due
    with edges.use(edges.Edges(clock=lambda: later, publisher=lambda: case.published)):
        report = poller.poll()
    assert (report.due, report.changed) == (1, 1)
    settled = repo.get_refund(no)
    assert settled.status == "success" and settled.success_actor == "poller"
    assert case.published.restores == [(no, order.order_no)]
    case.check_invariants(order.order_no)


def test_a_reconciliation_runs_in_process(case):
    from chalicelib.services import reconciliation

    order = case.order(2)
    created = refunds.create_admin_refund(actor=ADMIN, order_no=order.order_no, amount=100, reason="",
                                          idempotency_key=None)
    notifications.handle_refund_event(case.notification_for(created.refund.refund_no))
    today = clock.beijing_day(clock.now())
    case.sim.configure(bill_ready_hour=None)  # today's bill so far (WeChat serves a day's bill the next morning)
    report = reconciliation.start(today, actor="test", deadline=reconciliation.Deadline(3600))
    assert report["status"] == "done", report
    # the refund matches; the demo's pending order 7 is paid at WeChat, its notification lost:
    # the payment query books it (a payment the bill shows is never left as a discrepancy)
    assert (report["lines_read"], report["matched"], report["discrepancies"], report["applied"]) == (2, 2, 0, 1)
    pending = case.order(7)
    assert pending.status == 2 and pending.payment.transaction_id
    assert repo.get_task(f"recon_discrepancy.{today}.status_mismatch.{pending.order_no}") is None


def test_four_eyes_and_the_task_restoration_leaves(case):
    signed = case.order(3)  # goods signed for: an operator's refund waits for a second person
    created = refunds.create_admin_refund(actor=ADMIN, order_no=signed.order_no, amount=signed.actual_amount,
                                          reason="", idempotency_key=None)
    assert created.refund.status == "pending_review"
    with pytest.raises(DomainError) as refused:
        refunds.approve(actor=ADMIN, refund_no=created.refund.refund_no, amount=None)
    assert refused.value.code == "FOUR_EYES_REQUIRED"
    approved = refunds.approve(actor=OTHER, refund_no=created.refund.refund_no, amount=None)
    notifications.handle_refund_event(case.notification_for(approved.refund_no))
    restoration.restore(approved.refund_no, signed.order_no)
    task = repo.get_task(f"return_to_warehouse.{approved.refund_no}.shipment")
    assert task.status == "open" and task.refund_no == approved.refund_no and task.type == "return_to_warehouse"
    case.check_invariants(signed.order_no)


def test_a_notification_whose_order_settles_another_refund_first_is_acknowledged_and_settled_by_the_poller(
        case, monkeypatch):
    """Refunds of one order settle one at a time (each keyed on the order's refunded total as read).
    A notification that loses its turn does not keep WeChat waiting past its 5 s: its receipt is
    stored, it is answered, and the poller settles the refund (asking WeChat) at its next run."""
    order = case.order(11)
    first, second = (refunds.create_admin_refund(actor=ADMIN, order_no=order.order_no, amount=amount, reason="拆单",
                                                 idempotency_key=None).refund for amount in (300, 500))
    read_before = repo.get_order(order.order_no)  # what the second notification read...
    assert notifications.handle_refund_event(case.notification_for(first.refund_no)) == "processing->success"
    stale = lambda order_no, refund_no: (read_before, repo.get_refund(refund_no))  # noqa: E731 - ...before the first settled
    monkeypatch.setattr(repo, "get_order_and_refund", stale)
    event = case.notification_for(second.refund_no)
    assert notifications.handle_refund_event(event) == "settle_later"
    waiting = repo.get_refund(second.refund_no)
    assert waiting.status == "processing" and waiting.work_due_at <= clock.iso(clock.now())
    assert notifications.handle_refund_event(event) == "processing->processing"  # a redelivery: its receipt is stored
    assert repo.get_refund(second.refund_no).status == "processing"
    monkeypatch.undo()
    assert poller.poll().changed == 1
    settled = repo.get_refund(second.refund_no)
    assert settled.status == "success" and settled.cumulative_refunded == 800  # its place after the first
    assert [r for r, _ in case.published.restores] == [first.refund_no, second.refund_no]
    case.check_invariants(order.order_no)
