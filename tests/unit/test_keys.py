"""Index keys come from the fields an item is written with, in one place (adapters/keys.py)."""
from chalicelib.adapters import keys
from chalicelib.adapters import repository as repo
from chalicelib.adapters.models import Order, Refund
from chalicelib.domain import clock


def _refund(**kw):
    base = dict(order_no="O", user_id="u", origin="admin", amount=1, requested_amount=1, status="offline_pending",
                created_by="a", order_total=1, created_at="t", updated_at="2026-05-01T01:00:00.000000Z")
    return Refund("R1", **{**base, **kw})


def _sets(item) -> dict:
    return {a.values[0].path[0]: a.values[1].value for a in item.actions if type(a).__name__ == "SetAction"}


def test_a_success_is_filed_under_the_day_of_its_success_time_set_in_the_same_change():
    # an offline payout paid on 04-30 (Beijing) and recorded on 05-02: the day is the payout's
    change = repo.refund_change(_refund(), expected_status="offline_pending", event=None,
                                fields={"status": "success", "updated_at": "2026-05-02T03:00:00.000000Z",
                                        "success_time": "2026-04-30T20:00:00+08:00"})
    assert _sets(change)["success_day_key"]["S"] == keys.day_key("R1", "2026-04-30T20:00:00+08:00")
    assert _sets(change)["success_day_key"]["S"].startswith("2026-04-30#")
    assert _sets(change)["status_key"]["S"] == keys.shard_key("success", "R1", "status")


def test_a_success_without_a_time_of_its_own_is_filed_under_the_change():
    change = repo.refund_change(_refund(status="processing"), expected_status="processing", event=None,
                                fields={"status": "success", "updated_at": "2026-05-02T17:00:00.000000Z"})
    assert _sets(change)["success_day_key"]["S"].startswith("2026-05-03#")  # Beijing is UTC+8


def test_keys_follow_only_what_the_write_changes():
    change = repo.refund_change(_refund(status="processing"), expected_status="processing", event=None,
                                fields={"poll_attempts": 2})
    assert set(_sets(change)) == {"poll_attempts"}
    queued = repo.refund_change(_refund(status="processing"), expected_status="processing", event=None,
                                fields={"work": "poll", "work_due_at": "x"})
    assert _sets(queued)["work"]["S"] == keys.shard_key("poll", "R1", "work")


def test_orders_get_their_keys_at_creation_and_with_the_payment():
    order = Order("O1", user_id="u", status=2, actual_amount=100, created_at="t",
                  payment={"out_trade_no": "O1", "paid_at": "2026-05-01T23:30:00+08:00"})
    assert order.list_pk == keys.list_key("O1") and order.status_key == keys.shard_key(2, "O1", "status")
    assert order.paid_day_key.startswith("2026-05-01#")
    assert keys.order_keys("O1", {"paid_at": "2026-05-01T16:30:00Z"})["paid_day_key"].startswith("2026-05-02#")


def test_shards_cover_every_key_they_hand_out():
    assert {keys.shard_key("poll", f"R{i}", "work") for i in range(500)} == set(keys.shard_keys("poll", "work"))


def test_the_clock_reads_beijing_days_and_can_be_replaced():
    from datetime import datetime, timezone

    assert clock.beijing_day(datetime(2026, 11, 26, 15, 59, tzinfo=timezone.utc)) == "2026-11-26"
    assert clock.beijing_day(datetime(2026, 11, 26, 16, 0, tzinfo=timezone.utc)) == "2026-11-27"
    assert clock.beijing_day_of("2026-11-26T16:00:00Z") == "2026-11-27" and clock.beijing_day_of("junk") is None
    fixed = datetime(2030, 1, 1, tzinfo=timezone.utc)
    with clock.use(lambda: fixed):
        assert clock.now() == fixed
    assert clock.now() != fixed
