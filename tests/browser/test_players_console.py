"""The console's customer view (a player's refunds with their timelines) and the minors' claims
queue (first review, then a second person)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

GUARDIAN = {"statement": "孩子 10 岁，未经同意购买了抽奖券", "relationship": "mother", "evidence": ["media_001"]}


def test_customer_view_shows_each_refund_with_its_timeline(console):
    page, env = console.page, console.env
    order_no = console.order_no(1)
    first = env.api.post(f"/api/app/orders/{order_no}/refund/apply", env.user("u1001"),
                         {"amount": 500, "reason": "买重了"}).json()["refund_no"]
    assert env.api.post(f"/api/app/refunds/{first}/withdraw", env.user("u1001"), {"reason": "想再看看"}).status_code == 200
    second = env.api.post(f"/api/app/orders/{order_no}/refund/apply", env.user("u1001"),
                          {"amount": 300, "reason": "再申请"}).json()["refund_no"]
    console.login()
    console.open_order(1)
    console.block("order").locator("a[href^='#/customers/']").click()
    expect(page.locator("h1")).to_have_text("客户 · 小明")
    cards = page.locator("#customer-refunds > li")
    expect(cards).to_have_count(2)
    assert cards.evaluate_all("cs => cs.map(c => c.dataset.refund)") == [second, first]  # newest first
    timeline = page.locator(f"[data-timeline='{first}'] > li")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(1)).to_contain_text("待审核 → 已拒绝")
    expect(timeline.nth(1)).to_contain_text("发起人撤回：想再看看")
    assert console.errors == []


def test_minors_queue_first_review_then_a_second_person(console):
    page, env = console.page, console.env
    claim = env.api.post(f"/api/app/orders/{console.order_no(6)}/refund/apply", env.user("u1005"),
                         {"type": "minor", "guardian": GUARDIAN, "reason": "未成年人消费"}).json()["refund_no"]
    console.login("#/minors")
    card = page.locator(f"#minor-claims > li[data-refund='{claim}']")
    expect(card).to_contain_text("孩子 10 岁")
    expect(card.locator("[data-field=first_review]")).to_have_text("待初审")
    card.locator("button[data-action=approve]").click()
    expect(card).to_contain_text("已批准，当前状态 待审核")
    console.go("#/orders")
    console.go("#/minors")
    card = page.locator(f"#minor-claims > li[data-refund='{claim}']")
    expect(card.locator("[data-field=first_review]")).to_contain_text("admin:ops-1")
    expect(card.locator("[data-refusal=approve]")).to_contain_text("初审人不能复核通过")

    page.goto(f"{console.url}#token={env.staff('finance', 'bob')}")
    page.wait_for_selector("#order-table")
    console.go("#/minors")
    card = page.locator(f"#minor-claims > li[data-refund='{claim}']")
    card.locator("button[data-action=approve]").click()
    expect(card).to_contain_text("已批准")
    env.wait_status(claim, "success")
    assert console.errors == []
