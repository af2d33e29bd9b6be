"""Minors' refunds (未成年人消费): a guardian's claim for the whole order, reviewed by two different
people in its own queue, refunded in full (opened boxes and consumed goods included: restoration
revokes what it can and leaves tasks for what cannot come back)."""
from __future__ import annotations

import pytest

from chalicelib.adapters import repository as repo
from chalicelib.domain import minors
from chalicelib.domain.errors import DomainError
from chalicelib.services import notifications, queries, refunds, restoration, staff

FIRST, SECOND = "support:alice", "admin:ops-2"
CLAIM = {"statement": "孩子 10 岁，未经同意用我的微信购买了抽奖券", "relationship": "mother",
         "evidence": ["https://img.example.com/id-card.jpg", "media_abc123"]}


def _claim(order, amount=None):
    return refunds.apply_for_refund(user_id=order.user_id, order_no=order.order_no, amount=amount, reason="未成年人消费",
                                    idempotency_key=None, claim=minors.parse_claim(CLAIM)).refund


def test_a_guardians_claim_is_reviewed_by_a_second_person_and_refunded_in_full(case):
    order = case.order(6)  # u1005's lottery: one prize held (can be revoked), one consumed
    ordinary = refunds.apply_for_refund(user_id="u1005", order_no=case.order(11).order_no, amount=100,
                                        reason="不想要了", idempotency_key=None).refund
    with pytest.raises(DomainError) as partial:
        _claim(order, amount=order.actual_amount - 1)
    assert partial.value.code.value == "VALIDATION_ERROR"  # a minor's claim is for the whole order
    claim = _claim(order)
    assert claim.requested_amount == order.actual_amount and claim.application_type == "minor"
    assert claim.guardian["relationship_label"] == "母亲" and len(claim.guardian["evidence"]) == 2

    queue = queries.minor_claims(status="pending_review", limit=20, cursor=None, operator=staff.operator(FIRST))
    assert [x["refund_no"] for x in queue["items"]] == [claim.refund_no]  # the ordinary application is not in it
    assert queue["items"][0]["claim"]["type_label"] == "未成年人消费"

    first = refunds.approve(actor=FIRST, refund_no=claim.refund_no, amount=None)
    assert first.status == "pending_review" and first.first_review["by"] == FIRST
    assert case.sim.create_calls() == 0  # a first review moves no money
    with pytest.raises(DomainError) as again:
        refunds.approve(actor=FIRST, refund_no=claim.refund_no, amount=None)
    assert again.value.code.value == "FOUR_EYES_REQUIRED"
    view = queries.minor_claims(status="pending_review", limit=20, cursor=None, operator=staff.operator(FIRST))
    assert view["items"][0]["actions"]["approve"]["code"] == "FOUR_EYES_REQUIRED"  # what the console shows
    with pytest.raises(DomainError) as partly:
        refunds.approve(actor=SECOND, refund_no=claim.refund_no, amount=claim.requested_amount - 1)
    assert partly.value.code.value == "VALIDATION_ERROR"

    approved = refunds.approve(actor=SECOND, refund_no=claim.refund_no, amount=None)
    assert approved.status in ("submitted", "processing") and approved.amount == order.actual_amount
    notifications.handle_refund_event(case.notification_for(claim.refund_no))
    outcome = restoration.restore(claim.refund_no, order.order_no)
    assert outcome["fully_refunded"] and "INV-6-1" in outcome["revoke_inventory"]
    after = repo.get_order(order.order_no)
    assert after.refunded_amount == order.actual_amount and after.status == 4  # 已退款
    assert repo.get_refund(ordinary.refund_no).status == "pending_review"  # untouched, its own queue
    case.check_invariants(order.order_no)


def test_the_claims_report_pages_past_its_default_size(case):
    order = case.order(6)
    made = []
    for _ in range(21):
        claim = _claim(order)
        refunds.withdraw_application(user_id=order.user_id, refund_no=claim.refund_no, reason="撤回")
        made.append(claim.refund_no)
    refunds.withdraw_application(user_id="u1005", reason="撤回", refund_no=refunds.apply_for_refund(
        user_id="u1005", order_no=order.order_no, amount=100, reason="x", idempotency_key=None).refund.refund_no)
    operator = staff.operator(SECOND)
    first = queries.minor_claims(status="rejected", limit=20, cursor=None, operator=operator)
    assert len(first["items"]) == 20 and first["next_cursor"]
    rest = queries.minor_claims(status="rejected", limit=20, cursor=first["next_cursor"], operator=operator)
    assert rest["next_cursor"] is None
    assert sorted(x["refund_no"] for x in first["items"] + rest["items"]) == sorted(made)


def test_a_claim_needs_the_guardians_statement_relationship_and_evidence():
    for bad in (None, {"statement": "x", "relationship": "uncle", "evidence": ["a"]},
                {"statement": "", "relationship": "father", "evidence": ["a"]},
                {"statement": "x", "relationship": "father", "evidence": []},
                {"statement": "x", "relationship": "father", "evidence": ["a"] * 10},
                {"statement": "x", "relationship": "father", "evidence": ["a"], "age": 9}):
        with pytest.raises(DomainError) as err:
            minors.parse_claim(bad)
        assert err.value.code.value == "VALIDATION_ERROR"
