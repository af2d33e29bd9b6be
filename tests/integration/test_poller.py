"""The poller and the sweeper: refunds never stay stuck, and polling costs what is pending."""
from chalicelib.adapters import queue
from chalicelib.adapters.models import Refund
from chalicelib.services import poller
from tests.support import DynamoMeter
from chalicelib.domain import clock
from chalicelib.domain import refunds as refund_rules


def _create(env, n=14, amount=300):
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": env.order(n).order_no, "amount": amount})
    assert r.status_code == 201, r.text
    return r.json()


def test_lost_notification_is_resolved_by_polling(env):
    env.sim.configure(drop_notifications=True)
    body = _create(env)
    no = body["refund_no"]
    env.wait_for(lambda: env.sim.refund(no)["status"] == "SUCCESS")
    assert env.refund(no).status == "processing"
    report = env.poll()
    assert report.changed == 1
    r = env.refund(no)
    assert r.status == "success" and any(e.actor == "poller" for e in r.events)
    assert env.drain_restorations() == 1
    env.check_invariants(r.order_no)


def test_unknown_outcome_keeps_balance_reserved_until_poll(env):
    env.sim.push_scenario("ACCEPT_THEN_ERROR")
    body = _create(env)
    assert body["status"] == "submitted" and body["status_label"] == "已提交"
    order = env.fresh(body["order_no"])
    assert order.reserved_amount == 300
    env.wait_for(lambda: env.sim.refund(body["refund_no"])["status"] == "SUCCESS")
    env.poll()
    assert env.refund(body["refund_no"]).status == "success"
    assert env.sim.create_calls(body["refund_no"]) == 1
    env.check_invariants(body["order_no"])


def test_never_received_refund_is_resubmitted_with_the_same_number(env):
    env.sim.push_scenario("LOSE_REQUEST")
    body = _create(env)
    no = body["refund_no"]
    assert body["status"] == "submitted" and env.sim.refund(no) is None
    report = env.poll()
    assert report.resubmitted == 1
    env.wait_status(no, "success")
    assert env.sim.refund(no)["out_refund_no"] == no
    env.check_invariants(body["order_no"])


def test_frequency_limited_and_system_error_back_off(env):
    env.sim.push_scenario("SYSTEM_ERROR")
    body = _create(env)
    no = body["refund_no"]
    assert body["status"] == "submitted"
    env.sim.push_scenario("FREQUENCY_LIMITED", op="query")
    before = clock.now()
    report = env.poll()
    assert report.errors == 1
    r = env.refund(no)
    assert r.status == "submitted" and r.work_due_at > clock.iso(before) and r.poll_attempts == 1
    # once due again, WeChat has no record (SYSTEM_ERROR did not create it): resubmitted
    Refund(no).update(actions=[Refund.work_due_at.set(clock.iso(clock.now()))])
    assert env.poll().resubmitted == 1
    env.wait_status(no, "success")


def test_closed_releases_and_abnormal_keeps_reserved(env):
    env.sim.queue_outcome("CLOSED")
    closed = _create(env, 14, 300)
    env.wait_status(closed["refund_no"], "closed")
    o = env.fresh(closed["order_no"])
    assert o.reserved_amount == 0 and o.refundable_amount == o.actual_amount
    env.sim.queue_outcome("ABNORMAL")
    ab = _create(env, 15, 400)
    env.wait_status(ab["refund_no"], "abnormal")
    o = env.fresh(ab["order_no"])
    assert o.reserved_amount == 400 and o.refunded_amount == 0
    tasks = env.api.get("/api/admin/manual-tasks?type=refund_abnormal", env.admin).json()["items"]
    assert [t["refund_no"] for t in tasks] == [ab["refund_no"]]
    r = env.refund(ab["refund_no"])
    assert r.work.startswith("poll#") and r.work_due_at > clock.iso(clock.now())  # slower cadence for abnormal
    env.check_invariants(closed["order_no"])
    env.check_invariants(ab["order_no"])


