"""Reconciliation at scale: a 200 000-line trade bill (100 000 payments, 100 000 refunds) on the
local stack. Orders and refunds are written directly (raw BatchWriteItem of pre-serialised items,
a few writers at once) and the same payments and refunds are put into the simulator's ledger in one
call (no 100 000 refunds through the API). The run itself happens in a fresh child process, as a
Lambda would run it, so its peak memory (VmHWM) is the reconciliation's own and not the embedded
stack's. Each target is printed with PASS or FAIL.

Targets: >= 2 000 lines/s, peak memory < 256 MB, DynamoDB items read per line <= 1.

    python -m bench reconcile                    # through the bench runner (BENCH_RECON_PAIRS: size)
    python -m bench.reconcile --child DATE       # (internal) the measured run
    BENCH_RECON_PROFILE=/tmp/recon.pstats ...    # cProfile statistics of the measured run
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))
TARGET_LINES_PER_SECOND = 2000
TARGET_PEAK_MB = 256
TARGET_ITEMS_PER_LINE = 1


def _memory_mb(field: str = "VmHWM") -> float:
    """This process's peak (VmHWM) or current (VmRSS) resident memory. Not ``ru_maxrss``: Linux
    carries that across exec from the forking parent, so a child of the bench would report the
    whole stack's size."""
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith(field + ":"):
                return int(row.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


class _ClientCalls:
    """AWS calls and DynamoDB items read by every botocore client of this process, counted by
    wrapping ``BaseClient._make_api_call`` (once per call, retries excluded). Unlike
    ``bench.counting.CallCounter`` it creates no client of its own: each pynamodb model has its
    own botocore session, and making one for every model would add ~100 MB to the peak memory
    that this benchmark measures."""

    def __init__(self):
        from collections import Counter

        self.calls: Counter = Counter()
        self.items_read = 0

    def attach(self) -> "_ClientCalls":
        import threading

        from botocore.client import BaseClient

        original, lock, counts = BaseClient._make_api_call, threading.Lock(), self

        def counted(client, operation_name, api_params):
            parsed = original(client, operation_name, api_params)
            service = client.meta.service_model.service_name
            n = 0
            if service == "dynamodb" and isinstance(parsed, dict):
                if "Item" in parsed:
                    n = 1
                elif "Items" in parsed:
                    n = len(parsed["Items"])
                elif "Responses" in parsed:
                    r = parsed["Responses"]
                    n = sum(1 for x in r if x.get("Item")) if isinstance(r, list) else sum(len(v) for v in r.values())
            with lock:
                counts.calls[f"{service}.{operation_name}"] += 1
                counts.items_read += n
            return parsed

        BaseClient._make_api_call = counted
        return self

    def dynamodb(self) -> int:
        return sum(v for k, v in self.calls.items() if k.startswith("dynamodb."))

    def breakdown(self) -> str:
        return ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(self.calls.items())
                         if k.startswith("dynamodb."))


