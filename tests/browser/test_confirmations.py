"""Actions that cannot be taken back ask first, naming what they do: approving a refund (its
amount), rejecting it, closing a task; a closed task can be reopened."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chalicelib.adapters import repository as repo
from chalicelib.domain import clock
from chalicelib.domain.enums import TaskType
from chalicelib.domain.tasks import Task
from tests.browser.test_console import apply

pytestmark = pytest.mark.browser


def test_approval_asks_naming_the_amount(console):
    page, env = console.page, console.env
    refund_no = apply(env, 3, "u1003", 1500, "隐藏款有瑕疵")
    console.login("#/reviews")
    card = page.locator(f"li[data-refund='{refund_no}']")
    approve = card.locator("button[data-action=approve]")
    console.answer = False
    approve.click()
    expect(approve).to_be_enabled()
    assert console.confirms[-1].startswith("批准退款 ¥15.00") and "不可撤销" in console.confirms[-1]
    assert env.refund(refund_no).status == "pending_review"
    console.answer = True
    approve.click()
    expect(page.locator("#flash")).to_contain_text("已批准退款 ¥15.00")
    assert env.refund(refund_no).status != "pending_review"


def test_closing_a_task_asks_and_a_closed_task_reopens(console):
    page, env = console.page, console.env
    task = Task(TaskType.RETURN_TO_WAREHOUSE, "RC1", "退货入库后标记完成", order_no=env.order(1).order_no)
    repo.write([repo.open_task(task, now=clock.iso(clock.now()), by="system")])
    console.login("#/tasks")
    card = page.locator(f"#task-list > li[data-task='{task.task_id}']")
    done = card.locator("button.primary")
    console.answer = False
    done.click()
    expect(done).to_be_enabled()
    assert "已处理完成" in console.confirms[-1] and repo.get_task(task.task_id).status == "open"
    console.answer = True
    done.click()
    expect(page.locator("#flash")).to_contain_text("任务已标记完成")
    card = page.locator(f"#task-list > li[data-task='{task.task_id}']")
    reopen = card.locator("button[data-action=reopen]")
    reopen.click()
    expect(page.locator("#flash")).to_contain_text("任务已重新打开")
    assert "重新打开任务" in console.confirms[-1] and repo.get_task(task.task_id).status == "open"
    expect(page.locator(f"#task-list > li[data-task='{task.task_id}'] button.primary")).to_have_text("标记完成")


def test_nav_counts_follow_reviews_and_tasks(console):
    page, env = console.page, console.env
    before = env.api.get("/api/admin/counts", env.admin).json()
    apply(env, 3, "u1003", 1500, "隐藏款有瑕疵")
    console.login()
    reviews = page.locator("#nav a[data-nav=reviews] .count")
    expect(reviews).to_have_text(str(before["pending_review"] + 1))
    task = Task(TaskType.RETURN_TO_WAREHOUSE, "NAV1", "入库", order_no=env.order(1).order_no)
    repo.write([repo.open_task(task, now=clock.iso(clock.now()), by="system")])
    console.go("#/tasks")
    expect(page.locator("#nav a[data-nav=tasks] .count")).to_have_text(str(before["open_tasks"] + 1))
    expect(page.locator("#nav a[data-nav=tasks]")).to_contain_text("人工任务")
