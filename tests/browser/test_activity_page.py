"""操作记录 page over GET /api/admin/activity (operator, day range, CSV), and the signed-in
operator's limits and today's remaining allowance in the header on every page."""
from __future__ import annotations

import csv
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from chalicelib.domain import clock
from tests.browser.test_roles import sign_in

pytestmark = pytest.mark.browser


def test_activity_of_an_operator_with_csv_and_allowance(console):
    env, page = console.env, console.page
    finance = env.staff("finance", "fin-1")
    made = []
    for n, amount in ((1, 500), (2, 700)):
        r = env.api.post("/api/admin/pay/refunds", finance, {"order_no": env.order(n).order_no, "amount": amount})
        assert r.status_code == 201, r.text
        made.append(r.json()["refund_no"])
    sign_in(console, "finance", "fin-1")
    remaining = page.locator("#allowance-remaining")
    expect(remaining).to_contain_text("今日剩余 ¥")
    me = env.api.get("/api/admin/me", finance).json()["limits"]
    expect(page.locator("#allowance")).to_contain_text(f"今日已用 ¥{me['daily_used_yuan']}")
    assert me["daily_used"] == 1200
    expect(remaining).to_have_text(f"今日剩余 ¥{me['daily_remaining_yuan']}")

    page.click("#nav a[data-nav=activity]")
    rows = page.locator("#activity-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#activity-operator")).to_have_value("fin-1")
    today = clock.beijing_day(clock.now())
    expect(page.locator("#activity-from")).to_have_value(today)
    assert {r.get_attribute("data-refund") for r in rows.all()} == set(made)
    expect(rows.first.locator("td[data-label=操作]")).to_have_text("发起退款")
    console.shot("activity")

    # a new refund made elsewhere shows in the header on the next page
    r = env.api.post("/api/admin/pay/refunds", finance, {"order_no": env.order(13).order_no, "amount": 100})
    assert r.status_code == 201, r.text
    page.click("#nav a[data-nav=orders]")
    after = env.api.get("/api/admin/me", finance).json()["limits"]["daily_remaining_yuan"]
    expect(remaining).to_have_text(f"今日剩余 ¥{after}")
    page.click("#nav a[data-nav=activity]")
    expect(rows).to_have_count(3)

    with page.expect_download() as info:
        page.click("#activity-csv")
    with open(info.value.path(), encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][0] == "时间" and len(table) == 4

    page.fill("#activity-operator", "nobody")
    page.click("#activity-filters button[type=submit]")
    expect(page.locator("#main .empty")).to_have_text("这段时间没有操作记录")
    page.fill("#activity-operator", "fin-1")
    today = clock.beijing_date(clock.now())
    page.fill("#activity-from", (today - timedelta(days=200)).isoformat())  # past the 92 days one query may span
    page.fill("#activity-to", today.isoformat())
    page.click("#activity-filters button[type=submit]")
    expect(page.locator("#main .list-body .note.error")).to_contain_text("92")


def test_support_sees_its_allowance_but_no_activity_link(console):
    sign_in(console, "support", "s-1")
    expect(console.page.locator("#allowance-remaining")).to_contain_text("今日剩余 ¥")
    expect(console.page.locator("#nav a[data-nav=activity]")).to_be_hidden()
