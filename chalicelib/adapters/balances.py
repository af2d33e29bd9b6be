"""The order's refund balances, moved only by the named operations below.

Every order keeps, in fen,

    refunded_amount + reserved_amount + refundable_amount == actual_amount
    applicable_amount == refundable_amount - requested_amount

``reserved`` is what is in flight (submitted, processing, abnormal), ``requested`` what
open reviews ask for, ``applicable`` what a new player application may still ask for.
DynamoDB conditions cannot do arithmetic, so each operation moves every affected
attribute by the same amount in one update, and carries the condition that keeps the
invariant true under any interleaving. Each returns one transaction item (label
``"order"``) for the caller's transaction; nothing here commits by itself.

| operation  | when                                   | moves                                   |
|------------|----------------------------------------|-----------------------------------------|
| request    | a refund opens a review                | applicable -> requested                 |
| withdraw   | a review is rejected                   | requested -> applicable                 |
| reserve    | a refund goes to WeChat                | refundable (or requested) -> reserved   |
| release    | WeChat closed or refused it            | reserved -> refundable                  |
| settle     | WeChat refunded it                     | reserved -> refunded                    |
| mark_paid  | the order's payment arrived            | (nothing) -> refundable                 |
| mark_paid_after_cancel | a payment for a cancelled order | (nothing) -> refundable (that payment)  |
"""
from __future__ import annotations

from ..domain.enums import OrderStatus
from ..domain.refunds import MAX_REFUNDS_PER_ORDER
from . import keys
from .models import Order
from .repository import TxItem

LABEL = "order"


def _item(order_no: str, actions: list, condition) -> TxItem:
    return TxItem(LABEL, "update", Order(order_no), condition, actions)


def _status(order_no: str, status: OrderStatus) -> list:
    """Set the order's status and the sharded index key that moves with it."""
    return [Order.status.set(status.value)] + _keys(order_no, {"status": status.value})


def _keys(order_no: str, fields: dict) -> list:
    return [getattr(Order, name).set(value) for name, value in keys.order_keys(order_no, fields).items()]


def _refundable_order():
    """Paid, or cancelled with a payment that arrived afterwards (refunded through the same moves)."""
    return (Order.status == OrderStatus.PAID.value) | (
        (Order.status == OrderStatus.CANCELLED.value) & (Order.paid_after_cancel == True))  # noqa: E712


def request(order_no: str, amount: int, *, application_of: str | None = None) -> TxItem:
    """A review opens for ``amount``. A player's application (``application_of`` = its
    refund_no) must fit what is applicable and is the order's only open one; an operator's
    review must fit the refundable balance."""
    actions = [Order.requested_amount.add(amount), Order.applicable_amount.add(-amount)]
    if application_of is not None:  # players apply on paid orders only
        actions.append(Order.open_application.set(application_of))
        cond = ((Order.status == OrderStatus.PAID.value) & (Order.applicable_amount >= amount)
                & Order.open_application.does_not_exist())
    else:
        cond = _refundable_order() & (Order.refundable_amount >= amount)
    return _item(order_no, actions, cond)


def withdraw(order_no: str, asked: int, *, application: bool) -> TxItem:
    """A review ends without a refund: what it asked for is applicable again."""
    actions = [Order.requested_amount.add(-asked), Order.applicable_amount.add(asked)]
    if application:
        actions.append(Order.open_application.remove())
    return _item(order_no, actions, Order.order_no.exists())


def reserve(order_no: str, amount: int, *, from_request: int = 0, application: bool = False) -> TxItem:
    """``amount`` leaves the refundable balance for WeChat, counting towards WeChat's refunds
    per order. ``from_request`` is what the approved review had asked for (0 for a refund made
    directly): it leaves ``requested`` and whatever approval cut is applicable again."""
    actions = [Order.refundable_amount.add(-amount), Order.reserved_amount.add(amount),
               Order.applicable_amount.add(from_request - amount), Order.refund_count.add(1)]
    if from_request:
        actions.append(Order.requested_amount.add(-from_request))
    if application:
        actions.append(Order.open_application.remove())
    cond = (_refundable_order() & (Order.refundable_amount >= amount)
            & (Order.refund_count < MAX_REFUNDS_PER_ORDER))
    return _item(order_no, actions, cond)


