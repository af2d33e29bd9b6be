"""DynamoDB access: reads, paginated index queries, and the named writes (refund changes,
receipts, tasks, work scheduling, restoration) that services combine into one conditional
write or one transaction. Order balances move only through ``balances.py``. Services call
these; no service builds an update expression or touches pynamodb's write API."""
from __future__ import annotations

import random
import re
import threading
import time
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
from ..domain.errors import ValidationError
from . import cursors, keys, models
from .models import (InventoryItem, ManualTask, NotifyReceipt, Order, PointsEntry, Refund, RefundEvent, TaskEntry,
                     User, UserCoupon)

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


# ---------------------------------------------------------------- pagination


def encode_cursor(last_key: dict | None, scope: str) -> str | None:
    """The opaque, signed cursor of ``last_key`` for the query named ``scope`` (adapters/cursors.py)."""
    if not last_key:
        return None
    return cursors.sign(last_key, scope)


def decode_cursor(cursor: str | None, scope: str, key_names: frozenset[str] | None = None) -> dict | None:
    """The DynamoDB start key inside a cursor issued for the query ``scope``; it must name exactly
    the keys of the index being read, each a string or number value, or it is refused as a bad
    request (400 VALIDATION_ERROR), whatever is wrong with it."""
    if not cursor:
        return None
    try:
        value = cursors.verify(cursor, scope)
        if key_names is not None and set(value) != key_names:
            raise ValueError
        for attr in value.values():
            if not (isinstance(attr, dict) and len(attr) == 1):
                raise ValueError
            (kind, raw), = attr.items()
            if kind not in ("S", "N") or not isinstance(raw, str) or (kind == "N" and not _NUMBER.match(raw)):
                raise ValueError
        return value
    except (ValueError, TypeError):
        raise ValidationError("cursor is not valid for this list; use the next_cursor of the previous page "
                              "of the same list", details={"field": "cursor"}) from None


_NUMBER = re.compile(r"^-?[0-9]{1,38}(\.[0-9]{1,38})?$")


def _scope(model, index, hash_key, newest_first: bool, filter_condition, range_key_condition=None) -> str:
    """The query a page belongs to: a cursor is valid only for the same one."""
    parts = [model.__name__, index.Meta.index_name, f"{type(hash_key).__name__}:{hash_key}",
             str(filter_condition) if filter_condition is not None else "",
             "desc" if newest_first else "asc"]
    if range_key_condition is not None:
        parts.append(str(range_key_condition))
    return "|".join(parts)


def _key_names(model, index=None) -> frozenset[str]:
    names = {model._hash_keyname}
    if model._range_keyname:
        names.add(model._range_keyname)
    if index is not None:
        names.update(k["AttributeName"] for k in index._get_schema()["key_schema"])
    return frozenset(names)


@dataclass
class Page:
    items: list
    next_cursor: str | None


def _page(model, index, hash_key, *, newest_first: bool, limit: int, cursor: str | None,
          filter_condition=None, range_key_condition=None) -> Page:
    """Read up to ``limit`` items of one index partition (within ``range_key_condition``, when
    given), following DynamoDB pages when a filter thins them. The cursor is the opaque start key
    of the next page."""
    scope = _scope(model, index, hash_key, newest_first, filter_condition, range_key_condition)
    start = decode_cursor(cursor, scope, _key_names(model, index))
    items: list = []
    while True:
        result = index.query(hash_key, range_key_condition, scan_index_forward=not newest_first,
                             limit=limit - len(items), last_evaluated_key=start, filter_condition=filter_condition)
        items.extend(result)
        start = result.last_evaluated_key
        if len(items) >= limit or not start:
            break
    return Page(items, encode_cursor(start, scope) if len(items) >= limit and start else None)


