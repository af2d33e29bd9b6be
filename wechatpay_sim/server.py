"""The simulator: a threaded HTTP server speaking WeChat Pay API v3 plus a /sim control API."""
from __future__ import annotations

import logging
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

from cryptography import x509

from .crypto import aes_gcm_encrypt, parse_authorization, request_message, rfc3339, rsa_oaep_decrypt, rsa_verify
from .bill_api import DEFAULT_READY_HOUR, BillDesk
from .control import parse_moment
from .handler import Handler
from .keys import KeySet, new_rsa_key
from .notifier import Notification, Notifier, Timers
from .records import OUTCOMES, Refund
from .state import (
    DEFAULT_REFUND_INTERVAL_SECONDS,
    MERCHANT_CARD_ACCOUNT,
    MERCHANT_CARD_CHANNEL,
    USER_CARD_CHANNEL,
    ApiError,
    Store,
)
from . import complaint_desk
from .complaint_desk import ComplaintDesk
from .miniprogram import MiniProgram

log = logging.getLogger("wechatpay_sim")

AUTH_MAX_SKEW_SECONDS = 300
# public_key: WeChat Pay public key only; certificate: platform certificate only; both: a
# key-mode switch period (either serial is accepted and used, /v3/certificates is served).
KEY_MODES = ("public_key", "certificate", "both")
# How notifications are signed: auto (public key unless certificate-only), one mode, or
# alternate (each delivery attempt in turn, as during a switch).
NOTIFY_KEY_MODES = ("auto", "public_key", "certificate", "alternate")
SETTINGS = (
    "default_outcome",
    "outcome_delay",
    "notify_retry_schedule",
    "notification_copies",
    "drop_notifications",
    "bad_response_signature",
    "missing_signature_type",
    "key_mode",
    "default_notify_url",
    "notify_timeout",
    "notify_key_mode",
    "refund_interval_seconds",
    "bill_ready_hour",
    "bill_format",
    "drop_complaint_notifications",
    "ledger_time_offset_seconds",
)


