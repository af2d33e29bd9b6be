"""Where a refund changes state: ``transition()``, and ``apply_outcome()`` for what WeChat says.

Every path that learns something about a refund (the create/approve call's answer, a
notification, a poll, an operator's decision) ends in ``transition()``. It asks the domain
whether the move is allowed and what it does to the order's balances, then commits it as
one conditional write, or one transaction when balances move (``adapters/balances.py``),
keyed on the status it read. Racing paths lose the condition, re-read, and either apply
what is still allowed or become no-ops. When a refund is next looked at (its place in the
sparse work index) is decided here too, by the domain's one backoff formula.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from ..adapters import balances, outbox
from ..adapters import repository as repo
from ..adapters import staff as staff_store
from ..adapters.models import Order, Refund
from ..config import settings
from ..domain import refunds as refund_rules
from ..domain import staff as staff_rules
from ..domain import tasks as task_rules
from ..domain.enums import OfflineReason, RefundOrigin, RefundStatus, RestorationStatus, TaskType
from ..domain.errors import Conflict, DomainError, ErrorCode, OrderNotFound, OutcomeMismatch, conflict
from ..domain.refunds import Balance, Outcome
from . import edges, player_messages
from ..log import get_logger, log_context
from ..domain import clock
from ..domain import events

S = RefundStatus
log = get_logger(__name__)
MAX_RACE_RETRIES = 8


class StaleState(Exception):
    """The refund moved on since it was read; the write did not happen."""


class DuplicateNotification(Exception):
    """This notification id was processed before."""


class SettleContended(Exception):
    """Other refunds of the order settled first, ``contended_after`` times running: the caller
    asked not to wait its turn (a notification, which WeChat gives 5 s)."""


def invalid_state(refund: Refund, action: str) -> Conflict:
    status = RefundStatus(refund.status)
    return conflict(ErrorCode.INVALID_REFUND_STATE, f"退款单当前状态为{status.label}，不能{action}",
                    status=status.value)


# ---------------------------------------------------------------- when a refund is next looked at


def work_for(status: RefundStatus, now: datetime, attempts: int = 0) -> dict:
    """Which sparse-index queue a refund in ``status`` sits in, and when it is next due."""
    s = settings()
    if status in refund_rules.AWAITING_WECHAT:
        delay = refund_rules.poll_delay(status, attempts, poll_after=s.poll_after_seconds,
                                 abnormal_every=s.abnormal_poll_seconds)
        return {"work": "poll", "work_due_at": clock.iso(now + timedelta(seconds=delay))}
    if status == S.SUCCESS:
        return {"work": "restore", "work_due_at": clock.iso(now + timedelta(seconds=s.restore_sweep_seconds))}
    return {"work": None, "work_due_at": None}


def check_later(refund: Refund, *, seconds: int | None = None, failed: bool = False) -> int:
    """A check found nothing new (or, ``failed``, could not ask or apply): back off by one step,
    or to ``seconds``. Conditional on the status read, so it never touches a refund that has
    moved on. Returns the failures in a row (0 after a check that worked)."""
    attempts = (refund.poll_attempts or 0) + 1
    failures = (refund.poll_failures or 0) + 1 if failed else 0
    now = clock.now()
    due = (clock.iso(now + timedelta(seconds=seconds)) if seconds is not None
           else work_for(RefundStatus(refund.status), now, attempts)["work_due_at"])
    repo.schedule_work(refund.refund_no, due_at=due, status=refund.status, attempts=attempts, failures=failures)
    return failures


def check_soon(refund: Refund) -> None:
    """Query this refund at the first check's delay, whatever its backoff says."""
    repo.schedule_work(refund.refund_no, due_at=work_for(S.PROCESSING, clock.now())["work_due_at"],
                       status=refund.status)


# ---------------------------------------------------------------- the one transition


