"""The staff rules (domain/staff.py) and their settings, without AWS."""
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pytest

from chalicelib import config
from chalicelib.adapters.auth import staff_role_from_claim
from chalicelib.domain import clock, staff
from chalicelib.domain.enums import ApprovalRule, Permission, StaffRole
from chalicelib.domain.errors import Conflict, ErrorCode, FourEyesRequired, PermissionDenied, ValidationError

P = Permission

# the table, written out: a change to domain/staff.py must change this too
COMPLAINTS = {"complaints.view", "complaints.handle"}  # the 投诉 desk (issue 23); the phone: finance and admin
TABLE = {
    "support": {"orders.view", "refunds.preview", "refunds.create", "applications.review", "tasks.complete",
                *COMPLAINTS},
    "finance": {"orders.view", "refunds.preview", "refunds.create", "applications.review", "refunds.approve",
                "refunds.resolve", "tasks.complete", "reconcile.run", "data.export", "activity.view", *COMPLAINTS,
                "complaints.view_phone"},
    "admin": {p.value for p in Permission},
}


def test_permission_table():
    assert {r.value: {p.value for p in staff.PERMISSIONS[r]} for r in StaffRole} == TABLE
    assert StaffRole.SUPPORT.label == "客服" and StaffRole.FINANCE.label == "财务" and StaffRole.ADMIN.label == "管理员"
    assert staff.permissions_of(StaffRole.SUPPORT) == ["orders.view", "refunds.preview", "refunds.create",
                                                        "applications.review", "tasks.complete", "complaints.view",
                                                        "complaints.handle"]


def test_missing_permission_is_its_own_403_code():
    with pytest.raises(PermissionDenied) as err:
        staff.require(StaffRole.SUPPORT, P.REFUNDS_RESOLVE)
    assert err.value.code == ErrorCode.PERMISSION_DENIED
    assert err.value.details == {"permission": "refunds.resolve", "role": "support"}
    staff.require(StaffRole.ADMIN, P.RECONCILE_RUN)


@pytest.mark.parametrize("a,b,same", [
    ("support:alice", "support:alice", True),
    ("support:alice", "finance:alice", True),  # the person, not the role
    ("support:alice", "support:bob", False),
    ("user:u1001", "support:u1001", False),  # a player is never the operator
    ("user:u1001", "user:u1001", False),
    ("wechat", "wechat", False),
    (None, "admin:x", False),
])
def test_same_person(a, b, same):
    assert staff.same_person(a, b) is same


def test_creation_reasons_name_their_rule():
    none = staff.creation_reasons((), 20000, StaffRole.SUPPORT, 20000)
    assert none == ()  # at the limit is within it
    both = staff.creation_reasons(("货已签收，需人工审批",), 20001, StaffRole.SUPPORT, 20000)
    assert [r.rule for r in both] == [ApprovalRule.ORDER_FULFILLED, ApprovalRule.ABOVE_ROLE_LIMIT]
    assert "200.01" in both[1].message and "客服" in both[1].message and "200.00" in both[1].message


@dataclass
class _Refund:
    created_by: str
    origin: str
    requested_amount: int
    status: str = "pending_review"
    user_id: str = "u1001"


def _decide(refund, actor, amount=None, threshold=100000):
    return staff.review_actions(refund, staff.Operator(actor, threshold), amount)


def test_approver_rules():
    operators = _Refund(created_by="support:alice", origin="admin", requested_amount=100)
    with pytest.raises(FourEyesRequired):
        _decide(operators, "admin:alice").approve.check()
    with pytest.raises(PermissionDenied) as err:
        _decide(operators, "support:carol").approve.check()
    assert err.value.details["permission"] == "refunds.approve"
    _decide(operators, "finance:bob").approve.check()
    # a player's application: support may approve up to the finance threshold
    application = _Refund(created_by="user:u1001", origin="user", requested_amount=100001)
    _decide(application, "support:carol", amount=100000).approve.check()
    with pytest.raises(PermissionDenied) as err:
        _decide(application, "support:carol").approve.check()
    assert err.value.details["rule"] == "finance_threshold"
    _decide(application, "admin:x").approve.check()
    with pytest.raises(Conflict) as err:
        _decide(application, "admin:x", amount=100002).approve.check()
    assert err.value.code == ErrorCode.AMOUNT_EXCEEDS_REQUESTED
    assert staff.approver_roles("user", 100001, 100000) == ["finance", "admin"]
    assert staff.approver_roles("user", 100000, 100000) == ["support", "finance", "admin"]
    assert staff.approver_roles("admin", 1, 100000) == ["finance", "admin"]


