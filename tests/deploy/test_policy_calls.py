"""Each function's committed IAM policy is exactly what its code uses.

Every function runs here as Lambda runs it, against the local AWS endpoint and the WeChat Pay
simulator: the API (``api_handler``) over every route group through HTTP, ``restore`` with SQS
events, ``poll``, ``reconcile`` and ``complaints_sweep`` with schedule events, ``reconcile_continue``
with the continuation messages the others leave. Every AWS call made while a function runs, from any
thread (the API's request threads, the reconciliation's readers), and every secret it reads, is
turned into the IAM action and resource it needs in the prod stack. Two checks per function:

- every call is allowed by ``.chalice/policy-prod-<function>.json`` (a policy trimmed below what
  the code does fails here before it fails in AWS with AccessDenied);
- every grant of that policy was used by some call (a grant nobody uses is privilege a
  compromised function would have for free), except what Lambda itself does with the role
  (logs, the event source mapping, the failure destination, SecureString decryption).
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import botocore.client
import pytest
import requests

from chalicelib import config
from deploy.build_resources import SECRETS
from devstack.driver import RECON_TIMEOUT_SECONDS, LambdaContext, schedule_event, sqs_event

ROOT = Path(__file__).resolve().parents[2]
STAGE = "prod"
ARN = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
FUNCTIONS = ("api_handler", "restore", "poll", "reconcile", "reconcile_continue", "complaints_sweep")
# The statements (deploy/build_resources.py policy_document) of what Lambda does with a
# function's role, never its code: write its logs, read its queue (the event source mapping),
# send a failed asynchronous run to its failure queue, decrypt the SecureString parameters the
# function reads (allowed only through SSM, for exactly those parameters), send its traces.
LAMBDA_ITSELF = {"Logs", "QueueConsume", "FailureQueueSend", "SecretsDecrypt", "Tracing"}


def _prod(name: str) -> str:
    """A local resource name as the prod stack names it (local-orders -> prod-orders)."""
    prefix = "local-"
    assert name.startswith(prefix), name
    return f"{STAGE}-{name[len(prefix):]}"


def _needs(service: str, operation: str, params: dict) -> list[tuple[str, str]]:
    """(IAM action, resource ARN as the policy files write it) for one API call."""
    table = lambda name: ARN % ("dynamodb", f"table/{_prod(name)}")  # noqa: E731
    if service == "dynamodb":
        if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            return [(f"dynamodb:{operation}", table(params["TableName"]))]
        if operation == "Query":
            return [("dynamodb:Query", table(params["TableName"]) + f"/index/{params['IndexName']}"
                     if params.get("IndexName") else table(params["TableName"]))]
        if operation == "BatchGetItem":
            return [("dynamodb:BatchGetItem", table(t)) for t in params["RequestItems"]]
        if operation == "TransactWriteItems":
            kinds = {"Put": "PutItem", "Update": "UpdateItem", "ConditionCheck": "ConditionCheckItem",
                     "Delete": "DeleteItem"}
            return [(f"dynamodb:{kinds[k]}", table(v["TableName"])) for item in params["TransactItems"]
                    for k, v in item.items()]
        if operation == "TransactGetItems":
            return [("dynamodb:GetItem", table(i["Get"]["TableName"])) for i in params["TransactItems"]]
    if service == "sqs":
        name = params.get("QueueName") or params["QueueUrl"].rstrip("/").rsplit("/", 1)[1]
        return [(f"sqs:{operation}", ARN % ("sqs", _prod(name)))]
    if service == "events" and operation == "PutEvents":
        return [("events:PutEvents", ARN % ("events", f"event-bus/{_prod(e['EventBusName'])}"))
                for e in params["Entries"]]
    return [(f"{service}:{operation}", "*")]


def _grants(function: str, *, of_code: bool = False) -> set[tuple[str, str]]:
    """(action, resource) pairs the committed policy of ``function`` allows (``of_code``: only
    those for its code, not what Lambda itself does with the role)."""
    doc = json.loads((ROOT / ".chalice" / f"policy-{STAGE}-{function}.json").read_text(encoding="utf-8"))
    out = set()
    for st in doc["Statement"]:
        if of_code and st["Sid"] in LAMBDA_ITSELF:
            continue
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        out |= {(action, r["Fn::Sub"] if isinstance(r, dict) else r) for action in st["Action"] for r in resources}
    return out


class Recorder:
    """The AWS calls and secret reads of the function that is running, from every thread.

    ``running(function)`` names the function every call is charged to until the block ends. A
    function that runs on the test's thread (``restore``, ``poll``, the reconciliations) is charged
    the calls of every thread; the API runs on the local server's request threads, so the test's
    own thread (its setup and its checks) is left out while the API is charged."""

    def __init__(self):
        self.calls: dict[str, set[tuple[str, str]]] = {f: set() for f in FUNCTIONS}
        self.function: str | None = None
        self.not_thread: int | None = None
        self._lock = threading.Lock()

    def install(self, mp: pytest.MonkeyPatch) -> None:
        original_call = botocore.client.BaseClient._make_api_call
        original_secret, original_optional = config.secret, config.optional_secret
        recorder = self

        def make_api_call(client, operation, params):
            recorder.charge(_needs(client.meta.service_model.service_name, operation, params))
            return original_call(client, operation, params)

        def secret(name):
            recorder.charge([("ssm:GetParameter", ARN % ("ssm", f"parameter/gacha-refunds/{STAGE}/{SECRETS[name]}"))])
            return original_secret(name)

        def optional_secret(name):
            # the template gives every function every <NAME>_PARAM: in AWS an optional secret left
            # out locally is still asked of SSM (the parameter may not exist)
            recorder.charge([("ssm:GetParameter", ARN % ("ssm", f"parameter/gacha-refunds/{STAGE}/{SECRETS[name]}"))])
            return original_optional(name)

        mp.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
        mp.setattr(config, "secret", secret)
        mp.setattr(config, "optional_secret", optional_secret)

    def charge(self, needs: list[tuple[str, str]]) -> None:
        with self._lock:
            if self.function is not None and threading.get_ident() != self.not_thread:
                self.calls[self.function].update(needs)

    @contextmanager
    def running(self, function: str, *, on_other_threads: bool = False):
        with self._lock:
            self.function, self.not_thread = function, threading.get_ident() if on_other_threads else None
        try:
            yield
        finally:
            with self._lock:
                self.function = self.not_thread = None

    def denied(self, function: str) -> list[tuple[str, str]]:
        return sorted(self.calls[function] - _grants(function))

    def unused(self, function: str) -> list[tuple[str, str]]:
        return sorted(_grants(function, of_code=True) - self.calls[function])


# ---------------------------------------------------------------- the functions at work


class Scene:
    """One world (tables, queues, simulator) and the helpers the runs below share."""

    def __init__(self, world, recorder: Recorder, mp: pytest.MonkeyPatch):
        self.env, self.recorder, self.mp = world, recorder, mp
        self.api, self.sim, self.stack = world.api, world.sim, world.stack
        self.app = world.stack.handlers()

    # ---- HTTP, as a client of the API
    def ok(self, response, status: int = 200):
        assert response.status_code == status, response.text
        return response.json() if "json" in response.headers.get("content-type", "") else response.text

    def refund_status(self, refund_no: str, status: str) -> dict:
        """Wait, through the API, until the refund is ``status`` and the API is idle."""
        def reached():
            body = self.ok(self.api.get(f"/api/admin/pay/refunds/{refund_no}", self.env.admin))
            return body if body["status"] == status else None
        body = self.env.wait_for(reached, timeout=15)
        assert self.stack.wait_api_idle(15)
        return body

    def create(self, token: str, n: int, amount: int, status: int = 201) -> dict:
        from devstack.seed import order_no

        return self.ok(self.api.post("/api/admin/pay/refunds", token, {"order_no": order_no(n), "amount": amount}),
                       status)

    def quiet(self) -> None:
        """Nothing of one function may still be running when the next is charged: the simulator
        sends no more notifications, and the API has finished every request."""
        self.sim.configure(drop_notifications=True)
        self.sim.clear_scenarios()
        assert self.stack.wait_api_idle(15)

    def take(self, url: str) -> list[dict]:
        """Every message on the queue, removed from it (as a consumer that handled them)."""
        sqs, out = self.stack.sqs(), []
        while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
            out.extend(msgs)
            for m in msgs:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out

    def settled_at_wechat(self, n: int, amount: int) -> str:
        """A refund WeChat settled whose notification never came (it is processing here)."""
        refund_no = self.create(self.env.admin, n, amount)["refund_no"]
        self.env.wait_for(lambda: self.sim.refund(refund_no)["status"] in ("SUCCESS", "ABNORMAL"))
        return refund_no

    def player_refund_settled_at_wechat(self, n: int, user_id: str) -> str:
        """A player's application, approved, that WeChat settled without telling us; the player
        agreed to be told when the money arrives."""
        from devstack.seed import order_no

        applied = self.ok(self.api.post(f"/api/app/orders/{order_no(n)}/refund/apply", self.env.user(user_id),
                                        {"amount": 100, "reason": "不想要了",
                                         "subscriptions": {"TPL-REFUND-ARRIVED": "accept"}}), 201)
        self.ok(self.api.post(f"/api/admin/pay/refunds/{applied['refund_no']}/approve", self.env.admin, {}))
        self.env.wait_for(lambda: self.sim.refund(applied["refund_no"])["status"] == "SUCCESS")
        return applied["refund_no"]

    def refunds_of(self, *seeded: int) -> list[str]:
        from chalicelib.adapters import repository as repo
        from devstack.seed import order_no

        return [r.refund_no for n in seeded for r in repo.refunds_of_order(order_no(n))]

    def fresh_world(self) -> None:
        self.stack.reset()
        self.sim.configure(drop_notifications=True, bill_ready_hour=None)


def _api(scene: Scene) -> None:
    """Every route group of the API, as the console, the mini-app and WeChat use them."""
    from devstack.seed import order_no

    env, api, sim = scene.env, scene.api, scene.sim
    support, finance = env.staff("support", "sam"), env.staff("finance", "fay")
    today = _beijing_today()
    # the complaint sweep registers where WeChat sends complaint notifications (not charged here)
    assert scene.app.complaints_sweep(schedule_event("ap-east-1"), LambdaContext("complaints_sweep"))
    with scene.recorder.running("api_handler", on_other_threads=True):
        # meta, docs, console
        scene.ok(api.get("/api/health"))
        scene.ok(api.get("/api/openapi.json"))
        assert api.get("/admin").status_code == 200
        # orders: every list (all, by status, by player) and a detail
        scene.ok(api.get("/api/admin/orders?limit=5", env.admin))
        scene.ok(api.get("/api/admin/orders?status=2&limit=5", env.admin))
        scene.ok(api.get("/api/admin/orders?user_id=u1001", env.admin))
        scene.ok(api.get(f"/api/admin/orders/{order_no(6)}", env.admin))
        scene.ok(api.post("/api/admin/pay/refunds/preview", env.admin, {"order_no": order_no(6), "amount": 990}))
        # whole refunds straight to WeChat, settled by its notifications (restorations queued:
        # points, a coupon and a shipment; lottery prizes)
        sim.configure(drop_notifications=False)
        for n in (1, 6):
            detail = scene.ok(api.get(f"/api/admin/orders/{order_no(n)}", env.admin))
            whole = detail["refund_actions"]["max_refundable"]
            scene.refund_status(scene.create(env.admin, n, whole)["refund_no"], "success")
        # approval: above support's limit, approved by another person; rejected; withdrawn
        approved = scene.create(support, 11, 30000)
        assert approved["status"] == "pending_review"
        scene.ok(api.post(f"/api/admin/pay/refunds/{approved['refund_no']}/approve", finance, {}))
        scene.refund_status(approved["refund_no"], "success")
        rejected = scene.create(support, 11, 25000)
        scene.ok(api.post(f"/api/admin/pay/refunds/{rejected['refund_no']}/reject", finance, {"reason": "金额不对"}))
        withdrawn = scene.create(support, 11, 21000)
        scene.ok(api.post(f"/api/admin/pay/refunds/{withdrawn['refund_no']}/reject", support, {"reason": "填错了"}))
        # a player's application and its review
        player = env.user("u1004")
        applied = scene.ok(api.post(f"/api/app/orders/{order_no(5)}/refund/apply", player,
                                    {"amount": 500, "reason": "不想要了"}), 201)
        scene.ok(api.get(f"/api/app/orders/{order_no(5)}/refunds", player))
        scene.ok(api.post(f"/api/admin/pay/refunds/{applied['refund_no']}/approve", env.admin, {}))
        scene.refund_status(applied["refund_no"], "success")
        # lists and a detail
        scene.ok(api.get("/api/admin/pay/refunds?status=pending_review&order=oldest", env.admin))
        scene.ok(api.get(f"/api/admin/pay/refunds?order_no={order_no(11)}", env.admin))
        # WeChat refuses; pays abnormally (resolved to the merchant's card, then paid out offline);
        # cannot pay the player (the offline refund is cancelled)
        sim.push_scenario("NOT_ENOUGH")
        assert scene.create(env.admin, 14, 300)["status"] == "failed"
        sim.queue_outcome("ABNORMAL")
        abnormal = scene.create(env.admin, 15, 400)
        scene.refund_status(abnormal["refund_no"], "abnormal")
        scene.ok(api.post(f"/api/admin/pay/refunds/{abnormal['refund_no']}/abnormal-refund", env.admin,
                          {"type": "MERCHANT_BANK_CARD"}))
        scene.refund_status(abnormal["refund_no"], "offline_pending")
        scene.ok(api.post(f"/api/admin/pay/refunds/{abnormal['refund_no']}/offline-payout", env.admin,
                          {"channel": "bank_transfer", "reference": "TRX-1"}))
        sim.push_scenario("USER_ACCOUNT_ABNORMAL")
        offline = scene.create(env.admin, 16, 300)
        assert offline["status"] == "offline_pending"
        scene.ok(api.post(f"/api/admin/pay/refunds/{offline['refund_no']}/cancel-offline", env.admin,
                          {"reason": "用户改用其他方式"}))
        # WeChat's notifications: a refund we never made (booked against its order as a 微信侧退款),
        # a payment, a payment that does not match
        assert sim.foreign_refund(order_no(13), 500, out_refund_no="MERCHANTPLATFORM0001",
                                  url=env.stack.env["WECHAT_REFUND_NOTIFY_URL"])["notified"] == 204
        payment_url = env.stack.env["WECHAT_PAYMENT_NOTIFY_URL"]
        assert sim.notify_payment(order_no(7), payment_url, total=1) == 204
        assert sim.notify_payment(order_no(7), payment_url) == 204
        # manual tasks: list, export, done
        tasks = scene.ok(api.get("/api/admin/manual-tasks?type=external_refund", env.admin))["items"]
        scene.ok(api.get("/api/admin/manual-tasks?format=csv", env.admin))
        scene.ok(api.post(f"/api/admin/manual-tasks/{tasks[0]['task_id']}/done", env.admin, {"note": "已核实"}))
        # who am I, and an operator's activity
        scene.ok(api.get("/api/admin/me", support))
        scene.ok(api.get(f"/api/admin/activity?operator=sam&from={today}&to={today}", finance))
        scene.ok(api.get(f"/api/admin/activity?operator=sam&format=csv", finance))
        # reconciliation: a run of today (with a payment we never heard of), its lists and report;
        # then one the API cannot finish, whose continuation is left on the reconciliation queue
        sim.register_transaction(4321, "GBNOTOURS0001", paid_at=time.time())
        scene.ok(api.post("/api/admin/reconciliations", finance, {"bill_date": today}))
        scene.ok(api.get("/api/admin/reconciliations", finance))
        scene.ok(api.get(f"/api/admin/reconciliations/{today}", finance))
        scene.ok(api.get(f"/api/admin/reconciliations/{today}/discrepancies", finance))
        scene.ok(api.get(f"/api/admin/reconciliations/{today}/discrepancies?format=csv", finance))
        _out_of_time(scene)
        scene.mp.setenv("RECON_API_BUDGET_SECONDS", "0")
        assert scene.ok(api.post("/api/admin/reconciliations", finance, {"bill_date": today}), 202)["status"] \
            == "running"
        scene.mp.delenv("RECON_API_BUDGET_SECONDS")
        _api_desk(scene)
        _api_players(scene)
        _api_complaints(scene)
        scene.quiet()


def _api_desk(scene: Scene) -> None:
    """The desk: nav counts, the search box (order, payment, refund numbers, nickname, phone), the
    refund list and its CSV, a customer's refunds, a task reopened."""
    from urllib.parse import quote

    from devstack.seed import PHONES, order_no

    env, api = scene.env, scene.api
    order = env.order(1)
    scene.ok(api.get("/api/admin/counts", env.admin))
    refund_no = scene.refunds_of(1)[0]
    for q in (order_no(1), order.payment.transaction_id, refund_no, "小明", PHONES["u1001"]):
        assert scene.ok(api.get(f"/api/admin/search?q={quote(q)}", env.admin))["count"] >= 1, q
    scene.ok(api.get("/api/admin/pay/refunds?limit=2", env.admin))
    scene.ok(api.get("/api/admin/pay/refunds?status=success&format=csv", env.admin))
    scene.ok(api.get("/api/admin/users/u1001/refunds", env.admin))
    done = scene.ok(api.get("/api/admin/manual-tasks?status=done", env.admin))["items"]
    scene.ok(api.post(f"/api/admin/manual-tasks/{done[0]['task_id']}/reopen", env.admin, {"note": "再核实"}))


