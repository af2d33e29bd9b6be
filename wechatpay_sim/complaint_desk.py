"""The simulator's consumer-complaint endpoints (消费者投诉2.0): the v3 API under
``/v3/merchant-service/``, the signed COMPLAINT.* notifications, WeChat's own refund when the
deadline passes, and the ``/sim/complaints`` control calls. State and rules: complaints.py."""
from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .complaints import ComplaintBook, Media
from .crypto import rsa_oaep_encrypt
from .state import ApiError, json_body

if TYPE_CHECKING:
    from .server import Simulator

_MS = r"^/v3/merchant-service"
_ONE = _MS + r"/complaints-v2/([^/]+)"
ROUTES = [
    ("GET", re.compile(_MS + r"/complaints-v2$"), "list"),
    ("GET", re.compile(_ONE + r"$"), "detail"),
    ("GET", re.compile(_ONE + r"/negotiation-historys$"), "history"),
    ("POST", re.compile(_ONE + r"/response$"), "response"),
    ("POST", re.compile(_ONE + r"/update-refund-progress$"), "update_refund"),
    ("POST", re.compile(_ONE + r"/complete$"), "complete"),
    ("POST", re.compile(_MS + r"/images/upload$"), "upload"),
    ("GET", re.compile(_MS + r"/images/([^/]+)$"), "image"),
]
_NOTIFY_URL_PATH = re.compile(_MS + r"/complaint-notifications$")
# the payer's complaint images: a 1x1 PNG
_USER_IMAGE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
# 投诉通知回调: event_type COMPLAINT.CREATE ("产生新投诉") or COMPLAINT.STATE_CHANGE ("投诉状态变化")
CREATE_EVENT = ("COMPLAINT.CREATE", "产生新投诉")
CHANGE_EVENT = ("COMPLAINT.STATE_CHANGE", "投诉单状态变化")


@dataclass(frozen=True)
class Route:
    name: str
    args: tuple


def match(method: str, path: str) -> Route | None:
    """The complaint endpoint a v3 request names, or None."""
    if _NOTIFY_URL_PATH.match(path) and method in ("GET", "POST", "PUT", "DELETE"):
        return Route("notify_url", ())
    for route_method, pattern, name in ROUTES:
        found = pattern.match(path)
        if found and route_method == method:
            return Route(name, found.groups())
    return None


