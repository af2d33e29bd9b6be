"""The complaint rules (domain/complaints.py): deadlines, risk, who may do what in which state,
and what a reply or refusal may carry."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.domain import complaints as rules
from chalicelib.domain.enums import ComplaintAction as A, ComplaintRisk, StaffRole
from chalicelib.domain.errors import DomainError

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@dataclass
class C:
    state: str = "PENDING"
    problem_type: str = "REFUND"
    refund_action: str | None = None
    refund_progress: str | None = None
    refund_no: str | None = None


def test_deadlines_follow_the_first_reply():
    d = rules.Deadlines.of(T0, reply_hours=24, resolve_hours=72)
    assert rules.current_deadline("PENDING", False, d) == ("reply", T0 + timedelta(hours=24))
    assert rules.current_deadline("PROCESSING", True, d) == ("resolve", T0 + timedelta(hours=72))
    assert rules.current_deadline("PROCESSED", True, d) is None


def test_risk_and_time_left():
    due = T0 + timedelta(hours=24)
    assert rules.risk(due, T0, 6) == ComplaintRisk.ON_TIME
    assert rules.risk(due, due - timedelta(hours=6), 6) == ComplaintRisk.NEAR
    assert rules.risk(due, due, 6) == ComplaintRisk.OVERDUE
    assert rules.risk(None, T0, 6) == ComplaintRisk.DONE
    assert rules.time_left_seconds(due, due - timedelta(minutes=90)) == 5400
    assert rules.time_left_seconds(due, due + timedelta(seconds=1)) == -1
    assert rules.time_left_text(5400) == "剩余 1 小时 30 分"
    assert rules.time_left_text(-(26 * 3600 + 60)) == "已超时 1 天 2 小时 1 分"


@pytest.mark.parametrize("complaint, action, allowed, words", [
    (C(), A.REPLY, True, None),
    (C(state="PROCESSED"), A.REPLY, False, "已处理完成"),
    (C(problem_type="OTHERS"), A.REFUND, False, "申请退款类"),
    (C(problem_type="OTHERS"), A.COMPLETE, True, None),
    (C(refund_action="REJECT", state="PROCESSING"), A.REFUND, False, "不允许修改"),
    (C(refund_action="APPROVE", refund_no="RK1", refund_progress="approved"), A.REJECT, False, "不允许修改"),
    (C(refund_no="RK1", refund_progress="awaiting_review"), A.REFUND, False, "RK1"),
    (C(refund_progress="approved", refund_action="APPROVE", refund_no="RK1"), A.COMPLETE, False, "到账"),
    (C(refund_action="APPROVE"), A.REFUND, True, None),  # approved at WeChat, refund not yet made: go on
])
def test_what_may_be_done_in_which_state(complaint, action, allowed, words):
    decision = rules.decide(complaint, action, StaffRole.SUPPORT)
    assert decision.allowed is allowed
    if words:
        assert decision.refusal.code == "INVALID_COMPLAINT_STATE" and words in decision.refusal.message


def test_permissions_come_first(monkeypatch):
    from chalicelib.domain import complaints as module
    from chalicelib.domain.enums import Permission

    monkeypatch.setattr(module, "has", lambda role, p: p != Permission.REFUNDS_CREATE)
    refusal = rules.decide(C(), A.REFUND, StaffRole.SUPPORT).refusal
    assert refusal.code == "PERMISSION_DENIED" and refusal.details["permission"] == "refunds.create"
    assert rules.decide(C(), A.REPLY, StaffRole.SUPPORT).allowed


def test_reply_and_reason_limits():
    assert rules.parse_reply("  已为您补发  ") == "已为您补发"
    assert rules.parse_reply("长" * 200) == "长" * 200
    for bad in (None, "", "\u200b", "长" * 201, "a\nb"):
        with pytest.raises(DomainError):
            rules.parse_reply(bad)
    with pytest.raises(DomainError):
        rules.parse_reason("长" * 201)


def test_images_are_checked_by_content():
    b64 = base64.b64encode(PNG).decode()
    [image] = rules.parse_images([b64])
    assert image.kind == "png" and image.filename.endswith(".png") and image.data == PNG
    jpg = rules.parse_images([base64.b64encode(b"\xff\xd8\xff\xe0" + b"1" * 10).decode()])
    assert jpg[0].kind == "jpg"
    assert rules.parse_images(None) == []
    bad = [[b64] * 5, [base64.b64encode(b"GIF89a....").decode()], ["not base64!"], "x", [123],
           [base64.b64encode(PNG + b"\x00" * rules.MAX_IMAGE_BYTES).decode()]]
    for raw in bad:
        with pytest.raises(DomainError) as err:
            rules.parse_images(raw)
        assert err.value.code == "VALIDATION_ERROR" and err.value.details["field"].startswith("images")


def test_action_ids_and_masked_phones():
    one = rules.action_id("2002", A.REPLY, {"content": "好"})
    assert one == rules.action_id("2002", A.REPLY, {"content": "好"})
    assert one != rules.action_id("2002", A.REPLY, {"content": "好的"})
    assert rules.mask_phone("13800138000") == "138****8000" and rules.mask_phone(None) is None
