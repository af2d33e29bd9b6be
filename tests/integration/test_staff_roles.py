"""Staff roles over the running stack (HTTP): limits that send a refund to review, four-eyes,
the finance threshold, the daily allowance under concurrency, the activity log and its CSV, and
the permission each route declares."""
from __future__ import annotations

import concurrent.futures as cf
import csv
import io

from app import app
from chalicelib.adapters import auth
from chalicelib.adapters import staff as staff_store
from chalicelib.domain import staff as staff_rules
from chalicelib.domain.enums import Permission
from chalicelib.entrypoints import docs
from chalicelib.domain import clock


def _token(role: str, subject: str) -> str:
    return auth.issue(role, subject)


def _create(env, token, order_no, amount, key=None, reason="质量问题"):
    headers = {"Idempotency-Key": key} if key else None
    return env.api.post("/api/admin/pay/refunds", token, {"order_no": order_no, "amount": amount, "reason": reason},
                        headers=headers)


def _approve(env, token, refund_no, amount=None):
    return env.api.post(f"/api/admin/pay/refunds/{refund_no}/approve", token,
                        {"amount": amount} if amount is not None else {})


def test_support_above_its_limit_goes_to_review_and_finance_approves_it(env):
    """The issue's acceptance path: support 200 yuan limit by default, a 300 yuan refund."""
    support, finance = _token("support", "alice"), _token("finance", "bob")
    o = env.order(11)  # 648.00 paid, nothing signed or consumed: only the limit can ask for approval
    preview = env.api.post("/api/admin/pay/refunds/preview", support, {"order_no": o.order_no, "amount": 30000})
    assert preview.status_code == 200, preview.text
    approval = preview.json()["approval"]
    assert preview.json()["resulting_status"] == "pending_review" and approval["required"] is True
    assert [r["rule"] for r in approval["reasons"]] == ["above_role_limit"]
    assert approval["refund_limit"] == 20000 and approval["approver_roles"] == ["finance", "admin"]
    assert "200.00" in approval["reasons"][0]["message"]

    r = _create(env, support, o.order_no, 30000)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending_review" and body["status_label"] == "待审核"
    assert body["created_by"] == "support:alice" and body["review_reasons"] == [approval["reasons"][0]["message"]]
    no = body["refund_no"]
    assert env.sim.create_calls() == 0  # nothing went to WeChat

    mine = _approve(env, support, no)
    assert mine.status_code == 403 and mine.json()["code"] == "FOUR_EYES_REQUIRED", mine.text
    other_support = _approve(env, _token("support", "carol"), no)
    assert other_support.status_code == 403 and other_support.json()["code"] == "PERMISSION_DENIED"
    assert other_support.json()["details"]["permission"] == "refunds.approve"
    assert env.refund(no).status == "pending_review" and env.sim.create_calls() == 0

    ok = _approve(env, finance, no)
    assert ok.status_code == 200, ok.text
    assert ok.json()["reviewer"] == "finance:bob"
    refund = env.wait_status(no, "success")
    assert refund.amount == 30000 and env.sim.create_calls(no) == 1
    assert [e.actor for e in refund.events][:2] == ["support:alice", "finance:bob"]
    env.check_invariants(o.order_no)
    # a reviewed refund uses its approver's daily allowance (the approval sent the money), not its creator's
    day = clock.beijing_day(clock.now())
    assert staff_store.used_on("alice", day) == 0 and staff_store.used_on("bob", day) == 30000


