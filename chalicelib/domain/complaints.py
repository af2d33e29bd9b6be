"""Consumer complaints (微信支付消费者投诉2.0): their deadlines, how close each is, what an operator
may do with a complaint in which state, and what a reply or a refusal may carry. Plain Python.

WeChat gives the merchant 24 hours for a first reply and 72 hours from the complaint to resolve
it (wechatpay-v3.md, "Deadlines: first reply within 24 h, resolved within 72 h of creation; past
them WeChat may take the disputed money from the merchant's account and refund the user
itself"); both are settings (``config.complaint_settings``). The labels of states, problem
types, tags and risks are the enums' (``domain/enums.py``).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import text
from .enums import (ComplaintAction, ComplaintProblem, ComplaintRefundProgress, ComplaintRisk, ComplaintState,
                    Permission, StaffRole)
from .errors import ErrorCode, conflict, invalid
from .staff import Decision, has, permission_denied

A = ComplaintAction
P = Permission
State = ComplaintState
Progress = ComplaintRefundProgress

# WeChat's complaint ids are digits ("200201820200101080076610000"); a path parameter that cannot
# be one names no complaint.
COMPLAINT_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
# 回复用户: "response_content ... 限制200个字符以内" (the SDK and the older pages; WeChat's newest page
# says 500): ours stay within 200, which every version of the rule takes.
MAX_REPLY_CHARS = 200
# 更新退款审批结果: "reject_reason 选填 string(200)"
MAX_REASON_CHARS = 200
# "response_images ... 最多上传4张图片凭证"; 商户上传反馈图片: "媒体图片只支持JPG、BMP、PNG格式,
# 文件大小不能超过2M"
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 2 * 1024 * 1024
# a reply or refusal's JSON body with its images as base64: Lambda takes a synchronous request of
# at most 6 MB, so 4 MiB of body (about 3 MB of images together) and the rest for the envelope
IMAGE_BODY_BYTES = 4 * 1024 * 1024
# the kinds WeChat takes, told by their first bytes (the name WeChat needs is derived from them)
IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"BM", "bmp"))
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")

# negotiation history ``operate_type`` (查询投诉协商历史), with WeChat's own spelling of
# MERCHANT_REFUSE_RERUND, and what a person reads for each
MERCHANT_RESPONSE = "MERCHANT_RESPONSE"
ENTRUSTED_REFUND = "COMPLAINT_ENTRUSTED_REFUND_SYSTEM_MESSAGE"
REFUND_RECEIVED = "COMPLAINT_REFUND_RECEIVED_SYSTEM_MESSAGE"
OPERATE_TYPES = {
    "USER_CREATE_COMPLAINT": "用户提交投诉",
    "USER_CANCEL_COMPLAINT": "用户撤销投诉",
    "MERCHANT_RESPONSE": "商户回复",
    "MERCHANT_CONFIRM_COMPLETE": "商户反馈处理完成",
    "USER_APPLY_PLATFORM_SERVICE": "用户申请平台协助",
    "USER_CANCEL_PLATFORM_SERVICE": "用户取消平台协助",
    "PLATFORM_SERVICE_FINISHED": "客服结束平台协助",
    "USER_RESPONSE": "用户继续留言",
    "MERCHANT_APPROVE_REFUND": "商户同意退款",
    "MERCHANT_REFUSE_RERUND": "商户拒绝退款",
    "USER_SUBMIT_SATISFACTION": "用户提交满意度评价",
    "SERVICE_ORDER_CANCEL": "服务订单已取消",
    "SERVICE_ORDER_COMPLETE": "服务订单已完成",
    "COMPLAINT_PARTIAL_REFUNDED_SYSTEM_MESSAGE": "部分退款系统通知",
    "COMPLAINT_FULL_REFUNDED_SYSTEM_MESSAGE": "全额退款系统通知",
    "COMPLAINT_REFUND_RECEIVED_SYSTEM_MESSAGE": "退款到账系统通知",
    "COMPLAINT_ENTRUSTED_REFUND_SYSTEM_MESSAGE": "微信支付受托退款系统通知",
}


# ---------------------------------------------------------------- deadlines


@dataclass(frozen=True)
class Deadlines:
    reply_due: datetime  # the first reply
    resolve_due: datetime  # resolved (processed)

    @classmethod
    def of(cls, complained_at: datetime, *, reply_hours: int, resolve_hours: int) -> "Deadlines":
        return cls(complained_at + timedelta(hours=reply_hours), complained_at + timedelta(hours=resolve_hours))


def current_deadline(state: str, replied: bool, deadlines: Deadlines) -> tuple[str, datetime] | None:
    """The deadline a complaint is working against: ``("reply", due)`` until it has a first reply,
    then ``("resolve", due)``; None once WeChat says it is processed."""
    if State(state) == State.PROCESSED:
        return None
    return ("reply", deadlines.reply_due) if not replied else ("resolve", deadlines.resolve_due)


def risk(due: datetime | None, now: datetime, near_hours: int) -> ComplaintRisk:
    """On time, near (within ``near_hours``) or past its deadline; done without one."""
    if due is None:
        return ComplaintRisk.DONE
    if due <= now:
        return ComplaintRisk.OVERDUE
    return ComplaintRisk.NEAR if due - now <= timedelta(hours=near_hours) else ComplaintRisk.ON_TIME


def time_left_seconds(due: datetime | None, now: datetime) -> int | None:
    """Whole seconds to the deadline (negative once past it), None without one."""
    return None if due is None else int((due - now).total_seconds() // 1)


def time_left_text(seconds: int | None) -> str:
    """"剩余 5 小时 12 分" / "已超时 1 小时 3 分" for people."""
    if seconds is None:
        return "—"
    minutes = abs(seconds) // 60
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = (f"{days} 天 " if days else "") + (f"{hours} 小时 " if days or hours else "") + f"{minutes} 分"
    return ("已超时 " if seconds < 0 else "剩余 ") + parts


# ---------------------------------------------------------------- what an operator may do


_VERBS = {A.REPLY: "回复", A.REFUND: "同意退款", A.REJECT: "拒绝退款", A.COMPLETE: "完结"}


def state_refusal(state: str, action: ComplaintAction, why: str | None = None):
    """409 INVALID_COMPLAINT_STATE: the complaint's state does not allow ``action``."""
    label = State(state).label
    return conflict(ErrorCode.INVALID_COMPLAINT_STATE, why or f"投诉当前状态为{label}，不能{_VERBS[action]}",
                    state=state, action=action.value)