def test_wechat_refusals_fail_and_release(env):
    env.sim.push_scenario("NOT_ENOUGH")
    a = _create(env, 14, 300)
    assert a["status"] == "failed" and a["failure_code"] == "NOT_ENOUGH" and a["status_label"] == "退款失败"
    o = env.fresh(a["order_no"])
    assert o.reserved_amount == 0 and o.refundable_amount == o.actual_amount
    assert o.refund_count == 0  # refused by WeChat: not one of its 50 refunds
    env.check_invariants(a["order_no"])
    # a player WeChat cannot pay is not a refusal: the amount stays reserved for an offline payout
    env.sim.push_scenario("USER_ACCOUNT_ABNORMAL")
    b = _create(env, 15, 300)
    assert b["status"] == "offline_pending" and b["failure_code"] == "USER_ACCOUNT_ABNORMAL"
    assert env.fresh(b["order_no"]).reserved_amount == 300
    env.check_invariants(b["order_no"])
    tasks = env.api.get("/api/admin/manual-tasks", env.admin).json()["items"]
    assert [(t["type"], t["refund_no"]) for t in tasks] == [("account_abnormal", b["refund_no"])]
    # the operator may try again with a new request
    assert _create(env, 14, 300)["status"] in ("processing", "success")


def test_sweeper_recovers_a_lost_enqueue(env, monkeypatch):
    monkeypatch.setattr(queue, "publish_restore", lambda *a, **k: False)  # crash after commit
    body = _create(env, 1, 1000)
    env.wait_status(body["refund_no"], "success")
    assert env.queue_messages() == []
    assert env.refund(body["refund_no"]).restoration_status == "pending"
    monkeypatch.undo()
    assert poller.sweep() == 1
    assert env.drain_restorations() == 1
    assert env.refund(body["refund_no"]).restoration_status == "done"
    assert poller.sweep() == 0


def test_poll_reads_only_pending_refunds(env):
    env.sim.configure(drop_notifications=True)
    pending = [_create(env, n, 100)["refund_no"] for n in range(13, 23)]
    env.wait_for(lambda: all(env.sim.refund(no)["status"] == "SUCCESS" for no in pending))
    now = clock.iso(clock.now())
    with Refund.batch_write() as batch:  # a long history of settled refunds
        for i in range(500):
            batch.save(Refund(f"OLD{i:05d}", order_no="GB-OLD", user_id="u1001", origin="admin", amount=100,
                              requested_amount=100, status="success", created_by="admin:x", order_total=100,
                              created_at=now, updated_at=now, restoration_status="done", events=[]))
    with DynamoMeter() as meter:
        report = env.poll()
    assert report.changed == 10
    # reads: the sparse index (10 keys), each refund (10), each order when settling (10)
    assert meter.items_read <= 3 * len(pending), meter.items_read
    assert meter.calls.get("Scan", 0) == 0


