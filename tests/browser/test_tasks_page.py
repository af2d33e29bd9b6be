"""Tasks of every type show the domain's label, and what the system recorded about the case."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chalicelib.adapters import repository as repo
from chalicelib.domain.enums import TaskType
from chalicelib.domain import clock
from chalicelib.domain.tasks import Task

pytestmark = pytest.mark.browser


def test_a_task_with_a_detail_shows_its_label_and_detail(console):
    order_no = console.order_no(8)  # cancelled, yet WeChat reports it paid
    task = Task(TaskType.PAID_AFTER_CANCEL, order_no, "订单已取消但收到付款：请退款给用户", order_no=order_no,
                user_id="u1003", detail={"transaction_id": "4200001", "amount": 5900, "trade_state": "SUCCESS"})
    repo.write([repo.open_task(task, now=clock.iso(clock.now()), by="test")])
    console.login("#/tasks")
    card = console.page.locator(f"#task-list > li[data-task='{task.task_id}']")
    expect(card.locator(".refund-head strong")).to_have_text("已取消订单收到付款")
    detail = card.locator(".task-detail")
    # labelled in Chinese from the domain's catalogue: no English keys, fen as 元, WeChat's words named
    expect(detail).to_contain_text("微信支付单号")
    expect(detail).to_contain_text("4200001")
    expect(detail).to_contain_text("¥59.00")
    expect(detail).to_contain_text("支付成功（SUCCESS）")
    expect(detail).not_to_contain_text("transaction_id")
    expect(detail).not_to_contain_text("5900")


def test_a_refund_detail_names_wechat_states_and_beijing_time(console):
    order_no = console.order_no(2)
    task = Task(TaskType.UNKNOWN_REFUND, "RX1", "微信通知了一笔未知退款", order_no=order_no, refund_no="RX1",
                detail={"out_refund_no": "RX1", "refund_id": "50300000099", "status": "SUCCESS", "refund": 1234,
                        "refund_yuan": "12.34", "success_time": "2026-11-20T04:05:06Z",
                        "event_type": "REFUND.SUCCESS", "heard_by": "wechat"})
    repo.write([repo.open_task(task, now=clock.iso(clock.now()), by="test")])
    console.login("#/tasks")
    detail = console.page.locator(f"#task-list > li[data-task='{task.task_id}'] .task-detail")
    for text in ("商户退款单号", "微信退款单号", "退款成功（SUCCESS）", "退款成功通知（REFUND.SUCCESS）", "¥12.34",
                 "2026/11/20 12:05:06", "微信通知"):
        expect(detail).to_contain_text(text)
    for english in ("out_refund_no", "refund_yuan", "event_type", "2026-11-20T04:05:06Z", "1234"):
        expect(detail).not_to_contain_text(english)
    console.shot("task-detail-labelled")
