"""``python -m bench``: run the benchmarks on a fresh embedded stack and print the figures.

    python -m bench                 # everything
    python -m bench round_trips poll_cost   # some of them
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.report import line as _line, ms as _ms

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("STAGE", "local")


def _restore(w, message) -> dict:
    """Invoke the SQS restoration handler (the app module's Lambda handler) on one message."""
    from devstack.driver import LambdaContext, sqs_event

    handlers = w.stack.handlers() if hasattr(w.stack, "handlers") else w.stack.app().chalice_app
    return handlers.restore(sqs_event(message, w.stack.queue_arn, "ap-east-1"), LambdaContext("restore"))


# ---------------------------------------------------------------- DynamoDB round trips


def round_trips(w, counter) -> dict:
    """DynamoDB calls (and SQS sends) per operation, counted by botocore hooks."""
    from chalicelib.adapters import repository as repo
    from chalicelib.services import poller

    print("DynamoDB round trips per operation (targets: create/approve <= 3, notify <= 2 + 1 SQS send, "
          "detail <= 3 whatever the refund count, restoration <= 3, redelivered <= 1)")
    w.reset()
    w.sim.configure(outcome_delay=600)  # no outcome arrives while an operation is counted
    counter.attach()
    out = {}

    def measure(name, fn, target=None):
        counter.reset()
        result = fn()
        n, sends = counter.dynamodb(), counter.sqs_sends()
        out[name] = {"dynamodb": n, "sqs_sends": sends, "breakdown": counter.breakdown()}
        verdict = "" if target is None else ("ok" if n <= target else f"OVER target {target}")
        _line(name, n, f"{verdict:<16} [{counter.breakdown()}]" + (f" + {sends} SQS send" if sends else ""))
        return result

    plain = w.order(13)
    measure("order detail (0 refunds)", lambda: w.call("GET", f"/api/admin/orders/{plain.order_no}", w.admin), 3)
    r = measure("refund create (admin)", lambda: w.call("POST", "/api/admin/pay/refunds", w.admin,
                                                        {"order_no": plain.order_no, "amount": 100}), 3)
    assert r.status_code == 201, r.text
    applied = w.order(14)
    a = w.call("POST", f"/api/app/orders/{applied.order_no}/refund/apply", w.user(applied.user_id),
               {"amount": 200, "reason": "bench"})
    assert a.status_code == 201, a.text
    r = measure("approve (player application)",
                lambda: w.call("POST", f"/api/admin/pay/refunds/{a.json()['refund_no']}/approve", w.admin, {}), 3)
    assert r.status_code == 200, r.text

    # a notification: WeChat settles it now, the delivery is dropped, then redelivered synchronously
    w.sim.configure(drop_notifications=True, outcome_delay=0.05)
    full = w.order(1)  # points, coupon, pending shipment: a rich restoration
    r = w.call("POST", "/api/admin/pay/refunds", w.admin, {"order_no": full.order_no, "amount": full.actual_amount})
    full_no = r.json()["refund_no"]
    w.wait_sim(full_no, "SUCCESS")
    url = w.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    status = measure("notify (REFUND.SUCCESS, settles)", lambda: w.sim.redeliver(full_no, url), 2)
    assert status == 204, status
    measure("notify (duplicate)", lambda: w.sim.redeliver(full_no, url))
    messages = w.queue_messages()
    assert len(messages) == 1, messages
    measure("restoration (points+coupon+shipment)",
            lambda: _restore(w, messages[0]), 3)
    measure("restoration (redelivered message)",
            lambda: _restore(w, messages[0]), 1)

    # the poller, per due refund: ten refunds whose notifications were dropped
    nos = []
    for o in w.paid_orders()[2:12]:
        nos.append(w.call("POST", "/api/admin/pay/refunds", w.admin, {"order_no": o.order_no, "amount": 100})
                   .json()["refund_no"])
    for no in nos:
        w.wait_sim(no, "SUCCESS")
    counter.reset()
    report = poller.poll()
    n = counter.dynamodb()
    polled = report.due
    out["poll per refund"] = {"dynamodb": n / max(polled, 1), "due": polled, "sqs_sends": counter.sqs_sends()}
    _line("poll, per due refund (settling it)", f"{n / max(polled, 1):.1f}",
          f"{n} calls for {polled} due ({report.changed} changed) [{counter.breakdown()}] "
          f"+ {counter.sqs_sends()} SQS sends")

    # the order detail with 50 refunds
    many = w.order(15)
    w.sim.configure(outcome_delay=600, drop_notifications=False)
    for _ in range(50):
        r = w.call("POST", "/api/admin/pay/refunds", w.admin, {"order_no": many.order_no, "amount": 10})
        assert r.status_code == 201, r.text
    assert len(repo.refunds_of_order(many.order_no)) == 50
    r = measure("order detail (50 refunds)", lambda: w.call("GET", f"/api/admin/orders/{many.order_no}", w.admin), 3)
    assert len(r.json()["refunds"]) == 50
    return out


# ---------------------------------------------------------------- overhead ratio


def overhead(w, counter) -> dict:
    """Refund create through the local HTTP API against the same calls made directly (bench/overhead.py)."""
    from bench.overhead import overhead as run

    return run(w, counter)


# ---------------------------------------------------------------- poll cost


def poll_cost(w, counter, settled: int = 10_000, pending: int = 10) -> dict:
    """Items the poller reads with ``pending`` refunds awaiting WeChat, with and without
    ``settled`` finished refunds in the table."""
    from chalicelib.adapters import models
    from chalicelib.adapters.models import Refund, RefundEvent
    from chalicelib.services import poller

    print(f"Poll cost: items read with {pending} pending refunds, without and with {settled:,} settled ones "
          "(target: proportional to pending only)")
    out = {}
    for history in (0, settled):
        w.reset()
        counter.attach()
        if history:
            t = time.perf_counter()
            models.bind()
            with Refund.batch_write() as batch:
                for i in range(history):
                    batch.save(Refund(f"RFHIST{i:08d}", order_no=f"GBHIST{i % 500:06d}", user_id="u1001",
                                      origin="admin", amount=100, requested_amount=100, status="success",
                                      created_by="bench", order_total=1000, restoration_status="done",
                                      created_at="2025-01-01T00:00:00.000000Z",
                                      updated_at="2025-01-01T00:00:00.000000Z",
                                      events=[RefundEvent(at="2025-01-01T00:00:00.000000Z", actor="bench",
                                                          to_status="success")]))
            _line(f"wrote {history:,} settled refunds (batch writes)", _ms(time.perf_counter() - t))
        w.sim.configure(drop_notifications=True, outcome_delay=0.05)
        nos = []
        for o in w.paid_orders()[:pending]:
            r = w.call("POST", "/api/admin/pay/refunds", w.admin, {"order_no": o.order_no, "amount": 100})
            nos.append(r.json()["refund_no"])
        for no in nos:
            w.wait_sim(no, "SUCCESS")
        counter.reset()
        t = time.perf_counter()
        report = poller.poll()
        elapsed = time.perf_counter() - t
        out[history] = {"items_read": counter.items_read, "calls": counter.dynamodb(), "due": report.due,
                        "seconds": elapsed}
        _line(f"poll with {history:,} settled: items read", counter.items_read,
              f"{counter.dynamodb()} DynamoDB calls, {report.due} due, {report.changed} settled, {_ms(elapsed)}")
        counter.reset()
        empty = poller.poll()
        _line("  next poll (nothing due): items read", counter.items_read, f"{counter.dynamodb()} calls, "
              f"{empty.due} due")
    same = out[0]["items_read"] == out[settled]["items_read"]
    _line("reads independent of history", "yes" if same else "NO")
    return out


# ---------------------------------------------------------------- cold import


def cold_import(runs: int = 9) -> dict:
    """Import time of app.py versus bare chalice + boto3 + pynamodb, each in a fresh interpreter."""
    print(f"Cold import: app.py versus bare chalice+boto3+pynamodb (median of {runs} fresh interpreters; "
          "target <= 1.25)")
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONDONTWRITEBYTECODE"] = "0"

    def timed(stmt: str) -> float:
        code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
        return float(out.stdout.strip().splitlines()[-1])

    bare_stmt = "import chalice, boto3, pynamodb.models"
    app_stmt = "import app"
    timed(bare_stmt), timed(app_stmt)  # bytecode caches warm
    bare, app = [], []
    for _ in range(runs):
        bare.append(timed(bare_stmt))
        app.append(timed(app_stmt))
    b, a = statistics.median(bare), statistics.median(app)
    _line("import chalice, boto3, pynamodb.models", _ms(b))
    _line("import app", _ms(a))
    _line("ratio", f"{a / b:.2f}", "ok" if a / b <= 1.25 else "OVER target 1.25")
    heavy = subprocess.run([sys.executable, "-c", "import sys, app; print(' '.join(sorted(m for m in "
                            "('boto3', 'botocore', 'pynamodb', 'jwt', 'wechatpayv3', 'cryptography', 'requests') "
                            "if m in sys.modules)))"], cwd=ROOT, env=env, capture_output=True, text=True)
    _line("heavy modules loaded by `import app`", heavy.stdout.strip() or "none")
    return {"bare_ms": b * 1000, "app_ms": a * 1000, "ratio": a / b}


# ---------------------------------------------------------------- throughput


def throughput(w, counter, clients=(1, 4, 8), per_client: int = 25) -> dict:
    """Refunds per second through the local API with N concurrent clients across many orders."""
    import requests

    from chalicelib.services import poller

    w.set_nodelay(True)
    print(f"Throughput: refunds created per second through the local API ({per_client} per client, "
          "spread over the paid orders; local server with TCP_NODELAY)")
    out = {}
    for n in clients:
        w.reset()
        w.sim.configure(outcome_delay=0.3)
        orders = w.paid_orders()
        jobs = [orders[i % len(orders)].order_no for i in range(n * per_client)]
        latencies: list[float] = []

        def client(k):
            s = requests.Session()
            mine = jobs[k::n]
            nos = []
            for order_no in mine:
                t = time.perf_counter()
                r = s.post(w.stack.api_url + "/api/admin/pay/refunds", json={"order_no": order_no, "amount": 50},
                           headers={"Authorization": f"Bearer {w.admin}"}, timeout=60)
                latencies.append(time.perf_counter() - t)
                if r.status_code == 201:
                    nos.append(r.json()["refund_no"])
            return nos

        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(n) as pool:
            created = [no for nos in pool.map(client, range(n)) for no in nos]
        wall = time.perf_counter() - t0
        # settle everything (poll the stragglers like the schedule would), restore, check the money
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = [no for no in created if w.refund(no).status != "success"]
            if not left:
                break
            time.sleep(1.0)
            poller.poll()
        for m in w.queue_messages():
            _restore(w, m)
        for o in orders:
            w.check_invariants(o.order_no)
        rate = len(created) / wall
        lat = sorted(latencies)
        out[n] = {"refunds": len(created), "seconds": wall, "per_second": rate,
                  "p50_ms": lat[len(lat) // 2] * 1000, "p95_ms": lat[int(len(lat) * 0.95) - 1] * 1000,
                  "unsettled": len(left)}
        _line(f"{n} client(s): refunds/s", f"{rate:.1f}",
              f"{len(created)} in {wall:.1f} s; latency p50 {_ms(lat[len(lat) // 2])}, "
              f"p95 {_ms(lat[int(len(lat) * 0.95) - 1])}; invariants hold on {len(orders)} orders"
              + (f"; {len(left)} NOT settled" if left else ""))
    return out


def reconcile(w, counter) -> dict:
    """对账 of a 200 000-line bill (bench/reconcile.py)."""
    from bench.reconcile import reconcile as run

    pairs = int(os.environ.get("BENCH_RECON_PAIRS", "100000"))
    return run(w, counter, pairs)


def complaints(w, counter) -> dict:
    """投诉: the complaint sweep's calls per complaint, and a sweep with nothing new (bench/complaints.py)."""
    from bench.complaints import complaints as run

    return run(w, counter)


def capacity(w, counter) -> dict:
    """Capacity and cost model from what the service writes (bench/capacity.py, docs/capacity.md)."""
    from bench.capacity import capacity as run

    return run(w, counter)



# ---------------------------------------------------------------- the stack process under load


def long_session(rounds=(300, 300, 300)) -> dict:
    """`make run` as a process: resident memory after each round of refunds (bounded: it must
    not grow with the round), then the time SIGTERM takes to stop it (target <= 5 s)."""
    from bench.session import StackProcess, drive

    print(f"Long session: `python -m devstack run` after {' + '.join(map(str, rounds))} refunds "
          "(8 clients, each refund followed by an order read and a list page); targets: RSS bounded, stop <= 5 s")
    sp = StackProcess()
    out = {"start_rss_mb": sp.rss_mb(), "rounds": []}
    _line("resident memory after start", f"{out['start_rss_mb']:.0f} MB")
    done = 0
    for n in rounds:
        r = drive(sp, n)
        done += n
        r.update(rss_mb=sp.rss_mb(), peak_rss_mb=sp.peak_rss_mb())
        out["rounds"].append(r)
        _line(f"after {done} refunds: RSS / peak", f"{r['rss_mb']:.0f} MB",
              f"peak {r['peak_rss_mb']:.0f} MB; {r['created']} created, {r['refused']} refused "
              f"(refund limit per order), {r['created'] / r['seconds']:.1f}/s")
    out["stop_seconds"] = sp.stop()
    _line("SIGTERM to exit", f"{out['stop_seconds']:.2f} s", "ok" if out["stop_seconds"] <= 5 else "OVER target 5 s")
    return out


def burst(clients: int = 100) -> dict:
    """``clients`` connections at the same moment on the API and on the simulator of a `make run`
    process: every one must be answered (no 'Connection reset by peer')."""
    from bench.session import StackProcess, burst as run_burst

    print(f"Burst: {clients} concurrent clients, one connection each (target: all answered, 0 resets)")
    sp = StackProcess()
    try:
        sim_url = sp.sim_url()
        out = {"api": run_burst(sp.base, "/api/health", clients),
               "simulator": run_burst(sim_url, "/v3/refund/domestic/refunds/RF-BURST", clients)}
    finally:
        sp.stop()
    for name, r in out.items():
        _line(f"{name}: answered / reset / other failures", f"{r['answered']}/{r['reset']}/{r['failed'] + r['empty']}",
              "ok" if r["answered"] == clients else "NOT all answered")
    return out


# ---------------------------------------------------------------- a hot order


def hot_order(w, counter, refunds: int = 50, amount: int = 100) -> dict:
    """WeChat's notifications of 50 refunds of one order, all at once (a sale's cancellations of a
    big order): each must be answered within WeChat's 5 s. Every one is acknowledged; those whose
    order kept settling other refunds first are settled by the next poll. Target: p99 < 5 s."""
    from chalicelib.services import poller

    w.set_nodelay(True)
    w.reset()
    w.sim.configure(drop_notifications=True, outcome_delay=0.05)
    order = w.order(11)  # 648 元: room for WeChat's 50 refunds of one order
    nos = []
    for _ in range(refunds):
        r = w.call("POST", "/api/admin/pay/refunds", w.admin, {"order_no": order.order_no, "amount": amount})
        assert r.status_code == 201, r.text
        nos.append(r.json()["refund_no"])
    for no in nos:
        w.wait_sim(no, "SUCCESS")
    url = w.stack.env["WECHAT_REFUND_NOTIFY_URL"]
    start = threading.Barrier(refunds)

    def deliver(no):
        start.wait()
        t = time.perf_counter()
        status = w.sim.redeliver(no, url)
        return time.perf_counter() - t, status

    with cf.ThreadPoolExecutor(refunds) as pool:
        answers = list(pool.map(deliver, nos))
    lat = sorted(t for t, _ in answers)
    acked = sum(1 for _, status in answers if status in (200, 204))
    settled_at_once = sum(1 for no in nos if w.refund(no).status == "success")
    poller.poll()  # what the schedule does next: the refunds left to it
    settled = sum(1 for no in nos if w.refund(no).status == "success")
    for m in w.queue_messages():
        _restore(w, m)
    w.check_invariants(order.order_no)
    p99 = lat[max(0, -(-len(lat) * 99 // 100) - 1)]
    out = {"refunds": refunds, "acknowledged": acked, "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": p99 * 1000,
           "max_ms": lat[-1] * 1000, "settled_by_notification": settled_at_once, "settled_after_poll": settled}
    print(f"A hot order: WeChat's notifications of {refunds} refunds of one order at once; target p99 < 5 s")
    _line("notifications acknowledged", f"{acked}/{refunds}")
    _line("answer time p50 / p99 / max", f"{_ms(out['p50_ms'] / 1000)} / {_ms(p99)} / {_ms(lat[-1])}")
    _line("settled by their notification / after the next poll", f"{settled_at_once} / {settled}",
          "invariants hold on the order")
    return out


BENCHMARKS = ("round_trips", "overhead", "poll_cost", "cold_import", "throughput", "capacity", "reconcile", "burst",
              "long_session", "hot_order", "complaints")


def main(argv: list[str]) -> int:
    import logging

    wanted = argv or list(BENCHMARKS)
    unknown = set(wanted) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")
        return 2
    logging.disable(logging.WARNING)  # the service's warnings are expected here (dropped notifications)
    results = {}
    standalone = ("cold_import", "burst", "long_session")  # each starts what it needs itself
    for name in standalone:
        if name in wanted:
            results[name] = globals()[name]()
            print()
    rest = [b for b in wanted if b not in standalone]
    if rest:
        from bench.counting import CallCounter
        from bench.world import BenchWorld

        started = time.perf_counter()
        w = BenchWorld()
        counter = CallCounter()
        try:
            for name in rest:
                results[name] = globals()[name](w, counter)
                print()
        finally:
            w.close()
        print(f"(stack benchmarks took {time.perf_counter() - started:.0f} s)")
    failed = [name for name, r in results.items() if isinstance(r, dict) and r.get("failed")]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
