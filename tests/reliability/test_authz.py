"""Hostile callers: every route, walked with no token, a player's token, another player's
token, an expired token, tokens signed with the wrong key or algorithm, a role-confused token,
and a token of every staff role (support, finance, admin). Plus inputs built to break parsing
(forged cursors, odd digits)."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from app import app
from chalicelib import config
from chalicelib.adapters import auth

PUBLIC = {("GET", "/api/health"), ("GET", "/api/openapi.json"), ("GET", "/admin"),
          ("GET", "/admin/static/{version}/{name}"), ("GET", "/admin/static/{version}/js/{name}")}
NOTIFY = {("POST", "/api/pay/wechat/notify/refund"), ("POST", "/api/pay/wechat/notify/payment"),
          ("POST", "/api/pay/wechat/notify/complaint")}


def _routes():
    return sorted((m, p) for p, entries in app.routes.items() for m in entries)


STAFF = ("admin", "finance", "support")
# the staff routes a role may not use (403 PERMISSION_DENIED), written out rather than derived from
# the permission table, so a change to either shows up here
DENIED = {
    "admin": set(),
    "finance": set(),
    "support": {("POST", "/api/admin/pay/refunds/{refund_no}/abnormal-refund"),
                ("POST", "/api/admin/pay/refunds/{refund_no}/offline-payout"),
                ("POST", "/api/admin/pay/refunds/{refund_no}/cancel-offline"),
                ("GET", "/api/admin/activity"),
                ("POST", "/api/admin/reconciliations")},
}
QUERIES = {"/api/admin/activity": "?operator=ops-1"}


def _secret(role):
    return config.secret("USER_JWT_SECRET" if role == "user" else "ADMIN_JWT_SECRET")


def _token(role, sub, *, key=None, exp_in=3600, alg="HS256", drop=(), **extra):
    now = int(time.time())
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + exp_in}
    claims.update(extra)
    for k in drop:
        claims.pop(k)
    return jwt.encode(claims, key if key is not None else _secret(role), algorithm=alg)


def _unsigned(role, sub):
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps({"sub": sub, "role": role, "exp": int(time.time()) + 3600})
                                    .encode()).rstrip(b"=")
    return (header + b"." + body + b".").decode()


@pytest.fixture
def world(env):
    """Real ids to put in the paths: u1001's order and pending application, an open task."""
    mine = env.order(1)  # u1001
    theirs = env.order(2)  # u1002
    r = env.api.post(f"/api/app/orders/{mine.order_no}/refund/apply", env.user("u1001"),
                     {"amount": 100, "reason": "授权测试"})
    assert r.status_code == 201, r.text
    return {"order_no": mine.order_no, "other_order_no": theirs.order_no, "refund_no": r.json()["refund_no"],
            "task_id": "no-such-task", "version": "0", "name": "console.css", "bill_date": "2026-01-01",
            "user_id": "u1001", "complaint_id": "2002000000000000000000000000"}


BODIES = {"/api/app/orders/{order_no}/refund/apply": {"amount": 1, "reason": "授权测试"},
          "/api/admin/reconciliations": {"bill_date": "2000-01-01"},  # refused as too old: nothing runs
          # a reason that is no text: refused (400), so the application stays for the staff routes
          "/api/app/refunds/{refund_no}/withdraw": {"reason": 1}}


def _call(env, method, path, world, token=None, raw_auth=None):
    url = path.format(**world) + QUERIES.get(path, "")
    headers = {"Authorization": raw_auth} if raw_auth is not None else None
    body = BODIES.get(path, {}) if method == "POST" else None
    return env.api.call(method, url, token, body=body, headers=headers)


def _role_of(path):
    return "admin" if path.startswith("/api/admin") else "user" if path.startswith("/api/app") else None


