"""Subscription messages (订阅消息): one message per consent, on approve, reject (or the player's own
withdrawal), success; sent by the poll schedule through the simulator's mini-program API, retried
when a send fails, never in the refund's way."""
from __future__ import annotations

import pytest

from chalicelib.adapters import miniprogram
from chalicelib.adapters import repository as repo
from chalicelib.domain.errors import DomainError
from chalicelib.domain import subscriptions as subscription_rules
from chalicelib.services import notifications, player_messages, refunds

ADMIN = "admin:ops-1"
REVIEW, ARRIVED = "TPL-REVIEW-RESULT", "TPL-REFUND-ARRIVED"
OPENID = "oSIM-u1001"
TEMPLATES = {REVIEW: "review", ARRIVED: "refunded"}


def _apply(order_no, answers):
    consents = subscription_rules.parse({"errMsg": "requestSubscribeMessage:ok", **answers}, TEMPLATES)
    return refunds.apply_for_refund(user_id="u1001", order_no=order_no, amount=1000, reason="不想要了",
                                    idempotency_key=None, subscriptions=consents).refund


def test_apply_withdraw_apply_approve_one_message_per_consent(case):
    mp = case.sim.miniprogram
    order = case.order(1)
    mp.grant(OPENID, REVIEW)  # the player accepted the review template only
    first = _apply(order.order_no, {REVIEW: "accept", ARRIVED: "reject"})
    assert first.subscriptions == {REVIEW: "granted"}
    refunds.withdraw_application(user_id="u1001", refund_no=first.refund_no, reason="想再看看")
    assert repo.get_refund(first.refund_no).subscriptions == {REVIEW: "used"}

    mp.grant(OPENID, REVIEW)
    mp.grant(OPENID, ARRIVED)
    second = _apply(order.order_no, {REVIEW: "accept", ARRIVED: "accept"})
    refunds.approve(actor=ADMIN, refund_no=second.refund_no, amount=None)
    notifications.handle_refund_event(case.notification_for(second.refund_no))
    assert repo.get_refund(second.refund_no).status == "success"
    assert repo.get_refund(second.refund_no).subscriptions == {REVIEW: "used", ARRIVED: "used"}

    report = player_messages.send_due()
    assert report.to_dict() == {"sent": 3, "retried": 0, "given_up": 0}
    sent = mp.sent()
    told = sorted((m["template_id"], m["data"]["thing1"]["value"]) for m in sent
                  if m["data"]["character_string3"]["value"] == second.refund_no)
    assert told == sorted([(REVIEW, "退款申请已通过"), (ARRIVED, "退款已到账")])
    withdrawn = [m for m in sent if m["data"]["character_string3"]["value"] == first.refund_no]
    assert [(m["template_id"], m["data"]["thing1"]["value"]) for m in withdrawn] == [(REVIEW, "退款申请未通过")]
    assert all(m["touser"] == OPENID and m["data"]["amount2"]["value"] == "10.00元" for m in sent)
    assert player_messages.send_due().sent == 0 and len(mp.sent()) == 3  # each consent used once
    assert mp.token_calls == 1  # the access token is cached


def test_a_failed_send_is_retried_and_never_blocks_the_refund(case):
    mp = case.sim.miniprogram
    order = case.order(1)
    mp.grant(OPENID, REVIEW)
    mp.fail_next([-1])  # "system busy"
    applied = _apply(order.order_no, {REVIEW: "accept"})
    approved = refunds.approve(actor=ADMIN, refund_no=applied.refund_no, amount=None)
    assert approved.status in ("submitted", "processing")  # told or not, the refund goes on
    assert player_messages.send_due().to_dict() == {"sent": 0, "retried": 1, "given_up": 0}
    mp.expire_tokens()  # the cached token is refused (42001): a new one is asked for, once
    assert player_messages.send_due().sent == 1
    assert mp.token_calls == 2 and len(mp.sent()) == 1


def test_a_send_without_consent_at_wechat_is_given_up(case):
    order = case.order(1)
    applied = _apply(order.order_no, {REVIEW: "accept"})  # but WeChat holds no consent (43101)
    refunds.reject(actor=ADMIN, refund_no=applied.refund_no, reason="不符合退款条件")
    assert player_messages.send_due().to_dict() == {"sent": 0, "retried": 0, "given_up": 1}
    assert player_messages.send_due().to_dict() == {"sent": 0, "retried": 0, "given_up": 0}


def test_bad_subscriptions_are_refused():
    for bad in ([], {"TPL-UNKNOWN": "accept"}, {REVIEW: "yes"}):
        with pytest.raises(DomainError) as err:
            subscription_rules.parse(bad, TEMPLATES)
        assert err.value.code.value == "VALIDATION_ERROR"
    assert subscription_rules.parse({REVIEW: "ban", ARRIVED: "filter"}, TEMPLATES) is None


def test_cgi_bin_token_replaces_the_previous_one_but_stable_token_does_not(case):
    """Reality differs from "a token is good for two hours": each cgi-bin/token call invalidates the
    previous token; the service uses stable_token, which answers the same token while it is valid."""
    import requests

    base = case.sim.base_url
    q = {"grant_type": "client_credential", "appid": case.sim.miniprogram.appid, "secret": "sim-app-secret"}
    old = requests.get(f"{base}/cgi-bin/token", params=q, timeout=5).json()["access_token"]
    requests.get(f"{base}/cgi-bin/token", params=q, timeout=5)
    refused = requests.post(f"{base}/cgi-bin/message/subscribe/send", params={"access_token": old},
                            json={"touser": OPENID, "template_id": REVIEW, "data": {}}, timeout=5).json()
    assert refused["errcode"] == 40001
    a = requests.post(f"{base}/cgi-bin/stable_token", json=q, timeout=5).json()["access_token"]
    b = requests.post(f"{base}/cgi-bin/stable_token", json=q, timeout=5).json()["access_token"]
    assert a == b
    assert miniprogram.access_token(renew=True) == a
