"""WeChat's refund vocabulary against the domain's: every refund status and refund event WeChat
can send maps to a refund status the domain can move to, and the domain maps nothing WeChat does
not send. A status added on one side only fails here."""
from __future__ import annotations

import pytest

from chalicelib.adapters.wechat.results import REFUND_EVENT_TYPES, REFUND_STATUSES, RefundResult
from chalicelib.domain import refunds as rules
from chalicelib.domain.enums import RefundStatus
from chalicelib.services.outcomes import outcome_from_result
from wechatpay_sim.state import OUTCOMES as SIM_OUTCOMES

S = RefundStatus


def wechat_refund(status_field: str, status: str, **over) -> RefundResult:
    body = {"refund_id": "503", "out_refund_no": "R1", status_field: status,
            "success_time": "2026-01-01T10:00:00+08:00", "user_received_account": "支付用户零钱",
            "amount": {"total": 1000, "refund": 500}}
    body.update(over)
    return RefundResult.from_wechat(body, status_field=status_field)


def test_the_domain_maps_exactly_the_statuses_wechat_sends():
    assert set(rules.WECHAT_STATUS) == set(REFUND_STATUSES)


def test_each_refund_event_means_the_status_it_names():
    assert set(rules.NOTIFY_EVENTS) == set(REFUND_EVENT_TYPES)
    for event in REFUND_EVENT_TYPES:
        assert rules.NOTIFY_EVENTS[event] == rules.WECHAT_STATUS[event.removeprefix("REFUND.")]


def test_the_simulator_speaks_the_same_vocabulary():
    # written from the same documentation independently: a refund is PROCESSING, then one of its outcomes
    assert {"PROCESSING", *SIM_OUTCOMES} == set(REFUND_STATUSES)
    assert {f"REFUND.{outcome}" for outcome in SIM_OUTCOMES} == set(REFUND_EVENT_TYPES)


@pytest.mark.parametrize("status_field", ["status", "refund_status"])  # a query answer, a notification
@pytest.mark.parametrize("status", REFUND_STATUSES)
def test_every_status_wechat_sends_is_an_outcome_the_domain_can_apply(status_field, status):
    outcome = outcome_from_result(wechat_refund(status_field, status), "detail")
    assert outcome.status == rules.WECHAT_STATUS[status]
    for waiting in rules.AWAITING_WECHAT:  # the same status again is a no-op, anything else a legal move
        assert outcome.status == waiting or outcome.status in rules.TRANSITIONS[waiting], (status, waiting)


def test_a_success_paid_to_the_merchant_is_an_offline_refund_the_domain_can_apply():
    outcome = outcome_from_result(wechat_refund("status", "SUCCESS", user_received_account="商户结算银行账户"), "d")
    assert outcome.status == S.OFFLINE_PENDING
    assert all(outcome.status in rules.TRANSITIONS[waiting] for waiting in rules.AWAITING_WECHAT)


@pytest.mark.parametrize("status", ["REFUNDCLOSE", "REVOKED", "success", None])
def test_a_status_outside_the_vocabulary_is_refused_not_guessed(status):
    with pytest.raises(ValueError):
        wechat_refund("status", status)
