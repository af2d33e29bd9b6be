"""An upgrade keeps the data: items written before their index keys existed are found through
the indexes once ``python -m deploy.backfill <table>`` has run, against the local DynamoDB
endpoint. Old-shaped items lack every key ``keys.item_keys`` derives today (and a refund's work
queue is the unsharded ``poll`` of before the shards), so a key added there is covered here too."""
from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from chalicelib import config
from chalicelib.adapters import keys, models
from chalicelib.adapters import reconciliations as recon_store
from chalicelib.adapters import refund_lists
from chalicelib.adapters import repository as repo
from chalicelib.adapters.refund_lists import RefundFilter
from chalicelib.adapters.models import ManualTask, Order, Payment, Refund
from chalicelib.domain import clock
from deploy import backfill

TABLES = ("orders", "payment_refunds", "manual_tasks")


def _put_old_shaped(item, **old) -> None:
    """Write ``item`` as a release before its keys would have: without any derived key (with
    ``old`` attributes instead), straight to the table."""
    table = item.Meta.base_name
    fields = backfill.fields_of(item)
    stored = {k: v for k, v in item.serialize().items() if k not in keys.item_keys(table, fields)}
    for name, value in old.items():
        stored[name] = {"S": value}
    client = boto3.client("dynamodb", region_name=config.settings().region, endpoint_url=config.aws_endpoint("dynamodb"))
    client.put_item(TableName=item.Meta.table_name, Item=stored)


@pytest.fixture
def old_items(case):
    models.bind()
    now = clock.now()
    at = clock.iso(now)
    paid = Order("GBOLD0001", user_id="u9", status=2, source_type=1, total_amount=900, actual_amount=900,
                 created_at=at, payment=Payment(out_trade_no="GBOLD0001", transaction_id="4200OLD1", paid_at=at),
                 refundable_amount=900)
    pending = Order("GBOLD0002", user_id="u9", status=1, source_type=1, total_amount=500, actual_amount=500,
                    created_at=clock.iso(now - timedelta(minutes=1)))
    base = dict(order_no="GBOLD0001", user_id="u9", origin="admin", amount=100, requested_amount=100,
                created_by="admin:ops-1", order_total=900, created_at=at, updated_at=at)
    success = Refund("RFOLD0001", status="success", success_time=at, accepted_at=at, **base)
    awaited = Refund("RFOLD0002", status="processing", work_due_at=clock.iso(now - timedelta(seconds=1)), **base)
    review = Refund("RFOLD0003", status="pending_review", **base)
    task = ManualTask("legacy.GBOLD0001", type="unknown_refund", order_no="GBOLD0001", action="核对", created_at=at)
    for item in (paid, pending, success, review, task):
        _put_old_shaped(item)
    _put_old_shaped(awaited, work="poll")  # the work queue before it was sharded
    return {"day": clock.beijing_day(now), "now": clock.iso(now)}


def _found(day: str, now: str) -> dict:
    """What each index finds of the old items."""
    def nos(page, attr):
        return {getattr(i, attr) for i in page.items}

    return {
        "by_time": nos(repo.list_orders(status=None, source_type=None, user_id=None, limit=100, cursor=None),
                       "order_no") & {"GBOLD0001", "GBOLD0002"},
        "by_status_key": nos(repo.list_orders(status=2, source_type=None, user_id=None, limit=100, cursor=None),
                             "order_no") & {"GBOLD0001"},
        "by_paid_day": {p.order_no for p in recon_store.payments_on(day)} & {"GBOLD0001"},
        "by_transaction": {o.order_no for o in Order.by_transaction.query(keys.transaction_key("4200OLD1"))},
        "refunds by_status_key": nos(refund_lists.list_refunds(RefundFilter(status="pending_review"), oldest_first=False,
                                                               limit=100, cursor=None), "refund_no"),
        "by_accepted_day": {a.refund_no for a in recon_store.accepted_on(day)},
        "pending_work": set(repo.due_work("poll", now, 100)),
        "tasks by_status_key": nos(repo.list_tasks(status="open", task_type=None, limit=100, cursor=None), "task_id")
        & {"legacy.GBOLD0001"},
    }


FOUND = {"by_time": {"GBOLD0001", "GBOLD0002"}, "by_status_key": {"GBOLD0001"}, "by_paid_day": {"GBOLD0001"},
         "by_transaction": {"GBOLD0001"}, "refunds by_status_key": {"RFOLD0003"}, "by_accepted_day": {"RFOLD0001"}, "pending_work": {"RFOLD0002"},
         "tasks by_status_key": {"legacy.GBOLD0001"}}


def _run(tmp_path, table: str, *more: str) -> dict:
    path = tmp_path / f"{table}.json"
    assert backfill.main([table, "--stage", "local", "--checkpoint", str(path), "--rate", "100000", *more]) == 0
    return json.loads(path.read_text(encoding="utf-8"))


def test_old_items_are_found_through_the_indexes_after_the_backfill(old_items, tmp_path, capsys):
    assert all(not found for found in _found(old_items["day"], old_items["now"]).values())
    for table in TABLES:
        state = _run(tmp_path, table, "--page", "7")
        assert state["done"] and state["updated"] >= 1 and state["changed_meanwhile"] == 0
    assert _found(old_items["day"], old_items["now"]) == FOUND
    progress = capsys.readouterr().err
    assert "orders: " in progress and "given keys" in progress and "items/s" in progress and "; done" in progress
    # the seeded items had their keys: already right, not written
    assert _run(tmp_path, "orders", "--restart")["updated"] == 0


def test_a_stopped_backfill_goes_on_from_its_checkpoint_and_a_finished_one_does_nothing(old_items, tmp_path):
    first = _run(tmp_path, "payment_refunds", "--page", "1", "--max-items", "1")
    assert first["scanned"] == 1 and not first["done"] and first["last_key"]
    rest = _run(tmp_path, "payment_refunds", "--page", "2")
    total = sum(1 for _ in Refund.scan())
    assert rest["done"] and rest["scanned"] == total and len(rest["runs"]) == 2  # nothing scanned twice
    assert rest["updated"] == 3
    again = _run(tmp_path, "payment_refunds")
    assert again == rest  # done already: nothing read, nothing written
    assert _found(old_items["day"], old_items["now"])["by_accepted_day"] == {"RFOLD0001"}


def test_an_item_a_writer_changed_meanwhile_is_left_as_that_writer_wrote_it(old_items):
    stale = Refund.get("RFOLD0003", consistent_read=True)
    actions, condition = backfill.changes("payment_refunds", stale)
    # the live service moves it (and gives it its keys) between the backfill's read and its write
    change = repo.refund_change(stale, expected_status="pending_review", fields={"status": "rejected"}, event=None)
    repo.write([change])
    assert repo.update(Refund("RFOLD0003"), actions, condition) is False
    after = Refund.get("RFOLD0003", consistent_read=True)
    assert after.status == "rejected" and after.status_key == keys.shard_key("rejected", "RFOLD0003", "status")


def test_an_item_whose_keys_are_right_needs_no_write(case):
    assert backfill.changes("orders", case.order(1)) is None


def test_the_rate_is_kept_without_waiting_more_than_it_must():
    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = backfill.Limiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.take()
    assert slept == [0.25, 0.25, 0.25, 0.25]  # the first goes at once, then one every 1/4 s
    now[0] += 10  # idle: no debt is paid back as a burst
    limiter.take()
    limiter.take()
    assert slept[-1] == 0.25 and len(slept) == 5