GUARDIAN = {"statement": "孩子 10 岁，未经同意购买了抽奖券", "relationship": "father", "evidence": ["media_001"]}


def _api_players(scene: Scene) -> None:
    """Players: the subscription templates, their refunds over every order, a withdrawal, and a
    guardian's claim (未成年人消费) reviewed by two people (the minors' queue)."""
    from devstack.seed import order_no

    env, api = scene.env, scene.api
    player = env.user("u1001")
    scene.ok(api.get("/api/app/subscription-templates", player))
    applied = scene.ok(api.post(f"/api/app/orders/{order_no(4)}/refund/apply", player,
                                {"amount": 100, "reason": "不想要了", "subscriptions": {"TPL-REVIEW-RESULT": "accept"}}),
                       201)
    scene.ok(api.get("/api/app/refunds?limit=5", player))
    scene.ok(api.post(f"/api/app/refunds/{applied['refund_no']}/withdraw", player, {"reason": "想再看看"}))
    claim = scene.ok(api.post(f"/api/app/orders/{order_no(20)}/refund/apply", env.user(env.order(20).user_id),
                              {"type": "minor", "guardian": GUARDIAN, "reason": "未成年人消费"}), 201)
    first, second = env.staff("support", "sam"), env.staff("finance", "fay")
    scene.ok(api.get("/api/admin/minor-claims", first))
    assert scene.ok(api.post(f"/api/admin/pay/refunds/{claim['refund_no']}/approve", first, {}))["status"] \
        == "pending_review"
    scene.ok(api.post(f"/api/admin/pay/refunds/{claim['refund_no']}/approve", second, {}))
    scene.refund_status(claim["refund_no"], "success")


