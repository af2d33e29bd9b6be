"""DynamoDB access: reads, paginated index queries, and the named writes (refund changes,
receipts, tasks, work scheduling, restoration) that services combine into one conditional
write or one transaction. Order balances move only through ``balances.py``. Services call
these; no service builds an update expression or touches pynamodb's write API."""
from __future__ import annotations

import random
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from pynamodb.connection import Connection
from pynamodb.constants import NONE
from pynamodb.expressions.condition import size
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactGet, TransactWrite

from ..domain.enums import CouponStatus, InventoryStatus, OrderStatus, RestorationStatus, ShippingStatus, TaskStatus
from ..domain.refunds import capped_events
from ..domain.tasks import Task
from . import keys, models, pages
from .pages import Page
from .models import (InventoryItem, ManualTask, NotifyReceipt, Order, PayoutReference, PointsEntry, Refund,
                     RefundEvent, TaskEntry, User, UserCoupon)

_conn_lock = threading.Lock()
_conn: tuple | None = None


def connection() -> Connection:
    """One shared Connection for transactions (a new one costs a TLS handshake)."""
    global _conn
    models.bind()
    key = (Order.Meta.region, Order.Meta.host)
    with _conn_lock:
        if _conn is None or _conn[0] != key:
            _conn = (key, Connection(region=key[0], host=key[1]))
        return _conn[1]


# ---------------------------------------------------------------- orders and users


def get_order(order_no: str) -> Order | None:
    models.bind()
    try:
        return Order.get(order_no)
    except DoesNotExist:
        return None


def get_user(user_id: str) -> User | None:
    models.bind()
    try:
        return User.get(user_id)
    except DoesNotExist:
        return None


def _by_key(model, keys: Iterable[str]) -> dict:
    """Items of ``model`` by their hash key (BatchGetItem, 100 keys a call); missing keys left out."""
    models.bind()
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    name = model._hash_keyname
    return {getattr(item, name): item for item in model.batch_get(wanted)}


def get_users(user_ids: Iterable[str]) -> dict[str, User]:
    return _by_key(User, user_ids)


def list_orders(*, status: int | None, source_type: int | None, user_id: str | None,
                limit: int, cursor: str | None, created: tuple[str, str] | None = None) -> Page:
    """Orders newest first; ``created``: the inclusive range of their ``created_at`` (every
    index read here is sorted by it: the range is the query's key condition)."""
    models.bind()
    span = Order.created_at.between(*created) if created else None
    filt = None
    if user_id is not None:
        index, hash_key = Order.by_user, user_id
        if status is not None:
            filt = Order.status == status
    if source_type is not None:
        cond = Order.source_type == source_type
        filt = cond if filt is None else (filt & cond)
    if user_id is not None:
        return pages.page(Order, index, hash_key, newest_first=True, limit=limit, cursor=cursor, filter_condition=filt,
                          range_key_condition=span)
    if status is not None:
        index, hash_keys = Order.by_status, keys.shard_keys(status, "status")
    else:
        index, hash_keys = Order.by_time, keys.shard_keys("ORDER", "list")
    return pages.fanout_page(Order, index, hash_keys, "created_at", newest_first=True, limit=limit, cursor=cursor,
                             filter_condition=filt, range_key_condition=span)


# ---------------------------------------------------------------- refunds


def get_refund(refund_no: str, consistent: bool = True) -> Refund | None:
    models.bind()
    try:
        return Refund.get(refund_no, consistent_read=consistent)
    except DoesNotExist:
        return None


def get_refunds(refund_nos: Iterable[str]) -> dict[str, Refund]:
    """Refunds by number; numbers with no refund are left out."""
    return _by_key(Refund, refund_nos)


def get_order_and_refund(order_no: str, refund_no: str) -> tuple[Order | None, Refund | None]:
    """Both items in one round trip (a transactional read: a consistent snapshot)."""
    models.bind()
    with TransactGet(connection=connection()) as tg:
        of = tg.get(Order, order_no)
        rf = tg.get(Refund, refund_no)
    return _future(of), _future(rf)


