"""The header's search box: every kind of number staff are given finds its order, and the
result links to it (GET /api/admin/search through the console)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _search(console, typed: str):
    page = console.page
    page.fill("#search-input", typed)
    page.press("#search-input", "Enter")
    page.wait_for_selector("#search-count, #search-empty, #search-results .note.error")


def _open_first_order(console, selector: str, order_no: str):
    link = console.page.locator(f"{selector} a[href='#/orders/{order_no}']").first
    link.click()
    expect(console.page.locator("h1", has_text=order_no)).to_be_visible()


def test_search_by_each_kind_of_number(console):
    env, page = console.env, console.page
    console.login()
    order = env.order(2)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": 100})
    assert r.status_code == 201, r.text
    refund_no = r.json()["refund_no"]
    wechat_id = env.wait_for(lambda: env.refund(refund_no).wechat_refund_id)

    for typed, label in [(order.order_no.lower(), "订单号"), (order.payment.transaction_id, "微信支付单号")]:
        _search(console, typed)
        row = page.locator(f"#search-orders tr[data-order='{order.order_no}']")
        expect(row).to_contain_text(f"按{label}")
        _open_first_order(console, "#search-orders", order.order_no)

    for typed, label in [(refund_no, "商户退款单号"), (wechat_id, "微信退款单号")]:
        _search(console, typed)
        row = page.locator(f"#search-refunds tr[data-refund='{refund_no}']")
        expect(row).to_contain_text(label)
        expect(row).to_contain_text(wechat_id)
        _open_first_order(console, "#search-refunds", order.order_no)

    for typed, user_id, label in [("u1003", "u1003", "玩家 ID"), ("阿紫", "u1003", "昵称"),
                                  ("139 0013 9003", "u1003", "手机号")]:
        _search(console, typed)
        group = page.locator(f"[data-results=user][data-user='{user_id}']")
        expect(group.locator("h2")).to_contain_text(f"按{label}匹配")
        first = group.locator("tbody tr").first.get_attribute("data-order")
        _open_first_order(console, f"[data-results=user][data-user='{user_id}']", first)
    console.shot("search-by-phone-then-order")

    _search(console, order.order_no[:-1])
    expect(page.locator("#search-empty")).to_contain_text("精确匹配")


def test_search_box_at_390px(narrow_console):
    console = narrow_console
    console.login()
    _search(console, "小明")
    expect(console.page.locator("[data-results=user][data-user='u1001']")).to_be_visible()
    width = console.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    console.shot("search-390")


def test_the_order_list_is_compact_cards_at_390px(narrow_console):
    console = narrow_console
    console.login()
    rows = console.page.locator("#order-table tbody tr")
    assert rows.count() == 20
    first = rows.first.bounding_box()
    assert first["width"] <= 390 and first["height"] < 260, first  # two fields a row
    height = console.page.locator("#order-table").bounding_box()["height"]
    assert height < 4800, height  # 20 orders (the page was about 6 000 px with one field a row)
    assert console.page.evaluate("document.documentElement.scrollWidth") <= 390
    console.shot("orders-390")
