"""One person is one person, through the running stack: a sign-in identity is (issuer, subject),
the staff directory (or the provider's person claim) says which person it is, and four-eyes, the
daily allowance and the activity log go by the person. Subjects of a case-insensitive issuer are
compared NFKC + casefold. A person may not act on a player account they hold. The identity
provider is served on 127.0.0.1 (tests/oidc.py)."""
from __future__ import annotations

import io

import pytest

from chalicelib.adapters import directory
from deploy import staff_directory
from tests.oidc import idp  # noqa: F401 - the fixture


@pytest.fixture(autouse=True)
def fresh_directory(env):
    env._set_env(STAFF_DIRECTORY_CACHE_SECONDS="0")
    directory.forget()


def _create(env, token, n: int, amount: int) -> dict:
    r = env.api.post("/api/admin/pay/refunds", token, {"order_no": env.order(n).order_no, "amount": amount})
    assert r.status_code == 201, r.text
    return r.json()


def _approve(env, token, refund_no: str):
    return env.api.post(f"/api/admin/pay/refunds/{refund_no}/approve", token, {})


def _me(env, token) -> dict:
    r = env.api.get("/api/admin/me", token)
    assert r.status_code == 200, r.text
    return r.json()


def _link(*args: str) -> None:
    assert staff_directory.main(["--stage", "local", *args], out=io.StringIO()) == 0


def test_a_provider_alice_and_a_local_alice_are_two_people_until_the_directory_says_one(env, idp):
    local = env.staff("support", "alice")
    sso = idp.token("k1", sub="alice")  # finance at the shop's identity provider
    assert _me(env, sso)["person"] == "sso:alice" and _me(env, local)["person"] == "alice"
    first = _create(env, local, 11, 30000)  # above support's limit: waits for approval
    assert first["status"] == "pending_review"
    assert _approve(env, sso, first["refund_no"]).status_code == 200  # another person approves
    _create(env, local, 13, 500)  # sent straight to WeChat: local alice's allowance
    assert _me(env, sso)["limits"]["daily_used"] == 30000  # what sso:alice's approval sent
    assert _me(env, local)["limits"]["daily_used"] == 500

    _link("link", "--issuer", idp.issuer, "--subject", "alice", "--person", "alice")
    assert _me(env, sso)["person"] == "alice" and _me(env, sso)["actor"] == "finance:alice"
    assert _me(env, sso)["limits"]["daily_used"] == 500  # one person, one allowance: alice's
    second = _create(env, local, 11, 25000)
    r = _approve(env, sso, second["refund_no"])
    assert r.status_code == 403 and r.json()["code"] == "FOUR_EYES_REQUIRED"
    assert env.refund(second["refund_no"]).status == "pending_review"


def test_one_human_under_two_subjects_is_one_person(env):
    _link("link", "--issuer", "local", "--subject", "a.wang", "--person", "alice")
    alice, also_alice, bob = env.staff("support", "alice"), env.staff("finance", "a.wang"), env.staff("finance", "bob")
    pending = _create(env, alice, 11, 30000)
    r = _approve(env, also_alice, pending["refund_no"])
    assert r.status_code == 403 and r.json()["code"] == "FOUR_EYES_REQUIRED"
    detail = env.api.get(f"/api/admin/pay/refunds/{pending['refund_no']}", also_alice).json()
    assert detail["actions"]["approve"]["allowed"] is False and detail["actions"]["withdraw"]["allowed"] is True
    # the same person may withdraw it, under either subject
    r = env.api.post(f"/api/admin/pay/refunds/{pending['refund_no']}/reject", also_alice, {"reason": "撤回"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    _create(env, also_alice, 13, 700)
    activity = env.api.get("/api/admin/activity?operator=alice", bob).json()["items"]
    assert [(a["actor"], a["action"]) for a in activity] == [("support:alice", "created"),
                                                            ("finance:alice", "withdrawn"),
                                                            ("finance:alice", "created")]


def test_case_and_width_do_not_make_another_person(env):
    upper, wide = env.staff("support", "Alice"), env.staff("finance", "ａｌｉｃｅ")
    assert _me(env, wide)["person"] == "alice" and _me(env, upper)["subject"] == "alice"
    pending = _create(env, upper, 11, 30000)
    assert env.refund(pending["refund_no"]).created_by == "support:alice"
    r = _approve(env, wide, pending["refund_no"])
    assert r.status_code == 403 and r.json()["code"] == "FOUR_EYES_REQUIRED"
    _create(env, upper, 13, 600)
    assert _me(env, env.staff("admin", "ALICE"))["limits"]["daily_used"] == 600


def test_subjects_of_a_case_sensitive_issuer_stay_as_issued(env, idp):
    """A provider whose subjects are opaque ids (the default for OIDC) may issue "Ab" and "ab"
    to two people."""
    upper, lower = idp.token("k1", sub="Ab"), idp.token("k1", sub="ab", roles=("shop-refund-support",))
    assert _me(env, upper)["person"] == "sso:Ab" and _me(env, lower)["person"] == "sso:ab"
    pending = _create(env, lower, 11, 30000)
    assert _approve(env, upper, pending["refund_no"]).status_code == 200
    env._set_env(CASE_INSENSITIVE_ISSUERS=f"local,{idp.issuer}")  # configured as case-insensitive
    assert _me(env, upper)["person"] == "sso:ab"


def test_a_person_cannot_act_on_a_player_account_they_hold(env):
    order = env.order(5)  # u1004's
    _link("players", "--person", "fay", order.user_id)
    fay, bob = env.staff("finance", "fay"), env.staff("finance", "bob")
    r = env.api.post(f"/api/app/orders/{order.order_no}/refund/apply", env.user(order.user_id),
                     {"amount": 500, "reason": "不想要了"})
    assert r.status_code == 201, r.text
    application = r.json()["refund_no"]
    for verb, body in (("approve", {}), ("reject", {"reason": "不同意"})):
        r = env.api.post(f"/api/admin/pay/refunds/{application}/{verb}", fay, body)
        assert r.status_code == 403 and r.json()["code"] == "FOUR_EYES_REQUIRED", r.text
        assert r.json()["details"]["rule"] == "own_player_account"
    shown = env.api.get(f"/api/admin/pay/refunds/{application}", fay).json()["actions"]
    assert not shown["approve"]["allowed"] and not shown["reject"]["allowed"]
    r = env.api.post("/api/admin/pay/refunds", fay, {"order_no": order.order_no, "amount": 100})
    assert r.status_code == 403 and r.json()["code"] == "FOUR_EYES_REQUIRED"
    assert env.fresh(order.order_no).reserved_amount == 0  # nothing written
    assert _approve(env, bob, application).status_code == 200  # someone else may


def test_a_broken_identity_provider_answers_503(env, idp):
    idp.jwks_body = b"<html>maintenance</html>"
    r = env.api.get("/api/admin/me", idp.token("k1"))
    assert r.status_code == 503 and r.json()["code"] == "UPSTREAM_UNAVAILABLE"


def test_the_directory_tool_shows_what_a_token_will_be(env, capsys):
    _link("link", "--issuer", "local", "--subject", "Ｂob", "--person", "Robert")
    _link("players", "--person", "robert", "u1001")
    assert staff_directory.main(["--stage", "local", "show", "--issuer", "local", "--subject", "BOB"]) == 0
    assert capsys.readouterr().out.strip() == "local bob -> robert; holds ['u1001']"
    assert _me(env, env.staff("support", "bob"))["person"] == "robert"
    assert directory.person_of("local", "bob") == "robert"