def _future(fut):
    try:
        return fut.get()
    except DoesNotExist:
        return None


def transact_get_limit() -> int:
    """Items one TransactGetItems may read: 100 on DynamoDB; the local endpoint (moto) still
    enforces the former limit of 25."""
    from .. import config

    return 25 if config.aws_endpoint("dynamodb") else 100


def order_snapshot(order_no: str, refund_nos: list[str], user_id: str | None):
    """The order, its user and the named refunds as one consistent snapshot (TransactGetItems is
    serialised with the transactions that move an order's balances together with a refund).
    Returns ``(order, user, refunds)``; refunds in the order given, missing ones left out.
    More refunds than one snapshot holds are read by key after the order (not a snapshot:
    the caller checks the totals)."""
    models.bind()
    room = transact_get_limit() - 2
    if len(refund_nos) > room:
        order, user, first = order_snapshot(order_no, refund_nos[:room], user_id)
        rest = {r.refund_no: r for r in Refund.batch_get(refund_nos[room:], consistent_read=True)}
        return order, user, first + [rest[n] for n in refund_nos[room:] if n in rest]
    with TransactGet(connection=connection()) as tg:
        of = tg.get(Order, order_no)
        uf = tg.get(User, user_id) if user_id else None
        rfs = [tg.get(Refund, no) for no in refund_nos]
    refunds = [r for r in (_future(f) for f in rfs) if r is not None]
    return _future(of), (_future(uf) if uf is not None else None), refunds


def refunds_of_order(order_no: str) -> list[Refund]:
    """All refunds of an order, newest first: one Query (≤ 50 refunds per order)."""
    models.bind()
    return list(Refund.by_order.query(order_no, scan_index_forward=False))


def due_work(kind: str, due_before: str, limit: int) -> list[str]:
    """refund_nos whose work of ``kind`` is due: a Query on the sparse index, never a Scan."""
    models.bind()
    due = pages.fanout_due(Refund.pending_work, keys.shard_keys(kind, "work"), Refund.work_due_at <= due_before,
                      limit, "work_due_at")
    return [r.refund_no for r in due]


def due_payment_checks(due_before: str, limit: int) -> list[str]:
    """order_nos whose payment is due to be asked about: a Query on the sparse index."""
    models.bind()
    due = pages.fanout_due(Order.awaiting_payment, keys.shard_keys(keys.PAY_CHECK, "pay_check"),
                      Order.pay_check_due_at <= due_before, limit, "pay_check_due_at")
    return [o.order_no for o in due]


def schedule_pay_check(order_no: str, *, due_at: str, attempts: int) -> bool:
    """Ask about a pending order's payment again at ``due_at`` (if it is still pending)."""
    return update(Order(order_no), [Order.pay_check_due_at.set(due_at), Order.pay_check_attempts.set(attempts)],
                  (Order.status == OrderStatus.PENDING.value) & Order.pay_check.exists())


def end_pay_check(order_no: str) -> bool:
    """Stop asking about an order's payment (it is no longer pending, or too old)."""
    return update(Order(order_no), [Order.pay_check.remove(), Order.pay_check_due_at.remove()],
                  Order.pay_check.exists())


class WriteConflict(Exception):
    """A write's condition failed. ``reasons`` maps item label -> DynamoDB reason code."""

    def __init__(self, reasons: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in reasons.items()))
        self.reasons = reasons

    def failed(self, label: str) -> bool:
        return self.reasons.get(label) == "ConditionalCheckFailed"


@dataclass
class TxItem:
    """One write in a transaction, labelled so a failure can name the item that caused it."""

    label: str
    kind: str  # "put" | "update" | "check"
    model: object
    condition: object = None
    actions: list | None = None