def _balance_move(effect: Balance, src: RefundStatus, dst: RefundStatus, refund: Refund, order: Order | None,
                  approved: int | None, now: str) -> tuple[repo.TxItem, dict]:
    """The order's balance operation for a transition, and what it changes on the refund."""
    application = refund.origin == RefundOrigin.USER.value
    if effect == Balance.RESERVE:
        amount = approved if approved is not None else refund.requested_amount
        return (balances.reserve(refund.order_no, amount, from_request=refund.requested_amount,
                                 application=application), {"amount": amount})
    if effect == Balance.WITHDRAW:
        return balances.withdraw(refund.order_no, refund.requested_amount, application=application), {}
    if effect == Balance.RELEASE:
        return balances.release(refund.order_no, refund.amount, uncount=refund_rules.release_uncounts(src, dst)), {}
    if effect == Balance.SETTLE:
        assert order is not None, "settling needs the order's current refunded amount"
        item = balances.settle(refund.order_no, refund.amount, refunded_before=order.refunded_amount,
                               actual=order.actual_amount, now=now)
        return item, {"cumulative_refunded": order.refunded_amount + refund.amount,
                      "restoration_status": RestorationStatus.PENDING.value}
    raise ValueError(effect)  # pragma: no cover - callers only pass moving effects


def transition(refund: Refund, dst: RefundStatus, *, actor: str, detail: str | None = None,
               outcome: Outcome | None = None, changes: dict | None = None,
               receipt: repo.Receipt | None = None, order: Order | None = None,
               approved_amount: int | None = None, tasks: tuple = (), also: tuple = (),
               contended_after: int | None = None, absent: tuple = ()) -> Refund:
    """Move ``refund`` to ``dst`` (or, when ``dst`` is its status, record an event and
    field changes) as one conditional write. Updates ``refund`` in place.

    Raises StaleState when the refund is no longer in the status it was read in,
    DuplicateNotification when ``receipt`` was seen before, and a 409 Conflict when a
    reservation does not fit the order's balance. ``also``: more transaction items committed
    with the change (e.g. the operator's activity record); ``absent``: refund fields the change
    must be the first to set (part of its condition). A settlement is keyed on the order's
    refunded total as read (the restoration's pro-rata needs each refund's exact place in it), so
    refunds of one order settling at once take turns: the one that loses re-reads and tries again,
    or, after ``contended_after`` lost turns, raises SettleContended.
    """
    src = RefundStatus(refund.status)
    if dst != src and not refund_rules.can_transition(src, dst):
        raise invalid_state(refund, f"变为{dst.label}")
    now = clock.now()
    fields: dict = {"status": dst.value, "updated_at": clock.iso(now)}
    if dst != src:
        fields.update(work_for(dst, now))
        fields["poll_attempts"] = 0
        fields["poll_failures"] = 0
    if outcome is not None:
        fields.update(outcome.fields())
    if dst == S.SUCCESS and dst != src:
        fields["success_actor"] = actor
    fields.update(changes or {})
    event = repo.refund_event(at=clock.iso(now), actor=actor, from_status=src.value, to_status=dst.value,
                              detail=(detail or (outcome.detail if outcome else None)))
    effect = refund_rules.balance_effect(src, dst) if dst != src else Balance.NONE
    charged = refund.allowance_charged if staff_rules.gives_allowance_back(src, dst) else None
    if charged:  # WeChat refused it: what sending it used of the person's day is theirs again
        fields["allowance_charged"] = None

    lost = 0
    for _attempt in range(MAX_RACE_RETRIES):
        written = dict(fields)
        items = []
        if effect != Balance.NONE:
            move, refund_changes = _balance_move(effect, src, dst, refund, order, approved_amount, clock.iso(now))
            written.update(refund_changes)
            items.append(move)
        told = []
        if dst != src:  # the player's subscription messages this change uses (one per consent)
            consents, told = player_messages.messages_for(
                refund, src, dst, at=event.at, amount=written.get("amount", refund.amount),
                note=written.get("reject_reason"), offline=bool(written.get("offline_payout")))
            if consents is not None:
                written["subscriptions"] = consents
        bound = [t.task_id for t in tasks if t.bound_to_money]
        settled = sorted(refund.open_tasks or ()) if dst != src and dst in refund_rules.FINAL else []
        items.insert(0, repo.refund_change(refund, expected_status=src.value, fields=written, event=event,
                                           bind_tasks=bound, settle_tasks=bool(settled), absent=absent))
        if receipt is not None:
            items.append(repo.notify_receipt(receipt))
        items.extend(repo.open_task(t, now=clock.iso(now), by=actor) for t in tasks)
        items.extend(repo.settle_task(task_id, by=actor, note=event.detail or f"退款{dst.label}", now=clock.iso(now))
                     for task_id in settled)
        if charged:
            items.append(staff_store.give_back(charged["person"], charged["day"], charged["amount"],
                                               now=clock.iso(now)))
        items.extend(also)
        items.extend(told)
        if dst != src:  # the change's domain event, stored only if the change is made
            items.append(outbox.put(change_event(refund, src, dst, at=event.at, actor=actor,
                                                 amount=written.get("amount", refund.amount)), now=event.at))
        try:
            repo.write(items)
        except repo.WriteConflict as c:
            if c.failed("receipt"):
                raise DuplicateNotification(receipt.notify_id) from None
            if c.failed("refund") or c.failed(outbox.LABEL) or c.failed(player_messages.LABEL):
                raise StaleState(refund.refund_no) from None
            if effect == Balance.SETTLE and (c.failed(balances.LABEL) or c.reasons.get(balances.LABEL)
                                             == "TransactionConflict"):
                lost += 1  # another refund of the order settled first (or was settling)
                if contended_after is not None and lost >= contended_after:
                    raise SettleContended(refund.refund_no) from None
                order = repo.get_order(refund.order_no)  # re-read its refunded total, try again
                continue
            if c.failed(balances.LABEL) and effect == Balance.RESERVE:
                raise reservation_error(refund.order_no, approved_amount or refund.requested_amount,
                                        against="refundable") from None
            raise
        for k, v in written.items():
            setattr(refund, k, v)
        refund.open_tasks = None if settled else ((set(refund.open_tasks or ()) | set(bound)) or None)
        refund.events, dropped = refund_rules.capped_events(refund.events or [], event)
        refund.events_dropped = (refund.events_dropped or 0) + dropped if dropped else refund.events_dropped
        log.info("refund event", extra={"from": event.from_status, "to": event.to_status, "actor": actor,
                                        "detail": event.detail})
        if dst == S.SUCCESS and src != S.SUCCESS:
            # after the commit; if this send is lost, the durable restore marker lets the sweeper retry
            edges.publisher().publish_restore(refund.refund_no, refund.order_no)
        return refund
    raise StaleState(refund.refund_no)