def test_four_eyes_follows_the_person_not_the_role(env, monkeypatch):
    monkeypatch.setenv("STAFF_REFUND_LIMITS", "finance=10000")
    o = env.order(11)
    no = _create(env, _token("finance", "dana"), o.order_no, 30000).json()["refund_no"]
    assert env.refund(no).status == "pending_review"
    for token in (_token("finance", "dana"), _token("admin", "dana")):
        r = _approve(env, token, no)
        assert r.status_code == 403 and r.json()["code"] == "FOUR_EYES_REQUIRED", r.text
    # the creator may withdraw their own refund; a support operator may not reject it
    r = env.api.post(f"/api/admin/pay/refunds/{no}/reject", _token("support", "carol"), {"reason": "重复"})
    assert r.status_code == 403 and r.json()["code"] == "PERMISSION_DENIED"
    r = env.api.post(f"/api/admin/pay/refunds/{no}/reject", _token("finance", "dana"), {"reason": "金额填错"})
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    assert r.json()["events"][-1]["detail"] == "发起人撤回：金额填错"
    env.check_invariants(o.order_no)


def _actions(env, token, refund_no, order_no) -> dict:
    """The refund's ``actions`` as ``token`` sees them: the same in the order detail, the review
    queue and the refund's own detail."""
    detail = env.api.get(f"/api/admin/orders/{order_no}", token).json()
    in_order = next(r["actions"] for r in detail["refunds"] if r["refund_no"] == refund_no)
    queue = env.api.get("/api/admin/pay/refunds?status=pending_review&order=oldest", token).json()["items"]
    in_queue = next(r["actions"] for r in queue if r["refund_no"] == refund_no)
    own = env.api.get(f"/api/admin/pay/refunds/{refund_no}", token).json()["actions"]
    assert in_order == in_queue == own
    return own


def _allowed(actions: dict) -> dict:
    return {name: decision["allowed"] for name, decision in actions.items()}


def _refused_as_said(response, decision: dict) -> None:
    """The route refuses with the code and the words ``actions`` gave."""
    assert response.status_code in (403, 409), response.text
    assert (response.json()["code"], response.json()["message"]) == (decision["code"], decision["reason"])


def test_actions_say_what_each_person_may_do_and_the_routes_agree(env, monkeypatch):
    monkeypatch.setenv("FINANCE_APPROVAL_THRESHOLD", "20000")
    alice, carol, bob = _token("support", "alice"), _token("support", "carol"), _token("finance", "bob")
    o = env.order(11)  # 708.00 paid, nothing signed: a support refund above 200.00 waits for approval
    no = _create(env, alice, o.order_no, 30000).json()["refund_no"]

    creator = _actions(env, alice, no, o.order_no)
    assert _allowed(creator) == {"approve": False, "reject": False, "withdraw": True}
    assert creator["approve"]["code"] == "FOUR_EYES_REQUIRED" and "发起人" in creator["approve"]["reason"]
    approver = _actions(env, bob, no, o.order_no)
    assert _allowed(approver) == {"approve": True, "reject": True, "withdraw": False}
    assert approver["approve"] == {"allowed": True, "code": None, "reason": None}
    assert approver["withdraw"]["reason"] == "只有发起人本人可以撤回该退款"
    other_support = _actions(env, carol, no, o.order_no)
    assert _allowed(other_support) == {"approve": False, "reject": False, "withdraw": False}
    assert other_support["approve"]["code"] == "PERMISSION_DENIED"
    _refused_as_said(_approve(env, alice, no), creator["approve"])
    _refused_as_said(_approve(env, carol, no), other_support["approve"])
    _refused_as_said(env.api.post(f"/api/admin/pay/refunds/{no}/reject", carol, {"reason": "重复"}),
                     other_support["reject"])

    # a player's application above the finance threshold: support may reject it, not approve it
    applied = env.api.post(f"/api/app/orders/{o.order_no}/refund/apply", env.user(o.user_id),
                           {"amount": 25000, "reason": "不想要了"}).json()["refund_no"]
    support = _actions(env, carol, applied, o.order_no)
    assert _allowed(support) == {"approve": False, "reject": True, "withdraw": False}
    assert support["approve"]["code"] == "PERMISSION_DENIED"
    assert "250.00" in support["approve"]["reason"] and "200.00" in support["approve"]["reason"]
    _refused_as_said(_approve(env, carol, applied), support["approve"])
    assert _allowed(_actions(env, bob, applied, o.order_no)) == {"approve": True, "reject": True, "withdraw": False}

    ok = _approve(env, bob, no)
    assert ok.status_code == 200, ok.text
    # after the review nothing is allowed, and the reason names the status
    done = ok.json()["actions"]
    assert _allowed(done) == {"approve": False, "reject": False, "withdraw": False}
    assert {d["code"] for d in done.values()} == {"INVALID_REFUND_STATE"}
    assert done["approve"]["reason"].startswith("退款单当前状态为")
    env.wait_status(no, "success")
    env.check_invariants(o.order_no)


