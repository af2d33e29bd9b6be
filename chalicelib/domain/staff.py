"""Staff roles: what each role may do, when a refund needs a second person, who that may be,
what an operator may do with a refund under review (``review_actions``), and the daily allowance. Plain Python: the limits come in as arguments (``config.staff_limits``).

An operator is an *actor* ``"<role>:<person>"`` (``support:alice``). A sign-in identity is an
(issuer, subject) pair; ``person_of_identity`` and the staff directory map it to the person, so one
human under two identities (the shop's identity provider and a shared-secret token, or two
subjects) is one person. Four-eyes, the daily allowance and the activity log follow the person,
so neither a change of role nor a second account lets someone approve what they created or start
a fresh allowance; and a person may not act on the refunds of a player account they hold.

``PERMISSIONS`` below is the one table of what each role may do (the README's "Staff roles"
table shows it, checked by tests/unit/test_one_source.py). Admin differs from finance by its
limits (``config.DEFAULT_*``), not its permissions.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from . import clock
from .enums import ApprovalRule, Permission, RefundOrigin, RefundStatus, StaffRole
from .errors import DomainError, ErrorCode, FourEyesRequired, PermissionDenied, conflict, invalid
from .money import fen_to_yuan
from . import minors
from .refunds import state_refusal

P = Permission
R = StaffRole

_EVERYONE = frozenset({P.ORDERS_VIEW, P.REFUNDS_PREVIEW, P.REFUNDS_CREATE, P.APPLICATIONS_REVIEW,
                       P.TASKS_COMPLETE, P.COMPLAINTS_VIEW, P.COMPLAINTS_HANDLE})
PERMISSIONS: dict[StaffRole, frozenset[Permission]] = {
    R.SUPPORT: _EVERYONE,
    R.FINANCE: _EVERYONE | {P.REFUNDS_APPROVE, P.REFUNDS_RESOLVE, P.RECONCILE_RUN, P.DATA_EXPORT, P.ACTIVITY_VIEW,
                            P.COMPLAINTS_VIEW_PHONE},
    R.ADMIN: frozenset(Permission),
}
# who may approve above the finance threshold
FINANCE_APPROVERS = frozenset({R.FINANCE, R.ADMIN})
MAX_ACTIVITY_DAYS = 92


def has(role: StaffRole, permission: Permission) -> bool:
    return permission in PERMISSIONS[StaffRole(role)]


def permission_denied(role: StaffRole, permission: Permission) -> PermissionDenied:
    """403 PERMISSION_DENIED: ``role`` lacks ``permission``."""
    role = StaffRole(role)
    return PermissionDenied(f"{role.label}没有“{permission.label}”权限",
                            details={"permission": permission.value, "role": role.value})


def require(role: StaffRole, permission: Permission) -> None:
    """Raise 403 PERMISSION_DENIED unless ``role`` has ``permission``."""
    if not has(role, permission):
        raise permission_denied(role, permission)


def permissions_of(role: StaffRole) -> list[str]:
    """The role's permissions in the order of the Permission enum (for the console)."""
    return [p.value for p in Permission if p in PERMISSIONS[StaffRole(role)]]


def is_staff_role(code) -> bool:
    return isinstance(code, str) and code in StaffRole.labels()


# ---------------------------------------------------------------- who a person is

LOCAL_ISSUER = "local"  # the shared-secret (HS256) tokens' issuer
SSO_PERSON_PREFIX = "sso:"  # an identity-provider identity nobody mapped to a person


def normalise_subject(subject: str, case_insensitive: bool) -> str:
    """The subject as its issuer compares it: where the issuer treats names case-insensitively,
    Unicode compatibility forms and case do not make another person (``Alice``, ``ａｌｉｃｅ`` and
    ``alice`` are one); elsewhere the subject is exactly as issued."""
    return unicodedata.normalize("NFKC", subject).casefold() if case_insensitive else subject


def person_of_identity(issuer: str, subject: str) -> str:
    """The person of an identity nobody mapped (neither the staff directory nor a person claim):
    a shared-secret subject is the person itself; an identity-provider subject is kept apart from
    it (``sso:alice`` is not the local ``alice``) until the directory says they are one."""
    return subject if issuer == LOCAL_ISSUER else SSO_PERSON_PREFIX + subject


def subject_of(actor: str | None) -> str | None:
    """The person behind an actor ``role:person`` (None for a player or the system)."""
    if not isinstance(actor, str):
        return None
    role, sep, subject = actor.partition(":")
    return subject if sep and is_staff_role(role) else None


