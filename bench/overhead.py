"""Overhead, like for like: an admin refund create through the local HTTP API against the same
calls made directly from the benchmark process with a plain boto3 client and the service's
WeChat gateway.

Both paths make, per create (``create_admin_refund`` without an Idempotency-Key):

1. ``GetItem orders``: the order (status, balances, payment ids, total);
2. ``TransactWriteItems(Put payment_refunds, Put staff_activity, Update orders,
   Update operator_daily_totals)``: the refund, the operator's activity record, the conditional
   reservation of the order's balance and the operator's daily total, all or nothing;
3. the WeChat refund create;
4. ``UpdateItem payment_refunds``: WeChat's answer, conditional on the status written in 2.

The direct path writes items with the same attributes as the service's. Every DynamoDB call of
every round is recorded on both paths (``bench/counting.py``: the service's clients and the
direct client) and the two lists are compared round by round, as are the WeChat creates that
reached the simulator: any difference is a MISMATCH, and the benchmark fails.

The whole stack (API server, local DynamoDB endpoint, simulator) runs in this process, so the
CPU time of a round (``time.process_time``) is everything the create cost on this machine; the
API's own CPU per create is the API round's minus the direct round's, which made the same calls.
The service logs as it does on Lambda while it is measured: its INFO lines are formatted and
written (here to /dev/null), not switched off.

``BENCH_OVERHEAD_PROFILE=<prefix>`` also profiles both paths (cProfile, which sees every thread
from Python 3.12) into ``<prefix>.api.prof`` and ``<prefix>.direct.prof`` and prints where the
API path spends CPU that the direct path does not, by package.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import statistics
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from bench.report import line as _line, ms as _ms

TARGET = 1.3
AMOUNT = 1  # fen
DIRECT_OPERATOR = "bench-direct"


class DirectCreate:
    """An admin refund create written out as plain DynamoDB requests and one gateway call."""

    def __init__(self, w, counter):
        import boto3

        from chalicelib.adapters.models import OperatorDay, Order, Refund, StaffActivity
        from chalicelib.adapters.wechat.gateway import get_gateway

        self.ddb = boto3.client("dynamodb", region_name=w.stack.env["AWS_REGION"],
                                endpoint_url=w.stack.env["AWS_ENDPOINT_URL"])
        counter.hook(self.ddb)
        self.orders, self.refunds = Order.Meta.table_name, Refund.Meta.table_name
        self.activity, self.daily = StaffActivity.Meta.table_name, OperatorDay.Meta.table_name
        self.gateway = get_gateway()
        self.actor = f"admin:{DIRECT_OPERATOR}"

    def __call__(self, order_no: str) -> str:
        from chalicelib.adapters import keys

        ddb, now = self.ddb, datetime.now(timezone.utc)
        at = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        day = (now + timedelta(hours=8)).date()
        no = "RD" + now.strftime("%Y%m%d%H%M%S") + base64.b32encode(secrets.token_bytes(10)).decode()
        order = ddb.get_item(TableName=self.orders, Key={"order_no": {"S": order_no}}, ConsistentRead=False,
                             ReturnConsumedCapacity="TOTAL")["Item"]
        total, user_id = order["actual_amount"]["N"], order["user_id"]["S"]
        payment = order["payment"]["M"]
        out_trade_no, transaction_id = payment["out_trade_no"]["S"], payment["transaction_id"]["S"]
        new = keys.refund_keys(no, {"status": "submitted", "work": "poll"})
        refund = {
            "refund_no": {"S": no}, "amount": {"N": str(AMOUNT)}, "channel": {"S": "wechat"},
            "created_at": {"S": at}, "created_by": {"S": self.actor},
            "events": {"L": [{"M": {"actor": {"S": self.actor}, "at": {"S": at},
                                    "detail": {"S": "后台发起退款，已预留余额"}, "to_status": {"S": "submitted"}}}]},
            "fingerprint": {"S": hashlib.sha256(f"{order_no}\x00{AMOUNT}".encode()).hexdigest()},
            "order_no": {"S": order_no}, "order_total": {"N": total}, "origin": {"S": "admin"},
            "out_trade_no": {"S": out_trade_no}, "poll_attempts": {"N": "0"}, "poll_failures": {"N": "0"},
            "requested_amount": {"N": str(AMOUNT)}, "requires_manual_review": {"BOOL": False},
            "status": {"S": "submitted"}, "status_key": {"S": new["status_key"]},
            "transaction_id": {"S": transaction_id}, "updated_at": {"S": at}, "user_id": {"S": user_id},
            "work": {"S": new["work"]}, "work_due_at": {"S": at}}
        activity = {
            "activity_id": {"S": f"{no}#created#{at}"}, "action": {"S": "created"}, "actor": {"S": self.actor},
            "amount": {"N": str(AMOUNT)}, "at": {"S": at}, "operator": {"S": DIRECT_OPERATOR},
            "order_no": {"S": order_no}, "origin": {"S": "admin"}, "refund_no": {"S": no},
            "sort_key": {"S": f"{at}#{no}#created"}, "status": {"S": "submitted"}}
        expires = int(datetime.combine(day + timedelta(days=40), datetime.min.time(), timezone.utc).timestamp())
        ddb.transact_write_items(ReturnConsumedCapacity="TOTAL", TransactItems=[
            {"Put": {"TableName": self.refunds, "Item": refund, "ConditionExpression": "attribute_not_exists(#n)",
                     "ExpressionAttributeNames": {"#n": "refund_no"}}},
            {"Put": {"TableName": self.activity, "Item": activity}},
            {"Update": {"TableName": self.orders, "Key": {"order_no": {"S": order_no}},
                        "ConditionExpression": "((#s = :paid OR (#s = :cancelled AND #pac = :t)) "
                                               "AND #ra >= :a) AND #rc < :max",
                        "UpdateExpression": "ADD #ra :neg, #res :a, #app :neg, #rc :one",
                        "ExpressionAttributeNames": {"#s": "status", "#pac": "paid_after_cancel",
                                                     "#ra": "refundable_amount", "#rc": "refund_count",
                                                     "#res": "reserved_amount", "#app": "applicable_amount"},
                        "ExpressionAttributeValues": {":paid": {"N": "2"}, ":cancelled": {"N": "3"},
                                                      ":t": {"BOOL": True}, ":a": {"N": str(AMOUNT)},
                                                      ":max": {"N": "50"}, ":neg": {"N": str(-AMOUNT)},
                                                      ":one": {"N": "1"}}}},
            {"Update": {"TableName": self.daily,
                        "Key": {"operator": {"S": DIRECT_OPERATOR}, "day": {"S": day.isoformat()}},
                        "ConditionExpression": "attribute_not_exists(#u) OR #u <= :room",
                        "UpdateExpression": "SET #at = :at, #exp = :exp ADD #u :a, #n :one",
                        "ExpressionAttributeNames": {"#u": "used", "#at": "updated_at", "#exp": "expires_at",
                                                     "#n": "refunds"},
                        "ExpressionAttributeValues": {":room": {"N": str(10_000_000 - AMOUNT)}, ":at": {"S": at},
                                                      ":exp": {"N": str(expires)}, ":a": {"N": str(AMOUNT)},
                                                      ":one": {"N": "1"}}}},
        ])
        result = self.gateway.create_refund(out_refund_no=no, amount=AMOUNT, total=int(total),
                                            out_trade_no=out_trade_no, transaction_id=transaction_id, reason=None)
        at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        status = result.status.lower()
        answered = keys.refund_keys(no, {"status": status, "work": "poll"})
        names = ["status", "updated_at", "work", "work_due_at", "poll_attempts", "poll_failures",
                 "wechat_refund_id", "user_received_account", "raw", "status_key"]
        values = [status, at, answered["work"], at, 0, 0, result.refund_id, result.user_received_account,
                  json.dumps(result.raw), answered["status_key"]]
        attr_values = {f":v{i}": ({"N": str(v)} if isinstance(v, int) else {"S": v}) for i, v in enumerate(values)}
        attr_values[":was"] = {"S": "submitted"}
        attr_values[":ev"] = {"L": [{"M": {"actor": {"S": self.actor}, "at": {"S": at},
                                          "detail": {"S": "微信已受理退款"}, "from_status": {"S": "submitted"},
                                          "to_status": {"S": status}}}]}
        ddb.update_item(
            TableName=self.refunds, Key={"refund_no": {"S": no}}, ReturnValues="NONE",
            ReturnConsumedCapacity="TOTAL", ConditionExpression="#a0 = :was",
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(names)))
                             + ", #ev = list_append(#ev, :ev)",
            ExpressionAttributeNames={**{f"#a{i}": n for i, n in enumerate(names)}, "#ev": "events"},
            ExpressionAttributeValues=attr_values)
        return no


@contextmanager
def _service_logging():
    """The service's log lines produced as in production (INFO and up, JSON), written to /dev/null."""
    from chalicelib.log import get_logger

    get_logger(__name__)  # the service's handler exists
    handlers = [h for h in logging.getLogger("refunds").handlers if isinstance(h, logging.StreamHandler)]
    was = logging.root.manager.disable
    with open(os.devnull, "w", encoding="utf-8") as sink:
        streams = [h.setStream(sink) for h in handlers]
        logging.disable(logging.DEBUG)
        try:
            yield
        finally:
            logging.disable(was)
            for h, stream in zip(handlers, streams):
                h.setStream(stream)


