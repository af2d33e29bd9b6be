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

    # the review queue names who asked; another support operator may neither approve nor reject
    # an operator's refund, and is told why instead of being offered a button that leads to a 403
    sign_in(console, "support", "s-2", "#/reviews")
    card = page.locator("#review-list > li").first
    expect(card.locator("[data-field=created_by]")).to_have_text("support:s-1")
    expect(card.locator("[data-refusal=approve]")).to_have_text("客服没有“审批需审批的后台退款”权限")
    expect(card.locator("[data-refusal=reject]")).to_have_text("客服没有“审批需审批的后台退款”权限")
    expect(card.locator("button")).to_have_count(0)


def test_the_creator_withdraws_their_own_refund_and_no_money_moves(console):
    page, env = console.page, console.env
    order_no = console.order_no(11)
    r = env.api.post("/api/admin/pay/refunds", auth.issue("support", "s-1"),
                     {"order_no": order_no, "amount": 30000, "reason": "用户取消"})
    assert r.status_code == 201 and r.json()["status"] == "pending_review", r.text
    refund_no = r.json()["refund_no"]
    sign_in(console, "support", "s-1", "#/reviews")
    card = page.locator(f"#review-list > li[data-refund='{refund_no}']")
    expect(card.locator("[data-refusal=approve]")).to_contain_text("不能由发起人本人审批")
    expect(card.locator("button[data-action=approve]")).to_have_count(0)
    expect(card.locator("button[data-action=reject]")).to_have_count(0)
    withdraw = card.locator("button[data-action=withdraw]")
    expect(withdraw).to_have_text("撤回")
    console.shot("review-own-refund")
    withdraw.click()
    expect(card.locator(".note.error")).to_have_text("请填写撤回原因")
    card.locator("input[name=reject_reason]").fill("金额填错")
    withdraw.click()
    expect(card).to_contain_text("已撤回")
    expect(page.locator("#flash")).to_contain_text("已撤回该退款")
    refund = env.refund(refund_no)
    assert refund.status == "rejected" and refund.reviewer == "support:s-1" and refund.reject_reason == "金额填错"
    order = env.fresh(order_no)
    assert order.requested_amount == 0 and order.refundable_amount == order.actual_amount
    assert env.sim.create_calls() == 0
    env.check_invariants(order_no)
    console.open_order(11)
    record = page.locator(f"#refund-list > li[data-refund='{refund_no}']")
    expect(record.locator(".refund-head .pill")).to_have_text("已拒绝")
    record.locator("details.events summary").click()
    expect(record.locator("details.events li").last).to_contain_text("发起人撤回：金额填错")
