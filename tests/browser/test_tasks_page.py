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
    expect(detail).to_contain_text("transaction_id")
    expect(detail).to_contain_text("4200001")
    expect(detail).to_contain_text("5900")
