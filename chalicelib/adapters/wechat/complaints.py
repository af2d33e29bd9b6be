"""Consumer complaints (消费者投诉2.0, ``/v3/merchant-service/complaints-v2``): the list, a complaint's
detail and negotiation history, the merchant's answers (response, refund decision, complete),
image upload, the complaint notify URL, and COMPLAINT.* notifications. Each call runs one SDK
call through the gateway (``gateway._invoke``: typed errors, verified answers) and returns a typed
result; WeChat's refusals are ``errors.Rejected`` with its code and message.

Sources: WeChat Pay's 消费者投诉2.0 API pages, quoted where each rule is used, and the SDK's
``complaint.py`` (wechatpay-v3.md, "Consumer complaints").
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping

from chalicelib.log import get_logger, log_context

from . import notifications
from .errors import InvalidNotification, NotFound, OutcomeUnknown

if TYPE_CHECKING:  # pragma: no cover
    from .gateway import WechatGateway

log = get_logger(__package__)

# "complaint_state ... PENDING：待处理 PROCESSING：处理中 PROCESSED：已处理完成"
STATES = ("PENDING", "PROCESSING", "PROCESSED")
# 查询投诉单列表: "limit ... 范围【1,50】", "查询日期跨度不超过30天"
LIST_MAX_LIMIT, LIST_MAX_SPAN_DAYS = 50, 30
# 查询投诉协商历史: "limit ... 范围[1,300]"
HISTORY_MAX_LIMIT = 300
# 投诉通知回调: "event_type ... COMPLAINT.CREATE：产生新投诉 COMPLAINT.STATE_CHANGE：投诉状态变化"
EVENT_TYPES = ("COMPLAINT.CREATE", "COMPLAINT.STATE_CHANGE")
# "launch_refund_day ... 预计将在多少个工作日内能发起退款, 0代表当天"
_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _check_id(complaint_id: str) -> None:
    if not isinstance(complaint_id, str) or not _ID.match(complaint_id):
        raise ValueError("complaint_id must be 1-64 characters of [0-9A-Za-z_-]")


def _str(data: Mapping, name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"{name} must be a string")
    return value


def _int(data: Mapping, name: str, *, required: bool = False) -> int | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    return value


def _urls(media) -> tuple[str, ...]:
    """Image URLs of a ``complaint_media_list`` (a list of ``{media_type, media_url[]}``, or one)."""
    items = media if isinstance(media, list) else [media] if isinstance(media, Mapping) else []
    return tuple(u for m in items if isinstance(m, Mapping) for u in (m.get("media_url") or []) if isinstance(u, str))


# ---------------------------------------------------------------- what WeChat answers


@dataclass(frozen=True)
class ComplaintOrder:
    """One ``complaint_order_info`` entry: the order complained about (``amount``: its total, fen)."""

    transaction_id: str | None
    out_trade_no: str | None
    amount: int | None


@dataclass(frozen=True)
class Complaint:
    """A complaint as 查询投诉单详情 (or, without ``payer_openid`` and the phone, a list item)
    answers it. Amounts in fen; ``payer_phone`` decrypted (None when absent or unreadable)."""

    complaint_id: str
    complaint_time: str  # WeChat's, with milliseconds and +08:00
    state: str  # PENDING | PROCESSING | PROCESSED
    detail: str
    problem_type: str | None  # REFUND | SERVICE_NOT_WORK | OTHERS
    problem_description: str | None
    apply_refund_amount: int | None  # REFUND complaints only
    user_complaint_times: int | None
    user_tags: tuple[str, ...]
    full_refunded: bool
    incoming_user_response: bool
    orders: tuple[ComplaintOrder, ...]
    media_urls: tuple[str, ...] = ()
    payer_openid: str | None = field(default=None, repr=False)
    payer_phone: str | None = field(default=None, repr=False)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def order(self) -> ComplaintOrder | None:
        return self.orders[0] if self.orders else None

    @classmethod
    def from_wechat(cls, data: Mapping[str, Any], *, phone: str | None = None) -> "Complaint":
        """Raises ValueError when a field the service relies on is missing or mistyped."""
        state = data.get("complaint_state")
        if state not in STATES:
            raise ValueError(f"unknown complaint_state {state!r}")
        orders = []
        for item in data.get("complaint_order_info") or []:
            if not isinstance(item, Mapping):
                raise ValueError("complaint_order_info entries must be objects")
            orders.append(ComplaintOrder(_str(item, "transaction_id"), _str(item, "out_trade_no"), _int(item, "amount")))
        tags = data.get("user_tag_list") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError("user_tag_list must be a list of strings")
        return cls(
            complaint_id=_str(data, "complaint_id", required=True),
            complaint_time=_str(data, "complaint_time", required=True),
            state=state,
            detail=_str(data, "complaint_detail") or "",
            problem_type=_str(data, "problem_type"),
            problem_description=_str(data, "problem_description"),
            apply_refund_amount=_int(data, "apply_refund_amount"),  # "申请退款金额 ... 单位（分）"
            user_complaint_times=_int(data, "user_complaint_times"),
            user_tags=tuple(tags),
            full_refunded=bool(data.get("complaint_full_refunded")),
            incoming_user_response=bool(data.get("incoming_user_response")),
            orders=tuple(orders),
            media_urls=_urls(data.get("complaint_media_list")),
            payer_openid=_str(data, "payer_openid"),
            payer_phone=phone,
            raw={k: v for k, v in data.items() if k not in ("payer_phone", "payer_openid")},
        )


@dataclass(frozen=True)
class ComplaintPage:
    items: list[Complaint]
    total_count: int | None  # "投诉总条数,当offset=0时返回"
    limit: int
    offset: int


@dataclass(frozen=True)
class HistoryEntry:
    """One line of 查询投诉协商历史."""

    log_id: str
    operator: str
    operate_time: str
    operate_type: str
    operate_details: str
    image_urls: tuple[str, ...] = ()

    @classmethod
    def from_wechat(cls, data: Mapping[str, Any]) -> "HistoryEntry":
        images = data.get("image_list") or []
        urls = tuple(u for u in images if isinstance(u, str)) or _urls(data.get("complaint_media_list"))
        return cls(log_id=_str(data, "log_id", required=True), operator=_str(data, "operator") or "",
                   operate_time=_str(data, "operate_time", required=True),
                   operate_type=_str(data, "operate_type", required=True),
                   operate_details=_str(data, "operate_details") or "", image_urls=urls)


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    total_count: int | None
    limit: int
    offset: int


@dataclass(frozen=True)
class ComplaintEvent:
    """A verified, decrypted COMPLAINT.* notification: which complaint, and what happened to it
    (``action_type``: CREATE_COMPLAINT, MERCHANT_RESPONSE, REFUND_SUCCESS, ...)."""

    id: str
    event_type: str
    complaint_id: str
    action_type: str
    create_time: str | None


# ---------------------------------------------------------------- the calls


class ComplaintApi:
    """The complaint calls of one gateway (``WechatGateway.complaints``)."""

    def __init__(self, gateway: "WechatGateway"):
        self._gw = gateway

    @property
    def mchid(self) -> str:
        return self._gw.settings.mchid

    def _json(self, op: str, call) -> dict:
        return self._gw._invoke(op, call)

    def _no_content(self, op: str, call) -> None:
        """A call WeChat answers "处理成功,应答无内容 204"."""
        self._gw._invoke(op, call, no_content=True)

    @staticmethod
    def _typed(op: str, build):
        try:
            return build()
        except ValueError as exc:
            raise OutcomeUnknown("MALFORMED_RESPONSE", f"{op}: {exc}", 200) from None

    @classmethod
    def _page(cls, op: str, body: dict, item, page_type, limit: int, offset: int):
        """A list answer ``{data, limit, offset, total_count?}`` ("total_count ... 当offset=0时返回") typed."""
        def build():
            data = body.get("data") or []
            if not isinstance(data, list):
                raise ValueError("data must be a list")
            return page_type([item(d) for d in data], _int(body, "total_count"), _int(body, "limit") or limit,
                             _int(body, "offset") or offset)

        return cls._typed(op, build)

    # ---- reading
    def list_page(self, *, begin_date: str, end_date: str, offset: int = 0, limit: int = LIST_MAX_LIMIT) -> ComplaintPage:
        """One page of complaints made on Beijing dates ``begin_date``..``end_date`` (at most 30
        days apart), ``limit`` (1-50) from ``offset``."""
        if not (isinstance(begin_date, str) and _DATE.match(begin_date) and isinstance(end_date, str)
                and _DATE.match(end_date)):
            raise ValueError("begin_date and end_date are YYYY-MM-DD")
        if not 1 <= limit <= LIST_MAX_LIMIT or offset < 0:
            raise ValueError(f"limit is 1-{LIST_MAX_LIMIT}, offset >= 0")
        body = self._json("complaint_list", lambda c: c.complaint_list_query(
            begin_date=begin_date, end_date=end_date, limit=limit, offset=offset, complainted_mchid=self.mchid))

        return self._page("complaint_list", body, Complaint.from_wechat, ComplaintPage, limit, offset)

    def detail(self, complaint_id: str) -> Complaint:
        """查询投诉单详情, with ``payer_phone`` decrypted by the merchant's own private key: WeChat
        encrypts it with "商户API证书对应的公钥" (the MERCHANT's certificate key, not WeChat's, unlike
        what the merchant sends WeChat). ``NotFound`` for an unknown id."""
        _check_id(complaint_id)
        with log_context(complaint_id=complaint_id):
            body = self._json("complaint_detail", lambda c: c.complaint_detail_query(complaint_id))
            complaint = self._typed("complaint_detail", lambda: Complaint.from_wechat(body))
            if complaint.complaint_id != complaint_id:
                raise OutcomeUnknown("MALFORMED_RESPONSE", "complaint_detail: answer is about another complaint", 200)
            phone = self._decrypt_phone(body.get("payer_phone"))
            return replace(complaint, payer_phone=phone)

    def _decrypt_phone(self, ciphertext) -> str | None:
        if not isinstance(ciphertext, str) or not ciphertext:
            return None
        try:
            return self._gw._sdk().decrypt(ciphertext)
        except Exception as exc:  # noqa: BLE001 - an unreadable phone must not lose the complaint
            log.warning("payer_phone could not be decrypted with the merchant key: %s", type(exc).__name__)
            return None

    def history(self, complaint_id: str, *, offset: int = 0, limit: int = HISTORY_MAX_LIMIT) -> HistoryPage:
        """One page of a complaint's negotiation history, oldest first."""
        _check_id(complaint_id)
        if not 1 <= limit <= HISTORY_MAX_LIMIT or offset < 0:
            raise ValueError(f"limit is 1-{HISTORY_MAX_LIMIT}, offset >= 0")
        body = self._json("complaint_history", lambda c: c.complaint_history_query(complaint_id, limit=limit,
                                                                                   offset=offset))

        return self._page("complaint_history", body, HistoryEntry.from_wechat, HistoryPage, limit, offset)

    def history_from(self, complaint_id: str, start: int = 0) -> list[HistoryEntry]:
        """Every history entry from index ``start`` on, page by page (one call for most complaints)."""
        entries: list[HistoryEntry] = []
        offset = start
        while True:
            page = self.history(complaint_id, offset=offset, limit=HISTORY_MAX_LIMIT)
            entries.extend(page.entries)
            offset += len(page.entries)
            if len(page.entries) < HISTORY_MAX_LIMIT:
                return entries

    # ---- the merchant's answers (each "204 处理成功,应答无内容")
    def respond(self, complaint_id: str, content: str, media_ids: list[str] | tuple = ()) -> None:
        """回复用户: text and at most 4 uploaded images."""
        _check_id(complaint_id)
        with log_context(complaint_id=complaint_id):
            self._no_content("complaint_response", lambda c: c.complaint_response(
                complaint_id, content, response_images=list(media_ids) or None))

    def approve_refund(self, complaint_id: str, *, launch_refund_day: int, remark: str | None = None) -> None:
        """更新退款审批结果 APPROVE: "传入'同意退款'后,需要额外调退款接口发起原路退款"."""
        _check_id(complaint_id)
        if not isinstance(launch_refund_day, int) or isinstance(launch_refund_day, bool) or launch_refund_day < 0:
            raise ValueError("launch_refund_day is a number of working days >= 0")
        with log_context(complaint_id=complaint_id):
            self._no_content("complaint_update_refund", lambda c: c.complaint_update_refund(
                complaint_id, "APPROVE", launch_refund_day=launch_refund_day, remark=remark))

    def reject_refund(self, complaint_id: str, *, reason: str, media_ids: list[str] | tuple = (),
                      remark: str | None = None) -> None:
        """更新退款审批结果 REJECT (not "REJECTED") with the reason and at most 4 evidence images."""
        _check_id(complaint_id)
        if not reason:
            raise ValueError("a reject_reason is required to REJECT")
        with log_context(complaint_id=complaint_id):
            self._no_content("complaint_update_refund", lambda c: c.complaint_update_refund(
                complaint_id, "REJECT", reject_reason=reason, reject_media_list=list(media_ids) or None,
                remark=remark))

    def complete(self, complaint_id: str) -> None:
        """反馈处理完成."""
        _check_id(complaint_id)
        with log_context(complaint_id=complaint_id):
            self._no_content("complaint_complete", lambda c: c.complaint_complete(complaint_id))

    def upload_image(self, data: bytes, filename: str) -> str:
        """商户上传反馈图片 (multipart, signed over its meta): the ``media_id`` a response or a
        refusal names. The SDK reads the image from a file, so it passes through a temporary one."""
        if not data or not re.fullmatch(r"[0-9A-Za-z_-]{1,64}\.(png|jpg|bmp)", filename or ""):
            raise ValueError("an image and a name ending .png, .jpg or .bmp")
        with tempfile.TemporaryDirectory(prefix="complaint-image-") as folder:
            path = os.path.join(folder, filename)
            with open(path, "wb") as fh:
                fh.write(data)
            body = self._json("complaint_image_upload", lambda c: c.complaint_image_upload(path, filename))
        media_id = body.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise OutcomeUnknown("MALFORMED_RESPONSE", "complaint_image_upload: no media_id", 200)
        return media_id

    # ---- the notify URL
    def notify_url(self) -> str | None:
        """The registered complaint notify URL; None when there is none (WeChat answers that with
        "400 RESOURCE_NOT_EXISTS 查询的通知回调不存在": a 400, not a 404)."""
        try:
            body = self._json("complaint_notify_url", lambda c: c.complaint_notification_query())
        except NotFound:
            return None
        return _str(body, "url")

    def register_notify_url(self, url: str) -> str:
        """Make ``url`` the complaint notify URL: created, updated or already so. Returns which."""
        current = self.notify_url()
        if current == url:
            return "unchanged"
        if current is None:
            self._json("complaint_notify_url", lambda c: c.complaint_notification_create(url))
            return "created"
        self._json("complaint_notify_url", lambda c: c.complaint_notification_update(url))
        return "updated"

    # ---- notifications
    def parse_notification(self, headers: Mapping[str, Any], body: bytes, *, now: float | None = None,
                           max_skew_seconds: int = 300) -> ComplaintEvent:
        """Verify, decrypt and validate a COMPLAINT.* notification (``notifications.parse``: the
        refund notifications' envelope, signature and AES-GCM), then its resource
        ``{complaint_id, action_type}``. ``InvalidNotification`` for anything else."""
        event = notifications.parse(self._gw.settings, self._gw._sdk, headers, body, now=now,
                                    max_skew_seconds=max_skew_seconds)
        return complaint_event(event)


def complaint_event(event) -> ComplaintEvent:
    """A verified notification event as a ``ComplaintEvent``, if it is one."""
    if event.event_type not in EVENT_TYPES:
        raise InvalidNotification("MALFORMED", f"not a complaint event: {event.event_type}")
    resource = event.resource
    complaint_id, action = resource.get("complaint_id"), resource.get("action_type")
    if not (isinstance(complaint_id, str) and _ID.match(complaint_id) and isinstance(action, str) and action):
        raise InvalidNotification("MALFORMED", "complaint_id or action_type missing")
    return ComplaintEvent(id=event.id, event_type=event.event_type, complaint_id=complaint_id, action_type=action,
                          create_time=event.create_time)