def reserve_external(order_no: str, amount: int) -> TxItem:
    """A refund WeChat made without us holds ``amount`` of the refundable balance like one of
    ours (it settles or releases through the same transitions); WeChat counts it too. Only
    what is still refundable can be booked: more is flagged instead (``hold``)."""
    actions = [Order.refundable_amount.add(-amount), Order.reserved_amount.add(amount),
               Order.applicable_amount.add(-amount), Order.refund_count.add(1)]
    return _item(order_no, actions, Order.order_no.exists() & (Order.refundable_amount >= amount))


def hold(order_no: str, reason: str, now: str) -> TxItem:
    """No refund may be made on the order until a person has looked (the reason is shown)."""
    return _item(order_no, [Order.refund_hold.set(reason), Order.updated_at.set(now)], Order.order_no.exists())


def release(order_no: str, amount: int, *, uncount: bool) -> TxItem:
    """A refund that moved no money gives ``amount`` back. ``uncount`` when WeChat refused it
    outright: it never counted towards WeChat's refunds per order."""
    actions = [Order.reserved_amount.add(-amount), Order.refundable_amount.add(amount),
               Order.applicable_amount.add(amount)]
    if uncount:
        actions.append(Order.refund_count.add(-1))
    return _item(order_no, actions, Order.order_no.exists())


def settle(order_no: str, amount: int, *, refunded_before: int, actual: int, now: str) -> TxItem:
    """WeChat refunded ``amount``. Optimistic on ``refunded_before`` (the value read): two
    refunds of one order settling at once serialise here, and the loser re-reads. The order
    is 已退款 once everything paid has come back."""
    actions = [Order.reserved_amount.add(-amount), Order.refunded_amount.add(amount),
               Order.updated_at.set(now)]
    if refunded_before + amount >= actual:
        actions += _status(order_no, OrderStatus.REFUNDED)
    return _item(order_no, actions, Order.refunded_amount == refunded_before)


def _payment_arrived(order_no: str, total: int, transaction_id: str | None, paid_at: str, now: str) -> list:
    """The payment recorded, and the order entered in the by_paid_day index reconciliation reads
    (and, by its transaction_id, in the by_transaction index the search reads)."""
    return [Order.payment.transaction_id.set(transaction_id), Order.payment.paid_at.set(paid_at),
            Order.refundable_amount.set(total), Order.applicable_amount.set(total), Order.updated_at.set(now),
            Order.pay_check.remove(), Order.pay_check_due_at.remove()] + _keys(
                order_no, {"paid_at": paid_at or now, "transaction_id": transaction_id})


def mark_paid(order_no: str, *, total: int, transaction_id: str | None, paid_at: str, now: str) -> TxItem:
    """A pending order's payment arrived for exactly its amount: all of it becomes refundable,
    and the order leaves the payment-check index."""
    actions = _status(order_no, OrderStatus.PAID) + _payment_arrived(order_no, total, transaction_id, paid_at, now)
    cond = (Order.status == OrderStatus.PENDING.value) & (Order.actual_amount == total)
    return _item(order_no, actions, cond)


def mark_paid_after_cancel(order_no: str, *, total: int, transaction_id: str, paid_at: str, now: str) -> TxItem:
    """A payment arrived for an order already cancelled (balances all zero): the order stays
    已取消, records the payment, and exactly that payment becomes refundable by an operator."""
    actions = [Order.paid_after_cancel.set(True)] + _payment_arrived(order_no, total, transaction_id, paid_at, now)
    cond = ((Order.status == OrderStatus.CANCELLED.value) & (Order.actual_amount == total)
            & Order.paid_after_cancel.does_not_exist() & (Order.refunded_amount == 0)
            & (Order.reserved_amount == 0) & (Order.refundable_amount == 0))
    return _item(order_no, actions, cond)
