"""Manual tasks: the causes a person must handle, and the rules of each.

A task is a claim on money or goods, not a note. Each cause (``TaskType``) says:
- its label (the enum's), and who may mark it done by hand (a staff permission);
- whether it is *bound to money*: it stands for a refund whose money is not yet in a final
  state, closes itself in the same write that settles that money, and cannot be marked done
  by hand before (the refund would drop out of every queue while still stuck).

A task's id is derived from its cause and subject, never from who noticed it: the same cause
seen by a notification, the poller, reconciliation or restoration is one task. Opening it
again while it is open changes nothing; opening it after it was done reopens it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .enums import Permission, TaskType

T = TaskType
P = Permission


@dataclass(frozen=True)
class TaskKind:
    close_permission: Permission
    bound_to_money: bool = False


KINDS: dict[TaskType, TaskKind] = {
    # what restoration could not put back: goods and prizes, for whoever handles the shop
    T.RETURN_TO_WAREHOUSE: TaskKind(P.TASKS_COMPLETE),
    T.VIRTUAL_NOT_REVOCABLE: TaskKind(P.TASKS_COMPLETE),
    T.INVENTORY_NOT_REVOCABLE: TaskKind(P.TASKS_COMPLETE),
    # money not yet back with the player: finance, and only once it is settled
    T.REFUND_ABNORMAL: TaskKind(P.REFUNDS_RESOLVE, bound_to_money=True),
    T.ACCOUNT_ABNORMAL: TaskKind(P.REFUNDS_RESOLVE, bound_to_money=True),
    T.OFFLINE_PAYOUT: TaskKind(P.REFUNDS_RESOLVE, bound_to_money=True),
    T.POLL_FAILING: TaskKind(P.REFUNDS_RESOLVE, bound_to_money=True),
    # money that moved where our books did not expect it: finance
    T.OUTCOME_CONFLICT: TaskKind(P.REFUNDS_RESOLVE),
    T.PAID_AFTER_CANCEL: TaskKind(P.REFUNDS_RESOLVE),
    T.PAYMENT_MISMATCH: TaskKind(P.REFUNDS_RESOLVE),
    T.UNKNOWN_REFUND: TaskKind(P.REFUNDS_RESOLVE),
    T.RECON_DISCREPANCY: TaskKind(P.REFUNDS_RESOLVE),
    T.EXTERNAL_REFUND: TaskKind(P.REFUNDS_RESOLVE),
    T.EXTERNAL_REFUND_EXCESS: TaskKind(P.REFUNDS_RESOLVE),
    T.REFUND_REFUSED: TaskKind(P.REFUNDS_RESOLVE),
    # a consumer complaint past its reply or resolution deadline: whoever handles complaints
    T.COMPLAINT_OVERDUE: TaskKind(P.COMPLAINTS_HANDLE),
}

BOUND_TO_MONEY = frozenset(t for t, kind in KINDS.items() if kind.bound_to_money)


def kind_of(task_type: TaskType | str) -> TaskKind:
    return KINDS[TaskType(task_type)]


def task_id(task_type: TaskType, subject: str, part: str | None = None) -> str:
    """``<cause>.<subject>[.<part>]``: the subject is what the cause is about (a refund or
    order number, a reconciliation's date and line); ``part`` tells apart several tasks of one
    cause and subject (e.g. each lottery prize of one refund). URL-safe characters only."""
    return f"{task_type.value}.{subject}" + (f".{part}" if part else "")


@dataclass(frozen=True)
class Task:
    """A task to open: its cause, subject, what a person should do, and what it is about."""

    type: TaskType
    subject: str
    action: str
    order_no: str
    part: str | None = None
    refund_no: str | None = None
    user_id: str | None = None
    detail: dict | None = field(default=None, compare=False)

    @property
    def task_id(self) -> str:
        return task_id(self.type, self.subject, self.part)

    @property
    def bound_to_money(self) -> bool:
        return kind_of(self.type).bound_to_money


def for_refund(refund, task_type: TaskType, action: str, *, part: str | None = None,
               detail: dict | None = None) -> Task:
    """A task about one refund (its subject is the refund number)."""
    return Task(task_type, refund.refund_no, action, order_no=refund.order_no, part=part,
                refund_no=refund.refund_no, user_id=refund.user_id, detail=detail)