def change_event(refund: Refund, src: RefundStatus | None, dst: RefundStatus, *, at: str, actor: str,
                 amount: int | None = None):
    """The domain event of ``refund`` moving from ``src`` (None: created) to ``dst``: numbered by
    the change's place in the refund's history, so the same change is always the same event."""
    seq = len(refund.events or []) + (refund.events_dropped or 0) if src is not None else 0
    return events.refund_status_changed(
        refund_no=refund.refund_no, order_no=refund.order_no, user_id=refund.user_id, origin=refund.origin,
        seq=seq, from_status=src.value if src is not None else None, to_status=dst.value,
        amount=refund.amount if amount is None else amount, requested_amount=refund.requested_amount, at=at,
        actor=actor)


def created_event(refund: Refund) -> repo.TxItem:
    """The outbox item of a refund's creation (in the transaction that puts it)."""
    return outbox.put(change_event(refund, None, RefundStatus(refund.status), at=refund.created_at,
                                   actor=refund.created_by), now=refund.created_at)


def reservation_error(order_no: str, amount: int, *, against: str) -> DomainError:
    """Explain, from a fresh read, why a reservation's condition failed."""
    order = repo.get_order(order_no)
    if order is None:
        return OrderNotFound("订单不存在")
    try:
        refund_rules.check_refundable(order, amount, clock.now(), against=against)
    except DomainError as err:
        return err
    if against == "applicable" and order.open_application:
        return conflict(ErrorCode.REFUND_APPLICATION_PENDING, "该订单已有待审核的退款申请")
    return conflict(ErrorCode.AMOUNT_EXCEEDS_REFUNDABLE, "可退余额已变化，请刷新后重试")


# ---------------------------------------------------------------- what WeChat says


