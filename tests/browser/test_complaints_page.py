"""The 投诉 page: the queue by deadline with live countdowns and risk tags, a complaint's detail
with its draw records, and one action (a reply with an image) reaching WeChat's complaint."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from devstack.driver import LambdaContext, schedule_event

pytestmark = pytest.mark.browser
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def test_queue_with_countdowns_and_a_reply(console):
    env = console.env
    sim = env.sim
    near = sim.complaints.create(env.order(6).order_no, 990, at=time.time() - 20 * 3600,
                                 user_tags=["HIGH_RISK"])["complaint_id"]  # 4 h to its first-reply deadline
    fresh = sim.complaints.create(env.order(2).order_no, 500, description="盲盒少发了一个")["complaint_id"]
    result = env.stack.handlers().complaints_sweep(schedule_event("ap-east-1"), LambdaContext("complaints_sweep"))
    assert result["new"] == 2

    console.login("#/complaints")
    rows = console.page.locator("#complaint-queue tbody tr")
    expect(rows).to_have_count(2)
    first = rows.nth(0)
    expect(first).to_have_attribute("data-complaint", near)  # the nearest deadline first
    expect(first).to_contain_text("即将超时")
    expect(first).to_contain_text("高风险投诉")
    clock = first.locator(".countdown")
    expect(clock).to_contain_text("剩余 3 小时")
    shown = clock.inner_text()
    expect(clock).not_to_have_text(shown)  # it counts down by itself
    expect(rows.nth(1)).to_have_attribute("data-complaint", fresh)
    console.shot("complaints-queue")

    first.locator("a.mono").first.click()
    console.page.wait_for_selector("[data-block=evidence]")
    draws = console.page.locator("#complaint-draws tbody tr")
    expect(draws).to_have_count(3)
    expect(draws.nth(0)).to_contain_text("隐藏款·月影")
    expect(console.block("history")).to_contain_text("用户提交投诉")
    console.page.locator("#complaint-actions button[data-action=reply]").click()
    console.page.fill("#complaint-text", "您抽中的隐藏款已于昨日发出，请留意物流")
    console.page.set_input_files("#complaint-images", files=[{"name": "proof.png", "mimeType": "image/png",
                                                               "buffer": PNG}])
    console.page.click("#complaint-confirm")
    expect(console.page.locator("#flash")).to_contain_text("回复用户：已完成")
    expect(console.block("actions-log")).to_contain_text("回复用户")
    expect(console.page.locator("h1 + .pill, .page-head .pill").first).to_have_text("处理中")
    state = sim.complaints.get(near)
    assert state["state"] == "PROCESSING" and len(state["responses"]) == 1
    assert state["responses"][0]["content"] == "您抽中的隐藏款已于昨日发出，请留意物流"
    assert len(state["responses"][0]["images"]) == 1
    console.shot("complaint-detail")