def _api_complaints(scene: Scene) -> None:
    """投诉 (the notify URL registered by a sweep before): complaints told by WeChat's notification, the queue and a complaint's view, a reply, a
    refund (settled like any refund), a rejection and a completion."""
    import base64

    from chalicelib.adapters import complaint_store

    env, api, sim = scene.env, scene.api, scene.sim
    sim.configure(drop_complaint_notifications=False)
    ids = [sim.complaints.create(env.order(n).order_no, amount)["complaint_id"]
           for n, amount in ((21, 300), (22, 300), (23, 300), (24, 300))]
    env.wait_for(lambda: all(complaint_store.get(i) is not None for i in ids), timeout=30)
    replied, refunded, rejected, completed = ids
    scene.ok(api.get("/api/admin/complaints", env.admin))
    scene.ok(api.get(f"/api/admin/complaints/{replied}", env.admin))
    scene.ok(api.post(f"/api/admin/complaints/{replied}/reply", env.admin, {"content": "已为您补发，请留意物流"}))
    refund = scene.ok(api.post(f"/api/admin/complaints/{refunded}/refund", env.admin,
                               {"amount": 300, "reason": "投诉退款"}))
    scene.refund_status(refund["refund_no"], "success")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(80))).decode()
    scene.ok(api.post(f"/api/admin/complaints/{rejected}/reject", env.admin,
                      {"reason": "抽奖结果已公示，奖品已发出", "images": [png]}))
    scene.ok(api.post(f"/api/admin/complaints/{completed}/complete", env.admin, {}))
    sim.configure(drop_complaint_notifications=True)


