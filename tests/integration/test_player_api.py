"""The player's refunds over HTTP: the list and withdrawing an application, with the error contract."""


def _apply(env, user, order_no, amount):
    return env.api.post(f"/api/app/orders/{order_no}/refund/apply", env.user(user),
                        {"amount": amount, "reason": "不想要了"})


def test_list_and_withdraw_through_the_stack(env):
    o = env.order(1)
    no = _apply(env, "u1001", o.order_no, 1000).json()["refund_no"]
    mine = env.api.get("/api/app/refunds?limit=5", env.user("u1001"))
    assert mine.status_code == 200, mine.text
    assert [x["refund_no"] for x in mine.json()["items"]] == [no] and mine.json()["next_cursor"] is None
    assert mine.json()["items"][0]["can_withdraw"] is True
    assert env.api.get("/api/app/refunds", env.user("u1002")).json()["items"] == []

    other = env.api.post(f"/api/app/refunds/{no}/withdraw", env.user("u1002"), {})
    assert other.status_code == 404 and other.json()["code"] == "REFUND_NOT_FOUND"
    assert env.api.post(f"/api/app/refunds/{no}/withdraw", env.admin, {}).status_code == 403
    bad = env.api.post(f"/api/app/refunds/{no}/withdraw", env.user("u1001"), {"reason": "x", "amount": 1})
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_ERROR"

    done = env.api.post(f"/api/app/refunds/{no}/withdraw", env.user("u1001"), {"reason": "想再看看"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "rejected" and done.json()["can_withdraw"] is False
    assert env.api.post(f"/api/app/refunds/{no}/withdraw", env.user("u1001"), {}).json()["status"] == "rejected"
    env.check_invariants(o.order_no)
    assert _apply(env, "u1001", o.order_no, o.actual_amount).status_code == 201  # applicable again

    bad_cursor = env.api.get("/api/app/refunds?cursor=nonsense", env.user("u1001"))
    assert bad_cursor.status_code == 400 and bad_cursor.json()["code"] == "VALIDATION_ERROR"
    staff = env.api.get("/api/app/refunds", env.admin)
    assert staff.status_code == 403
