"""An abnormal refund (the player's card is gone) resolved from the order detail."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

CARD = "6222020202020202"
NAME = "张三"


def make_abnormal(env, n: int, amount: int) -> str:
    """A refund of order ``n`` that WeChat ends ABNORMAL; returns its refund_no."""
    env.sim.queue_outcome("ABNORMAL")
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": env.order(n).order_no, "amount": amount,
                                                           "reason": "用户银行卡已注销"})
    assert r.status_code == 201, r.text
    no = r.json()["refund_no"]
    env.wait_status(no, "abnormal")
    return no


def stored(page) -> str:
    return page.evaluate("JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])")


def test_abnormal_refund_goes_to_the_players_bank_card(console):
    page, env = console.page, console.env
    refund_no = make_abnormal(env, 15, 400)
    logs: list[str] = []
    page.on("console", lambda msg: logs.append(msg.text))
    console.login()
    order_no = console.open_order(15)
    record = page.locator(f"#refund-list > li[data-refund='{refund_no}']")
    expect(record.locator(".refund-head .pill")).to_have_text("退款异常")
    button = record.locator("button[data-action=abnormal-refund]")
    expect(button).to_have_text("发起异常退款")

    button.click()
    dialog = page.locator("#abnormal-dialog")
    bank_type, account, name = (page.locator(s) for s in
                                ("#abnormal-bank-type", "#abnormal-bank-account", "#abnormal-real-name"))
    field_error, error = page.locator("#abnormal-field-error"), page.locator("#abnormal-error")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("¥4.00")
    expect(page.locator("input[value=USER_BANK_CARD]")).to_be_checked()

    # all three are required for the player's card
    page.click("#abnormal-confirm")
    expect(field_error).to_have_text("请填写银行类型、银行卡号、户名")
    bank_type.fill("icbc_debit")
    account.fill("6222 0202 0202 0202")
    page.click("#abnormal-confirm")
    expect(field_error).to_have_text("请填写户名")
    expect(name).to_be_focused()

    # WeChat refuses once: its reason in Chinese next to the action, and the card is wiped
    env.sim.push_scenario("PARAM_ERROR", op="abnormal")
    name.fill(NAME)
    page.click("#abnormal-confirm")
    expect(error).to_have_text("微信拒绝了异常退款：参数错误")
    expect(field_error).to_be_hidden()
    for el in (bank_type, account, name):
        expect(el).to_have_value("")
    assert env.refund(refund_no).status == "abnormal"

    # the merchant's account needs no card: the fields go away
    page.check("input[value=MERCHANT_BANK_CARD]")
    expect(page.locator("#abnormal-card")).to_be_hidden()
    expect(page.locator("#abnormal-merchant-hint")).to_be_visible()
    page.check("input[value=USER_BANK_CARD]")
    expect(page.locator("#abnormal-card")).to_be_visible()

    bank_type.fill("ICBC_DEBIT")
    account.fill(CARD)
    name.fill(NAME)
    console.shot("abnormal-dialog", full_page=False)
    page.click("#abnormal-confirm")
    expect(dialog).to_be_hidden()
    expect(page.locator("#flash")).to_contain_text("已发起异常退款（退至用户银行卡）")
    expect(record.locator(".refund-head .pill")).to_have_text("退款成功")  # processing, then success by polling
    expect(record.locator("button[data-action=abnormal-refund]")).to_have_count(0)
    env.wait_status(refund_no, "success")

    # nothing of the card stays in the page, the tab's storage or the console
    html = page.content()
    assert CARD not in html and NAME not in html
    assert page.locator("#abnormal-dialog *").count() == 0
    assert CARD not in stored(page) and NAME not in stored(page)
    assert not [m for m in logs if CARD in m or NAME in m]
    refund = env.refund(refund_no)
    assert CARD not in str(refund.raw) and NAME not in str(refund.raw)
    o = env.fresh(order_no)
    assert o.refunded_amount == 400 and o.reserved_amount == 0


def test_abnormal_refund_to_the_merchant_and_a_refund_resolved_elsewhere(console):
    """WeChat pays the merchant's card, not the player: the refund waits for an offline payout."""
    page, env = console.page, console.env
    first = make_abnormal(env, 16, 300)
    second = make_abnormal(env, 16, 200)
    console.login()
    order_no = console.open_order(16)
    buttons = page.locator("button[data-action=abnormal-refund]")
    expect(buttons).to_have_count(2)

    # resolved by another operator while this one had the dialog open: Chinese reason, then the fresh state
    other = page.locator(f"#refund-list > li[data-refund='{second}']")
    other.locator("button[data-action=abnormal-refund]").click()
    page.check("input[value=MERCHANT_BANK_CARD]")
    r = env.api.post(f"/api/admin/pay/refunds/{second}/abnormal-refund", env.admin2, {"type": "MERCHANT_BANK_CARD"})
    assert r.status_code == 200, r.text
    page.click("#abnormal-confirm")
    expect(page.locator("#abnormal-error")).to_contain_text("不能发起异常退款")
    page.click("#abnormal-cancel")
    expect(page.locator("#abnormal-dialog")).to_be_hidden()
    expect(other.locator("button[data-action=abnormal-refund]")).to_have_count(0)

    record = page.locator(f"#refund-list > li[data-refund='{first}']")
    record.locator("button[data-action=abnormal-refund]").click()
    page.check("input[value=MERCHANT_BANK_CARD]")
    page.click("#abnormal-confirm")
    expect(page.locator("#flash")).to_contain_text("退至商户银行卡")
    # WeChat paid the merchant: the player is paid outside WeChat, by an operator
    expect(record.locator(".refund-head .pill")).to_have_text("待线下退款")
    env.wait_status(first, "offline_pending")
    expect(record).to_contain_text("异常退款已退至商户银行卡")
    # money already with the merchant is the player's: it can only be paid, never cancelled
    expect(record.locator("button[data-action=cancel-offline]")).to_have_count(0)
    assert env.fresh(order_no).reserved_amount == 500

    record.locator("button[data-action=offline-payout]").click()
    dialog = page.locator("#offline-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("¥3.00")
    page.click("#offline-confirm")
    expect(page.locator("#offline-field-error")).to_have_text("请选择付款渠道")
    page.select_option("#offline-channel", "bank_transfer")
    page.click("#offline-confirm")
    expect(page.locator("#offline-field-error")).to_have_text("请填写付款凭证号")
    expect(page.locator("#offline-reference")).to_be_focused()
    page.fill("#offline-reference", "BT-20261126-0001")
    page.fill("#offline-note", "已电话告知用户")
    console.shot("offline-payout-dialog", full_page=False)
    page.click("#offline-confirm")
    expect(dialog).to_be_hidden()
    expect(page.locator("#flash")).to_contain_text("已登记线下退款（银行转账）")
    expect(record.locator(".refund-head .pill")).to_have_text("退款成功")
    expect(record.locator("button[data-action=offline-payout]")).to_have_count(0)
    payout = record.locator(".payout")
    expect(payout).to_contain_text("银行转账")
    expect(payout).to_contain_text("BT-20261126-0001")
    expect(payout).to_contain_text("admin:ops-1")
    refund = env.refund(first)
    assert refund.status == "success"
    assert refund.offline_payout["channel"] == "bank_transfer"
    assert refund.offline_payout["reference"] == "BT-20261126-0001"
    assert refund.offline_payout["note"] == "已电话告知用户"
    o = env.fresh(order_no)
    assert o.refunded_amount == 300 and o.reserved_amount == 200


def make_offline(env, n: int, amount: int) -> str:
    """A refund of order ``n`` WeChat cannot pay (the player's WeChat account is closed)."""
    env.sim.push_scenario("USER_ACCOUNT_ABNORMAL", op="create")
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": env.order(n).order_no, "amount": amount,
                                                           "reason": "用户微信已注销"})
    assert r.status_code == 201, r.text
    no = r.json()["refund_no"]
    env.wait_status(no, "offline_pending")
    return no


