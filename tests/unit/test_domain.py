"""Pure domain rules: no AWS, no HTTP."""
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace as NS

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import refunds as rules
from chalicelib.domain.enums import OrderStatus, PrizeLevel, RefundStatus, ShippingStatus, SourceType, WinnerFlag
from chalicelib.domain.errors import Conflict, ValidationError
from chalicelib.domain.money import fen_to_yuan, pro_rata_cumulative, pro_rata_step, yuan_to_fen

S = RefundStatus
NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)


def test_labels_match_the_shop_plan():
    assert OrderStatus.labels() == {1: "待支付", 2: "已支付", 3: "已取消", 4: "已退款"}
    assert SourceType.labels() == {1: "商城直购", 2: "抽奖票据", 3: "其他"}
    assert ShippingStatus.labels() == {1: "待发货", 2: "已发货", 3: "已签收", 4: "异常"}
    assert WinnerFlag.labels() == {0: "否", 1: "是"}
    assert PrizeLevel.labels() == {1: "S", 2: "A", 3: "B"}
    assert S.SUCCESS.label == "退款成功" and S.PENDING_REVIEW.label == "待审核"
    with pytest.raises(ValueError):
        OrderStatus(9)
    assert OrderStatus(2) is OrderStatus.PAID and OrderStatus.PAID.label == "已支付"


@pytest.mark.parametrize("fen,text", [(0, "0.00"), (5, "0.05"), (1990, "19.90"), (100000, "1000.00"), (-5, "-0.05")])
def test_fen_to_yuan(fen, text):
    assert fen_to_yuan(fen) == text


@pytest.mark.parametrize("text,fen", [("19.9", 1990), ("19.90", 1990), ("0.01", 1), ("7", 700), (" 3.5 ", 350)])
def test_yuan_to_fen(text, fen):
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("bad", ["1.001", "-1", "1e3", "", "abc", "1,00", 19.9])
def test_yuan_to_fen_refuses(bad):
    with pytest.raises(ValueError):
        yuan_to_fen(bad)


def test_fen_to_yuan_refuses_floats():
    with pytest.raises(TypeError):
        fen_to_yuan(19.9)