def _beijing_today() -> str:
    from chalicelib.domain import clock

    return clock.beijing_day(clock.now())


def _out_of_time(scene: Scene) -> None:
    """A run checkpoints after every line (one key a batch), and its time runs out at once."""
    from chalicelib.services import reconciliation as recon

    scene.mp.setattr(recon, "BATCH_KEYS", 1)


def _restore(scene: Scene) -> None:
    """Every restoration message the API's successes queued: points, coupon, goods, lottery
    inventory, tasks for a person."""
    messages = scene.take(scene.stack.queue_url)
    assert len(messages) >= 4
    with scene.recorder.running("restore"):
        for message in messages:
            scene.app.restore(sqs_event(message, scene.stack.queue_arn, "ap-east-1"), LambdaContext("restore"))


def _poll(scene: Scene) -> None:
    """Overdue refunds (one settled at WeChat, one abnormal, two WeChat never got: one is sent
    again, the other refused), a lost restoration, a pending order whose payment notification
    never came, the refunds' domain events for the bus and a player's subscription message."""
    from chalicelib.adapters import repository as repo
    from chalicelib.domain import clock
    from devstack.seed import order_no

    env, sim = scene.env, scene.sim
    scene.fresh_world()
    scene.settled_at_wechat(1, 300)
    sim.queue_outcome("ABNORMAL")
    scene.settled_at_wechat(13, 300)
    sim.push_scenario("SIGN_ERROR", op="create", count=2)
    for n in (14, 15):
        assert scene.create(env.admin, n, 300)["status"] == "submitted"  # held: WeChat never got them
    sim.configure(drop_notifications=False)
    scene.refund_status(scene.create(env.admin, 6, 990)["refund_no"], "success")
    scene.quiet()
    assert scene.take(scene.stack.queue_url)  # its restoration message is lost: the sweeper sends it again
    repo.schedule_pay_check(order_no(7), due_at=clock.iso(clock.now()), attempts=0)
    # a player who agreed to be told the review's result: the approval leaves a message to send
    review = "TPL-REVIEW-RESULT"
    assert requests.post(f"{sim.base_url}/sim/subscriptions", json={"openid": "oSIM-u1001", "template_id": review},
                         timeout=5).status_code == 200
    applied = scene.ok(scene.api.post(f"/api/app/orders/{order_no(4)}/refund/apply", env.user("u1001"),
                                      {"amount": 100, "reason": "不想要了",
                                       "subscriptions": {review: "accept", "TPL-REFUND-ARRIVED": "accept"}}), 201)
    scene.ok(scene.api.post(f"/api/admin/pay/refunds/{applied['refund_no']}/approve", env.admin, {}))
    env.wait_for(lambda: sim.refund(applied["refund_no"])["status"] == "SUCCESS")  # we were not told
    assert scene.stack.wait_api_idle(15)
    sim.push_scenario("NOT_ENOUGH", op="create")  # one resubmission is refused: its allowance goes back
    with scene.recorder.running("poll"):
        result = scene.app.poll(schedule_event("ap-east-1"), LambdaContext("poll"))
    assert result["poll"]["changed"] >= 2 and result["poll"]["resubmitted"] >= 1, result
    assert result["events"]["published"] >= 2 and result["messages"]["sent"] >= 1, result
    assert {repo.get_refund(r).status for r in scene.refunds_of(14, 15)} == {"failed", "processing"}
    assert repo.get_refund(applied["refund_no"]).status == "success"