def _allowed(actions) -> dict:
    return {name: d["allowed"] for name, d in actions.to_dict().items()}


def test_review_actions_creator_other_approver_and_support_above_the_threshold():
    refund = _Refund(created_by="support:alice", origin="admin", requested_amount=150000)
    creator = _decide(refund, "finance:alice")  # the person, whatever their role now
    assert _allowed(creator) == {"approve": False, "reject": False, "withdraw": True}
    assert creator.approve.refusal.code == ErrorCode.FOUR_EYES_REQUIRED and creator.rejection is creator.withdraw
    assert creator.to_dict()["approve"] == {"allowed": False, "code": "FOUR_EYES_REQUIRED",
                                            "reason": "需审批的退款不能由发起人本人审批，请由其他有权限的人员审批"}
    assert _allowed(_decide(refund, "support:alice")) == {"approve": False, "reject": False, "withdraw": True}
    other = _decide(refund, "finance:bob")
    assert _allowed(other) == {"approve": True, "reject": True, "withdraw": False}
    assert other.rejection is other.reject and other.to_dict()["approve"] == {"allowed": True, "code": None,
                                                                              "reason": None}
    support = _decide(refund, "support:carol")  # an operator's refund: support lacks refunds.approve
    assert _allowed(support) == {"approve": False, "reject": False, "withdraw": False}
    assert support.approve.refusal.code == ErrorCode.PERMISSION_DENIED
    assert support.withdraw.refusal.message == "只有发起人本人可以撤回该退款"
    # a player's application above the finance threshold: support may reject, not approve
    application = _Refund(created_by="user:u1001", origin="user", requested_amount=150000)
    support = _decide(application, "support:carol")
    assert _allowed(support) == {"approve": False, "reject": True, "withdraw": False}
    assert support.approve.refusal.details["rule"] == "finance_threshold"
    assert "1500.00" in support.approve.refusal.message and "1000.00" in support.approve.refusal.message
    assert _allowed(_decide(application, "support:carol", threshold=150000))["approve"] is True


def test_review_actions_after_the_review_name_the_status():
    decided = _Refund(created_by="support:alice", origin="admin", requested_amount=100, status="rejected")
    for actor in ("support:alice", "finance:bob"):
        actions = _decide(decided, actor).to_dict()
        assert {k: (v["allowed"], v["code"]) for k, v in actions.items()} == {
            k: (False, "INVALID_REFUND_STATE") for k in ("approve", "reject", "withdraw")}
        assert actions["approve"]["reason"] == "退款单当前状态为已拒绝，不能审批"
        assert actions["withdraw"]["reason"] == "退款单当前状态为已拒绝，不能撤回"


def test_beijing_day_and_ranges():
    assert clock.beijing_day(datetime(2026, 11, 26, 15, 59, tzinfo=timezone.utc)) == "2026-11-26"
    assert clock.beijing_day(datetime(2026, 11, 26, 16, 0, tzinfo=timezone.utc)) == "2026-11-27"
    first, last = staff.day_range(date(2026, 11, 26), date(2026, 11, 26))
    assert (first.isoformat(), last.isoformat()) == ("2026-11-25T16:00:00+00:00", "2026-11-26T16:00:00+00:00")
    with pytest.raises(ValidationError):
        staff.day_range(date(2026, 11, 26), date(2026, 11, 25))
    with pytest.raises(ValidationError):
        staff.day_range(date(2026, 1, 1), date(2026, 12, 31))
    today = date(2026, 12, 4)
    for bad in ("2026-11-31", "26-11-2026", 20261126, "2026-11-26T00:00", "2026-W49-1", "2026-338", "0001-01-01",
                "1999-12-31", "2026-12-05", "２０２６-１１-２６", "2026-11-26 "):
        with pytest.raises(ValidationError):
            staff.parse_day(bad, "from", today)
    assert staff.parse_day("2000-01-01", "from", today) == date(2000, 1, 1)
    assert staff.parse_day("2026-12-04", "to", today) == today
    assert staff.daily_room(5000, 700) == 4300


