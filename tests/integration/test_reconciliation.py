"""Reconciliation (对账) through the running stack: refunds made through the API, the simulator's
trade bill with each injected discrepancy, the run over HTTP, the report, the tasks, the CSV."""
from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.adapters import models
from chalicelib.adapters.keys import day_key, shard_key
from chalicelib.adapters.models import ManualTask, Order, ReconRun, Refund
from chalicelib.domain.clock import beijing_day_of
from chalicelib.services import reconciliation as recon

CST = timezone(timedelta(hours=8))
BASE = "/api/admin/reconciliations"


def today() -> str:
    return datetime.now(CST).strftime("%Y-%m-%d")


def run(env, bill_date: str, status: int = 200) -> dict:
    r = env.api.post(BASE, env.admin, {"bill_date": bill_date})
    assert r.status_code == status, r.text
    return r.json()


def classes(report: dict) -> dict:
    return {c["class"]: c["count"] for c in report["classes"]}


def discrepancies(env, bill_date: str) -> list[dict]:
    r = env.api.get(f"{BASE}/{bill_date}/discrepancies?limit=100", env.admin)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def recon_tasks() -> list[ManualTask]:
    models.bind()
    return [t for t in ManualTask.scan() if t.type == "recon_discrepancy"]


def refunded(env, n: int, amount: int) -> str:
    """A refund of seeded order ``n`` made through the API and settled by WeChat's notification."""
    order = env.order(n)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": amount})
    assert r.status_code == 201, r.text
    refund_no = r.json()["refund_no"]
    env.wait_status(refund_no, "success")
    return refund_no


def pending_paid(env) -> None:
    """The seeded pending order (7) is paid at WeChat minutes ago; its notification arrives."""
    url = env.stack.env["WECHAT_PAYMENT_NOTIFY_URL"]
    assert env.sim.notify_payment(env.order(7).order_no, url) == 204


@pytest.fixture(autouse=True)
def bills_at_once(env):
    """These tests reconcile today (and yesterday at any hour): the simulator serves any day's
    bill at once, today's so far (WeChat: from about 10:00 the next day, STATEMENT_CREATING before)."""
    env.sim.configure(bill_ready_hour=None)


@pytest.fixture
def two_refunds(env):
    """Two refunds that succeeded today (Beijing), both billed today; every payment known."""
    env._set_env(RECON_MIDNIGHT_MINUTES="0")  # successes near midnight are covered by their own test
    pending_paid(env)
    return refunded(env, 2, 500), refunded(env, 13, 700)


def test_everything_matches(env, two_refunds):
    report = run(env, today())
    assert report["status"] == "done"
    assert classes(report)["matched"] >= 2 and report["discrepancies"] == 0
    assert report["theirs"]["refunds"] == report["ours"]["refunds"] and report["totals_match"] is True
    assert report["bill_consistent"] is True
    assert report["lines_read"] == report["matched"] and report["duration_ms"] >= 0
    assert discrepancies(env, today()) == [] and recon_tasks() == []
    listed = env.api.get(BASE, env.admin).json()["items"]
    assert listed[0]["bill_date"] == today() and listed[0]["status"] == "done" and len(listed) == 91


def test_a_refund_the_bill_lacks_is_missing_at_wechat(env, two_refunds):
    first, _ = two_refunds
    env.sim.add_bill_fault(kind="DROP_LINE", out_refund_no=first)
    report = run(env, today())
    assert classes(report)["missing_at_wechat"] == 1 and report["discrepancies"] == 1
    [d] = discrepancies(env, today())
    assert (d["class"], d["refund_no"], d["ours_amount"], d["ours_status"]) == ("missing_at_wechat", first, 500,
                                                                                 "success")
    assert d["order_no"] == env.order(2).order_no
    [task] = recon_tasks()
    assert task.task_id == f"recon_discrepancy.{today()}.missing_at_wechat.{first}" and task.refund_no == first
    assert report["totals_match"] is False and report["ours"]["refunds"] - report["theirs"]["refunds"] == 500


def test_an_amount_the_bill_changed_is_an_amount_mismatch(env, two_refunds):
    _, second = two_refunds
    env.sim.add_bill_fault(kind="CHANGE_AMOUNT", out_refund_no=second, amount=650)
    report = run(env, today())
    assert classes(report)["amount_mismatch"] == 1 and report["discrepancies"] == 1
    [d] = discrepancies(env, today())
    assert (d["class"], d["refund_no"], d["ours_amount"], d["theirs_amount"]) == ("amount_mismatch", second, 700, 650)
    assert [t.task_id for t in recon_tasks()] == [f"recon_discrepancy.{today()}.amount_mismatch.{second}"]