# pynamodb's TransactWrite sends condition checks, then deletes, puts and updates, whatever
# order they were added in, and CancellationReasons follow the sent order. Items are sorted
# the same way here so reason i belongs to item i (pinned by tests/unit/test_repository.py).
SEND_ORDER = {"check": 0, "delete": 1, "put": 2, "update": 3}
_CONFLICT_RETRIES = 6


def _backoff(attempt: int) -> None:
    time.sleep(min(0.2, 0.005 * (2 ** attempt)) * (0.5 + random.random()))


def write(items: list[TxItem]) -> None:
    """Commit ``items`` all or nothing, or raise ``WriteConflict`` naming the items whose
    condition failed. One item is a plain conditional write (half the cost of a transaction)."""
    if len(items) == 1 and items[0].kind in ("update", "put"):
        it = items[0]
        ok = update(it.model, it.actions, it.condition) if it.kind == "update" else put(it.model, it.condition)
        if not ok:
            raise WriteConflict({it.label: "ConditionalCheckFailed"})
        return
    transact(items)


def transact(items: list[TxItem]) -> None:
    """Commit ``items`` atomically or raise ``WriteConflict`` naming what failed.

    A ``TransactionConflict`` (another transaction held one of the items at that moment)
    says nothing about our conditions, so the same transaction is tried again."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            return _transact_once(items)
        except WriteConflict as c:
            if attempt + 1 < _CONFLICT_RETRIES and c.reasons and \
                    all(r == "TransactionConflict" for r in c.reasons.values()):
                _backoff(attempt)
                continue
            raise


def sent_order(items: list[TxItem]) -> list[TxItem]:
    return sorted(items, key=lambda i: SEND_ORDER[i.kind])  # stable within a kind


def _transact_once(items: list[TxItem]) -> None:
    models.bind()
    ordered = sent_order(items)
    try:
        with TransactWrite(connection=connection()) as tx:
            for it in ordered:
                if it.kind == "put":
                    tx.save(it.model, condition=it.condition)
                elif it.kind == "update":
                    tx.update(it.model, actions=it.actions, condition=it.condition)
                elif it.kind == "delete":
                    tx.delete(it.model, condition=it.condition)
                else:
                    model_cls, key = it.model
                    tx.condition_check(model_cls, key, condition=it.condition)
    except TransactWriteError as exc:
        if exc.cause_response_code != "TransactionCanceledException":
            raise
        raise WriteConflict(cancellation_reasons(ordered, exc.cancellation_reasons)) from exc


def cancellation_reasons(ordered: list[TxItem], reasons: list) -> dict[str, str]:
    """label -> reason code for every item DynamoDB names, by its index in the sent list."""
    out = {}
    for it, reason in zip(ordered, reasons):
        if reason is not None and reason.code not in (None, "None"):
            out[it.label] = reason.code
    return out


def update(model, actions: list, condition=None) -> bool:
    """A single conditional update; False when the condition did not hold.

    Nothing is read back (``ReturnValues=NONE``): ``model`` is not refreshed, so a caller that
    keeps using it applies the values it wrote itself."""
    models.bind()
    hash_key, range_key = model._get_hash_range_key_serialized_values()
    for attempt in range(_CONFLICT_RETRIES):
        try:
            type(model)._get_connection().update_item(hash_key, range_key=range_key, actions=actions,
                                                      condition=condition, return_values=NONE)
            return True
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            if exc.cause_response_code == "TransactionConflictException" and attempt + 1 < _CONFLICT_RETRIES:
                _backoff(attempt)  # the item is inside someone's transaction right now
                continue
            raise
    return False  # pragma: no cover - the loop returns or raises


def put(model, condition) -> bool:
    """A single conditional put; False when the condition did not hold."""
    models.bind()
    try:
        model.save(condition=condition)
        return True
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise


# ---------------------------------------------------------------- refund writes


def refund_event(*, at: str, actor: str, from_status: str | None, to_status: str, detail: str | None) -> RefundEvent:
    """One line of a refund's history (written by ``new_refund`` and ``refund_change``)."""
    return RefundEvent(at=at, actor=actor, from_status=from_status, to_status=to_status, detail=detail)


