"""Capacity and cost model, computed from what the service really writes and reads.

Each operation runs through the local stack (HTTP API, simulator, local DynamoDB). Every
DynamoDB request the service sends is recorded; after the operation, each item it wrote is read
back (outside the count) and sized by DynamoDB's rules. From that:

- write request units: ceil(item size / 1 KB) per item written, doubled inside a transaction,
  plus one write per global secondary index the item is in (its projected size, rounded up);
- read request units: ceil(size / 4 KB) per item (a Query rounds the page's total once),
  halved when eventually consistent, doubled when transactional;
- the partition keys written: the table's key, and each index's partition key value. Sharded
  index keys (``value#n``) are counted both as they are ("after sharding") and folded to their
  value ("before sharding"), which gives the sustained refunds per second before any one
  partition reaches DynamoDB's 1 000 writes/s (3 000 reads/s).

``python -m bench capacity`` prints the table and writes docs/capacity.md.
"""
from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

WRITE_PRICE_PER_MILLION = Decimal("0.625")  # USD per million write request units, on-demand, us-east-1
READ_PRICE_PER_MILLION = Decimal("0.125")  # USD per million read request units
PARTITION_WRITE_UNITS = 1000
PARTITION_READ_UNITS = 3000
# indexes whose partition key every refund or order shares -> its shard kind (None: not sharded)
SHARED_INDEXES = {"by_time": "list", "by_status_key": "status", "pending_work": "work",
                  "awaiting_payment": "pay_check", "by_success_day": "day",
                  "by_paid_day": "day"}
DOC = Path(__file__).resolve().parent.parent / "docs" / "capacity.md"


# ---------------------------------------------------------------- DynamoDB item size


def value_size(value: dict) -> int:
    """Bytes of one attribute value in DynamoDB's wire form (``{"S": ...}`` etc.)."""
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode("utf-8"))
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(v) if isinstance(v, (bytes, bytearray)) else math.ceil(len(v) * 3 / 4)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: x}) for x in v)
    raise ValueError(kind)


def item_size(item: dict) -> int:
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def units(size: int, block: int) -> int:
    return max(1, math.ceil(size / block))


# ---------------------------------------------------------------- recording


@dataclass
class Usage:
    writes: list = field(default_factory=list)  # (table, key dict, transactional)
    reads: list = field(default_factory=list)  # (read units, table)
    calls: Counter = field(default_factory=Counter)


class Recorder:
    """botocore hooks on every client the service uses: what it writes and what reads cost."""

    def __init__(self, raw_client):
        self._lock = threading.Lock()
        self._hooked: set[int] = set()
        self.usage = Usage()
        self._raw = raw_client  # not hooked: reads the item as it was before a write

    def _before_write(self, table: str, key: dict) -> dict:
        return self._raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or {}

    def attach(self):
        from chalicelib.adapters import models
        from chalicelib.adapters import repository as repo

        models.bind()
        for model in models.ALL_MODELS:
            self._hook(model._get_connection().connection.client)
        self._hook(repo.connection().client)
        return self

    def _hook(self, client):
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        client.meta.events.register("provide-client-params.dynamodb.*", self._params)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def reset(self):
        with self._lock:
            self.usage = Usage()

    def _params(self, params=None, model=None, **_):
        op = model.name
        with self._lock:
            self.usage.calls[op] += 1
            if op == "PutItem":
                self.usage.writes.append((params["TableName"], _key_from_item(params["TableName"], params["Item"]),
                                          False, None))
            elif op in ("UpdateItem", "DeleteItem"):
                self.usage.writes.append((params["TableName"], params["Key"], False,
                                          (_changed(params), self._before_write(params["TableName"], params["Key"]))))
            elif op == "TransactWriteItems":
                for entry in params["TransactItems"]:
                    (kind, body), = entry.items()
                    if kind == "ConditionCheck":
                        self.usage.reads.append((2, body["TableName"]))  # a check reads the item, twice the units
                        continue
                    key = body.get("Key") or _key_from_item(body["TableName"], body["Item"])
                    self.usage.writes.append((body["TableName"], key, True,
                                              (_changed(body), self._before_write(body["TableName"], key))
                                              if kind == "Update" else None))
            elif op == "BatchWriteItem":
                for table, requests in params["RequestItems"].items():
                    for r in requests:
                        item = (r.get("PutRequest") or {}).get("Item") or (r.get("DeleteRequest") or {}).get("Key")
                        self.usage.writes.append((table, _key_from_item(table, item), False, None))

    def _after(self, parsed=None, model=None, **_):
        if not isinstance(parsed, dict):
            return
        op = model.name
        reads = []
        if op == "GetItem" and parsed.get("Item"):
            reads.append(units(item_size(parsed["Item"]), 4096))  # the service reads consistently
        elif op == "Query":
            total = sum(item_size(i) for i in parsed.get("Items", []))
            reads.append(units(total, 4096) * 0.5)  # index queries are eventually consistent
        elif op == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                reads.extend(units(item_size(i), 4096) for i in items)
        elif op == "TransactGetItems":
            reads.extend(2 * units(item_size(r["Item"]), 4096) for r in parsed.get("Responses", []) if r.get("Item"))
        with self._lock:
            self.usage.reads.extend((r, op) for r in reads)


