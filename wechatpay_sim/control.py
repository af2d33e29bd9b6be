"""The control API under ``/sim/`` (JSON, no auth): each route calls one ``Simulator`` method
(README.md lists them)."""
from __future__ import annotations

import datetime as _dt
import json
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

from . import complaint_desk
from .state import ApiError, json_body

if TYPE_CHECKING:
    from .server import Simulator


def dispatch(sim: "Simulator", method: str, path: str, body: bytes) -> tuple[int, dict]:
    """Answer one /sim/ call: (HTTP status, JSON body)."""
    try:
        payload = json_body(body)
        if not isinstance(payload, dict):
            raise ApiError(400, "PARAM_ERROR", "body must be a JSON object")
        for route_method, pattern, handler in _CONTROL_ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                args = [unquote(g) for g in match.groups()]
                return 200, handler(sim, payload, *args)
        return 404, {"code": "NOT_FOUND", "message": f"no control endpoint {method} {path}"}
    except ApiError as err:
        return err.status, err.body()
    except (TypeError, ValueError, KeyError) as err:
        return 400, {"code": "PARAM_ERROR", "message": f"{type(err).__name__}: {err}"}


def parse_moment(value: float | str | None) -> float | None:
    """A time given to the control API: RFC 3339 with its offset, or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        moment = _dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApiError(400, "PARAM_ERROR", "at must be RFC 3339 with an offset (2026-01-02T00:01:00+08:00) "
                                           "or epoch seconds")
    return moment.timestamp()


def _url(payload: dict, required: bool = False) -> str | None:
    url = payload.get("url")
    if required and not url:
        raise ApiError(400, "PARAM_ERROR", "url is required")
    return url


def _result(result: int | str) -> dict:
    return {"result": result, "ok": isinstance(result, int) and 200 <= result < 300}


def _paid(result: dict) -> dict:
    """A pay / foreign-refund answer: the record plus the notification's delivery result."""
    notified = result.pop("notified")
    if notified is not None:
        result.update(notification=_result(notified))
    return result


def _require(value, what: str):
    if value is None:
        raise ApiError(404, "RESOURCE_NOT_EXISTS", f"{what} not found")
    return value