class _TimedGateway:
    """The service's gateway, timing the bill's download (the simulator builds it on request)."""

    def __init__(self, gateway):
        self._gateway, self.download_seconds = gateway, 0.0

    def download_trade_bill(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self._gateway.download_trade_bill(*args, **kwargs)
        finally:
            self.download_seconds += time.perf_counter() - t

    def __getattr__(self, name):
        return getattr(self._gateway, name)


SEED_WRITERS = 4  # parallel BatchWriteItem callers while seeding (bounded)
WRITE_BATCH = 25  # BatchWriteItem's limit


def _write_all(client, table: str, items) -> None:
    """Put pre-serialised ``items`` into ``table``: BatchWriteItem calls of 25 from a small
    thread pool, unprocessed items retried."""
    import concurrent.futures as cf

    def write(chunk: list) -> None:
        request = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        for attempt in range(20):
            left = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not left:
                return
            request = left
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        raise RuntimeError(f"{table}: items left unprocessed after retries")

    def chunks():
        chunk = []
        for item in items:
            chunk.append(item)
            if len(chunk) == WRITE_BATCH:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    with cf.ThreadPoolExecutor(SEED_WRITERS) as pool:
        pending = set()
        for chunk in chunks():
            pending.add(pool.submit(write, chunk))
            if len(pending) >= 4 * SEED_WRITERS:  # keep the queue (and memory) bounded
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    f.result()
        for f in cf.as_completed(pending):
            f.result()


def seed(w, pairs: int, bill_date: str) -> None:
    """``pairs`` paid orders and one successful refund each, on ``bill_date``, here and at WeChat.

    Each table gets one item serialised by its pynamodb model as a template; the others are
    that template with their own numbers, written with raw BatchWriteItem calls in parallel. The
    simulator's ledger takes the same payments and refunds in one call."""
    from chalicelib.adapters import models
    from chalicelib.adapters import repository as repo
    from chalicelib.adapters.keys import day_key, shard_key
    from chalicelib.adapters.models import Order, Payment, Refund
    from wechatpay_sim.records import Refund as SimRefund
    from wechatpay_sim.records import Transaction

    models.bind()
    noon = datetime.fromisoformat(f"{bill_date}T12:00:00+08:00")
    at = noon.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    success = f"{bill_date}T13:00:00+08:00"
    order = Order("BO0", user_id="u1001", status=2, source_type=1, total_amount=1000, actual_amount=1000,
                  payment=Payment(out_trade_no="BO0", transaction_id="4200", paid_at=at), created_at=at,
                  refundable_amount=900, refunded_amount=100).serialize()
    refund = Refund("BR0", order_no="BO0", user_id="u1001", origin="admin", amount=100, requested_amount=100,
                    status="success", created_by="bench", order_total=1000, success_time=success,
                    success_actor="wechat", accepted_at=success, created_at=at, updated_at=at).serialize()
    payment = order["payment"]["M"]

    def orders():
        for i in range(pairs):
            no = f"BO{i:010d}"
            yield {**order, "order_no": {"S": no}, "paid_day_key": {"S": day_key(no, at)}, "payment": {"M": {
                **payment, "out_trade_no": {"S": no}, "transaction_id": {"S": f"4200{i:024d}"}}}}

    def refunds():
        for i in range(pairs):
            no = f"BR{i:010d}"
            yield {**refund, "refund_no": {"S": no}, "order_no": {"S": f"BO{i:010d}"},
                   "success_day_key": {"S": shard_key(bill_date, no, "day")},
                   "accepted_day_key": {"S": shard_key(bill_date, no, "day")}}

    client = repo.connection().client
    _write_all(client, Order.Meta.table_name, orders())
    _write_all(client, Refund.Meta.table_name, refunds())
    paid_at, succeeded = noon.timestamp(), noon.timestamp() + 3600
    transactions = [Transaction(out_trade_no=f"BO{i:010d}", transaction_id=f"4200{i:024d}", total=1000,
                                paid_at=paid_at, openid="obench", payer_total=1000) for i in range(pairs)]
    w.sim.store.register_ledger(transactions, [
        SimRefund(refund_id=f"5030{i:025d}", out_refund_no=f"BR{i:010d}", transaction_id=f"4200{i:024d}",
                  out_trade_no=f"BO{i:010d}", refund=100, total=1000, reason=None, notify_url=None,
                  created_at=succeeded, payer_total=1000, status="SUCCESS", success_at=succeeded)
        for i in range(pairs)])


def reconcile(w, counter, pairs: int = 100_000) -> dict:
    print(f"Reconciliation: a {2 * pairs:,}-line trade bill ({pairs:,} payments, {pairs:,} refunds) "
          "(targets: >= 2000 lines/s, peak memory < 256 MB, DynamoDB items read per line <= 1)")
    w.reset()
    w.sim.configure(bill_ready_hour=0)  # yesterday's bill is out whatever the hour (at WeChat: from ~10:00)
    bill_date = (datetime.now(CST) - timedelta(days=1)).strftime("%Y-%m-%d")
    t = time.perf_counter()
    seed(w, pairs, bill_date)
    print(f"  seeded {2 * pairs:,} records here and at the simulator in {time.perf_counter() - t:.1f} s", flush=True)
    # the simulator builds the bill (and its hash) when asked, where WeChat serves a file it made
    # overnight: at this size that takes longer than the service's 5 s API timeout
    env = {**os.environ, **w.stack.env, "RECON_API_BUDGET_SECONDS": "3600", "WECHAT_TIMEOUT_SECONDS": "600",
           "WECHAT_BILL_TIMEOUT_SECONDS": "600"}
    out = subprocess.run([sys.executable, "-m", "bench.reconcile", "--child", bill_date], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-3000:])
        raise RuntimeError("the reconciliation child failed")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    lines = result["lines_read"]

    def line(name, value, note=""):
        print(f"  {name:<46} {value!s:>12}  {note}", flush=True)

    def verdict(ok: bool, target: str) -> str:
        return f"PASS ({target})" if ok else f"FAIL ({target})"

    rate = lines / result["seconds"]
    per_line = result["items_read"] / max(lines, 1)
    checks = {"lines_per_second": rate >= TARGET_LINES_PER_SECOND, "peak_mb": result["peak_mb"] < TARGET_PEAK_MB,
              "items_per_line": per_line <= TARGET_ITEMS_PER_LINE, "all_matched": result["matched"] == lines}
    line("lines read / matched / discrepancies", f"{lines}/{result['matched']}/{result['discrepancies']}",
         verdict(checks["all_matched"], "every line matched"))
    line("lines per second (end to end)", f"{rate:,.0f}",
         verdict(checks["lines_per_second"], f">= {TARGET_LINES_PER_SECOND:,}") +
         f"  {result['seconds']:.1f} s, of which the bill's download {result['download_seconds']:.1f} s")
    line("  after the download", f"{lines / max(result['seconds'] - result['download_seconds'], 1e-9):,.0f}",
         "lines/s once the verified bill is on disk")
    line("  CPU of the run's own process", f"{result['cpu_seconds']:.1f} s",
         f"{lines / max(result['cpu_seconds'], 1e-9):,.0f} lines per CPU-second of the reconciler itself")
    line("peak memory of the run's process (MB)", f"{result['peak_mb']:.0f}",
         verdict(checks["peak_mb"], f"< {TARGET_PEAK_MB}") +
         f"  VmHWM; {result['rss_before_mb']:.0f} MB of it before the run (imports, the SDK)")
    line("DynamoDB items read per line", f"{per_line:.3f}",
         verdict(checks["items_per_line"], f"<= {TARGET_ITEMS_PER_LINE}") +
         f" ({result['items_read']:,} items, {result['calls']} calls: {result['breakdown']})")
    return {**result, "lines_per_second": rate, "items_per_line": per_line, "pass": checks}


def child(bill_date: str) -> None:
    import logging
    import resource

    from chalicelib.adapters.wechat.gateway import get_gateway
    from chalicelib.services import reconciliation as recon

    logging.disable(logging.WARNING)
    sys.stdout = open(os.devnull, "w")  # the service's JSON logs and metrics
    counter = _ClientCalls().attach()
    profile_to = os.environ.get("BENCH_RECON_PROFILE")  # a file for cProfile's stats (pstats)
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    gateway = _TimedGateway(get_gateway())
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    rss_before = _memory_mb("VmRSS")  # imports, the gateway (SDK) and nothing else yet
    t = time.perf_counter()
    report = recon.start(bill_date, actor="bench", deadline=recon.Deadline(3600), gateway=gateway)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)
    sys.stdout = sys.__stdout__
    print(json.dumps({"status": report["status"], "lines_read": report["lines_read"], "matched": report["matched"],
                      "discrepancies": report["discrepancies"], "seconds": seconds,
                      "download_seconds": gateway.download_seconds,
                      "cpu_seconds": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
                      "peak_mb": _memory_mb(), "rss_before_mb": rss_before,
                      "items_read": counter.items_read, "calls": counter.dynamodb(),
                      "breakdown": counter.breakdown()}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        print(__doc__)
