"""Test helpers: throwaway WeChat Pay keys, a running simulator and a notification receiver.

Typical use (pytest)::

    from tests.wechat_fixtures import wechat_sim, wechat_sim_session  # noqa: F401

    def test_something(wechat_sim):
        order = wechat_sim.paid_order(1000)
        gw = wechat_sim.gateway()
        gw.create_refund(out_refund_no="R1", amount=100, total=1000, out_trade_no=order["out_trade_no"])

or without pytest: ``with running_simulator() as handle: ...``.

By default refund and payment notifications go to ``handle.receiver`` (a tiny
HTTP server that records what it gets); point ``refund_notify_url`` at the
service instead for end-to-end runs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import socket
import tempfile
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

from chalicelib.config import WechatSettings
from wechatpay_sim import KeySet, Simulator, generate_keyset
from wechatpay_sim.keys import new_rsa_key, private_pem

OUTCOME_DELAY = 0.2  # seconds a refund stays PROCESSING in tests
RETRY_SCHEDULE = (0.1, 0.2)  # notification retries in tests
TIMEOUT_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def throwaway_private_key_pem() -> str:
    """A PKCS#8 merchant key nobody registered (for SIGN_ERROR tests)."""
    return private_pem(new_rsa_key())


_keyset_lock = threading.Lock()
_keyset: KeySet | None = None


def shared_keyset() -> KeySet:
    """One throwaway key set per test process (RSA generation is the slow part)."""
    global _keyset
    with _keyset_lock:
        if _keyset is None:
            _keyset = generate_keyset(tempfile.mkdtemp(prefix="wechatpay-keys-"))
        return _keyset


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


# --------------------------------------------------------------------------
# notification receiver


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]  # as sent (canonical case)
    body: bytes  # raw bytes, as parse_notification needs them

    @property
    def lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}


class NotificationReceiver:
    """Records POSTs; answers with queued statuses (``respond_with``), then ``default_status``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.default_status = 200
        self._statuses: deque[int] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver._statuses.popleft() if receiver._statuses else receiver.default_status
                payload = b"" if status in (200, 204) else b'{"code":"FAIL","message":"test"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str = "/notify") -> str:
        return self.base_url + path

    def respond_with(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    def requests(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]

    def wait_for(self, count: int = 1, path: str | None = None, timeout: float = 5.0) -> list[Received]:
        wait_until(lambda: len(self.requests(path)) >= count, timeout)
        return self.requests(path)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self._statuses.clear()
            self.default_status = 200

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --------------------------------------------------------------------------
# simulator handle


@dataclasses.dataclass
class SimHandle:
    """A running simulator plus what a test needs around it.

    Unknown attributes are looked up on the Simulator, so ``handle.push_scenario(...)``,
    ``handle.refunds()``, ``handle.complete(...)`` etc. work directly.
    """

    sim: Simulator
    keyset: KeySet
    receiver: NotificationReceiver
    settings: WechatSettings  # public-key mode, aimed at the simulator

    REFUND_PATH = "/refund-notify"
    PAYMENT_PATH = "/payment-notify"

    @property
    def base_url(self) -> str:
        return self.sim.base_url

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "sim":
            raise AttributeError(name)
        return getattr(self.sim, name)

    def settings_with(self, **overrides: Any) -> WechatSettings:
        return dataclasses.replace(self.settings, **overrides)

    def certificate_mode_settings(self, cert_dir: str, **overrides: Any) -> WechatSettings:
        """Settings in platform-certificate mode (call ``sim.configure(key_mode="certificate")``)."""
        return self.settings_with(public_key=None, public_key_id=None, cert_dir=cert_dir, **overrides)

    def gateway(self, **overrides: Any):
        from chalicelib.adapters.wechat.gateway import WechatGateway

        return WechatGateway(self.settings_with(**overrides) if overrides else self.settings)

    def env(self, **overrides: str) -> dict[str, str]:
        """WECHAT_* environment for ``chalicelib.config.wechat_settings()`` (secrets as files)."""
        env = self.keyset.env()
        env.update(
            WECHAT_BASE_URL=self.sim.base_url,
            WECHAT_REFUND_NOTIFY_URL=self.settings.refund_notify_url,
            WECHAT_PAYMENT_NOTIFY_URL=self.settings.payment_notify_url,
            WECHAT_TIMEOUT_SECONDS=str(self.settings.timeout_seconds),
        )
        env.update(overrides)
        return env

    def sdk_client(self):
        """The bare wechatpayv3 client (public-key mode) aimed at the simulator, for the SDK calls
        the service's gateway does not wrap (complaints, images)."""
        from wechatpayv3 import WeChatPay, WeChatPayType

        client = WeChatPay(
            wechatpay_type=WeChatPayType.JSAPI,
            mchid=self.keyset.mchid,
            private_key=self.keyset.merchant_private_key_pem,
            cert_serial_no=self.keyset.merchant_serial,
            appid=self.keyset.appid,
            apiv3_key=self.keyset.apiv3_key,
            public_key=self.keyset.platform_public_key_pem,
            public_key_id=self.keyset.public_key_id,
            timeout=self.settings.timeout_seconds,
        )
        client._core._gate_way = self.sim.base_url  # the SDK hard-codes api.mch.weixin.qq.com
        return client

    def paid_order(self, total: int, out_trade_no: str | None = None, **kwargs: Any) -> dict:
        """Register a paid order of ``total`` fen; returns out_trade_no, transaction_id, ..."""
        return self.sim.register_transaction(total, out_trade_no, **kwargs)

    def reset(self) -> None:
        self.sim.reset()
        self.receiver.clear()

    wait_until = staticmethod(wait_until)


