"""Index keys, derived in one place from the fields an item is written with.

An index whose partition key has few values (every order "ORDER", every paid order 2, every
pending refund "poll", every success of one day) puts all its writes on one partition (~1 000
writes/s). Such keys are spread over ``SHARDS`` partitions, the shard chosen from the item's own
key (stable), and the readers fan out over the shards and merge (``repository._fanout_page``).
Changing a shard count needs a backfill of the items' key attributes.

The repository (and ``balances``, for the order's status) calls ``order_keys``/``refund_keys``/
``task_keys`` with the fields of every write, after the change is applied to them, so a key
never describes a state the item is not in. Services never build a key.
"""
from __future__ import annotations

import hashlib
import hmac
import zlib

from ..domain import clock
from ..domain import search as search_rules

SHARDS = {"list": 8, "status": 8, "work": 8, "pay_check": 4, "day": 4, "outbox": 4, "complaint": 4}


def shard_key(value, item_key: str, kind: str) -> str:
    """``value#n``: ``value`` spread over ``SHARDS[kind]`` partitions by ``item_key``."""
    return f"{value}#{zlib.crc32(item_key.encode('utf-8')) % SHARDS[kind]}"


def shard_keys(value, kind: str) -> list[str]:
    """Every partition ``value`` is spread over (the readers' fan-out)."""
    return [f"{value}#{i}" for i in range(SHARDS[kind])]


def day_key(order_or_refund_no: str, when: str | None) -> str | None:
    """A day index's key for a time (``YYYY-MM-DD#n``, the Beijing day), None without one."""
    day = clock.beijing_day_of(when)
    return shard_key(day, order_or_refund_no, "day") if day else None


def order_keys(order_no: str, fields: dict) -> dict:
    """The index keys that follow from an order's ``fields`` (those present among them):
    ``status_key`` from ``status``, ``paid_day_key`` from the payment's ``paid_at``,
    ``transaction_key`` from its ``transaction_id``."""
    out = {}
    if fields.get("status") is not None:
        out["status_key"] = shard_key(fields["status"], order_no, "status")
    if "paid_at" in fields:
        out["paid_day_key"] = day_key(order_no, fields["paid_at"])
    if fields.get("transaction_id"):
        out["transaction_key"] = transaction_key(fields["transaction_id"])
    return out


def list_key(order_no: str) -> str:
    """Every order's place in the all-orders-by-time index."""
    return shard_key("ORDER", order_no, "list")


def refund_keys(refund_no: str, fields: dict) -> dict:
    """The index keys that follow from a refund's ``fields`` (as they will be once written):
    ``status_key`` from ``status``, the sharded ``work`` queue, and ``success_day_key`` from
    ``success_time`` (else the time of the change, ``updated_at``) while the refund is a success,
    ``accepted_day_key`` from ``accepted_at`` (the day WeChat bills it on)."""
    out = {}
    status = fields.get("status")
    if status is not None:
        out["status_key"] = shard_key(status, refund_no, "status")
    if fields.get("work"):
        work = fields["work"].split("#", 1)[0]
        out["work"] = shard_key(work, refund_no, "work")
    if status == "success":
        out["success_day_key"] = day_key(refund_no, fields.get("success_time") or fields.get("updated_at"))
    if fields.get("accepted_at"):
        out["accepted_day_key"] = day_key(refund_no, fields["accepted_at"])
    return out


PAY_CHECK = "pending"  # the orders.awaiting_payment index: pending orders whose payment is asked about


def pay_check_key(order_no: str) -> str:
    """A pending order's place in the payment-check index (the shop's order writer sets it)."""
    return shard_key(PAY_CHECK, order_no, "pay_check")


def task_keys(task_id: str, fields: dict) -> dict:
    return {"status_key": shard_key(fields["status"], task_id, "status")} if fields.get("status") else {}


# The tables whose items carry derived index keys, and each one's key attribute.
KEYED_TABLES = {"orders": "order_no", "payment_refunds": "refund_no", "manual_tasks": "task_id"}


def item_keys(table: str, item: dict) -> dict:
    """Every index key an item of ``table`` carries, from its attributes as stored (name -> value,
    a map as a dict): what the writers give it, and what ``deploy/backfill.py`` gives an item
    written before a key existed. A None value: the item is in no partition of that (sparse) index."""
    key = item[KEYED_TABLES[table]]
    if table == "orders":
        payment = item.get("payment") or {}
        fields = {**item, "paid_at": payment.get("paid_at"), "transaction_id": payment.get("transaction_id")}
        return {"list_pk": list_key(key), **order_keys(key, fields)}
    if table == "payment_refunds":
        return refund_keys(key, item)
    return task_keys(key, item)


# ---------------------------------------------------------------- search keys (sparse indexes)

PHONE_HASH_SECRET = "PHONE_HASH_SECRET"


def transaction_key(transaction_id: str | None) -> str | None:
    """An order's place in the by_transaction index: WeChat's payment number, normalised as the
    search box normalises what is typed (``domain.search``)."""
    if not transaction_id:
        return None
    return search_rules.normalise(transaction_id).casefold() or None


def nickname_key(nickname: str | None) -> str | None:
    """A user's place in the by_nickname index (the nickname NFKC, trimmed, casefolded)."""
    return search_rules.nickname_key(nickname)


def phone_key(phone: str | None) -> str | None:
    """A user's place in the by_phone index: HMAC-SHA256 of the normalised mobile number, keyed
    with the ``PHONE_HASH_SECRET`` secret, so the table holds no phone number and a copy of it
    cannot be reversed by trying the 10^10 numbers. The shop's user writer sets ``phone_hash``
    with this function; rotating the secret needs the users' keys rewritten. None for a value
    that is not a mobile number."""
    number = search_rules.mobile(phone)
    if number is None:
        return None
    from .. import config

    secret = config.secret(PHONE_HASH_SECRET).encode("utf-8")
    return hmac.new(secret, number.encode("ascii"), hashlib.sha256).hexdigest()


OPEN_COMPLAINT, FOLLOWUP = "open", "followup"


def complaint_keys(complaint_id: str, fields: dict) -> dict:
    """The index keys that follow from a complaint's ``fields`` (those present among them):
    ``state_key`` from ``state``; ``open_key`` while the state is not PROCESSED (None removes it,
    so a processed complaint leaves the queue); ``followup`` while ``followup`` is true."""
    out = {}
    state = fields.get("state")
    if state is not None:
        out["state_key"] = shard_key(state, complaint_id, "complaint")
        out["open_key"] = shard_key(OPEN_COMPLAINT, complaint_id, "complaint") if state != "PROCESSED" else None
    if "followup" in fields:
        out["followup"] = shard_key(FOLLOWUP, complaint_id, "complaint") if fields["followup"] else None
    return out