def test_every_route_is_classified():
    for method, path in _routes():
        assert (method, path) in PUBLIC | NOTIFY or _role_of(path), (method, path)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_authorization_matrix(env, world):
    other_user = env.user("u1002")
    def bad_for(role):
        """Tokens that must all be refused with 401 on a route for ``role``."""
        sub = "ops-1" if role == "admin" else "u1001"
        other = "user" if role == "admin" else "admin"
        return {
            "no token": dict(token=None),
            "empty bearer": dict(raw_auth="Bearer "),
            "basic scheme": dict(raw_auth="Basic YWRtaW46YWRtaW4="),
            "garbage": dict(raw_auth="Bearer not.a.jwt"),
            "expired": dict(token=_token(role, sub, exp_in=-120)),  # beyond the 30 s leeway
            "exp 100 years ahead": dict(token=_token(role, sub, exp_in=100 * 365 * 86400)),
            "25 h lifetime": dict(token=_token(role, sub, exp_in=25 * 3600)),
            "issued long ago, still valid": dict(token=_token(role, sub, iat=int(time.time()) - 30 * 3600)),
            "exp as a string": dict(token=_token(role, sub, exp=str(int(time.time()) + 3600))),
            "iat as a string": dict(token=_token(role, sub, iat=str(int(time.time())))),
            "exp as a boolean": dict(token=_token(role, sub, exp=True)),
            "no iat": dict(token=_token(role, sub, drop=("iat",))),
            "issued in the future": dict(token=_token(role, sub, iat=int(time.time()) + 600, exp_in=1200)),
            "not valid yet": dict(token=_token(role, sub, nbf=int(time.time()) + 600)),
            "whitespace subject": dict(token=_token(role, " \t ")),
            "padded subject": dict(token=_token(role, f" {sub}")),
            "control character in subject": dict(token=_token(role, f"{sub}\x00")),
            "subject not a string": dict(token=_token(role, 1001)),
            "role not a string": dict(token=jwt.encode({"sub": sub, "role": [role], "iat": int(time.time()),
                                                        "exp": int(time.time()) + 60}, _secret(role), algorithm="HS256")),
            "non-ascii token": dict(raw_auth="Bearer é"),
            "wrong key": dict(token=_token(role, sub, key="not-the-right-secret-at-all-32bytes")),
            "signed with the other role's key": dict(token=_token(role, sub, key=_secret(other))),
            "alg none": dict(token=_unsigned(role, sub)),
            "HS512": dict(token=_token(role, sub, alg="HS512")),
            "no exp": dict(token=_token(role, sub, drop=("exp",))),
            "no subject": dict(token=_token(role, "")),
            "unknown role": dict(token=jwt.encode({"sub": sub, "role": "root", "exp": int(time.time()) + 60},
                                                  _secret(role), algorithm="HS256")),
        }

    seen = []
    for method, path in _routes():
        role = _role_of(path)
        if (method, path) in PUBLIC:
            r = _call(env, method, path, world)
            assert r.status_code in (200, 404), (method, path, r.status_code)
            continue
        if (method, path) in NOTIFY:  # no bearer token opens them: only WeChat's signature does
            for token in (None, env.admin, env.user("u1001")):
                r = _call(env, method, path, world, token)
                assert r.status_code == 401 and r.json()["code"] == "FAIL", (path, r.text)
            continue
        for name, kw in bad_for(role).items():
            r = _call(env, method, path, world, **kw)
            assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED", (name, method, path, r.text)
        wrong_kind = [env.user("u1001")] if role == "admin" else [auth.issue(r, "ops-1") for r in STAFF]
        for token in wrong_kind:
            r = _call(env, method, path, world, token)
            assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", (method, path, r.text)
        if role == "admin":  # every staff role: allowed, or refused for the route's permission
            view = app.routes[path][method].view_function
            for staff_role in STAFF:
                r = _call(env, method, path, world, auth.issue(staff_role, "ops-1"))
                if (method, path) in DENIED[staff_role]:
                    assert r.status_code == 403 and r.json()["code"] == "PERMISSION_DENIED", \
                        (staff_role, method, path, r.text)
                    assert r.json()["details"] == {"permission": view.permission.value, "role": staff_role}
                else:
                    assert r.status_code not in (401, 403, 500), (staff_role, method, path, r.status_code, r.text)
        else:
            r = _call(env, method, path, world, env.user("u1001"))
            assert r.status_code not in (401, 403, 500), (method, path, r.status_code, r.text)
        if role == "user" and "{order_no}" in path:  # another player's token sees nothing of u1001's order
            r = _call(env, method, path, world, other_user)
            assert r.status_code == 404 and r.json()["code"] == "ORDER_NOT_FOUND", (method, path, r.text)
        elif role == "user" and "{refund_no}" in path:  # nor of u1001's refund
            r = env.api.call(method, path.format(**world), other_user, body={})
            assert r.status_code == 404 and r.json()["code"] == "REFUND_NOT_FOUND", (method, path, r.text)
        seen.append((method, path))
    assert len(seen) == len([r for r in _routes() if _role_of(r[1])])
    # nothing above changed any money
    for key in ("order_no", "other_order_no"):
        env.check_invariants(world[key])
    # the only money that moved: the first staff role's approval of the pending application
    assert env.sim.create_calls() == 1
    assert env.refund(world["refund_no"]).reviewer == "admin:ops-1"
    # every staff role was tried on every staff route
    assert all(DENIED[r] <= set(seen) for r in STAFF)