def _api_create(w):
    def create(order_no: str) -> str:
        r = w.call("POST", "/api/admin/pay/refunds", w.admin, {"order_no": order_no, "amount": AMOUNT})
        assert r.status_code == 201, r.text
        return r.json()["refund_no"]

    return create


def _round(w, counter, create, order_no: str) -> tuple[float, float, tuple[list[str], int]]:
    """One create: wall seconds, CPU seconds of this process, and the calls it made (the
    DynamoDB calls in order, and the WeChat creates that reached the simulator)."""
    counter.reset()
    wechat_before = w.sim.create_calls()
    c, t = time.process_time(), time.perf_counter()
    create(order_no)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return wall, cpu, (list(counter.sequence), w.sim.create_calls() - wechat_before)


def _calls(calls: tuple[list[str], int]) -> str:
    dynamodb, wechat = calls
    return f"{' -> '.join(dynamodb)}; WeChat refund creates: {wechat}"


def overhead(w, counter, rounds: int = 100) -> dict:
    with _service_logging():
        return _overhead(w, counter, rounds)


def _overhead(w, counter, rounds: int) -> dict:
    print(f"Overhead, like for like: admin refund create over the HTTP API vs the same calls made directly "
          f"(median of {rounds}, interleaved; target <= {TARGET})")
    w.reset()
    w.set_nodelay(True)
    w.sim.configure(outcome_delay=600)  # no outcome arrives while a round is measured
    counter.attach()
    orders = [o.order_no for o in w.paid_orders()]
    paths = {"api": _api_create(w), "direct": DirectCreate(w, counter)}
    for i in range(5):  # warm both paths (connections, SDK client, key loading)
        for create in paths.values():
            create(orders[i % len(orders)])
    walls: dict[str, list[float]] = {"api": [], "direct": []}
    cpus: dict[str, list[float]] = {"api": [], "direct": []}
    first: dict[str, tuple] = {}
    mismatches = []
    for i in range(rounds):
        order_no = orders[i % len(orders)]
        calls = {}
        for name in (("api", "direct") if i % 2 else ("direct", "api")):
            wall, cpu, calls[name] = _round(w, counter, paths[name], order_no)
            walls[name].append(wall)
            cpus[name].append(cpu)
        first = first or calls
        if calls["api"] != calls["direct"]:
            mismatches.append((i, calls))
    for name, label in (("api", "API"), ("direct", "direct")):
        print(f"  calls per create, {label}: {_calls(first[name])}")
    if mismatches:
        i, calls = mismatches[0]
        print(f"  MISMATCH in {len(mismatches)} of {rounds} rounds; first, round {i}:")
        for name in ("api", "direct"):
            print(f"    {name}: {_calls(calls[name])}")
    else:
        _line("calls per create, API vs direct", "same", f"on all {rounds} rounds")

    api, direct = statistics.median(walls["api"]), statistics.median(walls["direct"])
    api_cpu, direct_cpu = statistics.median(cpus["api"]), statistics.median(cpus["direct"])
    ratio = api / direct
    _line("create over the HTTP API (median)", _ms(api))
    _line("the same calls, direct (median)", _ms(direct))
    paired = statistics.median(a / d for a, d in zip(walls["api"], walls["direct"]))
    verdict = "MISMATCH: not like for like" if mismatches else "ok" if ratio <= TARGET else f"OVER target {TARGET}"
    _line("like-for-like ratio", f"{ratio:.2f}", verdict)
    _line("  median of the rounds' own ratios", f"{paired:.2f}", "(each API create / the direct one beside it)")
    _line("CPU per create, API path (whole process)", _ms(api_cpu))
    _line("CPU per create, direct path (whole process)", _ms(direct_cpu))
    _line("API process's own CPU per create", _ms(api_cpu - direct_cpu), "API path - direct path, medians")
    _line("like-for-like ratio of CPU", f"{api_cpu / direct_cpu:.2f}", "(steadier than wall time on a busy machine)")
    hop, get = _hop(w), _getitem(paths["direct"].ddb, paths["direct"].orders, orders[0])
    _line("one local HTTP round trip (GET /api/health)", _ms(hop))
    _line("one DynamoDB GetItem on the local endpoint", _ms(get))
    _line("ratio without the local HTTP hop", f"{(api - hop) / direct:.2f}", "(API median - health round trip) / direct")
    out = {"api_ms": api * 1000, "direct_ms": direct * 1000, "ratio": ratio, "api_cpu_ms": api_cpu * 1000,
           "direct_cpu_ms": direct_cpu * 1000, "own_cpu_ms": (api_cpu - direct_cpu) * 1000,
           "cpu_ratio": api_cpu / direct_cpu, "paired_ratio": paired,
           "health_ms": hop * 1000, "getitem_ms": get * 1000, "calls": first, "mismatched_rounds": len(mismatches),
           "failed": bool(mismatches)}
    prefix = os.environ.get("BENCH_OVERHEAD_PROFILE")
    if prefix:
        _profile(w, paths, orders, prefix, rounds)
    return out


