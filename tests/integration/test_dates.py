"""Every date a request gives is a calendar date in range, through the running stack: anything
else is 400 VALIDATION_ERROR naming the field, never a 500 (``from=0001-01-01`` overflowed when
turned into UTC) and never a date read some other way (``2026-W49-1`` is an ISO week date)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain import clock

NOT_DATES = ["0001-01-01", "1999-12-31", "2026-W49-1", "2026-340", "2026-02-30", "2026-13-01", "20261201",
             "2026-12-01T00:00", "２０２６-１２-０１", "2026-12-1", " 2026-12-01", "9999-12-31"]


def _tomorrow() -> str:
    return (clock.beijing_date(clock.now()) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize("day", NOT_DATES + ["tomorrow"])
@pytest.mark.parametrize("field", ["from", "to"])
def test_the_activity_days_are_calendar_days_up_to_today(env, field, day):
    day = _tomorrow() if day == "tomorrow" else day
    finance = env.staff("finance", "fay")
    r = env.api.get(f"/api/admin/activity?operator=alice&{field}={day}", finance)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR" and r.json()["details"]["field"] == field
    r = env.api.get(f"/api/admin/activity?operator=alice&format=csv&{field}={day}", finance)
    assert r.status_code == 400 and r.json()["details"]["field"] == field


def test_the_first_and_the_last_day_in_range_are_taken(env):
    finance = env.staff("finance", "fay")
    today = clock.beijing_day(clock.now())
    r = env.api.get(f"/api/admin/activity?operator=alice&from={today}&to={today}", finance)
    assert r.status_code == 200 and r.json()["from"] == r.json()["to"] == today
    r = env.api.get("/api/admin/activity?operator=alice&from=2000-01-01&to=2000-03-31", finance)
    assert r.status_code == 200 and r.json()["items"] == []


@pytest.mark.parametrize("day", NOT_DATES)
def test_a_bill_date_is_a_calendar_day_in_the_window(env, day):
    r = env.api.post("/api/admin/reconciliations", env.admin, {"bill_date": day})
    assert r.status_code == 400 and r.json()["details"]["field"] == "bill_date", r.text
    if day.strip() == day:  # a path cannot carry the blank
        r = env.api.get(f"/api/admin/reconciliations/{day}", env.admin)
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", r.text


@pytest.mark.parametrize("paid_at", ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z",
                                     "2026-W49-1T10:00:00+08:00", "2026-12-01", "2026-02-30T10:00:00+08:00"])
def test_an_offline_payouts_time_is_in_range(env, paid_at):
    env.sim.push_scenario("USER_ACCOUNT_ABNORMAL")
    order = env.order(15)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": 300})
    assert r.status_code == 201 and r.json()["status"] == "offline_pending", r.text
    r = env.api.post(f"/api/admin/pay/refunds/{r.json()['refund_no']}/offline-payout", env.admin,
                     {"channel": "bank_transfer", "reference": "TRX-9", "paid_at": paid_at})
    assert r.status_code == 400 and r.json()["details"]["field"] == "paid_at", r.text


def test_an_offline_payouts_time_in_range_is_recorded_in_utc(env):
    env.sim.push_scenario("USER_ACCOUNT_ABNORMAL")
    order = env.order(15)
    refund_no = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": 300}).json()[
        "refund_no"]
    paid = clock.parse(env.refund(refund_no).created_at).astimezone(clock.BEIJING)  # it cannot precede the refund
    r = env.api.post(f"/api/admin/pay/refunds/{refund_no}/offline-payout", env.admin,
                     {"channel": "bank_transfer", "reference": "TRX-10", "paid_at": paid.isoformat()})
    assert r.status_code == 200, r.text
    assert env.refund(refund_no).offline_payout["paid_at"] == clock.iso(paid)
