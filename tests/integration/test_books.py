"""Books that tell the truth, through the running stack: reconciliation the way WeChat bills,
refunds made without us booked against their order, refusals that leave a way out, late bills.
GIVEN what WeChat did, WHEN the service hears of it (notification, poll, bill), THEN the order's
balances, its tasks and the day's report say what really happened."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from chalicelib.adapters import repository as repo
from chalicelib.adapters.models import ManualTask, Order
from chalicelib.domain import clock
from chalicelib.services import edges, payments, poller
from chalicelib.services import reconciliation as recon

BASE = "/api/admin/reconciliations"


def today() -> str:
    return clock.beijing_day(clock.now())


def day_after(day: str, n: int = 1) -> str:
    return (datetime.fromisoformat(day) + timedelta(days=n)).date().isoformat()


def run(env, bill_date: str) -> dict:
    r = env.api.post(BASE, env.admin, {"bill_date": bill_date})
    assert r.status_code == 200, r.text
    return r.json()


def run_at(bill_date: str, moment: datetime) -> dict:
    """Reconcile ``bill_date`` as the schedule would at ``moment`` (a date the API would call future)."""
    with edges.use(edges.Edges(clock=lambda: moment)):
        return recon.start(bill_date, actor="schedule", deadline=recon.Deadline(600))


def tasks_of(task_type: str) -> list[ManualTask]:
    return sorted((t for t in ManualTask.scan() if t.type == task_type), key=lambda t: t.task_id)


def create(env, order_no: str, amount: int) -> str:
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order_no, "amount": amount})
    assert r.status_code == 201, r.text
    return r.json()["refund_no"]


@pytest.fixture(autouse=True)
def bills_at_once(env):
    env.sim.configure(bill_ready_hour=None)  # today's bill so far, and any day's at once
    env._set_env(RECON_MIDNIGHT_MINUTES="0")
    url = env.stack.env["WECHAT_PAYMENT_NOTIFY_URL"]
    assert env.sim.notify_payment(env.order(7).order_no, url) == 204  # the demo's pending payment arrives


# ---------------------------------------------------------------- the acceptance day


def test_a_refund_accepted_on_one_day_and_settled_the_next_gives_no_discrepancy_on_either(env):
    """WeChat accepts the refund yesterday evening (its ledger a day behind real time here) and
    the money reaches the bank card today. Yesterday's bill lists it as PROCESSING; today's bill
    does not list it at all ("出账后退款状态不会更新", a refund line's 交易时间 is 发起退款成功时间)."""
    yesterday = clock.beijing_day(clock.now() - timedelta(days=1))
    env.sim.configure(outcome_delay=3600, ledger_time_offset_seconds=-86400)
    order = env.order(2)
    no = create(env, order.order_no, 500)
    env.wait_status(no, "processing")
    accepted = env.refund(no).accepted_at
    assert clock.beijing_day_of(accepted) == yesterday
    env.sim.configure(ledger_time_offset_seconds=0)
    env.sim.complete(no, "SUCCESS")  # settled today
    refund = env.wait_status(no, "success")
    assert clock.beijing_day_of(refund.success_time) == today()

    first = run(env, yesterday)
    assert first["status"] == "done" and first["discrepancies"] == 0 and first["matched"] == 1, first
    assert first["ours"]["refunds"] == first["theirs"]["refunds"] == 500 and first["totals_match"] is True
    second = run(env, today())
    assert second["discrepancies"] == 0, second
    assert second["ours"]["refunds"] == second["theirs"]["refunds"] == 0  # not on today's bill, not expected there
    assert tasks_of("recon_discrepancy") == []


def test_a_rerun_closes_the_tasks_of_what_it_no_longer_finds(env):
    order = env.order(13)
    no = create(env, order.order_no, 700)
    env.wait_status(no, "success")
    env.sim.add_bill_fault(kind="CHANGE_AMOUNT", out_refund_no=no, amount=650)
    first = run(env, today())
    [task] = tasks_of("recon_discrepancy")
    assert first["discrepancies"] == 1 and task.status == "open"
    env.sim.clear_bill_faults()
    again = run(env, today())
    assert again["discrepancies"] == 0 and again["resolved"] == 1
    closed = repo.get_task(task.task_id)
    assert closed.status == "done" and closed.done_by == "reconciliation" and "未再发现" in closed.note


def test_known_money_is_not_reported(env):
    """An offline payout (WeChat never accepted the refund) and a payment recorded after the
    order was cancelled are money our books already explain: no 微信无记录, no 状态不一致."""
    env.sim.push_scenario("USER_ACCOUNT_ABNORMAL", op="create")
    order = env.order(14)
    no = create(env, order.order_no, 500)
    assert env.refund(no).status == "offline_pending"
    paid = env.api.post(f"/api/admin/pay/refunds/{no}/offline-payout", env.admin,
                        {"channel": "bank_transfer", "reference": "BANK-7"})
    assert paid.status_code == 200, paid.text
    cancelled = next(o for o in (env.order(n) for n in (8, 9, 10)) if o.status == 3)
    env.sim.pay(cancelled.order_no, cancelled.actual_amount, url=env.stack.env["WECHAT_PAYMENT_NOTIFY_URL"])
    env.wait_for(lambda: env.fresh(cancelled.order_no).paid_after_cancel)
    report = run(env, today())
    counts = {c["class"]: c["count"] for c in report["classes"]}
    assert counts["missing_at_wechat"] == 0 and counts["status_mismatch"] == 0 and report["discrepancies"] == 0
    assert tasks_of("recon_discrepancy") == []


def test_other_apps_lines_are_counted_apart_and_open_no_task(env):
    env.sim.register_transaction(4321, "GBOTHERAPP0001", appid="wxotherapp0000001")
    report = run(env, today())
    assert report["other_apps"] == {"wxotherapp0000001": {"lines": 1, "payments": 4321, "refunds": 0}}
    assert report["discrepancies"] == 0 and tasks_of("recon_discrepancy") == []


# ---------------------------------------------------------------- money that moved without us


def test_a_refund_made_on_the_merchant_platform_is_booked_once_and_not_refunded_again(env):
    order = env.order(2)
    url = env.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    result = env.sim.foreign_refund(order.order_no, order.actual_amount - 100, out_refund_no="PLATFORM0001", url=url)
    assert result["refund"]["status"] == "SUCCESS"
    booked = env.wait_status("PLATFORM0001", "success")
    assert booked.origin == "external" and booked.amount == order.actual_amount - 100
    after = env.fresh(order.order_no)
    assert (after.refunded_amount, after.refundable_amount) == (order.actual_amount - 100, 100)
    env.check_invariants(order.order_no)
    [task] = tasks_of("external_refund")
    assert task.refund_no == "PLATFORM0001" and task.status == "open"
    too_much = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": 101})
    assert too_much.status_code == 409 and too_much.json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE"
    # the same refund heard again (a redelivered notification, the bill): booked once
    assert env.sim.redeliver("PLATFORM0001", url) == 204
    report = run(env, today())
    assert env.fresh(order.order_no).refunded_amount == order.actual_amount - 100
    assert len(tasks_of("external_refund")) == 1 and tasks_of("recon_discrepancy") == []
    assert report["discrepancies"] == 0
    assert env.drain_restorations() >= 1  # restoration as for any refund


def test_a_refund_only_the_bill_shows_is_booked_by_reconciliation(env):
    order = env.order(4)
    env.sim.foreign_refund(order.order_no, 300, out_refund_no="PLATFORM0002")  # nobody told us
    report = run(env, today())
    counts = {c["class"]: c["count"] for c in report["classes"]}
    assert counts["external_refund"] == 1 and counts["missing_here"] == 0
    refund = env.refund("PLATFORM0002")
    assert refund.origin == "external" and refund.status == "success"
    assert env.fresh(order.order_no).refunded_amount == 300
    assert [t.task_id for t in tasks_of("external_refund")] == ["external_refund.PLATFORM0002"]
    assert tasks_of("recon_discrepancy") == []
    env.check_invariants(order.order_no)


def test_a_refund_beyond_what_is_refundable_puts_the_order_on_hold(env):
    """Our refund of the whole order is held (WeChat never got it: its outcome unknown) when a
    person refunds the whole order on the merchant platform: booking that too would pass what
    was paid. Nothing is booked against the balance; the order is put on hold and a task says why."""
    order = env.order(2)
    env.sim.push_scenario("SYSTEM_ERROR", op="create")
    ours = create(env, order.order_no, order.actual_amount)
    assert env.refund(ours).status == "submitted" and env.fresh(order.order_no).refundable_amount == 0
    url = env.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    env.sim.foreign_refund(order.order_no, order.actual_amount, out_refund_no="PLATFORM0003", url=url)
    env.wait_for(lambda: tasks_of("external_refund_excess"))
    [task] = tasks_of("external_refund_excess")
    assert task.refund_no == "PLATFORM0003" and "勿再退款" in task.action
    held = env.fresh(order.order_no)
    assert held.refund_hold and held.refunded_amount == 0 and env.refund("PLATFORM0003") is None
    env.check_invariants(order.order_no)
    detail = env.api.get(f"/api/admin/orders/{order.order_no}", env.admin).json()
    assert detail["refund_actions"]["can_refund"] is False and "暂停退款" in detail["refund_actions"]["why_not"]["message"]


# ---------------------------------------------------------------- nothing refused silently


def test_a_resubmission_wechat_refuses_leaves_a_refundable_order_and_one_task(env):
    order = env.order(2)
    env.sim.push_scenario("SYSTEM_ERROR", op="create")  # outcome unknown: the poller will ask
    no = create(env, order.order_no, 500)
    assert env.refund(no).status == "submitted"
    env.sim.push_scenario("NOT_ENOUGH", op="create")  # WeChat never got it; the resubmission is refused
    report = env.poll()
    assert report.resubmitted == 1
    refund = env.refund(no)
    assert refund.status == "failed" and refund.failure_code == "NOT_ENOUGH"
    [task] = tasks_of("refund_refused")
    assert task.refund_no == no and "NOT_ENOUGH" in task.action and task.status == "open"
    assert env.fresh(order.order_no).refundable_amount == order.actual_amount  # a way out: refund again
    env.check_invariants(order.order_no)


def test_a_lost_payment_on_a_cancelled_order_is_found_by_asking(env):
    cancelled = next(o for o in (env.order(n) for n in (8, 9, 10)) if o.status == 3)
    env.sim.pay(cancelled.order_no, cancelled.actual_amount)  # paid at WeChat; no notification reaches us
    models_order = Order(cancelled.order_no)
    repo.update(models_order, [Order.pay_check.set("pending#0"), Order.pay_check_due_at.set(clock.iso(clock.now()))])
    report = payments.poll_payments()
    assert report.results[cancelled.order_no] == "paid_after_cancel"
    order = env.fresh(cancelled.order_no)
    assert order.paid_after_cancel and order.refundable_amount == cancelled.actual_amount and order.pay_check is None
    assert [t.task_id for t in tasks_of("paid_after_cancel")] == [f"paid_after_cancel.{cancelled.order_no}"]
    assert payments.poll_payments().due == 0


# ---------------------------------------------------------------- late bills


def test_a_day_whose_bill_is_late_is_asked_again_and_alarms(env, capsys):
    env.sim.configure(bill_ready_hour=23)  # yesterday's bill comes out late tonight
    now = clock.now()
    yesterday = clock.beijing_day(now - timedelta(days=1))
    morning = datetime.fromisoformat(f"{today()}T10:30:00+08:00")
    with edges.use(edges.Edges(clock=lambda: morning)):
        first = recon.run_daily()
    assert [(r["bill_date"], r["status"]) for r in first] == [(yesterday, "not_ready")]
    listed = env.api.get(BASE, env.admin).json()["items"]
    assert next(i for i in listed if i["bill_date"] == yesterday)["status"] == "not_ready"
    afternoon = datetime.fromisoformat(f"{today()}T15:00:00+08:00")  # past RECON_OVERDUE_HOUR (14)
    capsys.readouterr()
    with edges.use(edges.Edges(clock=lambda: afternoon)):
        again = recon.run_daily()
    assert [(r["bill_date"], r["status"]) for r in again] == [(yesterday, "not_ready")]
    assert '"ReconOverdue"' in capsys.readouterr().out  # the metric the overdue alarm watches
    env.sim.configure(bill_ready_hour=None)  # the bill is out
    with edges.use(edges.Edges(clock=lambda: afternoon)):
        done = recon.run_daily()
    assert [(r["bill_date"], r["status"]) for r in done] == [(yesterday, "done")]
    with edges.use(edges.Edges(clock=lambda: afternoon)):
        assert recon.run_daily() == []  # a done day is not run again


def test_an_expired_download_link_is_asked_for_again(env):
    env.sim.push_scenario("EXPIRED_URL", op="download")
    report = run(env, today())
    assert report["status"] == "done"


# ---------------------------------------------------------------- offline payouts


def test_an_offline_payouts_reference_is_used_once_and_its_time_follows_the_refund(env):
    refunds = []
    for n in (14, 15):
        env.sim.push_scenario("USER_ACCOUNT_ABNORMAL", op="create")
        refunds.append(create(env, env.order(n).order_no, 300))
    first, second = refunds
    early = env.api.post(f"/api/admin/pay/refunds/{first}/offline-payout", env.admin,
                         {"channel": "bank_transfer", "reference": "TRX-77", "paid_at": "1970-01-01T08:00:00+08:00"})
    assert early.status_code == 400 and early.json()["details"]["field"] == "paid_at"
    ok = env.api.post(f"/api/admin/pay/refunds/{first}/offline-payout", env.admin,
                      {"channel": "bank_transfer", "reference": "TRX-77"})
    assert ok.status_code == 200, ok.text
    again = env.api.post(f"/api/admin/pay/refunds/{second}/offline-payout", env.admin,
                         {"channel": "bank_transfer", "reference": " trx-77 "})  # the same reference, retyped
    assert again.status_code == 409 and again.json()["code"] == "PAYOUT_REFERENCE_USED"
    assert again.json()["details"]["refund_no"] == first and env.refund(second).status == "offline_pending"
    other = env.api.post(f"/api/admin/pay/refunds/{second}/offline-payout", env.admin,
                         {"channel": "alipay", "reference": "TRX-77"})  # unique per channel
    assert other.status_code == 200, other.text


def test_a_pending_order_paid_with_another_amount_is_asked_again_later_not_every_run(env):
    """WeChat says the order was paid, but not its amount: one task, and the check backs off
    instead of taking every run (and the queue's head) forever."""
    models_order = Order("GBMISMATCH0001", user_id="u1001", status=1, source_type=1, total_amount=5000,
                         actual_amount=5000, created_at=clock.iso(clock.now()),
                         payment={"out_trade_no": "GBMISMATCH0001"}, pay_check="pending#0",
                         pay_check_due_at=clock.iso(clock.now()))
    models_order.save()
    env.sim.register_transaction(4000, "GBMISMATCH0001")
    first = payments.poll_payments()
    assert (first.due, first.mismatched, first.paid) == (1, 1, 0)
    assert [t.task_id.startswith("payment_mismatch.GBMISMATCH0001.") for t in tasks_of("payment_mismatch")] == [True]
    after = env.fresh("GBMISMATCH0001")
    assert after.status == 1 and after.pay_check_attempts == 1 and after.pay_check_due_at > clock.iso(clock.now())
    assert payments.poll_payments().due == 0  # not due again yet: newer orders are not blocked
