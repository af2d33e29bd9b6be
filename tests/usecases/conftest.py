"""The use-case tier: services run in-process, without HTTP, against the local DynamoDB
endpoint and the WeChat Pay simulator (the real SDK code paths), with the edges of
``services/edges.py`` passed in: the gateway, a clock, and a publisher that records what
would have been queued. WeChat's notifications land in an inbox the test hands to the
notification use case, as the notify route would."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chalicelib.services import edges


class Inbox:
    """Where the simulator delivers notifications: kept, acknowledged with 204."""

    def __init__(self):
        self.received: list[tuple[str, dict, bytes]] = []
        self._cond = threading.Condition()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with inbox._cond:
                    inbox.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    inbox._cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="inbox", daemon=True).start()

    def clear(self) -> None:
        with self._cond:
            self.received.clear()

    def wait(self, predicate, timeout: float = 20.0):
        """The first delivery ``predicate(path, headers, body)`` accepts (waiting for it to come)."""
        with self._cond:
            found = self._cond.wait_for(lambda: next((r for r in self.received if predicate(*r)), None), timeout)
        assert found, "no such notification arrived"
        return found


@pytest.fixture(scope="session")
def tier(tmp_path_factory):
    from devstack.stack import Stack, StackConfig

    inbox = Inbox()
    cfg = StackConfig(workdir=Path(tmp_path_factory.mktemp("usecases")), api=False, seed=False, driver=False,
                      access_log=False, outcome_delay=0.2, poll_after_seconds=0, restore_sweep_seconds=0,
                      notify_retry_schedule=(0.2,), refund_interval_seconds=0,
                      # queues as the HTTP tier's stack makes them: one process shares the local endpoint's state
                      visibility_timeout=1, max_receive_count=3,
                      extra_env={"WECHAT_REFUND_NOTIFY_URL": f"{inbox.url}/refund",
                                 "WECHAT_PAYMENT_NOTIFY_URL": f"{inbox.url}/payment",
                                 "WECHAT_COMPLAINT_NOTIFY_URL": f"{inbox.url}/complaint"})
    stack = Stack(cfg).start()
    stack.inbox = inbox
    yield stack
    stack.stop()
    inbox.server.shutdown()


@pytest.fixture
def case(tier):
    """A clean world (tables, queues, demo shop, simulator) and the edges to run use cases on."""
    tier.reset()
    tier.inbox.clear()
    published = edges.RecordingPublisher()
    with edges.use(edges.Edges(publisher=lambda: published)):
        yield Case(tier, published)


class Case:
    def __init__(self, stack, published):
        self.stack, self.sim, self.inbox, self.published = stack, stack.sim, stack.inbox, published

    def order(self, n: int):
        from chalicelib.adapters import repository as repo
        from devstack.seed import order_no

        return repo.get_order(order_no(n))

    def notification_for(self, refund_no: str, status: str = "SUCCESS"):
        """WeChat's notification about ``refund_no`` as the gateway verifies it (one per outcome)."""
        gateway = edges.gateway()

        def about(path, headers, body):
            if path != "/refund":
                return False
            event = gateway.parse_notification(headers, body)
            return event.refund.out_refund_no == refund_no and event.refund.status == status

        path, headers, body = self.inbox.wait(about)
        return gateway.parse_notification(headers, body)

    def check_invariants(self, order_no: str) -> None:
        from devstack import invariants

        invariants.check(order_no)