def test_abnormal_refund_is_resolved_through_apply_abnormal_refund(env):
    env.sim.queue_outcome("ABNORMAL")
    body = _create(env, 15, 400)
    no = body["refund_no"]
    env.wait_status(no, "abnormal")
    bad = env.api.post(f"/api/admin/pay/refunds/{no}/abnormal-refund", env.admin, {"type": "USER_BANK_CARD"})
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"
    r = env.api.post(f"/api/admin/pay/refunds/{no}/abnormal-refund", env.admin,
                     {"type": "USER_BANK_CARD", "bank_type": "ICBC_DEBIT", "bank_account": "6222020202020202",
                      "real_name": "张三"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("processing", "success")
    env.wait_status(no, "success")
    refund = env.refund(no)
    assert "6222020202020202" not in str(refund.raw) and "张三" not in str(refund.raw)
    o = env.fresh(body["order_no"])
    assert o.refunded_amount == 400 and o.reserved_amount == 0
    env.check_invariants(body["order_no"])
    again = env.api.post(f"/api/admin/pay/refunds/{no}/abnormal-refund", env.admin, {"type": "MERCHANT_BANK_CARD"})
    assert again.status_code == 409 and again.json()["code"] == "INVALID_REFUND_STATE"


def test_success_reported_for_a_failed_refund_is_flagged_not_applied(env):
    from chalicelib.domain.refunds import Outcome
    from chalicelib.domain.enums import RefundStatus
    from chalicelib.services import transitions

    env.sim.push_scenario("PARAM_ERROR")
    body = _create(env, 14, 300)
    assert body["status"] == "failed"
    refund = env.refund(body["refund_no"])
    transitions.apply_outcome(refund, Outcome(status=RefundStatus.SUCCESS, amount=300), actor="wechat")
    assert env.refund(body["refund_no"]).status == "failed"
    env.check_invariants(body["order_no"])
    tasks = env.api.get("/api/admin/manual-tasks", env.admin).json()["items"]
    assert [(t["type"], t["refund_no"]) for t in tasks] == [("outcome_conflict", body["refund_no"])]


def _dropped(env, n, amount=300):
    """A refund WeChat settled whose notification was lost: due for the poller."""
    env.sim.configure(drop_notifications=True)
    body = _create(env, n, amount)
    env.wait_for(lambda: env.sim.refund(body["refund_no"])["status"] == "SUCCESS")
    return body["refund_no"]


def test_a_refund_that_keeps_failing_never_stalls_the_others_and_gets_a_task(env, monkeypatch):
    """GIVEN the oldest due refund whose WeChat amount no longer matches ours (every poll of it
    fails) WHEN the poller runs one refund at a time THEN it is backed off each time, the next
    refund is settled by the very next run, and after the configured failures a person is told."""
    from chalicelib.adapters import repository as repo

    monkeypatch.setenv("POLL_FAILURE_TASK_AFTER", "2")
    bad = _dropped(env, 14)
    good = _dropped(env, 13)
    repo.update(Refund(bad), [Refund.amount.set(299)])  # our record now disagrees with WeChat's 300
    first = poller.poll(limit=1)
    assert (first.due, first.errors) == (1, 1)
    after_one = env.refund(bad)
    assert after_one.status == "processing" and after_one.poll_failures == 1
    second = poller.poll(limit=1)
    assert second.changed == 1 and env.refund(good).status == "success"
    poller.poll(limit=1)
    assert env.refund(bad).poll_failures == 2
    tasks = env.api.get("/api/admin/manual-tasks?type=poll_failing", env.admin).json()["items"]
    assert [(t["refund_no"], t["type_label"]) for t in tasks] == [(bad, "退款查询持续失败")]
    poller.poll(limit=1)  # a third failure: still one task
    assert len(env.api.get("/api/admin/manual-tasks?type=poll_failing", env.admin).json()["items"]) == 1


def test_the_poll_stops_taking_work_when_the_invocation_runs_out_of_time(env):
    nos = [_dropped(env, n, 100) for n in (13, 14, 15)]
    budget = iter([60.0, 0.5, 0.5])  # seconds left before each refund: time for one
    report = poller.poll(time_left=lambda: next(budget))
    assert (report.due, report.changed, report.deferred) == (3, 1, 2)
    assert sorted(env.refund(no).status for no in nos) == ["processing", "processing", "success"]
    assert poller.poll().changed == 2  # the next run takes what was left


def test_the_scheduled_handler_emits_its_metrics_even_when_the_poll_fails(env, monkeypatch, capsys):
    import json

    from chalicelib.entrypoints import workers

    def broken(**_):
        raise RuntimeError("store unavailable")

    monkeypatch.setattr(poller, "poll", broken)
    try:
        workers.poll_and_sweep(None)
    except RuntimeError:
        pass
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    assert len(lines) == 1 and lines[0]["PollDue"] == 0 and "PollDeferred" in lines[0]


def test_a_refund_retried_for_a_long_time_keeps_a_bounded_history(env):
    """Every hold or retry adds an event; past the cap the item keeps the first and the latest."""
    from chalicelib.adapters import repository as repo
    from chalicelib.domain.enums import RefundStatus
    from chalicelib.services import transitions

    env.sim.push_scenario("SYSTEM_ERROR")
    body = _create(env, 14, 300)
    refund = env.refund(body["refund_no"])
    first = refund.events[0].detail
    for i in range(refund_rules.MAX_EVENTS_ON_REFUND + 5):
        refund = env.refund(body["refund_no"])
        transitions.transition(refund, RefundStatus.SUBMITTED, actor="poller", detail=f"retry {i}")
    stored = env.refund(body["refund_no"])
    assert len(stored.events) == refund_rules.MAX_EVENTS_ON_REFUND
    assert stored.events[0].detail == first and stored.events[-1].detail == f"retry {refund_rules.MAX_EVENTS_ON_REFUND + 4}"
    written = 2 + refund_rules.MAX_EVENTS_ON_REFUND + 5  # created, the unknown outcome, then the retries
    assert stored.events_dropped == written - refund_rules.MAX_EVENTS_ON_REFUND
    view = env.api.get(f"/api/admin/pay/refunds/{body['refund_no']}", env.admin).json()
    assert view["events_dropped"] == stored.events_dropped and len(view["events"]) == refund_rules.MAX_EVENTS_ON_REFUND


def test_a_resubmission_wechat_keeps_refusing_backs_off_and_ends_in_a_task(env):
    """GIVEN WeChat refuses to create refunds but answers queries (NO_AUTH on create only: an IP
    allow-list) WHEN the poller finds the refund missing at WeChat and sends it again, refused each
    time THEN each try comes later than the one before, after POLL_FAILURE_TASK_AFTER tries a person
    is told (one POLL_FAILING task, bound to the money), and once WeChat takes it the task closes."""
    from chalicelib.adapters import repository as repo

    env._set_env(POLL_AFTER_SECONDS="60", POLL_FAILURE_TASK_AFTER="3")
    env.sim.push_scenario("NO_AUTH", op="create", count=5)
    body = _create(env, 14, 300)
    no = body["refund_no"]
    assert body["status"] == "submitted" and body["failure_code"] == "NO_AUTH"
    waits = []
    for tries in range(1, 5):
        Refund(no).update(actions=[Refund.work_due_at.set(clock.iso(clock.now()))])  # due now
        before = clock.now()
        report = env.poll()
        assert (report.resubmitted, report.errors) == (1, 1)
        refund = env.refund(no)
        assert (refund.status, refund.poll_failures) == ("submitted", tries)
        waits.append(round((clock.parse(refund.work_due_at) - before).total_seconds() / 60))
    assert waits == [2, 4, 8, 16]  # minutes: WeChat's minute, doubled at each failure
    assert env.sim.create_calls(no) == 5
    tasks = env.api.get("/api/admin/manual-tasks?type=poll_failing", env.admin).json()["items"]
    assert [(t["refund_no"], t["type_label"]) for t in tasks] == [(no, "退款查询持续失败")]
    assert "重新提交退款连续失败 3 次" in tasks[0]["action"] and "NO_AUTH" in tasks[0]["action"]
    assert env.refund(no).open_tasks == {tasks[0]["task_id"]}
    assert env.fresh(body["order_no"]).reserved_amount == 300  # the money stays held meanwhile
    # the allow-list is fixed: the next try is taken, and the task closes with the money settled
    Refund(no).update(actions=[Refund.work_due_at.set(clock.iso(clock.now()))])
    assert env.poll().resubmitted == 1
    env.wait_status(no, "success")
    assert repo.get_task(tasks[0]["task_id"]).status == "done"
    env.check_invariants(body["order_no"])
