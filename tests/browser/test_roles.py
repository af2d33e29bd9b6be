"""Staff roles in the console: the role in the header, only the permitted actions, approval shown
before submit, and the refund reason's byte limit."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chalicelib.adapters import auth
from tests.browser.test_abnormal import make_offline

pytestmark = pytest.mark.browser


def sign_in(console, role: str, subject: str, route: str = "#/orders"):
    page = console.page
    page.goto(f"{console.url}#token={auth.issue(role, subject)}")
    page.wait_for_selector("#order-table")
    expect(page.locator("#whoami")).to_have_text(f"{ {'support': '客服', 'finance': '财务', 'admin': '管理员'}[role]} · {role}:{subject}")
    if route != "#/orders":
        console.go(route)


def test_support_sees_no_resolve_or_export_actions_and_finance_does(console):
    page, env = console.page, console.env
    refund_no = make_offline(env, 17, 300)
    for role, allowed in (("support", False), ("finance", True)):
        sign_in(console, role, f"{role}-1")
        console.open_order(17)
        record = page.locator(f"#refund-list > li[data-refund='{refund_no}']")
        expect(record.locator(".refund-head .pill")).to_have_text("待线下退款")
        expect(page.locator("#refund-button")).to_be_visible()  # both may refund (within their limits)
        expect(record.locator("button[data-action=offline-payout]")).to_have_count(1 if allowed else 0)
        expect(record.locator("button[data-action=cancel-offline]")).to_have_count(1 if allowed else 0)
        console.go("#/tasks")
        expect(page.locator("#task-list > li").first).to_be_visible()
        expect(page.locator("#tasks-csv")).to_have_count(1 if allowed else 0)
        expect(page.locator("#task-list button:has-text('标记完成')").first).to_be_visible()  # tasks.complete: both
        page.click("#logout")
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.locator("#whoami")).to_be_hidden()


def test_a_support_refund_above_its_limit_shows_the_approval_before_submit(console):
    page, env = console.page, console.env
    sign_in(console, "support", "s-1")
    order_no = console.open_order(11)  # ¥708, above support's ¥200 per refund
    page.click("#refund-button")
    page.fill("#refund-amount", "300")
    approval = page.locator("#refund-approval-detail")
    expect(approval).to_contain_text("提交后生成待审核申请")
    expect(page.locator("#refund-approver-roles")).to_contain_text("财务")
    expect(page.locator("#refund-confirm")).to_have_text("提交申请")
    expect(page.locator("#refund-confirm")).to_be_enabled()
    messages = approval.locator("li").all_inner_texts()
    assert messages and any("200" in m for m in messages), messages

    # the reason is limited in bytes, one line
    reason = page.locator("#refund-reason")
    count = page.locator("#refund-reason-count")
    expect(count).to_have_text("0 / 80 字节")
    reason.fill("商" * 26)
    expect(count).to_have_text("78 / 80 字节")
    expect(page.locator("#refund-confirm")).to_be_enabled()
    reason.fill("商" * 27)
    expect(count).to_have_text("81 / 80 字节")
    expect(page.locator("#refund-reason-error")).to_contain_text("最多 80 字节")
    expect(page.locator("#refund-confirm")).to_be_disabled()
    reason.fill("用户\t取消")
    expect(page.locator("#refund-reason-error")).to_contain_text("控制字符")
    expect(page.locator("#refund-confirm")).to_be_disabled()
    reason.fill("用户取消")
    reason.press("Enter")
    expect(reason).to_have_value("用户取消")
    expect(page.locator("#refund-confirm")).to_be_enabled()
    page.click("#refund-confirm")
    expect(page.locator("#refund-dialog")).to_be_hidden()
    expect(page.locator("#flash")).to_contain_text("等待审核")
    pending = env.fresh(order_no)
    assert pending.requested_amount == 30000 and pending.refunded_amount == 0

    # the review queue names who asked; support cannot approve an operator's refund
    console.go("#/reviews")
    card = page.locator("#review-list > li").first
    expect(card.locator("[data-field=created_by]")).to_have_text("support:s-1")
    expect(card.locator("button[data-action=approve]")).to_have_count(0)
