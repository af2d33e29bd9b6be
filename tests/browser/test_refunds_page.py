"""退款查询 page: every refund with each status, WeChat's refund id and the cash/coupon split,
filters (status, operator, day, amount) and the CSV export."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from chalicelib.adapters import repository as repo
from chalicelib.domain import clock
from chalicelib.domain.enums import RefundStatus

pytestmark = pytest.mark.browser

BASE = datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc)  # 12:00 Beijing


def _put(n: int, status: str, *, amount: int = 1000, created_by: str = "admin:ops-1", at=None, **more) -> str:
    refund_no = f"RPAGE{n:04d}"
    when = clock.iso(at or BASE + timedelta(minutes=n))
    repo.write([repo.new_refund(refund_no, {
        "order_no": f"OPAGE{n:04d}", "user_id": "u1001", "origin": "admin", "amount": amount,
        "requested_amount": amount, "status": status, "created_by": created_by, "order_total": 10000,
        "created_at": when, "updated_at": when, **more})])
    return refund_no


def test_every_status_filters_and_csv(console):
    page = console.page
    made = {s.value: _put(i, s.value) for i, s in enumerate(RefundStatus)}
    split = _put(20, "success", amount=1000, wechat_refund_id="50300000020", created_by="finance:bob",
                 payer_refund=800,
                 at=BASE + timedelta(days=3))
    console.login("#/refunds")
    rows = page.locator("#refund-table tbody tr")
    expect(rows).to_have_count(len(made) + 1)
    row = page.locator(f"#refund-table tr[data-refund='{split}']")
    expect(row.locator("td[data-label=微信退款单号]")).to_have_text("50300000020")
    expect(row.locator("td[data-label=退至用户]")).to_have_text("¥8.00")
    expect(row.locator("td[data-label=优惠券部分]")).to_have_text("¥2.00")
    expect(row.locator("td[data-label=申请时间]")).to_have_text("2026/11/23 12:00:00")
    console.shot("refunds-all")

    for status, refund_no in made.items():
        page.select_option("#refund-filter-status", status)
        page.click("#refund-filters button[type=submit]")
        expected = {refund_no} | ({split} if status == "success" else set())
        expect(rows).to_have_count(len(expected))
        assert {r.get_attribute("data-refund") for r in rows.all()} == expected, status
        expect(rows.first.locator("td[data-label=状态]")).to_have_text(RefundStatus(status).label)

    page.click("#refund-filters button[type=button]")  # 重置
    expect(rows).to_have_count(len(made) + 1)
    page.fill("#refund-filter-operator", "bob")
    page.fill("#refund-filter-from", "2026-11-23")
    page.fill("#refund-filter-min_yuan", "9.99")
    page.click("#refund-filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-refund", split)
    page.fill("#refund-filter-min_yuan", "10.01")
    page.click("#refund-filters button[type=submit]")
    expect(page.locator("#main .empty")).to_have_text("没有符合条件的退款")
    page.fill("#refund-filter-min_yuan", "1.234")
    page.click("#refund-filters button[type=submit]")
    expect(page.locator("#main .note.error")).to_contain_text("最小金额")

    page.click("#refund-filters button[type=button]")
    expect(rows).to_have_count(len(made) + 1)
    with page.expect_download() as info:
        page.click("#refunds-csv")
    path = info.value.path()
    with open(path, encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    assert table[0][0] == "商户退款单号" and len(table) == len(made) + 2
    assert [r[0] for r in table[1:]] == sorted(list(made.values()) + [split], reverse=True)


def test_more_than_a_page_loads_on_demand(console):
    made = [_put(i, "success") for i in range(25)]
    page = console.page
    console.login("#/refunds")
    rows = page.locator("#refund-table tbody tr")
    expect(rows).to_have_count(20)
    page.click("button:has-text('加载更多')")
    expect(rows).to_have_count(25)
    assert [r.get_attribute("data-refund") for r in rows.all()] == sorted(made, reverse=True)


def test_refund_list_at_390px(narrow_console):
    _put(1, "abnormal", wechat_refund_id="50300000001")
    console = narrow_console
    console.login("#/refunds")
    expect(console.page.locator("#refund-table tbody tr")).to_have_count(1)
    assert console.page.evaluate("document.documentElement.scrollWidth") <= 390
    console.shot("refunds-390")


def test_order_list_money_in_flight_year_limit_and_days(console):
    env, page = console.env, console.page
    env.sim.configure(drop_notifications=True)
    in_flight = env.order(2)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": in_flight.order_no, "amount": 300})
    assert r.status_code == 201, r.text
    console.login()
    row = page.locator(f"#order-table tr[data-order='{in_flight.order_no}']")
    expect(row.locator("td[data-label=退款中]")).to_have_text("¥3.00")
    console.go(f"#/orders?user_id={env.order(12).user_id}")
    old = page.locator(f"#order-table tr[data-order='{env.order(12).order_no}']")
    expect(old.locator("td[data-label=可退余额]")).to_contain_text("¥0.00")
    expect(old.locator("td[data-label=可退余额]")).to_contain_text("已超过支付后365天的退款期限")
    console.shot("orders-year-limit")
    page.click("#order-filters button[type=button]")  # 重置
    day = clock.beijing_day_of(env.order(1).created_at)
    page.fill("#filter-from", day)
    page.fill("#filter-to", day)
    page.click("#order-filters button[type=submit]")
    expect(page.locator(f"#order-table tr[data-order='{env.order(1).order_no}']")).to_be_visible()
    expect(page.locator("#order-table")).to_have_count(1)
    listed = {r.get_attribute("data-order") for r in page.locator("#order-table tbody tr").all()}
    assert {clock.beijing_day_of(env.fresh(no).created_at) for no in listed} == {day}
    assert f"from={day}" in page.url


def test_a_network_failure_on_confirm_says_the_result_is_unknown(console):
    env, page = console.env, console.page
    console.login()
    order_no = console.open_order(1)
    page.click("#refund-button")
    page.fill("#refund-amount", "5")
    confirm = page.locator("#refund-confirm")
    expect(confirm).to_have_text("确认退款 ¥5.00")
    page.route("**/api/admin/pay/refunds", lambda route: route.abort("connectionreset")
               if route.request.method == "POST" else route.continue_())
    confirm.click()
    error = page.locator("#refund-dialog .actions + .note")
    expect(error).to_contain_text("结果未知")
    expect(error.locator("a[href='#/refunds']")).to_have_text("退款列表")
    page.unroute("**/api/admin/pay/refunds")
    expect(confirm).to_be_enabled()
    confirm.click()  # the same request again: one refund
    expect(page.locator("#refund-dialog")).to_be_hidden()
    refunds = env.api.get(f"/api/admin/pay/refunds?order_no={order_no}", env.admin).json()["items"]
    assert [r["amount"] for r in refunds] == [500]
