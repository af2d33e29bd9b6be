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
                if status.startswith("4") and status not in ("415",) and "content" in resp:
                    assert resp["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            secured = bool(op.get("security"))
            if path.startswith("/api/admin") or path.startswith("/api/app"):
                assert secured and {"401", "403"} <= set(op["responses"]), (method, path)
            else:
                assert not secured, (method, path)


def test_served_publicly_as_json(stack):
    r = requests.get(f"{stack.api_url}/api/openapi.json", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.json() == json.loads(docs.SPEC_PATH.read_text(encoding="utf-8"))
