"""Test helpers: an HTTP client for the running API and a per-test world."""
from __future__ import annotations

import os
import time


from chalicelib.adapters import auth, models
from chalicelib.adapters import repository as repo
from devstack import invariants
from devstack.client import Api


class World:
    def __init__(self, stack):
        self.stack = stack
        self.sim = stack.sim
        self.api = Api(stack.api_url)
        self._saved_env: dict = {}

    def setup(self) -> None:
        self.stack.sim.timers.cancel_all()  # the last test's pending deliveries are not this test's
        # a request the last test left in flight (a late notification) finishes before the reset,
        # so nothing it writes or queues lands in this test's world
        assert self.stack.wait_api_idle(30), "the local API stayed busy"
        self.stack.reset()
        self.admin = auth.issue("admin", "ops-1")
        self.admin2 = auth.issue("admin", "ops-2")

    def teardown(self) -> None:
        for k, v in self._saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def _set_env(self, **values) -> None:
        for k, v in values.items():
            self._saved_env.setdefault(k, os.environ.get(k))
            os.environ[k] = v

    def staff(self, role: str, operator: str) -> str:
        """A staff token of ``role`` (support, finance, admin) for ``operator``."""
        return auth.issue(role, operator)

    def user(self, user_id: str) -> str:
        return auth.issue("user", user_id)

    # ----------------------------------------------------------- data access
    def order(self, n: int):
        """The seeded order number ``n`` (see devstack/seed.py): one GetItem, never a Scan."""
        from devstack.seed import order_no

        order = repo.get_order(order_no(n))
        if order is None:
            raise KeyError(n)
        return order

    def coupon_paid(self, n: int, payer_total: int):
        """Seeded order ``n`` as paid at WeChat partly with a coupon (a merchant-funded 免充值 coupon:
        the payer paid ``payer_total`` of its total): a new transaction of the same total in the
        simulator, which the order's payment now names. Returns the order."""
        from chalicelib.adapters.models import Order

        order = self.order(n)
        txn = self.sim.register_transaction(order.actual_amount, f"CPN{order.order_no}", payer_total=payer_total)
        repo.update(Order(order.order_no), [Order.payment.out_trade_no.set(txn["out_trade_no"]),
                                            Order.payment.transaction_id.set(txn["transaction_id"])])
        return self.fresh(order.order_no)

    def fresh(self, order_no: str):
        return repo.get_order(order_no)

    def refund(self, refund_no: str):
        return repo.get_refund(refund_no)

    def queue_messages(self) -> list[dict]:
        sqs = self.stack.sqs()
        out = []
        while True:
            resp = sqs.receive_message(QueueUrl=self.stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            msgs = resp.get("Messages", [])
            if not msgs:
                return out
            out.extend(msgs)

    def drain_restorations(self) -> int:
        """Run the SQS handler on every queued message, as Lambda would. Returns how many."""
        from devstack.driver import Driver

        driver = Driver(self.stack.handlers(), self.stack.sqs(), self.stack.queue_url, self.stack.queue_arn,
                        "ap-east-1", 3600)
        n = 0
        for message in self.queue_messages():
            driver.deliver(message)
            n += 1
        return n

    def poll(self):
        from chalicelib.services import poller

        return poller.poll()

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError("condition not met in time")

    def wait_deliveries(self, refund_nos, at_least: int = 1) -> list[dict]:
        """The simulator's delivery records for ``refund_nos``, once each has one and there are
        ``at_least`` in all. The simulator logs a delivery when our answer is back, which may be
        after the refund is settled, so its log is waited for, not read at once."""
        wanted = set(refund_nos)

        def found():
            records = [n for n in self.sim.notifications() if n["out_refund_no"] in wanted]
            return records if len(records) >= at_least and {n["out_refund_no"] for n in records} == wanted else None

        return self.wait_for(found)

    def refund_without_notification(self, n: int, amount: int):
        """An admin refund of seeded order ``n`` that WeChat has settled but whose notification
        the simulator dropped (the refund is still processing here): ``(order, refund_no)``."""
        self.sim.configure(drop_notifications=True)
        order = self.order(n)
        r = self.api.post("/api/admin/pay/refunds", self.admin, {"order_no": order.order_no, "amount": amount})
        assert r.status_code == 201, r.text
        refund_no = r.json()["refund_no"]
        self.wait_for(lambda: self.sim.refund(refund_no)["status"] == "SUCCESS")
        return order, refund_no

    def wait_status(self, refund_no: str, status: str, timeout: float = 10.0):
        """Wait until the refund is in ``status`` and the request that put it there has finished.

        A notification handler writes the new status first and then publishes the restoration
        message, so seeing the status is not enough: when WeChat's notification made the change,
        also wait until the local API has finished every request it was handling."""
        try:
            refund = self.wait_for(lambda: (r := self.refund(refund_no)) is not None and r.status == status and r,
                                   timeout)
        except AssertionError:
            r = self.refund(refund_no)
            raise AssertionError(f"{refund_no} is {r.status if r else None}, expected {status}; "
                                 f"events: {[(e.actor, e.to_status, e.detail) for e in (r.events if r else [])]}")
        if refund.events and refund.events[-1].actor == "wechat":
            assert self.stack.wait_api_idle(timeout), "the API is still handling requests"
        return refund

    def check_invariants(self, order_no: str) -> None:
        """Money invariants that must hold after anything (devstack/invariants.py)."""
        invariants.check(order_no)


class DynamoMeter:
    """Counts DynamoDB calls and items read by the service's pynamodb clients, with botocore
    event hooks (``after-call.dynamodb``) on every connection the service uses."""

    def __init__(self):
        self.calls: dict[str, int] = {}
        self.items_read = 0
        self._clients = []

    def _clients_in_use(self):
        from chalicelib.adapters.models import ALL_MODELS

        models.bind()
        clients = {id(repo.connection().client): repo.connection().client}
        for model in ALL_MODELS:
            client = model._get_connection().connection.client
            clients[id(client)] = client
        return list(clients.values())

    def _on_call(self, http_response=None, parsed=None, model=None, **_):
        op = model.name if model is not None else "?"
        self.calls[op] = self.calls.get(op, 0) + 1
        parsed = parsed or {}
        if op in ("Query", "Scan"):
            self.items_read += parsed.get("Count", 0)
        elif op == "GetItem":
            self.items_read += 1 if parsed.get("Item") else 0
        elif op == "BatchGetItem":
            self.items_read += sum(len(v) for v in parsed.get("Responses", {}).values())
        elif op == "TransactGetItems":
            self.items_read += sum(1 for r in parsed.get("Responses", []) if r.get("Item"))

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def __enter__(self):
        self._clients = self._clients_in_use()
        for client in self._clients:
            client.meta.events.register("after-call.dynamodb", self._on_call)
        return self

    def __exit__(self, *exc):
        for client in self._clients:
            client.meta.events.unregister("after-call.dynamodb", self._on_call)
