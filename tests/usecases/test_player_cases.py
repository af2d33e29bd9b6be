"""A player's own refunds: the list over all their orders (paged), and withdrawing an
application by the staff withdrawal's path."""
from __future__ import annotations

import pytest

from chalicelib.adapters import repository as repo
from chalicelib.domain.errors import DomainError
from chalicelib.services import queries, refunds, staff

ADMIN = "admin:ops-1"


def _apply(order_no: str, amount: int, user: str = "u1001"):
    return refunds.apply_for_refund(user_id=user, order_no=order_no, amount=amount, reason="不想要了",
                                    idempotency_key=None).refund


def test_withdraw_moves_no_money_and_the_amount_is_applicable_again(case):
    order = case.order(1)
    applied = _apply(order.order_no, order.actual_amount)
    assert repo.get_order(order.order_no).requested_amount == order.actual_amount
    with pytest.raises(DomainError) as other:
        refunds.withdraw_application(user_id="u1002", refund_no=applied.refund_no, reason="x")
    assert other.value.code.value == "REFUND_NOT_FOUND"  # another player's refund is not theirs to see

    withdrawn = refunds.withdraw_application(user_id="u1001", refund_no=applied.refund_no, reason="想再看看")
    assert withdrawn.status == "rejected" and withdrawn.reviewer == "user:u1001"
    assert withdrawn.events[-1].detail == "发起人撤回：想再看看"
    after = repo.get_order(order.order_no)
    assert after.requested_amount == 0 and not after.open_application and after.reserved_amount == 0
    assert case.sim.create_calls() == 0
    again = refunds.withdraw_application(user_id="u1001", refund_no=applied.refund_no, reason="想再看看")
    assert again.status == "rejected" and len(again.events) == len(withdrawn.events)  # a retry changes nothing
    with pytest.raises(DomainError) as late:
        refunds.approve(actor=ADMIN, refund_no=applied.refund_no, amount=None)
    assert late.value.code.value == "INVALID_REFUND_STATE"

    second = _apply(order.order_no, order.actual_amount)  # the whole amount may be asked again
    approved = refunds.approve(actor=ADMIN, refund_no=second.refund_no, amount=None)
    assert approved.status in ("submitted", "processing")
    with pytest.raises(DomainError) as too_late:
        refunds.withdraw_application(user_id="u1001", refund_no=second.refund_no, reason="算了")
    assert too_late.value.code.value == "INVALID_REFUND_STATE"  # only while pending review
    case.check_invariants(order.order_no)


def test_a_player_cannot_withdraw_an_operators_refund(case):
    order = case.order(3)  # u1003's, signed for: an operator's refund opens a review
    created = refunds.create_admin_refund(actor=ADMIN, order_no=order.order_no, amount=100, reason="补偿",
                                          idempotency_key=None)
    assert created.refund.status == "pending_review"
    with pytest.raises(DomainError) as refused:
        refunds.withdraw_application(user_id="u1003", refund_no=created.refund.refund_no, reason="x")
    assert refused.value.code.value == "PERMISSION_DENIED"
    assert repo.get_refund(created.refund.refund_no).status == "pending_review"


def test_my_refunds_page_past_the_default_size_newest_first(case):
    order = case.order(1)
    made = []
    for _ in range(23):  # apply and withdraw: each leaves one refund in the player's history
        refund = _apply(order.order_no, 100)
        refunds.withdraw_application(user_id="u1001", refund_no=refund.refund_no, reason="撤回")
        made.append(refund.refund_no)
    pending = _apply(order.order_no, 100)
    made.append(pending.refund_no)
    _apply(case.order(3).order_no, 100, user="u1003")  # another player's stays out

    first = queries.my_refunds("u1001", limit=20, cursor=None)
    assert len(first["items"]) == 20 and first["next_cursor"]
    rest = queries.my_refunds("u1001", limit=20, cursor=first["next_cursor"])
    assert rest["next_cursor"] is None
    listed = [x["refund_no"] for x in first["items"] + rest["items"]]
    assert sorted(listed) == sorted(made) and len(set(listed)) == len(made)
    created = [x["created_at"] for x in first["items"] + rest["items"]]
    assert created == sorted(created, reverse=True)

    top = next(x for x in first["items"] if x["refund_no"] == pending.refund_no)
    assert top["can_withdraw"] is True and top["status_label"] == "待审核"
    assert top["payer_refund"] is None and top["coupon_refund"] is None  # WeChat has said nothing yet
    old = next(x for x in first["items"] + rest["items"] if x["refund_no"] == made[0])
    assert old["can_withdraw"] is False
    assert [(t["status"], t["by"]) for t in old["timeline"]] == [("pending_review", "player"), ("rejected", "player")]
    assert old["timeline"][1]["status_label"] == "已拒绝" and old["timeline"][1]["from_status"] == "pending_review"
    with pytest.raises(DomainError) as bad:
        queries.my_refunds("u1003", limit=20, cursor=first["next_cursor"])  # another player's cursor
    assert bad.value.code.value == "VALIDATION_ERROR"

    # the console's customer view reads the same index, as staff see refunds (with their history)
    operator = staff.operator(ADMIN)
    seen = queries.user_refunds("u1001", limit=20, cursor=None, operator=operator)
    more = queries.user_refunds("u1001", limit=20, cursor=seen["next_cursor"], operator=operator)
    assert len(seen["items"]) == 20 and more["next_cursor"] is None and seen["user"]["display_name"] == "小明"
    assert sorted(x["refund_no"] for x in seen["items"] + more["items"]) == sorted(made)
    assert seen["items"][0]["events"][0]["to"] == "pending_review" and seen["items"][0]["claim"] is None


def test_the_cash_and_coupon_parts_once_wechat_said_them(case):
    order = case.order(1)
    applied = _apply(order.order_no, 1000)
    refunds.approve(actor=ADMIN, refund_no=applied.refund_no, amount=None)
    from chalicelib.services import notifications

    notifications.handle_refund_event(case.notification_for(applied.refund_no))
    item = queries.my_refunds("u1001", limit=5, cursor=None)["items"][0]
    assert item["status"] == "success"
    assert item["payer_refund"] is not None and item["payer_refund"] + (item["coupon_refund"] or 0) == 1000
    assert [t["by"] for t in item["timeline"]][:2] == ["player", "staff"]
