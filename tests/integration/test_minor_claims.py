"""Through the stack: a guardian's claim (未成年人消费) reviewed by a second person and refunded in full."""

GUARDIAN = {"statement": "孩子 10 岁，未经同意购买了抽奖券", "relationship": "father", "evidence": ["media_001"]}


def test_a_guardians_claim_reviewed_by_a_second_person_and_refunded_in_full(env):
    o = env.order(6)  # u1005's lottery order: a prize held and one consumed
    r = env.api.post(f"/api/app/orders/{o.order_no}/refund/apply", env.user("u1005"),
                     {"type": "minor", "guardian": GUARDIAN, "reason": "未成年人消费"})
    assert r.status_code == 201, r.text
    no = r.json()["refund_no"]
    assert r.json()["requested_amount"] == o.actual_amount
    bad = env.api.post(f"/api/app/orders/{o.order_no}/refund/apply", env.user("u1005"),
                       {"type": "minor", "guardian": {**GUARDIAN, "relationship": "uncle"}, "reason": "x"})
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"

    first, second = env.staff("support", "alice"), env.staff("finance", "bob")
    queue = env.api.get("/api/admin/minor-claims", first)
    assert queue.status_code == 200, queue.text
    assert [x["refund_no"] for x in queue.json()["items"]] == [no]
    assert queue.json()["items"][0]["claim"]["guardian"]["relationship_label"] == "父亲"

    ok = env.api.post(f"/api/admin/pay/refunds/{no}/approve", first, {})
    assert ok.status_code == 200 and ok.json()["status"] == "pending_review"
    same = env.api.post(f"/api/admin/pay/refunds/{no}/approve", first, {})
    assert same.status_code == 403 and same.json()["code"] == "FOUR_EYES_REQUIRED"
    assert env.sim.create_calls() == 0

    done = env.api.post(f"/api/admin/pay/refunds/{no}/approve", second, {})
    assert done.status_code == 200, done.text
    env.wait_status(no, "success")
    assert env.fresh(o.order_no).refunded_amount == o.actual_amount
    report = env.api.get("/api/admin/minor-claims?status=success", second).json()["items"]
    assert [x["refund_no"] for x in report] == [no] and report[0]["claim"]["first_review"]["by"] == "support:alice"
    env.check_invariants(o.order_no)
