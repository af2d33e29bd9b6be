"""Reconciliation at scale: a 200 000-line trade bill (100 000 payments, 100 000 refunds) on the
local stack. Orders and refunds are written directly with batch writes and the same payments and
refunds are put into the simulator's ledger (no 100 000 refunds through the API). The run itself
happens in a fresh child process, as a Lambda would run it, so its peak memory (ru_maxrss) is the
reconciliation's own and not the embedded stack's.

Targets: >= 2 000 lines/s, peak memory < 256 MB, DynamoDB items read per line <= 1.

    python -m bench reconcile                    # through the bench runner
    python -m bench.reconcile --child DATE       # (internal) the measured run
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
    from chalicelib.adapters.models import Order, Payment, Refund
    from wechatpay_sim.state import Refund as SimRefund
    from wechatpay_sim.state import Transaction

    models.bind()
    noon = datetime.fromisoformat(f"{bill_date}T12:00:00+08:00")
    at = noon.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    success = f"{bill_date}T13:00:00+08:00"
    order = Order("BO0", user_id="u1001", status=2, source_type=1, total_amount=1000, actual_amount=1000,
                  payment=Payment(out_trade_no="BO0", transaction_id="4200", paid_at=at), created_at=at,
                  refundable_amount=900, refunded_amount=100).serialize()
    refund = Refund("BR0", order_no="BO0", user_id="u1001", origin="admin", amount=100, requested_amount=100,
                    status="success", created_by="bench", order_total=1000, success_time=success,
                    success_day=bill_date, success_actor="wechat", created_at=at, updated_at=at).serialize()
    payment = order["payment"]["M"]

    def orders():
        for i in range(pairs):
            no = f"BO{i:010d}"
            yield {**order, "order_no": {"S": no}, "payment": {"M": {
                **payment, "out_trade_no": {"S": no}, "transaction_id": {"S": f"4200{i:024d}"}}}}

    def refunds():
        for i in range(pairs):
            yield {**refund, "refund_no": {"S": f"BR{i:010d}"}, "order_no": {"S": f"BO{i:010d}"}}

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
    bill_date = (datetime.now(CST) - timedelta(days=1)).strftime("%Y-%m-%d")
    t = time.perf_counter()
    seed(w, pairs, bill_date)
    print(f"  seeded {2 * pairs:,} records here and at the simulator in {time.perf_counter() - t:.1f} s", flush=True)
    env = {**os.environ, **w.stack.env, "RECON_API_BUDGET_SECONDS": "3600"}
    out = subprocess.run([sys.executable, "-m", "bench.reconcile", "--child", bill_date], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-3000:])
        raise RuntimeError("the reconciliation child failed")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    lines = result["lines_read"]

    def line(name, value, note=""):
        print(f"  {name:<46} {value!s:>12}  {note}", flush=True)

    rate = lines / result["seconds"]
    line("lines read / matched / discrepancies", f"{lines}/{result['matched']}/{result['discrepancies']}")
    line("lines per second", f"{rate:,.0f}", "ok" if rate >= 2000 else "UNDER target 2000")
    line("peak memory of the run's process (MB)", f"{result['peak_mb']:.0f}",
         "ok" if result["peak_mb"] < 256 else "OVER target 256")
    per_line = result["items_read"] / max(lines, 1)
    line("DynamoDB items read per line", f"{per_line:.3f}",
         ("ok" if per_line <= 1 else "OVER target 1") + f" ({result['items_read']:,} items, {result['calls']} calls: "
         f"{result['breakdown']})")
    return {**result, "lines_per_second": rate, "items_per_line": per_line}


def child(bill_date: str) -> None:
    import logging
    import resource

    from bench.counting import CallCounter
    from chalicelib.services import reconciliation as recon

    logging.disable(logging.WARNING)
    sys.stdout = open(os.devnull, "w")  # the service's JSON logs and metrics
    counter = CallCounter().attach()
    counter.reset()
    profile_to = os.environ.get("BENCH_RECON_PROFILE")  # a file for cProfile's stats (pstats)
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t = time.perf_counter()
    report = recon.start(bill_date, actor="bench", deadline=recon.Deadline(3600))
    seconds = time.perf_counter() - t
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_to)
    sys.stdout = sys.__stdout__
    print(json.dumps({"status": report["status"], "lines_read": report["lines_read"], "matched": report["matched"],
                      "discrepancies": report["discrepancies"], "seconds": seconds,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "items_read": counter.items_read, "calls": counter.dynamodb(),
                      "breakdown": counter.breakdown()}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        print(__doc__)