@given(st.integers(0, 10**6), st.lists(st.integers(1, 10**5), min_size=1, max_size=60))
def test_pro_rata_partials_add_up_exactly(points, parts):
    total = sum(parts)
    restored, cumulative = [], 0
    for p in parts:
        restored.append(pro_rata_step(points, cumulative, p, total))
        cumulative += p
    assert all(r >= 0 for r in restored)
    assert sum(restored) == points
    assert pro_rata_cumulative(points, total // 2, total) <= points


@pytest.mark.parametrize("raw", [0, -1, 1.5, "100", None, True, 10**13])
def test_amount_must_be_positive_integer_fen(raw):
    with pytest.raises(ValidationError):
        rules.parse_amount(raw)


def test_state_machine():
    assert rules.can_transition(S.PENDING_REVIEW, S.SUBMITTED)
    assert rules.can_transition(S.SUBMITTED, S.SUCCESS)
    assert not rules.can_transition(S.SUCCESS, S.CLOSED)
    assert not rules.can_transition(S.REJECTED, S.SUBMITTED)
    assert not rules.can_transition(S.PROCESSING, S.FAILED)
    assert rules.FINAL == {S.SUCCESS, S.CLOSED, S.FAILED, S.REJECTED}
    assert rules.balance_effect(S.PENDING_REVIEW, S.SUBMITTED) == rules.Balance.RESERVE
    assert rules.balance_effect(S.PENDING_REVIEW, S.REJECTED) == rules.Balance.WITHDRAW
    assert rules.balance_effect(S.PROCESSING, S.CLOSED) == rules.Balance.RELEASE
    assert rules.balance_effect(S.SUBMITTED, S.FAILED) == rules.Balance.RELEASE
    assert rules.balance_effect(S.ABNORMAL, S.SUCCESS) == rules.Balance.SETTLE
    assert rules.balance_effect(S.PROCESSING, S.ABNORMAL) == rules.Balance.NONE
    assert {s for s in S if rules.can_transition(s, S.SUCCESS)} == {S.SUBMITTED, S.PROCESSING, S.ABNORMAL, S.OFFLINE_PENDING}


def test_offline_refunds_hold_their_amount_until_paid_or_cancelled():
    for src in (S.SUBMITTED, S.PROCESSING, S.ABNORMAL):
        assert rules.balance_effect(src, S.OFFLINE_PENDING) == rules.Balance.NONE
    assert S.OFFLINE_PENDING in rules.RESERVED and S.OFFLINE_PENDING not in rules.AWAITING_WECHAT
    assert rules.balance_effect(S.OFFLINE_PENDING, S.SUCCESS) == rules.Balance.SETTLE
    assert rules.balance_effect(S.OFFLINE_PENDING, S.CLOSED) == rules.Balance.RELEASE
    assert rules.release_uncounts(S.OFFLINE_PENDING, S.CLOSED) and rules.release_uncounts(S.SUBMITTED, S.FAILED)
    assert not rules.release_uncounts(S.PROCESSING, S.CLOSED)
    assert not rules.can_transition(S.OFFLINE_PENDING, S.PROCESSING)


def test_poll_backoff_doubles_to_a_cap_and_starts_slower_when_abnormal():
    delay = lambda status, n: rules.poll_delay(status, n, poll_after=60, abnormal_every=3600)  # noqa: E731
    assert [delay(S.PROCESSING, n) for n in range(8)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert [delay(S.ABNORMAL, n) for n in range(4)] == [3600, 7200, 14400, 21600]
    assert rules.poll_delay(S.SUBMITTED, 5, poll_after=0, abnormal_every=0) == 0


def _order(**kw):
    base = dict(status=2, refund_count=0, refundable_amount=1000, applicable_amount=1000, actual_amount=1000,
                payment=NS(paid_at=(NOW - timedelta(days=1)).isoformat(), out_trade_no="GB20260101000001"),
                shipping=None, virtual=None,
                points_used=0, coupon_id=None, source_type=1)
    base.update(kw)
    return NS(**base)


def test_refundability_rules():
    assert rules.refund_blocker(_order(), NOW) is None
    assert rules.refund_blocker(_order(status=3), NOW).code == "ORDER_NOT_REFUNDABLE"
    assert rules.refund_blocker(_order(refund_count=50), NOW).code == "REFUND_LIMIT_REACHED"
    old = _order(payment=NS(paid_at=(NOW - timedelta(days=366)).isoformat(), out_trade_no="GB20260101000001"))
    assert rules.refund_blocker(old, NOW).code == "REFUND_WINDOW_EXPIRED"
    for number in ("GB001", "GB 20260101", "G" * 33):  # a number WeChat never takes is never sent to it
        bad = _order(payment=NS(paid_at=(NOW - timedelta(days=1)).isoformat(), out_trade_no=number))
        blocker = rules.refund_blocker(bad, NOW)
        assert (blocker.code, blocker.details) == ("ORDER_NOT_REFUNDABLE", {"out_trade_no": number})
        assert "6-32 位" in blocker.message
    with pytest.raises(Conflict) as exc:
        rules.check_refundable(_order(), 1001, NOW)
    assert exc.value.code == "AMOUNT_EXCEEDS_REFUNDABLE"


def test_approval_needed_for_signed_or_consumed():
    assert rules.approval_reasons(_order()) == ()
    assert rules.approval_reasons(_order(shipping=NS(status=3)))
    assert not rules.approval_reasons(_order(shipping=NS(status=2)))
    assert rules.approval_reasons(_order(virtual=NS(is_consumed=True, revoked=False)))


def test_restoration_plan_full_and_partial():
    order = _order(points_used=5000, coupon_id="C1", source_type=2,
                   shipping=NS(status=2, cancelled=False), virtual=NS(is_consumed=True, revocable=False, revoked=False))
    inventory = [NS(item_id="I1", name="A", status="held", revocable=True),
                 NS(item_id="I2", name="B", status="held", revocable=False),
                 NS(item_id="I3", name="C", status="revoked", revocable=True)]
    full = rules.restoration_plan(order, 1000, 0, inventory)
    assert full.fully_refunded and full.points == 5000 and full.restore_coupon
    assert full.revoke_inventory == ("I1",) and full.mark_shipping_exception and not full.cancel_shipment
    assert sorted(t.type.value for t in full.manual_tasks) == [
        "inventory_not_revocable", "return_to_warehouse", "virtual_not_revocable"]
    part = rules.restoration_plan(order, 300, 0, inventory)
    assert not part.fully_refunded and part.points == 1500 and not part.restore_coupon
    assert part.manual_tasks == () and part.revoke_inventory == ()
    last = rules.restoration_plan(order, 700, 300, inventory)
    assert last.points == 3500 and last.restore_coupon
