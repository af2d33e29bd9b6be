"""A WeChat Pay notification: its headers checked, its signature verified and its resource
decrypted (by the SDK, over the raw bytes), then its payload validated into a ``NotificationEvent``.

Decrypted notifications are never logged."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from chalicelib.log import get_logger, log_context

from .errors import InvalidNotification, translate_exception
from .keys import CERT_SERIAL, PlatformCertificates, trust
from .results import REFUND_EVENT_TYPES, NotificationEvent, PaymentResult, RefundResult

if TYPE_CHECKING:  # pragma: no cover
    from chalicelib.config import WechatSettings

log = get_logger(__package__)

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
SIGNTEST_PREFIX = "WECHATPAY/SIGNTEST/"
NOTIFICATION_HEADERS = (
    "wechatpay-signature",
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-serial",
    "wechatpay-signature-type",
)


def parse(
    settings: "WechatSettings",
    sdk: Callable[[], Any],
    headers: Mapping[str, Any],
    body: bytes,
    *,
    now: float | None = None,
    max_skew_seconds: int = 300,
    certificates: PlatformCertificates | None = None,
) -> NotificationEvent:
    """Verify and decrypt a notification (refund or payment).

    ``body`` must be the raw request bytes; ``sdk`` gives the SDK client, asked for only once
    the headers are acceptable. A notification signed with a platform certificate (certificate
    mode, or a key-mode switch while the public key is configured) is verified with the one
    ``certificates`` finds for its serial: configured, kept, or downloaded from WeChat.
    Raises ``InvalidNotification`` (answer 4xx) for anything that must be refused;
    ``OutcomeUnknown`` / ``GatewayMisconfigured`` for transient or configuration problems
    (answer 5xx so WeChat retries). The event type is not checked here.
    """
    h = {str(k).lower(): v for k, v in headers.items()}
    serial = _check_headers(settings, h, now=time.time() if now is None else now, max_skew_seconds=max_skew_seconds)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidNotification("MALFORMED", "body is not UTF-8") from None

    client = sdk()
    if serial != settings.public_key_id:
        # a platform certificate signed it: "while a merchant moves from platform certificates to the
        # WeChat Pay public key (or back), notifications may be signed with either" (wechatpay-v3.md,
        # key-mode switch). Found here, so the SDK never downloads certificates from inside a request.
        cert = (certificates or PlatformCertificates(settings)).find(serial)
        if cert is None:
            raise InvalidNotification("BAD_SIGNATURE", "no platform certificate has this Wechatpay-Serial")
        trust(client, cert)
    try:
        data = client.callback(h, raw)  # verifies over the raw bytes, then decrypts
    except Exception as exc:
        err = translate_exception(exc, "notification")
        log.warning("wechat notification refused: %s %s", err.code, err.message)
        raise err from exc
    if data is None:
        raise InvalidNotification("BAD_SIGNATURE", "signature verification or decryption failed")
    return _validate(settings, data, serial)


def _check_headers(settings: "WechatSettings", h: dict[str, Any], *, now: float, max_skew_seconds: int) -> str:
    """Refuse what must not reach the SDK (a probe, a missing header, a timestamp out of the
    window, an unknown serial); return the serial."""
    signature = h.get("wechatpay-signature")
    if not signature:
        raise InvalidNotification("MISSING_HEADER", "Wechatpay-Signature")
    if str(signature).startswith(SIGNTEST_PREFIX):
        raise InvalidNotification("SIGNTEST_PROBE", "signature test probe")
    missing = [name for name in NOTIFICATION_HEADERS if not h.get(name)]
    if missing:
        raise InvalidNotification("MISSING_HEADER", ", ".join(missing))
    try:
        timestamp = int(h["wechatpay-timestamp"])
    except (TypeError, ValueError):
        raise InvalidNotification("MALFORMED", "Wechatpay-Timestamp is not an integer") from None
    if now - timestamp > max_skew_seconds:
        raise InvalidNotification("STALE_TIMESTAMP", f"{int(now - timestamp)} s old")
    if timestamp - now > max_skew_seconds:
        raise InvalidNotification("FUTURE_TIMESTAMP", f"{int(timestamp - now)} s ahead")
    if h["wechatpay-signature-type"] != SIGNATURE_TYPE:
        raise InvalidNotification("BAD_SIGNATURE", "unsupported Wechatpay-Signature-Type")
    serial = str(h["wechatpay-serial"])
    # The public key's id (public-key mode), or a platform certificate's hex serial (certificate
    # mode, and during a key-mode switch whichever mode is configured): anything else is refused
    if serial != settings.public_key_id and not CERT_SERIAL.match(serial):
        raise InvalidNotification("BAD_SIGNATURE", "unknown Wechatpay-Serial")
    return serial


def _validate(settings: "WechatSettings", data: dict, serial: str) -> NotificationEvent:
    """The decrypted envelope as an event, its refund or payment payload validated."""
    resource = data.get("resource")
    event_id, event_type = data.get("id"), data.get("event_type")
    if not isinstance(resource, dict) or not isinstance(event_id, str) or not isinstance(event_type, str):
        raise InvalidNotification("MALFORMED", "id, event_type or resource missing")
    refund = payment = None
    mismatches: tuple[str, ...] = ()
    try:
        if event_type in REFUND_EVENT_TYPES:
            refund = RefundResult.from_wechat(resource, status_field="refund_status")
            if refund.mchid not in (None, settings.mchid):
                raise InvalidNotification("MALFORMED", "notification for another merchant")
            if f"REFUND.{refund.status}" != event_type:
                raise InvalidNotification("MALFORMED", "refund_status does not match event_type")
        elif event_type.startswith("TRANSACTION."):
            payment = PaymentResult.from_wechat(resource)
            mismatches = payment.mismatches(appid=settings.appid, mchid=settings.mchid)
        elif resource.get("mchid") not in (None, settings.mchid):
            raise InvalidNotification("MALFORMED", "notification for another merchant")
    except ValueError as exc:
        raise InvalidNotification("MALFORMED", f"{event_type} resource: {exc}") from None
    with log_context(
        refund_no=refund.out_refund_no if refund else None,
        order_no=(refund.out_trade_no if refund else payment.out_trade_no if payment else None),
    ):
        if mismatches:
            log.warning("payment notification names another %s", "/".join(mismatches),
                        extra={"notify_id": event_id})
        log.info("wechat notification verified", extra={"notify_id": event_id, "event_type": event_type,
                                                        "serial": serial})
    return NotificationEvent(
        id=event_id,
        event_type=event_type,
        create_time=data.get("create_time"),
        resource_type=str(data.get("resource_type")),
        summary=data.get("summary"),
        resource=resource,
        refund=refund,
        payment=payment,
        merchant_mismatches=mismatches,
    )