def test_a_refund_wechat_cannot_pay_is_paid_offline_or_cancelled(console):
    page, env = console.page, console.env
    paid = make_offline(env, 17, 500)
    cancelled = make_offline(env, 17, 200)
    from chalicelib.adapters.models import Refund

    Refund(paid).update(actions=[Refund.created_at.set("2026-01-01T00:00:00.000000Z")])  # made before the payout below
    console.login("#/tasks")
    cards = page.locator("#task-list > li", has_text="用户账户异常")
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("请通过其他方式退款给用户")

    order_no = console.open_order(17)
    record = page.locator(f"#refund-list > li[data-refund='{paid}']")
    expect(record.locator(".refund-head .pill")).to_have_text("待线下退款")
    expect(record).to_contain_text("用户微信账户异常，微信无法退款")
    expect(record.locator("button[data-action=cancel-offline]")).to_have_text("取消线下退款")

    record.locator("button[data-action=offline-payout]").click()
    options = page.locator("#offline-channel option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
    assert options == [["", "请选择"], ["bank_transfer", "银行转账"], ["alipay", "支付宝"],
                       ["wechat_transfer", "微信转账"], ["cash", "现金"], ["other", "其他"]]
    page.select_option("#offline-channel", "alipay")
    page.fill("#offline-reference", "A" * 65)  # the field stops at 64
    expect(page.locator("#offline-reference")).to_have_value("A" * 64)
    page.fill("#offline-reference", "2026112622001400001")
    page.fill("#offline-paid-at", "2026-01-02T10:30:00")
    page.click("#offline-confirm")
    expect(page.locator("#offline-dialog")).to_be_hidden()
    expect(record.locator(".refund-head .pill")).to_have_text("退款成功")
    expect(record.locator(".payout")).to_contain_text("支付宝")
    expect(record.locator(".payout")).to_contain_text("2026/01/02 10:30:00")  # typed in the operator's (Beijing) time
    payout = env.refund(paid).offline_payout
    assert payout["paid_at"].startswith("2026-01-02T02:30:00")
    assert payout["channel"] == "alipay" and payout["reference"] == "2026112622001400001"
    assert payout["recorded_by"] == "admin:ops-1"

    other = page.locator(f"#refund-list > li[data-refund='{cancelled}']")
    other.locator("button[data-action=cancel-offline]").click()
    page.click("#offline-confirm")
    expect(page.locator("#offline-field-error")).to_have_text("请填写取消原因")
    page.fill("#offline-cancel-reason", "用户同意改发优惠券")
    page.click("#offline-confirm")
    expect(page.locator("#offline-dialog")).to_be_hidden()
    expect(other.locator(".refund-head .pill")).to_have_text("已关闭")
    expect(other.locator("button[data-action]")).to_have_count(0)
    o = env.fresh(order_no)
    assert o.refunded_amount == 500 and o.reserved_amount == 0
    assert env.refund(cancelled).status == "closed"

    # both tasks were closed by what was recorded
    console.go("#/tasks")
    expect(page.locator("#task-list > li", has_text="用户账户异常")).to_have_count(0)
    page.select_option("#task-status", "done")
    expect(page.locator("#task-list > li", has_text="用户账户异常")).to_have_count(2)
