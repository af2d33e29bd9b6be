"""The 对账 page: the list of dates, running a day from the console, its report and its
discrepancies linked to their orders, and the CSV export."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
CST = timezone(timedelta(hours=8))


def test_reconcile_a_day_from_the_console(console):
    page, env = console.page, console.env
    today = datetime.now(CST).strftime("%Y-%m-%d")
    env.sim.configure(bill_ready_hour=None)  # today's bill so far (WeChat: from about 10:00 tomorrow)
    env._set_env(RECON_MIDNIGHT_MINUTES="0")
    assert env.sim.notify_payment(env.order(7).order_no, env.stack.env["WECHAT_PAYMENT_NOTIFY_URL"]) == 204
    order = env.order(2)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": 300})
    assert r.status_code == 201, r.text
    refund_no = r.json()["refund_no"]
    env.wait_status(refund_no, "success")
    env.sim.add_bill_fault(kind="CHANGE_AMOUNT", out_refund_no=refund_no, amount=299)

    console.login("#/reconcile")
    row = page.locator(f"#recon-table tr[data-date='{today}']")
    expect(row).to_contain_text("未对账")
    expect(page.locator("#recon-table tbody tr")).to_have_count(91)
    row.locator("a").click()
    expect(page.locator("h1")).to_have_text(f"对账 {today}")
    expect(page.locator("#recon-report")).to_contain_text("该日期尚未对账")

    page.locator("#recon-run").click()
    expect(page.locator("#recon-classes tr[data-class=amount_mismatch]")).to_contain_text("1")
    expect(page.locator("#recon-report")).to_contain_text("已完成")
    card = page.locator(f"#recon-discrepancies li[data-subject='{refund_no}']")
    expect(card).to_contain_text("金额不一致")
    expect(card).to_contain_text("¥3.00")
    expect(card).to_contain_text("¥2.99")
    console.shot("reconcile-day")

    with page.expect_download() as info:
        page.locator("#recon-csv").click()
    rows = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    assert rows[0][1] == "差异类型" and len(rows) == 2 and rows[1][4] == refund_no

    card.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text(order.order_no)

    console.go("#/reconcile")
    expect(page.locator(f"#recon-table tr[data-date='{today}']")).to_contain_text("已完成")