def test_limit_settings(monkeypatch):
    limits = config.staff_limits()
    assert limits.refund == {"support": 20000, "finance": 200000, "admin": 1000000}
    assert limits.finance_approval == 100000
    monkeypatch.setenv("STAFF_DAILY_LIMITS", "support=1, admin=7")
    assert config.staff_limits().daily == {"support": 1, "finance": 2000000, "admin": 7}
    for bad in ("root=1", "support=1.5", "support", "support=-1"):
        monkeypatch.setenv("STAFF_REFUND_LIMITS", bad)
        with pytest.raises(config.ConfigError):
            config.staff_limits()


def test_identity_provider_settings_and_role_mapping(monkeypatch):
    assert config.oidc_settings() is None
    monkeypatch.setenv("OIDC_ISSUER", "https://login.example.com/realms/shop")
    with pytest.raises(config.ConfigError):
        config.oidc_settings()  # an issuer without an audience
    monkeypatch.setenv("OIDC_AUDIENCE", "refund-console")
    monkeypatch.setenv("OIDC_ROLE_MAP", "refund-support=support,refund-finance=finance,ops=admin")
    oidc = config.oidc_settings()
    assert oidc.role_map == {"refund-support": "support", "refund-finance": "finance", "ops": "admin"}
    assert oidc.role_claim == "roles" and oidc.jwks_url is None and oidc.timeout_seconds == 3
    assert staff_role_from_claim(["refund-support", "other"], oidc.role_map) == "support"
    assert staff_role_from_claim(["refund-support", "refund-finance"], oidc.role_map) == "finance"
    assert staff_role_from_claim("ops", oidc.role_map) == "admin"
    assert staff_role_from_claim(["support"], oidc.role_map) is None  # only mapped names count
    assert staff_role_from_claim({"ops": 1}, oidc.role_map) is None
    monkeypatch.setenv("OIDC_ROLE_MAP", "refund-support=root")
    with pytest.raises(config.ConfigError):
        config.oidc_settings()


def test_a_case_insensitive_issuers_subjects_compare_by_compatibility_form_and_case():
    assert staff.normalise_subject("Ａｌｉｃｅ", True) == staff.normalise_subject("ALICE", True) == "alice"
    assert staff.normalise_subject("ﬁona", True) == "fiona"  # a ligature is its letters
    assert staff.normalise_subject("Straße", True) == "strasse"  # casefold, not lower
    assert staff.normalise_subject("Ａｌｉｃｅ", False) == "Ａｌｉｃｅ"  # a case-sensitive issuer's, as issued


def test_an_unmapped_provider_identity_is_not_the_local_person_of_the_same_name():
    assert staff.person_of_identity("local", "alice") == "alice"
    assert staff.person_of_identity("https://login.shop.example", "alice") == "sso:alice"
    assert not staff.same_person("support:alice", "finance:sso:alice")


def test_a_person_may_not_review_a_refund_of_a_player_account_they_hold():
    application = _Refund(created_by="user:u1001", origin="user", requested_amount=100, user_id="u1001")
    holder = staff.Operator("finance:fay", 100000, frozenset({"u1001"}))
    actions = staff.review_actions(application, holder)
    for decision in (actions.approve, actions.reject):
        with pytest.raises(FourEyesRequired) as err:
            decision.check()
        assert err.value.details == {"rule": "own_player_account", "user_id": "u1001"}
    staff.review_actions(application, staff.Operator("finance:bob", 100000, frozenset({"u2002"}))).approve.check()
    assert staff.own_account_refusal(holder, "u2002") is None