def test_a_refund_we_never_made_is_missing_here(env, two_refunds):
    order = env.order(4)
    env.sim.add_bill_fault(kind="EXTRA_REFUND", bill_date=today(), out_trade_no=order.order_no, amount=300,
                           out_refund_no="PLATFORMX1")
    report = run(env, today())
    assert classes(report)["missing_here"] == 1 and report["discrepancies"] == 1
    [d] = discrepancies(env, today())
    assert (d["class"], d["refund_no"], d["order_no"], d["theirs_amount"], d["ours_amount"]) == \
        ("missing_here", "PLATFORMX1", order.order_no, 300, None)
    assert [t.order_no for t in recon_tasks()] == [order.order_no]


def test_a_line_billed_processing_is_an_accepted_refund_and_closed_is_a_mismatch(env, two_refunds):
    """A refund line carries the status the refund had when WeChat accepted it, never updated
    ("出账后退款状态不会更新"): PROCESSING against our success is an accepted refund, not a
    discrepancy; CLOSED against our success is one."""
    first, second = two_refunds
    env.sim.add_bill_fault(kind="FLIP_STATUS", out_refund_no=first, status="PROCESSING")
    env.sim.add_bill_fault(kind="FLIP_STATUS", out_refund_no=second, status="CLOSED")
    report = run(env, today())
    assert classes(report)["status_mismatch"] == 1 and report["discrepancies"] == 1
    [d] = discrepancies(env, today())
    assert (d["class"], d["refund_no"], d["ours_status"], d["theirs_status"]) == \
        ("status_mismatch", second, "success", "CLOSED")


def test_a_success_we_had_not_heard_of_goes_through_the_transition(env):
    env._set_env(RECON_MIDNIGHT_MINUTES="0")
    pending_paid(env)
    order, refund_no = env.refund_without_notification(14, 990)
    assert env.refund(refund_no).status == "processing"
    report = run(env, today())
    refund = env.refund(refund_no)
    # the bill's SUCCESS is not applied as such: WeChat's refund query gives the final state
    assert refund.status == "success" and refund.events[-1].actor == "reconciliation"
    assert "微信退款查询" in refund.events[-1].detail and refund.success_actor == "reconciliation"
    assert refund.accepted_day_key == day_key(refund_no, refund.accepted_at) and refund.accepted_at
    assert env.fresh(order.order_no).refunded_amount == 990
    env.check_invariants(order.order_no)
    assert report["applied"] == 1 and report["discrepancies"] == 0 and discrepancies(env, today()) == []
    assert env.drain_restorations() == 1  # the normal success path: restoration queued
    again = run(env, today())
    assert classes(again) == classes(report) and again["applied"] == 0 and recon_tasks() == []


def test_payments_every_class_and_a_rerun_opens_no_new_task(env):
    paid = env.order(1)
    pay_day = beijing_day_of(paid.payment.paid_at)
    cancelled = env.order(8)
    env.sim.register_transaction(cancelled.actual_amount, cancelled.order_no,
                                 paid_at=datetime.fromisoformat(paid.payment.paid_at.replace("Z", "+00:00")).timestamp())
    env.sim.register_transaction(1234, "GBNOTOURS0001",
                                 paid_at=datetime.fromisoformat(paid.payment.paid_at.replace("Z", "+00:00")).timestamp())
    env.sim.add_bill_fault(kind="CHANGE_AMOUNT", out_trade_no=paid.order_no, amount=paid.actual_amount + 1)
    report = run(env, pay_day)
    found = {(d["class"], d["order_no"]) for d in discrepancies(env, pay_day)}
    # the cancelled order's payment (its notification lost) is asked for and recorded like a
    # notified one: refundable, one task 已取消订单收到付款, no discrepancy
    assert found == {("amount_mismatch", paid.order_no), ("missing_here", "GBNOTOURS0001")}
    assert report["discrepancies"] == 2 and classes(report)["matched"] == report["lines_read"] - 2
    assert report["bill_consistent"] is True and report["theirs"]["payments"] > 0 and report["applied"] == 1
    booked = env.fresh(cancelled.order_no)
    assert booked.status == 3 and booked.paid_after_cancel and booked.refundable_amount == cancelled.actual_amount
    models.bind()
    assert [t.task_id for t in ManualTask.scan() if t.type == "paid_after_cancel"] == \
        [f"paid_after_cancel.{cancelled.order_no}"]
    tasks = sorted(t.task_id for t in recon_tasks())
    again = run(env, pay_day)
    assert classes(again) == classes(report) and again["generation"] == report["generation"] + 1
    assert again["applied"] == 0  # booked already: a known payment on a cancelled order matches
    assert {(d["class"], d["order_no"]) for d in discrepancies(env, pay_day)} == found
    assert sorted(t.task_id for t in recon_tasks()) == tasks and len(tasks) == 2


