"""The OpenAPI document: valid, served publicly, and in step with the routes the app has."""
import json
import re

import requests
from openapi_spec_validator import validate

from chalicelib.entrypoints import docs

METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def _doc_routes(doc) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def _app_routes() -> set[tuple[str, str]]:
    from app import app

    return {(m, path) for path, entries in app.routes.items() for m in entries}


def test_document_is_valid_openapi_3():
    doc = docs.document()
    assert doc["openapi"].startswith("3.")
    validate(doc)


def test_every_route_is_documented_and_nothing_else():
    documented, routed = _doc_routes(docs.document()), _app_routes()
    assert routed - documented == set(), f"routes missing from the document: {sorted(routed - documented)}"
    assert documented - routed == set(), f"documented but not routed: {sorted(documented - routed)}"


def test_path_parameters_match_the_routes():
    from app import app

    doc = docs.document()
    for path, entries in app.routes.items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, entry in entries.items():
            op = doc["paths"][path][method.lower()]
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names == set(entry.view_args), (method, path)


def test_every_operation_documents_errors_with_the_error_schema():
    doc = docs.document()
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "message"] and set(error["properties"]) == {"code", "message", "details"}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("operationId"), (method, path)
            for status, resp in op["responses"].items():
                resp = doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[-1]] if "$ref" in resp else resp
                if status[0] in "45" and "content" in resp:  # every error, 415 included: {code, message}
                    assert resp["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, \
                        (method, path, status)
            secured = bool(op.get("security"))
            if path.startswith("/api/admin") or path.startswith("/api/app"):
                assert secured and {"401", "403"} <= set(op["responses"]), (method, path)
            else:
                assert not secured, (method, path)


def test_served_publicly_as_json(stack):
    r = requests.get(f"{stack.api_url}/api/openapi.json", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.json() == docs.document()


def _validator_for(doc, path, method, status):
    from openapi_schema_validator import OAS30Validator

    resp = doc["paths"][path][method]["responses"][str(status)]
    schema = resp["content"]["application/json"]["schema"]
    return OAS30Validator({**schema, "components": doc["components"]})


def test_real_responses_match_the_document(env):
    """Every JSON answer, on data that fills every optional section, has the documented shape."""
    doc = docs.document()
    full, lottery, signed, virtual = env.order(1), env.order(6), env.order(3), env.order(4)
    ok = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": full.order_no, "amount": full.actual_amount})
    env.wait_status(ok.json()["refund_no"], "success")
    env.drain_restorations()
    lot = env.api.post("/api/admin/pay/refunds", env.admin, {"order_no": lottery.order_no,
                                                             "amount": lottery.actual_amount})
    env.wait_status(lot.json()["refund_no"], "success")
    env.drain_restorations()
    review = env.api.post(f"/api/app/orders/{signed.order_no}/refund/apply", env.user(signed.user_id),
                          {"amount": 100, "reason": "不想要了"})
    rejected = env.api.post(f"/api/app/orders/{virtual.order_no}/refund/apply", env.user(virtual.user_id),
                            {"amount": 100, "reason": "不想要了"}).json()["refund_no"]
    calls = [
        ("/api/health", "get", "/api/health", None, None),
        ("/api/admin/orders", "get", "/api/admin/orders?limit=100", env.admin, None),
        ("/api/admin/orders/{order_no}", "get", f"/api/admin/orders/{full.order_no}", env.admin, None),
        ("/api/admin/orders/{order_no}", "get", f"/api/admin/orders/{lottery.order_no}", env.admin, None),
        ("/api/admin/orders/{order_no}", "get", f"/api/admin/orders/{virtual.order_no}", env.admin, None),
        ("/api/admin/pay/refunds", "get", "/api/admin/pay/refunds?status=success", env.admin, None),
        ("/api/admin/pay/refunds", "get", f"/api/admin/pay/refunds?order_no={signed.order_no}", env.admin, None),
        ("/api/admin/pay/refunds/{refund_no}", "get", f"/api/admin/pay/refunds/{ok.json()['refund_no']}",
         env.admin, None),
        ("/api/admin/pay/refunds/preview", "post", "/api/admin/pay/refunds/preview", env.admin,
         {"order_no": lottery.order_no, "amount": 1}),
        ("/api/admin/pay/refunds/preview", "post", "/api/admin/pay/refunds/preview", env.admin,
         {"order_no": env.order(2).order_no, "amount": env.order(2).actual_amount}),
        ("/api/admin/pay/refunds/{refund_no}/reject", "post", f"/api/admin/pay/refunds/{rejected}/reject",
         env.admin, {"reason": "已履约"}),
        ("/api/admin/manual-tasks", "get", "/api/admin/manual-tasks", env.admin, None),
        ("/api/app/orders/{order_no}/refunds", "get", f"/api/app/orders/{signed.order_no}/refunds",
         env.user(signed.user_id), None),
        ("/api/admin/orders/{order_no}", "get", "/api/admin/orders/NO-SUCH", env.admin, None),
        ("/api/admin/pay/refunds", "post", "/api/admin/pay/refunds", env.admin, {"order_no": full.order_no,
                                                                               "amount": 1}),
    ]
    assert review.status_code == 201
    _validator_for(doc, "/api/app/orders/{order_no}/refund/apply", "post", 201).validate(review.json())
    _validator_for(doc, "/api/admin/pay/refunds", "post", 201).validate(ok.json())
    for route, method, url, token, body in calls:
        r = env.api.call(method.upper(), url, token, body=body)
        assert r.headers["Content-Type"].startswith("application/json"), (url, r.headers)
        _validator_for(doc, route, method, r.status_code).validate(r.json())
    tasks = env.api.get("/api/admin/manual-tasks", env.admin).json()["items"]
    assert tasks, "the lottery refund leaves a manual task"
    done = env.api.post(f"/api/admin/manual-tasks/{tasks[0]['task_id']}/done", env.admin, {"note": "已处理"})
    _validator_for(doc, "/api/admin/manual-tasks/{task_id}/done", "post", done.status_code).validate(done.json())
