"""The persistence boundary without a database: what each balance operation moves and under
which condition, how a cancelled transaction names its failed item, and what one restoration
transaction holds. GIVEN an operation, WHEN it is built, THEN its writes keep the invariant."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from pynamodb.connection import Connection

from chalicelib.adapters import balances
from chalicelib.adapters import repository as repo
from chalicelib.domain import refunds as refund_rules
from chalicelib.adapters.models import ManualTask, NotifyReceipt, Order, PointsEntry, Refund
from chalicelib.domain.enums import TaskType
from chalicelib.domain.tasks import Task

BALANCES = ("refunded_amount", "reserved_amount", "refundable_amount", "requested_amount", "applicable_amount")


def deltas(item: repo.TxItem) -> dict[str, int]:
    """The ADD amounts an update applies, by attribute (SET/REMOVE actions ignored)."""
    out = {}
    for action in item.actions:
        if type(action).__name__ == "AddAction":
            path, value = action.values
            out[path.path[0]] = int(value.value["N"])
    return out


def keeps_invariant(d: dict[str, int]) -> bool:
    """refunded + reserved + refundable stays actual; applicable stays refundable - requested."""
    g = {k: d.get(k, 0) for k in BALANCES}
    return (g["refunded_amount"] + g["reserved_amount"] + g["refundable_amount"] == 0
            and g["applicable_amount"] == g["refundable_amount"] - g["requested_amount"])


@pytest.mark.parametrize("item, moved", [
    (balances.request("o", 300), {"requested_amount": 300, "applicable_amount": -300}),
    (balances.request("o", 300, application_of="RK1"), {"requested_amount": 300, "applicable_amount": -300}),
    (balances.withdraw("o", 300, application=True), {"requested_amount": -300, "applicable_amount": 300}),
    (balances.reserve("o", 500), {"refundable_amount": -500, "reserved_amount": 500, "applicable_amount": -500,
                                  "refund_count": 1}),
    (balances.reserve("o", 200, from_request=300, application=True),
     {"refundable_amount": -200, "reserved_amount": 200, "requested_amount": -300, "applicable_amount": 100,
      "refund_count": 1}),
    (balances.release("o", 500, uncount=False), {"reserved_amount": -500, "refundable_amount": 500,
                                                 "applicable_amount": 500}),
    (balances.release("o", 500, uncount=True), {"reserved_amount": -500, "refundable_amount": 500,
                                                "applicable_amount": 500, "refund_count": -1}),
    (balances.settle("o", 500, refunded_before=100, actual=1000, now="t"),
     {"reserved_amount": -500, "refunded_amount": 500}),
])
def test_every_balance_move_keeps_the_invariant(item, moved):
    assert item.label == balances.LABEL and item.kind == "update"
    assert deltas(item) == moved
    assert keeps_invariant(deltas(item))


def _cond(item) -> str:
    return str(item.condition)


def test_reservations_are_conditional_on_what_they_spend():
    assert "refundable_amount >= {'N': '500'}" in _cond(balances.reserve("o", 500))
    assert "refund_count < {'N': '50'}" in _cond(balances.reserve("o", 500))
    assert "status = {'N': '2'}" in _cond(balances.reserve("o", 500))
    application = _cond(balances.request("o", 300, application_of="RK1"))
    assert "applicable_amount >= {'N': '300'}" in application and "attribute_not_exists (open_application)" in application
    assert "refundable_amount >= {'N': '300'}" in _cond(balances.request("o", 300))


def test_settling_is_optimistic_on_the_refunded_amount_read_and_closes_a_full_refund():
    partial = balances.settle("o", 500, refunded_before=100, actual=1000, now="t")
    assert "refunded_amount = {'N': '100'}" in _cond(partial)
    assert "status" not in {a.values[0].path[0] for a in partial.actions if type(a).__name__ == "SetAction"}
    full = balances.settle("o", 900, refunded_before=100, actual=1000, now="t")
    sets = {a.values[0].path[0]: a.values[1] for a in full.actions if type(a).__name__ == "SetAction"}
    assert sets["status"].value == {"N": "4"}  # 已退款


def test_mark_paid_requires_a_pending_order_and_the_exact_amount():
    cond = _cond(balances.mark_paid("o", total=6800, transaction_id="42", paid_at="t", now="t"))
    assert "status = {'N': '1'}" in cond and "actual_amount = {'N': '6800'}" in cond


# ---------------------------------------------------------------- transactions


def test_pynamodb_sends_items_in_the_order_the_repository_assumes(monkeypatch):
    """CancellationReasons are matched to items by index: pin the order pynamodb sends them in."""
    sent = []

    def capture(self, operation_name, operation_kwargs, settings=None):
        sent.append((operation_name, operation_kwargs))
        return {}

    monkeypatch.setattr(Connection, "dispatch", capture)
    items = [
        repo.TxItem("order", "update", Order("o"), Order.order_no.exists(), [Order.refund_count.add(1)]),
        repo.new_refund("r", dict(order_no="o", user_id="u", origin="admin", amount=1, requested_amount=1,
                                  status="submitted", created_by="a", order_total=1, created_at="t", updated_at="t")),
        repo.TxItem("check", "check", (Order, "o2"), Order.order_no.exists()),
        repo.notify_receipt(repo.Receipt("n", "REFUND.SUCCESS", None, "t", 1)),
    ]
    monkeypatch.setattr(repo, "connection", lambda: Connection(region="ap-east-1", host="http://127.0.0.1:9"))
    repo._transact_once(items)
    (name, kwargs), = sent
    kinds = [next(iter(entry)) for entry in kwargs["TransactItems"]]
    assert name == "TransactWriteItems"
    assert kinds == ["ConditionCheck", "Put", "Put", "Update"]
    assert [it.label for it in repo.sent_order(items)] == ["check", "refund", "receipt", "order"]


def test_a_cancelled_transaction_names_the_item_at_the_reasons_index():
    ordered = repo.sent_order([repo.TxItem("order", "update", None), repo.TxItem("refund", "put", None),
                               repo.TxItem("receipt", "put", None)])
    reasons = [SimpleNamespace(code="None"), SimpleNamespace(code="ConditionalCheckFailed"), None]
    assert repo.cancellation_reasons(ordered, reasons) == {"receipt": "ConditionalCheckFailed"}


def test_one_restoration_is_one_transaction_ending_in_its_done_marker():
    task = Task(TaskType.RETURN_TO_WAREHOUSE, "r", "x", order_no="o", part="shipment", refund_no="r")
    items = repo.restoration_items(refund_no="r", user_id="u", order_no="o", points=120, coupon_id="C1",
                                   revoke_inventory=["I1", "I2"], revoke_virtual=True, cancel_shipment=False,
                                   shipping_exception="退款 r：待退货入库", tasks=[task], outcome={}, now="t")
    labels = [it.label for it in items]
    assert labels == ["points_entry", "points_balance", "coupon", "inventory:I1", "inventory:I2", "order",
                      f"task:{task.task_id}", "restoration"]
    assert "attribute_not_exists (entry_id)" in str(items[0].condition)
    assert "restoration_status = {'S': 'pending'}" in str(items[-1].condition)
    order_cond = str(items[5].condition)
    assert "virtual.revoked" in order_cond and "shipping.status IN" in order_cond
    # nothing to put back: the marker alone, a plain conditional write
    assert [it.label for it in repo.restoration_items(
        refund_no="r", user_id="u", order_no="o", points=0, coupon_id=None, revoke_inventory=[],
        revoke_virtual=False, cancel_shipment=False, shipping_exception=None, tasks=[], outcome={},
        now="t")] == ["restoration"]


def test_a_long_refund_history_is_capped_without_losing_a_concurrent_append():
    from chalicelib.adapters.models import RefundEvent

    def refund_with(n):
        events = [RefundEvent(at=f"t{i}", actor="a", to_status="submitted") for i in range(n)]
        return Refund("r", order_no="o", user_id="u", origin="admin", amount=1, requested_amount=1, status="submitted",
                      created_by="a", order_total=1, created_at="t", updated_at="t", events=events)

    new = RefundEvent(at="new", actor="poller", to_status="submitted")
    short = repo.refund_change(refund_with(3), expected_status="submitted", fields={}, event=new)
    assert "size" not in str(short.condition)  # an append, nothing to check
    cap = refund_rules.MAX_EVENTS_ON_REFUND
    full = repo.refund_change(refund_with(cap), expected_status="submitted", fields={}, event=new)
    assert f"size (events) = {{'N': '{cap}'}}" in str(full.condition)
    sets = {a.values[0].path[0]: a.values[1] for a in full.actions if type(a).__name__ == "SetAction"}
    kept = sets["events"].value["L"]
    assert len(kept) == cap and kept[0]["M"]["at"] == {"S": "t0"} and kept[-1]["M"]["at"] == {"S": "new"}
    assert kept[-2]["M"]["at"] == {"S": f"t{cap - 1}"}
    assert sets["events_dropped"].value == {"N": "1"}
