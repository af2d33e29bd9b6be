"""The simulator's HTTP plumbing: routes, authentication, signed answers, the bill file."""
from __future__ import annotations

import json
import logging
import re
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from . import complaint_desk, miniprogram
from .control import dispatch
from .crypto import signed_headers
from .state import ERROR_SCENARIOS, ApiError, json_body

if TYPE_CHECKING:
    from .server import Simulator

log = logging.getLogger("wechatpay_sim")

_V3_ROUTES = [
    ("POST", re.compile(r"^/v3/refund/domestic/refunds$"), "create"),
    ("GET", re.compile(r"^/v3/refund/domestic/refunds/([^/]+)$"), "query"),
    ("POST", re.compile(r"^/v3/refund/domestic/refunds/([^/]+)/apply-abnormal-refund$"), "abnormal"),
    ("GET", re.compile(r"^/v3/certificates$"), "certificates"),
    ("GET", re.compile(r"^/v3/pay/transactions/(out-trade-no|id)/([^/]+)$"), "query_payment"),
    ("GET", re.compile(r"^/v3/bill/tradebill$"), "bill"),
    ("GET", re.compile(r"^/v3/billdownload/file$"), "download"),
]



class Handler(BaseHTTPRequestHandler):
    """One HTTP request: ``/v3/`` calls go to the simulator (authenticated, answers signed),
    ``/sim/`` calls to the control API."""
    server_version = "wechatpay-sim"
    sys_version = ""

    @property
    def sim(self) -> Simulator:
        return self.server.simulator  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        try:
            if path.startswith("/v3/"):
                self._v3(method, path, body)
            elif path.startswith("/cgi-bin/"):  # the mini-program server API (miniprogram.py)
                status, payload = miniprogram.answer(self.sim.miniprogram, method, self.path, body)
                self._send(status, payload, sign=False)
            elif path == "/sim" or path.startswith("/sim/"):
                status, payload = dispatch(self.sim, method, path, body)
                self._send(status, payload, sign=False)
            else:
                self._send(404, {"code": "NOT_FOUND", "message": "no such endpoint"}, sign=False)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeouts): nothing to answer

    def _v3(self, method: str, path: str, body: bytes) -> None:
        sim = self.sim
        complaint = complaint_desk.match(method, path)  # 消费者投诉2.0: complaint_desk.py
        for route_method, pattern, op in _V3_ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                break
        else:
            if complaint is None:
                self._send(404, {"code": "NOT_FOUND", "message": "no such endpoint"})
                return
            op = "complaint"
        try:
            sim.authenticate(method, self.path, self.headers, sim.complaints.signed_body(complaint, self.headers, body))
        except ApiError as err:
            self._send(err.status, err.body())
            return

        scenario = sim.store.take_scenario(op)
        kind = scenario.kind if scenario else None
        if op == "create" and kind in ERROR_SCENARIOS:
            # count the attempt even though nothing is created
            try:
                sim.store.count_create_call(json_body(body))
            except ApiError:
                pass
        signer = sim.response_signer(self.headers.get("Wechatpay-Serial"))
        if kind in ERROR_SCENARIOS:
            status, code, message = ERROR_SCENARIOS[kind]
            self._send(status, {"code": code, "message": message}, signer=signer)
            return
        query = parse_qs(urlsplit(self.path).query)
        try:
            if op == "complaint":
                status, answer = sim.complaints.api(complaint, method, query, self.headers, body)
                if isinstance(answer, complaint_desk.Media):
                    self._send_file(answer.data, answer.content_type)  # an image: the file itself, unsigned
                    return
            elif op == "create":
                immediate = {"IMMEDIATE_SUCCESS": "SUCCESS", "IMMEDIATE_CLOSED": "CLOSED"}.get(kind or "")
                status, answer = sim.api_create(json_body(body), immediate)
            elif op == "query":
                status, answer = sim.api_query(unquote(match.group(1)))
            elif op == "abnormal":
                status, answer = sim.api_abnormal(unquote(match.group(1)), json_body(body), self.headers)
            elif op == "query_payment":
                status, answer = sim.api_query_payment(match.group(1), unquote(match.group(2)), query)
            elif op == "bill":
                status, answer = 200, sim.bills.trade_bill(query, expired=kind == "EXPIRED_URL")
            elif op == "download":
                data = sim.bills.download(query, expired=kind == "EXPIRED_URL")
                if kind == "SLOW":
                    sim.sleep(scenario.seconds)
                self._send_file(data)  # the file itself is not signed
                return
            else:
                status, answer = sim.api_certificates()
        except ApiError as err:
            status, answer = err.status, err.body()
        if kind == "ACCEPT_THEN_ERROR":
            status, answer = 500, {"code": "SYSTEM_ERROR", "message": "系统错误"}
        if kind == "SLOW":
            sim.sleep(scenario.seconds)
        self._send(
            status,
            answer,
            forged=kind == "BAD_RESPONSE_SIGNATURE" or sim.bad_response_signature,
            signature_type=not (kind == "MISSING_SIGNATURE_TYPE" or sim.missing_signature_type),
            signer=signer,
        )

    def _send_file(self, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-ID", uuid.uuid4().hex.upper())
        self.end_headers()
        self.wfile.write(data)

    def _send(
        self,
        status: int,
        payload: dict | None,
        *,
        sign: bool = True,
        forged: bool = False,
        signature_type: bool = True,
        signer: tuple[object, str] | None = None,
    ) -> None:
        # None: no content (204), still signed: the SDKs verify every 2xx
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-ID", uuid.uuid4().hex.upper())
        if sign:
            sim = self.sim
            own_key, serial = signer or sim.response_signer(None)
            key = sim.forger_key() if forged else own_key
            for name, value in signed_headers(key, serial, body, include_signature_type=signature_type).items():
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
