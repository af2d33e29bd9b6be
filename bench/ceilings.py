"""What limits refunds per second, in the order a sale meets them, from the write units
bench/capacity.py measured for one refund's life (create, WeChat's notification, restoration):

1. WeChat Pay's own rate limit on refund requests (about 150 a second per merchant,
   /work/shared/wechatpay-v3.md "Refund API limits"): nothing we deploy raises it;
2. the write throughput a new on-demand table (and each of its indexes) starts with, 4 000 write
   units a second (AWS, "Pre-warming a table for on-demand capacity mode": "New on-demand tables
   will be able to sustain up to 4,000 writes per second and 12,000 reads per second"), until it is
   pre-warmed (warm throughput) or has grown with traffic;
3. one partition's 1 000 write units a second, for the index keys every refund shares (sharded,
   bench/capacity.py's "Hot partitions") and for the items one person or one order writes with
   every refund: the operator's daily-total item and the order item.

And which index projections hold more than their reads need (their writes cost the difference).
"""
from __future__ import annotations

from collections import Counter

WECHAT_REFUNDS_PER_SECOND = 150  # 申请退款: about 150 requests/s (6/s for erroneous or invalid ones)
WECHAT_QUERIES_PER_SECOND = 300  # 查询单笔退款: 300 QPS (the poller's)
NEW_TABLE_WRITE_UNITS = 4000  # per table and per index of a new on-demand table
NEW_TABLE_READ_UNITS = 12000
PARTITION_WRITE_UNITS = 1000
SALE_HEADROOM = 2  # pre-warm to twice the rate a sale is expected to reach
# The order list (repository.list_orders -> views.order_summary) reads these of an order, whichever of
# its three list indexes it pages; the index keys and the table key come with any projection.
ORDER_LIST_READS = ("user_id", "status", "source_type", "shipping", "activity_name", "actual_amount",
                    "refunded_amount", "refundable_amount")
ORDER_LIST_INDEXES = ("by_user", "by_status_key", "by_time")


def per_refund(costs: list) -> tuple[Counter, Counter]:
    """Write units one refund's life puts on each table and on each index, summed over partitions."""
    tables, indexes = Counter(), Counter()
    for cost in costs:
        for (where, _key), wu in cost.partitions.items():
            (indexes if "/" in where else tables)[where.split("-", 1)[-1]] += wu
    return tables, indexes


def ceilings(tables: Counter, indexes: Counter, *, after_sharding: int, operator_item_units: float,
             order_item_units: float) -> dict:
    """The ceilings a sale meets, lowest first, each with what binds it."""
    cold = {where: NEW_TABLE_WRITE_UNITS / wu for where, wu in {**tables, **indexes}.items() if wu}
    coldest = min(cold.items(), key=lambda kv: kv[1])
    rows = [
        ("WeChat Pay: refund requests per merchant", WECHAT_REFUNDS_PER_SECOND, "申请退款 rate limit"),
        ("a new on-demand table or index (4 000 WRU/s each)", coldest[1], coldest[0]),
        ("shared index partitions, after sharding (1 000 WRU/s each)", after_sharding, "bench/capacity.py"),
        ("one person's daily-total item (1 000 WRU/s)", PARTITION_WRITE_UNITS / operator_item_units,
         "operator_daily_totals, one plain conditional update per direct refund"),
        ("refunds of one order (its item, 1 000 WRU/s; WeChat allows 50 an order, a minute apart)",
         PARTITION_WRITE_UNITS / order_item_units, "orders: every refund of the order moves its balances"),
    ]
    return {"rows": sorted(rows, key=lambda r: r[1]), "cold": cold, "coldest": coldest}


def prewarm(tables: Counter, indexes: Counter, rate: float) -> list[tuple[str, float, bool]]:
    """(table or index, write units a second ``rate`` refunds a second need with headroom, over
    what a new table starts with) for each table and index a refund writes."""
    out = []
    for where, wu in sorted({**tables, **indexes}.items()):
        need = wu * rate * SALE_HEADROOM
        out.append((where, need, need > NEW_TABLE_WRITE_UNITS))
    return out


def projections(tables_info: dict, sample_items: dict) -> list[dict]:
    """For each index, what a write of one sample item projects into it today, and what a
    projection of only what its reads use would: ``sample_items`` maps table -> an item (wire form)."""
    from bench.capacity import item_size

    rows = []
    for table, (model, keys, indexes) in sorted(tables_info.items()):
        item = sample_items.get(table)
        if item is None:
            continue
        for name, _hash_attr, projection, ikeys, included in indexes:
            base = set(keys) | set(ikeys)
            if projection == "ALL":
                today = item_size(item)
            elif projection == "INCLUDE":
                today = item_size({k: v for k, v in item.items() if k in base | set(included)})
            else:
                today = item_size({k: v for k, v in item.items() if k in base})
            need = None
            if model.Meta.base_name == "orders" and name in ORDER_LIST_INDEXES:
                need = item_size({k: v for k, v in item.items() if k in base | set(ORDER_LIST_READS)})
            rows.append({"index": f"{model.Meta.base_name}/{name}", "projection": projection, "bytes": today,
                         "needed_bytes": need})
    return rows


