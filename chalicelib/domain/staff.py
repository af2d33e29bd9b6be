"""Staff roles: what each role may do, when a refund needs a second person, who that may be,
and the daily allowance. Plain Python: the limits come in as arguments (``config.staff_limits``).

An operator is an *actor* ``"<role>:<subject>"`` (``support:alice``). The person is the subject:
four-eyes and the daily allowance follow the subject, so a change of role does not let someone
approve what they created, nor start a fresh allowance.

``PERMISSIONS`` below is the one table of what each role may do (the README's "Staff roles"
table shows it, checked by tests/unit/test_one_source.py). Admin differs from finance by its
limits (``config.DEFAULT_*``), not its permissions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from .enums import ApprovalRule, Permission, RefundOrigin, StaffRole
from .errors import FourEyesRequired, PermissionDenied, ValidationError
from . import clock
from .money import fen_to_yuan

P = Permission
R = StaffRole

_EVERYONE = frozenset({P.ORDERS_VIEW, P.REFUNDS_PREVIEW, P.REFUNDS_CREATE, P.APPLICATIONS_REVIEW,
                       P.TASKS_COMPLETE})
PERMISSIONS: dict[StaffRole, frozenset[Permission]] = {
    R.SUPPORT: _EVERYONE,
    R.FINANCE: _EVERYONE | {P.REFUNDS_APPROVE, P.REFUNDS_RESOLVE, P.RECONCILE_RUN, P.DATA_EXPORT, P.ACTIVITY_VIEW},
    R.ADMIN: frozenset(Permission),
}
# who may approve above the finance threshold
FINANCE_APPROVERS = frozenset({R.FINANCE, R.ADMIN})
MAX_ACTIVITY_DAYS = 92


def has(role: StaffRole, permission: Permission) -> bool:
    return permission in PERMISSIONS[StaffRole(role)]


def require(role: StaffRole, permission: Permission, message: str | None = None) -> None:
    """Raise 403 PERMISSION_DENIED unless ``role`` has ``permission``."""
    role = StaffRole(role)
    if not has(role, permission):
        raise PermissionDenied(message or f"{role.label}没有“{permission.label}”权限",
                               details={"permission": permission.value, "role": role.value})


def permissions_of(role: StaffRole) -> list[str]:
    """The role's permissions in the order of the Permission enum (for the console)."""
    return [p.value for p in Permission if p in PERMISSIONS[StaffRole(role)]]


def is_staff_role(code) -> bool:
    return isinstance(code, str) and code in StaffRole.labels()


def subject_of(actor: str | None) -> str | None:
    """The person behind an actor ``role:subject`` (None for a player or the system)."""
    if not isinstance(actor, str):
        return None
    role, sep, subject = actor.partition(":")
    return subject if sep and is_staff_role(role) else None


def same_person(a: str | None, b: str | None) -> bool:
    """Two actors are the same operator when both are staff with the same subject."""
    sa, sb = subject_of(a), subject_of(b)
    return sa is not None and sa == sb


# ---------------------------------------------------------------- when a refund needs approval


@dataclass(frozen=True)
class ApprovalReason:
    rule: ApprovalRule
    message: str

    def to_dict(self) -> dict:
        return {"rule": self.rule.value, "rule_label": self.rule.label, "message": self.message}


def creation_reasons(order_reasons: tuple[str, ...], amount: int, role: StaffRole, refund_limit: int
                     ) -> tuple[ApprovalReason, ...]:
    """Why an operator's refund of ``amount`` needs approval: what the order's goods say
    (``domain.refunds.approval_reasons``) and the creator's per-refund limit."""
    reasons = [ApprovalReason(ApprovalRule.ORDER_FULFILLED, text) for text in order_reasons]
    if amount > refund_limit:
        reasons.append(ApprovalReason(
            ApprovalRule.ABOVE_ROLE_LIMIT,
            f"金额 {fen_to_yuan(amount)} 元超过{StaffRole(role).label}单笔限额 {fen_to_yuan(refund_limit)} 元，需审批"))
    return tuple(reasons)