_KEY_NAMES: dict[str, list[str]] = {}


def _changed(params: dict) -> set[str]:
    """The top-level attributes an UpdateItem's expression sets, adds or removes."""
    import re

    names = params.get("ExpressionAttributeNames") or {}
    expr = params.get("UpdateExpression") or ""
    return {names.get(tok, tok) for tok in re.findall(r"(#\w+|\b[a-z_]+\b)(?=[\s.\[=,]|$)", expr)
            if tok.startswith("#") or tok in names.values()}


def _key_from_item(table: str, item: dict) -> dict:
    return {k: item[k] for k in _KEY_NAMES[table]}


def _tables() -> dict:
    """table name -> (model, key names, [(index name, hash attr, projection kind, key attrs)])."""
    from chalicelib.adapters import models

    models.bind()
    out = {}
    for model in models.ALL_MODELS:
        schema = model._get_schema()
        keys = [k["AttributeName"] for k in schema["key_schema"]]
        indexes = []
        for gsi in schema.get("global_secondary_indexes") or []:
            ikeys = [k["AttributeName"] for k in gsi["key_schema"]]
            hash_attr = next(k["AttributeName"] for k in gsi["key_schema"] if k["KeyType"] == "HASH")
            indexes.append((gsi["index_name"], hash_attr, gsi["projection"]["ProjectionType"], ikeys,
                            gsi["projection"].get("NonKeyAttributes") or []))
        out[model.Meta.table_name] = (model, keys, indexes)
        _KEY_NAMES[model.Meta.table_name] = keys
    return out


# ---------------------------------------------------------------- costing


@dataclass
class Cost:
    write_units: float = 0
    read_units: float = 0
    item_sizes: dict = field(default_factory=dict)  # table -> largest item written (bytes)
    partitions: Counter = field(default_factory=Counter)  # (table or index, partition key) -> write units
    calls: Counter = field(default_factory=Counter)


def cost_of(usage: Usage, tables: dict, client) -> Cost:
    c = Cost(calls=Counter(usage.calls))
    for r, _ in usage.reads:
        c.read_units += r
    for table, key, transactional, update in usage.writes:
        changed, before = update if update is not None else (None, {})
        model, keys, indexes = tables[table]
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item") or key
        size = item_size(item)
        factor = 2 if transactional else 1
        c.write_units += factor * units(size, 1024)
        c.item_sizes[table] = max(c.item_sizes.get(table, 0), size)
        hash_value = next(iter(key[keys[0]].values()))
        c.partitions[(table, str(hash_value))] += factor * units(size, 1024)
        for name, hash_attr, projection, ikeys, included in indexes:
            names = set(ikeys) | set(keys) | (set(included) if projection == "INCLUDE" else set())
            key_moved = changed is not None and bool(changed & set(ikeys))
            if not all(k in item for k in ikeys) and not key_moved:
                continue  # not in this (sparse) index
            if changed is not None and projection != "ALL" and not (changed & names):
                continue  # the update changed nothing this index holds: no index write
            if projection == "ALL":
                projected = size
            else:
                projected = item_size({k: v for k, v in item.items() if k in names})
            present = all(k in item for k in ikeys)
            was_in = all(k in before for k in ikeys) and any(before.get(k) != item.get(k) for k in ikeys)
            wu = units(projected, 1024) * (2 if key_moved and present and was_in else 1)
            c.write_units += wu
            if present:  # (an entry removed from a sparse index is costed; its old key is not known here)
                c.partitions[(f"{table}/{name}", str(next(iter(item[hash_attr].values()))))] += wu
    return c


