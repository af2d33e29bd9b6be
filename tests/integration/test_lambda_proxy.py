"""The app as API Gateway runs it: a REST proxy event into ``app.app(event, context)``.

The local server is forgiving about what a handler returns; Lambda is not: the proxy response
must serialise to JSON, with a text body (or base64 for binary types). Every kind of response
the service gives goes through that entry point here.
"""
from __future__ import annotations

import csv
import io
import json
import uuid
from types import SimpleNamespace

import pytest

from chalicelib.adapters.models import ManualTask


def _context():
    return SimpleNamespace(aws_request_id=str(uuid.uuid4()), function_name="gacha-refunds-prod",
                           memory_limit_in_mb=512, invoked_function_arn="arn:aws:lambda:ap-east-1:1:function:x",
                           get_remaining_time_in_millis=lambda: 30000)


def invoke(method: str, resource: str, *, path_params: dict | None = None, query: dict | None = None,
           token: str | None = None, headers: dict | None = None, body: str | None = None) -> dict:
    import app as application

    path = resource
    for k, v in (path_params or {}).items():
        path = path.replace("{" + k + "}", v)
    h = {"Host": "abc123.execute-api.ap-east-1.amazonaws.com", **(headers or {})}
    if token:
        h["Authorization"] = f"Bearer {token}"
    event = {
        "resource": resource, "path": path, "httpMethod": method,
        "headers": h, "multiValueHeaders": {k: [v] for k, v in h.items()},
        "queryStringParameters": query, "multiValueQueryStringParameters":
            {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_params, "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "path": f"/api{path}",
                           "stage": "api", "requestId": str(uuid.uuid4()),
                           "identity": {"sourceIp": "203.0.113.9"}},
        "body": body, "isBase64Encoded": False,
    }
    response = application.app(event, _context())
    # what the Lambda runtime does with the return value: it must be JSON
    return json.loads(json.dumps(response))


def test_csv_export_is_a_text_body_with_bom(env):
    ManualTask("TASK-LAMBDA-1", type="return_to_warehouse", order_no="GB202611230003", refund_no="RF1",
               user_id="u1001", action="退货入库后确认", status="open", created_at="2026-11-25T00:00:00Z").save()
    r = invoke("GET", "/api/admin/manual-tasks", query={"status": "open", "format": "csv"}, token=env.admin)
    assert r["statusCode"] == 200 and not r.get("isBase64Encoded")
    assert r["headers"]["Content-Type"].startswith("text/csv")
    assert r["body"].startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(r["body"][1:])))
    assert [(row["任务编号"], row["类型"], row["状态"]) for row in rows] == [("TASK-LAMBDA-1", "退货入库", "待处理")]


@pytest.mark.parametrize("method,resource,params,expect", [
    ("GET", "/api/health", None, 200),
    ("GET", "/api/openapi.json", None, 200),
    ("GET", "/admin", None, 200),
    ("GET", "/admin/static/{version}/{name}", {"version": "x", "name": "console.css"}, 200),
    ("GET", "/admin/static/{version}/{name}", {"version": "x", "name": "nope.css"}, 404),
])
def test_public_routes_answer_through_the_proxy(env, method, resource, params, expect):
    r = invoke(method, resource, path_params=params)
    assert r["statusCode"] == expect and isinstance(r["body"], str) and r["body"]


def test_json_routes_and_errors_through_the_proxy(env):
    o = env.order(1)
    detail = invoke("GET", "/api/admin/orders/{order_no}", path_params={"order_no": o.order_no}, token=env.admin)
    assert detail["statusCode"] == 200 and json.loads(detail["body"])["order"]["order_no"] == o.order_no
    missing = invoke("GET", "/api/admin/orders/{order_no}", path_params={"order_no": "GB0"}, token=env.admin)
    assert missing["statusCode"] == 404 and json.loads(missing["body"])["code"] == "ORDER_NOT_FOUND"
    anonymous = invoke("GET", "/api/admin/orders")
    assert anonymous["statusCode"] == 401 and json.loads(anonymous["body"])["code"]
    bad = invoke("POST", "/api/pay/wechat/notify/refund", headers={"Content-Type": "application/json"},
                 body=json.dumps({"id": "x", "resource": {}}))
    assert 400 <= bad["statusCode"] < 500 and isinstance(bad["body"], str)


def test_genuine_refund_notification_settles_through_the_proxy(env):
    """The signature is over the exact body bytes: the body API Gateway hands over as a string
    (with Chinese text in it) must verify and settle the refund once."""
    from wechatpay_sim.crypto import signed_headers

    o, no = env.refund_without_notification(14, 300)
    assert env.refund(no).status == "processing"
    note = env.sim._notification_for(no, "https://api.example/api/pay/wechat/notify/refund")
    headers = signed_headers(env.sim.keyset.platform_private_key, env.sim.platform_serial(), note.body)
    headers["Content-Type"] = "application/json"
    for attempt in range(2):  # WeChat delivers more than once
        r = invoke("POST", "/api/pay/wechat/notify/refund", headers=headers, body=note.body.decode("utf-8"))
        assert r["statusCode"] == 204, r
    refund = env.refund(no)
    assert refund.status == "success" and [e.actor for e in refund.events].count("wechat") == 1
    assert env.fresh(o.order_no).refunded_amount == 300
    env.check_invariants(o.order_no)
