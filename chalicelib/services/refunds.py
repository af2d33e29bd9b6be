"""The refund engine: creating, reviewing, executing and settling refunds.

Every path that learns something about a refund (the create/approve call's
answer, a notification, a poll, an operator's decision) ends in ``transition()``,
the one place where a refund changes status. It asks the domain whether the move
is allowed and what it does to the order's balances, then commits it as one
conditional write, or one transaction when balances move, keyed on the status it
read. Racing paths lose the condition, re-read, and either apply what is still
allowed or become no-ops.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..adapters import queue
from ..adapters import repository as repo
from ..adapters.models import ManualTask, NotifyReceipt, Order, Refund, RefundEvent
from ..config import settings
from ..domain import refunds as rules
from ..domain.enums import OrderStatus, RefundOrigin, RefundStatus, RestorationStatus, TaskType
from ..domain.errors import Conflict, DomainError, OrderNotFound, RefundNotFound, UpstreamUnavailable, conflict
from ..domain.refunds import Balance, Outcome, iso, now_utc
from ..log import get_logger, log_context

S = RefundStatus
log = get_logger(__name__)
MAX_RACE_RETRIES = 8


def _gateway():
    from ..adapters.wechat import get_gateway  # lazy: loads the WeChat SDK only when it is needed

    return get_gateway()


def _wechat_errors():
    from ..adapters import wechat

    return wechat


class StaleState(Exception):
    """The refund moved on since it was read; the write did not happen."""


class DuplicateNotification(Exception):
    """This notification id was processed before."""


def invalid_state(refund: Refund, action: str) -> Conflict:
    status = RefundStatus(refund.status)
    return conflict("INVALID_REFUND_STATE", f"退款单当前状态为{status.label}，不能{action}",
                    status=status.value)


# ---------------------------------------------------------------- identifiers


def make_refund_no(scope: str, idempotency_key: str | None) -> str:
    """WeChat's out_refund_no, ``[A-Za-z0-9]``. Derived from the idempotency key when one is
    given, so a retried request maps onto the same record (the put's condition does the rest)."""
    if idempotency_key:
        digest = hashlib.sha256(f"{scope}\x00{idempotency_key}".encode()).digest()
        return "RK" + base64.b32encode(digest).decode().rstrip("=")[:30]
    stamp = now_utc().strftime("%Y%m%d%H%M%S")
    return "RF" + stamp + base64.b32encode(secrets.token_bytes(10)).decode()


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def validate_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255:
        raise DomainError("Idempotency-Key must be 1-255 characters", code="VALIDATION_ERROR")
    return key


# ---------------------------------------------------------------- the one transition


def _work_for(status: RefundStatus, now: datetime, attempts: int = 0) -> dict:
    """Which sparse-index queue a refund sits in, and when it is next due."""
    s = settings()
    if status in (S.SUBMITTED, S.PROCESSING):
        delay = min(s.poll_after_seconds * (2 ** min(attempts, 10)), 3600)
        return {"work": "poll", "work_due_at": iso(now + timedelta(seconds=delay))}
    if status == S.ABNORMAL:
        return {"work": "poll", "work_due_at": iso(now + timedelta(seconds=s.abnormal_poll_seconds))}
    if status == S.SUCCESS:
        return {"work": "restore", "work_due_at": iso(now + timedelta(seconds=s.restore_sweep_seconds))}
    return {"work": None, "work_due_at": None}


def _order_balance_update(effect: Balance, dst: RefundStatus, refund: Refund, order: Order | None,
                          approved: int | None):
    """(order model, actions, condition, refund changes) for a balance-moving transition."""
    asked = refund.requested_amount
    amount = refund.amount
    stub = order if order is not None else Order(refund.order_no)
    refund_changes: dict = {}
    if effect == Balance.RESERVE:
        amount = approved if approved is not None else asked
        actions = [Order.refundable_amount.add(-amount), Order.reserved_amount.add(amount),
                   Order.requested_amount.add(-asked), Order.applicable_amount.add(asked - amount),
                   Order.refund_count.add(1)]
        if refund.origin == RefundOrigin.USER.value:
            actions.append(Order.open_application.remove())
        cond = ((Order.status == OrderStatus.PAID.value) & (Order.refundable_amount >= amount)
                & (Order.refund_count < rules.MAX_REFUNDS_PER_ORDER))
        refund_changes["amount"] = amount
    elif effect == Balance.WITHDRAW:
        actions = [Order.requested_amount.add(-asked), Order.applicable_amount.add(asked)]
        if refund.origin == RefundOrigin.USER.value:
            actions.append(Order.open_application.remove())
        cond = Order.order_no.exists()
    elif effect == Balance.RELEASE:
        actions = [Order.reserved_amount.add(-amount), Order.refundable_amount.add(amount),
                   Order.applicable_amount.add(amount)]
        if dst == S.FAILED:  # WeChat refused it: it never counted towards WeChat's 50 per order
            actions.append(Order.refund_count.add(-1))
        cond = Order.order_no.exists()
    elif effect == Balance.SETTLE:
        assert order is not None, "settling needs the order's current refunded amount"
        cumulative = order.refunded_amount + amount
        actions = [Order.reserved_amount.add(-amount), Order.refunded_amount.add(amount),
                   Order.updated_at.set(iso(now_utc()))]
        if cumulative >= order.actual_amount:
            actions.append(Order.status.set(OrderStatus.REFUNDED.value))
        # optimistic on the one value read: two successes on one order serialise here
        cond = Order.refunded_amount == order.refunded_amount
        refund_changes.update(cumulative_refunded=cumulative,
                              restoration_status=RestorationStatus.PENDING.value)
    else:  # pragma: no cover - callers only pass moving effects
        raise ValueError(effect)
    return stub, actions, cond, refund_changes


def transition(refund: Refund, dst: RefundStatus, *, actor: str, detail: str | None = None,
               outcome: Outcome | None = None, changes: dict | None = None,
               receipt: NotifyReceipt | None = None, order: Order | None = None,
               approved_amount: int | None = None, tasks: tuple = ()) -> Refund:
    """Move ``refund`` to ``dst`` (or, when ``dst`` is its status, record an event and
    field changes) as one conditional write. Updates ``refund`` in place.

    Raises StaleState when the refund is no longer in the status it was read in,
    DuplicateNotification when ``receipt`` was seen before, and a 409 Conflict when a
    reservation does not fit the order's balance.
    """
    src = RefundStatus(refund.status)
    if dst != src and not rules.can_transition(src, dst):
        raise invalid_state(refund, f"变为{dst.label}")
    now = now_utc()
    fields: dict = {"status": dst.value, "updated_at": iso(now)}
    if dst != src:
        fields.update(_work_for(dst, now))
        fields["poll_attempts"] = 0
    if outcome is not None:
        for name in ("wechat_refund_id", "user_received_account", "success_time", "failure_code",
                     "failure_message"):
            value = getattr(outcome, name)
            if value is not None:
                fields[name] = value
        if outcome.raw is not None:
            fields["raw"] = outcome.raw
    fields.update(changes or {})
    event = RefundEvent(at=iso(now), actor=actor, from_status=src.value, to_status=dst.value,
                        detail=(detail or (outcome.detail if outcome else None)))
    effect = rules.balance_effect(src, dst) if dst != src else Balance.NONE

    for _attempt in range(MAX_RACE_RETRIES):
        items_fields = dict(fields)
        order_update = None
        if effect != Balance.NONE:
            stub, o_actions, o_cond, r_changes = _order_balance_update(effect, dst, refund, order, approved_amount)
            items_fields.update(r_changes)
            order_update = repo.TxItem("order", "update", stub, o_cond, o_actions)
        actions = [getattr(Refund, k).set(v) if v is not None else getattr(Refund, k).remove()
                   for k, v in items_fields.items()]
        actions.append(Refund.events.set(Refund.events.append([event])))
        condition = Refund.status == src.value
        try:
            if order_update is None and receipt is None and not tasks:
                if not repo.update(refund, actions, condition):
                    raise StaleState(refund.refund_no)
            else:
                items = [repo.TxItem("refund", "update", refund, condition, actions)]
                if order_update is not None:
                    items.append(order_update)
                if receipt is not None:
                    items.append(repo.TxItem("receipt", "put", receipt, NotifyReceipt.notify_id.does_not_exist()))
                for task in tasks:
                    items.append(repo.TxItem(f"task:{task.task_id}", "put", task, None))
                repo.transact(items)
        except repo.WriteConflict as c:
            if c.failed("receipt"):
                raise DuplicateNotification(receipt.notify_id) from None
            if c.failed("refund"):
                raise StaleState(refund.refund_no) from None
            if c.failed("order") and effect == Balance.SETTLE:
                order = repo.get_order(refund.order_no)  # another refund settled first: re-read, retry
                continue
            if c.failed("order") and effect == Balance.RESERVE:
                raise _reservation_error(refund.order_no, approved_amount or refund.requested_amount,
                                         against="refundable") from None
            raise
        for k, v in items_fields.items():
            setattr(refund, k, v)
        refund.events = list(refund.events or []) + [event]
        return refund
    raise StaleState(refund.refund_no)


def _reservation_error(order_no: str, amount: int, *, against: str) -> DomainError:
    """Explain, from a fresh read, why a reservation's condition failed."""
    order = repo.get_order(order_no)
    if order is None:
        return OrderNotFound("订单不存在")
    try:
        rules.check_refundable(order, amount, now_utc(), against=against)
    except DomainError as err:
        return err
    if against == "applicable" and order.open_application:
        return conflict("REFUND_APPLICATION_PENDING", "该订单已有待审核的退款申请")
    return conflict("AMOUNT_EXCEEDS_REFUNDABLE", "可退余额已变化，请刷新后重试")


def apply_outcome(refund: Refund, outcome: Outcome, *, actor: str, receipt: NotifyReceipt | None = None,
                  order: Order | None = None) -> Refund:
    """Apply what WeChat said about ``refund``, whoever heard it (create/approve answer,
    notification, poll). Idempotent: repeating it, or losing a race, changes nothing twice."""
    with log_context(refund_no=refund.refund_no, order_no=refund.order_no):
        if outcome.amount is not None and outcome.amount != refund.amount:
            log.error("wechat amount does not match our refund; not applied",
                      extra={"ours": refund.amount, "theirs": outcome.amount, "actor": actor})
            raise conflict("OUTCOME_MISMATCH", "金额与退款单不一致")
        for _attempt in range(MAX_RACE_RETRIES):
            src = RefundStatus(refund.status)
            dst = outcome.status
            if dst == src or not rules.can_transition(src, dst):
                if dst != src:
                    _outcome_not_applied(refund, src, dst, actor)
                return refund
            tasks = _tasks_for(refund, dst, outcome)
            if rules.balance_effect(src, dst) == Balance.SETTLE and order is None:
                order = repo.get_order(refund.order_no)
            try:
                transition(refund, dst, actor=actor, outcome=outcome, receipt=receipt, order=order, tasks=tasks)
            except StaleState:
                refund = repo.get_refund(refund.refund_no)
                continue
            except DuplicateNotification:
                log.info("duplicate notification ignored", extra={"notify_id": receipt.notify_id})
                return repo.get_refund(refund.refund_no)
            log.info("refund status changed", extra={"from": src.value, "to": dst.value, "actor": actor})
            if dst == S.SUCCESS:
                queue.publish_restore(refund.refund_no, refund.order_no)
            return refund
        raise StaleState(refund.refund_no)


def _outcome_not_applied(refund: Refund, src: RefundStatus, dst: RefundStatus, actor: str) -> None:
    """An outcome that no longer applies is normal after a race (a late PROCESSING), except
    when WeChat says money moved for a refund we closed: a person must look at it."""
    if dst == S.SUCCESS and src in (S.CLOSED, S.FAILED):
        log.error("wechat reports success for a refund recorded as " + src.value,
                  extra={"from": src.value, "actor": actor})
        repo.put_if_absent(_task(refund, TaskType.OUTCOME_CONFLICT, "refund",
                                 f"微信报告退款成功，但本地记录为{src.label}：请核对资金，勿重复退款"),
                           ManualTask.task_id)
        return
    log.info("outcome no longer applies", extra={"from": src.value, "to": dst.value, "actor": actor})


def _tasks_for(refund: Refund, dst: RefundStatus, outcome: Outcome) -> tuple:
    """Manual tasks born with a transition (in its transaction, so never lost)."""
    if dst == S.ABNORMAL:
        return (_task(refund, TaskType.REFUND_ABNORMAL, "refund",
                      "退款异常（用户银行卡注销或冻结），请联系用户并发起异常退款"),)
    if dst == S.FAILED and outcome.failure_code == "USER_ACCOUNT_ABNORMAL":
        return (_task(refund, TaskType.ACCOUNT_ABNORMAL, "refund",
                      "用户微信账户异常，请通过其他方式退款"),)
    return ()


def _task(refund: Refund, task_type: TaskType, subject: str, action: str) -> ManualTask:
    return ManualTask(rules.task_id(refund.refund_no, task_type, subject), type=task_type.value,
                      order_no=refund.order_no, refund_no=refund.refund_no, user_id=refund.user_id,
                      action=action, status="open", created_at=iso(now_utc()))


# ---------------------------------------------------------------- WeChat execution


def outcome_from_result(result, detail: str) -> Outcome:
    return Outcome(
        status=rules.WECHAT_STATUS[result.status],
        wechat_refund_id=result.refund_id,
        user_received_account=result.user_received_account,
        success_time=result.success_time,
        amount=result.amount_refund,
        raw=result.raw,
        detail=detail,
    )


def submit(refund: Refund, *, actor: str, order: Order | None = None) -> Refund:
    """Send ``refund`` (status submitted) to WeChat under its refund_no and apply the answer.

    Outcome unknown (timeout, SYSTEM_ERROR, FREQUENCY_LIMITED, unverifiable answer) keeps it
    submitted with the balance reserved; the poller settles it with the same refund_no.
    """
    wechat = _wechat_errors()
    with log_context(refund_no=refund.refund_no, order_no=refund.order_no):
        try:
            result = _gateway().create_refund(
                out_refund_no=refund.refund_no, amount=refund.amount, total=refund.order_total,
                out_trade_no=refund.out_trade_no, transaction_id=refund.transaction_id,
                reason=refund.reason or None)
        except wechat.InsufficientFunds as err:
            return _fail(refund, actor, err, "商户账户余额不足，退款失败，可稍后重新发起")
        except wechat.Rejected as err:
            return _fail(refund, actor, err, f"微信拒绝退款：{err.message}")
        except wechat.WechatError as err:  # outcome unknown: keep it reserved, poll it
            log.warning("refund outcome unknown; the poller will resolve it",
                        extra={"code": err.code, "actor": actor})
            try:
                return transition(refund, S.SUBMITTED, actor=actor,
                                  detail=f"微信结果未知（{err.code}），等待查询", changes=_work_for(S.SUBMITTED, now_utc()))
            except StaleState:
                return repo.get_refund(refund.refund_no)
        return apply_outcome(refund, outcome_from_result(result, "微信已受理退款"), actor=actor, order=order)


def _fail(refund: Refund, actor: str, err, detail: str) -> Refund:
    outcome = Outcome(status=S.FAILED, failure_code=err.code, failure_message=err.message, detail=detail)
    log.warning("wechat refused the refund", extra={"code": err.code, "refund_no": refund.refund_no})
    try:
        return apply_outcome(refund, outcome, actor=actor)
    except StaleState:
        return repo.get_refund(refund.refund_no)


# ---------------------------------------------------------------- creating refunds


@dataclass
class Created:
    refund: Refund
    created: bool  # False when an idempotent replay returned the existing record


def _existing_for_key(existing: Refund, fp: str) -> Created:
    if existing.fingerprint != fp:
        raise conflict("IDEMPOTENCY_KEY_REUSED", "该 Idempotency-Key 已用于内容不同的请求")
    return Created(existing, created=False)


def _new_refund(refund_no: str, order: Order, *, amount: int, reason: str, status: RefundStatus,
                origin: RefundOrigin, actor: str, key: str | None, fp: str, review_reasons=(),
                detail: str) -> Refund:
    now = now_utc()
    refund = Refund(
        refund_no, order_no=order.order_no, user_id=order.user_id, channel="wechat", origin=origin.value,
        amount=amount, requested_amount=amount, reason=reason or None, status=status.value,
        created_by=actor, requires_manual_review=bool(review_reasons),
        review_reasons=list(review_reasons) or None, out_trade_no=order.payment.out_trade_no,
        transaction_id=order.payment.transaction_id, order_total=order.actual_amount,
        idempotency_key=key, fingerprint=fp, poll_attempts=0,
        restoration_status=None, created_at=iso(now), updated_at=iso(now),
        events=[RefundEvent(at=iso(now), actor=actor, from_status=None, to_status=status.value, detail=detail)],
    )
    for k, v in _work_for(status, now).items():
        setattr(refund, k, v)
    return refund


def _create(refund: Refund, order_update: repo.TxItem, *, fp: str, against: str) -> Created:
    try:
        repo.transact([repo.TxItem("refund", "put", refund, Refund.refund_no.does_not_exist()), order_update])
    except repo.WriteConflict as c:
        if c.failed("refund"):
            existing = repo.get_refund(refund.refund_no)
            return _existing_for_key(existing, fp)
        if c.failed("order"):
            raise _reservation_error(refund.order_no, refund.amount, against=against) from None
        raise
    return Created(refund, created=True)


def _load_for_create(order_no: str, refund_no: str, key: str | None, fp: str):
    if key:
        order, existing = repo.get_order_and_refund(order_no, refund_no)
        if existing is not None:
            return order, _existing_for_key(existing, fp)
    else:
        order = repo.get_order(order_no)
    return order, None


def create_admin_refund(*, actor: str, order_no: str, amount: int, reason: str, idempotency_key: str | None) -> Created:
    """POST /api/admin/pay/refunds: reserve and submit, or open a review when approval is needed."""
    with log_context(order_no=order_no):
        fp = fingerprint({"op": "admin_refund", "order_no": order_no, "amount": amount, "reason": reason})
        refund_no = make_refund_no(actor, idempotency_key)
        order, replay = _load_for_create(order_no, refund_no, idempotency_key, fp)
        if replay is not None:
            return replay
        if order is None:
            raise OrderNotFound("订单不存在")
        now = now_utc()
        rules.check_refundable(order, amount, now)
        reasons = rules.approval_reasons(order)
        if reasons:
            refund = _new_refund(refund_no, order, amount=amount, reason=reason, status=S.PENDING_REVIEW,
                                 origin=RefundOrigin.ADMIN, actor=actor, key=idempotency_key, fp=fp,
                                 review_reasons=reasons, detail="需人工审批：" + "；".join(reasons))
            update = repo.TxItem("order", "update", order, (Order.status == OrderStatus.PAID.value)
                                 & (Order.refundable_amount >= amount),
                                 [Order.requested_amount.add(amount), Order.applicable_amount.add(-amount)])
            return _create(refund, update, fp=fp, against="refundable")
        refund = _new_refund(refund_no, order, amount=amount, reason=reason, status=S.SUBMITTED,
                             origin=RefundOrigin.ADMIN, actor=actor, key=idempotency_key, fp=fp,
                             detail="后台发起退款，已预留余额")
        update = repo.TxItem("order", "update", order,
                             (Order.status == OrderStatus.PAID.value) & (Order.refundable_amount >= amount)
                             & (Order.refund_count < rules.MAX_REFUNDS_PER_ORDER),
                             [Order.refundable_amount.add(-amount), Order.reserved_amount.add(amount),
                              Order.applicable_amount.add(-amount), Order.refund_count.add(1)])
        created = _create(refund, update, fp=fp, against="refundable")
        if created.created:
            log.info("refund created", extra={"refund_no": refund_no, "amount": amount})
            submit(created.refund, actor=actor, order=order)
        return created


def apply_for_refund(*, user_id: str, order_no: str, amount: int, reason: str, idempotency_key: str | None) -> Created:
    """POST /api/app/orders/{order_no}/refund/apply: a player's application, pending review."""
    with log_context(order_no=order_no):
        actor = f"user:{user_id}"
        fp = fingerprint({"op": "apply", "order_no": order_no, "amount": amount, "reason": reason})
        refund_no = make_refund_no(actor, idempotency_key)
        order, replay = _load_for_create(order_no, refund_no, idempotency_key, fp)
        if replay is not None:
            return replay
        if order is None or order.user_id != user_id:
            raise OrderNotFound("订单不存在")  # never reveal another player's order
        if order.open_application:
            raise conflict("REFUND_APPLICATION_PENDING", "该订单已有待审核的退款申请")
        rules.check_refundable(order, amount, now_utc(), against="applicable")
        refund = _new_refund(refund_no, order, amount=amount, reason=reason, status=S.PENDING_REVIEW,
                             origin=RefundOrigin.USER, actor=actor, key=idempotency_key, fp=fp,
                             review_reasons=rules.approval_reasons(order), detail="用户申请退款")
        update = repo.TxItem("order", "update", order,
                             (Order.status == OrderStatus.PAID.value) & (Order.applicable_amount >= amount)
                             & Order.open_application.does_not_exist(),
                             [Order.requested_amount.add(amount), Order.applicable_amount.add(-amount),
                              Order.open_application.set(refund_no)])
        return _create(refund, update, fp=fp, against="applicable")


def approve(*, actor: str, refund_no: str, amount: int | None) -> Refund:
    """pending_review -> submitted (reserving the balance) -> WeChat, once even when two
    operators approve at the same moment."""
    refund = get_refund(refund_no)
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        if refund.status != S.PENDING_REVIEW.value:
            raise invalid_state(refund, "审批")
        if amount is not None and amount > refund.requested_amount:
            raise conflict("AMOUNT_EXCEEDS_REQUESTED", "批准金额不能超过申请金额",
                           requested_amount=refund.requested_amount)
        approved = amount or refund.requested_amount
        detail = "审批通过" + (f"，批准金额 {_yuan(approved)} 元（申请 {_yuan(refund.requested_amount)} 元）"
                            if approved != refund.requested_amount else "")
        try:
            transition(refund, S.SUBMITTED, actor=actor, detail=detail, approved_amount=approved,
                       changes={"reviewer": actor})
        except StaleState:
            raise invalid_state(repo.get_refund(refund_no), "审批") from None
        return submit(refund, actor=actor)


def reject(*, actor: str, refund_no: str, reason: str) -> Refund:
    refund = get_refund(refund_no)
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        if refund.status != S.PENDING_REVIEW.value:
            raise invalid_state(refund, "拒绝")
        try:
            return transition(refund, S.REJECTED, actor=actor, detail=f"审批拒绝：{reason}",
                              changes={"reviewer": actor, "reject_reason": reason})
        except StaleState:
            raise invalid_state(repo.get_refund(refund_no), "拒绝") from None


def preview(*, order_no: str, amount: int) -> dict:
    """What a refund of ``amount`` would do, by the code that executes it. Writes nothing."""
    from . import restoration  # the plan's inventory read lives with restoration

    order = repo.get_order(order_no)
    if order is None:
        raise OrderNotFound("订单不存在")
    now = now_utc()
    rules.check_refundable(order, amount, now)
    reasons = rules.approval_reasons(order)
    inventory = restoration.inventory_of(order)
    plan = rules.restoration_plan(order, amount, order.refunded_amount + order.reserved_amount, inventory)
    body = plan.to_dict()
    body.update({
        "order_no": order_no,
        "requires_approval": bool(reasons),
        "approval_reasons": list(reasons),
        "resulting_status": S.PENDING_REVIEW.value if reasons else S.SUBMITTED.value,
        "resulting_status_label": (S.PENDING_REVIEW if reasons else S.SUBMITTED).label,
        "remaining_after": order.refundable_amount - amount,
        "remaining_after_yuan": _yuan(order.refundable_amount - amount),
        "max_refundable": order.refundable_amount,
        "max_refundable_yuan": _yuan(order.refundable_amount),
    })
    return body


def _yuan(fen: int) -> str:
    from ..domain.money import fen_to_yuan

    return fen_to_yuan(fen)


def get_refund(refund_no: str) -> Refund:
    rules.validate_refund_no(refund_no)
    refund = repo.get_refund(refund_no)
    if refund is None:
        raise RefundNotFound("退款单不存在")
    return refund


def list_refunds(*, status: str | None, order_no: str | None, oldest_first: bool, limit: int,
                 cursor: str | None) -> dict:
    from . import views

    page = repo.list_refunds(status=status, order_no=order_no, oldest_first=oldest_first, limit=limit,
                             cursor=cursor)
    users = repo.get_users(r.user_id for r in page.items)
    items = []
    for r in page.items:
        item = views.refund_view(r, with_events=False)
        item["user"] = views.user_view(r.user_id, users.get(r.user_id))
        items.append(item)
    return {"items": items, "next_cursor": page.next_cursor}


ABNORMAL_TYPES = ("USER_BANK_CARD", "MERCHANT_BANK_CARD")


def resolve_abnormal(*, actor: str, refund_no: str, kind: str, bank_type: str | None = None,
                     bank_account: str | None = None, real_name: str | None = None) -> Refund:
    """An abnormal refund (the player's card was cancelled or frozen) is sent again to a
    card the operator names, through WeChat's apply-abnormal-refund. The card number and
    name are encrypted for WeChat by the gateway and never stored or logged here."""
    refund = get_refund(refund_no)
    wechat = _wechat_errors()
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        if refund.status != S.ABNORMAL.value:
            raise invalid_state(refund, "发起异常退款")
        try:
            result = _gateway().apply_abnormal_refund(
                refund_id=refund.wechat_refund_id, out_refund_no=refund_no, type=kind,
                bank_type=bank_type, bank_account=bank_account, real_name=real_name)
        except wechat.Rejected as err:
            raise conflict("WECHAT_REJECTED", f"微信拒绝了异常退款：{err.message}", wechat_code=err.code) from None
        except wechat.WechatError as err:
            # WeChat may have accepted it: query soon rather than at the slow abnormal cadence
            log.warning("abnormal refund outcome unknown; polling it soon", extra={"code": err.code})
            repo.update(refund, [Refund.work_due_at.set(_work_for(S.PROCESSING, now_utc())["work_due_at"])],
                        Refund.status == S.ABNORMAL.value)
            raise UpstreamUnavailable("微信结果未知，请稍后刷新；仍为退款异常时再重试") from None
        label = "用户银行卡" if kind == "USER_BANK_CARD" else "商户银行卡"
        return apply_outcome(refund, outcome_from_result(result, f"已发起异常退款（退至{label}）"), actor=actor)