def test_a_payment_we_recorded_that_the_bill_lacks_is_missing_at_wechat(env):
    """Our books say order 1 was paid on its day (the by_paid_day index); WeChat's bill of that
    day has no such payment. A payment recorded through a notification is in the index too."""
    env._set_env(RECON_MIDNIGHT_MINUTES="0")
    paid = env.order(1)
    pay_day = beijing_day_of(paid.payment.paid_at)
    assert paid.paid_day_key == day_key(paid.order_no, paid.payment.paid_at)
    pending_paid(env)  # order 7's payment arrives by notification: mark_paid keys it by its day
    notified = env.fresh(env.order(7).order_no)
    assert notified.paid_day_key == day_key(notified.order_no, notified.payment.paid_at)
    env.sim.add_bill_fault(kind="DROP_LINE", out_trade_no=paid.order_no)
    report = run(env, pay_day)
    found = [(d["class"], d["kind"], d["order_no"], d["ours_amount"], d["theirs_amount"])
             for d in discrepancies(env, pay_day)]
    assert found == [("missing_at_wechat", "payment", paid.order_no, paid.actual_amount, None)]
    assert report["discrepancies"] == 1 and classes(report)["matched"] == report["lines_read"]
    assert report["ours"]["payments"] == report["theirs"]["payments"] + paid.actual_amount
    assert report["totals_match"] is False and report["bill_consistent"] is True
    [task] = recon_tasks()
    assert task.order_no == paid.order_no and "微信账单无此支付" in task.action
    again = run(env, pay_day)
    assert classes(again) == classes(report) and len(recon_tasks()) == 1


def test_a_bill_that_is_not_ready(env, two_refunds):
    env.sim.add_bill_fault(kind="NOT_READY", bill_date=today())
    report = run(env, today())
    assert report["status"] == "not_ready" and report["lines_read"] == 0
    assert env.api.get(f"{BASE}/{today()}", env.admin).json()["status_label"] == "账单未出"
    assert recon_tasks() == []


def test_a_hash_mismatch_is_refused_and_listed_as_a_failed_attempt(env, two_refunds):
    first, _ = two_refunds
    env.sim.add_bill_fault(kind="DROP_LINE", out_refund_no=first)
    env.sim.add_bill_fault(kind="HASH_MISMATCH", bill_date=today())
    r = env.api.post(BASE, env.admin, {"bill_date": today()})
    assert r.status_code == 502 and r.json()["code"] == "BILL_HASH_MISMATCH"
    attempt = env.api.get(f"{BASE}/{today()}", env.admin).json()
    assert attempt["status"] == "failed" and attempt["lines_read"] == 0 and attempt["discrepancies"] == 0
    assert attempt["refused"]["code"] == "HASH_MISMATCH" and "SHA1" in attempt["reason"]
    assert env.api.get(f"{BASE}/{today()}/discrepancies", env.admin).json()["items"] == []
    listed = {i["bill_date"]: i for i in env.api.get(BASE, env.admin).json()["items"]}[today()]
    assert listed["status"] == "failed" and listed["refused"]["code"] == "HASH_MISMATCH"
    assert recon_tasks() == []


def test_a_refused_rerun_keeps_the_finished_report_and_notes_the_attempt(env, two_refunds):
    done = run(env, today())
    assert done["status"] == "done"
    env.sim.add_bill_fault(kind="HASH_MISMATCH", bill_date=today())
    r = env.api.post(BASE, env.admin, {"bill_date": today()})
    assert r.status_code == 502 and r.json()["code"] == "BILL_HASH_MISMATCH"
    kept = env.api.get(f"{BASE}/{today()}", env.admin).json()
    assert (kept["status"], kept["generation"], kept["lines_read"]) == ("done", done["generation"], done["lines_read"])
    assert kept["refused"]["code"] == "HASH_MISMATCH" and kept["refused"]["by"] == "admin:ops-1"