def new_refund(refund_no: str, fields: dict) -> TxItem:
    """Put a refund that does not exist yet (its refund_no is the idempotency key's image); the
    item's ``model`` is the refund as written."""
    refund = Refund(refund_no, **fields)
    for name, value in keys.refund_keys(refund.refund_no, {"status": refund.status, "work": refund.work,
                                                        "success_time": refund.success_time,
                                                        "updated_at": refund.updated_at,
                                                        "accepted_at": refund.accepted_at}).items():
        setattr(refund, name, value)
    return TxItem("refund", "put", refund, Refund.refund_no.does_not_exist())


def _with_keys(refund: Refund, fields: dict) -> dict:
    """``fields`` and the index keys that follow from the refund as it will be once they are
    written (a success's day comes from its success time, whoever sets it)."""
    after = {"status": refund.status, "success_time": refund.success_time, "updated_at": refund.updated_at,
             "accepted_at": refund.accepted_at, **fields}
    touched = {"status_key": "status" in fields, "work": bool(fields.get("work")),
               "success_day_key": "status" in fields or "success_time" in fields,
               "accepted_day_key": "accepted_at" in fields}
    return {**fields, **{k: v for k, v in keys.refund_keys(refund.refund_no, after).items() if touched[k]}}


def refund_change(refund: Refund, *, expected_status: str, fields: dict, event: RefundEvent | None,
                  bind_tasks: Iterable[str] = (), settle_tasks: bool = False, absent: Iterable[str] = ()) -> TxItem:
    """Set ``fields`` (None removes one) and append ``event``, if the refund is still in
    ``expected_status``: the condition every refund transition is keyed on.

    ``bind_tasks``: ids of tasks bound to the refund's money, opened in the same write;
    ``settle_tasks``: the money is settled, the refund lets go of its bound tasks (the caller
    closes them, ``settle_task``). Either is conditional on the bound tasks as read, so a task
    bound meanwhile is never left open behind a settled refund.

    A refund's history is capped (``domain.refunds.capped_events``): past the cap, the first event (who asked)
    and the latest ones are kept and ``events_dropped`` counts the rest. The list is then
    rewritten whole, conditional on its length as read, so a concurrent append is never lost."""
    actions = [getattr(Refund, k).set(v) if v is not None else getattr(Refund, k).remove()
               for k, v in _with_keys(refund, fields).items()]
    condition = Refund.status == expected_status
    for name in absent:  # fields the change must be the first to set
        condition = condition & getattr(Refund, name).does_not_exist()
    if event is not None:
        known = list(refund.events or [])
        events, dropped = capped_events(known, event)
        if dropped:
            actions.append(Refund.events.set(events))
            actions.append(Refund.events_dropped.set((refund.events_dropped or 0) + dropped))
            condition = condition & (size(Refund.events) == len(known))
        else:
            actions.append(Refund.events.set(Refund.events.append([event])))
    if bind_tasks or settle_tasks:
        known = len(refund.open_tasks or ())
        condition = condition & (size(Refund.open_tasks) == known if known else Refund.open_tasks.does_not_exist())
        actions.append(Refund.open_tasks.remove() if settle_tasks else Refund.open_tasks.add(set(bind_tasks)))
    return TxItem("refund", "update", refund, condition, actions)


def bind_task(refund: Refund, task: Task, *, now: str, by: str) -> list[TxItem]:
    """Open a task bound to ``refund``'s money while the refund is still in the status read."""
    return [open_task(task, now=now, by=by),
            TxItem("refund", "update", Refund(refund.refund_no), Refund.status == refund.status,
                   [Refund.open_tasks.add({task.task_id})])]