def is_person(actor: str | None) -> bool:
    """A staff member or a player, who sees the answer of what they asked (not the poller, a
    batch, reconciliation or WeChat)."""
    return subject_of(actor) is not None or (isinstance(actor, str) and actor.startswith("user:"))


def same_person(a: str | None, b: str | None) -> bool:
    """Two actors are the same operator when both are staff with the same person."""
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
    needed = review_permission(origin)
    roles = [r for r in StaffRole if has(r, needed)]
    if amount > finance_threshold:
        roles = [r for r in roles if r in FINANCE_APPROVERS]
    return [r.value for r in roles]


def review_permission(origin: RefundOrigin | str) -> Permission:
    """A player's application is reviewed with applications.review; an operator's refund that
    needs approval with refunds.approve."""
    return P.APPLICATIONS_REVIEW if RefundOrigin(origin) == RefundOrigin.USER else P.REFUNDS_APPROVE


# ---------------------------------------------------------------- what an operator may do with a refund


@dataclass(frozen=True)
class Operator:
    """The signed-in person as the review rules see them, with the finance threshold in force and
    the player accounts the person holds (the staff directory)."""

    actor: str
    finance_threshold: int
    players: frozenset = field(default_factory=frozenset)

    @property
    def role(self) -> StaffRole:
        return role_of(self.actor)


@dataclass(frozen=True)
class Decision:
    """Whether the operator may do one thing to a refund; if not, ``refusal`` is the error that
    says why: the one the use case raises, and the reason the console shows."""

    refusal: DomainError | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @classmethod
    def first(cls, *refusals: DomainError | None) -> "Decision":
        """Refused by the first of ``refusals`` that is not None (the rules in the order checked)."""
        return cls(next((r for r in refusals if r is not None), None))

    def check(self) -> None:
        if self.refusal is not None:
            raise self.refusal

    def to_dict(self) -> dict:
        refusal = self.refusal
        return {"allowed": refusal is None, "code": refusal.code.value if refusal else None,
                "reason": refusal.message if refusal else None}


@dataclass(frozen=True)
class ReviewActions:
    """What an operator may do with a refund under review. ``by_creator``: the operator created it,
    so rejecting it is withdrawing it (``withdraw``), never reviewing it (``reject``)."""

    approve: Decision
    reject: Decision
    withdraw: Decision
    by_creator: bool

    @property
    def rejection(self) -> Decision:
        """What ``POST .../reject`` by this operator is: a withdrawal by the creator, else a review."""
        return self.withdraw if self.by_creator else self.reject

    def to_dict(self) -> dict:
        return {"approve": self.approve.to_dict(), "reject": self.reject.to_dict(),
                "withdraw": self.withdraw.to_dict()}


def own_account_refusal(operator: Operator, user_id: str | None) -> FourEyesRequired | None:
    """A person may not refund, approve or reject a refund of a player account they hold."""
    if user_id is None or user_id not in operator.players:
        return None
    return FourEyesRequired("该订单属于与你本人关联的玩家账号，需由其他人员处理",
                            details={"rule": "own_player_account", "user_id": user_id})


def role_of(actor: str) -> StaffRole:
    """The role of a staff actor ``role:subject``."""
    role = actor.partition(":")[0] if isinstance(actor, str) else None
    if not is_staff_role(role):
        raise ValueError(f"{actor!r} is not a staff actor")
    return StaffRole(role)