def test_a_refund_accepted_near_midnight_and_billed_the_next_day_matches(env, two_refunds):
    """Ours says WeChat accepted it at 23:59:50 yesterday; WeChat billed it today."""
    first, _ = two_refunds
    env._set_env(RECON_MIDNIGHT_MINUTES="15")
    yesterday = (datetime.now(CST) - timedelta(days=1)).strftime("%Y-%m-%d")
    late = f"{yesterday}T23:59:50+08:00"
    models.bind()
    Refund(first).update(actions=[Refund.accepted_day_key.set(day_key(first, late)), Refund.accepted_at.set(late)])
    report = run(env, yesterday)
    assert report["matched_adjacent"] == 1 and classes(report)["missing_at_wechat"] == 0
    assert recon_tasks() == []


def test_a_payment_billed_the_next_day_matches_across_midnight(env):
    """Ours says order 7 was paid at 23:59:50 yesterday; WeChat billed it today."""
    env._set_env(RECON_MIDNIGHT_MINUTES="15")
    pending_paid(env)
    order_no = env.order(7).order_no
    yesterday = (datetime.now(CST) - timedelta(days=1)).strftime("%Y-%m-%d")
    late = f"{yesterday}T23:59:50+08:00"
    models.bind()
    Order(order_no).update(actions=[Order.payment.paid_at.set(late),
                                    Order.paid_day_key.set(day_key(order_no, late))])
    report = run(env, yesterday)
    assert report["matched_adjacent"] == 1 and classes(report)["missing_at_wechat"] == 0
    assert all(t.order_no != order_no for t in recon_tasks())


def test_a_refund_accepted_near_midnight_waits_for_the_next_days_bill(env, two_refunds):
    first, _ = two_refunds
    env._set_env(RECON_MIDNIGHT_MINUTES="15")
    env.sim.add_bill_fault(kind="DROP_LINE", out_refund_no=first)
    models.bind()
    Refund(first).update(actions=[Refund.accepted_at.set(f"{today()}T23:59:50+08:00")])
    report = run(env, today())  # tomorrow's bill does not exist yet
    assert report["deferred"] == 1 and report["discrepancies"] == 0 and recon_tasks() == []


def test_bad_requests(env):
    for body in ({"bill_date": "2020-01-01"}, {"bill_date": "yesterday"}, {}, {"bill_date": today(), "x": 1}):
        r = env.api.post(BASE, env.admin, body)
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", (body, r.text)
    assert env.api.get(f"{BASE}/2020-13-01", env.admin).status_code == 400
    assert env.api.get(f"{BASE}/{today()}/discrepancies?format=xml", env.admin).status_code == 400
    never = env.api.get(f"{BASE}/{today()}/discrepancies", env.admin)
    assert never.status_code == 404 and never.json()["code"] == "RECONCILIATION_NOT_FOUND"
    assert env.api.get(BASE, env.user("u1001")).status_code == 403


def test_csv_export_is_injection_safe(env, two_refunds):
    order = env.order(4)
    env.sim.add_bill_fault(kind="EXTRA_REFUND", bill_date=today(), out_trade_no=order.order_no, amount=300,
                           out_refund_no="PLATFORMX2")
    run(env, today())
    r = env.api.get(f"{BASE}/{today()}/discrepancies?format=csv", env.admin)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["账单日期", "差异类型", "类别", "订单号"]
    [row] = rows[1:]
    assert row[1] == "本地无记录" and row[3] == order.order_no and row[4] == "PLATFORMX2"
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_a_run_out_of_time_continues_from_its_checkpoint(env, two_refunds, monkeypatch):
    """Checkpoint after every line (one key a batch, no time left), then resume to the end."""
    monkeypatch.setattr(recon, "BATCH_KEYS", 1)
    env.sim.register_transaction(4321, "GBNOTOURS0002", paid_at=time.time())
    whole = recon.start(today(), actor="test", deadline=recon.Deadline(3600))
    first = recon.start(today(), actor="test", deadline=recon.Deadline(0))
    assert first["status"] == "running" and first["lines_done"] >= 1
    report = first
    for _ in range(whole["lines_read"] + 1):
        models.bind()
        ReconRun(today(), "RUN").update(actions=[ReconRun.lease_until.remove()])  # as if the worker stopped
        report = recon.resume(today(), first["generation"], deadline=recon.Deadline(0))
        if report["status"] != "running":
            break
    assert report["status"] == "done"
    assert classes(report) == classes(whole) and report["lines_read"] == whole["lines_read"]
    assert report["ours"] == whole["ours"] and report["theirs"] == whole["theirs"]


