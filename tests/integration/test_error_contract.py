"""One error contract: every non-2xx answer is ``{"code", "message"}`` JSON, documented in the
OpenAPI document, on the local server (over HTTP) and through ``app.app(event, context)`` with
API Gateway proxy events (what Lambda runs)."""
from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from chalicelib.entrypoints import contract, docs
from tests.integration.test_lambda_proxy import invoke

CONTRACT_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE",
                  415: "UNSUPPORTED_MEDIA_TYPE", 431: "HEADERS_TOO_LARGE"}
HOSTILE_TYPE = "application/x-evil<script>alert(1)</script>"


def _contract(status: int, headers, text: str) -> dict:
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert ctype.startswith("application/json"), (status, ctype, text)
    body = json.loads(text)
    assert set(body) <= {"code", "message", "details"} and body["code"] and body["message"], body
    assert body["code"] == CONTRACT_CODES.get(status, body["code"]), (status, body)
    return body


def _documented(path: str, method: str, status: int) -> None:
    doc = docs.document()
    resp = doc["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in resp:
        resp = doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[-1]]
    assert resp["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


# ---------------------------------------------------------------- over HTTP, the local server


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/admin/nope/deeper", "/"])
def test_unknown_path_is_404(stack, path):
    for headers in ({}, {"Authorization": "Bearer whatever"}):
        r = requests.get(stack.api_url + path, headers=headers, timeout=10)
        assert r.status_code == 404
        _contract(404, r.headers, r.text)


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH", "POST", "TRACE", "FOO"])
def test_wrong_method_is_405_with_allow(stack, method):
    r = requests.request(method, stack.api_url + "/api/health", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    _contract(405, r.headers, r.text)
    _documented("/api/health", "get", 405)


def test_unsupported_media_type_is_415_and_never_echoed(stack, env):
    r = requests.post(stack.api_url + "/api/admin/pay/refunds", data="<refund/>", timeout=10,
                      headers={"Content-Type": HOSTILE_TYPE, "Authorization": f"Bearer {env.admin}"})
    assert r.status_code == 415 and "evil" not in r.text and "script" not in r.text
    _contract(415, r.headers, r.text)
    _documented("/api/admin/pay/refunds", "post", 415)


def test_body_too_large_is_413_and_nothing_is_read(stack, env):
    o = env.order(1)
    body = json.dumps({"order_no": o.order_no, "amount": 100, "reason": "x" * (contract.MAX_BODY_BYTES + 1)})
    r = requests.post(stack.api_url + "/api/admin/pay/refunds", data=body, timeout=10,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {env.admin}"})
    assert r.status_code == 413
    _contract(413, r.headers, r.text)
    _documented("/api/admin/pay/refunds", "post", 413)
    assert env.fresh(o.order_no).refund_count == 0


@pytest.mark.parametrize("headers", [
    {"X-Big": "a" * 11_000},  # more than API Gateway's 10 KiB of headers
    {"X-Huge": "a" * 70_000},  # one line longer than the HTTP server reads
    {f"X-Many-{i}": "1" for i in range(120)},  # more lines than it reads
])
def test_headers_too_large_is_431_json(stack, headers):
    r = requests.get(stack.api_url + "/api/health", headers=headers, timeout=10)
    assert r.status_code == 431
    _contract(431, r.headers, r.text)
    _documented("/api/health", "get", 431)


def test_malformed_request_line_is_400_json(stack):
    parts = urlsplit(stack.api_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(b"GET /api/health HTTP/9.9 extra\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert status == 400
    _contract(400, headers, body.decode())


def test_handler_errors_keep_their_codes(stack, env):
    r = requests.get(stack.api_url + "/api/admin/orders/GB0", timeout=10, headers={"Authorization": f"Bearer {env.admin}"})
    assert r.status_code == 404 and r.json()["code"] == "ORDER_NOT_FOUND"
    r = requests.get(stack.api_url + "/api/admin/orders", timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"


# ---------------------------------------------------------------- through app.app(event, context)


def test_proxy_unknown_resource_is_404(env):
    r = invoke("GET", "/api/nope")
    assert r["statusCode"] == 404
    _contract(404, r["headers"], r["body"])


def test_proxy_wrong_method_is_405_with_allow(env):
    r = invoke("DELETE", "/api/health")
    assert r["statusCode"] == 405 and r["headers"]["Allow"] == "GET"
    _contract(405, r["headers"], r["body"])


def test_proxy_unsupported_media_type_is_415_and_never_echoed(env):
    r = invoke("POST", "/api/admin/pay/refunds", token=env.admin, headers={"Content-Type": HOSTILE_TYPE},
               body="<refund/>")
    assert r["statusCode"] == 415 and "evil" not in r["body"]
    _contract(415, r["headers"], r["body"])


def test_proxy_body_too_large_is_413(env):
    o = env.order(1)
    body = json.dumps({"order_no": o.order_no, "amount": 100, "reason": "x" * (contract.MAX_BODY_BYTES + 1)})
    r = invoke("POST", "/api/admin/pay/refunds", token=env.admin, headers={"Content-Type": "application/json"},
               body=body)
    assert r["statusCode"] == 413
    _contract(413, r["headers"], r["body"])
    assert env.fresh(o.order_no).refund_count == 0


def test_proxy_unhandled_exception_is_500_contract(env, monkeypatch):
    import app as application

    def broken():
        raise RuntimeError("boom")

    entry = application.app.routes["/api/health"]["GET"]
    monkeypatch.setattr(entry, "view_function", broken)
    r = invoke("GET", "/api/health")
    assert r["statusCode"] == 500 and "boom" not in r["body"] and "Traceback" not in r["body"]
    assert _contract(500, r["headers"], r["body"])["code"] == "INTERNAL_ERROR"


# ---------------------------------------------------------------- the document


def test_every_operation_documents_the_contract_answers():
    doc = docs.document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            wanted = {"404", "405", "413", "431"} | ({"415"} if "requestBody" in op else set())
            assert wanted <= set(op["responses"]), (method, path)
            for status in wanted:
                _documented(path, method, int(status))


def _raw(stack, data: bytes, deadline: float = 30) -> bytes:
    """Send ``data`` as it is and read until the server closes the connection (within ``deadline``)."""
    parts = urlsplit(stack.api_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=deadline) as s:
        s.sendall(data)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("partial", [
    b"GET /api/health HTTP/1.1\r\nHost: x\r\n",  # the headers never end
    b"POST /api/admin/pay/refunds HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"a\"",
])
def test_a_request_left_half_sent_is_dropped_and_frees_its_thread(stack, partial, monkeypatch):
    """A client that stops sending (slowloris) does not hold a server thread for ever: the
    connection is closed after the server's request timeout, with nothing handled."""
    monkeypatch.setattr(stack.cfg, "request_timeout", 1.0)
    assert _raw(stack, partial) == b""  # closed by the server, well before the client's 30 s
    assert stack.wait_api_idle(30)
    assert requests.get(stack.api_url + "/api/health", timeout=10).status_code == 200


def test_conflicting_content_lengths_are_400_json_and_the_body_is_not_read(stack):
    data = _raw(stack, b"POST /api/admin/pay/refunds HTTP/1.1\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 2\r\nContent-Length: 41\r\n\r\n{}")
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    assert int(head.split(b" ", 2)[1]) == 400 and headers["Connection"] == "close"
    _contract(400, headers, body.decode())
    # the same length twice is one length (RFC 9110 8.6)
    data = _raw(stack, b"GET /api/health HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert int(data.split(b" ", 2)[1]) == 200