def parse_multipart(content_type: str | None, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``{field: (filename, bytes)}`` of a multipart/form-data body. The wechatpayv3 SDK sets the
    header to a bare ``multipart/form-data`` (no boundary; ``requests`` keeps a caller's
    Content-Type), so without one the boundary is read from the body's first line."""
    found = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if found:
        boundary = found.group(1).encode()
    else:
        first = body.split(b"\r\n", 1)[0]
        if not first.startswith(b"--") or len(first) < 3:
            raise ApiError(400, "PARAM_ERROR", "body is not multipart/form-data")
        boundary = first[2:]
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        disposition = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name:
            fields[name.group(1)] = (filename.group(1) if filename else None, content.removesuffix(b"\r\n"))
    return fields


class ComplaintDesk:
    """Complaints of one simulator; its Python control API mirrors ``/sim/complaints``."""

    def __init__(self, sim: "Simulator") -> None:
        self.sim = sim
        self.book = ComplaintBook(sim.keyset.mchid, clock=sim.store.now)
        self.drop_notifications = False  # the drop_complaint_notifications setting
        self._refund_lock = threading.Lock()

    def reset(self) -> None:
        self.book.reset()

    # ---- the v3 API ----------------------------------------------------------
    def signed_body(self, route: Route | None, headers, body: bytes) -> bytes:
        """What the merchant signed: for the image upload "参与签名计算的请求主体为meta的json串"
        (商户上传反馈图片, 签名计算说明), for everything else the body."""
        if route is None or route.name != "upload":
            return body
        try:
            return parse_multipart(headers.get("Content-Type"), body).get("meta", (None, body))[1]
        except ApiError:
            return body

    def api(self, route: Route, method: str, query: dict, headers, body: bytes) -> tuple[int, dict | Media | None]:
        """Answer one authenticated complaint call: (status, JSON body | image | None for 204)."""
        book, name = self.book, route.name
        if name == "upload":
            fields = parse_multipart(headers.get("Content-Type"), body)
            if "meta" not in fields or "file" not in fields:
                raise ApiError(400, "PARAM_ERROR", "multipart body needs the parts meta and file")
            try:
                meta = json.loads(fields["meta"][1].decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ApiError(400, "PARAM_ERROR", "meta is not JSON") from None
            if not isinstance(meta, dict):
                raise ApiError(400, "PARAM_ERROR", "meta must be a JSON object")
            return 200, {"media_id": book.upload(meta, fields["file"][1])}
        if name == "image":
            return 200, book.media(route.args[0])  # "图片下载 ... 文件流" (not signed)
        payload = _json(body) if method in ("POST", "PUT") else {}
        if name == "notify_url":
            answer = book.set_notify_url(method, payload)
            return (204, None) if answer is None else (200, answer)
        if name == "list":
            page, total, limit, offset = book.page(query)
            body_out = {"data": [self._view(c, detail=False) for c in page], "limit": limit, "offset": offset}
            if offset == 0:  # "total_count 选填 integer 【投诉总条数】投诉总条数,当offset=0时返回"
                body_out["total_count"] = total
            return 200, body_out
        complaint_id = route.args[0]
        if name == "detail":
            return 200, self._view(book.get(complaint_id), detail=True)
        if name == "history":
            entries, total, limit, offset = book.history_page(complaint_id, query)
            body_out = {"data": [book.log_view(e, media_url=self.media_url) for e in entries],
                        "limit": limit, "offset": offset}
            if offset == 0:  # "total_count ... 投诉协商历史总条数,当offset=0时返回"
                body_out["total_count"] = total
            return 200, body_out
        action = {"response": book.respond, "update_refund": book.update_refund,
                  "complete": book.complete}[name](complaint_id, payload)
        if action:
            self.notify(complaint_id, action)
        return 204, None  # "处理成功,应答无内容 204"

    def media_url(self, media_id: str) -> str:
        return f"{self.sim.base_url}/v3/merchant-service/images/{media_id}"

    def _view(self, complaint, *, detail: bool) -> dict:
        return self.book.api_view(complaint, detail=detail, media_url=self.media_url, encrypt=self._encrypt)

    def _encrypt(self, text: str) -> str:
        return rsa_oaep_encrypt(self.sim.keyset.merchant_public_key, text)

    # ---- notifications ----------------------------------------------------------
    def notify(self, complaint_id: str, action_type: str) -> None:
        """投诉通知回调: "商户创建投诉通知回调URL 后,当有新的投诉事件发生、投诉状态发生变化时,
        商户会收到通知回调"; the resource is {complaint_id, action_type}. Sent with the refund
        notifications' envelope, signing and (compressed) retries; WeChat's own schedule for
        complaints is "5s * 1次,1min * 10次,之后以5min间隔重试,重试1000次或最多持续1周"."""
        url = self.book.notify_url()
        if not url:
            return
        event_type, summary = CREATE_EVENT if action_type == "CREATE_COMPLAINT" else CHANGE_EVENT
        complaint = self.book.get(complaint_id)
        note = self.sim.notifier.complaint_notification(
            url, event_type, summary, {"complaint_id": complaint_id, "action_type": action_type},
            out_trade_no=complaint.out_trade_no,
        )
        self.sim.notifier.deliver(note, kind="complaint", drop=self.drop_notifications)

    # ---- control calls (and their Python API) -------------------------------------
    def create(self, out_trade_no: str, amount: int, *, problem_type: str = "REFUND", description: str | None = None,
               user_tags=None, phone: str | None = None, at: float | None = None, images: int = 0) -> dict:
        """The payer of a paid order complains; COMPLAINT.CREATE goes to the registered URL."""
        txn = self.sim.store.transaction(out_trade_no)
        if txn is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        if txn["state"] != "SUCCESS":
            raise ApiError(409, "ORDER_NOT_PAID", f"the order is {txn['state']}: only a paid order can be complained about")
        complaint = self.book.create(txn, amount, problem_type=problem_type, description=description,
                                     user_tags=user_tags, phone=phone, at=at, images=images, image_bytes=_USER_IMAGE)
        self.notify(complaint.complaint_id, "CREATE_COMPLAINT")
        return {"complaint_id": complaint.complaint_id}

    def get(self, complaint_id: str) -> dict:
        return self.book.control_view(self.book.get(complaint_id))

    def list(self) -> list[dict]:
        return [self.book.control_view(c) for c in self.book.all()]

    def user_response(self, complaint_id: str, content: str) -> dict:
        self.notify(complaint_id, self.book.user_response(complaint_id, content))
        return self.get(complaint_id)

    def expire(self, complaint_id: str, *, amount: int | None = None, url: str | None = None) -> dict:
        """The deadline passes unresolved and WeChat refunds the payer itself, from the merchant's
        money ("投诉单受托退款"): a refund the merchant's refund API never made, settled at once,
        REFUND.SUCCESS to ``url`` (default: the default notify URL), then COMPLAINT.STATE_CHANGE."""
        complaint = self.book.begin_entrust(complaint_id)
        try:
            result = self.sim.foreign_refund(complaint.out_trade_no, complaint.amount if amount is None else amount,
                                             url=url or self.sim.default_notify_url)
        except BaseException:
            self.book.abort_entrust(complaint_id)
            raise
        refund = result["refund"]
        refunded = self.sim.store.refunded_total(complaint.transaction_id)
        action = self.book.entrusted(complaint_id, refund["out_refund_no"], refund["amount"]["refund"], refunded)
        self.notify(complaint_id, action)
        return {"complaint": self.get(complaint_id), "refund": refund, "notified": result["notified"]}

    def refund_settled(self, refund) -> None:
        """A refund reached its outcome (through the merchant's API or by hand on the merchant
        platform): approved complaints on its order complete once the money arrives."""
        if refund.status != "SUCCESS" or not self.book.open_for(refund.transaction_id):
            return
        with self._refund_lock:
            refunded = self.sim.store.refunded_total(refund.transaction_id)
            done = self.book.refund_arrived(refund.transaction_id, refund.out_refund_no, refund.refund, refunded)
        for complaint_id in done:
            self.notify(complaint_id, "REFUND_SUCCESS")


def _json(body: bytes) -> dict:
    payload = json_body(body)
    if not isinstance(payload, dict):
        raise ApiError(400, "PARAM_ERROR", "body must be a JSON object")
    return payload


def _notified(result: dict) -> dict:
    notified = result.pop("notified")
    if notified is not None:
        result["notification"] = {"result": notified, "ok": isinstance(notified, int) and 200 <= notified < 300}
    return result


CONTROL_ROUTES = [
    ("GET", re.compile(r"^/sim/complaints$"), lambda s, p: {"complaints": s.complaints.list()}),
    ("POST", re.compile(r"^/sim/complaints$"), lambda s, p: s.complaints.create(
        p["out_trade_no"], p["amount"], problem_type=p.get("problem_type", "REFUND"),
        description=p.get("description"), user_tags=p.get("user_tags"), phone=p.get("phone"),
        at=p.get("at"), images=p.get("images", 0))),
    ("GET", re.compile(r"^/sim/complaints/([^/]+)$"), lambda s, p, cid: s.complaints.get(cid)),
    ("POST", re.compile(r"^/sim/complaints/([^/]+)/expire$"), lambda s, p, cid: _notified(s.complaints.expire(
        cid, amount=p.get("amount"), url=p.get("url")))),
    ("POST", re.compile(r"^/sim/complaints/([^/]+)/user-response$"), lambda s, p, cid: s.complaints.user_response(
        cid, p.get("content"))),
]
