"""GET /api/admin/pay/refunds without an order: every refund, newest first, by status (all nine,
abnormal / 待线下退款 / submitted / failed included), operator, Beijing day range and amount; WeChat's
refund id and the cash/coupon split on each; CSV export paging past its default page size."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

from chalicelib.adapters import repository as repo
from chalicelib.domain import clock
from chalicelib.domain.enums import RefundStatus

BASE = datetime(2026, 11, 20, 4, 0, tzinfo=timezone.utc)  # 12:00 Beijing


def _put(n: int, *, status: str, created_by: str = "admin:ops-1", amount: int = 100, at: datetime | None = None,
         payer_refund: int | None = None, wechat_refund_id: str | None = None) -> str:
    refund_no = f"RLIST{n:04d}"
    when = clock.iso(at or BASE + timedelta(minutes=n))
    repo.write([repo.new_refund(refund_no, {
        "order_no": f"OLIST{n:04d}", "user_id": "u1001", "origin": "admin", "amount": amount,
        "requested_amount": amount, "status": status, "created_by": created_by, "order_total": 10000,
        "created_at": when, "updated_at": when, "payer_refund": payer_refund,
        "wechat_refund_id": wechat_refund_id})])
    return refund_no


def _get(env, query: str):
    r = env.api.get(f"/api/admin/pay/refunds?{query}", env.admin)
    assert r.status_code == 200, r.text
    return r.json()


def _all(env, query: str) -> list[dict]:
    items, cursor = [], None
    while True:
        page = _get(env, query + (f"&cursor={cursor}" if cursor else ""))
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_every_status_is_listed_and_filtered(env):
    made = {s.value: _put(i, status=s.value) for i, s in enumerate(RefundStatus)}
    everything = _all(env, "limit=4")
    assert [i["refund_no"] for i in everything] == sorted(made.values(), reverse=True)  # newest first, all nine
    for status, refund_no in made.items():
        page = _get(env, f"status={status}")
        assert [(i["refund_no"], i["status_label"]) for i in page["items"]] == [
            (refund_no, RefundStatus(status).label)]


def test_paging_past_the_default_page_size(env):
    made = [_put(i, status="success" if i % 2 else "processing") for i in range(45)]
    first = _get(env, "")
    assert len(first["items"]) == 20 and first["next_cursor"]
    listed = _all(env, "")
    assert [i["refund_no"] for i in listed] == sorted(made, reverse=True)
    oldest = _all(env, "order=oldest&limit=7")
    assert [i["refund_no"] for i in oldest] == sorted(made)


def test_operator_day_range_and_amount(env):
    a = _put(1, status="success", created_by="support:alice", amount=500)
    b = _put(2, status="processing", created_by="finance:bob", amount=5000)
    c = _put(3, status="success", created_by="support:alice", amount=9000, at=BASE + timedelta(days=2))
    # 23:59:59.999 Beijing on the 20th is on the 20th; midnight starts the 21st
    d = _put(4, status="success", at=datetime(2026, 11, 20, 15, 59, 59, 999999, tzinfo=timezone.utc))
    e = _put(5, status="success", at=datetime(2026, 11, 20, 16, 0, tzinfo=timezone.utc))
    assert {i["refund_no"] for i in _all(env, "operator=alice")} == {a, c}
    assert {i["refund_no"] for i in _all(env, "operator=support:alice&status=success")} == {a, c}
    assert {i["refund_no"] for i in _all(env, "from=2026-11-20&to=2026-11-20")} == {a, b, d}
    assert {i["refund_no"] for i in _all(env, "from=2026-11-21")} == {e}
    assert {i["refund_no"] for i in _all(env, "min_amount=1000&max_amount=9000")} == {b, c}
    assert {i["refund_no"] for i in _all(env, "min_amount=1000&operator=alice&from=2026-11-22")} == {c}


def test_wechat_id_and_cash_coupon_split(env):
    settled = _put(1, status="success", amount=1000, wechat_refund_id="50300000001",
                   payer_refund=800)
    notified = _put(2, status="success", amount=1000, payer_refund=700)
    fresh = _put(3, status="pending_review")
    by_no = {i["refund_no"]: i for i in _all(env, "")}
    assert (by_no[settled]["wechat_refund_id"], by_no[settled]["payer_refund_yuan"],
            by_no[settled]["coupon_refund_yuan"]) == ("50300000001", "8.00", "2.00")
    assert (by_no[notified]["payer_refund"], by_no[notified]["coupon_refund"]) == (700, 300)
    assert (by_no[fresh]["payer_refund"], by_no[fresh]["coupon_refund"], by_no[fresh]["wechat_refund_id"]) == (
        None, None, None)


def test_bad_filters_are_400(env):
    for query, field in [("status=held", "status"), ("from=2026-13-01", "from"), ("from=2026-11-02&to=2026-11-01", "to"),
                         ("min_amount=1.5", "min_amount"), ("min_amount=500&max_amount=100", "max_amount"),
                         ("operator=%20", "operator"), ("format=csv&order=oldest", "order")]:
        r = env.api.get(f"/api/admin/pay/refunds?{query}", env.admin)
        assert r.status_code == 400, (query, r.text)
        assert r.json()["details"]["field"] == field, query


def test_csv_pages_past_its_page_size_in_beijing_time(env):
    made = [_put(i, status="success", amount=100 + i,
                 payer_refund=100 + i) for i in range(7)]
    rows, cursor, files = [], None, 0
    while True:
        r = env.api.get("/api/admin/pay/refunds?format=csv&limit=3" + (f"&cursor={cursor}" if cursor else ""),
                        env.admin)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv"), r.text
        text = r.content.decode("utf-8")
        assert text.startswith("\ufeff")
        table = list(csv.reader(io.StringIO(text[1:])))
        assert table[0][:3] == ["商户退款单号", "微信退款单号", "订单号"]
        rows += table[1:]
        files += 1
        cursor = r.headers.get("X-Next-Cursor")
        if not cursor:
            break
    assert files == 3 and [row[0] for row in rows] == sorted(made, reverse=True)
    newest = rows[0]
    assert newest[4] == "退款成功" and newest[6] == "1.06" and newest[12] == "2026-11-20 12:06:00"
    support = env.api.get("/api/admin/pay/refunds?format=csv", env.staff("support", "s1"))
    assert support.status_code == 403


def test_refunds_asked_at_the_same_instant_are_each_listed_once(env):
    same = BASE + timedelta(hours=1)
    tied = {_put(i, status=["success", "processing", "abnormal"][i % 3], at=same) for i in range(5)}
    around = {_put(10, status="success"), _put(11, status="failed", at=same + timedelta(seconds=1))}
    for order in ("", "&order=oldest"):
        listed = [i["refund_no"] for i in _all(env, f"limit=2{order}")]
        assert sorted(listed) == sorted(tied | around) and len(listed) == 7, listed
    r = env.api.get(f"/api/admin/pay/refunds?cursor={_get(env, 'limit=2')['next_cursor']}&status=success", env.admin)
    assert r.status_code == 400 and r.json()["details"]["field"] == "cursor"  # a cursor of another list
