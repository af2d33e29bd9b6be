"""The local stack as ``make run`` starts it (its own process), used hard, then stopped.

Measures what a long demo or a load test leaves behind: the stack process's peak and final
resident memory after N refunds (each created, settled by the simulator's notification and
restored by the driver, with order reads in between), and how long SIGTERM takes to stop it.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _status_kb(pid: int, field: str) -> int:
    """A memory figure (kB) from /proc/<pid>/status: VmRSS now, VmHWM its peak so far."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class StackProcess:
    """``python -m devstack run`` on free ports in a throwaway work directory."""

    def __init__(self, outcome_delay: float = 0.2, poll_interval: float = 2.0):
        from devstack.stack import free_port

        self.tmp = tempfile.TemporaryDirectory(prefix="bench-session-")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WECHAT_", "TABLE_", "RESTORE_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run", "--port", str(self.port), "--workdir", self.tmp.name,
             "--aws-port", str(free_port()), "--sim-port", str(free_port()),
             "--outcome-delay", str(outcome_delay), "--poll-interval", str(poll_interval)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.base = f"http://127.0.0.1:{self.port}"
        self.banner: dict[str, str] = {}  # what it prints once started: "Admin token" -> the token, ...
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "Ctrl-C" not in self.banner:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError("the stack exited while starting")
            for label in ("Admin token", "WeChat sim", "Ctrl-C"):
                if line.strip().startswith(label):
                    self.banner[label] = line.split()[-1] if label == "Admin token" else line.split()[2]
        self.token = self.banner.get("Admin token")
        if not self.token:
            raise RuntimeError("the stack printed no admin token")
        # what the stack prints after start-up is not read again: drain it so it never blocks
        import threading

        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def sim_url(self) -> str:
        return self.banner["WeChat sim"]

    def rss_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmHWM") / 1024

    def stop(self, timeout: float = 120.0) -> float:
        """SIGTERM, then the seconds until the process has exited (killed after ``timeout``)."""
        t = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return float("inf")
        finally:
            self.tmp.cleanup()
        return time.perf_counter() - t


def drive(sp: StackProcess, refunds: int, clients: int = 8) -> dict:
    """``refunds`` refunds of 1 fen spread over the paid orders, ``clients`` at a time, each
    followed by a read of its order and a page of the order list. (Settlement, notifications
    and restorations go on in the background, as in a demo.)"""
    import requests

    h = {"Authorization": f"Bearer {sp.token}"}
    orders = [o["order_no"] for o in requests.get(f"{sp.base}/api/admin/orders?status=2&limit=100", headers=h,
                                           timeout=30).json()["items"]]
    created, errors = [], 0

    def one(i: int):
        session = sessions[i % clients]
        order_no = orders[i % len(orders)]
        r = session.post(f"{sp.base}/api/admin/pay/refunds", json={"order_no": order_no, "amount": 1},
                         headers=h, timeout=60)
        session.get(f"{sp.base}/api/admin/orders/{order_no}", headers=h, timeout=60)
        session.get(f"{sp.base}/api/admin/orders?limit=20", headers=h, timeout=60)
        return r.json().get("refund_no") if r.status_code == 201 else None

    sessions = [requests.Session() for _ in range(clients)]
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as pool:
        for no in pool.map(one, range(refunds)):
            if no:
                created.append(no)
            else:
                errors += 1
    wall = time.perf_counter() - t
    return {"created": len(created), "refused": errors, "seconds": wall}


def burst(base_url: str, path: str, clients: int = 100) -> dict:
    """``clients`` connections opened at the same moment, one GET each: how many got an HTTP
    answer, how many were reset, how many failed otherwise (devstack/burst.py)."""
    from devstack.burst import answered, burst as run

    outcomes = run(base_url, path, clients)
    got = answered(outcomes)
    reset = outcomes.get("reset", 0)
    empty = outcomes.get("empty", 0)
    return {"answered": got, "reset": reset, "empty": empty, "failed": clients - got - reset - empty}