def _reconcile(scene: Scene) -> None:
    """The schedule reconciles yesterday: today's bill, seen from tomorrow. On it: refunds WeChat
    settled that we still await (settled here, restorations queued; a player's, who asked to be
    told), a payment we recorded as pending and two we never heard of, a refund we never made
    (asked of WeChat and booked against its order). First a run whose time runs
    out after two lines (its continuation is left on the queue for ``reconcile_continue``), then,
    in a fresh world with two refunds, a whole run. Payments come first on a bill, refunds after them."""
    from chalicelib.domain import clock
    from devstack.seed import order_no

    env, sim = scene.env, scene.sim
    scene.fresh_world()
    scene.mp.setenv("RECON_MIDNIGHT_MINUTES", "0")
    for n in (13, 14, 15, 16):
        scene.settled_at_wechat(n, 300)
    for n in (1, 2):
        sim.register_transaction(4321 + n, f"GBNOTOURS000{n}", paid_at=time.time())
    sim.foreign_refund(order_no(4), 300, out_refund_no="PLATFORMX1")  # nobody told us: booked from the bill
    scene.player_refund_settled_at_wechat(1, "u1001")
    _out_of_time(scene)
    tomorrow = clock.now() + timedelta(days=1)
    context = LambdaContext("reconcile", RECON_TIMEOUT_SECONDS)
    with scene.recorder.running("reconcile"), clock.use(lambda: tomorrow), _time_runs_out(after=2):
        runs = scene.app.reconcile(schedule_event("ap-east-1"), context)["runs"]
    assert [r["status"] for r in runs] == ["running"], runs
    _reconcile_continue(scene)
    scene.fresh_world()  # the schedule reconciles a finished day no more: another world's yesterday
    scene.mp.setenv("RECON_MIDNIGHT_MINUTES", "0")
    for n in (17, 18):
        scene.settled_at_wechat(n, 300)
    sim.foreign_refund(order_no(3), 300, out_refund_no="PLATFORMX2")
    scene.player_refund_settled_at_wechat(1, "u1001")
    with scene.recorder.running("reconcile"), clock.use(lambda: tomorrow):
        runs = scene.app.reconcile(schedule_event("ap-east-1"), context)["runs"]
    assert [r["status"] for r in runs] == ["done"], runs


