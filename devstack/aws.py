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

Item reads: moto answers GetItem, BatchGetItem, Query, Scan and TransactGetItems by turning
every attribute into plain Python and back twice (a projection deserialises the whole item
once per projected name; the response goes through a shape-driven serialiser that tries
every AttributeValue member of every value), 1.5-2.5 ms of CPU per item returned. Here a
projection of top-level names picks those attributes, and those five answers are encoded
as the JSON DynamoDB sends (``{"S": ...}`` values as stored, binary as base64). Every other
answer, every error and any nested projection path takes moto's own code.

Index queries: moto answers each page of a Query on an index by sorting the whole table,
filtering it, sorting the matches again and comparing every item before the page with the
start key, so walking a partition of N items page by page costs O(N^2): reading 100 000
refunds of one day took a minute. Here the matches of one index partition are sorted once
(moto's order) and kept until the next write to any table; a page then starts by binary
search and costs only its own items. Everything else about a page is moto's: the limit, the
1 MB rule (on the whole item, as moto has it), the range condition, the filter, the
projections and the LastEvaluatedKey.

``tests/unit/test_devstack.py`` checks each of these against moto's own code: the same
requests answered both ways must parse to the same responses, also after writes.
"""
from __future__ import annotations

import base64
import bisect
import copy
import json
import threading
import types
from collections import OrderedDict
from typing import NamedTuple

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table
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


# ---------------------------------------------------------------- item reads


def _top_level_names(projection_expressions) -> list[str] | None:
    """The attribute names of a projection made only of top-level names (no ``a.b``, no
    ``a[0]``), else None."""
    names = []
    for path in projection_expressions:
        if len(path) != 1 or not isinstance(path[0], str) or "[" in path[0]:
            return None
        names.append(path[0])
    return names


_original_project = Item.project


def _project(self, projection_expressions):
    names = _top_level_names(projection_expressions)
    if names is None:
        return _original_project(self, projection_expressions)
    projected = Item.__new__(Item)
    projected.hash_key, projected.range_key = self.hash_key, self.range_key
    attrs = type(self.attrs).__new__(type(self.attrs))
    dict.__init__(attrs, ((name, self.attrs[name]) for name in dict.fromkeys(names) if name in self.attrs))
    projected.attrs = attrs
    return projected


_DIRECT_JSON = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_original_execute = DynamoResult.execute_result


def _execute_result(self, context):
    operation = context.operation_model
    if operation.name not in _DIRECT_JSON or isinstance(self.result, BaseException):
        return _original_execute(self, context)
    version = operation.service_model.metadata.get("jsonVersion", "1.0")
    body = json.dumps(self.result, default=_json_default, separators=(",", ":"), ensure_ascii=False)
    return 200, {"Content-Type": f"application/x-amz-json-{version}"}, body


# ---------------------------------------------------------------- index queries

_READ_ACTIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


class _Writes:
    """A count that changes whenever a DynamoDB request that may write starts or ends: a
    sorted partition is reused only while it has not moved and no write is under way."""

    def __init__(self):
        self._lock = threading.Lock()
        self.generation = 0
        self.in_flight = 0

    def begin(self) -> None:
        with self._lock:
            self.generation += 1
            self.in_flight += 1

    def end(self) -> None:
        with self._lock:
            self.generation += 1
            self.in_flight -= 1

    def bump(self) -> None:
        with self._lock:
            self.generation += 1

    def quiet(self) -> int | None:
        """The generation when no write is under way, else None."""
        with self._lock:
            return None if self.in_flight else self.generation


_writes = _Writes()
_original_call_action = DynamoHandler.call_action


def _call_action(self):
    action = self._get_action() or ""
    if action in _READ_ACTIONS or action.startswith(("Describe", "List")):
        return _original_call_action(self)
    _writes.begin()
    try:
        return _original_call_action(self)
    finally:
        _writes.end()


class _Partition(NamedTuple):
    """The items of one index partition in moto's query order, with their sort keys."""

    table: Table
    generation: int | None
    items: list
    keys: list


_PARTITIONS_KEPT = 16
_partitions: OrderedDict = OrderedDict()
_partitions_lock = threading.Lock()


def _partition(table: Table, index_name: str, hash_name: str, hash_value: DynamoType, range_names: list[str],
               sort_attrs: list[str]) -> _Partition:
    key = (id(table), index_name, hash_value.type, json.dumps(hash_value.value, default=str))
    generation = _writes.quiet()
    with _partitions_lock:
        found = _partitions.get(key)
        if found is not None and found.table is table and generation is not None and found.generation == generation:
            _partitions.move_to_end(key)
            return found
    # moto's selection: the hash value matches and every range key of the index is present
    items = []
    for entry in table.items.values():
        for item in (entry.values() if table.range_key_attr else (entry,)):
            if not isinstance(item, Item):
                continue
            value = item.attrs.get(hash_name)
            if not value or value != hash_value:
                continue
            if range_names and not all(item.attrs.get(name) for name in range_names):
                continue
            items.append(item)
    # moto's order (a tuple of the sort attributes' DynamoTypes: one type per key attribute,
    # so their cast values order the same way)
    keyed = sorted(((tuple(item.attrs[a].cast_value for a in sort_attrs), item) for item in items),
                   key=lambda pair: pair[0])
    built = _Partition(table, generation, [item for _k, item in keyed], [k for k, _item in keyed])
    if generation is not None and _writes.quiet() == generation:
        with _partitions_lock:
            _partitions[key] = built
            _partitions.move_to_end(key)
            while len(_partitions) > _PARTITIONS_KEPT:
                _partitions.popitem(last=False)
    return built


_original_query = Table.query


def _index_plan(table: Table, index_name, consistent_read, filter_kwargs, hash_key_conditions, range_key_conditions,
                range_comparison, exclusive_start_key):
    """(index, its range key names, the sort attributes) when a query can be paged here: one
    index, one hash attribute, at most one range condition, a start key naming every sort
    attribute. None leaves it to moto (table queries, several key attributes, errors)."""
    if not index_name or consistent_read or filter_kwargs or not hash_key_conditions \
            or len(hash_key_conditions) != 1 or len(range_key_conditions or ()) > 1:
        return None
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None:
        return None
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if hashes != [hash_key_conditions[0][0]] or (range_comparison and not ranges):
        return None
    # moto's sort attributes for an index: its hash, its range (or the table's), the table's keys
    range_attrs = ranges + [table.range_key_attr] if ranges else [table.range_key_attr or table.hash_key_attr,
                                                                    table.range_key_attr]
    sort_attrs = table._generate_attr_to_sort_by(hashes + [table.hash_key_attr], range_attrs)
    if exclusive_start_key is not None and not all(a in exclusive_start_key for a in sort_attrs):
        return None
    return index, ranges, sort_attrs


def _query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
           projection_expressions, index_name=None, consistent_read=False, filter_expression=None,
           hash_key_conditions=None, range_key_conditions=None, **filter_kwargs):
    plan = _index_plan(self, index_name, consistent_read, filter_kwargs, hash_key_conditions, range_key_conditions,
                       range_comparison, exclusive_start_key)
    if plan is None:
        return _original_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                               scan_index_forward, projection_expressions, index_name, consistent_read,
                               filter_expression, hash_key_conditions=hash_key_conditions,
                               range_key_conditions=range_key_conditions, **filter_kwargs)
    index, ranges, sort_attrs = plan
    hash_name, hash_value = hash_key_conditions[0]
    part = _partition(self, index_name, hash_name, hash_value, ranges, sort_attrs)
    count = len(part.items)
    start = 0
    if exclusive_start_key is not None:
        after = tuple(DynamoType(exclusive_start_key[a]).cast_value for a in sort_attrs)
        # moto skips every item at or before the start key in the query's direction
        start = bisect.bisect_right(part.keys, after) if scan_index_forward \
            else count - bisect.bisect_left(part.keys, after)
    order = range(start, count) if scan_index_forward else range(count - 1 - start, -1, -1)
    compare_on = None
    if range_comparison:
        compare_on = range_key_conditions[-1][0] if range_key_conditions else ranges[0]
    results: list[Item] = []
    result_size = scanned_count = 0
    last_evaluated_key = None
    for position in order:
        result = part.items[position]
        size = result.size()
        if len(results) == limit or result_size + size > RESULT_SIZE_LIMIT:
            last_evaluated_key = self._get_last_evaluated_key(results[-1], index_name)
            break
        if compare_on is not None:
            value = result.attrs.get(compare_on)
            if not (value and value.compare(range_comparison, range_objs)):
                continue
        results.append(result)
        result_size += size
        scanned_count += 1
    # the stored items are not copied: what follows builds new items and only reads these
    results = [index.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, scanned_count, last_evaluated_key


def install_direct_item_reads(on: bool = True) -> None:
    """Answer item reads without moto's per-value round trips and page index queries without
    re-sorting the table (idempotent); ``on=False`` puts moto's own code back (the test that
    compares the two uses it)."""
    Item.project = _project if on else _original_project
    DynamoResult.execute_result = _execute_result if on else _original_execute
    Table.query = _query if on else _original_query
    DynamoHandler.call_action = _call_action
    _writes.bump()  # partitions sorted before a switch are not reused after it


class LocalAws(ThreadedMotoServer):
    def __init__(self, port: int = 0):
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)

    def _server_entry(self) -> None:
        install_item_level_transactions()
        install_direct_item_reads()
        app = _SerialDynamo(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True)
        self._server_ready_event.set()
        self._server.serve_forever()
