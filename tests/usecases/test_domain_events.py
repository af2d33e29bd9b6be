"""Domain events: every refund state change is stored in the transaction of the change and
published once, in order, on the stack's EventBridge bus (seen through the bus's tap queue)."""
from __future__ import annotations

import pytest

from chalicelib.adapters import outbox
from chalicelib.adapters import repository as repo
from chalicelib.domain import events as event_rules
from chalicelib.domain.errors import DomainError
from chalicelib.services import events, notifications, refunds, restoration

ADMIN = "admin:ops-1"


def _bus(case) -> list[dict]:
    return case.stack.published_events()


def test_every_change_of_a_refund_once_in_order_with_its_schema_version(case):
    order = case.order(1)
    applied = refunds.apply_for_refund(user_id="u1001", order_no=order.order_no, amount=1000, reason="不想要了",
                                       idempotency_key="ev-1").refund
    refunds.apply_for_refund(user_id="u1001", order_no=order.order_no, amount=1000, reason="不想要了",
                             idempotency_key="ev-1")  # a replay is no change
    refunds.approve(actor=ADMIN, refund_no=applied.refund_no, amount=800)
    event = case.notification_for(applied.refund_no)
    notifications.handle_refund_event(event)
    notifications.handle_refund_event(event)  # WeChat's repeat is no change either
    restoration.restore(applied.refund_no, order.order_no)
    restoration.restore(applied.refund_no, order.order_no)
    with pytest.raises(DomainError):
        refunds.reject(actor=ADMIN, refund_no=applied.refund_no, reason="晚了")  # refused: nothing told

    assert events.relay().published >= 4
    assert events.relay().published == 0  # nothing is sent twice
    told = _bus(case)
    assert all(e["source"] == event_rules.SOURCE for e in told)
    mine = [e for e in told if e["detail"]["refund_no"] == applied.refund_no]
    changes = [e["detail"] for e in mine if e["detail-type"] == "RefundStatusChanged"]
    history = repo.get_refund(applied.refund_no).events
    assert [(c["from_status"], c["to_status"]) for c in changes] == \
        [(h.from_status, h.to_status) for h in history if h.from_status != h.to_status]
    assert [c["to_status"] for c in changes] == ["pending_review", "submitted", "processing", "success"]
    assert [c["seq"] for c in changes] == sorted(c["seq"] for c in changes)
    assert len({c["event_id"] for c in changes}) == len(changes)
    assert all(c["schema_version"] == event_rules.SCHEMA_VERSION for c in changes)
    assert changes[1]["amount"] == 800 and changes[1]["by"] == "staff" and changes[0]["by"] == "player"
    restored = [e["detail"] for e in mine if e["detail-type"] == "RefundRestorationDone"]
    assert len(restored) == 1 and restored[0]["schema_version"] == 1
    assert restored[0]["points"] == repo.get_refund(applied.refund_no).restoration["points"]


def test_a_failed_publish_loses_nothing_and_keeps_the_order(case, monkeypatch):
    order = case.order(1)
    applied = refunds.apply_for_refund(user_id="u1001", order_no=order.order_no, amount=500, reason="不想要了",
                                       idempotency_key=None).refund
    refunds.withdraw_application(user_id="u1001", refund_no=applied.refund_no, reason="撤回")

    from chalicelib.adapters import bus

    calls = []

    def refuse_first(entries):
        calls.append([e["detail"]["event_id"] for e in entries])
        return [False] + [True] * (len(entries) - 1) if len(calls) == 1 else real(entries)

    real = bus.put_events
    monkeypatch.setattr(bus, "put_events", refuse_first)
    first = events.relay()
    assert first.failed == 1 and first.published == 0 and first.held == 1  # the withdrawal waits for the creation
    assert calls[0] == [f"refund#{applied.refund_no}#0"]
    assert _bus(case) == []
    second = events.relay()
    assert second.published == 2 and second.failed == 0
    told = [e["detail"] for e in _bus(case)]
    assert [(d["seq"], d["to_status"]) for d in told] == [(0, "pending_review"), (1, "rejected")]
    assert outbox.unsent(10) == []


def test_publish_order_keeps_each_stream_in_seq_order():
    class E:
        def __init__(self, stream, seq, at):
            self.stream, self.seq, self.created_at = stream, seq, at

    a1, a0, b0 = E("a", 1, "t1"), E("a", 0, "t2"), E("b", 0, "t1")  # a's writers' clocks disagreed
    ordered = event_rules.publish_order([a0, b0, a1])
    assert [(e.stream, e.seq) for e in ordered if e.stream == "a"] == [("a", 0), ("a", 1)]
    assert len(ordered) == 3


def test_a_reconciliation_result_is_told_once(case):
    from chalicelib.domain import clock
    from chalicelib.services import reconciliation

    today = clock.beijing_day(clock.now())
    case.sim.configure(bill_ready_hour=None)
    first = reconciliation.start(today, actor="test", deadline=reconciliation.Deadline(3600))
    assert first["status"] == "done", first
    events.relay()
    told = [e["detail"] for e in _bus(case) if e["detail-type"] == "ReconciliationFinished"]
    assert len(told) == 1
    assert told[0]["bill_date"] == today and told[0]["status"] == "done" and told[0]["schema_version"] == 1
    assert told[0]["figures"]["lines_read"] == first["lines_read"]
    events.relay()
    assert [e for e in _bus(case) if e["detail-type"] == "ReconciliationFinished"] == []