_CONTROL_ROUTES = [
    ("GET", re.compile(r"^/sim/health$"), lambda s, p: {
        "ok": True, "mchid": s.keyset.mchid, "appid": s.keyset.appid,
        "public_key_id": s.keyset.public_key_id, "key_mode": s.key_mode,
    }),
    ("POST", re.compile(r"^/sim/reset$"), lambda s, p: (s.reset(), {"ok": True})[1]),
    ("GET", re.compile(r"^/sim/certificates$"), lambda s, p: {"calls": s.certificate_calls()}),
    # subscription messages (miniprogram.py): a player's consent, what was sent, failures to answer
    ("POST", re.compile(r"^/sim/subscriptions$"), lambda s, p: s.miniprogram.grant(p["openid"], p["template_id"])),
    ("GET", re.compile(r"^/sim/subscribe-messages$"), lambda s, p: {"messages": s.miniprogram.sent()}),
    ("POST", re.compile(r"^/sim/subscribe-messages/fail$"), lambda s, p: s.miniprogram.fail_next(p["errcodes"])),
    ("POST", re.compile(r"^/sim/access-tokens/expire$"), lambda s, p: s.miniprogram.expire_tokens()),
    ("GET", re.compile(r"^/sim/settings$"), lambda s, p: s.settings()),
    ("POST", re.compile(r"^/sim/settings$"), lambda s, p: s.configure(**p)),
    ("GET", re.compile(r"^/sim/transactions$"), lambda s, p: {"transactions": s.transactions()}),
    ("POST", re.compile(r"^/sim/transactions$"), lambda s, p: s.register_transaction(
        p["total"], p.get("out_trade_no"), transaction_id=p.get("transaction_id"),
        paid_at=p.get("paid_at"), openid=p.get("openid"), payer_total=p.get("payer_total"),
        state=p.get("state", "SUCCESS"), appid=p.get("appid"), description=p.get("description"))),
    ("GET", re.compile(r"^/sim/transactions/([^/]+)$"), lambda s, p, no: _require(
        s.store.transaction(no), "transaction")),
    ("POST", re.compile(r"^/sim/transactions/([^/]+)/pay$"), lambda s, p, no: _paid(s.pay(
        no, p.get("total"), payer_total=p.get("payer_total"), url=_url(p),
        notify=bool(p.get("notify", True)), key_mode=p.get("key_mode")))),
    ("POST", re.compile(r"^/sim/transactions/([^/]+)/close$"), lambda s, p, no: s.close_transaction(no)),
    ("POST", re.compile(r"^/sim/transactions/([^/]+)/notify$"), lambda s, p, no: _result(
        s.notify_payment(no, _url(p, required=True), retry=bool(p.get("retry", True)), total=p.get("total"),
                         payer_total=p.get("payer_total"), appid=p.get("appid"), mchid=p.get("mchid"),
                         key_mode=p.get("key_mode")))),
    ("POST", re.compile(r"^/sim/refunds/foreign$"), lambda s, p: _paid(s.foreign_refund(
        p["out_trade_no"], p["amount"], out_refund_no=p.get("out_refund_no"), url=_url(p),
        status=p.get("status", "SUCCESS"), key_mode=p.get("key_mode")))),
    ("GET", re.compile(r"^/sim/bill-faults$"), lambda s, p: {"faults": s.bill_faults()}),
    ("POST", re.compile(r"^/sim/bill-faults$"), lambda s, p: {"faults": s.add_bill_fault(**p)}),
    ("DELETE", re.compile(r"^/sim/bill-faults$"), lambda s, p: (s.clear_bill_faults(), {"faults": []})[1]),
    ("GET", re.compile(r"^/sim/refunds$"), lambda s, p: {"refunds": s.refunds(), **s.store.counters()}),
    ("GET", re.compile(r"^/sim/refunds/([^/]+)$"), lambda s, p, no: _require(s.refund(no), "refund")),
    ("POST", re.compile(r"^/sim/refunds/([^/]+)/complete$"), lambda s, p, no: {
        "refund": s.complete(no, p.get("outcome"), p.get("at"))}),
    ("POST", re.compile(r"^/sim/refunds/([^/]+)/redeliver$"), lambda s, p, no: _result(
        s.redeliver(no, _url(p), p.get("key_mode")))),
    ("POST", re.compile(r"^/sim/refunds/([^/]+)/notify-stale$"), lambda s, p, no: _result(
        s.send_stale_notification(no, float(p.get("age_seconds", 600)), _url(p)))),
    ("POST", re.compile(r"^/sim/refunds/([^/]+)/notify-bad-signature$"), lambda s, p, no: _result(
        s.send_bad_signature_notification(no, _url(p)))),
    ("POST", re.compile(r"^/sim/notify-probe$"), lambda s, p: _result(s.send_probe(_url(p, required=True)))),
    ("GET", re.compile(r"^/sim/scenarios$"), lambda s, p: s.scenarios()),
    ("POST", re.compile(r"^/sim/scenarios$"), lambda s, p: (s.push_scenario(
        p["kind"], op=p.get("op", "create"), count=int(p.get("count", 1)),
        seconds=float(p.get("seconds", 0))), s.scenarios())[1]),
    ("DELETE", re.compile(r"^/sim/scenarios$"), lambda s, p: (s.clear_scenarios(), s.scenarios())[1]),
    ("POST", re.compile(r"^/sim/outcomes$"), lambda s, p: (s.queue_outcome(
        p["outcome"], int(p.get("count", 1))), s.scenarios())[1]),
    ("GET", re.compile(r"^/sim/notifications$"), lambda s, p: {"deliveries": s.notifications()}),
    *complaint_desk.CONTROL_ROUTES,
]