def test_the_creator_withdraws_whatever_their_role_and_no_money_moves(env):
    alice = _token("support", "alice")  # support: no refunds.approve
    o = env.order(11)
    no = _create(env, alice, o.order_no, 30000).json()["refund_no"]
    before = env.fresh(o.order_no)
    assert before.requested_amount == 30000
    r = env.api.post(f"/api/admin/pay/refunds/{no}/reject", alice, {"reason": "金额填错"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "rejected" and body["reviewer"] == "support:alice" and body["reject_reason"] == "金额填错"
    assert body["events"][-1]["detail"] == "发起人撤回：金额填错"
    assert _allowed(body["actions"]) == {"approve": False, "reject": False, "withdraw": False}
    after = env.fresh(o.order_no)
    assert after.requested_amount == 0 and after.reserved_amount == 0 and after.refunded_amount == 0
    assert after.refundable_amount == before.refundable_amount == o.actual_amount
    assert env.sim.create_calls() == 0
    env.check_invariants(o.order_no)
    activity = env.api.get("/api/admin/activity?operator=alice", _token("finance", "bob")).json()["items"]
    assert [(i["action"], i["action_label"]) for i in activity] == [("created", "发起退款"), ("withdrawn", "发起人撤回")]
    again = env.api.post(f"/api/admin/pay/refunds/{no}/reject", alice, {"reason": "金额填错"})
    _refused_as_said(again, body["actions"]["withdraw"])


def test_a_signed_order_needs_approval_whoever_creates_it(env):
    o = env.order(3)  # signed for
    r = _create(env, env.admin, o.order_no, 100)
    assert r.status_code == 201 and r.json()["status"] == "pending_review"
    assert _approve(env, env.admin, r.json()["refund_no"]).json()["code"] == "FOUR_EYES_REQUIRED"
    assert _approve(env, env.admin2, r.json()["refund_no"]).status_code == 200
    env.wait_status(r.json()["refund_no"], "success")


def test_above_the_finance_threshold_only_finance_or_admin_approve(env, monkeypatch):
    monkeypatch.setenv("FINANCE_APPROVAL_THRESHOLD", "20000")
    o = env.order(11)  # u1005's
    applied = env.api.post(f"/api/app/orders/{o.order_no}/refund/apply", env.user(o.user_id),
                           {"amount": 30000, "reason": "不想要了"})
    assert applied.status_code == 201, applied.text
    no = applied.json()["refund_no"]
    support = _token("support", "alice")
    r = _approve(env, support, no)
    assert r.status_code == 403 and r.json()["code"] == "PERMISSION_DENIED", r.text
    assert r.json()["details"]["rule"] == "finance_threshold"
    assert r.json()["details"]["finance_threshold"] == 20000
    # the same support operator may approve a smaller amount, within the threshold
    r = _approve(env, support, no, amount=20000)
    assert r.status_code == 200, r.text
    refund = env.wait_status(no, "success")
    assert refund.amount == 20000 and refund.reviewer == "support:alice"
    env.check_invariants(o.order_no)


def test_finance_approves_an_application_above_the_threshold(env, monkeypatch):
    monkeypatch.setenv("FINANCE_APPROVAL_THRESHOLD", "20000")
    o = env.order(11)
    no = env.api.post(f"/api/app/orders/{o.order_no}/refund/apply", env.user(o.user_id),
                      {"amount": 30000, "reason": "不想要了"}).json()["refund_no"]
    assert _approve(env, _token("finance", "bob"), no).status_code == 200
    assert env.wait_status(no, "success").amount == 30000


def test_twenty_concurrent_refunds_never_pass_the_daily_limit(env, monkeypatch):
    monkeypatch.setenv("STAFF_DAILY_LIMITS", "support=5000")
    support = _token("support", "erin")
    orders = [env.order(n).order_no for n in range(13, 33)]  # 20 paid orders, 29.00 yuan or more each
    with cf.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda no: _create(env, support, no, 700), orders))
    ok = [r for r in results if r.status_code == 201]
    refused = [r for r in results if r.status_code != 201]
    assert len(ok) == 7, [r.text for r in results]  # 7 x 7.00 = 49.00 of 50.00
    assert {(r.status_code, r.json()["code"]) for r in refused} == {(409, "DAILY_LIMIT_EXCEEDED")}
    assert all(r.json()["details"]["daily_limit"] == 5000 for r in refused)
    day = clock.beijing_day(clock.now())
    assert staff_store.used_on("erin", day) == 4900
    # a refused refund left nothing behind: no refund, no reservation
    created = {r.json()["order_no"] for r in ok}
    for no in orders:
        order = env.fresh(no)
        assert order.reserved_amount + order.refunded_amount == (700 if no in created else 0)
        env.check_invariants(no)
    assert env.sim.create_calls() == 7
    # exactly the room left fits; then nothing does
    rest = [no for no in orders if no not in created]
    assert _create(env, support, rest[0], 100).status_code == 201
    last = _create(env, support, rest[1], 1)
    assert last.status_code == 409 and last.json()["details"]["remaining"] == 0
    assert staff_store.used_on("erin", day) == 5000
    me = env.api.get("/api/admin/me", support).json()
    assert me["limits"]["daily_used"] == 5000 and me["limits"]["daily_remaining"] == 0
    preview = env.api.post("/api/admin/pay/refunds/preview", support, {"order_no": rest[2], "amount": 100}).json()
    assert preview["allowance"]["fits"] is False and preview["requires_approval"] is False


