"""Hostile input on every route: deep nesting, invalid Unicode, control and invisible characters,
wrong types, huge bodies and headers, every content type, forged and foreign cursors.

Every answer must be a documented 4xx (the served OpenAPI document lists its status for that
operation) with a ``{code, message}`` body, and nothing may change: the whole stored state
(orders, refunds, tasks, users, points, coupons, inventory) and the simulator's refund calls
are compared before and after each group.

One world is set up for the module (nothing here may change it, which is the point): u1001's
pending application (approve/reject could really act on it), an abnormal refund (the
abnormal-refund route could really resend it), an open manual task (done could really close it).
Create and preview name a cancelled order, so a body wrongly let through answers 409 instead of
paying out and spoiling the world for the tests after it.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import re

import pytest
import requests

from app import app
from chalicelib.adapters import keys, models, pages
from chalicelib.entrypoints import docs
from tests.support import World

ADMIN, USER = "admin", "user"
# every route: (method, path template, role, a valid body or None)
ROUTES = [
    ("GET", "/api/health", None, None),
    ("GET", "/api/openapi.json", None, None),
    ("GET", "/admin", None, None),
    ("GET", "/admin/static/{version}/{name}", None, None),
    ("GET", "/admin/static/{version}/js/{name}", None, None),
    ("GET", "/api/admin/orders", ADMIN, None),
    ("GET", "/api/admin/search", ADMIN, None),
    ("GET", "/api/admin/orders/{order_no}", ADMIN, None),
    ("POST", "/api/admin/pay/refunds", ADMIN, {"order_no": "{cancelled_no}", "amount": 100, "reason": "质量问题"}),
    ("POST", "/api/admin/pay/refunds/preview", ADMIN, {"order_no": "{cancelled_no}", "amount": 100}),
    ("GET", "/api/admin/pay/refunds", ADMIN, None),
    ("GET", "/api/admin/pay/refunds/{refund_no}", ADMIN, None),
    ("POST", "/api/admin/pay/refunds/{refund_no}/approve", ADMIN, {"amount": 100}),
    ("POST", "/api/admin/pay/refunds/{refund_no}/reject", ADMIN, {"reason": "不符合规则"}),
    ("POST", "/api/admin/pay/refunds/{abnormal_no}/abnormal-refund", ADMIN,
     {"type": "USER_BANK_CARD", "bank_type": "ICBC_DEBIT", "bank_account": "6222020202020202", "real_name": "张三"}),
    ("POST", "/api/admin/pay/refunds/{refund_no}/offline-payout", ADMIN,
     {"channel": "bank_transfer", "reference": "BT-20261126-001", "note": "已转账"}),
    ("POST", "/api/admin/pay/refunds/{refund_no}/cancel-offline", ADMIN, {"reason": "用户放弃退款"}),
    ("GET", "/api/admin/manual-tasks", ADMIN, None),
    ("GET", "/api/admin/reconciliations", ADMIN, None),
    ("POST", "/api/admin/reconciliations", ADMIN, {"bill_date": "2000-01-01"}),  # too old: refused, nothing runs
    ("GET", "/api/admin/reconciliations/{bill_date}", ADMIN, None),
    ("GET", "/api/admin/reconciliations/{bill_date}/discrepancies", ADMIN, None),
    ("POST", "/api/admin/manual-tasks/{task_id}/done", ADMIN, {"note": "已处理"}),
    ("POST", "/api/admin/manual-tasks/{task_id}/reopen", ADMIN, {"note": "问题再次出现"}),
    ("GET", "/api/admin/me", ADMIN, None),
    ("GET", "/api/admin/counts", ADMIN, None),
    ("GET", "/api/admin/activity", ADMIN, None),
    ("POST", "/api/app/orders/{order_no}/refund/apply", USER, {"amount": 100, "reason": "不想要了"}),
    ("GET", "/api/app/orders/{order_no}/refunds", USER, None),
    ("GET", "/api/app/refunds", USER, None),
    ("POST", "/api/app/refunds/{refund_no}/withdraw", USER, {"reason": "想再看看"}),
    ("GET", "/api/app/subscription-templates", USER, None),
    ("GET", "/api/admin/users/{user_id}/refunds", ADMIN, None),
    ("GET", "/api/admin/minor-claims", ADMIN, None),
    ("GET", "/api/admin/complaints", ADMIN, None),
    ("GET", "/api/admin/complaints/{complaint_id}", ADMIN, None),
    ("POST", "/api/admin/complaints/{complaint_id}/reply", ADMIN, {"content": "已为您处理"}),
    ("POST", "/api/admin/complaints/{complaint_id}/refund", ADMIN, {"amount": 100, "reason": "投诉退款"}),
    ("POST", "/api/admin/complaints/{complaint_id}/reject", ADMIN, {"reason": "商品已拆封"}),
    ("POST", "/api/admin/complaints/{complaint_id}/complete", ADMIN, {}),
    ("POST", "/api/pay/wechat/notify/refund", None, {"id": "x"}),
    ("POST", "/api/pay/wechat/notify/payment", None, {"id": "x"}),
    ("POST", "/api/pay/wechat/notify/complaint", None, {"id": "x"}),
]
POSTS = [r for r in ROUTES if r[0] == "POST"]
JSON_POSTS = [r for r in POSTS if "/notify/" not in r[1]]
TEXT_FIELDS = [(m, p, role, body, f) for m, p, role, body in JSON_POSTS for f, v in (body or {}).items()
               if isinstance(v, str) and f != "type"]


def test_the_table_covers_every_route():
    served = {(m, p) for p, entries in app.routes.items() for m in entries}
    listed = {(m, re.sub(r"\{abnormal_no\}", "{refund_no}", p)) for m, p, _, _ in ROUTES}
    assert listed == served


# ---------------------------------------------------------------- the world and its checks


def _snapshot() -> dict:
    models.bind()
    state = {}
    for model in models.ALL_MODELS:
        if model is models.NotifyReceipt:
            continue
        state[model.__name__] = sorted(json.dumps(item.to_simple_dict(force=True), sort_keys=True, default=str)
                                       for item in model.scan())
    return state


class Hostile:
    def __init__(self, world: World):
        self.env = world
        self.api = world.api
        self.spec = docs.document()

    def setup(self):
        env = self.env
        order = env.order(1)  # u1001's
        r = env.api.post(f"/api/app/orders/{order.order_no}/refund/apply", env.user("u1001"),
                         {"amount": 300, "reason": "不想要了"})
        assert r.status_code == 201, r.text
        env.sim.queue_outcome("ABNORMAL")
        self.abnormal_order = env.order(15).order_no
        a = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": self.abnormal_order, "amount": 400})
        assert a.status_code == 201, a.text
        env.wait_status(a.json()["refund_no"], "abnormal")
        models.ManualTask("TASK-HOSTILE", type="return_to_warehouse", order_no=order.order_no, refund_no="RF0",
                          user_id="u1001", action="联系用户", status="open", created_at="2026-01-01T00:00:00Z").save()
        self.ids = {"order_no": order.order_no, "refund_no": r.json()["refund_no"],
                    "abnormal_no": a.json()["refund_no"], "task_id": "TASK-HOSTILE",
                    "cancelled_no": env.order(8).order_no, "user_id": "u1001",
                    "version": "0", "name": "console.css", "bill_date": "2026-01-01",
                    "complaint_id": "2002000000000000000000000000"}  # none such: refused before WeChat is asked
        self.tokens = {ADMIN: env.admin, USER: env.user("u1001"), None: None}
        self.before = _snapshot()
        self.sim_calls = env.sim.create_calls()
        self.key_state = self._key_state()

    def url(self, path: str) -> str:
        return path.format(**self.ids)

    def body(self, template: dict | None) -> dict:
        return {k: (v.format(**self.ids) if isinstance(v, str) else v) for k, v in (template or {}).items()}

    def call(self, method, path, role, *, body=None, raw=None, headers=None, query=""):
        h = {"Content-Type": "application/json"} if (body is not None or raw is not None) else {}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        return self.api.call(method, self.url(path) + query, self.tokens[role], raw=data, headers=h)

    def documented(self, method: str, path: str) -> set[int]:
        op = self.spec["paths"][re.sub(r"\{abnormal_no\}", "{refund_no}", path)][method.lower()]
        return {int(code) for code in op["responses"] if code.isdigit()}

    def schema_of(self, method: str, path: str, status: int) -> str:
        op = self.spec["paths"][re.sub(r"\{abnormal_no\}", "{refund_no}", path)][method.lower()]
        resp = op["responses"][str(status)]
        if "$ref" in resp:  # a shared answer (components.responses)
            resp = self.spec["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
        return resp["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]

    def refused(self, r, method, path, *, code: str | None = None, status: int | None = None) -> dict:
        """Assert ``r`` is a documented 4xx whose body has the documented shape: ``{code, message}``
        (the one contract), or what the document says the API layer answers instead."""
        where = f"{method} {path}"
        assert 400 <= r.status_code < 500, (where, r.status_code, r.text[:300])
        assert r.status_code in self.documented(method, path), (where, r.status_code, "not documented")
        body = r.json()
        if self.schema_of(method, path, r.status_code) == "GatewayError":  # until the contract covers it
            assert isinstance(body.get("Code"), str) and isinstance(body.get("Message"), str), (where, body)
            assert code is None, (where, "expected", code, "got the API layer's", body)
            return body
        assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), (where, body)
        assert set(body) <= {"code", "message", "details"}, (where, body)
        if code is not None:
            assert body["code"] == code, (where, body)
        if status is not None:
            assert r.status_code == status, (where, r.status_code, body)
        return body

    def _key_state(self) -> dict:
        """What a hostile request that got through would most likely have changed (a few reads)."""
        from chalicelib.adapters import repository as repo

        state = {}
        for name in ("refund_no", "abnormal_no"):
            r = repo.get_refund(self.ids[name])
            state[name] = (r.status, r.amount, r.reason, r.reject_reason, len(r.events or []))
        for order_no in (self.ids["order_no"], self.abnormal_order):
            o = repo.get_order(order_no)
            state[order_no] = (o.refundable_amount, o.reserved_amount, o.refunded_amount, o.requested_amount,
                               o.refund_count)
        t = repo.get_task(self.ids["task_id"])
        state["task"] = (t.status, t.note, t.done_by)
        return state

    def quick_check(self):
        assert self.env.sim.create_calls() == self.sim_calls, "a refund reached WeChat"
        assert self._key_state() == self.key_state

    def unchanged(self):
        self.quick_check()
        after = _snapshot()
        for table, items in self.before.items():
            assert after[table] == items, f"{table} changed"


@pytest.fixture(scope="module")
def hostile(stack):
    world = World(stack)
    world.setup()
    h = Hostile(world)
    h.setup()
    yield h
    try:
        h.unchanged()  # the whole stored state, once for the module
    finally:
        world.teardown()


@pytest.fixture
def same_world(hostile):
    yield hostile
    hostile.quick_check()


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# ---------------------------------------------------------------- bodies


@pytest.mark.parametrize("raw", [
    _nested(1000),
    b"[" * 1000 + b"]" * 1000,
    b'{"amount":' + b"[" * 5000,  # unbalanced: still refused before parsing
    _nested(33),
], ids=["objects-1000", "arrays-1000", "unterminated-5000", "objects-33"])
@pytest.mark.parametrize("route", JSON_POSTS, ids=lambda r: r[1])
def test_deep_nesting_is_refused_before_parsing(same_world, route, raw):
    method, path, role, _ = route
    r = same_world.call(method, path, role, raw=raw)
    body = same_world.refused(r, method, path, code="VALIDATION_ERROR", status=400)
    assert body["message"] == "请求体（body）嵌套超过 32 层"


def test_nesting_inside_strings_does_not_count(same_world):
    reason = "[" * 100 + "{" * 100
    r = same_world.call("POST", "/api/admin/pay/refunds/preview", ADMIN,
                        body={"order_no": same_world.ids["order_no"], "amount": 100, "reason": reason})
    body = same_world.refused(r, "POST", "/api/admin/pay/refunds/preview", code="VALIDATION_ERROR")
    assert body["message"].startswith("不支持的字段：")  # parsed fine: refused for the field, not the depth


@pytest.mark.parametrize("route", JSON_POSTS, ids=lambda r: r[1])
def test_huge_bodies_are_refused(same_world, route):
    method, path, role, body = route
    from chalicelib.entrypoints import contract, http

    limit = contract.body_limit(path)
    if limit > http.MAX_BODY_BYTES:  # a reply or refusal carries images: past its own limit, 413 at the door
        r = same_world.call(method, path, role, body=dict(same_world.body(body), pad="x" * (limit + 1)))
        same_world.refused(r, method, path, code="PAYLOAD_TOO_LARGE", status=413)
        return
    padded = dict(same_world.body(body), pad="x" * 20000)
    r = same_world.call(method, path, role, body=padded)
    assert same_world.refused(r, method, path, code="VALIDATION_ERROR", status=400)["details"]["field"] == "body"


# ---------------------------------------------------------------- cursors

LISTS = ["/api/admin/orders?limit=1", "/api/admin/orders?limit=1&status=2", "/api/admin/orders?limit=1&source_type=1",
         "/api/admin/orders?limit=1&user_id=u1001", "/api/admin/pay/refunds?limit=1&status=pending_review",
         "/api/admin/pay/refunds?limit=1&status=pending_review&order=oldest",
         "/api/admin/manual-tasks?limit=1&status=open", "/api/admin/manual-tasks?limit=1&status=open&format=csv"]


def _b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _next_cursor(h, path) -> str | None:
    r = h.api.get(path, h.env.admin)
    assert r.status_code == 200, (path, r.text)
    return r.headers.get("X-Next-Cursor") if "format=csv" in path else r.json()["next_cursor"]


@pytest.fixture(scope="module")
def issued(hostile):
    """A real cursor for every list that has a second page (extra tasks and an application
    give the task and review lists one)."""
    env = hostile.env
    models.ManualTask("TASK-HOSTILE-2", type="return_to_warehouse", order_no="GB0", refund_no="RF1", user_id="u1002",
                      action="联系用户", status="open", created_at="2026-01-02T00:00:00Z").save()
    r = env.api.post(f"/api/app/orders/{env.order(2).order_no}/refund/apply", env.user("u1002"),
                     {"amount": 100, "reason": "第二页"})
    assert r.status_code == 201, r.text
    hostile.before, hostile.key_state = _snapshot(), hostile._key_state()
    cursors = {path: _next_cursor(hostile, path) for path in LISTS}
    assert all(cursors.values()), cursors
    return cursors


def _forged_cursors(issued_cursor: str) -> dict[str, str]:
    version, payload, mac = issued_cursor.split(".")
    key = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    wrong_type = {k: {"N": "abc"} for k in key}
    return {
        "unsigned key (old format)": _b64(key),
        "wrong attribute type": _b64(wrong_type),
        "payload swapped, mac kept": f"{version}.{_b64(wrong_type)}.{mac}",
        "mac dropped": f"{version}.{payload}",
        "mac flipped": f"{version}.{payload}.{mac[::-1]}",
        "other version": f"c0.{payload}.{mac}",
        "no version": f"{payload}.{mac}",
        "empty parts": "..",
        "non-ascii": "c1.载荷.签名",
        "huge": "c1." + "A" * 5000 + ".x",
    }


@pytest.mark.parametrize("path", LISTS)
def test_forged_cursors_are_refused(same_world, issued, path):
    sep = "&"
    for name, forged in _forged_cursors(issued[path]).items():
        r = same_world.api.get(f"{path}{sep}cursor={requests.utils.quote(forged)}", same_world.env.admin)
        body = same_world.refused(r, "GET", path.split("?")[0], code="VALIDATION_ERROR", status=400)
        assert body.get("details", {}).get("field") == "cursor", (name, body)


@pytest.mark.parametrize("path", LISTS)
def test_a_cursor_works_only_for_the_list_it_was_issued_for(same_world, issued, path):
    r = same_world.api.get(f"{path}&cursor={issued[path]}", same_world.env.admin)
    assert r.status_code == 200, r.text
    same_list = {p for p in LISTS if p.replace("&format=csv", "") == path.replace("&format=csv", "")}
    for other, cursor in issued.items():
        if other in same_list:
            continue
        r = same_world.api.get(f"{path}&cursor={cursor}", same_world.env.admin)
        same_world.refused(r, "GET", path.split("?")[0], code="VALIDATION_ERROR", status=400)


def test_a_cursor_signed_with_another_secret_is_refused(same_world, issued, monkeypatch):
    from chalicelib.adapters import cursors

    path = LISTS[0]
    _, payload, _ = issued[path].split(".")
    key = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    from chalicelib.adapters import repository

    hash_keys = ",".join(keys.shard_keys("ORDER", "list"))
    scope = pages._scope(models.Order, models.Order.by_time, hash_keys, True, None) + "|fanout"
    assert cursors.sign(key, scope) == issued[path]  # the same key and query, signed here: identical
    monkeypatch.setenv("CURSOR_SECRET", "another-deployment's-secret")
    forged = cursors.sign(key, scope)
    monkeypatch.delenv("CURSOR_SECRET")
    assert forged != issued[path]
    r = same_world.api.get(f"{path}&cursor={forged}", same_world.env.admin)
    same_world.refused(r, "GET", "/api/admin/orders", code="VALIDATION_ERROR", status=400)


# ---------------------------------------------------------------- text

BAD_TEXT = {
    "lone surrogate": "退款\ud800",
    "low surrogate": "\udfff",
    "NUL": "退\x00款", "BEL": "\x07", "ESC": "\x1b[31m红", "CR LF": "质量\r\n问题", "tab": "a\tb", "DEL": "x\x7f",
    "C1 NEL": "x\x85y", "line separator": "x\u2028y", "RTL override": "\u202eabc", "noncharacter": "x\uffff",
}
INVISIBLE = {"zero-width space": "\u200b", "BOM": "\ufeff", "ideographic space": "\u3000",
             "word joiner and NBSP": "\u2060\u00a0", "hangul filler": "\u3164", "soft hyphen": "\u00ad"}


@pytest.mark.parametrize("route,field", [((m, p, r, b), f) for m, p, r, b, f in TEXT_FIELDS],
                         ids=[f"{p}:{f}" for _, p, _, _, f in TEXT_FIELDS])
def test_invalid_unicode_and_control_characters_are_refused_naming_the_field(same_world, route, field):
    method, path, role, template = route
    for name, bad in BAD_TEXT.items():
        body = dict(same_world.body(template), **{field: bad})
        r = same_world.call(method, path, role, body=body)
        got = same_world.refused(r, method, path, code="VALIDATION_ERROR", status=400)
        assert got.get("details", {}).get("field") == field, (name, got)


@pytest.mark.parametrize("route", JSON_POSTS, ids=lambda r: r[1])
def test_invalid_unicode_anywhere_in_a_body_is_refused(same_world, route):
    """In an unknown field, a field name, or an escaped surrogate pair broken in half."""
    method, path, role, template = route
    valid = json.dumps(same_world.body(template))[:-1]
    for raw in (valid + ', "\\ud800": 1}', valid + ', "x": ["\\udc00"]}', valid + ', "x": "\\ud83d\\u0041"}',
                b'{"reason": "\xed\xa0\x80"}', b'{"reason": "\xff"}', '\ufeff{"x": "\\u0000"}'.encode()):
        r = same_world.call(method, path, role, raw=raw if isinstance(raw, bytes) else raw.encode())
        same_world.refused(r, method, path, code="VALIDATION_ERROR", status=400)


REQUIRED_TEXT = [("/api/app/orders/{order_no}/refund/apply", "reason"),
                 ("/api/admin/pay/refunds/{refund_no}/reject", "reason")]


@pytest.mark.parametrize("path,field", REQUIRED_TEXT)
def test_required_text_made_of_invisible_characters_is_missing(same_world, path, field):
    template = next(b for m, p, r, b in ROUTES if p == path)
    role = next(r for m, p, r, b in ROUTES if p == path)
    for name, blank in INVISIBLE.items():
        r = same_world.call("POST", path, role, body=dict(same_world.body(template), **{field: blank * 3}))
        got = same_world.refused(r, "POST", path, code="VALIDATION_ERROR", status=400)
        assert got["details"] == {"field": field} and "不能为空" in got["message"], (name, got)


@pytest.mark.parametrize("path", ["/api/app/orders/{order_no}/refund/apply", "/api/admin/pay/refunds"])
def test_a_reason_for_wechat_is_limited_to_80_bytes(same_world, path):
    template = next(b for m, p, r, b in ROUTES if p == path)
    role = next(r for m, p, r, b in ROUTES if p == path)
    r = same_world.call("POST", path, role, body=dict(same_world.body(template), reason="长" * 27))
    got = same_world.refused(r, "POST", path, code="VALIDATION_ERROR", status=400)
    assert got["details"]["max_bytes"] == 80 and "80 字节" in got["message"]


# ---------------------------------------------------------------- types

WRONG_TYPES = {"array": [1], "object": {"a": 1}, "number as string": "100", "boolean": True, "null": None,
               "huge integer": 10 ** 40, "float": 100.5, "negative": -1, "zero": 0, "float that is whole": 100.0,
               "string": "x", "empty string": ""}


# values a field may legitimately take besides its valid example (optional text, "approve all")
ALSO_VALID = {"reason": (None, ""), "note": (None, ""), "amount": (None,)}
OPTIONAL = {("/api/admin/pay/refunds", "reason"), ("/api/admin/manual-tasks/{task_id}/done", "note"),
            ("/api/admin/manual-tasks/{task_id}/reopen", "note"),
            ("/api/admin/pay/refunds/{refund_no}/approve", "amount"),
            ("/api/admin/pay/refunds/{refund_no}/offline-payout", "note"),
            ("/api/app/refunds/{refund_no}/withdraw", "reason")}


@pytest.mark.parametrize("route", JSON_POSTS, ids=lambda r: r[1])
def test_wrong_types_in_every_field_are_refused(same_world, route):
    method, path, role, template = route
    valid = same_world.body(template)
    for field, good in valid.items():
        for name, bad in WRONG_TYPES.items():
            if type(bad) is type(good) and name not in ("negative", "zero", "empty string"):
                continue  # a value of the right type: its rules are checked elsewhere
            if (path, field) in OPTIONAL and bad in ALSO_VALID[field] and type(bad) is not bool:
                continue
            if field in ("bank_type", "real_name", "bank_account") and name == "number as string":
                continue  # "100" is text, which those fields are
            r = same_world.call(method, path, role, body=dict(valid, **{field: bad}))
            same_world.refused(r, method, path, code="VALIDATION_ERROR", status=400)
    for raw in (b"[]", b'"x"', b"1", b"null", b"true", b"{", b'{"amount": NaN}', b'{"amount": Infinity}',
                b'{"amount": 1, "amount": 2}', b'{"amount": 1' + b"0" * 5000 + b"}"):
        r = same_world.call(method, path, role, raw=raw)
        same_world.refused(r, method, path, code="VALIDATION_ERROR", status=400)


# ---------------------------------------------------------------- path ids, query values, headers

ODD_IDS = ["%00", "%0A", "%E2%80%AE", "%F0%9F%92%A9", "..%2F..", "%25", "a" * 3000, "%ED%A0%80", "%FF", "'%20OR%201=1"]


@pytest.mark.parametrize("route", [r for r in ROUTES if "{" in r[1] and "/admin/static" not in r[1]],
                         ids=lambda r: f"{r[0]} {r[1]}")
def test_odd_path_ids_are_4xx(same_world, route):
    method, path, role, template = route
    for odd in ODD_IDS:
        url = re.sub(r"\{(order_no|refund_no|abnormal_no|task_id)\}", odd, path)
        r = same_world.api.call(method, url, same_world.tokens[role],
                                body=same_world.body(template) if method == "POST" else None)
        same_world.refused(r, method, path)


def test_odd_static_names_are_404(same_world):
    for odd in ODD_IDS:
        for path in (f"/admin/static/0/{odd}", f"/admin/static/0/js/{odd}"):
            r = same_world.api.get(path)
            assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND", (path, r.status_code)
        r = same_world.api.get(f"/admin/static/{odd}/console.css")  # any version: served, not cached
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache", (odd, r.status_code)


QUERY_ROUTES = {"/api/admin/orders": ["status", "source_type", "user_id", "limit", "cursor"],
                "/api/admin/pay/refunds": ["status", "order_no", "order", "limit", "cursor"],
                "/api/admin/manual-tasks": ["status", "type", "format", "limit", "cursor"]}
ODD_VALUES = ["%00", "%1B", "%E2%80%AE", "%EF%BF%BF", "x" * 2000, "-1", "1e3", "%C2%B2", "[]", "true", "%FF"]


@pytest.mark.parametrize("path", QUERY_ROUTES)
def test_odd_query_values_are_4xx(same_world, path):
    base = "status=pending_review" if path == "/api/admin/pay/refunds" else ""
    for name in QUERY_ROUTES[path]:
        for odd in ODD_VALUES:
            r = same_world.api.get(f"{path}?{base}&{name}={odd}", same_world.env.admin)
            if r.status_code == 200:  # a free-text filter matching nothing is a fine answer
                assert name in ("user_id", "order_no") and r.json()["items"] == [], (name, odd, r.text[:200])
                continue
            same_world.refused(r, "GET", path, code="VALIDATION_ERROR", status=400)
    r = same_world.api.get(f"{path}?{base}&nope=1", same_world.env.admin)
    same_world.refused(r, "GET", path, code="VALIDATION_ERROR", status=400)


ODD_HEADERS = {
    "Authorization": ["Bearer " + "a" * 6000, "Bearer \x1b[31m", "Bearer é.é.é", "bearer x", "Bearer  ", "Bearer a.b"],
    "Idempotency-Key": ["k" * 256, "\u00a0", "ключ", "a\x1bb", "k\x7f"],
}


@pytest.mark.parametrize("route", [r for r in ROUTES if r[2]], ids=lambda r: f"{r[0]} {r[1]}")
def test_odd_headers_are_4xx(same_world, route):
    method, path, role, template = route
    body = same_world.body(template) if method == "POST" else None
    for value in ODD_HEADERS["Authorization"]:
        r = same_world.api.call(method, same_world.url(path), None, body=body,
                                headers={"Authorization": value.encode("utf-8").decode("latin-1")})
        same_world.refused(r, method, path, code="UNAUTHENTICATED", status=401)
    if method == "POST" and path in ("/api/admin/pay/refunds", "/api/app/orders/{order_no}/refund/apply"):
        for value in ODD_HEADERS["Idempotency-Key"]:  # the creating calls read it (the refund list does not)
            r = same_world.api.call(method, same_world.url(path), same_world.tokens[role], body=body,
                                    headers={"Idempotency-Key": value.encode("utf-8").decode("latin-1")})
            same_world.refused(r, method, path, code="VALIDATION_ERROR", status=400)
    # a hostile request id is replaced, not logged (POSTs go without a token: they must not act)
    r = same_world.api.call(method, same_world.url(path), same_world.tokens[role] if method == "GET" else None,
                            body=body, headers={"X-Request-Id": "\x1b]0;pwned\x07" + "r" * 5000})
    if r.status_code != 200:  # a GET that needs a parameter (the activity's operator, the search's q); the
        # world's complaint id names none
        expected = ("UNAUTHENTICATED" if method != "GET" else
                    "COMPLAINT_NOT_FOUND" if "{complaint_id}" in path else "VALIDATION_ERROR")
        same_world.refused(r, method, path, code=expected)


# ---------------------------------------------------------------- CSV export

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"点我\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1", "  =1+1", "\u200b=1+1", "＝1+1"]


def test_csv_export_neutralises_cells_that_could_start_a_formula(hostile):
    """Cells from stored data (an item name in the action, ids from other systems) and a note
    typed through the API: read back over HTTP, each formula-like cell starts with a quote."""
    env = hostile.env
    for i, formula in enumerate(FORMULAS):
        models.ManualTask(f"TASK-CSV-{i}", type="inventory_not_revocable", order_no=formula, refund_no="RF-CSV",
                          user_id=formula, action=f"{formula}", status="open",
                          created_at=f"2026-02-01T00:00:{i:02d}Z").save()
    try:
        typed = "=1+1"  # printable: a note may say this, and it must reach the file as text
        done = env.api.post("/api/admin/manual-tasks/TASK-CSV-0/done", env.admin, {"note": typed})
        assert done.status_code == 200 and done.json()["note"] == typed, done.text
        rows = []
        for status in ("open", "done"):
            r = env.api.get(f"/api/admin/manual-tasks?status={status}&format=csv", env.admin)
            assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf"), r.text
            body = r.content.decode("utf-8-sig")
            for line in body.split("\r\n")[:-1]:  # no cell here holds a line break after neutralising
                assert line.startswith('"') and line.endswith('"'), line  # every cell quoted
            rows += [row for row in csv.DictReader(io.StringIO(body, newline="")) if row["任务编号"].startswith("TASK-CSV-")]
        assert len(rows) == len(FORMULAS)
        for row in rows:
            i = int(row["任务编号"].rsplit("-", 1)[1])
            for column in ("订单号", "用户ID", "处理事项"):
                assert row[column] == "'" + FORMULAS[i], (column, row[column])
        (done_row,) = [row for row in rows if row["状态"] == "已处理"]
        assert done_row["备注"] == "'" + typed
        ok = [row for row in rows if row["退款单号"] == "RF-CSV"]
        assert len(ok) == len(FORMULAS)  # a harmless cell is left as it is
    finally:
        hostile.before = _snapshot()  # this test's tasks are part of the world from now on


# ---------------------------------------------------------------- content types

CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/xml", "text/xml", "text/html", "text/csv",
                 "application/octet-stream", "application/json; charset=utf-16", "APPLICATION/JSON", "a/b/c", "",
                 "image/png"]


@pytest.mark.parametrize("route", POSTS, ids=lambda r: r[1])
def test_every_content_type_is_refused_or_parsed_as_json_only(same_world, route):
    """Bodies that are not a valid request, under every content type: a documented 4xx. Under a
    JSON label the body is still only ever read as JSON (form fields are not understood)."""
    method, path, role, template = route
    valid = same_world.body(template)
    form = "&".join(f"{k}={v}" for k, v in valid.items()).encode()
    for ctype in CONTENT_TYPES:
        for raw in (form, b"<refund><amount>1</amount></refund>", json.dumps(valid).encode("utf-16"), b"\x89PNG\r\n"):
            r = same_world.api.call(method, same_world.url(path), same_world.tokens[role], raw=raw,
                                    headers={"Content-Type": ctype})
            if "/notify/" in path and r.status_code == 401:
                assert r.json()["code"] == "FAIL", r.text  # no valid WeChat signature
                continue
            same_world.refused(r, method, path)


NOTIFY_ROUTES = [r for r in POSTS if "/notify/" in r[1]]
HOSTILE_BODIES = {"deep": _nested(1000), "surrogate": b'{"id": "\\ud800"}', "control": b'{"id": "\\u0000\\u001b"}',
                  "invalid utf-8": b'{"id": "\xff\xfe"}', "huge": b'{"id": "' + b"x" * 200_000 + b'"}',
                  "array": b"[" + b"1," * 1000 + b"1]", "empty": b""}


@pytest.mark.parametrize("route", NOTIFY_ROUTES, ids=lambda r: r[1])
def test_notifications_refuse_hostile_bodies_and_headers_before_reading_them(same_world, route):
    """Nothing is parsed before WeChat's signature holds: 401 FAIL, whatever the body or headers
    (a body over the contract's 64 KiB, which no notification comes near, is 413 before that)."""
    from chalicelib.entrypoints.contract import MAX_BODY_BYTES

    method, path, _, _ = route
    headers = [{}, {"Wechatpay-Timestamp": "abc", "Wechatpay-Nonce": "\x1b", "Wechatpay-Serial": "s" * 5000,
                    "Wechatpay-Signature": "%%%", "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"},
               {"Wechatpay-Timestamp": "9" * 400, "Wechatpay-Nonce": "n", "Wechatpay-Serial": "PUB_KEY_ID_x",
                "Wechatpay-Signature": "", "Wechatpay-Signature-Type": "HMAC"}]
    for name, raw in HOSTILE_BODIES.items():
        for h in headers:
            r = same_world.api.call(method, path, None, raw=raw, headers={"Content-Type": "application/json", **h})
            if len(raw) > MAX_BODY_BYTES:
                same_world.refused(r, method, path, status=413, code="PAYLOAD_TOO_LARGE")
                continue
            body = same_world.refused(r, method, path, status=401)
            assert body["code"] == "FAIL", (name, body)


@pytest.mark.parametrize("route", [r for r in ROUTES if r[2] is None and r[0] == "GET"], ids=lambda r: r[1])
def test_public_pages_ignore_hostile_queries_and_headers(same_world, route):
    method, path, _, _ = route
    url = same_world.url(path.replace("/js/{name}", "/js/api.js"))
    for query in ("?x=%00%1B", "?" + "a=1&" * 500, "?%ED%A0%80=%FF", "?cursor=" + "A" * 5000):
        for h in ({}, {"Authorization": "Bearer " + "x" * 6000, "If-None-Match": "\x00" * 100,
                       "X-Request-Id": "\x1b" * 50, "Accept": "application/x-evil"}):
            r = same_world.api.call(method, url + query, None, headers=h)
            assert r.status_code in (200, 304), (path, query[:20], r.status_code)
