"""Each function's committed IAM policy allows every AWS call its code really makes.

The restoration and poll handlers run here as Lambda runs them (app.restore with an SQS
event, app.poll with a schedule event) against the local AWS endpoint and the WeChat Pay
simulator. Every botocore call they make from this thread, and every secret they read, is
turned into the IAM action and resource it needs in the prod stack, and must be allowed by
.chalice/policy-prod-<function>.json: a policy trimmed below what the code does fails here
before it fails in AWS with AccessDenied."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import botocore.client
import pytest

from chalicelib import config
from devstack.driver import LambdaContext, schedule_event, sqs_event

ROOT = Path(__file__).resolve().parents[2]
STAGE = "prod"
ARN = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
SECRET_PARAMS = {  # deploy/build_resources.py SECRETS
    "WECHAT_PRIVATE_KEY": "wechat/private-key", "WECHAT_APIV3_KEY": "wechat/apiv3-key",
    "WECHAT_PUBLIC_KEY": "wechat/public-key", "WECHAT_PLATFORM_CERTS": "wechat/platform-certificates",
    "ADMIN_JWT_SECRET": "jwt/admin-secret",
    "USER_JWT_SECRET": "jwt/user-secret", "MINIAPP_SECRET": "miniapp/app-secret",
}


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


def _allowed(function: str) -> dict[str, set[str]]:
    doc = json.loads((ROOT / ".chalice" / f"policy-{STAGE}-{function}.json").read_text(encoding="utf-8"))
    allowed: dict[str, set[str]] = {}
    for st in doc["Statement"]:
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for action in st["Action"]:
            allowed.setdefault(action, set()).update(r["Fn::Sub"] for r in resources)
    return allowed


class Recorder:
    """AWS calls and secret reads made by this thread while active."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, str]] = []
        self.thread = threading.get_ident()
        original_call = botocore.client.BaseClient._make_api_call
        original_secret = config.secret
        recorder = self

        def make_api_call(client, operation, params):
            if threading.get_ident() == recorder.thread:
                recorder.calls += _needs(client.meta.service_model.service_name, operation, params)
            return original_call(client, operation, params)

        def secret(name):
            if threading.get_ident() == recorder.thread:
                recorder.calls.append(("ssm:GetParameter",
                                       ARN % ("ssm", f"parameter/gacha-refunds/{STAGE}/{SECRET_PARAMS[name]}")))
            return original_secret(name)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)
        monkeypatch.setattr(config, "secret", secret)

    def denied(self, function: str) -> list[tuple[str, str]]:
        allowed = _allowed(function)
        return sorted({c for c in self.calls if c[1] not in allowed.get(c[0], set())})


def _refund(env, order_no: str, amount: int) -> str:
    r = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": order_no, "amount": amount})
    assert r.status_code == 201, r.text
    return r.json()["refund_no"]


def test_restore_handler_calls_only_what_its_policy_allows(env, monkeypatch):
    app = env.stack.handlers()
    for n in (1, 6):  # points + coupon + shipment; lottery inventory (batch read) + a manual task
        order = env.order(n)
        env.wait_status(_refund(env, order.order_no, order.actual_amount), "success")
    messages = env.queue_messages()
    assert len(messages) == 2
    recorder = Recorder(monkeypatch)
    for message in messages:
        app.restore(sqs_event(message, env.stack.queue_arn, "ap-east-1"), LambdaContext("restore"))
    monkeypatch.undo()
    actions = {a for a, _ in recorder.calls}
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"} <= actions
    assert recorder.denied("restore") == []
    assert not any(a.startswith(("ssm:", "sqs:")) for a in actions)  # no secret, no publishing


def test_poll_handler_calls_only_what_its_policy_allows(env, monkeypatch):
    app = env.stack.handlers()
    order, refund_no = env.refund_without_notification(1, 300)
    assert env.refund(refund_no).status == "processing"
    recorder = Recorder(monkeypatch)
    result = app.poll(schedule_event("ap-east-1"), LambdaContext("poll"))
    monkeypatch.undo()
    assert result["poll"]["changed"] == 1 and env.refund(refund_no).status == "success"
    actions = {a for a, _ in recorder.calls}
    assert {"dynamodb:Query", "dynamodb:GetItem", "sqs:SendMessage", "events:PutEvents"} <= actions
    assert result["events"]["published"] >= 2  # the refund's changes, relayed to the bus
    assert recorder.denied("poll") == []


@pytest.mark.parametrize("function", ["restore", "poll"])
def test_the_check_catches_a_call_outside_the_policy(function):
    """The recorder's view of a call the function must not make is denied."""
    recorder = Recorder.__new__(Recorder)
    recorder.calls = _needs("dynamodb", "Query", {"TableName": "local-orders", "IndexName": "by_time"})
    recorder.calls += _needs("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "local-notify_receipts"}}]})
    assert len(recorder.denied(function)) == 2


def test_complaint_sweep_calls_only_what_its_policy_allows(env, monkeypatch):
    """The sweep ingests a complaint no notification told of (one a day old: past its first-reply
    deadline, so a task is opened), follows up a complaint refund that waited for approval (WeChat
    is told APPROVE) and keeps its watermark."""
    import time

    app = env.stack.handlers()
    env.sim.configure(drop_complaint_notifications=True)
    waiting = env.sim.complaints.create(env.order(11).order_no, 30000)["complaint_id"]
    app.complaints_sweep(schedule_event("ap-east-1"), LambdaContext("complaints_sweep"))
    support = env.staff("support", "amy")
    r = env.api.post(f"/api/admin/complaints/{waiting}/refund", support, {"amount": 30000, "reason": "投诉退款"})
    assert r.status_code == 200 and r.json()["refund_progress"] == "awaiting_review", r.text
    approved = env.api.post(f"/api/admin/pay/refunds/{r.json()['refund_no']}/approve", env.admin, {})
    assert approved.status_code == 200, approved.text
    old = env.sim.complaints.create(env.order(2).order_no, 300, at=time.time() - 25 * 3600)["complaint_id"]
    recorder = Recorder(monkeypatch)
    result = app.complaints_sweep(schedule_event("ap-east-1"), LambdaContext("complaints_sweep"))
    monkeypatch.undo()
    assert (result["new"], result["tasks_opened"], result["followed_up"]) == (1, 1, 1), result
    assert env.sim.complaints.get(waiting)["refund_progress"]["action"] == "APPROVE"
    assert old
    actions = {a for a, _ in recorder.calls}
    assert {"dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:PutItem", "ssm:GetParameter"} <= actions
    assert recorder.denied("complaints_sweep") == []