def test_a_replayed_refund_uses_the_allowance_once(env):
    support = _token("support", "frank")
    o = env.order(13)
    first = _create(env, support, o.order_no, 500, key="allowance-1")
    again = _create(env, support, o.order_no, 500, key="allowance-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert staff_store.used_on("frank", clock.beijing_day(clock.now())) == 500


def test_the_allowance_is_charged_on_its_own_not_in_the_refunds_transaction(env, monkeypatch):
    """One person's refunds do not contend for their daily-total item inside transactions (two
    transactions holding one item conflict; single-item updates queue): the charge is one
    conditional update before the refund's transaction, which holds the refund, the order, the
    activity record and the refund's domain event only."""
    from chalicelib.adapters import outbox
    from chalicelib.adapters import repository as repo

    sent = []
    transact = repo.transact
    monkeypatch.setattr(repo, "transact", lambda items: sent.append([i.label for i in items]) or transact(items))
    r = _create(env, _token("support", "gina"), env.order(13).order_no, 300)
    assert r.status_code == 201, r.text
    assert sent[0] == ["refund", "order", "activity", outbox.LABEL] and not any(staff_store.LABEL in labels for labels in sent)
    assert staff_store.used_on("gina", clock.beijing_day(clock.now())) == 300


def test_a_refund_whose_transaction_fails_gives_its_charge_back(env, monkeypatch):
    """The order's balance changed between the read and the reservation: no refund, and the
    allowance charged just before is whole again."""
    from chalicelib.domain import refunds as refund_rules

    order = env.order(13)
    monkeypatch.setattr(refund_rules, "check_refundable", lambda *a, **k: None)  # as if read before a change
    r = _create(env, _token("support", "hank"), order.order_no, order.refundable_amount + 1)
    assert r.status_code == 409 and r.json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE", r.text
    assert staff_store.used_on("hank", clock.beijing_day(clock.now())) == 0
    assert env.fresh(order.order_no).reserved_amount == 0


def test_me_lists_the_roles_permissions(env):
    me = env.api.get("/api/admin/me", _token("support", "alice"))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["role"] == "support" and body["role_label"] == "客服" and body["actor"] == "support:alice"
    assert body["permissions"] == ["orders.view", "refunds.preview", "refunds.create", "applications.review",
                                   "tasks.complete", "complaints.view", "complaints.handle"]
    assert body["limits"]["refund_limit"] == 20000 and body["limits"]["daily_limit"] == 200000
    finance = env.api.get("/api/admin/me", _token("finance", "bob")).json()
    assert "refunds.approve" in finance["permissions"] and "reconcile.run" in finance["permissions"]
    assert env.api.get("/api/admin/me", env.user("u1001")).json()["code"] == "FORBIDDEN"


def test_activity_view_and_csv_for_finance(env):
    support, finance = _token("support", "alice"), _token("finance", "bob")
    o = env.order(11)
    no = _create(env, support, o.order_no, 30000).json()["refund_no"]
    direct = _create(env, support, env.order(13).order_no, 500).json()["refund_no"]
    assert _approve(env, finance, no).status_code == 200
    more = [_create(env, support, env.order(n).order_no, 100).json()["refund_no"] for n in (14, 16)]
    r = env.api.get("/api/admin/activity?operator=alice", finance)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["action"], i["refund_no"]) for i in items] == [
        ("created", no), ("created", direct), ("created", more[0]), ("created", more[1])]
    assert items[0]["status"] == "pending_review" and items[1]["status"] == "submitted"
    assert all(i["actor"] == "support:alice" for i in items)
    bob = env.api.get("/api/admin/activity?operator=finance:bob", finance).json()["items"]
    assert [(i["action"], i["refund_no"], i["amount"]) for i in bob] == [("approved", no, 30000)]
    # pages with signed cursors
    page1 = env.api.get("/api/admin/activity?operator=alice&limit=3", finance).json()
    assert len(page1["items"]) == 3 and page1["next_cursor"]
    page2 = env.api.get(f"/api/admin/activity?operator=alice&limit=3&cursor={page1['next_cursor']}", finance).json()
    assert [i["refund_no"] for i in page2["items"]] == [more[1]] and page2["next_cursor"] is None
    foreign = env.api.get(f"/api/admin/activity?operator=bob&limit=3&cursor={page1['next_cursor']}", finance)
    assert foreign.status_code == 400 and foreign.json()["details"]["field"] == "cursor"
    # another day has nothing; support may not look
    assert env.api.get("/api/admin/activity?operator=alice&from=2020-01-01&to=2020-01-31", finance).json()["items"] == []
    denied = env.api.get("/api/admin/activity?operator=alice", support)
    assert denied.status_code == 403 and denied.json()["code"] == "PERMISSION_DENIED"
    bad = env.api.get("/api/admin/activity?operator=alice&from=2026-13-01", finance)
    assert bad.status_code == 400 and bad.json()["details"]["field"] == "from"


