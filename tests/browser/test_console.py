"""The admin console end to end: headless Chromium against the API of the test stack.

Each test gets a fresh seeded world (``env``); see devstack/seed.py for the orders:
1 mall/points+coupon, 2 shipped, 3 signed, 4 virtual consumed, 6 lottery, 8 cancelled, 9 refunded.
"""
from __future__ import annotations

import csv
import time

import pytest
from playwright.sync_api import expect

from chalicelib.adapters import auth
from chalicelib.domain.enums import OrderStatus, SourceType

pytestmark = pytest.mark.browser

DETAIL_BLOCKS = ["订单", "活动", "付款", "订单项", "发货", "积分", "抽奖结果", "退款记录"]


def apply(env, n: int, user: str, amount: int, reason: str) -> str:
    """A player's refund application through the player API; returns its refund_no."""
    r = env.api.post(f"/api/app/orders/{env.order(n).order_no}/refund/apply", env.user(user),
                     {"amount": amount, "reason": reason})
    assert r.status_code == 201, r.text
    return r.json()["refund_no"]


def drain(env) -> None:
    """Run the restoration worker once the successful refund's message is queued."""
    env.wait_for(lambda: env.drain_restorations() > 0)


def test_sign_in_by_pasting_a_token_or_by_link(console):
    page, env = console.page, console.env
    page.goto(console.url)
    page.fill("#token-input", "not-a-token")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-form .note.error")).to_have_text("令牌格式不正确，请重新登录")  # the server's words
    page.fill("#token-input", env.user("u1001"))
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-form .note.error")).to_have_text("该令牌不是后台人员令牌，不能使用管理后台")

    page.fill("#token-input", f"Bearer {env.admin}")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#order-table")).to_be_visible()
    assert page.evaluate("Object.values(sessionStorage)") == [env.admin]

    page.click("#logout")
    expect(page.locator("#login-form")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0

    page.goto(f"{console.url}#token={env.admin}")  # the link `make run` prints
    expect(page.locator("#order-table")).to_be_visible()
    assert "token" not in page.url and page.url.endswith("/admin#/orders")

    # an expired token sends the operator back to sign-in, saying why in the server's words
    expired = auth.issue("admin", "ops-1", ttl_seconds=600, now=time.time() - 3600)
    page.evaluate("t => sessionStorage.setItem('refund-console-token', t)", expired)
    console.go("#/reviews")
    expect(page.locator("#login-form .note.error")).to_have_text("登录已过期，请重新登录")


def test_order_list_labels_filters_and_pages(console):
    page, env = console.page, console.env
    console.login()
    assert page.locator("#order-table thead th").all_inner_texts() == [
        "订单号", "用户", "订单状态", "来源", "发货状态", "活动", "实付金额", "已退款", "退款中", "可退余额", "下单时间"]

    def row(n):
        cells = page.locator(f"tr[data-order='{console.order_no(n)}'] td").all_inner_texts()
        return cells[1:10]

    assert row(1) == ["小明", "已支付", "商城直购", "待发货", "双十一盲盒狂欢", "¥103.00", "¥0.00", "¥0.00", "¥103.00"]
    assert row(2)[:5] == ["u1002", "已支付", "商城直购", "已发货", "双十一盲盒狂欢"]  # no nickname: user ID
    assert row(6)[:5] == ["盲盒收藏家", "已支付", "抽奖票据", "—", "双十一盲盒狂欢"]
    assert row(8)[1] == "已取消" and row(9)[1:3] == ["已退款", "商城直购"] and row(9)[5:] == ["¥39.00", "¥39.00", "¥0.00", "¥0.00"]
    assert row(7)[1] == "待支付"
    console.shot("order-list")

    # the filter choices are the API's codes and labels
    options = page.locator("#filter-status option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
    assert options == [["", "全部"]] + [[str(k), v] for k, v in OrderStatus.labels().items()]
    options = page.locator("#filter-source_type option").evaluate_all("os => os.map(o => [o.value, o.textContent])")
    assert options == [["", "全部"]] + [[str(k), v] for k, v in SourceType.labels().items()]

    rows = page.locator("#order-table tbody tr")
    page.select_option("#filter-status", "3")
    page.click("#order-filters button[type=submit]")
    expect(rows).to_have_count(1)
    assert "status=3" in page.url and rows.locator("td[data-label=订单状态]").inner_text() == "已取消"

    page.click("#order-filters button:has-text('重置')")
    # the reset's own list is in (and its form in place) before the next filter is chosen
    expect(page.locator("#filter-status")).to_have_value("")
    expect(rows).to_have_count(20)
    page.select_option("#filter-source_type", "2")
    page.fill("#filter-user_id", "u1005")
    page.click("#order-filters button[type=submit]")
    expect(page.locator("#filter-user_id")).to_have_value("u1005")
    expect(rows).to_have_count(1)
    expect(rows.locator("td[data-label=用户]")).to_have_text("盲盒收藏家")

    page.click("#order-filters button:has-text('重置')")
    expect(rows).to_have_count(20)
    first_page = rows.locator("td:first-child").all_inner_texts()
    page.click("#page-next")
    expect(page.locator("#page-no")).to_have_text("第 2 页")
    expect(rows.first).not_to_have_text(first_page[0])
    assert not set(rows.locator("td:first-child").all_inner_texts()) & set(first_page)
    page.click("#page-prev")
    expect(page.locator("#page-no")).to_have_text("第 1 页")
    expect(page.locator("#page-prev")).to_be_disabled()
    assert rows.locator("td:first-child").all_inner_texts() == first_page

    # from a detail back to the list keeps the page
    page.click("#page-next")
    expect(page.locator("#page-no")).to_have_text("第 2 页")
    rows.first.locator("a").click()
    page.click("a.back")
    expect(page.locator("#page-no")).to_have_text("第 2 页")


def test_order_detail_blocks(console):
    page = console.page
    console.login()
    console.open_order(6)
    assert page.locator("[data-block] > h2").all_inner_texts() == DETAIL_BLOCKS
    expect(console.block("order")).to_contain_text("盲盒收藏家（u1005）")
    expect(console.block("order")).to_contain_text("抽奖票据")
    expect(console.block("activity")).to_contain_text("双十一盲盒狂欢")
    expect(console.block("payment")).to_contain_text("微信支付")
    expect(console.block("payment")).to_contain_text("¥29.70")
    expect(console.block("items")).to_contain_text("抽奖券")
    assert console.block("items").locator("tbody td").all_inner_texts() == ["抽奖券", "SKU-1", "3", "¥9.90", "¥29.70"]
    expect(console.block("shipping")).to_contain_text("无需发货")
    lottery = console.block("lottery").locator("tbody tr")
    assert [r.locator("td").all_inner_texts()[1:4] for r in lottery.all()] == [
        ["是", "S", "隐藏款·月影"], ["是", "B", "普通款·星辰"], ["否", "—", "—"]]
    expect(console.block("refunds")).to_contain_text("暂无退款记录")
    expect(page.locator("#refund-button")).to_be_enabled()
    expect(page.locator("#refund-button")).to_have_text("退款")
    console.shot("order-detail-lottery")

    console.open_order(1)
    points = console.block("points").locator("dd").all_inner_texts()
    assert points == ["5000", "¥5.00", "0", "CP-1001-A"]
    expect(console.block("shipping")).to_contain_text("待发货")
    expect(console.block("lottery")).to_contain_text("非抽奖订单")

    # no refund at all: disabled, with the reason
    for n, why in ((8, "订单状态为已取消，不可退款"), (9, "订单状态为已退款，不可退款"),
                   (12, "已超过支付后365天的退款期限")):
        console.open_order(n)
        expect(page.locator("#refund-button")).to_be_disabled()
        expect(page.locator("#refund-why-not")).to_have_text(why)

    # signed / consumed: an application for review instead of a refund
    console.open_order(3)
    expect(page.locator("#refund-button")).to_have_text("申请退款")
    expect(page.locator("#refund-approval")).to_contain_text("货已签收，需人工审批")
    expect(console.block("shipping")).to_contain_text("已签收")
    console.open_order(4)
    expect(page.locator("#refund-button")).to_have_text("申请退款")
    expect(console.block("shipping")).to_contain_text("已履约")


def test_yuan_text_converts_to_fen_exactly(console):
    page = console.page
    console.login()
    cases = {"19.9": 1990, "19.90": 1990, "0.01": 1, "1": 100, " 7.5 ": 750, "0.29": 29, "4.35": 435,
             "1.15": 115, "1005.07": 100507, "999999999999.99": 99999999999999, "1.234": None, "0.001": None,
             "-1": None, "1e2": None, "0": None, "0.00": None, "": None, "1,000": None, ".5": None, "5.": None,
             "¥5": None, "0x10": None, "１": None, "NaN": None, "Infinity": None}
    script = "([app, cases]) => import(app.replace('app.js', 'money.js')).then(m => cases.map(c => m.parseYuan(c).fen ?? null))"
    src = page.locator("script[type=module]").get_attribute("src")
    got = page.evaluate(script, [src, list(cases)])
    assert dict(zip(cases, got)) == cases
    more = page.evaluate("([app]) => import(app.replace('app.js', 'money.js')).then(m => "
                         "[m.parseYuan('1.234').error, m.fenToYuan(1990), m.fenToYuan(5), m.fenToYuan(-105)])", [src])
    assert more == ["金额最多两位小数", "19.90", "0.05", "-1.05"]


def test_partial_refund_through_the_dialog_reaches_success(console):
    page, env = console.page, console.env
    console.login()
    order_no = console.open_order(1)
    page.click("#refund-button")
    dialog = page.locator("#refund-dialog")
    amount, preview, confirm = page.locator("#refund-amount"), page.locator("#refund-preview"), page.locator("#refund-confirm")
    amount_error = dialog.locator(".amount-row + .note")
    expect(dialog).to_be_visible()
    expect(amount).to_have_value("")  # never the full amount by default: one click must not refund it
    expect(confirm).to_be_disabled()
    expect(amount_error).to_be_hidden()
    expect(page.locator("#refund-irreversible")).to_contain_text("不可撤销")
    expect(page.locator("#refund-max")).to_have_text("¥103.00")
    page.click("#refund-full")
    expect(amount).to_have_value("103.00")  # the remaining refundable amount, when asked for
    expect(dialog.locator(".rules")).to_contain_text("已签收或虚拟商品已履约的订单需人工审批")
    expect(preview).to_contain_text("是（退完全部余额）")
    expect(preview).to_contain_text("退回 CP-1001-A")
    expect(preview).to_contain_text("取消发货")
    expect(confirm).to_be_enabled()
    expect(confirm).to_have_text("确认退款 ¥103.00")  # the button names the amount

    amount.fill("1.234")
    expect(amount_error).to_have_text("金额最多两位小数")
    expect(confirm).to_be_disabled()
    amount.fill("abc")
    expect(amount_error).to_have_text("金额格式不正确，例如 19.90")
    amount.fill("103.01")
    expect(amount_error).to_have_text("退款金额 103.01 元超过可退余额 103.00 元")
    expect(confirm).to_be_disabled()

    amount.fill("19.9")
    expect(preview).to_contain_text("¥19.90")
    expect(preview).to_contain_text("966 积分")  # floor(5000 * 1990 / 10300)
    expect(preview).to_contain_text("不退回 CP-1001-A")
    expect(preview).to_contain_text("部分退款：按比例退还积分")
    expect(preview).to_contain_text("¥83.10")
    expect(amount_error).to_be_hidden()
    page.fill("#refund-reason", "少发一只，部分退款")
    expect(confirm).to_be_enabled()
    expect(confirm).to_have_text("确认退款 ¥19.90")
    console.shot("refund-dialog", full_page=False)
    confirm.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#flash")).to_contain_text("退款已提交（¥19.90）")

    record = page.locator("#refund-list > li").first
    expect(record).to_contain_text("¥19.90")
    expect(record).to_contain_text("少发一只，部分退款")
    expect(record.locator(".refund-head .pill")).to_have_text("退款成功")  # by polling, no reload
    refund_no = record.get_attribute("data-refund")
    refund = env.refund(refund_no)
    assert refund.amount == 1990 and refund.order_no == order_no and refund.status == "success"

    expect(record).to_contain_text("待还原")
    record.locator("details.events summary").click()
    events = record.locator("details.events li")
    expect(events).to_have_count(3)
    expect(events.last).to_contain_text("退款中 → 退款成功")

    drain(env)
    expect(record).to_contain_text("已还原")  # the page keeps polling while restoration is pending
    expect(record).to_contain_text("退还积分 966")
    expect(record.locator("details.events")).to_have_attribute("open", "")  # survives the re-render
    expect(console.block("order")).to_contain_text("¥83.10")
    expect(console.block("points")).to_contain_text("966")
    expect(page.locator(".refund-cta")).to_contain_text("可退 ¥83.10")
    console.shot("order-detail")
    env.check_invariants(order_no)


def test_a_coupon_orders_refund_card_shows_cash_and_coupon_shares(console):
    """Order 13 (70.00 元) was paid 56.00 in cash and 14.00 by a merchant-funded coupon: WeChat pays
    a refund of 10.00 back as 8.00 cash and 2.00 to the coupon, and the card says so."""
    page, env = console.page, console.env
    order = env.coupon_paid(13, 5600)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": 1000})
    assert r.status_code == 201, r.text
    cash_only = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": env.order(14).order_no, "amount": 300})
    env.wait_status(r.json()["refund_no"], "success")
    env.wait_status(cash_only.json()["refund_no"], "success")
    console.login()
    console.open_order(13)
    record = page.locator(f"#refund-list > li[data-refund='{r.json()['refund_no']}']")
    expect(record.locator(".refund-head .pill")).to_have_text("退款成功")
    share = record.locator("dt:has-text('退款构成') + dd")
    expect(share).to_have_text("现金 ¥8.00 / 优惠券 ¥2.00")
    console.open_order(14)
    expect(page.locator("#refund-list > li").first.locator("dt:has-text('退款构成') + dd")).to_have_text(
        "现金 ¥3.00 / 优惠券 ¥0.00")


def test_dialog_reports_a_changed_balance_in_chinese(console):
    page, env = console.page, console.env
    console.login()
    order_no = console.open_order(2)
    page.click("#refund-button")
    page.click("#refund-full")
    expect(page.locator("#refund-preview")).to_contain_text("标记为异常，待退货入库")
    # meanwhile another operator refunds 1 yuan
    r = env.api.post("/api/admin/pay/refunds", env.admin2, {"order_no": order_no, "amount": 100, "reason": "补差"})
    assert r.status_code == 201, r.text
    page.click("#refund-confirm")
    error = page.locator("#refund-dialog .actions + .note")
    expect(error).to_have_text("退款金额 69.00 元超过可退余额 68.00 元")
    expect(page.locator("#refund-max")).to_have_text("¥68.00")
    expect(page.locator("#refund-dialog")).not_to_contain_text("AMOUNT_EXCEEDS_REFUNDABLE")
    page.click("#refund-full")
    expect(page.locator("#refund-amount")).to_have_value("68.00")
    expect(page.locator("#refund-confirm")).to_be_enabled()
    page.click("#refund-cancel")
    expect(page.locator("#refund-dialog")).to_be_hidden()


def test_review_queue_approves_a_smaller_amount_and_rejects_with_a_reason(console):
    page, env = console.page, console.env
    approved = apply(env, 1, "u1001", 5000, "买重了一盒")
    rejected = apply(env, 2, "u1002", 6900, "不想要了")
    stale = apply(env, 4, "u1001", 3000, "月卡没用过")
    console.login("#/reviews")
    cards = page.locator("#review-list > li")
    expect(cards).to_have_count(3)
    assert cards.evaluate_all("cs => cs.map(c => c.dataset.refund)") == [approved, rejected, stale]  # oldest first

    console.shot("review-queue")
    # who applied: the nickname where there is one, else the user ID
    users = cards.locator("dt:text-is('用户') + dd").all_inner_texts()
    assert users == ["小明", "u1002", "小明"]
    first = page.locator(f"#review-list > li[data-refund='{approved}']")
    expect(first).to_contain_text("¥50.00")
    expect(first).to_contain_text("买重了一盒")
    first.locator("input[name=approve_amount]").fill("60")
    first.locator("button[data-action=approve]").click()
    expect(first.locator(".note.error")).to_have_text("批准金额不能超过申请金额 ¥50.00")
    first.locator("input[name=approve_amount]").fill("30")
    first.locator("button[data-action=approve]").click()
    expect(first).to_contain_text("已批准")
    expect(first).to_contain_text("¥30.00")

    second = page.locator(f"#review-list > li[data-refund='{rejected}']")
    second.locator("button[data-action=reject]").click()
    expect(second.locator(".note.error")).to_have_text("请填写拒绝原因")
    second.locator("input[name=reject_reason]").fill("商品已拆封，不支持退款")
    second.locator("button[data-action=reject]").click()
    expect(second).to_contain_text("已拒绝")

    # decided elsewhere in the meantime: the API's Chinese explanation, not JSON
    r = env.api.post(f"/api/admin/pay/refunds/{stale}/reject", env.admin2, {"reason": "重复申请"})
    assert r.status_code == 200, r.text
    third = page.locator(f"#review-list > li[data-refund='{stale}']")
    third.locator("button[data-action=approve]").click()
    expect(third.locator(".note.error")).to_have_text("退款单当前状态为已拒绝，不能审批")

    env.wait_status(approved, "success")
    assert env.refund(approved).amount == 3000
    r = env.refund(rejected)
    assert r.status == "rejected" and r.reject_reason == "商品已拆封，不支持退款"
    page.click("#reviews-reload")
    expect(page.locator(".empty")).to_have_text("没有待审核的退款申请")

    console.open_order(1)
    record = page.locator(f"#refund-list > li[data-refund='{approved}']")
    expect(record.locator(".refund-head .pill")).to_have_text("退款成功")
    expect(record).to_contain_text("用户申请")
    expect(record).to_contain_text("¥50.00")  # what was asked for
    console.open_order(2)
    expect(page.locator(f"#refund-list > li[data-refund='{rejected}']")).to_contain_text("商品已拆封，不支持退款")


def test_signed_order_application_leaves_a_task_and_the_csv_downloads(console):
    page, env = console.page, console.env
    console.login()
    order_no = console.open_order(3)
    page.click("#refund-button")
    expect(page.locator("#refund-dialog-title")).to_contain_text("申请退款")
    page.click("#refund-full")
    expect(page.locator("#refund-preview")).to_contain_text("待审核")
    expect(page.locator("#refund-preview")).to_contain_text("退货入库")
    page.fill("#refund-reason", "用户反馈隐藏款有瑕疵")
    expect(page.locator("#refund-confirm")).to_have_text("提交申请")
    page.click("#refund-confirm")
    expect(page.locator("#flash")).to_contain_text("等待审核")
    record = page.locator("#refund-list > li").first
    expect(record.locator(".refund-head .pill")).to_have_text("待审核")
    refund_no = record.get_attribute("data-refund")

    # four eyes: its creator is offered no 批准, with the server's reason, and may withdraw it
    # instead; a second operator approves it
    console.go("#/reviews")
    card = page.locator(f"#review-list > li[data-refund='{refund_no}']")
    expect(card).to_contain_text("货已签收，需人工审批")
    expect(card.locator("[data-refusal=approve]")).to_have_text(
        "需审批的退款不能由发起人本人审批，请由其他有权限的人员审批")
    expect(card.locator("button[data-action=approve]")).to_have_count(0)
    expect(card.locator("button[data-action=reject]")).to_have_count(0)
    expect(card.locator("button[data-action=withdraw]")).to_have_text("撤回")
    page.goto(f"{console.url}#token={env.admin2}")
    page.wait_for_selector("#order-table")
    console.go("#/reviews")
    expect(card.locator("[data-refusal]")).to_have_count(0)
    expect(card.locator("button[data-action=withdraw]")).to_have_count(0)
    card.locator("button[data-action=approve]").click()
    expect(card).to_contain_text("已批准")
    env.wait_status(refund_no, "success")
    drain(env)

    console.go("#/tasks")
    task = page.locator("#task-list > li").first
    expect(task).to_contain_text("退货入库")
    expect(task).to_contain_text(order_no)
    console.shot("manual-tasks")
    with page.expect_download() as info:
        page.click("#tasks-csv")
    download = info.value
    assert download.suggested_filename == "manual-tasks-open.csv"
    data = open(download.path(), "rb").read()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert next(csv.reader(text.splitlines()))[:5] == ["任务编号", "类型", "状态", "订单号", "退款单号"]
    assert order_no in text and refund_no in text and "退货入库" in text

    task.locator("input[name=note]").fill("已联系用户寄回")
    task.locator("button:has-text('标记完成')").click()
    done = page.locator("#task-list > li").first
    expect(done).to_contain_text("已处理")
    expect(done).to_contain_text("已联系用户寄回")
    page.select_option("#task-status", "done")
    expect(page.locator("#task-list > li")).to_have_count(1)
    page.select_option("#task-status", "open")
    expect(page.locator(".empty")).to_have_text("没有待处理的任务")

    console.open_order(3)
    expect(console.block("shipping")).to_contain_text("异常")
    expect(page.locator("#refund-why-not")).to_have_text("订单状态为已退款，不可退款")


def test_csv_export_in_parts_is_saved_as_one_file(console):
    """The server caps a CSV response and names the next part; the console joins the parts."""
    from chalicelib.adapters.models import ManualTask

    page, env = console.page, console.env
    for i in range(3):
        ManualTask(f"TASK-PART-{i}", type="return_to_warehouse", order_no=console.order_no(3), refund_no=f"RF-PART-{i}",
                   user_id="u1002", action="退货入库后确认", status="open",
                   created_at=f"2026-11-25T00:00:0{i}Z").save()
    parts = []

    def one_row_per_part(route):  # make the server split the export: one row per response
        parts.append(route.request.url)
        route.continue_(url=route.request.url + "&limit=1")

    page.route("**/api/admin/manual-tasks?*format=csv*", one_row_per_part)
    console.login()
    console.go("#/tasks")
    expect(page.locator("#task-list > li")).to_have_count(3)
    with page.expect_download() as info:
        page.click("#tasks-csv")
    data = open(info.value.path(), "rb").read()
    assert len(parts) == 3 and "cursor=" in parts[1] and "cursor=" in parts[2]
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\xef\xbb\xbf") == 1
    rows = list(csv.reader(data.decode("utf-8-sig").splitlines()))
    assert rows[0][:3] == ["任务编号", "类型", "状态"] and len(rows) == 4
    assert [row[0] for row in rows[1:]] == ["TASK-PART-2", "TASK-PART-1", "TASK-PART-0"]


def test_narrow_screen(narrow_console):
    c = narrow_console
    page = c.page
    c.login()
    expect(page.locator("#order-table thead")).to_be_hidden()  # rows become cards
    expect(page.locator("#order-table tbody tr").first.locator("td[data-label=订单状态]")).to_be_visible()

    def fits():
        return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    assert fits()
    c.shot("order-list-narrow", full_page=False)
    c.open_order(6)
    assert fits()
    c.shot("order-detail-narrow", full_page=False)
    page.click("#refund-button")
    page.click("#refund-full")
    expect(page.locator("#refund-preview dl")).to_be_visible()
    assert fits()
    c.shot("refund-dialog-narrow", full_page=False)