@dataclass(frozen=True)
class Receipt:
    """A WeChat notification being processed: its id is remembered with the change it causes."""

    notify_id: str
    event_type: str
    subject: str | None
    received_at: str
    expires_at: int  # epoch seconds (the table's TTL)


def payout_reference(channel: str, reference: str, *, refund_no: str, by: str, now: str) -> TxItem:
    """Claim ``reference`` of ``channel`` for one refund's offline payout (fails when it was
    claimed before: label ``payout_reference``)."""
    key = f"{channel}#{unicodedata.normalize('NFKC', reference).strip().casefold()}"
    item = PayoutReference(key, refund_no=refund_no, recorded_by=by, recorded_at=now)
    return TxItem("payout_reference", "put", item, PayoutReference.reference_key.does_not_exist())


def payout_reference_owner(channel: str, reference: str) -> str | None:
    """The refund whose payout already claimed ``reference`` of ``channel``, if any."""
    models.bind()
    key = f"{channel}#{unicodedata.normalize('NFKC', reference).strip().casefold()}"
    try:
        return PayoutReference.get(key).refund_no
    except DoesNotExist:
        return None


def notify_receipt(receipt: Receipt) -> TxItem:
    """Remember a processed notification id; fails when it was processed before."""
    item = NotifyReceipt(receipt.notify_id, event_type=receipt.event_type, subject=receipt.subject,
                         received_at=receipt.received_at, expires_at=receipt.expires_at)
    return TxItem("receipt", "put", item, NotifyReceipt.notify_id.does_not_exist())


def schedule_work(refund_no: str, *, due_at: str, status: str, attempts: int | None = None,
                  failures: int | None = None, work: str | None = None) -> bool:
    """Move a refund's next check (counting checks, and failures in a row), if it is still in
    ``status`` (and, with ``work``, still in that queue)."""
    actions = [Refund.work_due_at.set(due_at)]
    if attempts is not None:
        actions.append(Refund.poll_attempts.set(attempts))
    if failures is not None:
        actions.append(Refund.poll_failures.set(failures))
    cond = Refund.status == status
    if work is not None:
        cond = cond & Refund.work.startswith(f"{work}#")
    return update(Refund(refund_no), actions, cond)


def leave_work_queue(refund_no: str, *, status: str, work: str) -> bool:
    """Drop a refund from the sparse work index (its outcome arrived another way)."""
    return update(Refund(refund_no), [Refund.work.remove(), Refund.work_due_at.remove()],
                  (Refund.status == status) & Refund.work.startswith(f"{work}#"))


# ---------------------------------------------------------------- restoration writes