def _resume_names(model, index) -> list[str]:
    """The key attributes (other than the index's partition key) that resume an index query."""
    schema = index._get_schema()["key_schema"]
    index_range = [k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"]
    table = [model._hash_keyname] + ([model._range_keyname] if model._range_keyname else [])
    return index_range + [n for n in table if n not in index_range]


def _resume_of(model, index, item) -> list[str]:
    """Where to resume a shard right after ``item``: its key values, compactly (the shard's own
    partition key is known from its position)."""
    attrs = model.get_attributes()
    return [str(attrs[n].serialize(getattr(item, n))) for n in _resume_names(model, index)]


def _start_from(model, index, hash_key: str, values) -> dict:
    """The DynamoDB start key of a shard from its compact resume values (checked like any key)."""
    names = _resume_names(model, index)
    attrs = model.get_attributes()
    hash_name = next(k["AttributeName"] for k in index._get_schema()["key_schema"] if k["KeyType"] == "HASH")
    if not isinstance(values, list) or len(values) != len(names) or not all(isinstance(v, str) for v in values):
        raise ValidationError("cursor is not valid for this list", details={"field": "cursor"})
    key = {hash_name: {"S": hash_key}}
    key.update({n: {attrs[n].attr_type: v} for n, v in zip(names, values)})
    return _checked_start(key, _key_names(model, index))


def _fanout_page(model, index, hash_keys: list[str], sort_attr: str, *, newest_first: bool, limit: int,
                 cursor: str | None, filter_condition=None) -> Page:
    """``_page`` over an index whose partition key is sharded: each shard is read from where the
    cursor left it (up to ``limit`` items), the shards are merged in ``sort_attr`` order and the
    first ``limit`` items are the page. The cursor holds each shard's resume key (None once a
    shard is used up) and is signed for this query like any other."""
    scope = _scope(model, index, ",".join(hash_keys), newest_first, filter_condition) + "|fanout"
    starts: list = [None] * len(hash_keys)
    done = [False] * len(hash_keys)
    if cursor:
        try:
            keys = cursors.verify(cursor, scope).get("s")
        except (ValueError, TypeError):
            keys = None
        if not isinstance(keys, list) or len(keys) != len(hash_keys):
            raise ValidationError("cursor is not valid for this list; use the next_cursor of the previous page "
                                  "of the same list", details={"field": "cursor"})
        for i, key in enumerate(keys):
            if key == 0:
                done[i] = True
            elif key is not None:
                starts[i] = _start_from(model, index, hash_keys[i], key)
    runs = []
    for i, hash_key in enumerate(hash_keys):
        items: list = []
        start, more = starts[i], not done[i]
        while more and len(items) < limit:
            result = index.query(hash_key, scan_index_forward=not newest_first, limit=limit - len(items),
                                 last_evaluated_key=start, filter_condition=filter_condition)
            items.extend((i, it) for it in result)
            start = result.last_evaluated_key
            more = bool(start)
        runs.append((items, more))
    table_keys = [model._hash_keyname] + ([model._range_keyname] if model._range_keyname else [])

    def order(entry):
        return (getattr(entry[1], sort_attr), *(getattr(entry[1], k) for k in table_keys))

    merged = sorted((e for items, _ in runs for e in items), key=order, reverse=newest_first)
    page = merged[:limit]
    taken = [0] * len(hash_keys)
    last: list = [None] * len(hash_keys)
    for shard, item in page:
        taken[shard] += 1
        last[shard] = item
    next_keys = []
    for i, (items, more) in enumerate(runs):
        if done[i] or (taken[i] == len(items) and not more):
            next_keys.append(0)  # used up
        elif last[i] is not None:
            next_keys.append(_resume_of(model, index, last[i]))
        elif starts[i] is not None:  # nothing of it on this page: resume where it was
            next_keys.append([starts[i][n][next(iter(starts[i][n]))] for n in _resume_names(model, index)])
        else:
            next_keys.append(None)  # not started
    has_more = any(k != 0 for k in next_keys)
    return Page([item for _, item in page], cursors.sign({"s": next_keys}, scope) if has_more else None)


def _checked_start(value, names) -> dict:
    """A shard's resume key from a (signed) cursor, checked like a single-query cursor's key."""
    if not isinstance(value, dict) or set(value) != names:
        raise ValidationError("cursor is not valid for this list", details={"field": "cursor"})
    for attr in value.values():
        if not (isinstance(attr, dict) and len(attr) == 1):
            raise ValidationError("cursor is not valid for this list", details={"field": "cursor"})
        (kind, raw), = attr.items()
        if kind not in ("S", "N") or not isinstance(raw, str) or (kind == "N" and not _NUMBER.match(raw)):
            raise ValidationError("cursor is not valid for this list", details={"field": "cursor"})
    return value


def _fanout_due(index, hash_keys: list[str], condition, limit: int, sort_attr: str) -> list:
    """The first ``limit`` items due over every shard of a sparse work index, oldest due first:
    one Query per shard (the cost follows the backlog, never the history)."""
    items = []
    for hash_key in hash_keys:
        items.extend(index.query(hash_key, condition, limit=limit))
    return sorted(items, key=lambda it: getattr(it, sort_attr))[:limit]


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


def get_users(user_ids: Iterable[str]) -> dict[str, User]:
    models.bind()
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return {u.user_id: u for u in User.batch_get(ids)}


def list_orders(*, status: int | None, source_type: int | None, user_id: str | None,
                limit: int, cursor: str | None) -> Page:
    models.bind()
    filt = None
    if user_id is not None:
        index, hash_key = Order.by_user, user_id
        if status is not None:
            filt = Order.status == status
    if source_type is not None:
        cond = Order.source_type == source_type
        filt = cond if filt is None else (filt & cond)
    if user_id is not None:
        return _page(Order, index, hash_key, newest_first=True, limit=limit, cursor=cursor, filter_condition=filt)
    if status is not None:
        index, hash_keys = Order.by_status, keys.shard_keys(status, "status")
    else:
        index, hash_keys = Order.by_time, keys.shard_keys("ORDER", "list")
    return _fanout_page(Order, index, hash_keys, "created_at", newest_first=True, limit=limit, cursor=cursor,
                        filter_condition=filt)


# ---------------------------------------------------------------- refunds


def get_refund(refund_no: str, consistent: bool = True) -> Refund | None:
    models.bind()
    try:
        return Refund.get(refund_no, consistent_read=consistent)
    except DoesNotExist:
        return None


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


def list_refunds(*, status: str | None, order_no: str | None, oldest_first: bool,
                 limit: int, cursor: str | None) -> Page:
    models.bind()
    if order_no is not None:
        filt = (Refund.status == status) if status else None
        return _page(Refund, Refund.by_order, order_no, newest_first=not oldest_first, limit=limit, cursor=cursor,
                     filter_condition=filt)
    if status is None:
        raise ValidationError("give status or order_no to list refunds")
    return _fanout_page(Refund, Refund.by_status, keys.shard_keys(status, "status"), "created_at",
                        newest_first=not oldest_first, limit=limit, cursor=cursor)


def due_work(kind: str, due_before: str, limit: int) -> list[str]:
    """refund_nos whose work of ``kind`` is due: a Query on the sparse index, never a Scan."""
    models.bind()
    due = _fanout_due(Refund.pending_work, keys.shard_keys(kind, "work"), Refund.work_due_at <= due_before,
                      limit, "work_due_at")
    return [r.refund_no for r in due]


def due_payment_checks(due_before: str, limit: int) -> list[str]:
    """order_nos whose payment is due to be asked about: a Query on the sparse index."""
    models.bind()
    due = _fanout_due(Order.awaiting_payment, keys.shard_keys(keys.PAY_CHECK, "pay_check"),
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
                  bind_tasks: Iterable[str] = (), settle_tasks: bool = False) -> TxItem:
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


def settle_task(task_id: str, *, by: str, note: str, now: str) -> TxItem:
    """A task bound to money closes itself with the write that settles the money (if still open)."""
    return TxItem(f"task:{task_id}", "update", ManualTask(task_id), ManualTask.task_id.exists(),
                  _task_closed(task_id, what="settled", by=by, note=note, now=now))


def list_tasks(*, status: str, task_type: str | None, limit: int, cursor: str | None) -> Page:
    models.bind()
    filt = (ManualTask.type == task_type) if task_type else None
    return _fanout_page(ManualTask, ManualTask.by_status, keys.shard_keys(status, "status"), "created_at",
                        newest_first=True, limit=limit, cursor=cursor, filter_condition=filt)