class Simulator:
    """A local WeChat Pay v3 endpoint for refunds and notifications.

    Python control methods mirror the HTTP control API under ``/sim/`` (see
    README.md) so in-process tests need no HTTP round trip to steer it.
    """

    def __init__(
        self,
        keyset: KeySet,
        host: str = "127.0.0.1",
        port: int = 0,
        outcome_delay: float = 1.0,
        notify_retry_schedule: tuple[float, ...] = (1, 2, 4, 8),
        notify_timeout: float = 5.0,
        key_mode: str = "public_key",
        default_notify_url: str | None = None,
        refund_interval_seconds: float = DEFAULT_REFUND_INTERVAL_SECONDS,
        bill_ready_hour: int | None = DEFAULT_READY_HOUR,
    ) -> None:
        if key_mode not in KEY_MODES:
            raise ValueError(f"key_mode must be one of {KEY_MODES}")
        self.keyset = keyset
        self.host = host
        self.port = port
        self._defaults = {
            "default_outcome": "SUCCESS",
            "outcome_delay": float(outcome_delay),
            "notify_retry_schedule": tuple(float(s) for s in notify_retry_schedule),
            "notification_copies": 1,
            "drop_notifications": False,
            "bad_response_signature": False,
            "missing_signature_type": False,
            "key_mode": key_mode,
            "default_notify_url": default_notify_url,
            "notify_timeout": float(notify_timeout),
            "notify_key_mode": "auto",
            "refund_interval_seconds": float(refund_interval_seconds),
            "bill_ready_hour": bill_ready_hour,
            "bill_format": "current",
            "drop_complaint_notifications": False,
            "ledger_time_offset_seconds": 0.0,
        }
        self.store = Store(keyset.mchid)
        self.bills = BillDesk(self.store, keyset.appid, keyset.mchid, lambda: self.base_url)
        self.timers = Timers()
        self._alternate = 0
        self._alternate_lock = threading.Lock()
        self._certificate_calls = 0  # GET /v3/certificates answered since the last reset
        self._certificate_lock = threading.Lock()
        self.notifier = Notifier(
            apiv3_key=keyset.apiv3_key,
            signer=self.notification_signer,
            timers=self.timers,
            retry_schedule=self._defaults["notify_retry_schedule"],
        )
        self.complaints = ComplaintDesk(self)  # 消费者投诉2.0 (complaint_desk.py)
        self.miniprogram = MiniProgram(keyset.appid)  # access token + subscription messages (miniprogram.py)
        self._stopping = threading.Event()
        self._forger_lock = threading.Lock()
        self._forger = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.configure(**self._defaults)

    # ---- lifecycle -------------------------------------------------------
    def start(self) -> "Simulator":
        if self._httpd is not None:
            raise RuntimeError("simulator already started")
        self._stopping.clear()
        self.timers.start()
        httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        httpd.socket.listen(128)  # backlog of 128, as the AWS endpoint: the default 5 resets bursts of clients
        httpd.daemon_threads = True
        httpd.simulator = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="wechatpay-sim", daemon=True
        )
        self._thread.start()
        log.info("WeChat Pay simulator listening on %s", self.base_url)
        return self

    def serve_forever(self) -> None:
        """Run in the foreground (``python -m wechatpay_sim``)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self.timers.stop()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def platform_serial(self) -> str:
        """What goes into Wechatpay-Serial by default: the public key id, or the certificate
        serial in certificate mode."""
        return self.signer("public_key" if self.key_mode == "public_key" else "certificate")[1]

    def signer(self, mode: str) -> tuple[object, str]:
        """(private key, Wechatpay-Serial) of a key mode."""
        if mode == "certificate":
            return self.keyset.platform_cert_private_key, self.keyset.platform_cert_serial
        return self.keyset.platform_private_key, self.keyset.public_key_id

    def response_signer(self, request_serial: str | None) -> tuple[object, str]:
        """Answers are signed in the mode the request's Wechatpay-Serial names (as WeChat
        does during a switch); without one, in the merchant's mode (certificate when both:
        the SDKs send no serial in certificate mode)."""
        if request_serial:
            if request_serial == self.keyset.public_key_id:
                return self.signer("public_key")
            if self.keyset.is_cert_serial(request_serial):
                return self.signer("certificate")
        return self.signer("public_key" if self.key_mode == "public_key" else "certificate")

    def notification_signer(self, mode: str | None) -> tuple[object, str]:
        if mode is None:
            mode = self.notify_key_mode
            if mode == "alternate":
                with self._alternate_lock:
                    self._alternate += 1
                    mode = ("public_key", "certificate")[self._alternate % 2]
            elif mode == "auto":
                mode = "certificate" if self.key_mode == "certificate" else "public_key"
        if mode not in ("public_key", "certificate"):
            raise ApiError(400, "PARAM_ERROR", "key_mode must be public_key or certificate")
        return self.signer(mode)

    def forger_key(self):
        """A key WeChat does not own, for forged signatures."""
        with self._forger_lock:
            if self._forger is None:
                self._forger = new_rsa_key()
            return self._forger

    # ---- settings and state ---------------------------------------------
    def configure(self, **settings) -> dict:
        """Change sticky settings (see SETTINGS); returns all of them."""
        unknown = set(settings) - set(SETTINGS)
        if unknown:
            raise ApiError(400, "PARAM_ERROR", f"unknown settings {sorted(unknown)}; known: {list(SETTINGS)}")
        if "default_outcome" in settings:
            if settings["default_outcome"] not in OUTCOMES:
                raise ApiError(400, "PARAM_ERROR", f"default_outcome must be one of {OUTCOMES}")
            self.store.default_outcome = settings["default_outcome"]
        if "key_mode" in settings and settings["key_mode"] not in KEY_MODES:
            raise ApiError(400, "PARAM_ERROR", f"key_mode must be one of {KEY_MODES}")
        if "notify_key_mode" in settings and settings["notify_key_mode"] not in NOTIFY_KEY_MODES:
            raise ApiError(400, "PARAM_ERROR", f"notify_key_mode must be one of {NOTIFY_KEY_MODES}")
        if "refund_interval_seconds" in settings:
            interval = float(settings["refund_interval_seconds"])
            if interval < 0:
                raise ApiError(400, "PARAM_ERROR", "refund_interval_seconds must not be negative")
            self.store.refund_interval_seconds = interval
        if "bill_ready_hour" in settings:
            self.bills.set_ready_hour(settings["bill_ready_hour"])
        if "bill_format" in settings:
            self.bills.set_format(settings["bill_format"])
        if "notify_key_mode" in settings:
            self.notify_key_mode = settings["notify_key_mode"]
        if "outcome_delay" in settings:
            self.outcome_delay = float(settings["outcome_delay"])
        if "notify_retry_schedule" in settings:
            self.notifier.retry_schedule = tuple(float(s) for s in settings["notify_retry_schedule"])
        if "notification_copies" in settings:
            self.notifier.copies = max(1, int(settings["notification_copies"]))
        if "drop_notifications" in settings:
            self.notifier.drop = bool(settings["drop_notifications"])
        if "ledger_time_offset_seconds" in settings:
            self.store.time_offset = float(settings["ledger_time_offset_seconds"])
        if "drop_complaint_notifications" in settings:
            self.complaints.drop_notifications = bool(settings["drop_complaint_notifications"])
        if "notify_timeout" in settings:
            self.notifier.timeout = float(settings["notify_timeout"])
        for name in ("bad_response_signature", "missing_signature_type"):
            if name in settings:
                setattr(self, name, bool(settings[name]))
        if "key_mode" in settings:
            self.key_mode = settings["key_mode"]
        if "default_notify_url" in settings:
            self.default_notify_url = settings["default_notify_url"] or None
        return self.settings()

    def settings(self) -> dict:
        return {
            "default_outcome": self.store.default_outcome,
            "outcome_delay": self.outcome_delay,
            "notify_retry_schedule": list(self.notifier.retry_schedule),
            "notification_copies": self.notifier.copies,
            "drop_notifications": self.notifier.drop,
            "bad_response_signature": self.bad_response_signature,
            "missing_signature_type": self.missing_signature_type,
            "key_mode": self.key_mode,
            "default_notify_url": self.default_notify_url,
            "notify_timeout": self.notifier.timeout,
            "notify_key_mode": self.notify_key_mode,
            "refund_interval_seconds": self.store.refund_interval_seconds,
            "bill_ready_hour": self.bills.ready_hour,
            "bill_format": self.bills.format,
            "drop_complaint_notifications": self.complaints.drop_notifications,
            "ledger_time_offset_seconds": self.store.time_offset,
        }

    def reset(self) -> None:
        """Forget orders, refunds, scenarios, deliveries; restore constructor settings."""
        self.timers.cancel_all()
        self.store.reset()
        self.complaints.reset()
        self.miniprogram.reset()
        self.notifier.reset()
        self.bills.forget_downloads()
        with self._certificate_lock:
            self._certificate_calls = 0
        self.configure(**self._defaults)

    def register_transaction(
        self,
        total: int,
        out_trade_no: str | None = None,
        *,
        transaction_id: str | None = None,
        paid_at: float | None = None,
        openid: str | None = None,
        payer_total: int | None = None,
        state: str = "SUCCESS",
        appid: str | None = None,
        description: str | None = None,
    ) -> dict:
        """Record a paid order (total in fen; ``payer_total`` < total when a coupon paid the
        rest), or with ``state="NOTPAY"`` one awaiting payment; returns it. ``appid``: the
        order came through another app of this merchant number (its lines on the bill, its
        payment query and notification carry that appid); ``description`` its 商品名称."""
        return self.store.register_transaction(
            out_trade_no or "T" + uuid.uuid4().hex[:24],
            total,
            transaction_id=transaction_id,
            paid_at=paid_at,
            openid=openid,
            payer_total=payer_total,
            state=state,
            appid=appid,
            description=description,
        )

    def pay(
        self,
        out_trade_no: str,
        total: int | None = None,
        *,
        payer_total: int | None = None,
        url: str | None = None,
        notify: bool = True,
        key_mode: str | None = None,
    ) -> dict:
        """The payer pays ``out_trade_no`` (known and NOTPAY, or unknown: created paid; WeChat
        pays any order it is asked to, e.g. one the merchant has cancelled meanwhile). With
        ``url`` and ``notify`` a TRANSACTION.SUCCESS goes there; ``notify=False`` is a lost
        notification: the payment is SUCCESS at WeChat and nobody is told."""
        txn = self.store.pay(out_trade_no, total, payer_total=payer_total)
        result: dict = {"transaction": txn, "notified": None}
        if url and notify:
            result["notified"] = self.notify_payment(out_trade_no, url, key_mode=key_mode)
        return result

    def close_transaction(self, out_trade_no: str) -> dict:
        return self.store.close_transaction(out_trade_no)

    def foreign_refund(
        self,
        out_trade_no: str,
        amount: int,
        *,
        out_refund_no: str | None = None,
        url: str | None = None,
        status: str = "SUCCESS",
        key_mode: str | None = None,
    ) -> dict:
        """A refund this merchant's service never asked for (made on the merchant platform,
        say): recorded, settled at once, and its REFUND.* notification sent to ``url``."""
        refund = self.store.foreign_refund(out_trade_no, amount, out_refund_no=out_refund_no, status=status)
        self.complaints.refund_settled(refund)
        result: dict = {"refund": refund.to_control(), "notified": None}
        if url:
            note = self.notifier.refund_notification(
                url, refund.status, refund.to_resource(self.keyset.mchid), key_mode=key_mode
            )
            result["notified"] = self.notifier.deliver_now(note, kind="foreign")
        return result

    def add_bill_fault(self, **fault) -> list[dict]:
        """Change the trade bill as served (see wechatpay_sim/bill.py FAULT_KINDS)."""
        return self.store.add_bill_fault(fault)

    def bill_faults(self) -> list[dict]:
        return self.store.bill_faults()

    def clear_bill_faults(self) -> None:
        self.store.clear_bill_faults()

    def transactions(self) -> list[dict]:
        return self.store.transactions()

    def refunds(self) -> list[dict]:
        return self.store.refunds()

    def refund(self, out_refund_no: str) -> dict | None:
        return self.store.refund(out_refund_no)

    def create_calls(self, out_refund_no: str | None = None) -> int:
        """Create requests that reached the simulator (for one out_refund_no, or all)."""
        return self.store.create_calls(out_refund_no)

    def push_scenario(self, kind: str, *, op: str = "create", count: int = 1, seconds: float = 0.0) -> None:
        """Queue a one-shot switch for the next ``count`` calls of ``op``."""
        self.store.push_scenario(kind, op=op, count=count, seconds=seconds)

    def queue_outcome(self, outcome: str, count: int = 1) -> None:
        """Outcome (SUCCESS/CLOSED/ABNORMAL) of the next ``count`` new refunds."""
        self.store.queue_outcome(outcome, count)

    def clear_scenarios(self) -> None:
        self.store.clear_scenarios()

    def scenarios(self) -> dict:
        return self.store.scenarios()

    def notifications(self) -> list[dict]:
        """Delivery log: one record per attempt."""
        return self.notifier.records()

    # ---- outcomes and notifications --------------------------------------
    def complete(self, out_refund_no: str, outcome: str | None = None, at: float | str | None = None) -> dict | None:
        """Settle a PROCESSING refund (notification included, sent now); None if it was not
        PROCESSING. ``at`` (RFC 3339 with offset, or epoch seconds; default now) is when it
        settled: e.g. the next day, for a refund accepted today (its bill line stays PROCESSING)."""
        settled = self.store.settle(out_refund_no, outcome, at=parse_moment(at))
        if settled is not None:
            self._notify_refund(settled)
        return settled.to_control() if settled else None

    def redeliver(self, out_refund_no: str, url: str | None = None, key_mode: str | None = None) -> int | str:
        """Send the refund's last notification again (same id and body): a duplicate.
        ``key_mode`` signs it with the public key or the platform certificate."""
        return self.notifier.send_once(
            self._notification_for(out_refund_no, url), kind="redeliver", key_mode=key_mode
        )

    def send_stale_notification(self, out_refund_no: str, age_seconds: float = 600, url: str | None = None) -> int | str:
        """The last notification, validly signed but with a timestamp ``age_seconds`` old
        (negative: in the future)."""
        note = self._notification_for(out_refund_no, url)
        return self.notifier.send_once(note, kind="stale", timestamp=int(time.time() - age_seconds))

    def send_bad_signature_notification(self, out_refund_no: str, url: str | None = None) -> int | str:
        """The last notification signed with a key WeChat does not own."""
        note = self._notification_for(out_refund_no, url)
        return self.notifier.send_once(note, kind="bad_signature", key=self.forger_key())

    def send_probe(self, url: str) -> int | str:
        """A SIGNTEST probe; a correct receiver answers non-2xx."""
        return self.notifier.probe(url)

    def notify_payment(
        self,
        out_trade_no: str,
        url: str,
        *,
        retry: bool = True,
        total: int | None = None,
        payer_total: int | None = None,
        appid: str | None = None,
        mchid: str | None = None,
        key_mode: str | None = None,
    ) -> int | str:
        """Deliver TRANSACTION.SUCCESS for a paid order; returns the first attempt's result
        and, with ``retry``, keeps retrying in the background on failure. ``total`` /
        ``payer_total`` / ``appid`` / ``mchid`` replace the true values in the notification
        (a mismatching amount, another app or merchant); ``key_mode`` picks the signing key."""
        txn = self.store.transaction_object(out_trade_no)
        if txn is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        if txn.state != "SUCCESS":
            raise ApiError(409, "ORDER_NOT_PAID", f"the order is {txn.state}: pay it first")
        resource = txn.payment_resource(self.keyset.appid, self.keyset.mchid, "SUCCESS")
        if total is not None:
            resource["amount"]["total"] = int(total)
            resource["amount"]["payer_total"] = int(total if payer_total is None else payer_total)
        elif payer_total is not None:
            resource["amount"]["payer_total"] = int(payer_total)
        if appid is not None:
            resource["appid"] = appid
        if mchid is not None:
            resource["mchid"] = mchid
        note = self.notifier.payment_notification(url, resource, key_mode=key_mode)
        return self.notifier.deliver_now(note, kind="payment", retry=retry)

    def _notification_for(self, out_refund_no: str, url: str | None) -> Notification:
        last = self.notifier.last_for_refund(out_refund_no)
        if last is not None and (url is None or url == last.url):
            return last
        refund = self.store.get(out_refund_no)
        if refund is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        target = url or refund.notify_url or self.default_notify_url
        if refund.status == "PROCESSING" or not target:
            raise ApiError(409, "NO_NOTIFICATION", "refund has no outcome or no notify_url yet")
        return self.notifier.refund_notification(target, refund.status, refund.to_resource(self.keyset.mchid))

    def _schedule_outcome(self, refund: Refund) -> None:
        self.timers.call_later(self.outcome_delay, self._settle_timer, refund.out_refund_no, refund.version)

    def _settle_timer(self, out_refund_no: str, version: int) -> None:
        try:
            settled = self.store.settle(out_refund_no, version=version)
        except ApiError:  # reset in between
            return
        if settled is not None:
            self._notify_refund(settled)

    def _notify_refund(self, refund: Refund) -> None:
        self.complaints.refund_settled(refund)
        url = refund.notify_url or self.default_notify_url
        if not url:
            return
        note = self.notifier.refund_notification(url, refund.status, refund.to_resource(self.keyset.mchid))
        self.notifier.deliver(note)

    # ---- the v3 API ------------------------------------------------------
    def authenticate(self, method: str, raw_path: str, headers, body: bytes) -> None:
        params = parse_authorization(headers.get("Authorization"))
        if not params:
            raise ApiError(401, "SIGN_ERROR", "Authorization header missing or not WECHATPAY2-SHA256-RSA2048")
        if params.get("mchid") != self.keyset.mchid:
            raise ApiError(401, "SIGN_ERROR", "mchid in Authorization does not match")
        if (params.get("serial_no") or "").upper() != self.keyset.merchant_serial:
            raise ApiError(401, "SIGN_ERROR", "merchant certificate serial_no does not match")
        try:
            timestamp = int(params.get("timestamp", ""))
        except ValueError:
            raise ApiError(401, "SIGN_ERROR", "timestamp missing or not an integer") from None
        if abs(time.time() - timestamp) > AUTH_MAX_SKEW_SECONDS:
            raise ApiError(401, "SIGN_ERROR", "timestamp expired")
        message = request_message(method, raw_path, str(timestamp), params.get("nonce_str", ""), body)
        if not rsa_verify(self.keyset.merchant_public_key, message, params.get("signature", "")):
            raise ApiError(401, "SIGN_ERROR", "签名错误: signature verification failed")
        serial = headers.get("Wechatpay-Serial")
        if serial is not None and not (serial == self.keyset.public_key_id or self.keyset.is_cert_serial(serial)):
            raise ApiError(400, "PARAM_ERROR", "Wechatpay-Serial is not a platform key of this merchant")

    def api_create(self, payload, immediate: str | None = None) -> tuple[int, dict]:
        """``immediate`` (SUCCESS/CLOSED): the new refund is settled before the answer."""
        self.store.count_create_call(payload)
        refund, created = self.store.create_refund(payload)
        if created and immediate:
            settled = self.store.settle(refund.out_refund_no, immediate)
            if settled is not None:
                self._notify_refund(settled)
                refund = settled
        elif created:
            self._schedule_outcome(refund)
        return 200, refund.to_api()

    def api_query_payment(self, kind: str, number: str, query: dict) -> tuple[int, dict]:
        mchid = (query.get("mchid") or [None])[0]
        if not mchid:
            raise ApiError(400, "PARAM_ERROR", "mchid is required")
        if mchid != self.keyset.mchid:
            raise ApiError(400, "PARAM_ERROR", "mchid does not match the requesting merchant")
        if kind == "id":
            return 200, self.store.query_transaction(self.keyset.appid, transaction_id=number)
        return 200, self.store.query_transaction(self.keyset.appid, out_trade_no=number)

    def api_query(self, out_refund_no: str) -> tuple[int, dict]:
        return 200, self.store.query_refund(out_refund_no).to_api()

    def api_abnormal(self, refund_id: str, payload, headers) -> tuple[int, dict]:
        if not isinstance(payload, dict):
            raise ApiError(400, "PARAM_ERROR", "body must be a JSON object")
        kind = payload.get("type")
        if kind == "USER_BANK_CARD":
            missing = [f for f in ("bank_type", "bank_account", "real_name") if not payload.get(f)]
            if missing:
                raise ApiError(400, "PARAM_ERROR", f"USER_BANK_CARD requires {', '.join(missing)}")
            if not headers.get("Wechatpay-Serial"):
                raise ApiError(400, "PARAM_ERROR", "Wechatpay-Serial header is required with encrypted fields")
            # encrypted for the key the Wechatpay-Serial names
            key = self.response_signer(headers.get("Wechatpay-Serial"))[0]
            try:
                account_no = rsa_oaep_decrypt(key, payload["bank_account"])
                rsa_oaep_decrypt(key, payload["real_name"])
            except Exception:
                raise ApiError(400, "PARAM_ERROR", "bank_account/real_name cannot be decrypted") from None
            account, channel = f"{payload['bank_type']}银行卡{account_no[-4:]}", USER_CARD_CHANNEL
        elif kind == "MERCHANT_BANK_CARD":
            account, channel = MERCHANT_CARD_ACCOUNT, MERCHANT_CARD_CHANNEL
        else:
            raise ApiError(400, "PARAM_ERROR", "type must be USER_BANK_CARD or MERCHANT_BANK_CARD")
        refund = self.store.apply_abnormal(refund_id, payload, account=account, channel=channel)
        self._schedule_outcome(refund)
        return 200, refund.to_api()

    def certificate_calls(self) -> int:
        """How many times the certificate list was asked for since the last reset."""
        with self._certificate_lock:
            return self._certificate_calls

    def api_certificates(self) -> tuple[int, dict]:
        with self._certificate_lock:
            self._certificate_calls += 1
        if self.key_mode == "public_key":  # a public-key merchant has no platform certificate
            return 200, {"data": []}
        nonce, ciphertext = aes_gcm_encrypt(self.keyset.apiv3_key, self.keyset.platform_cert_pem.encode(), "certificate")
        cert = x509.load_pem_x509_certificate(self.keyset.platform_cert_pem.encode())
        return 200, {
            "data": [
                {
                    "serial_no": self.keyset.platform_cert_serial,
                    "effective_time": rfc3339(cert.not_valid_before_utc.timestamp()),
                    "expire_time": rfc3339(cert.not_valid_after_utc.timestamp()),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": ciphertext,
                    },
                }
            ]
        }

    def sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


__all__ = ["Simulator", "ApiError"]