def markdown(report: dict) -> str:
    c = report["ceilings"]
    ceiling_rows = "\n".join(f"| {what} | {rate:,.0f} | {why} |" for what, rate, why in c["rows"])
    cold_rows = "\n".join(f"| {where} | {wu:.0f} | {NEW_TABLE_WRITE_UNITS / wu:,.0f} |"
                          for where, wu in sorted(report["per_refund_units"].items()))
    warm_rows = "\n".join(f"| {where} | {need:,.0f} | {'pre-warm' if over else 'within the 4 000 it starts with'} |"
                          for where, need, over in report["prewarm"])
    warm_cmds = "\n".join(
        f"aws dynamodb update-table --table-name $STAGE-{where} "
        f"--warm-throughput WriteUnitsPerSecond={int(-(-need // 100) * 100)}"
        for where, need, over in report["prewarm"] if over and "/" not in where) or "# nothing to pre-warm"
    proj_rows = "\n".join(
        f"| {p['index']} | {p['projection']} | {p['bytes']} | "
        + (f"{p['needed_bytes']} (INCLUDE {', '.join(ORDER_LIST_READS)})" if p["needed_bytes"] is not None else "")
        + " |" for p in report["projections"])
    return f"""
## Ceilings, in the order a sale meets them

| ceiling | refunds/s | what binds it |
|---|---:|---|
{ceiling_rows}

**WeChat Pay is the first ceiling**: a merchant may request about {WECHAT_REFUNDS_PER_SECOND} refunds a second
(`FREQUENCY_LIMITED` beyond; refund queries {WECHAT_QUERIES_PER_SECOND} a second). A request it refuses that
way is held as 已提交 and sent again by the poller, so a burst above it drains at that rate rather than
failing. Nothing below binds before it, once the tables are warm.

### Tables start cold
A new on-demand table, and each of its indexes, sustains {NEW_TABLE_WRITE_UNITS:,} write units a second
(and {NEW_TABLE_READ_UNITS:,} read units) until traffic has grown it, and then takes no more than twice its
previous peak within 30 minutes. Per refund's life (create, notification, restoration):

| table or index | WRU per refund | refunds/s a new one takes |
|---|---:|---:|
{cold_rows}

So a stack deployed the day before a sale takes **{c['coldest'][1]:,.0f} refunds/s** ({c['coldest'][0]}),
not the partition figure below. That is above WeChat's ceiling. To take a sale at WeChat's full rate with
{SALE_HEADROOM}× headroom, each table and index needs (write units a second):

| table or index | WRU/s at {WECHAT_REFUNDS_PER_SECOND}/s × {SALE_HEADROOM} | |
|---|---:|---|
{warm_rows}

Pre-warming (warm throughput, asynchronous: start a day ahead; indexes through
`--global-secondary-index-updates '[{{"Update": {{"IndexName": ..., "WarmThroughput": {{...}}}}}}]'`):

```sh
{warm_cmds}
```

### One person, one order
Every refund an operator sends straight to WeChat adds to their daily-total item
(`operator_daily_totals`, one item per person and Beijing day), and every refund of an order moves that
order's balances on its one item. A single item lives on one partition: {PARTITION_WRITE_UNITS:,} write units a second.
While the daily total was written inside the refund's transaction, two refunds of one person at once
conflicted (`TransactionConflict`: DynamoDB lets one transaction at a time hold an item), were retried
6 times within about a second, then failed: one person's refunds were serialised at one transaction at a
time, whatever the table could take. The daily total is now charged with a plain conditional update
before the refund's transaction (single-item writes to one item queue at the partition, they do not
conflict) and given back if that transaction fails, which removes the hot key up to the partition's rate.
Sharded daily counters (N items per person and day, each holding limit/N) would go further but refuse a
refund larger than one shard's share; nothing in sight needs it. An order's item stays in the settlement
transaction (its balances move with the refund's status, keyed on its refunded total as read: the
restoration's pro-rata needs each refund's place in it), so one order's refunds settle one at a time. A
notification that loses its turn is answered with its receipt stored and its refund left to the next
poll, so WeChat's 5 s are kept however many settle at once (`docs/benchmarks.md`, "A hot order").

### Index projections
What one write of a sample item projects into each index (bytes; an index write costs ceil(bytes / 1 KB)
write units, its storage and every page read that size too):

| index | projection | bytes written | what its reads use |
|---|---|---:|---|
{proj_rows}

The orders' three list indexes project ALL, but their one reader (the order list,
`repository.list_orders` → `views.order_summary`) uses {len(ORDER_LIST_READS)} attributes: an INCLUDE projection of
those keeps an order's items, lottery draws, payment and virtual goods out of three indexes. An index's
projection cannot be changed in place, and CloudFormation creates or deletes one index per table per
update, so the change is six releases: each one adds one INCLUDE index beside an ALL one (the code goes
on reading the old), then one switches the reads, then each drops an ALL index; at today's order sizes
(under 1 KB) it saves storage and read units, not write units. The refunds' two ALL indexes are read
for what a refund looks like in the lists, the review queue and the player's view, which show most of it;
what they could leave out is the refund's history and WeChat's last payload (`events`, `raw`: about a
third of the item, more for a refund retried many times), at the price of a read of each refund shown.
"""
