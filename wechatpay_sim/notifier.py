"""Timers and notification delivery (signed, AES-GCM encrypted, retried)."""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Callable

import requests

from .crypto import aes_gcm_encrypt, rfc3339, signed_headers, signtest_signature

log = logging.getLogger("wechatpay_sim")

REFUND_EVENTS = {
    "SUCCESS": ("REFUND.SUCCESS", "退款成功"),
    "CLOSED": ("REFUND.CLOSED", "退款关闭"),
    "ABNORMAL": ("REFUND.ABNORMAL", "退款异常"),
}


class Timers:
    """Daemon timers that can all be cancelled at once (simulator stop / reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timers: set[threading.Timer] = set()
        self._stopped = False

    def start(self) -> None:
        with self._lock:
            self._stopped = False

    def call_later(self, delay: float, fn: Callable, *args) -> None:
        with self._lock:
            if self._stopped:
                return
            timer = threading.Timer(max(0.0, delay), self._run, args=(fn, args))
            timer.daemon = True
            self._timers.add(timer)
        timer.start()

    def _run(self, fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        except Exception:  # a timer must never die silently without a trace
            log.exception("simulator task %s failed", getattr(fn, "__name__", fn))
        finally:
            with self._lock:
                self._timers.discard(threading.current_thread())  # type: ignore[arg-type]

    def cancel_all(self) -> None:
        with self._lock:
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self.cancel_all()


@dataclass
class Notification:
    id: str
    event_type: str
    url: str
    body: bytes
    out_refund_no: str | None = None
    out_trade_no: str | None = None
    key_mode: str | None = None  # public_key | certificate; None: the simulator's notification mode
    complaint_id: str | None = None


@dataclass
class DeliveryRecord:
    id: str
    event_type: str
    url: str
    kind: str  # notify | redeliver | stale | bad_signature | probe | payment | complaint
    attempt: int
    result: int | str  # HTTP status, or "dropped" / "error: ..."
    at: float
    out_refund_no: str | None = None
    out_trade_no: str | None = None
    serial: str | None = None  # the Wechatpay-Serial it was signed under
    complaint_id: str | None = None

    @property
    def ok(self) -> bool:
        return isinstance(self.result, int) and 200 <= self.result < 300


class Notifier:
    def __init__(
        self,
        *,
        apiv3_key: str,
        signer: Callable[[str | None], tuple[object, str]],
        timers: Timers,
        retry_schedule: tuple[float, ...],
        timeout: float = 5.0,
    ) -> None:
        self._apiv3_key = apiv3_key
        self._signer = signer  # key mode (None: current notification mode) -> (private key, serial)
        self._timers = timers
        self.retry_schedule = tuple(retry_schedule)
        self.timeout = timeout
        self.copies = 1
        self.drop = False
        self._lock = threading.Lock()
        self._records: list[DeliveryRecord] = []
        self._last_by_refund: dict[str, Notification] = {}

    # ---- building --------------------------------------------------------
    def envelope(self, event_type: str, summary: str, original_type: str, resource: dict) -> tuple[str, bytes]:
        plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
        nonce, ciphertext = aes_gcm_encrypt(self._apiv3_key, plaintext, original_type)
        event_id = str(uuid.uuid4())
        body = {
            "id": event_id,
            "create_time": rfc3339(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": original_type,
                "nonce": nonce,
            },
        }
        return event_id, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def refund_notification(self, url: str, status: str, resource: dict, *, key_mode: str | None = None) -> Notification:
        event_type, summary = REFUND_EVENTS[status]
        event_id, body = self.envelope(event_type, summary, "refund", resource)
        note = Notification(event_id, event_type, url, body, out_refund_no=resource["out_refund_no"], key_mode=key_mode)
        with self._lock:
            self._last_by_refund[note.out_refund_no] = note
        return note

    def payment_notification(self, url: str, resource: dict, *, key_mode: str | None = None) -> Notification:
        event_id, body = self.envelope("TRANSACTION.SUCCESS", "支付成功", "transaction", resource)
        return Notification(
            event_id, "TRANSACTION.SUCCESS", url, body, out_trade_no=resource["out_trade_no"], key_mode=key_mode
        )

    def complaint_notification(self, url: str, event_type: str, summary: str, resource: dict, *,
                               out_trade_no: str | None = None) -> Notification:
        """COMPLAINT.CREATE / COMPLAINT.STATE_CHANGE: the refund envelope, original_type "complaint"."""
        event_id, body = self.envelope(event_type, summary, "complaint", resource)
        return Notification(event_id, event_type, url, body, out_trade_no=out_trade_no,
                            complaint_id=resource["complaint_id"])

    def last_for_refund(self, out_refund_no: str) -> Notification | None:
        with self._lock:
            return self._last_by_refund.get(out_refund_no)

    # ---- sending ---------------------------------------------------------
    def send_once(
        self,
        note: Notification,
        *,
        kind: str,
        attempt: int = 1,
        timestamp: int | None = None,
        signature: str | None = None,
        key=None,
        key_mode: str | None = None,
    ) -> int | str:
        """One POST; returns the receiver's HTTP status or an error string.

        Signed in ``key_mode`` (else the notification's own, else the simulator's current
        notification mode); ``key`` replaces the private key (a forgery) under the same serial.
        """
        own_key, serial = self._signer(key_mode or note.key_mode)
        headers = signed_headers(key or own_key, serial, note.body, timestamp=timestamp, signature=signature)
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = "Mozilla/4.0 (wechatpay-sim)"
        headers["Request-ID"] = uuid.uuid4().hex
        try:
            result: int | str = requests.post(note.url, data=note.body, headers=headers, timeout=self.timeout).status_code
        except requests.RequestException as exc:
            result = f"error: {type(exc).__name__}"
        self._record(note, kind, attempt, result, serial)
        return result

    def deliver(self, note: Notification, *, kind: str = "notify", drop: bool | None = None) -> None:
        """Asynchronous delivery with retries (``copies`` parallel chains); ``drop`` (default:
        the ``drop`` setting) records the notification as dropped instead of sending it."""
        if self.drop if drop is None else drop:
            self._record(note, kind, 0, "dropped")
            return
        for _ in range(max(1, self.copies)):
            self._timers.call_later(0, self._attempt, note, kind, 1)

    def deliver_now(self, note: Notification, *, kind: str, retry: bool = True) -> int | str:
        """First attempt in the caller's thread (its result is returned), retries in the background."""
        result = self.send_once(note, kind=kind, attempt=1)
        ok = isinstance(result, int) and 200 <= result < 300
        if not ok and retry and self.retry_schedule:
            self._timers.call_later(self.retry_schedule[0], self._attempt, note, kind, 2)
        return result

    def _attempt(self, note: Notification, kind: str, attempt: int) -> None:
        result = self.send_once(note, kind=kind, attempt=attempt)
        ok = isinstance(result, int) and 200 <= result < 300
        schedule = self.retry_schedule
        if not ok and attempt <= len(schedule):
            self._timers.call_later(schedule[attempt - 1], self._attempt, note, kind, attempt + 1)

    def probe(self, url: str) -> int | str:
        """A SIGNTEST probe: WeChat checks that the merchant rejects it."""
        _, body = self.envelope("REFUND.SUCCESS", "退款成功", "refund", {"probe": True})
        note = Notification("probe-" + uuid.uuid4().hex, "REFUND.SUCCESS", url, body)
        return self.send_once(note, kind="probe", signature=signtest_signature())

    # ---- records ---------------------------------------------------------
    def _record(self, note: Notification, kind: str, attempt: int, result: int | str, serial: str | None = None) -> None:
        rec = DeliveryRecord(
            id=note.id,
            event_type=note.event_type,
            url=note.url,
            kind=kind,
            attempt=attempt,
            result=result,
            at=time.time(),
            out_refund_no=note.out_refund_no,
            out_trade_no=note.out_trade_no,
            serial=serial,
            complaint_id=note.complaint_id,
        )
        with self._lock:
            self._records.append(rec)
        log.info("notification %s %s -> %s: %s", note.event_type, kind, note.url, result)

    def records(self) -> list[dict]:
        with self._lock:
            return [asdict(r) | {"ok": r.ok} for r in self._records]

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._last_by_refund.clear()
