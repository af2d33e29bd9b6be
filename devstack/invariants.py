"""The money invariants of one order, checked against the stored data (tests and benchmarks).

Σ success = refunded, Σ in flight = reserved, Σ open applications = requested, and
refunded + reserved + refundable = actual_amount, with applicable = refundable - requested.
"""
from __future__ import annotations

import time



def check(order_no: str, *, settle_timeout: float = 5.0) -> None:
    """Raise AssertionError when an invariant does not hold for ``order_no``.

    The order and its refunds are two reads; a notification may settle a refund between them
    (the refund and the order change in one transaction). The refunds are read before and after
    the order, and the snapshot is used only when nothing moved in between."""
    from chalicelib.adapters import repository as repo
    from chalicelib.domain.refunds import RefundTotals

    def state(refunds):
        return sorted((r.refund_no, r.status, r.amount, r.requested_amount) for r in refunds)

    deadline = time.monotonic() + settle_timeout
    while True:
        before = repo.refunds_of_order(order_no)
        o = repo.get_order(order_no)
        refunds = repo.refunds_of_order(order_no)
        if state(before) == state(refunds):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the refunds of {order_no} kept changing")
        time.sleep(0.05)
    totals = RefundTotals.of(refunds)
    success, in_flight, requested = totals.refunded, totals.reserved, totals.requested
    assert o.refunded_amount == success, (order_no, "refunded", o.refunded_amount, success)
    assert o.reserved_amount == in_flight, (order_no, "reserved", o.reserved_amount, in_flight)
    assert o.requested_amount == requested, (order_no, "requested", o.requested_amount, requested)
    assert o.refunded_amount + o.reserved_amount + o.refundable_amount == o.actual_amount, order_no
    assert o.applicable_amount == o.refundable_amount - o.requested_amount, order_no
    assert 0 <= o.refundable_amount and success <= o.actual_amount, order_no