def test_a_run_the_api_could_not_finish_continues_through_the_queue(env, two_refunds, monkeypatch):
    """The console's run has no time left after its first batch: it answers 'running', its
    continuation message reaches the reconciliation queue, and the local driver's delivery of
    that message to ``reconcile_continue`` finishes the run (the message is then deleted)."""
    from devstack.driver import Driver

    monkeypatch.setattr(recon, "BATCH_KEYS", 1)
    env.sim.register_transaction(4321, "GBNOTOURS0003", paid_at=time.time())
    whole = recon.start(today(), actor="test", deadline=recon.Deadline(3600))
    env._set_env(RECON_API_BUDGET_SECONDS="0")
    first = run(env, today(), status=202)  # accepted: it goes on elsewhere
    assert first["status"] == "running" and first["generation"] == whole["generation"] + 1
    stack = env.stack
    sqs = stack.sqs()
    messages = sqs.receive_message(QueueUrl=stack.recon_queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1
    driver = Driver(stack.handlers(), sqs, stack.queue_url, stack.queue_arn, "ap-east-1", 3600,
                    recon_queue=(stack.recon_queue_url, stack.recon_queue_arn))
    assert driver.deliver_reconciliation(messages[0]) is True
    report = env.api.get(f"{BASE}/{today()}", env.admin).json()
    assert report["status"] == "done" and report["lines_read"] == whole["lines_read"]
    assert classes(report) == classes(whole) and report["ours"] == whole["ours"]
    attributes = sqs.get_queue_attributes(QueueUrl=stack.recon_queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    # SQS delivers at least once: the same message again finds nothing to continue
    assert recon.continue_from_message(messages[0]["Body"]) is None
    assert env.api.get(f"{BASE}/{today()}", env.admin).json()["status"] == "done"


def test_a_busy_day_pages_its_discrepancies_with_signed_cursors(env):
    """33 payments WeChat billed that we never recorded: pages of the default 20 through the API
    (and CSV files of 20 rows), each cursor accepted only for the day and run it was issued for."""
    env._set_env(RECON_MIDNIGHT_MINUTES="0")
    pending_paid(env)
    ours_unknown = {f"GBNOTOURS{i:04d}" for i in range(33)}
    for i, order_no in enumerate(sorted(ours_unknown)):
        env.sim.register_transaction(100 + i, order_no, paid_at=time.time())
    report = run(env, today())
    assert classes(report)["missing_here"] == len(ours_unknown) == report["discrepancies"]
    seen, cursor, pages = [], None, []
    while True:
        r = env.api.get(f"{BASE}/{today()}/discrepancies" + (f"?cursor={cursor}" if cursor else ""), env.admin)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(len(body["items"]))
        seen += [d["order_no"] for d in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == [20, 13]
    assert len(seen) == len(set(seen)) and set(seen) == ours_unknown
    files, cursor = [], None
    while True:  # the CSV export, 20 rows a file: X-Next-Cursor names the next
        r = env.api.get(f"{BASE}/{today()}/discrepancies?format=csv&limit=20" + (f"&cursor={cursor}" if cursor else ""),
                        env.admin)
        assert r.status_code == 200, r.text
        files.append([row[3] for row in list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))[1:]])
        cursor = r.headers.get("X-Next-Cursor")
        if not cursor:
            break
    assert [len(f) for f in files] == [20, 13] and [no for f in files for no in f] == seen
    first = env.api.get(f"{BASE}/{today()}/discrepancies", env.admin).json()["next_cursor"]

    def refused(day: str, token: str) -> None:
        r = env.api.get(f"{BASE}/{day}/discrepancies?cursor={token}", env.admin)
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", r.text

    refused(today(), first[:-2] + ("AA" if not first.endswith("AA") else "BB"))  # edited
    yesterday = (datetime.now(CST) - timedelta(days=1)).strftime("%Y-%m-%d")
    run(env, yesterday)
    refused(yesterday, first)  # another day's
    run(env, today())  # a new run of the day: its discrepancies are a new list
    refused(today(), first)
    again = env.api.get(f"{BASE}/{today()}/discrepancies", env.admin).json()
    assert len(again["items"]) == 20 and again["next_cursor"] != first