def restoration_items(*, refund_no: str, user_id: str, order_no: str, points: int,
                      coupon_id: str | None, revoke_inventory: Iterable[str], revoke_virtual: bool,
                      cancel_shipment: bool, shipping_exception: str | None, tasks: Iterable[Task],
                      outcome: dict, now: str) -> list[TxItem]:
    """Everything a successful refund puts back, as one transaction: the points ledger entry
    and balance, the coupon, lottery inventory, the order's fulfilment and shipment flags,
    manual tasks, and the done marker that makes a redelivered message a no-op. Each item keeps
    the condition under which the plan was made, so a concurrent change cancels the whole."""
    items: list[TxItem] = []
    if points:
        points_entry = PointsEntry(user_id, f"refund_restore#{refund_no}", action="refund_restore", points=points,
                                   order_no=order_no, refund_no=refund_no, created_at=now)
        items.append(TxItem("points_entry", "put", points_entry, PointsEntry.entry_id.does_not_exist()))
        items.append(TxItem("points_balance", "update", User(user_id), None,
                            [User.points_balance.add(points_entry.points)]))
    if coupon_id:
        items.append(TxItem("coupon", "update", UserCoupon(user_id, coupon_id),
                            UserCoupon.status == CouponStatus.USED.value,
                            [UserCoupon.status.set(CouponStatus.UNUSED.value),
                             UserCoupon.restored_by_refund.set(refund_no), UserCoupon.updated_at.set(now)]))
    for item_id in revoke_inventory:
        items.append(TxItem(f"inventory:{item_id}", "update", InventoryItem(user_id, item_id),
                            InventoryItem.status == InventoryStatus.HELD.value,
                            [InventoryItem.status.set(InventoryStatus.REVOKED.value),
                             InventoryItem.revoked_by_refund.set(refund_no), InventoryItem.updated_at.set(now)]))
    actions, conditions = [], []
    if revoke_virtual:
        actions += [Order.virtual.revoked.set(True), Order.virtual.revoked_at.set(now),
                    Order.virtual.revoked_by_refund.set(refund_no)]
        conditions.append(Order.virtual.revoked == False)  # noqa: E712 - a DynamoDB condition, not a bool test
    if cancel_shipment:
        actions.append(Order.shipping.cancelled.set(True))
        conditions.append(Order.shipping.status == ShippingStatus.PENDING.value)
    if shipping_exception:
        actions += [Order.shipping.status.set(ShippingStatus.EXCEPTION.value),
                    Order.shipping.exception_reason.set(shipping_exception)]
        conditions.append(Order.shipping.status.is_in(ShippingStatus.SHIPPED.value, ShippingStatus.SIGNED.value))
    if actions:
        cond = conditions[0]
        for extra in conditions[1:]:
            cond = cond & extra
        items.append(TxItem("order", "update", Order(order_no), cond, actions + [Order.updated_at.set(now)]))
    items.extend(open_task(t, now=now, by="restoration") for t in tasks)
    items.append(TxItem("restoration", "update", Refund(refund_no),
                        Refund.restoration_status == RestorationStatus.PENDING.value,
                        [Refund.restoration_status.set(RestorationStatus.DONE.value), Refund.restoration.set(outcome),
                         Refund.work.remove(), Refund.work_due_at.remove(), Refund.updated_at.set(now)]))
    return items


def restoration_targets(user_id: str, coupon_id: str | None, inventory_ids: list[str]):
    """The coupon and lottery inventory a restoration may touch: one BatchGetItem over both
    tables. Returns ``(coupon or None, [inventory items in the order asked])``."""
    models.bind()
    wanted: list[tuple[type, tuple]] = [(InventoryItem, (user_id, i)) for i in inventory_ids]
    if coupon_id:
        wanted.append((UserCoupon, (user_id, coupon_id)))
    if not wanted:
        return None, []
    found = batch_get(wanted)
    coupon = found.get((UserCoupon, (user_id, coupon_id))) if coupon_id else None
    inventory = [found[(InventoryItem, (user_id, i))] for i in inventory_ids if (InventoryItem, (user_id, i)) in found]
    return coupon, inventory


def batch_get(keys: list[tuple[type, tuple]]) -> dict:
    """Items of several tables in one BatchGetItem (more only for unprocessed keys).
    ``keys`` are ``(model, (hash, range))``; returns ``{(model, key): item}`` for those found."""
    models.bind()
    by_table: dict[str, type] = {}
    request: dict[str, dict] = {}
    for model, key in keys:
        attrs = [a for a in (model._hash_key_attribute(), model._range_key_attribute()) if a is not None]
        by_table[model.Meta.table_name] = model
        request.setdefault(model.Meta.table_name, {"Keys": []})["Keys"].append(
            {a.attr_name: {a.attr_type: a.serialize(v)} for a, v in zip(attrs, key)})
    client = connection().client
    found: dict = {}
    for attempt in range(_CONFLICT_RETRIES):
        resp = client.batch_get_item(RequestItems=request)
        for table, raw_items in resp.get("Responses", {}).items():
            model = by_table[table]
            for raw in raw_items:
                item = model.from_raw_data(raw)
                key = tuple(getattr(item, a.attr_name) for a in
                            (model._hash_key_attribute(), model._range_key_attribute()) if a is not None)
                found[(model, key)] = item
        request = resp.get("UnprocessedKeys") or {}
        if not request:
            return found
        _backoff(attempt)
    raise RuntimeError("BatchGetItem left keys unprocessed")