def decide(complaint, action: ComplaintAction, role: StaffRole) -> Decision:
    """Whether an operator of ``role`` may do ``action`` with ``complaint`` (its ``state``,
    ``problem_type``, ``refund_action``, ``refund_progress`` and ``refund_no``): the refusal the
    use case raises, and the reason the console shows instead of the button.

    - every action needs complaints.handle; a refund also refunds.create (and then the refund
      engine's limits and four-eyes apply);
    - nothing is done to a complaint WeChat says is processed;
    - a refund or a refusal answers a refund request (``problem_type`` REFUND): WeChat takes a
      refund decision for those only ("针对'申请退款单'，需要商户明确返回是否可退款的审批结果"), and
      only one decision ("退款审批结果已提交，不能修改");
    - complete waits while an agreed refund is on its way: the complaint completes itself when
      the money arrives ("退款到账后,投诉单的状态将自动扭转为'处理完成'")."""
    role = StaffRole(role)
    needed = [P.COMPLAINTS_HANDLE] + ([P.REFUNDS_CREATE] if action == A.REFUND else [])
    missing = next((p for p in needed if not has(role, p)), None)
    if missing is not None:
        return Decision(permission_denied(role, missing))
    state = complaint.state
    if State(state) == State.PROCESSED:
        return Decision(state_refusal(state, action, f"投诉已处理完成，不能{_VERBS[action]}"))
    progress = complaint.refund_progress
    if action in (A.REFUND, A.REJECT):
        if complaint.problem_type != ComplaintProblem.REFUND.value:
            return Decision(state_refusal(state, action, f"只有申请退款类投诉可以{_VERBS[action]}"))
        if complaint.refund_action == "REJECT":
            return Decision(state_refusal(state, action, "已拒绝该投诉的退款申请，微信不允许修改退款审批结果"))
    if action == A.REFUND and complaint.refund_no:
        return Decision(state_refusal(state, action, f"该投诉已发起退款（退款单 {complaint.refund_no}）"))
    if action == A.REJECT and complaint.refund_action == "APPROVE":
        return Decision(state_refusal(state, action, "已同意该投诉的退款，微信不允许修改退款审批结果"))
    if action == A.COMPLETE and progress in (Progress.AWAITING_REVIEW.value, Progress.APPROVED.value):
        return Decision(state_refusal(state, action, "同意的退款尚未到账：退款到账后微信会自动完结该投诉"))
    return Decision()


def actions(complaint, role: StaffRole) -> dict:
    """``{action: {allowed, code, reason}}`` for every action (the console's buttons)."""
    return {a.value: decide(complaint, a, role).to_dict() for a in ComplaintAction}


# ---------------------------------------------------------------- what a request may carry


def parse_reply(raw) -> str:
    return text.clean_text(raw, field="content", required=True, max_chars=MAX_REPLY_CHARS)


def parse_reason(raw) -> str:
    return text.clean_text(raw, field="reason", required=True, max_chars=MAX_REASON_CHARS)


@dataclass(frozen=True)
class Image:
    data: bytes = b""
    kind: str = "png"  # png | jpg | bmp

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def filename(self) -> str:
        """The name WeChat's upload needs ("filename ... 必须以JPG、BMP、PNG为后缀")."""
        return f"{self.sha256[:16]}.{self.kind}"


def parse_images(raw) -> list[Image]:
    """``images``: at most MAX_IMAGES base64 texts, each a JPEG, PNG or BMP file of at most 2 MB."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid("images", "必须是图片列表（base64 文本）")
    if len(raw) > MAX_IMAGES:
        raise invalid("images", f"最多 {MAX_IMAGES} 张", max_images=MAX_IMAGES)
    images = []
    for i, item in enumerate(raw):
        field = f"images[{i}]"
        if not isinstance(item, str) or not item or not _BASE64.match(item):
            raise invalid(field, "必须是 base64 编码的图片")
        if len(item) > (MAX_IMAGE_BYTES + 2) // 3 * 4:
            raise invalid(field, f"图片不能超过 {MAX_IMAGE_BYTES // (1024 * 1024)} MB", max_bytes=MAX_IMAGE_BYTES)
        try:
            data = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(field, "必须是 base64 编码的图片") from None
        kind = next((k for magic, k in IMAGE_SIGNATURES if data.startswith(magic)), None)
        if kind is None:
            raise invalid(field, "只支持 JPG、PNG、BMP 图片")
        images.append(Image(data, kind))
    return images


def action_id(complaint_id: str, action: ComplaintAction, payload: dict) -> str:
    """The one id of an action with its content: a retry of the same request is the same action."""
    body = json.dumps({"complaint_id": complaint_id, "action": action.value, **payload}, sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:32]


def mask_phone(phone: str | None) -> str | None:
    """13800138000 -> 138****8000 (what staff without complaints.view_phone see)."""
    if not phone:
        return None
    return phone[:3] + "*" * max(len(phone) - 7, 1) + phone[-4:] if len(phone) > 7 else "*" * len(phone)
