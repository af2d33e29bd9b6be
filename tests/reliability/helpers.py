"""Shared steps and checks for the reliability suite (all over the local stack's HTTP API)."""
from __future__ import annotations

import threading
import time

from chalicelib.adapters import models
from chalicelib.adapters import repository as repo
from chalicelib.domain.money import pro_rata_cumulative

SEED_POINTS = 20000  # every seeded user starts with this balance (devstack/seed.py)


def create(env, order_no, amount, reason="测试退款", key=None, token=None):
    headers = {"Idempotency-Key": key} if key else None
    return env.api.post("/api/admin/pay/refunds", token or env.admin,
                        {"order_no": order_no, "amount": amount, "reason": reason}, headers=headers)


def apply(env, user, order_no, amount, reason="不想要了", key=None):
    headers = {"Idempotency-Key": key} if key else None
    return env.api.post(f"/api/app/orders/{order_no}/refund/apply", env.user(user),
                        {"amount": amount, "reason": reason}, headers=headers)


def approve(env, refund_no, token=None, amount=None):
    """Approve as ``token``; by default as ops-2, so a refund ops-1 created passes four-eyes."""
    body = {"amount": amount} if amount is not None else {}
    return env.api.post(f"/api/admin/pay/refunds/{refund_no}/approve", token or env.admin2, body)


def created_no(resp) -> str:
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["refund_no"]


def at_once(*fns, timeout: float = 60):
    """Run ``fns`` on their own threads, released together by a barrier. Returns their results
    in order; re-raises the first exception."""
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)
    errors: list = [None] * len(fns)

    def run(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    for exc in errors:
        if exc is not None:
            raise exc
    return results


def ledger(user_id: str) -> dict[str, int]:
    models.bind()
    return {e.entry_id: e.points for e in models.PointsEntry.query(user_id)}


def restore_entries(user_id: str) -> dict[str, int]:
    return {k: v for k, v in ledger(user_id).items() if k.startswith("refund_restore#")}


def events_to(refund, status: str) -> list:
    return [e for e in refund.events or [] if e.to_status == status and e.from_status != status]


def open_tasks(refund_no: str | None = None, order_no: str | None = None) -> list:
    models.bind()
    return [t for t in models.ManualTask.scan()
            if (refund_no is None or t.refund_no == refund_no) and (order_no is None or t.order_no == order_no)]


def check_restorations(env, order_no: str) -> None:
    """Every successful refund of the order restored exactly once, and the points ledger adds
    up exactly: per refund, per order (pro rata of what succeeded) and on the user's balance."""
    order = env.fresh(order_no)
    refunds = repo.refunds_of_order(order_no)
    entries = restore_entries(order.user_id)
    mine = {k: v for k, v in entries.items() if k.split("#", 1)[1] in {r.refund_no for r in refunds}}
    for r in refunds:
        key = f"refund_restore#{r.refund_no}"
        if r.status == "success":
            assert r.restoration_status == "done", (r.refund_no, r.restoration_status)
            assert r.work is None and r.work_due_at is None, (r.refund_no, r.work)
            assert len(events_to(r, "success")) == 1, [(e.actor, e.to_status) for e in r.events]
            points = (r.restoration or {}).get("points", 0)
            assert mine.get(key, 0) == points, (r.refund_no, mine.get(key), points)
        else:
            assert key not in mine, (r.refund_no, r.status)
    assert sum(mine.values()) == pro_rata_cumulative(order.points_used or 0, order.refunded_amount,
                                                     order.actual_amount)
    user = repo.get_user(order.user_id)
    assert user.points_balance == SEED_POINTS + sum(entries.values()), (user.points_balance, entries)


def settle_all(env, refund_nos, status="success", timeout=120.0, quiet_seconds=2.0):
    """Wait until every refund reached ``status``. Under heavy load the simulator may give up on
    a notification (its retry schedule is short in tests); the poller is the designed backstop,
    so once notifications stop making progress the stragglers are polled, as the schedule would."""
    deadline = time.monotonic() + timeout
    pending = list(refund_nos)
    last_progress = time.monotonic()
    while pending and time.monotonic() < deadline:
        still = [no for no in pending if env.refund(no).status != status]
        if len(still) < len(pending):
            last_progress = time.monotonic()
        pending = still
        if pending and time.monotonic() - last_progress > quiet_seconds:
            env.poll()
            last_progress = time.monotonic()
        time.sleep(0.1)
    for no in refund_nos:  # the stragglers raise with their history; all wait for their handlers
        env.wait_status(no, status, timeout=10.0)


def wait_sim(env, refund_no: str, status: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = env.sim.refund(refund_no)
        if r and r.get("status") == status:
            return r
        time.sleep(0.05)
    raise AssertionError(f"simulator refund {refund_no} is {env.sim.refund(refund_no)}, expected {status}")