def finance_reason(amount: int, threshold: int) -> ApprovalReason | None:
    if amount <= threshold:
        return None
    return ApprovalReason(ApprovalRule.FINANCE_THRESHOLD,
                          f"金额 {fen_to_yuan(amount)} 元超过 {fen_to_yuan(threshold)} 元，只有财务或管理员可以审批")


def approver_roles(origin: RefundOrigin | str, amount: int, finance_threshold: int) -> list[str]:
    """The roles that may approve a review of ``amount`` (never its creator: four-eyes)."""
    needed = P.APPLICATIONS_REVIEW if RefundOrigin(origin) == RefundOrigin.USER else P.REFUNDS_APPROVE
    roles = [r for r in StaffRole if has(r, needed)]
    if amount > finance_threshold:
        roles = [r for r in roles if r in FINANCE_APPROVERS]
    return [r.value for r in roles]


def review_permission(origin: RefundOrigin | str) -> Permission:
    """A player's application is reviewed with applications.review; an operator's refund that
    needs approval with refunds.approve."""
    return P.APPLICATIONS_REVIEW if RefundOrigin(origin) == RefundOrigin.USER else P.REFUNDS_APPROVE


def check_approver(*, role: StaffRole, actor: str, created_by: str, origin: str, amount: int,
                   finance_threshold: int) -> None:
    """May ``actor`` (of ``role``) approve a review of ``amount`` created by ``created_by``?

    1. four-eyes: never the person who created it (403 FOUR_EYES_REQUIRED);
    2. the review's permission: applications.review for a player's application,
       refunds.approve for an operator's refund (403 PERMISSION_DENIED);
    3. above ``finance_threshold`` only finance or admin (403 PERMISSION_DENIED)."""
    role = StaffRole(role)
    if same_person(actor, created_by):
        raise FourEyesRequired("需审批的退款不能由发起人本人审批，请由其他有权限的人员审批",
                               details={"created_by": created_by})
    require(role, review_permission(origin))
    if amount > finance_threshold and role not in FINANCE_APPROVERS:
        raise PermissionDenied(
            f"金额 {fen_to_yuan(amount)} 元超过 {fen_to_yuan(finance_threshold)} 元，只有财务或管理员可以审批",
            details={"permission": P.REFUNDS_APPROVE.value, "role": role.value,
                     "rule": ApprovalRule.FINANCE_THRESHOLD.value, "finance_threshold": finance_threshold,
                     "approver_roles": [r.value for r in FINANCE_APPROVERS]})


def check_rejecter(*, role: StaffRole, origin: str) -> None:
    """Rejecting needs the review's permission. The creator may reject (withdraw) their own
    refund: it moves no money, so four-eyes does not apply."""
    require(StaffRole(role), review_permission(origin))


# ---------------------------------------------------------------- the daily allowance


def daily_room(limit: int, amount: int) -> int:
    """The most an operator may have used today for ``amount`` more to fit under ``limit``.
    DynamoDB conditions cannot add, so the counter's condition is ``used <= room``."""
    return limit - amount


def parse_day(raw, field: str) -> date:
    try:
        if not isinstance(raw, str) or len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(f"{field} must be a day, YYYY-MM-DD (Beijing time)", details={"field": field}) from None


def day_range(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC instants from the start of Beijing day ``start`` to the end of ``end`` (inclusive)."""
    if end < start:
        raise ValidationError("to must not be before from", details={"field": "to"})
    if (end - start).days >= MAX_ACTIVITY_DAYS:
        raise ValidationError(f"a range covers at most {MAX_ACTIVITY_DAYS} days", details={"field": "to"})
    first = datetime.combine(start, time.min, clock.BEIJING)
    last = datetime.combine(end + timedelta(days=1), time.min, clock.BEIJING)
    return first.astimezone(timezone.utc), last.astimezone(timezone.utc)