def test_activity_csv_follows_the_csv_rules(env):
    support, finance = _token("support", "alice"), _token("finance", "bob")
    no = _create(env, support, env.order(2).order_no, 100).json()["refund_no"]  # shipped: below the limit
    review = _create(env, support, env.order(11).order_no, 30000).json()["refund_no"]
    r = env.api.post(f"/api/admin/pay/refunds/{review}/reject", finance, {"reason": "=HYPERLINK(\"x\")"})
    assert r.status_code == 200, r.text
    export = env.api.get("/api/admin/activity?operator=bob&format=csv", finance)
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    text = export.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["时间", "操作员", "操作"]
    assert rows[1][1:4] == ["finance:bob", "审批拒绝", review] and rows[1][-1] == "'=HYPERLINK(\"x\")"
    assert all(line.startswith('"') for line in text.lstrip("\ufeff").splitlines())  # every cell quoted
    assert no not in text
    # CSV needs data.export as well: a support token has neither
    assert env.api.get("/api/admin/manual-tasks?format=csv", support).json()["code"] == "PERMISSION_DENIED"
    assert env.api.get("/api/admin/manual-tasks", support).status_code == 200


def test_every_staff_route_declares_one_permission_and_the_document_agrees():
    doc = docs.document()
    seen = 0
    for path, entries in app.routes.items():
        for method, entry in entries.items():
            op = doc["paths"][path][method.lower()]
            declared = getattr(entry.view_function, "permission", None)
            if path.startswith("/api/admin"):
                assert isinstance(declared, Permission), (method, path)
                assert op["x-permission"] == declared.value, (method, path)
                assert declared.value in op["responses"]["403"]["description"]
                seen += 1
            else:
                assert declared is None and "x-permission" not in op, (method, path)
    assert seen == sum(1 for p, e in app.routes.items() if p.startswith("/api/admin") for _ in e)
    # every permission is used by a route, or by a check inside one (CSV export, operator approvals),
    # or by reconciliation
    used = {e.view_function.permission for p, es in app.routes.items() if p.startswith("/api/admin")
            for e in es.values()}
    # (complaints.view_phone: checked inside the complaint view, which masks the phone without it)
    assert set(Permission) - used <= {Permission.DATA_EXPORT, Permission.REFUNDS_APPROVE, Permission.RECONCILE_RUN,
                                      Permission.COMPLAINTS_VIEW_PHONE}