@contextmanager
def _time_runs_out(after: int = 2):
    """Every reconciliation Deadline is near after ``after`` looks at it (deterministic, no timing)."""
    from chalicelib.services import reconciliation as recon

    original = recon.Deadline.near
    looks: dict[int, int] = {}

    def near(self):
        looks[id(self)] = looks.get(id(self), 0) + 1
        return looks[id(self)] > after or original(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(recon.Deadline, "near", near)
        yield


def _reconcile_continue(scene: Scene) -> None:
    """The continuation messages: one that runs out of time again after two more lines (a
    payment and a refund; it sends the next), then one that finishes the run."""
    from chalicelib.adapters import reconciliations as store

    context = LambdaContext("reconcile_continue", RECON_TIMEOUT_SECONDS)
    url, arn = scene.stack.recon_queue_url, scene.stack.recon_queue_arn
    [message] = scene.take(url)
    bill_date = json.loads(message["Body"])["bill_date"]
    with scene.recorder.running("reconcile_continue"), _time_runs_out(after=1):
        scene.app.reconcile_continue(sqs_event(message, arn, "ap-east-1"), context)
    assert store.get_run(bill_date).status == "running"
    [message] = scene.take(url)
    with scene.recorder.running("reconcile_continue"):
        scene.app.reconcile_continue(sqs_event(message, arn, "ap-east-1"), context)
    assert store.get_run(bill_date).status == "done"


def _sweep(scene: Scene) -> None:
    """The complaint sweep ingests a complaint no notification told of (one a day old: past its
    first-reply deadline, so a task is opened), follows up a complaint refund that waited for
    approval (WeChat is told APPROVE) and keeps its watermark."""
    env, sim, api = scene.env, scene.sim, scene.api
    scene.fresh_world()
    sim.configure(drop_complaint_notifications=True)
    waiting = sim.complaints.create(env.order(11).order_no, 30000)["complaint_id"]
    scene.app.complaints_sweep(schedule_event("ap-east-1"), LambdaContext("complaints_sweep"))
    r = scene.ok(api.post(f"/api/admin/complaints/{waiting}/refund", env.staff("support", "amy"),
                          {"amount": 30000, "reason": "投诉退款"}))
    assert r["refund_progress"] == "awaiting_review", r
    scene.ok(api.post(f"/api/admin/pay/refunds/{r['refund_no']}/approve", env.admin, {}))
    sim.complaints.create(env.order(2).order_no, 300, at=time.time() - 25 * 3600)
    assert scene.stack.wait_api_idle(15)
    with scene.recorder.running("complaints_sweep"):
        result = scene.app.complaints_sweep(schedule_event("ap-east-1"), LambdaContext("complaints_sweep"))
    assert (result["new"], result["tasks_opened"], result["followed_up"]) == (1, 1, 1), result
    assert sim.complaints.get(waiting)["refund_progress"]["action"] == "APPROVE"


@pytest.fixture(scope="module")
def recorded(stack):
    from tests.support import World

    recorder = Recorder()
    world = World(stack)
    world.setup()
    try:
        with pytest.MonkeyPatch.context() as mp:
            recorder.install(mp)
            mp.setenv("RESTORE_QUEUE_URL", stack.queue_url)  # as the template gives it
            mp.setenv("POLL_AFTER_SECONDS", "0")
            mp.setenv("STAFF_DIRECTORY_CACHE_SECONDS", "0")  # every staff request asks the directory
            scene = Scene(world, recorder, mp)
            scene.sim.configure(drop_notifications=True, bill_ready_hour=None)
            _api(scene)
            _restore(scene)
            _poll(scene)
            _reconcile(scene)
            _sweep(scene)
    finally:
        world.teardown()
    return recorder


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_call_is_allowed_by_the_functions_policy(recorded, function):
    assert recorded.calls[function], f"{function} made no call: the scenario did not run it"
    assert recorded.denied(function) == []


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_grant_of_the_functions_policy_is_used(recorded, function):
    assert recorded.unused(function) == []


def test_the_internet_facing_function_writes_no_restoration_table(recorded):
    """The API also serves WeChat's unauthenticated callbacks: it may not mint points, coupons
    or prizes, and holds no condition check it does not make."""
    writes = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    restoration = {ARN % ("dynamodb", f"table/{STAGE}-{t}")
                   for t in ("users", "user_points_ledger", "user_coupons", "user_inventory")}
    granted = _grants("api_handler")
    assert not {(a, r) for a, r in granted if a in writes and r in restoration}
    assert not {a for a, _ in granted if a == "dynamodb:ConditionCheckItem"}


@pytest.mark.parametrize("function", ["restore", "poll", "complaints_sweep"])
def test_the_check_catches_a_call_outside_the_policy(function):
    """The recorder's view of a call the function must not make is denied."""
    recorder = Recorder()
    recorder.calls[function] = set(_needs("dynamodb", "Query", {"TableName": "local-orders", "IndexName": "by_time"}))
    recorder.calls[function] |= set(_needs("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "local-notify_receipts"}}]}))
    assert len(recorder.denied(function)) == 2


def test_the_check_catches_a_grant_nobody_uses():
    recorder = Recorder()
    assert ("dynamodb:GetItem", ARN % ("dynamodb", f"table/{STAGE}-orders")) in recorder.unused("restore")
    assert not any(a.startswith(("logs:", "kms:")) for a, _ in recorder.unused("poll"))
    assert ("sqs:SendMessage", ARN % ("sqs", f"{STAGE}-poll-failures")) not in recorder.unused("poll")
