"""DynamoDB access: reads, paginated index queries, and the conditional writes and
transactions that make refunds race-free. Services call this; nothing else touches
pynamodb's write API."""
from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

from pynamodb.connection import Connection
from pynamodb.constants import NONE
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactGet, TransactWrite

from ..domain.errors import ValidationError
from . import cursors, models
from .models import ManualTask, NotifyReceipt, Order, Refund, User

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


def _scope(model, index, hash_key, newest_first: bool, filter_condition) -> str:
    """The query a page belongs to: a cursor is valid only for the same one."""
    return "|".join([model.__name__, index.Meta.index_name, f"{type(hash_key).__name__}:{hash_key}",
                     str(filter_condition) if filter_condition is not None else "",
                     "desc" if newest_first else "asc"])


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
          filter_condition=None) -> Page:
    """Read up to ``limit`` items of one index partition, following DynamoDB pages when a
    filter thins them. The cursor is the opaque start key of the next page."""
    scope = _scope(model, index, hash_key, newest_first, filter_condition)
    start = decode_cursor(cursor, scope, _key_names(model, index))
    items: list = []
    while True:
        result = index.query(hash_key, scan_index_forward=not newest_first, limit=limit - len(items),
                             last_evaluated_key=start, filter_condition=filter_condition)
        items.extend(result)
        start = result.last_evaluated_key
        if len(items) >= limit or not start:
            break
    return Page(items, encode_cursor(start, scope) if len(items) >= limit and start else None)


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
    elif status is not None:
        index, hash_key = Order.by_status, status
    else:
        index, hash_key = Order.by_time, "ORDER"
    if source_type is not None:
        cond = Order.source_type == source_type
        filt = cond if filt is None else (filt & cond)
    return _page(Order, index, hash_key, newest_first=True, limit=limit, cursor=cursor, filter_condition=filt)


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
    return _page(Refund, Refund.by_status, status, newest_first=not oldest_first, limit=limit, cursor=cursor)


def due_work(kind: str, due_before: str, limit: int) -> list[str]:
    """refund_nos whose work of ``kind`` is due: a Query on the sparse index, never a Scan."""
    models.bind()
    result = Refund.pending_work.query(kind, Refund.work_due_at <= due_before, limit=limit)
    return [r.refund_no for r in result]


class WriteConflict(Exception):
    """A transaction's condition failed. ``reasons`` maps item label -> DynamoDB reason code."""

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


_KIND_ORDER = {"check": 0, "put": 2, "update": 3}  # how pynamodb sends items


_CONFLICT_RETRIES = 6


def _backoff(attempt: int) -> None:
    time.sleep(min(0.2, 0.005 * (2 ** attempt)) * (0.5 + random.random()))


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


def _transact_once(items: list[TxItem]) -> None:
    models.bind()
    ordered = sorted(items, key=lambda i: _KIND_ORDER[i.kind])  # stable: matches sent order
    try:
        with TransactWrite(connection=connection()) as tx:
            for it in ordered:
                if it.kind == "put":
                    tx.save(it.model, condition=it.condition)
                elif it.kind == "update":
                    tx.update(it.model, actions=it.actions, condition=it.condition)
                else:
                    model_cls, key = it.model
                    tx.condition_check(model_cls, key, condition=it.condition)
    except TransactWriteError as exc:
        if exc.cause_response_code != "TransactionCanceledException":
            raise
        reasons = {}
        for it, reason in zip(ordered, exc.cancellation_reasons):
            if reason is not None and reason.code not in (None, "None"):
                reasons[it.label] = reason.code
        raise WriteConflict(reasons) from exc


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


def put_if_absent(model, hash_attr) -> bool:
    models.bind()
    try:
        model.save(condition=hash_attr.does_not_exist())
        return True
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise


# ---------------------------------------------------------------- notifications and tasks


def notify_seen(notify_id: str) -> bool:
    models.bind()
    try:
        NotifyReceipt.get(notify_id)
        return True
    except DoesNotExist:
        return False


def get_task(task_id: str) -> ManualTask | None:
    models.bind()
    try:
        return ManualTask.get(task_id)
    except DoesNotExist:
        return None


def list_tasks(*, status: str, task_type: str | None, limit: int, cursor: str | None) -> Page:
    models.bind()
    filt = (ManualTask.type == task_type) if task_type else None
    return _page(ManualTask, ManualTask.by_status, status, newest_first=True, limit=limit, cursor=cursor,
                 filter_condition=filt)


def iter_tasks(*, status: str, task_type: str | None) -> Iterator[ManualTask]:
    models.bind()
    filt = (ManualTask.type == task_type) if task_type else None
    yield from ManualTask.by_status.query(status, scan_index_forward=False, filter_condition=filt)