def _hop(w, n: int = 30) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        w.call("GET", "/api/health")
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _getitem(ddb, table: str, order_no: str, n: int = 30) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        ddb.get_item(TableName=table, Key={"order_no": {"S": order_no}})
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ---------------------------------------------------------------- where the API's CPU goes

_PACKAGES = ("chalicelib", "chalice", "moto", "botocore", "boto3", "pynamodb", "wechatpay_sim", "wechatpayv3",
             "werkzeug", "requests", "urllib3", "cryptography", "jwt", "devstack", "bench", "logging", "json",
             "http", "email", "copy")


def _package(filename: str) -> str:
    for pkg in _PACKAGES:
        if f"/{pkg}/" in filename:
            return pkg
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    return "stdlib: " + os.path.basename(filename)


def _profile(w, paths: dict, orders: list[str], prefix: str, rounds: int) -> None:
    """cProfile each path over ``rounds`` creates; print CPU per create by package, API - direct."""
    import cProfile
    import pstats

    per_package: dict[str, Counter] = {}
    for name, create in paths.items():
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(rounds):
            create(orders[i % len(orders)])
        profiler.disable()
        profiler.dump_stats(f"{prefix}.{name}.prof")
        totals: Counter = Counter()
        for (filename, _line_no, _fn), (_cc, _nc, tottime, _ct, _callers) in pstats.Stats(profiler).stats.items():
            totals[_package(filename)] += tottime * 1000 / rounds
        per_package[name] = totals
    diff = Counter({k: per_package["api"][k] - per_package["direct"][k]
                    for k in set(per_package["api"]) | set(per_package["direct"])})
    print(f"  profile (cProfile, all threads; {prefix}.api.prof, {prefix}.direct.prof): "
          "ms per create under the profiler (wall time: read it on a quiet machine), API - direct, by package")
    for pkg, ms in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:15]:
        print(f"    {ms:+7.2f} ms  {pkg}  (API {per_package['api'][pkg]:.2f}, direct {per_package['direct'][pkg]:.2f})")