def apply_outcome(refund: Refund, outcome: Outcome, *, actor: str, receipt: repo.Receipt | None = None,
                  order: Order | None = None, contended_after: int | None = None) -> Refund:
    """Apply what WeChat said about ``refund``, whoever heard it (create/approve answer,
    notification, poll). Idempotent: repeating it, or losing a race, changes nothing twice.
    Raises OutcomeMismatch when WeChat names another amount than ours, SettleContended as
    ``transition`` does."""
    with log_context(refund_no=refund.refund_no, order_no=refund.order_no):
        if outcome.amount is not None and outcome.amount != refund.amount:
            log.error("wechat amount does not match our refund; not applied",
                      extra={"ours": refund.amount, "theirs": outcome.amount, "actor": actor})
            raise OutcomeMismatch("金额与退款单不一致", ours=refund.amount, theirs=outcome.amount)
        for _attempt in range(MAX_RACE_RETRIES):
            src = RefundStatus(refund.status)
            dst = outcome.status
            if dst == src or not refund_rules.can_transition(src, dst):
                if dst != src:
                    _outcome_not_applied(refund, src, dst, actor)
                return refund
            tasks = _tasks_for(refund, dst, outcome, actor)
            if refund_rules.balance_effect(src, dst) == Balance.SETTLE and order is None:
                order = repo.get_order(refund.order_no)
            try:
                transition(refund, dst, actor=actor, outcome=outcome, receipt=receipt, order=order, tasks=tasks,
                           contended_after=contended_after)
            except StaleState:
                refund = repo.get_refund(refund.refund_no)
                continue
            except DuplicateNotification:
                log.info("duplicate notification ignored", extra={"notify_id": receipt.notify_id})
                return repo.get_refund(refund.refund_no)
            return refund  # transition() logged the change ("refund event": from, to, actor, detail)
        raise StaleState(refund.refund_no)


def _outcome_not_applied(refund: Refund, src: RefundStatus, dst: RefundStatus, actor: str) -> None:
    """An outcome that no longer applies is normal after a race (a late PROCESSING), except
    when WeChat says money moved for a refund we closed: a person must look at it."""
    if dst == S.SUCCESS and src in (S.CLOSED, S.FAILED):
        log.error("wechat reports success for a refund recorded as " + src.value,
                  extra={"from": src.value, "actor": actor})
        repo.write([repo.open_task(task_rules.for_refund(
            refund, TaskType.OUTCOME_CONFLICT, f"微信报告退款成功，但本地记录为{src.label}：请核对资金，勿重复退款"),
            now=clock.iso(clock.now()), by=actor)])
        return
    log.info("outcome no longer applies", extra={"from": src.value, "to": dst.value, "actor": actor})


def _tasks_for(refund: Refund, dst: RefundStatus, outcome: Outcome, actor: str) -> tuple:
    """Manual tasks born with a transition (in its transaction, so never lost)."""
    if dst == S.FAILED and not staff_rules.is_person(actor):
        return (task_rules.for_refund(
            refund, TaskType.REFUND_REFUSED,
            f"微信拒绝了重新提交的退款（{outcome.failure_code}：{outcome.failure_message}），退款失败、金额已退回可退余额："
            "请核对原因后重新发起退款（或线下退款）"),)
    if dst == S.OFFLINE_PENDING and outcome.offline_reason == OfflineReason.WINDOW_EXPIRED:
        return (task_rules.for_refund(refund, TaskType.OFFLINE_PAYOUT,
                                      "订单已超过支付后一年，微信不再受理退款：请通过其他方式退款给用户，并在后台登记线下退款"),)
    if dst == S.ABNORMAL:
        return (task_rules.for_refund(refund, TaskType.REFUND_ABNORMAL,
                                      "退款异常（用户银行卡注销或冻结），请联系用户并发起异常退款"),)
    if dst == S.OFFLINE_PENDING and outcome.offline_reason == OfflineReason.USER_ACCOUNT_ABNORMAL:
        return (task_rules.for_refund(refund, TaskType.ACCOUNT_ABNORMAL,
                                      "用户微信账户异常，微信无法退款：请通过其他方式退款给用户，并在后台登记线下退款"
                                      "（或取消该退款）"),)
    if dst == S.OFFLINE_PENDING:
        return (task_rules.for_refund(refund, TaskType.OFFLINE_PAYOUT,
                                      "异常退款已退至商户银行卡，用户尚未收到：请将款项转给用户，并在后台登记线下退款"),)
    return ()

