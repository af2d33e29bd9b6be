"""The local AWS endpoint: moto's server for DynamoDB and SQS on 127.0.0.1.

DynamoDB evaluates a condition and applies its write atomically; moto's in-memory
backend does not when requests arrive on several threads at once (two conditional
writes can both pass). The endpoint therefore runs DynamoDB requests one at a time,
which is what the service's concurrency guarantees assume. SQS requests (long polls)
are not serialised.

Transactions: moto keeps a deep copy of every table a TransactWriteItems names, to roll
back a cancelled transaction. That costs time and memory in proportion to the whole table
on every refund, so a long session grew by gigabytes, slowed to seconds per request and
then spent a minute freeing the copies at exit. Here a transaction remembers only the
items it names (at most 100, DynamoDB's limit) and puts exactly those back when it is
cancelled; the DynamoDB lock above makes that equivalent.
"""
from __future__ import annotations

import copy
import threading
import types

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


class _SerialDynamo:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


# ---------------------------------------------------------------- transactions by item


def _deepcopy_except_tables(value, memo=None):
    """``copy.deepcopy`` for moto's backend, except that a whole Table is not copied: the
    rollback copy is taken per item by ``_transact_write_items`` instead."""
    if isinstance(value, Table):
        return value
    return copy.deepcopy(value, memo)


def _item_slot(backend, op_type: str, op: dict):
    """(table, hash value, range value or None) of the item one transaction entry writes."""
    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None
    attrs = op.get("Item") if op_type == "Put" else op.get("Key")
    if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
        return None
    rng = attrs.get(table.range_key_attr) if table.range_key_attr else None
    if table.range_key_attr and rng is None:
        return None
    return table, DynamoType(attrs[table.hash_key_attr]), DynamoType(rng) if rng is not None else None


def _snapshot(table, hash_value, range_value):
    if range_value is None:
        item = table.items.get(hash_value)
    else:
        item = table.items.get(hash_value, {}).get(range_value)
    return copy.deepcopy(item)


def _restore(table, hash_value, range_value, item) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
        return
    rows = table.items[hash_value]
    if item is None:
        rows.pop(range_value, None)
        if not rows:
            table.items.pop(hash_value, None)
    else:
        rows[range_value] = item


_original_transact = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    saved = []
    for entry in transact_items[:100] if isinstance(transact_items, list) else []:
        if isinstance(entry, dict) and len(entry) == 1:
            op_type, op = next(iter(entry.items()))
            slot = _item_slot(self, op_type, op) if isinstance(op, dict) else None
            if slot is not None:
                saved.append((*slot, _snapshot(*slot)))
    try:
        return _original_transact(self, transact_items)
    except Exception:
        for table, hash_value, range_value, item in reversed(saved):
            _restore(table, hash_value, range_value, item)
        raise


def install_item_level_transactions() -> None:
    """Make moto's TransactWriteItems keep per-item rollback copies (idempotent)."""
    import moto.dynamodb.models as backend_module

    if DynamoDBBackend.transact_write_items is _transact_write_items:
        return
    backend_module.copy = types.SimpleNamespace(deepcopy=_deepcopy_except_tables, copy=copy.copy)
    DynamoDBBackend.transact_write_items = _transact_write_items


class LocalAws(ThreadedMotoServer):
    def __init__(self, port: int = 0):
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)

    def _server_entry(self) -> None:
        install_item_level_transactions()
        app = _SerialDynamo(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True)
        self._server_ready_event.set()
        self._server.serve_forever()
