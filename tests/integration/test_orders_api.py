"""Order read API over HTTP: labels, user display, pagination, auth, validation."""


def test_health_is_public(env):
    r = env.api.get("/api/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_order_list_has_labels_and_pages(env):
    r = env.api.get("/api/admin/orders?limit=5", env.admin)
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page["items"]) == 5 and page["next_cursor"]
    first = page["items"][0]
    assert {"status_label", "source_type_label", "user", "actual_amount_yuan"} <= set(first)
    created = [i["created_at"] for i in page["items"]]
    assert created == sorted(created, reverse=True)
    seen = {i["order_no"] for i in page["items"]}
    r2 = env.api.get(f"/api/admin/orders?limit=5&cursor={page['next_cursor']}", env.admin).json()
    assert not seen & {i["order_no"] for i in r2["items"]}


def test_filters_use_indexes_and_combine(env):
    paid = env.api.get("/api/admin/orders?status=2&limit=100", env.admin).json()["items"]
    assert paid and all(o["status"] == 2 and o["status_label"] == "已支付" for o in paid)
    lottery = env.api.get("/api/admin/orders?source_type=2&limit=100", env.admin).json()["items"]
    assert lottery and all(o["source_type_label"] == "抽奖票据" for o in lottery)
    mine = env.api.get("/api/admin/orders?user_id=u1001&status=2", env.admin).json()["items"]
    assert mine and all(o["user"]["user_id"] == "u1001" and o["status"] == 2 for o in mine)


def test_user_display_name_falls_back_to_id(env):
    items = env.api.get("/api/admin/orders?limit=100", env.admin).json()["items"]
    by_user = {o["user"]["user_id"]: o["user"] for o in items}
    assert by_user["u1001"]["display_name"] == "小明"
    assert by_user["u1002"] == {"user_id": "u1002", "nickname": None, "display_name": "u1002"}
    assert by_user["u1004"]["display_name"] == "u1004"  # empty nickname


def test_order_detail_sections(env):
    o = env.order(6)
    r = env.api.get(f"/api/admin/orders/{o.order_no}", env.admin)
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) >= {"order", "activity", "payment", "items", "shipping", "points", "lottery", "refunds",
                      "refund_actions"}
    assert d["order"]["source_type_label"] == "抽奖票据"
    assert d["order"]["actual_amount"] == 2970 and d["order"]["actual_amount_yuan"] == "29.70"
    assert [x["is_winner_label"] for x in d["lottery"]] == ["是", "是", "否"]
    assert [x["level_label"] for x in d["lottery"]] == ["S", "B", None]
    assert d["refunds"] == []
    assert d["refund_actions"]["can_refund"] and d["refund_actions"]["max_refundable"] == 2970


def test_refund_actions_explain_why_not(env):
    cancelled = env.api.get(f"/api/admin/orders/{env.order(8).order_no}", env.admin).json()
    assert cancelled["refund_actions"]["can_refund"] is False
    assert cancelled["refund_actions"]["why_not"]["code"] == "ORDER_NOT_REFUNDABLE"
    signed = env.api.get(f"/api/admin/orders/{env.order(3).order_no}", env.admin).json()
    assert signed["refund_actions"]["requires_approval"] is True
    assert signed["refund_actions"]["button_label"] == "申请退款"
    assert signed["shipping"]["status_label"] == "已签收"
    old = env.api.get(f"/api/admin/orders/{env.order(12).order_no}", env.admin).json()
    assert old["refund_actions"]["why_not"]["code"] == "REFUND_WINDOW_EXPIRED"


def test_auth_and_errors(env):
    assert env.api.get("/api/admin/orders").status_code == 401
    r = env.api.get("/api/admin/orders", env.user("u1001"))
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    assert env.api.get("/api/admin/orders", "not-a-jwt").json()["code"] == "UNAUTHENTICATED"
    for q in ("status=9", "status=x", "source_type=0", "limit=0", "limit=1000", "colour=red", "cursor=%%%"):
        r = env.api.get(f"/api/admin/orders?{q}", env.admin)
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", (q, r.text)
    r = env.api.get("/api/admin/orders/NOPE", env.admin)
    assert r.status_code == 404 and r.json()["code"] == "ORDER_NOT_FOUND"


def test_paging_over_the_sharded_index_lists_every_order_once_newest_first(env):
    """The unfiltered list reads 8 shards and merges them: page by page, every order appears once,
    newest first, and each cursor stays within the query-value limit."""
    seen, cursor, pages = [], None, 0
    while True:
        r = env.api.get("/api/admin/orders?limit=7" + (f"&cursor={cursor}" if cursor else ""), env.admin)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [(o["created_at"], o["order_no"]) for o in body["items"]]
        cursor, pages = body["next_cursor"], pages + 1
        if not cursor:
            break
        assert len(cursor) < 1024
    assert len(seen) == len({no for _, no in seen}) == 40 and pages == 6
    assert seen == sorted(seen, reverse=True)