def _folded(partitions: Counter) -> Counter:
    """Sharded index keys folded to their value: what one partition took before sharding."""
    out = Counter()
    for (where, key), wu in partitions.items():
        out[(where, key.rsplit("#", 1)[0] if "/" in where and "#" in key else key)] += wu
    return out


# ---------------------------------------------------------------- the scenario


def capacity(w, counter=None) -> dict:
    """Cost one refund's life on the local stack and write docs/capacity.md."""
    import boto3

    from chalicelib.adapters import models
    from chalicelib.adapters import repository as repo
    from chalicelib.domain import refunds as refund_rules
    from chalicelib.services import poller

    w.reset()
    tables = _tables()
    raw = boto3.client("dynamodb", region_name=models.Order.Meta.region, endpoint_url=models.Order.Meta.host)
    rec = Recorder(raw).attach()
    out: dict[str, Cost] = {}

    def measure(name, fn):
        rec.reset()
        result = fn()
        out[name] = cost_of(rec.usage, tables, raw)
        return result

    w.sim.configure(outcome_delay=600)
    order = w.order(11)  # points, coupon, pending shipment
    r = measure("refund create (admin, to WeChat)", lambda: w.call(
        "POST", "/api/admin/pay/refunds", w.admin, {"order_no": order.order_no, "amount": order.actual_amount}))
    refund_no = r.json()["refund_no"]
    applied = w.order(14)
    a = measure("player application", lambda: w.call(
        "POST", f"/api/app/orders/{applied.order_no}/refund/apply", w.user(applied.user_id),
        {"amount": 200, "reason": "bench"}))
    measure("approve (reserve + WeChat's answer)", lambda: w.call(
        "POST", f"/api/admin/pay/refunds/{a.json()['refund_no']}/approve", w.admin, {}))
    w.sim.configure(drop_notifications=True, outcome_delay=0.05)
    w.sim.complete(refund_no, "SUCCESS")
    url = w.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    measure("notification REFUND.SUCCESS (settle)", lambda: w.sim.redeliver(refund_no, url))
    messages = w.queue_messages()
    from bench.__main__ import _restore

    measure("restoration (points, coupon, shipment)", lambda: _restore(w, messages[0]))
    measure("order detail (1 refund)", lambda: w.call("GET", f"/api/admin/orders/{order.order_no}", w.admin))
    # the poller, on one refund whose notification was lost
    other = w.order(13)
    w.sim.configure(drop_notifications=True, outcome_delay=0.05)
    p = w.call("POST", "/api/admin/pay/refunds", w.admin, {"order_no": other.order_no, "amount": 100}).json()
    w.wait_sim(p["refund_no"], "SUCCESS")
    measure("poll (one due refund, settling it)", lambda: poller.poll())

    refund_item = raw.get_item(TableName=models.Refund.Meta.table_name, Key={"refund_no": {"S": refund_no}},
                               ConsistentRead=True)["Item"]
    events = len(refund_item.get("events", {}).get("L", []))
    events_size = value_size(refund_item["events"]) if "events" in refund_item else 0
    raw_size = value_size(refund_item["raw"]) if "raw" in refund_item else 0
    refund_size = item_size(refund_item)
    per_event = -(-events_size // max(events, 1))

    life = ["refund create (admin, to WeChat)", "notification REFUND.SUCCESS (settle)",
            "restoration (points, coupon, shipment)"]
    per_refund = Counter()
    for name in life:
        per_refund.update(out[name].partitions)
    from chalicelib.adapters.keys import SHARDS

    # index partitions every refund shares (per-order and per-user partitions are not shared)
    shared = {k: v for k, v in per_refund.items() if k[0].rsplit("/", 1)[-1] in SHARED_INDEXES}
    before = _folded(Counter(shared))

    def shards(where: str) -> int:
        kind = SHARED_INDEXES[where.rsplit("/", 1)[-1]]
        return SHARDS[kind] if kind else 1

    def rate(where: str, wu: float, n: int) -> float:
        return PARTITION_WRITE_UNITS * n / wu

    before_rates = {k: rate(k[0], v, 1) for k, v in before.items()}
    after_rates = {k: rate(k[0], v, shards(k[0])) for k, v in before.items()}
    hottest_before = min(before_rates.items(), key=lambda kv: kv[1])
    hottest_after = min(after_rates.items(), key=lambda kv: kv[1])
    before_rate, after_rate = hottest_before[1], hottest_after[1]
    shards_of = {k: SHARDS[v] for k, v in SHARED_INDEXES.items() if v}
    partition_rows = [(k[0].split("-", 1)[-1], k[1], v, shards(k[0]), before_rates[k], after_rates[k])
                      for k, v in sorted(before.items())]
    life_wu = sum(out[n].write_units for n in life)
    life_ru = sum(out[n].read_units for n in life) + out["order detail (1 refund)"].read_units
    million = Decimal(1_000_000)
    cost = (Decimal(str(life_wu)) * WRITE_PRICE_PER_MILLION + Decimal(str(life_ru)) * READ_PRICE_PER_MILLION)
    from bench import ceilings as ceil

    tables_wu, indexes_wu = ceil.per_refund([out[n] for n in life])
    operator_units = sum(wu for (where, _), wu in out["refund create (admin, to WeChat)"].partitions.items()
                         if where.endswith("operator_daily_totals"))
    order_units = max(wu for (where, _), wu in per_refund.items() if where.endswith("-orders"))
    samples = {models.Order.Meta.table_name: raw.get_item(
        TableName=models.Order.Meta.table_name, Key={"order_no": {"S": order.order_no}}, ConsistentRead=True)["Item"],
        models.Refund.Meta.table_name: refund_item}
    report = {
        "ceilings": ceil.ceilings(tables_wu, indexes_wu, after_sharding=after_rate, operator_item_units=operator_units,
                                  order_item_units=order_units),
        "per_refund_units": {**tables_wu, **indexes_wu},
        "prewarm": ceil.prewarm(tables_wu, indexes_wu, ceil.WECHAT_REFUNDS_PER_SECOND),
        "projections": ceil.projections(tables, samples),
        "operations": {n: {"write_units": c.write_units, "read_units": c.read_units, "calls": dict(c.calls),
                           "largest_items": c.item_sizes} for n, c in out.items()},
        "refund_item": {"bytes": refund_size, "events": events, "events_bytes": events_size, "raw_bytes": raw_size,
                        "cap": refund_rules.MAX_EVENTS_ON_REFUND, "per_event": per_event,
                        "capped_bytes": refund_size + per_event * (refund_rules.MAX_EVENTS_ON_REFUND - events)},
        "per_refund_write_units": life_wu, "per_refund_read_units": life_ru,
        "cost_per_million_refunds_usd": str((cost * million / million).quantize(Decimal("0.01"))),
        "hottest_partition_before": list(hottest_before[0]),
        "hottest_partition_after": list(hottest_after[0]),
        "partitions": partition_rows,
        "refunds_per_second_before": round(before_rate),
        "refunds_per_second_after": round(after_rate),
    }
    _print(report)
    _write_doc(report, shards_of)
    return report


def _print(report: dict) -> None:
    print("Capacity model (from what the service writes on the local stack)")
    for name, op in report["operations"].items():
        print(f"  {name:<42} {op['write_units']:>5.1f} WRU {op['read_units']:>5.1f} RRU   "
              + ", ".join(f"{k} {v}" for k, v in sorted(op["calls"].items())))
    print(f"  one refund's life: {report['per_refund_write_units']:.1f} WRU, {report['per_refund_read_units']:.1f} RRU; "
          f"1 000 000 refunds ≈ ${report['cost_per_million_refunds_usd']} on demand")
    print(f"  refund item: {report['refund_item']['bytes']} bytes ({report['refund_item']['events']} events, "
          f"{report['refund_item']['events_bytes']} bytes; WeChat payload {report['refund_item']['raw_bytes']} bytes)")
    for what, rate, why in report["ceilings"]["rows"]:
        print(f"  ceiling: {what:<58} {rate:>8,.0f} refunds/s ({why})")
    print(f"  sustained refunds/s before a partition reaches 1 000 WCU: {report['refunds_per_second_before']:.0f} "
          f"before sharding ({report['hottest_partition_before']}), {report['refunds_per_second_after']:.0f} after "
          f"({report['hottest_partition_after']})")


def _write_doc(report: dict, shards_of: dict) -> None:
    from bench import ceilings
    rows_p = "\n".join(f"| {w} | {k} | {wu:.0f} | {n} | {b:.0f} | {a:.0f} |" for w, k, wu, n, b, a in report["partitions"])
    rows = "\n".join(
        f"| {name} | {op['write_units']:.1f} | {op['read_units']:.1f} | "
        + ", ".join(f"{k} {v}" for k, v in sorted(op["calls"].items())) + " | "
        + ", ".join(f"{t.split('-', 1)[-1]} {b} B" for t, b in sorted(op["largest_items"].items())) + " |"
        for name, op in report["operations"].items())
    item = report["refund_item"]
    DOC.write_text(f"""# Capacity and cost

Written by `make bench` (`python -m bench capacity`, bench/capacity.py) from what the service really
writes and reads on the local stack: every DynamoDB request of each operation is recorded and each
item written is sized by DynamoDB's rules. Do not edit by hand; run the benchmark.

## Rules applied
- A write costs ceil(item size / 1 KB) write request units (WRU) per item, twice that inside a
  transaction (updates at the item's size after the write), plus, for each global secondary index the
  item is in, one write of its projected size when the write changes what that index holds (any
  attribute for an ALL projection, its keys and included attributes otherwise); a changed index key
  costs a delete and a put.
- A read costs ceil(size / 4 KB) read request units (RRU) per item for a consistent read, half for an
  eventually consistent Query (rounded over the page), twice for a transactional read.
- On-demand prices: ${WRITE_PRICE_PER_MILLION} per million WRU, ${READ_PRICE_PER_MILLION} per million RRU
  (us-east-1; other regions differ). Storage, backups and streams are not included.

## Per operation
| operation | WRU | RRU | calls | largest item written |
|---|---:|---:|---|---|
{rows}

One refund's life (create, WeChat's notification, restoration): **{report['per_refund_write_units']:.1f} WRU**
and **{report['per_refund_read_units']:.1f} RRU** with one look at the order; **one million refunds ≈
${report['cost_per_million_refunds_usd']}** in request units.

## The refund item
After its life the refund item is {item['bytes']} bytes: {item['events']} events ({item['events_bytes']} bytes)
and WeChat's last payload ({item['raw_bytes']} bytes, replaced, not accumulated). Events are capped
(`MAX_EVENTS_ON_REFUND` = {item['cap']} in chalicelib/domain/refunds.py): a refund that keeps being
retried keeps its first event and the latest ones, counts the ones it dropped, and every event is also
in the logs. At the cap the item is about {item['capped_bytes']} bytes however long its history (before the
cap, each retry added about {item['per_event']} bytes for good), so every write of it costs at most
{-(-item['capped_bytes'] // 1024)} WRU ({-(-item['capped_bytes'] // 1024) * 2} in a transaction).

## Hot partitions
Index partition keys with few values are sharded (chalicelib/adapters/models.py `SHARDS`:
{", ".join(f"{k} × {v}" for k, v in shards_of.items())}); readers fan out over the shards and merge.
Per refund's life, the writes to each shared index partition (folded to the unsharded value):

| index | partition key | WRU per refund | shards | refunds/s before sharding | refunds/s after |
|---|---|---:|---:|---:|---:|
{rows_p}

Sustained refunds per second before any partition reaches 1 000 WCU: **{report['refunds_per_second_before']}**
before sharding ({report['hottest_partition_before'][0].split('-', 1)[-1]} = {report['hottest_partition_before'][1]}),
**{report['refunds_per_second_after']}** after ({report['hottest_partition_after'][0].split('-', 1)[-1]} =
{report['hottest_partition_after'][1]}).

Table partitions are keyed by order, refund, user or task and spread by nature. The reconciliation's
by-day indexes (payments recorded and refunds that succeeded, one day per key) are sharded like the
lists; the daily run reads every shard of its day. Beyond the figure above, raise the shard counts
of the binding row (a backfill of the items' key attributes).
""" + ceilings.markdown(report), encoding="utf-8")