def test_a_refund_wechat_refuses_gives_its_allowance_back(env, monkeypatch):
    """Two NOT_ENOUGH answers used to burn 300 元 of a 2 000 元 day: a refused refund sent no
    money, so what sending it used is the person's again (a direct refund and an approval alike)."""
    monkeypatch.setenv("STAFF_DAILY_LIMITS", "support=100000,finance=100000")
    support, finance = _token("support", "ivy"), _token("finance", "jack")
    day = clock.beijing_day(clock.now())
    for amount in (15000, 15000):
        env.sim.push_scenario("NOT_ENOUGH")
        r = _create(env, support, env.order(11).order_no, amount)
        assert r.status_code == 201 and r.json()["status"] == "failed", r.text
    assert staff_store.used_on("ivy", day) == 0
    assert env.api.get("/api/admin/me", support).json()["limits"]["daily_remaining"] == 100000
    # an approval uses the approver's allowance, and gets it back the same way
    pending = _create(env, support, env.order(11).order_no, 30000).json()
    assert pending["status"] == "pending_review" and staff_store.used_on("ivy", day) == 0
    env.sim.push_scenario("NOT_ENOUGH")
    r = _approve(env, finance, pending["refund_no"])
    assert r.status_code == 200 and r.json()["status"] == "failed", r.text
    assert staff_store.used_on("jack", day) == 0 and env.refund(pending["refund_no"]).allowance_charged is None
    # one that goes out keeps it
    ok = _create(env, support, env.order(16).order_no, 500)
    assert ok.status_code == 201 and ok.json()["status"] in ("processing", "success")
    assert staff_store.used_on("ivy", day) == 500


def test_an_approval_past_the_approvers_allowance_is_refused_and_moves_nothing(env, monkeypatch):
    monkeypatch.setenv("STAFF_DAILY_LIMITS", "finance=20000")
    support, finance = _token("support", "kim"), _token("finance", "lee")
    pending = _create(env, support, env.order(11).order_no, 30000).json()
    r = _approve(env, finance, pending["refund_no"])
    assert r.status_code == 409 and r.json()["code"] == "DAILY_LIMIT_EXCEEDED", r.text
    assert env.refund(pending["refund_no"]).status == "pending_review"
    assert env.fresh(env.order(11).order_no).reserved_amount == 0
    assert staff_store.used_on("lee", clock.beijing_day(clock.now())) == 0
    assert _approve(env, _token("admin", "max"), pending["refund_no"]).status_code == 200  # someone with room
