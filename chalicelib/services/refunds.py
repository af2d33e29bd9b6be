"""Refund use cases: an operator's refund, a player's application, approval, rejection,
preview and the abnormal-refund resolution. Each checks the domain's rules, creates or
moves the refund through ``transitions`` (balances through ``adapters/balances.py``) and
hands it to ``submission`` when it goes to WeChat. Reads live in ``queries``."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass

from .. import config
from ..adapters import balances
from ..adapters import repository as repo
from ..adapters import staff as staff_store
from ..adapters.models import Order, Refund
from ..domain import minors
from ..domain import refunds as refund_rules
from ..domain import staff as staff_rules
from ..domain.enums import (AbnormalRefundType, OfflineReason, PayoutChannel, RefundOrigin, RefundStatus, StaffAction,
                            StaffRole)
from ..domain.errors import DomainError, ErrorCode, OrderNotFound, RefundNotFound, conflict, invalid
from ..domain.money import fen_to_yuan
from ..log import get_logger, log_context
from . import staff as staff_service
from . import submission
from .transitions import StaleState, created_event, invalid_state, reservation_error, transition, work_for
from ..domain import clock

S = RefundStatus
log = get_logger(__name__)


# ---------------------------------------------------------------- identifiers


def make_refund_no(scope: str, idempotency_key: str | None) -> str:
    """WeChat's out_refund_no, ``[A-Za-z0-9]``. Derived from the idempotency key when one is
    given, so a retried request maps onto the same record (the put's condition does the rest)."""
    if idempotency_key:
        digest = hashlib.sha256(f"{scope}\x00{idempotency_key}".encode()).digest()
        return "RK" + base64.b32encode(digest).decode().rstrip("=")[:30]
    stamp = clock.now().strftime("%Y%m%d%H%M%S")
    return "RF" + stamp + base64.b32encode(secrets.token_bytes(10)).decode()


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def validate_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255:
        raise invalid("Idempotency-Key", "长度必须为 1 到 255 个字符")
    return key


# ---------------------------------------------------------------- creating refunds


@dataclass
class Created:
    refund: Refund
    created: bool  # False when an idempotent replay returned the existing record


def _existing_for_key(existing: Refund, fp: str) -> Created:
    if existing.fingerprint != fp:
        raise conflict(ErrorCode.IDEMPOTENCY_KEY_REUSED, "该 Idempotency-Key 已用于内容不同的请求")
    return Created(existing, created=False)


def _new_refund(refund_no: str, order: Order, *, amount: int, reason: str, status: RefundStatus,
                origin: RefundOrigin, actor: str, key: str | None, fp: str, review_reasons=(),
                detail: str, allowance_charged: dict | None = None, subscriptions: dict | None = None,
                claim: dict | None = None) -> repo.TxItem:
    """The put of a new refund (its ``model`` is the refund)."""
    now = clock.now()
    return repo.new_refund(refund_no, dict(
        order_no=order.order_no, user_id=order.user_id, channel="wechat", origin=origin.value,
        amount=amount, requested_amount=amount, reason=reason or None, status=status.value,
        created_by=actor, requires_manual_review=bool(review_reasons),
        review_reasons=list(review_reasons) or None, out_trade_no=order.payment.out_trade_no,
        transaction_id=order.payment.transaction_id, order_total=order.actual_amount,
        idempotency_key=key, fingerprint=fp, poll_attempts=0, allowance_charged=allowance_charged,
        restoration_status=None, created_at=clock.iso(now), updated_at=clock.iso(now), subscriptions=subscriptions,
        application_type=minors.TYPE if claim else None, guardian=claim,
        events=[repo.refund_event(at=clock.iso(now), actor=actor, from_status=None, to_status=status.value,
                                  detail=detail)],
        **work_for(status, now)))


def _create(put: repo.TxItem, balance_move: repo.TxItem, *, fp: str, against: str, also: tuple = ()) -> Created:
    """Put the refund and move the order's balance in one transaction (with ``also``: the
    operator's activity record)."""
    refund = put.model
    try:
        repo.write([put, balance_move, *also, created_event(refund)])
    except repo.WriteConflict as c:
        if c.failed("refund"):
            existing = repo.get_refund(refund.refund_no)
            return _existing_for_key(existing, fp)
        if c.failed(balances.LABEL):
            raise reservation_error(refund.order_no, refund.amount, against=against) from None
        raise
    return Created(refund, created=True)


def _charge_of(actor: str, amount: int, now) -> dict:
    """What sending ``amount`` uses of ``actor``'s allowance (kept on the refund: given back if
    WeChat refuses it)."""
    return {"person": staff_rules.subject_of(actor), "day": clock.beijing_day(now), "amount": amount}


def _room(actor: str, amount: int) -> int:
    """What the person may have used today for ``amount`` more to fit (409 when it never can)."""
    room = staff_rules.daily_room(config.staff_limits().daily[staff_rules.role_of(actor).value], amount)
    if room < 0:
        raise _daily_limit_error(actor, amount)
    return room


def _charged(actor: str, amount: int, now, room: int, send):
    """Charge ``amount`` to the person's allowance of the day (one conditional update, on its own:
    adapters/staff.py), then ``send()``; give the charge back when ``send`` raises or creates
    nothing. Returns what ``send`` returned."""
    person, day, at = staff_rules.subject_of(actor), clock.beijing_day(now), clock.iso(now)
    try:
        repo.write([staff_store.charge(person, day, amount, room=room, now=at)])
    except repo.WriteConflict:
        raise _daily_limit_error(actor, amount) from None
    try:
        result = send()
    except BaseException:
        repo.write([staff_store.give_back(person, day, amount, now=at)])
        raise
    if isinstance(result, Created) and not result.created:  # a replay: the first request was charged
        repo.write([staff_store.give_back(person, day, amount, now=at)])
    return result


# ---------------------------------------------------------------- staff rules in the use cases


def _daily_limit_error(actor: str, amount: int, used: int | None = None):
    role = staff_rules.role_of(actor)
    subject = staff_rules.subject_of(actor)
    limit = config.staff_limits().daily[role.value]
    day = clock.beijing_day(clock.now())
    used = staff_store.used_on(subject, day) if used is None else used
    remaining = max(0, limit - used)
    return conflict(ErrorCode.DAILY_LIMIT_EXCEEDED,
                    f"今日直接退款额度不足：{role.label}每日限额 {fen_to_yuan(limit)} 元，"
                    f"剩余 {fen_to_yuan(remaining)} 元，本次 {fen_to_yuan(amount)} 元",
                    daily_limit=limit, used=used, remaining=remaining, amount=amount, day=day)


def _activity(refund: Refund, *, actor: str, action: StaffAction, at: str, status: str, amount: int | None = None,
              detail: str | None = None) -> repo.TxItem:
    return staff_store.activity(operator=staff_rules.subject_of(actor), actor=actor, action=action.value, at=at,
                                refund_no=refund.refund_no, order_no=refund.order_no,
                                amount=amount if amount is not None else refund.amount, status=status,
                                origin=refund.origin, detail=detail)


def approval_plan(order: Order, amount: int, role: StaffRole) -> tuple[tuple, dict]:
    """Whether an operator of ``role`` refunding ``amount`` of ``order`` needs approval: the
    reasons (what create does), and what preview tells about them (each reason with its rule,
    who may approve, the limits)."""
    limits = config.staff_limits()
    reasons = staff_rules.creation_reasons(refund_rules.approval_reasons(order), amount, role, limits.refund[role.value])
    finance = staff_rules.finance_reason(amount, limits.finance_approval) if reasons else None
    return reasons, {
        "required": bool(reasons),
        "reasons": [r.to_dict() for r in reasons],
        # who may approve it (never its creator); above the finance threshold finance or admin only
        "approver_roles": (staff_rules.approver_roles(RefundOrigin.ADMIN, amount, limits.finance_approval)
                           if reasons else []),
        "finance_only": finance is not None,
        "finance_rule": finance.to_dict() if finance else None,
        "role": role.value,
        "role_label": role.label,
        "refund_limit": limits.refund[role.value],
        "refund_limit_yuan": fen_to_yuan(limits.refund[role.value]),
        "finance_approval_threshold": limits.finance_approval,
        "finance_approval_threshold_yuan": fen_to_yuan(limits.finance_approval),
    }


def _load_for_create(order_no: str, refund_no: str, key: str | None, fp: str):
    if key:
        order, existing = repo.get_order_and_refund(order_no, refund_no)
        if existing is not None:
            return order, _existing_for_key(existing, fp)
    else:
        order = repo.get_order(order_no)
    return order, None


def create_admin_refund(*, actor: str, order_no: str, amount: int, reason: str, idempotency_key: str | None) -> Created:
    """POST /api/admin/pay/refunds: reserve and submit, or open a review when approval is needed
    (the goods were signed for or consumed, or the amount is above the creator's role limit).
    Never by a person who holds the order's player account (403 FOUR_EYES_REQUIRED).
    A refund sent straight to WeChat uses the person's daily allowance, charged just before its
    transaction and given back when that transaction fails."""
    with log_context(order_no=order_no):
        fp = fingerprint({"op": "admin_refund", "order_no": order_no, "amount": amount, "reason": reason})
        refund_no = make_refund_no(actor, idempotency_key)
        order, replay = _load_for_create(order_no, refund_no, idempotency_key, fp)
        if replay is not None:
            return replay
        if order is None:
            raise OrderNotFound("订单不存在")
        now = clock.now()
        refund_rules.check_refundable(order, amount, now)
        refusal = staff_rules.own_account_refusal(staff_service.operator(actor), order.user_id)
        if refusal is not None:
            raise refusal
        role = staff_rules.role_of(actor)
        reasons, _ = approval_plan(order, amount, role)
        if reasons:
            texts = [r.message for r in reasons]
            put = _new_refund(refund_no, order, amount=amount, reason=reason, status=S.PENDING_REVIEW,
                                 origin=RefundOrigin.ADMIN, actor=actor, key=idempotency_key, fp=fp,
                                 review_reasons=texts, detail="需人工审批：" + "；".join(texts))
            refund = put.model
            activity = _activity(refund, actor=actor, action=StaffAction.CREATED, at=refund.created_at,
                                 status=S.PENDING_REVIEW.value, detail="；".join(texts))
            return _create(put, balances.request(order_no, amount), fp=fp, against="refundable", also=(activity,))
        room = _room(actor, amount)
        put = _new_refund(refund_no, order, amount=amount, reason=reason, status=S.SUBMITTED,
                             origin=RefundOrigin.ADMIN, actor=actor, key=idempotency_key, fp=fp,
                             detail="后台发起退款，已预留余额", allowance_charged=_charge_of(actor, amount, now))
        refund = put.model
        also = (_activity(refund, actor=actor, action=StaffAction.CREATED, at=refund.created_at,
                          status=S.SUBMITTED.value),)
        created = _charged(actor, amount, now, room, lambda: _create(
            put, balances.reserve(order_no, amount), fp=fp, against="refundable", also=also))
        if created.created:
            log.info("refund created", extra={"refund_no": refund_no, "amount": amount})
            submission.submit(created.refund, actor=actor, order=order)
        return created


def apply_for_refund(*, user_id: str, order_no: str, amount: int | None, reason: str, idempotency_key: str | None,
                     subscriptions: dict | None = None, claim: dict | None = None) -> Created:
    """POST /api/app/orders/{order_no}/refund/apply: a player's application, pending review, with
    the player's one-time message consents (``subscriptions``, ``domain/subscriptions.parse``).
    ``claim``: a guardian's claim for a minor's spending (``domain/minors.py``), for the whole
    order (``amount`` None: what is left to apply for)."""
    with log_context(order_no=order_no):
        actor = f"user:{user_id}"
        fp = fingerprint({"op": "apply", "order_no": order_no, "amount": amount, "reason": reason,
                          **({"claim": claim} if claim else {})})
        refund_no = make_refund_no(actor, idempotency_key)
        order, replay = _load_for_create(order_no, refund_no, idempotency_key, fp)
        if replay is not None:
            return replay
        if order is None or order.user_id != user_id:
            raise OrderNotFound("订单不存在")  # never reveal another player's order
        if order.open_application:
            raise conflict(ErrorCode.REFUND_APPLICATION_PENDING, "该订单已有待审核的退款申请")
        if claim is not None:
            whole = order.applicable_amount
            if amount is not None and amount != whole:
                raise invalid("amount", f"{minors.TYPE_LABEL}退款为订单全额退款：{fen_to_yuan(max(whole, 0))} 元")
            amount = whole
        elif amount is None:
            raise invalid("amount", "不能为空")
        refund_rules.check_refundable(order, amount, clock.now(), against="applicable")
        put = _new_refund(refund_no, order, amount=amount, reason=reason, status=S.PENDING_REVIEW,
                             origin=RefundOrigin.USER, actor=actor, key=idempotency_key, fp=fp,
                             review_reasons=refund_rules.approval_reasons(order),
                             detail=f"监护人申请退款（{minors.TYPE_LABEL}）" if claim else "用户申请退款",
                             subscriptions=subscriptions, claim=claim)
        refund = put.model
        return _create(put, balances.request(order_no, amount, application_of=refund_no), fp=fp,
                       against="applicable")


def approve(*, actor: str, refund_no: str, amount: int | None) -> Refund:
    """pending_review -> submitted (reserving the balance) -> WeChat, once even when two
    operators approve at the same moment, if ``staff_rules.review_actions`` allows it: never by
    the refund's creator (four-eyes); an operator's refund needs refunds.approve, and above the
    finance threshold only finance or admin may approve. It uses the approver's daily allowance
    (409 DAILY_LIMIT_EXCEEDED past it), given back if WeChat refuses the refund."""
    refund = get_refund(refund_no)
    operator = staff_service.operator(actor)
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        staff_rules.review_actions(refund, operator, amount).approve.check()
        if minors.is_claim(refund):
            return _review_claim(refund, actor, amount)
        return _approve_now(refund, actor=actor, amount=amount)


def _approve_now(refund: Refund, *, actor: str, amount: int | None) -> Refund:
    approved = amount or refund.requested_amount
    detail = "审批通过" + (f"，批准金额 {fen_to_yuan(approved)} 元（申请 {fen_to_yuan(refund.requested_amount)} 元）"
                        if approved != refund.requested_amount else "")
    now = clock.now()
    at = clock.iso(now)
    try:  # the approval sends money out: it uses the approver's allowance, as a direct refund would
        _charged(actor, approved, now, _room(actor, approved), lambda: transition(
            refund, S.SUBMITTED, actor=actor, detail=detail, approved_amount=approved,
            changes={"reviewer": actor, "allowance_charged": _charge_of(actor, approved, now)},
            also=(_activity(refund, actor=actor, action=StaffAction.APPROVED, at=at,
                            status=S.SUBMITTED.value, amount=approved, detail=detail),)))
    except StaleState:
        raise refund_rules.state_refusal(repo.get_refund(refund.refund_no).status, "审批") from None
    return submission.submit(refund, actor=actor)


def _review_claim(refund: Refund, actor: str, amount: int | None) -> Refund:
    """A minor's claim: the first approval is its first review (recorded, still pending review);
    a second, different person's approval refunds the whole order."""
    if amount is not None and amount != refund.requested_amount:
        raise invalid("amount", f"{minors.TYPE_LABEL}退款为订单全额退款，不能改变金额")
    if refund.first_review:  # review_actions refused its first reviewer: this is the second person
        return _approve_now(refund, actor=actor, amount=None)
    at = clock.iso(clock.now())
    try:
        return transition(refund, S.PENDING_REVIEW, actor=actor, detail="初审通过，待另一人复核",
                          changes={"first_review": {"by": actor, "at": at}}, absent=("first_review",),
                          also=(_activity(refund, actor=actor, action=StaffAction.APPROVED, at=at,
                                          status=S.PENDING_REVIEW.value, detail="未成年人消费：初审通过"),))
    except StaleState:
        raise refund_rules.state_refusal(repo.get_refund(refund.refund_no).status, "审批") from None


def reject(*, actor: str, refund_no: str, reason: str) -> Refund:
    """pending_review -> rejected: another operator's review (``reject``), or the creator
    withdrawing their own refund (``withdraw``, whatever their role). No money moves: what the
    refund asked for becomes refundable again."""
    refund = get_refund(refund_no)
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        actions = staff_rules.review_actions(refund, staff_service.operator(actor))
        actions.rejection.check()
        if actions.by_creator:
            verb, action, detail = "撤回", StaffAction.WITHDRAWN, f"发起人撤回：{reason}"
        else:
            verb, action, detail = "拒绝", StaffAction.REJECTED, f"审批拒绝：{reason}"
        # a player's withdrawal is no operator's activity
        also = () if staff_rules.is_player(actor) else (
            _activity(refund, actor=actor, action=action, at=clock.iso(clock.now()), status=S.REJECTED.value,
                      amount=refund.requested_amount, detail=reason),)
        try:
            return transition(refund, S.REJECTED, actor=actor, detail=detail,
                              changes={"reviewer": actor, "reject_reason": reason}, also=also)
        except StaleState:
            raise refund_rules.state_refusal(repo.get_refund(refund_no).status, verb) from None


def withdraw_application(*, user_id: str, refund_no: str, reason: str) -> Refund:
    """POST /api/app/refunds/{refund_no}/withdraw: the player withdraws their own application
    under review, by the staff withdrawal's path (``reject`` as its creator): no money moves and
    what it asked for is applicable again. A retry after it was withdrawn answers the same."""
    refund = get_refund(refund_no)
    if refund.user_id != user_id:
        raise RefundNotFound("退款单不存在")  # never reveal another player's refund
    actor = f"user:{user_id}"
    if _withdrawn_by(refund, actor):
        return refund
    try:
        return reject(actor=actor, refund_no=refund_no, reason=reason)
    except DomainError:
        again = repo.get_refund(refund_no)
        if _withdrawn_by(again, actor):  # a concurrent retry withdrew it first
            return again
        raise


def _withdrawn_by(refund: Refund, actor: str) -> bool:
    return refund.status == S.REJECTED.value and refund.reviewer == actor


def preview(*, order_no: str, amount: int, actor: str) -> dict:
    """What a refund of ``amount`` by ``actor`` would do, by the code that executes it: the
    restoration plan, whether it needs approval and why (``approval``), and the actor's daily
    allowance (``allowance``). Writes nothing."""
    from . import restoration  # the plan's inventory read lives with restoration

    order = repo.get_order(order_no)
    if order is None:
        raise OrderNotFound("订单不存在")
    now = clock.now()
    refund_rules.check_refundable(order, amount, now)
    role = staff_rules.role_of(actor)
    reasons, approval = approval_plan(order, amount, role)
    allowance = staff_service.allowance(staff_rules.subject_of(actor), role, now)
    allowance["fits"] = bool(reasons) or amount <= allowance["daily_remaining"]
    inventory = restoration.inventory_of(order)
    plan = refund_rules.restoration_plan(order, amount, order.refunded_amount + order.reserved_amount, inventory)
    body = plan.to_dict()
    body.update({
        "order_no": order_no,
        "requires_approval": bool(reasons),
        "approval_reasons": [r.message for r in reasons],
        "approval": approval,
        "allowance": allowance,
        "resulting_status": S.PENDING_REVIEW.value if reasons else S.SUBMITTED.value,
        "resulting_status_label": (S.PENDING_REVIEW if reasons else S.SUBMITTED).label,
        "remaining_after": order.refundable_amount - amount,
        "remaining_after_yuan": fen_to_yuan(order.refundable_amount - amount),
        "max_refundable": order.refundable_amount,
        "max_refundable_yuan": fen_to_yuan(order.refundable_amount),
    })
    return body


def get_refund(refund_no: str) -> Refund:
    refund_rules.validate_refund_no(refund_no)
    refund = repo.get_refund(refund_no)
    if refund is None:
        raise RefundNotFound("退款单不存在")
    return refund


def resolve_abnormal(*, actor: str, refund_no: str, kind: AbnormalRefundType, bank_type: str | None = None,
                     bank_account: str | None = None, real_name: str | None = None) -> Refund:
    """Send an abnormal refund again, to the player's new card or the merchant's."""
    return submission.resolve_abnormal(get_refund(refund_no), actor=actor, kind=kind, bank_type=bank_type,
                                       bank_account=bank_account, real_name=real_name)


# ---------------------------------------------------------------- refunds paid outside WeChat


def record_offline_payout(*, actor: str, refund_no: str, channel: PayoutChannel, reference: str,
                          paid_at: str | None, note: str | None) -> Refund:
    """An operator paid a refund outside WeChat (the player's WeChat account cannot receive, or
    WeChat returned the money to the merchant's card): the refund succeeds with that channel,
    its amount counts as refunded, and restoration runs like after any success."""
    refund = get_refund(refund_no)
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        if refund.status != S.OFFLINE_PENDING.value:
            raise invalid_state(refund, "登记线下退款")
        now = clock.iso(clock.now())
        refund_rules.check_payout_time(paid_at, refund.created_at)
        payout = {"channel": channel.value, "channel_label": channel.label, "reference": reference,
                  "paid_at": paid_at or now, "recorded_by": actor, "recorded_at": now, "note": note or None}
        order = repo.get_order(refund.order_no)
        try:
            detail = f"已登记线下退款：{channel.label}，凭证 {reference}"
            transition(refund, S.SUCCESS, actor=actor, order=order, detail=detail,
                       changes={"offline_payout": payout, "channel": channel.value,
                                "success_time": payout["paid_at"]},
                       also=(_activity(refund, actor=actor, action=StaffAction.OFFLINE_PAID, at=now,
                                       status=S.SUCCESS.value, detail=detail),
                             repo.payout_reference(channel.value, reference, refund_no=refund_no, by=actor, now=now)))
        except StaleState:
            raise invalid_state(repo.get_refund(refund_no), "登记线下退款") from None
        except repo.WriteConflict as c:
            if not c.failed("payout_reference"):
                raise
            owner = repo.payout_reference_owner(channel.value, reference)
            raise conflict(ErrorCode.PAYOUT_REFERENCE_USED,
                           f"{channel.label}凭证 {reference} 已登记为退款 {owner} 的线下退款，不能重复使用",
                           refund_no=owner) from None
        log.info("offline payout recorded", extra={"channel": channel.value})
        return refund


def cancel_offline(*, actor: str, refund_no: str, reason: str) -> Refund:
    """Give up an offline refund WeChat never paid (the player's account could not receive): the
    amount is refundable again. One WeChat already returned to the merchant's card cannot be
    cancelled: that money is the player's and must be paid out."""
    refund = get_refund(refund_no)
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        if refund.status != S.OFFLINE_PENDING.value:
            raise invalid_state(refund, "取消线下退款")
        if refund.offline_reason != OfflineReason.USER_ACCOUNT_ABNORMAL.value:
            raise conflict(ErrorCode.INVALID_REFUND_STATE, "款项已由微信退至商户银行卡，不能取消，请登记线下退款",
                           status=refund.status, offline_reason=refund.offline_reason)
        try:
            transition(refund, S.CLOSED, actor=actor, detail=f"取消线下退款：{reason}",
                       changes={"reviewer": actor, "reject_reason": reason},
                       also=(_activity(refund, actor=actor, action=StaffAction.OFFLINE_CANCELLED,
                                       at=clock.iso(clock.now()), status=S.CLOSED.value, detail=reason),))
        except StaleState:
            raise invalid_state(repo.get_refund(refund_no), "取消线下退款") from None
        return refund