def review_actions(refund, operator: Operator, amount: int | None = None) -> ReviewActions:
    """What ``operator`` may do with ``refund`` (its ``status``, ``origin``, ``created_by``,
    ``user_id`` and ``requested_amount``). The approve and reject use cases refuse with exactly these errors, and
    every staff view of a refund shows them, so the two cannot disagree.

    - approve (``amount``, by default what was asked): a refund under review (409
      INVALID_REFUND_STATE), not more than was asked (409 AMOUNT_EXCEEDS_REQUESTED), never by its
      creator (403 FOUR_EYES_REQUIRED), with the review's permission (``review_permission``, 403
      PERMISSION_DENIED) and, above the finance threshold, by finance or admin only (403
      PERMISSION_DENIED, ``details.rule = finance_threshold``);
    - reject: a refund under review, by someone other than its creator, with the review's
      permission;
    - neither approve nor reject by a person who holds the refund's player account (403
      FOUR_EYES_REQUIRED, ``details.rule = own_player_account``);
    - withdraw: the creator rejects their own refund under review, whatever their role: it moves
      no money (what it asked for becomes refundable again), so neither four-eyes nor a
      permission applies.

    A player (actor ``user:<id>``) may only withdraw their own application under review: they
    review nothing, so approve and reject are refused whatever the refund's state."""
    if is_player(operator.actor):
        return _player_actions(refund, operator.actor)
    role = operator.role
    by_creator = same_person(operator.actor, refund.created_by)
    if RefundStatus(refund.status) != RefundStatus.PENDING_REVIEW:
        return ReviewActions(*(Decision(state_refusal(refund.status, verb)) for verb in ("审批", "拒绝", "撤回")),
                             by_creator=by_creator)
    creator = {"created_by": refund.created_by}
    own_account = own_account_refusal(operator, refund.user_id)
    needed = review_permission(refund.origin)
    no_permission = None if has(role, needed) else permission_denied(role, needed)
    approved = amount or refund.requested_amount
    finance = finance_reason(approved, operator.finance_threshold)
    return ReviewActions(
        approve=Decision.first(
            conflict(ErrorCode.AMOUNT_EXCEEDS_REQUESTED, "批准金额不能超过申请金额",
                     requested_amount=refund.requested_amount) if approved > refund.requested_amount else None,
            FourEyesRequired("需审批的退款不能由发起人本人审批，请由其他有权限的人员审批", details=creator)
            if by_creator else None,
            own_account,
            no_permission,
            minors.second_review_refusal(refund, operator.actor, same_person),
            PermissionDenied(finance.message, details={
                "permission": P.REFUNDS_APPROVE.value, "role": role.value, "rule": finance.rule.value,
                "finance_threshold": operator.finance_threshold,
                "approver_roles": [r.value for r in FINANCE_APPROVERS]})
            if finance is not None and role not in FINANCE_APPROVERS else None),
        reject=Decision.first(
            FourEyesRequired("发起人不能审核自己发起的退款，可以撤回", details=creator) if by_creator else None,
            own_account,
            no_permission),
        withdraw=Decision.first(
            None if by_creator else PermissionDenied("只有发起人本人可以撤回该退款", details=creator)),
        by_creator=by_creator,
    )


def is_player(actor: str | None) -> bool:
    return isinstance(actor, str) and actor.startswith("user:")


def _player_actions(refund, actor: str) -> ReviewActions:
    """A player's actions on a refund: withdraw their own application while it is under review."""
    own = actor == refund.created_by
    staff_only = PermissionDenied("只有后台人员可以审核退款申请", details={"created_by": refund.created_by})
    withdraw = (PermissionDenied("只有申请人本人可以撤回该申请", details={}) if not own
                else state_refusal(refund.status, "撤回")
                if RefundStatus(refund.status) != RefundStatus.PENDING_REVIEW else None)
    return ReviewActions(approve=Decision(staff_only), reject=Decision(staff_only), withdraw=Decision(withdraw),
                         by_creator=own)


# ---------------------------------------------------------------- the daily allowance
# A refund uses the allowance of the person who sends it to WeChat: its creator when it goes
# straight there, its approver when it was reviewed (an approval sends money out the same way).


def gives_allowance_back(src: RefundStatus, dst: RefundStatus) -> bool:
    """Whether a refund moving ``src`` -> ``dst`` returns what sending it used of someone's
    allowance: WeChat refused it (退款失败), so no money left. One WeChat accepted and later closed
    keeps it: the limit caps what a person sends out in a day, and a close may come days later."""
    return dst == RefundStatus.FAILED and src != RefundStatus.FAILED


def daily_room(limit: int, amount: int) -> int:
    """The most an operator may have used today for ``amount`` more to fit under ``limit``.
    DynamoDB conditions cannot add, so the counter's condition is ``used <= room``."""
    return limit - amount


def parse_day(raw, field: str, today: date) -> date:
    """A Beijing day of the activity log: ``YYYY-MM-DD``, from ``clock.EARLIEST_DAY`` to ``today``."""
    day = clock.calendar_day(raw)
    if day is None:
        raise invalid(field, "必须是日期 YYYY-MM-DD（北京时间）")
    if not clock.EARLIEST_DAY <= day <= today:
        raise invalid(field, f"必须在 {clock.EARLIEST_DAY} 至 {today} 之间")
    return day


def day_range(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC instants from the start of Beijing day ``start`` to the end of ``end`` (inclusive)."""
    if end < start:
        raise invalid("to", "不能早于开始日期（from）")
    if (end - start).days >= MAX_ACTIVITY_DAYS:
        raise invalid("to", f"超出范围：一次最多查询 {MAX_ACTIVITY_DAYS} 天")
    first = datetime.combine(start, time.min, clock.BEIJING)
    last = datetime.combine(end + timedelta(days=1), time.min, clock.BEIJING)
    return first.astimezone(timezone.utc), last.astimezone(timezone.utc)
