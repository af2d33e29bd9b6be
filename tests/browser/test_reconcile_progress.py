"""The 对账 pages show what the system is doing: a run's progress (lines done, elapsed) followed
until it ends, not ready / failed / refused bill each looking different, the refused attempt kept
beside a finished report, a date range and a "days with differences" filter, and a confirmation
before a rerun. A run under way is its stored checkpoint (what a slow bill's run leaves between
invocations), advanced by the test."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from chalicelib.adapters import reconciliations as store
from chalicelib.domain import clock
from chalicelib.domain.reconciliation import Figures

pytestmark = pytest.mark.browser


def _day(offset: int) -> str:
    return clock.beijing_day(clock.now() - timedelta(days=offset))


def _running(day: str, lines: int) -> None:
    now = clock.now()
    run = store.new_run(day, 1, status="running", actor="admin:ops-1", now=clock.iso(now - timedelta(seconds=75)),
                        lease_until=clock.iso(now + timedelta(minutes=10)), figures={})
    run.checkpoint = {"offset": lines, "figures": Figures().to_dict()}
    assert store.put_run(run, expected_generation=None)


def test_progress_is_followed_until_the_run_ends(console):
    page, env = console.page, console.env
    day = _day(2)
    _running(day, 1234)
    console.login("#/reconcile")
    row = page.locator(f"#recon-table tr[data-date='{day}']")
    expect(row).to_contain_text("对账中")
    expect(row).to_contain_text("已处理 1234 行")
    row.locator("a").click()
    progress = page.locator("#recon-progress-text")
    expect(progress).to_contain_text("已处理 1234 行")
    expect(progress).to_contain_text("已用时 1 分")
    expect(page.locator("#recon-run")).to_be_disabled()
    console.shot("reconcile-running")

    store.update_run(day, 1, {"checkpoint": {"offset": 2500, "figures": Figures().to_dict()}})
    expect(progress).to_contain_text("已处理 2500 行", timeout=10_000)
    figures = Figures().to_dict()
    store.update_run(day, 1, {"status": "done", "figures": figures, "finished_at": clock.iso(clock.now()),
                              "lease_until": None})
    expect(page.locator("#recon-classes")).to_be_visible(timeout=10_000)
    expect(page.locator("#recon-report")).to_contain_text("已完成")
    expect(page.locator("#recon-run")).to_be_enabled()


def test_states_look_different_and_a_refused_rerun_is_listed(console):
    page, env = console.page, console.env
    env.sim.configure(bill_ready_hour=None)
    today = clock.beijing_day(clock.now())
    not_ready = _day(3)
    run = store.new_run(not_ready, 1, status="not_ready", actor="system", now=clock.iso(clock.now()),
                        lease_until=None, figures={})
    assert store.put_run(run, expected_generation=None)
    console.login("#/reconcile")
    row = page.locator(f"#recon-table tr[data-date='{not_ready}']")
    expect(row.locator(".pill.warn")).to_have_text("账单未出")
    expect(row.locator("td[data-label=账单行数]")).to_have_text("—")  # no zeros for a day not reconciled

    # a refused bill on a day without a report: a failed attempt, marked as the SHA1 check
    env.sim.add_bill_fault(kind="HASH_MISMATCH", bill_date=today)
    console.go(f"#/reconcile/{today}")
    expect(page.locator("#recon-report")).to_contain_text("该日期尚未对账")
    page.locator("#recon-run").click()  # first run: no confirmation
    expect(page.locator("#recon-refused")).to_contain_text("没有采用其中任何数据")
    expect(page.locator("#recon-report .pill.bad").first).to_have_text("账单校验失败")
    console.go("#/reconcile")
    expect(page.locator(f"#recon-table tr[data-date='{today}'] .pill.bad").first).to_have_text("账单校验失败")
    console.shot("reconcile-refused")
    env.sim.clear_bill_faults()

    console.go(f"#/reconcile/{today}")
    expect(page.locator("#recon-refused")).to_be_visible()
    page.locator("#recon-run").click()
    expect(page.locator("#recon-report")).to_contain_text("已完成")
    expect(page.locator("#recon-refused")).to_have_count(0)
    generation = env.api.get(f"/api/admin/reconciliations/{today}", env.admin).json()["generation"]

    console.answer, asked = False, len(console.confirms)
    page.locator("#recon-run").click()
    expect(page.locator("#recon-run")).to_be_enabled()
    assert len(console.confirms) == asked + 1 and today in console.confirms[-1] and "重新对账" in console.confirms[-1]
    console.answer = True
    assert env.api.get(f"/api/admin/reconciliations/{today}", env.admin).json()["generation"] == generation

    env.sim.add_bill_fault(kind="HASH_MISMATCH", bill_date=today)
    page.locator("#recon-run").click()
    expect(page.locator("#main .note.error").first).to_contain_text("SHA1")
    expect(page.locator("#recon-refused")).to_contain_text("以下为此前完成的对账结果")
    expect(page.locator("#recon-report")).to_contain_text("已完成")
    console.shot("reconcile-refused-rerun")
    console.go(f"#/reconcile?from={today}&to={today}")
    rows = page.locator("#recon-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("重跑账单校验失败")


def test_days_with_differences_filter(console):
    page = console.page
    differing = _day(5)
    run = store.new_run(differing, 1, status="done", actor="system", now=clock.iso(clock.now()), lease_until=None,
                        figures={**Figures().to_dict(), "discrepancies": 2, "lines_read": 9, "matched": 7})
    assert store.put_run(run, expected_generation=None)
    clean = _day(6)
    run = store.new_run(clean, 1, status="done", actor="system", now=clock.iso(clock.now()), lease_until=None,
                        figures={**Figures().to_dict(), "lines_read": 9, "matched": 9})
    assert store.put_run(run, expected_generation=None)
    console.login("#/reconcile")
    expect(page.locator(f"#recon-table tr[data-date='{clean}']")).to_be_visible()
    page.check("#recon-diff")
    page.click("#recon-filters button[type=submit]")
    rows = page.locator("#recon-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-date", differing)
    assert "diff=1" in page.url


def test_reconcile_list_is_cards_at_390px(narrow_console):
    console = narrow_console
    console.login("#/reconcile")
    expect(console.page.locator("#recon-table tbody tr").first).to_be_visible()
    assert console.page.evaluate("document.documentElement.scrollWidth") <= 390
    console.shot("reconcile-390")
