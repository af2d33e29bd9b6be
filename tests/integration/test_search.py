"""GET /api/admin/search: one box, every kind of number staff are given, exact after normalising."""
from __future__ import annotations

from urllib.parse import quote

import pytest


def _search(env, q, token=None):
    return env.api.get(f"/api/admin/search?q={quote(q)}", token or env.admin)


def _refund(env, n: int, amount: int) -> str:
    order = env.order(n)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order.order_no, "amount": amount})
    assert r.status_code == 201, r.text
    refund_no = r.json()["refund_no"]
    env.wait_for(lambda: env.refund(refund_no).wechat_refund_id)
    return refund_no


def test_order_number_transaction_id_and_case(env):
    order = env.order(1)
    for q in (order.order_no, f"  {order.order_no.lower()} ", order.order_no.translate(
            {c: c + 0xFEE0 for c in range(0x21, 0x7F)})):  # lower case, padded; full-width
        body = _search(env, q).json()
        assert [(o["order_no"], o["matched_by"]) for o in body["orders"]] == [(order.order_no, "order_no")], q
    tid = order.payment.transaction_id
    body = _search(env, f" {tid} ").json()
    assert [(o["order_no"], o["matched_by"], o["matched_by_label"]) for o in body["orders"]] == [
        (order.order_no, "transaction_id", "微信支付单号")]
    assert _search(env, tid[:-1]).json()["count"] == 0  # exact, never a prefix


def test_refund_numbers_ours_and_wechats(env):
    refund_no = _refund(env, 2, 100)
    wechat_id = env.refund(refund_no).wechat_refund_id
    ours = _search(env, refund_no.lower()).json()
    assert [(r["refund_no"], r["matched_by"]) for r in ours["refunds"]] == [(refund_no, "refund_no")]
    assert ours["refunds"][0]["order_no"] == env.order(2).order_no and "actions" in ours["refunds"][0]
    theirs = _search(env, wechat_id).json()
    assert [(r["refund_no"], r["matched_by"], r["wechat_refund_id"]) for r in theirs["refunds"]] == [
        (refund_no, "wechat_refund_id", wechat_id)]


def test_players_by_id_nickname_and_phone(env):
    by_id = _search(env, "U1001").json()["users"]
    assert [(u["user_id"], u["matched_by"]) for u in by_id] == [("u1001", "user_id")]
    assert by_id[0]["orders"] and all(o["user"]["user_id"] == "u1001" for o in by_id[0]["orders"])
    created = [o["created_at"] for o in by_id[0]["orders"]]
    assert created == sorted(created, reverse=True)
    assert [u["user_id"] for u in _search(env, "盲盒收藏家").json()["users"]] == ["u1005"]
    assert _search(env, "盲盒").json()["count"] == 0  # no substring match
    for typed in ("13900139003", "+86 139-0013-9003", "１３９００１３９００３"):
        users = _search(env, typed).json()["users"]
        assert [(u["user_id"], u["matched_by"], u["matched_by_label"]) for u in users] == [
            ("u1003", "phone", "手机号")], typed
    assert _search(env, "13900139004").json()["count"] == 0


def test_no_phone_number_is_stored(env):
    from chalicelib.adapters import models

    item = models.User.get("u1003")
    assert item.phone_hash and "13900139003" not in item.phone_hash and len(item.phone_hash) == 64
    assert "13900139003" not in str(item.serialize())


@pytest.mark.parametrize("q", ["", "   ", "\u200b", "x" * 65])
def test_bad_queries_are_400(env, q):
    r = _search(env, q)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR" and r.json()["details"]["field"] == "q"


def test_missing_q_and_unknown_parameters(env):
    assert env.api.get("/api/admin/search", env.admin).json()["details"]["field"] == "q"
    r = env.api.get("/api/admin/search?q=1&x=2", env.admin)
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"


def test_players_cannot_search(env):
    r = _search(env, "u1001", env.user("u1001"))
    assert r.status_code == 403
