"""WeChat Pay notification routes. The signature is verified over the raw body, stale or
future timestamps and SIGNTEST probes are refused, the event type must match the route,
and only then does a typed event reach the service layer. 204 acknowledges; anything
else makes WeChat deliver again."""
from __future__ import annotations

from chalice import Blueprint, Response

from ..config import settings
from ..log import get_logger, log_context
from .http import error_response

bp = Blueprint(__name__)
log = get_logger(__name__)
NOTIFY_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "text/xml"]
PREFIXES = {"refund": "REFUND.", "payment": "TRANSACTION.", "complaint": "COMPLAINT."}


def _receive(kind: str):
    from ..adapters.wechat.errors import BadSignature, InvalidNotification, WechatError
    from ..adapters.wechat.gateway import get_gateway
    from ..services import notifications

    request = bp.current_request
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    with log_context(route=f"notify_{kind}"):
        try:
            event = get_gateway().parse_notification(
                headers, request.raw_body or b"", max_skew_seconds=settings().notify_max_skew_seconds)
        except (InvalidNotification, BadSignature) as err:
            log.warning("notification refused", extra={"code": err.code})
            return error_response("FAIL", f"{err.code}: {err.message}", 401)
        except WechatError as err:  # our side cannot verify right now: WeChat will retry
            log.error("notification could not be verified", extra={"code": err.code})
            return error_response("FAIL", "temporarily unable to verify", 503)
        if not event.event_type.startswith(PREFIXES[kind]):
            log.warning("notification sent to the wrong route", extra={"event_type": event.event_type})
            return error_response("FAIL", f"unexpected event_type {event.event_type}", 400)
        from ..services import complaint_sync

        handler = {"refund": notifications.handle_refund_event, "payment": notifications.handle_payment_event,
                   "complaint": complaint_sync.handle_notification}[kind]
        try:
            result = handler(event)
        except (notifications.NotificationRefused, complaint_sync.NotificationRefused) as err:
            log.warning("notification refused", extra={"notify_id": event.id, "reason": err.message})
            return error_response("FAIL", err.message, 400)
        except Exception:  # noqa: BLE001 - WeChat retries; we log and answer FAIL
            log.exception("notification processing failed", extra={"notify_id": event.id})
            return error_response("FAIL", "processing failed", 500)
        log.info("notification processed", extra={"notify_id": event.id, "event_type": event.event_type,
                                                   "result": result})
        return Response(body="", status_code=204)


@bp.route("/refund", methods=["POST"], content_types=NOTIFY_TYPES)
def refund_notify():
    return _receive("refund")


@bp.route("/payment", methods=["POST"], content_types=NOTIFY_TYPES)
def payment_notify():
    return _receive("payment")


@bp.route("/complaint", methods=["POST"], content_types=NOTIFY_TYPES)
def complaint_notify():
    """投诉通知回调 (COMPLAINT.CREATE / COMPLAINT.STATE_CHANGE): signed and encrypted like the refund
    notifications; the notify URL is registered with WeChat by the complaint sweep."""
    return _receive("complaint")