# ---------------------------------------------------------------- tasks (domain/tasks.py)


def get_task(task_id: str) -> ManualTask | None:
    models.bind()
    try:
        return ManualTask.get(task_id)
    except DoesNotExist:
        return None


def open_task(task: Task, *, now: str, by: str) -> TxItem:
    """Open ``task``: the one way a task comes to be. A new id is created; an open task with the
    id stays open (its action and detail refreshed); a done one is reopened, its history keeping
    who had closed it. Never fails the transaction it is part of, so a repeated cause is a no-op."""
    fields = {"type": task.type.value, "order_no": task.order_no, "action": task.action,
              "status": TaskStatus.OPEN.value, "refund_no": task.refund_no, "user_id": task.user_id,
              "detail": task.detail}
    entry = TaskEntry(at=now, what="opened", by=by)
    actions = [getattr(ManualTask, k).set(v) for k, v in {**fields, **keys.task_keys(task.task_id, fields)}.items()
               if v is not None]
    actions += [ManualTask.created_at.set(ManualTask.created_at | now),
                ManualTask.history.set((ManualTask.history | []).append([entry])),
                ManualTask.done_by.remove(), ManualTask.done_at.remove(), ManualTask.note.remove()]
    return TxItem(f"task:{task.task_id}", "update", ManualTask(task.task_id), None, actions)


def _task_closed(task_id: str, *, what: str, by: str, note: str | None, now: str) -> list:
    fields = {"status": TaskStatus.DONE.value, "done_by": by, "done_at": now}
    if note:
        fields["note"] = note
    entry = TaskEntry(at=now, what=what, by=by, note=note)
    return ([getattr(ManualTask, k).set(v) for k, v in {**fields, **keys.task_keys(task_id, fields)}.items()]
            + [ManualTask.history.set((ManualTask.history | []).append([entry]))])


def finish_task(task_id: str, *, by: str, note: str | None, now: str) -> bool:
    """A person marks an open task done; False if it was not open."""
    return update(ManualTask(task_id), _task_closed(task_id, what="done", by=by, note=note, now=now),
                  ManualTask.status == TaskStatus.OPEN.value)


def reopen_task(task_id: str, *, by: str, note: str | None, now: str) -> bool:
    """A person reopens a done task (``open_task``'s effect on a done one: open again, done fields
    cleared, its history keeping who had closed it and who reopened it); False if it was not done."""
    entry = TaskEntry(at=now, what="reopened", by=by, note=note)
    fields = {"status": TaskStatus.OPEN.value}
    actions = [getattr(ManualTask, k).set(v) for k, v in {**fields, **keys.task_keys(task_id, fields)}.items()]
    actions += [ManualTask.history.set((ManualTask.history | []).append([entry])), ManualTask.done_by.remove(),
                ManualTask.done_at.remove(), ManualTask.note.remove()]
    return update(ManualTask(task_id), actions, ManualTask.status == TaskStatus.DONE.value)


def settle_task(task_id: str, *, by: str, note: str, now: str) -> TxItem:
    """A task bound to money closes itself with the write that settles the money (if still open)."""
    return TxItem(f"task:{task_id}", "update", ManualTask(task_id), ManualTask.task_id.exists(),
                  _task_closed(task_id, what="settled", by=by, note=note, now=now))


def list_tasks(*, status: str, task_type: str | None, limit: int, cursor: str | None) -> Page:
    models.bind()
    filt = (ManualTask.type == task_type) if task_type else None
    return pages.fanout_page(ManualTask, ManualTask.by_status, keys.shard_keys(status, "status"), "created_at",
                        newest_first=True, limit=limit, cursor=cursor, filter_condition=filt)