def test_token_lifetime_limits_and_clock_leeway(env, monkeypatch):
    ok = {
        "23 h lifetime": _token("admin", "ops-1", exp_in=23 * 3600),
        "float times": jwt.encode({"sub": "ops-1", "role": "admin", "iat": time.time(), "exp": time.time() + 60},
                                  _secret("admin"), algorithm="HS256"),
        "nbf reached": _token("admin", "ops-1", nbf=int(time.time()) - 5),
        "iat a little ahead (clock skew)": _token("admin", "ops-1", iat=int(time.time()) + 10),
        "expired a moment ago (clock skew)": _token("admin", "ops-1", exp_in=-5, iat=int(time.time()) - 3600),
        "issued by issue()": auth.issue("admin", "ops-1"),
    }
    for name, token in ok.items():
        r = env.api.get("/api/admin/orders?limit=1", token)
        assert r.status_code == 200, (name, r.text)
    monkeypatch.setenv("MAX_TOKEN_LIFETIME_SECONDS", "600")
    r = env.api.get("/api/admin/orders?limit=1", ok["23 h lifetime"])
    assert r.status_code == 401 and r.json()["message"] == "令牌有效期超过 600 秒，请重新登录", r.text
    assert env.api.get("/api/admin/orders?limit=1", _token("admin", "ops-1", exp_in=600)).status_code == 200
    with pytest.raises(ValueError):
        auth.issue("admin", "ops-1")  # 12 h default: more than this deployment allows
    with pytest.raises(ValueError):
        auth.issue("user", "  ", ttl_seconds=60)


def test_admin_token_issued_for_a_player_cannot_be_upgraded(env, world):
    token = auth.issue("user", "u1001")
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = ".".join([header, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), sig])
    r = env.api.get("/api/admin/orders", forged)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"


def test_player_cannot_reach_another_players_order(env, world):
    other = env.user("u1002")
    r = env.api.post(f"/api/app/orders/{world['order_no']}/refund/apply", other, {"amount": 1, "reason": "x"})
    assert r.status_code == 404 and r.json()["code"] == "ORDER_NOT_FOUND"
    listed = env.api.get(f"/api/app/orders/{world['order_no']}/refunds", other)
    assert listed.status_code == 404
    own = env.api.get(f"/api/app/orders/{world['other_order_no']}/refunds", other)
    assert own.status_code == 200 and own.json()["items"] == []


def _cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/api/admin/orders", "/api/admin/orders?status=2",
                                  "/api/admin/pay/refunds?status=success", "/api/admin/manual-tasks"])
@pytest.mark.parametrize("cursor", ["!!!", _cursor([1]), _cursor("x")])
def test_malformed_cursor_is_a_validation_error(env, path, cursor):
    sep = "&" if "?" in path else "?"
    r = env.api.get(f"{path}{sep}cursor={cursor}", env.admin)
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", r.text


@pytest.mark.parametrize("forged", [{"x": 1}, {"order_no": "abc"}, {"order_no": {"S": "nope"}}])
def test_forged_cursor_is_a_validation_error_not_a_server_error(env, forged):
    r = env.api.get(f"/api/admin/orders?cursor={_cursor(forged)}", env.admin)
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", r.text


@pytest.mark.parametrize("query", ["limit=²", "status=²", "source_type=³"])
def test_unicode_digits_in_integer_parameters_are_refused(env, query):
    r = env.api.get(f"/api/admin/orders?{query}", env.admin)
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", r.text


@pytest.mark.parametrize("raw,ctype", [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"text"', "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b'{"order_no": "X", "amount": 1e400}', "application/json"),
    (b'{"order_no": "X", "amount": 100, "amount": 200, "extra": 1}', "application/json"),
    (b'{"order_no": {"$ne": null}, "amount": 100}', "application/json"),
    (b'{"order_no": "' + b"A" * 100 + b'", "amount": 100}', "application/json"),
    (b'{"order_no": "GB1", "amount": 100, "reason": "' + "长".encode() * 201 + b'"}', "application/json"),
])
def test_hostile_bodies_are_4xx(env, raw, ctype):
    r = env.api.call("POST", "/api/admin/pay/refunds", env.admin, raw=raw, headers={"Content-Type": ctype})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert set(r.json()) <= {"code", "message", "details"}
    assert env.sim.create_calls() == 0


def test_wrong_content_type_is_refused_before_the_handler(env):
    r = env.api.call("POST", "/api/admin/pay/refunds", env.admin, raw=b"<refund><amount>1</amount></refund>",
                     headers={"Content-Type": "application/xml"})
    assert r.status_code == 415, r.text
    assert env.sim.create_calls() == 0


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_bad_idempotency_keys_are_refused(env, key):
    o = env.order(13)
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": o.order_no, "amount": 100},
                     headers={"Idempotency-Key": key})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", r.text
    assert env.sim.create_calls() == 0
