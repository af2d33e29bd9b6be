"""Start and stop the whole local stack in one process."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "ap-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Connections the listening sockets queue before they are accepted. Python's servers
# default to 5, so a burst of 20 clients already met "Connection reset by peer"; API
# Gateway takes far more, and the local endpoint of AWS (werkzeug) queues 128.
LISTEN_BACKLOG = 128
# Request headers together (names and values), at most: API Gateway allows a REST API 10 240 bytes.
MAX_HEADER_BYTES = 10 * 1024


def _api_server_class():
    from chalice.local import ThreadedHTTPServer

    return type("ApiServer", (ThreadedHTTPServer,), {"request_queue_size": LISTEN_BACKLOG})


@dataclass
class StackConfig:
    workdir: Path = ROOT / ".devstack"
    api_port: int = 8000
    aws_port: int = 0
    sim_port: int = 0
    stage: str = "local"
    outcome_delay: float = 2.0
    poll_interval: float = 20.0  # how often the driver calls the schedule handler
    complaint_sweep_interval: float = 60.0  # how often the driver calls the complaint sweep
    poll_after_seconds: int = 10  # how long a refund waits for its notification before being queried
    restore_sweep_seconds: int = 60
    visibility_timeout: int = 5
    max_receive_count: int = 3
    seed: bool = True
    access_log: bool = True
    driver: bool = True
    api: bool = True  # serve the HTTP API (the use-case tests run the services without it)
    notify_retry_schedule: tuple = (1, 2, 4, 8)
    refund_interval_seconds: float = 60.0  # WeChat's minute between two refunds of one order
    # a connection that sends nothing for this long (a request left half-sent, an idle keep-alive)
    # is closed, so a slow or stalled client cannot hold one of the server's threads for ever
    request_timeout: float = 15.0
    # a day's trade bill is ready the next day from this Beijing hour (WeChat: about 10:00);
    # None: at once, today's so far (wechatpay_sim/bill_api.py)
    bill_ready_hour: int | None = 10
    extra_env: dict = field(default_factory=dict)


class Stack:
    def __init__(self, cfg: StackConfig | None = None):
        self.cfg = cfg or StackConfig()
        self.moto = self.sim = self.server = self.driver = None
        self._server_thread = None
        self.env: dict[str, str] = {}
        self._in_flight = 0  # requests the local API is handling right now

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "Stack":
        from devstack.aws import LocalAws

        from wechatpay_sim.keys import generate_keyset
        from wechatpay_sim.server import Simulator

        cfg = self.cfg
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        keys = generate_keyset(cfg.workdir / "keys")
        api_port = cfg.api_port or free_port()
        self.moto = LocalAws(port=cfg.aws_port or free_port())
        self.moto.start()
        aws_host, aws_port = self.moto.get_host_and_port()
        self.sim = Simulator(keys, port=cfg.sim_port, outcome_delay=cfg.outcome_delay,
                             notify_retry_schedule=cfg.notify_retry_schedule,
                             refund_interval_seconds=cfg.refund_interval_seconds,
                             bill_ready_hour=cfg.bill_ready_hour).start()
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.env = {
            "STAGE": cfg.stage,
            "TABLE_PREFIX": f"{cfg.stage}-",
            "AWS_ENDPOINT_URL": f"http://{aws_host}:{aws_port}",
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            "RESTORE_QUEUE_NAME": f"{cfg.stage}-refund-restore",
            "RECON_QUEUE_NAME": f"{cfg.stage}-reconciliation",
            "EVENT_BUS_NAME": f"{cfg.stage}-refund-events",
            # subscription messages: the simulator's mini-program API (wechatpay_sim/miniprogram.py)
            "WECHAT_MP_BASE_URL": self.sim.base_url, "MINIAPP_SECRET": "sim-app-secret",
            "SUBSCRIBE_TEMPLATES": "TPL-REVIEW-RESULT=review,TPL-REFUND-ARRIVED=refunded",
            "WECHAT_BASE_URL": self.sim.base_url,
            "WECHAT_REFUND_NOTIFY_URL": f"{self.api_url}/api/pay/wechat/notify/refund",
            "WECHAT_PAYMENT_NOTIFY_URL": f"{self.api_url}/api/pay/wechat/notify/payment",
            "WECHAT_COMPLAINT_NOTIFY_URL": f"{self.api_url}/api/pay/wechat/notify/complaint",
            "WECHAT_TIMEOUT_SECONDS": "5",
            "POLL_AFTER_SECONDS": str(cfg.poll_after_seconds),
            "RESTORE_SWEEP_SECONDS": str(cfg.restore_sweep_seconds),
            **keys.env(),
            **cfg.extra_env,
        }
        os.environ.update(self.env)
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log
        self._reset_clients()
        self._create_resources()
        if cfg.seed:
            self.seed()
        if cfg.api:
            self._start_api(api_port)
        if cfg.driver:
            self._start_driver()
        return self

    def stop(self) -> None:
        if self.driver:
            self.driver.stop()
        if self.server:
            self.server.shutdown()
            self.server.server.server_close()
        if self.sim:
            self.sim.stop()
        if self.moto:
            self.moto.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ pieces
    def _reset_clients(self) -> None:
        from chalicelib.adapters import models
        from chalicelib.adapters.wechat.gateway import reset_gateway

        models.bind(force=True)
        reset_gateway()

    def sqs(self):
        import boto3

        return boto3.client("sqs", region_name=REGION, endpoint_url=self.env["AWS_ENDPOINT_URL"])

    def _create_resources(self) -> None:
        from chalicelib.adapters import models

        models.create_tables(wait=False)  # moto creates tables ACTIVE at once
        self.queue_url, self.queue_arn, self.dlq_url = self._queue(os.environ["RESTORE_QUEUE_NAME"])
        # the reconciliation's continuation queue: a run out of time sends itself there
        self.recon_queue_url, self.recon_queue_arn, self.recon_dlq_url = self._queue(os.environ["RECON_QUEUE_NAME"])
        self.env["RECON_QUEUE_URL"] = os.environ["RECON_QUEUE_URL"] = self.recon_queue_url
        self._event_bus(os.environ["EVENT_BUS_NAME"])

    def _event_bus(self, name: str) -> None:
        """The domain events' bus, and a way to see what was published: a rule sending every
        event on it to the queue ``<bus>-tap`` (``published_events`` reads it)."""
        import boto3

        events = boto3.client("events", region_name=REGION, endpoint_url=self.env["AWS_ENDPOINT_URL"])
        try:
            events.create_event_bus(Name=name)
        except events.exceptions.ResourceAlreadyExistsException:
            pass  # another stack in this process shares moto's backends: the bus is the same
        sqs = self.sqs()
        self.events_tap_url = sqs.create_queue(QueueName=f"{name}-tap")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=self.events_tap_url,
                                           AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=f"{name}-tap", EventBusName=name, EventPattern=json.dumps({"source": ["gacha.refunds"]}))
        events.put_targets(Rule=f"{name}-tap", EventBusName=name, Targets=[{"Id": "tap", "Arn": tap_arn}])

    def published_events(self) -> list[dict]:
        """The events the bus delivered to the tap queue so far (read once: they are removed)."""
        sqs, out = self.sqs(), []
        while True:
            got = sqs.receive_message(QueueUrl=self.events_tap_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.events_tap_url, ReceiptHandle=m["ReceiptHandle"])

    def _queue(self, name: str) -> tuple[str, str, str]:
        """A queue with its dead-letter queue, as the template makes them: (url, arn, dlq url)."""
        sqs = self.sqs()
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": str(self.cfg.visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": str(self.cfg.max_receive_count)}),
        })["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn, dlq_url

    def reset(self) -> None:
        """Forget all AWS and WeChat state, then create the tables and queues and seed anew."""
        import requests

        requests.post(f"{self.env['AWS_ENDPOINT_URL']}/moto-api/reset", timeout=10).raise_for_status()
        self.sim.reset()
        self._create_resources()
        self.seed()

    def seed(self) -> None:
        from devstack.seed import seed

        for tx in seed():
            self.sim.register_transaction(tx.total, tx.out_trade_no, transaction_id=tx.transaction_id,
                                          paid_at=tx.paid_at.timestamp())

    def app(self):
        from chalice.cli.factory import CLIFactory

        if not hasattr(self, "_config"):
            factory = CLIFactory(str(ROOT), environ=os.environ)
            self._config = factory.create_config_obj(chalice_stage_name=self.cfg.stage)
        return self._config

    def _start_api(self, port: int) -> None:
        import threading

        from chalice.local import ChaliceRequestHandler, LocalChalice, LocalDevServer

        from urllib.parse import urlsplit

        from chalicelib.entrypoints import contract

        ApiServer = _api_server_class()
        access_log = self.cfg.access_log
        busy = self._busy = threading.Condition()
        stack = self

        class Handler(ChaliceRequestHandler):
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms Nagle stall

            @property
            def timeout(self) -> float:  # StreamRequestHandler sets it on the connection's socket
                return stack.cfg.request_timeout

            def log_message(self, *args):
                if access_log:
                    super().log_message(*args)

            def _generic_handle(self) -> None:
                with busy:
                    stack._in_flight += 1
                try:
                    refused = self._refusal()
                    if refused:
                        self._send_contract(refused)
                    else:
                        super()._generic_handle()
                finally:
                    with busy:
                        stack._in_flight -= 1
                        busy.notify_all()

            # The error contract at the server: what the HTTP server or chalice local would
            # answer in HTML or in API Gateway's words is answered as {"code", "message"}.
            def _refusal(self) -> int | None:
                """413/431/400 for a request the server will not pass on (its body is not read)."""
                if sum(len(k) + len(v) for k, v in self.headers.items()) > MAX_HEADER_BYTES:
                    return 431
                lengths = {v.strip() for v in self.headers.get_all("content-length") or ()}
                if len(lengths) > 1:  # which body is it? (RFC 9112 6.3: unrecoverable, a smuggling vector)
                    return 400
                length = self.headers.get("content-length", "0").strip() or "0"
                if not (length.isascii() and length.isdigit()):
                    return 400
                limit = contract.body_limit(stack._route(urlsplit(self.path or "/").path))
                return 413 if int(length) > limit else None

            def _send_contract(self, status: int, headers: dict | None = None) -> None:
                response = contract.error_for(status, headers)
                body = response.body.encode("utf-8") if self.command != "HEAD" else b""
                self.close_connection = True  # a body left unread must not be taken for the next request
                if self.request_version == "HTTP/0.9":  # an unparsable request line: answer with a status line
                    self.request_version = "HTTP/1.0"
                self.send_response(status)
                for name, value in {**response.headers, "Content-Length": str(len(body)),
                                    "Connection": "close"}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def send_error(self, code, message=None, explain=None):
                # the server's own refusals: bad request line, URI or headers too long, a method
                # it has no handler for (501: answered 405 with the methods the path has)
                if code == 501:
                    allowed = stack._route_methods(urlsplit(self.path or "/").path)
                    if allowed is None:
                        return self._send_contract(404)
                    return self._send_contract(405, {"Allow": ", ".join(allowed)})
                self._send_contract(code)

            def _send_error_response(self, error) -> None:
                # chalice local's API Gateway answer for a path no route has (403 Missing
                # Authentication Token); the app has no authorizers, so that is its only case
                self._send_contract(404)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        config = self.app()
        app = config.chalice_app
        if not isinstance(app, LocalChalice):  # per-thread current_request, as `chalice local` does it
            app.__class__ = type(f"Local{type(app).__name__}", (LocalChalice, type(app)), {})
        self.server = LocalDevServer(app, config, "127.0.0.1", port, handler_cls=Handler, server_cls=ApiServer)
        self._server_thread = threading.Thread(target=self.server.server.serve_forever, name="api", daemon=True)
        self._server_thread.start()

    def _route(self, path: str) -> str | None:
        """The route (``/api/x/{id}``) matching ``path``; None when no route matches."""
        from chalice.local import RouteMatcher

        try:
            return RouteMatcher(list(self.app().chalice_app.routes)).match_route(path).route
        except ValueError:
            return None

    def _route_methods(self, path: str) -> list[str] | None:
        """The methods the route matching ``path`` has; None when no route matches."""
        route = self._route(path)
        return None if route is None else sorted(self.app().chalice_app.routes[route])

    def wait_api_idle(self, timeout: float) -> bool:
        """Wait until the local API is handling no request (e.g. a notification handler has
        finished what it does after its write). False when it is still busy after ``timeout``."""
        with self._busy:
            return self._busy.wait_for(lambda: self._in_flight == 0, timeout)

    def _start_driver(self) -> None:
        from devstack.driver import Driver

        self.driver = Driver(self.handlers(), self.sqs(), self.queue_url, self.queue_arn, REGION,
                             self.cfg.poll_interval, recon_queue=(self.recon_queue_url, self.recon_queue_arn),
                             daily=self.handlers().RECON_CRON,
                             complaint_interval=self.cfg.complaint_sweep_interval).start()

    def handlers(self):
        """The app module, whose ``restore`` and ``poll`` functions are the Lambda handlers."""
        import importlib

        self.app()
        return importlib.import_module("app")

    def admin_token(self, subject: str = "admin") -> str:
        from chalicelib.adapters import auth

        return auth.issue("admin", subject)

    def user_token(self, user_id: str) -> str:
        from chalicelib.adapters import auth

        return auth.issue("user", user_id)