@contextlib.contextmanager
def running_simulator(
    keyset: KeySet | None = None,
    *,
    outcome_delay: float = OUTCOME_DELAY,
    notify_retry_schedule: tuple[float, ...] = RETRY_SCHEDULE,
    key_mode: str = "public_key",
    refund_notify_url: str | None = None,
    payment_notify_url: str | None = None,
    timeout_seconds: float = TIMEOUT_SECONDS,
    port: int = 0,
    refund_interval_seconds: float = 0.0,
) -> Iterator[SimHandle]:
    """Start a simulator (and a receiver) on 127.0.0.1 in background threads."""
    keyset = keyset or shared_keyset()
    receiver = NotificationReceiver()
    sim = Simulator(
        keyset,
        "127.0.0.1",
        port,
        outcome_delay=outcome_delay,
        notify_retry_schedule=notify_retry_schedule,
        key_mode=key_mode,
        refund_interval_seconds=refund_interval_seconds,  # tests switch the one-minute rule on
    )
    sim.start()
    try:
        settings = WechatSettings(
            mchid=keyset.mchid,
            appid=keyset.appid,
            cert_serial_no=keyset.merchant_serial,
            private_key=keyset.merchant_private_key_pem,
            apiv3_key=keyset.apiv3_key,
            public_key=keyset.platform_public_key_pem,
            public_key_id=keyset.public_key_id,
            cert_dir=None,
            base_url=sim.base_url,
            refund_notify_url=refund_notify_url or receiver.url(SimHandle.REFUND_PATH),
            payment_notify_url=payment_notify_url or receiver.url(SimHandle.PAYMENT_PATH),
            timeout_seconds=timeout_seconds,
        )
        yield SimHandle(sim=sim, keyset=keyset, receiver=receiver, settings=settings)
    finally:
        sim.stop()
        receiver.stop()


# --------------------------------------------------------------------------
# pytest fixtures (import them into a conftest.py or a test module)


@pytest.fixture(scope="session")
def wechat_sim_session() -> Iterator[SimHandle]:
    with running_simulator() as handle:
        yield handle


@pytest.fixture
def wechat_sim(wechat_sim_session: SimHandle) -> Iterator[SimHandle]:
    """The session simulator, reset before and after each test (gateway cache too)."""
    from chalicelib.adapters.wechat.gateway import reset_gateway

    wechat_sim_session.reset()
    reset_gateway()
    yield wechat_sim_session
    wechat_sim_session.reset()
    reset_gateway()
