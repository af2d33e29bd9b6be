"""The embedded stack for benchmarks: start it once, reset it between benchmarks."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from devstack.client import Api


class BenchWorld:
    def __init__(self, outcome_delay: float = 0.3):
        from devstack.stack import Stack, StackConfig

        self.tmp = tempfile.TemporaryDirectory(prefix="bench-")
        cfg = StackConfig(workdir=Path(self.tmp.name), api_port=0, aws_port=0, sim_port=0, seed=False,
                          driver=False, outcome_delay=outcome_delay, poll_after_seconds=0,
                          restore_sweep_seconds=0, notify_retry_schedule=(0.2, 0.4), visibility_timeout=1,
                          refund_interval_seconds=0)  # benchmarks refund one order many times
        cfg.access_log = False
        self.stack = Stack(cfg).start()
        self.sim = self.stack.sim
        self.api = Api(self.stack.api_url, timeout=60)
        self.nodelay = False
        self.reset()

    def set_nodelay(self, on: bool = True) -> None:
        """TCP_NODELAY on the local API's listening socket (accepted sockets inherit it on Linux).

        The local server writes a response's headers and body separately; with Nagle's algorithm
        and the client's delayed ACK, each local request then waits ~40 ms for nothing. API Gateway
        has no such stall, so overhead and throughput are also measured without it."""
        import socket

        self.stack.server.server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if on else 0)
        self.api.session.close()
        self.api = Api(self.stack.api_url, timeout=60)
        self.nodelay = on

    def close(self) -> None:
        self.stack.stop()
        self.tmp.cleanup()

    def reset(self) -> None:
        from chalicelib.adapters import auth

        self.stack.reset()
        self.admin = auth.issue("admin", "bench")

    # ------------------------------------------------------------ HTTP
    def call(self, method: str, path: str, token: str | None = None, body=None, headers=None):
        return self.api.call(method, path, token, body=body, headers=headers)

    def user(self, user_id: str) -> str:
        from chalicelib.adapters import auth

        return auth.issue("user", user_id)

    # ------------------------------------------------------------ data
    def paid_orders(self) -> list:
        from chalicelib.adapters import models

        return sorted((o for o in models.Order.scan() if o.status == 2 and o.shipping is not None
                       and o.shipping.status == 1), key=lambda o: o.order_no)

    def order(self, n: int):
        from chalicelib.adapters import repository as repo
        from devstack.seed import order_no

        return repo.get_order(order_no(n))

    def refund(self, no: str):
        from chalicelib.adapters import repository as repo

        return repo.get_refund(no)

    def wait_status(self, no: str, status: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.refund(no)
            if r is not None and r.status == status:
                return r
            time.sleep(0.02)
        raise RuntimeError(f"{no} did not reach {status}: {self.refund(no).status}")

    def wait_sim(self, no: str, status: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.sim.refund(no)
            if r and r["status"] == status:
                return r
            time.sleep(0.02)
        raise RuntimeError(f"simulator refund {no} did not reach {status}")

    def queue_messages(self) -> list[dict]:
        sqs = self.stack.sqs()
        out = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.stack.queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                return out
            out.extend(msgs)
            for m in msgs:
                sqs.delete_message(QueueUrl=self.stack.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def check_invariants(self, order_no: str) -> None:
        from devstack import invariants

        invariants.check(order_no)
