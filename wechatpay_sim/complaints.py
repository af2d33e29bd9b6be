"""Consumer complaints (消费者投诉2.0) of the simulator: complaints, negotiation history,
uploaded images and the complaint notify URL (state and rules only; no I/O, thread-safe).

Sources, quoted where each rule is implemented: WeChat Pay's 消费者投诉2.0 API pages
(pay.weixin.qq.com/docs/merchant/apis/consumer-complaint/..., and the older
pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter10_2_*.shtml), its changelog
(wiki/doc/apiv3/release/chapter5_2.shtml), the field tables mirrored at
wechatpay.im/openapi/v3/merchant-service/... and the wechatpayv3 SDK's ``complaint.py``.
Every public method takes the lock and returns copies; rule violations raise ``ApiError``.
"""
from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from .state import ApiError

CST = _dt.timezone(_dt.timedelta(hours=8))
# "complaint_state ... PENDING | PROCESSING | PROCESSED" (查询投诉单详情)
PENDING, PROCESSING, PROCESSED = "PENDING", "PROCESSING", "PROCESSED"
# "problem_type 问题类型 REFUND | SERVICE_NOT_WORK | OTHERS"; problem_description is WeChat's text
PROBLEM_TYPES = {"REFUND": "申请退款", "SERVICE_NOT_WORK": "服务未生效", "OTHERS": "其他"}
USER_TAGS = ("TRUSTED", "HIGH_RISK")  # "user_tag_list 用户标签列表 TRUSTED | HIGH_RISK"
# 查询投诉单列表: "limit 分页大小 ... 范围[1,50]", "不传默认为10" (SDK docstring);
# "查询日期跨度不超过30天"
LIST_MAX_LIMIT, LIST_DEFAULT_LIMIT, LIST_MAX_SPAN_DAYS = 50, 10, 30
# 查询投诉协商历史: "limit ... 范围[1,300],不传默认为100"
HISTORY_MAX_LIMIT, HISTORY_DEFAULT_LIMIT = 300, 100
# 回复用户: "response_content 必填 string(500) ... 限制500个字符以内" (the 2025 page; older pages
# and the SDK docstring say 200), "response_images ... 最多上传4张图片凭证", "jump_url_text string(10)"
MAX_RESPONSE_CHARS, MAX_IMAGES, MAX_JUMP_TEXT = 500, 4, 10
MAX_REASON_CHARS = 200  # 更新退款审批结果: "reject_reason 选填 string(200)", "remark 选填 string(200)"
# 商户上传反馈图片: "媒体图片只支持JPG、BMP、PNG格式,文件大小不能超过2M", "filename ... 必须以JPG、BMP、PNG为后缀"
MAX_IMAGE_BYTES = 2 * 1024 * 1024
IMAGE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "bmp": "image/bmp"}
MAX_URL_CHARS = 255  # 创建投诉通知回调: "url string[1,255]"
# negotiation-history operate_type values (查询投诉协商历史); note WeChat's own spelling
# MERCHANT_REFUSE_RERUND, while the notification's action_type says MERCHANT_REJECT_REFUND.
OP_USER_CREATE = "USER_CREATE_COMPLAINT"
OP_USER_RESPONSE = "USER_RESPONSE"
OP_MERCHANT_RESPONSE = "MERCHANT_RESPONSE"
OP_MERCHANT_COMPLETE = "MERCHANT_CONFIRM_COMPLETE"
OP_APPROVE = "MERCHANT_APPROVE_REFUND"
OP_REFUSE = "MERCHANT_REFUSE_RERUND"
OP_FULL_REFUNDED = "COMPLAINT_FULL_REFUNDED_SYSTEM_MESSAGE"
OP_PARTIAL_REFUNDED = "COMPLAINT_PARTIAL_REFUNDED_SYSTEM_MESSAGE"
OP_REFUND_RECEIVED = "COMPLAINT_REFUND_RECEIVED_SYSTEM_MESSAGE"
# changelog 2023-03: "operate_type新增枚举值:COMPLAINT_ENTRUSTED_REFUND_SYSTEM_MESSAGE(投诉单受托退款系统通知)"
OP_ENTRUSTED_REFUND = "COMPLAINT_ENTRUSTED_REFUND_SYSTEM_MESSAGE"
# notification action_type values (投诉通知回调: "CREATE_COMPLAINT | ... | MERCHANT_RESPONSE |
# MERCHANT_CONFIRM_COMPLETE | ... | MERCHANT_APPROVE_REFUND | MERCHANT_REJECT_REFUND | REFUND_SUCCESS")
ACT_CREATE, ACT_USER_RESPONSE, ACT_RESPONSE = "CREATE_COMPLAINT", "USER_RESPONSE", "MERCHANT_RESPONSE"
ACT_COMPLETE, ACT_APPROVE, ACT_REJECT = "MERCHANT_CONFIRM_COMPLETE", "MERCHANT_APPROVE_REFUND", "MERCHANT_REJECT_REFUND"
ACT_REFUND_SUCCESS = "REFUND_SUCCESS"
USER, MERCHANT, SYSTEM, WECHAT = "投诉人", "商户", "系统", "微信支付"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _param(message: str) -> ApiError:
    return ApiError(400, "PARAM_ERROR", message)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_REQUEST", message)


def ms_time(epoch: float) -> str:
    """WeChat's complaint times carry milliseconds: "2015-05-20T13:29:35.120+08:00"."""
    return _dt.datetime.fromtimestamp(epoch, CST).isoformat(timespec="milliseconds")


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


@dataclass
class LogEntry:
    log_id: str
    operator: str
    at: float
    operate_type: str
    details: str
    images: list = field(default_factory=list)  # media ids


@dataclass
class Complaint:
    complaint_id: str
    created_at: float
    detail: str
    out_trade_no: str
    transaction_id: str
    order_amount: int  # complaint_order_info.amount: the order total, fen
    openid: str
    amount: int  # the money in dispute (apply_refund_amount of a REFUND complaint), fen
    problem_type: str
    user_tags: list
    phone: str | None
    times: int  # user_complaint_times
    images: list  # the payer's images (media ids)
    state: str = PENDING
    incoming_user_response: bool = False
    full_refunded: bool = False
    completed: bool = False
    entrusting: bool = False
    entrusted_refund: str | None = None  # out_refund_no of WeChat's own refund
    refund_progress: dict | None = None
    responses: list = field(default_factory=list)
    refunds: list = field(default_factory=list)  # out_refund_nos seen arriving
    history: list = field(default_factory=list)


@dataclass
class Media:
    filename: str
    content_type: str
    data: bytes


class ComplaintBook:
    def __init__(self, mchid: str, *, clock=time.time) -> None:
        self.mchid = mchid
        self._clock = clock
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._complaints: dict[str, Complaint] = {}
            self._media: dict[str, Media] = {}
            self._notify_url: str | None = None

    # ---- images ----------------------------------------------------------
    def upload(self, meta: dict, data: bytes) -> str:
        """商户上传反馈图片: the meta is ``{"filename", "sha256"}`` ("图片文件的文件摘要,即对图片
        文件的二进制内容进行sha256计算得到的值"); answers the new media_id."""
        name, digest = meta.get("filename"), meta.get("sha256")
        if not isinstance(name, str) or not isinstance(digest, str) or not name or not digest:
            raise _param("meta must carry filename and sha256")
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if suffix not in IMAGE_TYPES:
            raise _param("filename 必须以JPG、BMP、PNG为后缀")
        if len(data) > MAX_IMAGE_BYTES:
            raise _invalid("图片内容过大，请使用2M以内的图片")
        if not data:
            raise _param("file is empty")
        if hashlib.sha256(data).hexdigest() != digest.lower():
            raise _param("sha256 与上传文件内容不一致")
        return self.add_media(name, data)

    def add_media(self, filename: str, data: bytes) -> str:
        suffix = filename.rsplit(".", 1)[-1].lower()
        media_id = secrets.token_urlsafe(33)
        with self._lock:
            self._media[media_id] = Media(filename, IMAGE_TYPES.get(suffix, "application/octet-stream"), data)
        return media_id

    def media(self, media_id: str) -> Media:
        with self._lock:
            item = self._media.get(media_id)
        if item is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "图片不存在")
        return item

    def _check_media(self, ids, what: str) -> list:
        if ids is None:
            return []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _param(f"{what} must be a list of media_id")
        if len(ids) > MAX_IMAGES:
            raise _param(f"{what}: 最多上传{MAX_IMAGES}张图片凭证")
        unknown = [i for i in ids if i not in self._media]
        if unknown:
            raise _param(f"{what}: unknown media_id {unknown[0]}")
        return list(ids)

    # ---- notify URL ------------------------------------------------------
    def notify_url(self) -> str | None:
        with self._lock:
            return self._notify_url

    def set_notify_url(self, method: str, payload: dict) -> dict | None:
        """POST creates, GET reads, PUT updates, DELETE removes the complaint notify URL."""
        with self._lock:
            if method in ("GET", "PUT", "DELETE") and self._notify_url is None:
                # 查询投诉通知回调地址: "400 RESOURCE_NOT_EXISTS 查询的通知回调不存在 请检查是否已创建通知回调"
                raise ApiError(400, "RESOURCE_NOT_EXISTS", "查询的通知回调不存在")
            if method == "DELETE":
                self._notify_url = None
                return None
            if method in ("POST", "PUT"):
                url = payload.get("url")
                if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > MAX_URL_CHARS:
                    raise _param("url must be an absolute URL of at most 255 characters")
                if method == "POST" and self._notify_url is not None:
                    raise _invalid("投诉通知回调地址已存在，请使用更新接口")
                self._notify_url = url
            return {"mchid": self.mchid, "url": self._notify_url}

    # ---- complaints ------------------------------------------------------
    def create(self, txn: dict, amount: int, *, problem_type: str = "REFUND", description: str | None = None,
               user_tags=None, phone: str | None = None, at: float | None = None, images: int = 0,
               image_bytes: bytes = b"") -> Complaint:
        """A payer complains about a paid transaction (control API)."""
        if problem_type not in PROBLEM_TYPES:
            raise _param(f"problem_type must be one of {list(PROBLEM_TYPES)}")
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= txn["total"]:
            raise _param("amount must be an integer with 0 < amount <= the order total (fen)")
        tags = list(user_tags or [])
        if any(t not in USER_TAGS for t in tags):
            raise _param(f"user_tags must be a subset of {list(USER_TAGS)}")
        if phone is not None and not isinstance(phone, str):
            raise _param("phone must be a string")
        if not isinstance(images, int) or not 0 <= images <= MAX_IMAGES:
            raise _param(f"images must be 0-{MAX_IMAGES}")
        media = [self.add_media(f"user{i + 1}.png", image_bytes) for i in range(images)]
        now = self._clock() if at is None else float(at)
        detail = description or f"{PROBLEM_TYPES[problem_type]}，金额{yuan(amount)}元"
        with self._lock:
            times = 1 + sum(1 for c in self._complaints.values() if c.openid == txn["openid"])
            c = Complaint(
                complaint_id="2002" + "".join(secrets.choice("0123456789") for _ in range(23)),
                created_at=now, detail=detail, out_trade_no=txn["out_trade_no"],
                transaction_id=txn["transaction_id"], order_amount=txn["total"], openid=txn["openid"],
                amount=amount, problem_type=problem_type, user_tags=tags, phone=phone, times=times, images=media,
            )
            self._log(c, USER, OP_USER_CREATE, detail, media, at=now)
            self._complaints[c.complaint_id] = c
            return copy.deepcopy(c)

    def get(self, complaint_id: str) -> Complaint:
        with self._lock:
            return copy.deepcopy(self._find(complaint_id))

    def all(self) -> list[Complaint]:
        with self._lock:
            return copy.deepcopy(sorted(self._complaints.values(), key=lambda c: (c.created_at, c.complaint_id)))

    def _find(self, complaint_id: str) -> Complaint:
        c = self._complaints.get(complaint_id)
        if c is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "投诉单不存在")
        return c

    def _log(self, c: Complaint, operator: str, operate_type: str, details: str, images=(), *, at=None) -> None:
        log_id = "3002" + "".join(secrets.choice("0123456789") for _ in range(23))
        c.history.append(LogEntry(log_id, operator, self._clock() if at is None else at, operate_type, details,
                                  list(images)))

    def page(self, query: dict) -> tuple[list[Complaint], int, int, int]:
        """查询投诉单列表: (page, total, limit, offset) for begin_date..end_date (Beijing dates)."""
        begin, end = _date(query, "begin_date"), _date(query, "end_date")
        if end < begin:
            raise _param("end_date must not be before begin_date")
        if (end - begin).days > LIST_MAX_SPAN_DAYS:
            # "begin_date 必填 ... 注意,查询日期跨度不超过30天"; the error WeChat answers is a 400
            # (developers.weixin.qq.com community thread); code and message not confirmed.
            raise _param("查询日期跨度不能超过30天")
        limit, offset = _paging(query, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT)
        mchid = _one(query, "complainted_mchid")
        if mchid is not None and mchid != self.mchid:
            raise _param("complainted_mchid does not match the requesting merchant")
        with self._lock:
            matching = [c for c in self._complaints.values()
                        if begin <= _dt.datetime.fromtimestamp(c.created_at, CST).date() <= end]
            matching.sort(key=lambda c: (c.created_at, c.complaint_id))
            return copy.deepcopy(matching[offset:offset + limit]), len(matching), limit, offset

    def history_page(self, complaint_id: str, query: dict) -> tuple[list[LogEntry], int, int, int]:
        limit, offset = _paging(query, HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT)
        with self._lock:
            entries = self._find(complaint_id).history
            return copy.deepcopy(entries[offset:offset + limit]), len(entries), limit, offset

    # ---- the merchant's calls (each returns the notification action, or None) ----
    def respond(self, complaint_id: str, payload: dict) -> str:
        """回复用户."""
        _check_mchid(payload, self.mchid)
        content = payload.get("response_content")
        if not isinstance(content, str) or not 1 <= len(content) <= MAX_RESPONSE_CHARS:
            raise _param(f"response_content is required, at most {MAX_RESPONSE_CHARS} characters")
        jump_url, jump_text = payload.get("jump_url"), payload.get("jump_url_text")
        if jump_url is not None and (not isinstance(jump_url, str) or not jump_url.startswith("https://")):
            raise _param("jump_url 链接需满足HTTPS格式")  # "链接需满足HTTPS格式"
        if (jump_url is None) != (jump_text is None):
            raise _param("若传入跳转链接,则跳转链接文案为必传项,二者缺一不可")
        if jump_text is not None and (not isinstance(jump_text, str) or not 1 <= len(jump_text) <= MAX_JUMP_TEXT):
            raise _param(f"jump_url_text must be 1-{MAX_JUMP_TEXT} characters")
        mini = payload.get("mini_program_jump_info")
        if mini is not None and (not isinstance(mini, dict) or not all(
                isinstance(mini.get(k), str) and mini.get(k) for k in ("appid", "path", "text"))):
            raise _param("mini_program_jump_info needs appid, path and text")
        with self._lock:
            images = self._check_media(payload.get("response_images"), "response_images")
            c = self._find(complaint_id)
            # "首次回复用户后,投诉单状态将由待处理更新为处理中"
            if c.state == PENDING:
                c.state = PROCESSING
            c.incoming_user_response = False
            c.responses.append({"content": content, "images": images, "jump_url": jump_url,
                                "jump_url_text": jump_text, "mini_program_jump_info": mini,
                                "at": ms_time(self._clock())})
            self._log(c, MERCHANT, OP_MERCHANT_RESPONSE, content, images)
            return ACT_RESPONSE

    def update_refund(self, complaint_id: str, payload: dict) -> str | None:
        """更新退款审批结果: "针对'申请退款单',需要商户明确返回是否可退款的审批结果"."""
        action = payload.get("action")
        if action not in ("APPROVE", "REJECT"):  # "action 必填 ... REJECT: 拒绝退款 APPROVE: 同意退款"
            raise _param("action must be APPROVE or REJECT")
        day, reason, remark = payload.get("launch_refund_day"), payload.get("reject_reason"), payload.get("remark")
        if action == "APPROVE" and (not isinstance(day, int) or isinstance(day, bool) or day < 0):
            # "launch_refund_day ... 在同意退款时返回,预计将在多少个工作日内能发起退款, 0代表当天"
            raise _param("launch_refund_day (working days, 0 = today) is required to APPROVE")
        if action == "REJECT" and (not isinstance(reason, str) or not 1 <= len(reason) <= MAX_REASON_CHARS):
            raise _param("reject_reason (1-200 characters) is required to REJECT")  # "在拒绝退款时返回拒绝退款的原因"
        if remark is not None and (not isinstance(remark, str) or not 1 <= len(remark) <= MAX_REASON_CHARS):
            raise _param("remark must be 1-200 characters")
        with self._lock:
            media = self._check_media(payload.get("reject_media_list"), "reject_media_list")
            c = self._find(complaint_id)
            if c.problem_type != "REFUND":
                raise _invalid("投诉单不是申请退款单，不能更新退款审批结果")
            progress = {"action": action, "launch_refund_day": day if action == "APPROVE" else None,
                        "reject_reason": reason if action == "REJECT" else None,
                        "reject_media_list": media, "remark": remark}
            if c.refund_progress is not None:
                if all(c.refund_progress.get(k) == v for k, v in progress.items()):
                    return None  # the same decision again: nothing changes
                raise _invalid("退款审批结果已提交，不能修改")
            if c.state == PROCESSED:
                raise _invalid("投诉单已处理完成")
            c.refund_progress = dict(progress, at=ms_time(self._clock()))
            if action == "REJECT":
                # "驳回退款后,投诉单的状态将自动扭转为'处理完成'"
                c.state = PROCESSED
                self._log(c, MERCHANT, OP_REFUSE, reason, media)
                return ACT_REJECT
            # "传入'同意退款'后,需要额外调退款接口发起原路退款。退款到账后,投诉单的状态将自动扭转为'处理完成'"
            c.state = PROCESSING
            self._log(c, MERCHANT, OP_APPROVE, f"同意退款，预计{day}个工作日内发起退款")
            if c.refunds:  # the money arrived before the approval
                self._log(c, SYSTEM, OP_REFUND_RECEIVED, "退款已到账")
                c.state = PROCESSED
            return ACT_APPROVE

    def complete(self, complaint_id: str, payload: dict) -> str | None:
        """反馈处理完成: "反馈投诉单已处理完成。投诉单处理完成后系统将对用户下发满意度评价"."""
        _check_mchid(payload, self.mchid)
        with self._lock:
            c = self._find(complaint_id)
            if c.state == PROCESSED:
                return None  # already done (how WeChat answers a repeat is not documented)
            c.state, c.completed = PROCESSED, True
            self._log(c, MERCHANT, OP_MERCHANT_COMPLETE, "商户反馈处理完成")
            return ACT_COMPLETE

    # ---- the payer and WeChat ------------------------------------------------
    def user_response(self, complaint_id: str, content: str) -> str:
        if not isinstance(content, str) or not content:
            raise _param("content is required")
        with self._lock:
            c = self._find(complaint_id)
            c.incoming_user_response = True  # "incoming_user_response 是否有待回复的用户留言"
            self._log(c, USER, OP_USER_RESPONSE, content)
            return ACT_USER_RESPONSE

    def open_for(self, transaction_id: str) -> bool:
        with self._lock:
            return any(c.transaction_id == transaction_id and c.state != PROCESSED for c in self._complaints.values())

    def refund_arrived(self, transaction_id: str, out_refund_no: str, amount: int, refunded: int) -> list[str]:
        """A refund of the transaction succeeded; ``refunded`` is all that is refunded now. Returns
        the complaints it completes (approved ones: "退款到账后,投诉单的状态将自动扭转为'处理完成'")."""
        done = []
        with self._lock:
            for c in self._complaints.values():
                if (c.transaction_id != transaction_id or c.state == PROCESSED or c.entrusting
                        or out_refund_no in c.refunds):
                    continue  # (WeChat's own refund of an expired complaint is logged by entrusted())
                self._refund_logs(c, out_refund_no, amount, refunded)
                if c.refund_progress and c.refund_progress["action"] == "APPROVE":
                    self._log(c, SYSTEM, OP_REFUND_RECEIVED, f"退款{yuan(amount)}元已到账")
                    c.state = PROCESSED
                    done.append(c.complaint_id)
        return done

    def _refund_logs(self, c: Complaint, out_refund_no: str, amount: int, refunded: int) -> None:
        c.refunds.append(out_refund_no)
        c.full_refunded = refunded >= c.order_amount  # "complaint_full_refunded 投诉单是否已全额退款"
        if c.full_refunded:
            self._log(c, SYSTEM, OP_FULL_REFUNDED, "投诉单已全额退款")
        else:
            self._log(c, SYSTEM, OP_PARTIAL_REFUNDED, f"已部分退款{yuan(amount)}元")

    def begin_entrust(self, complaint_id: str) -> Complaint:
        """The deadline passed: claim the complaint for WeChat's own refund (once)."""
        with self._lock:
            c = self._find(complaint_id)
            if c.state == PROCESSED or c.entrusting:
                raise ApiError(409, "COMPLAINT_CLOSED", f"投诉单已处理完成或正在受托退款 ({c.state})")
            c.entrusting = True
            return copy.deepcopy(c)

    def abort_entrust(self, complaint_id: str) -> None:
        with self._lock:
            self._find(complaint_id).entrusting = False

    def entrusted(self, complaint_id: str, out_refund_no: str, amount: int, refunded: int) -> str:
        """WeChat refunded the payer from the merchant's money; the complaint is done."""
        with self._lock:
            c = self._find(complaint_id)
            c.entrusting, c.entrusted_refund, c.state = False, out_refund_no, PROCESSED
            self._log(c, WECHAT, OP_ENTRUSTED_REFUND, f"商户超时未处理，微信支付受托退款{yuan(amount)}元")
            self._refund_logs(c, out_refund_no, amount, refunded)
            return ACT_REFUND_SUCCESS

    # ---- views -----------------------------------------------------------------
    def api_view(self, c: Complaint, *, encrypt, media_url, detail: bool) -> dict:
        """The complaint as 查询投诉单详情 (``detail``) or a 查询投诉单列表 item answers it."""
        body = {
            "complaint_id": c.complaint_id,
            "complaint_time": ms_time(c.created_at),
            "complaint_detail": c.detail,
            "complaint_state": c.state,
            "complainted_mchid": self.mchid,
            "complaint_order_info": [
                {"transaction_id": c.transaction_id, "out_trade_no": c.out_trade_no, "amount": c.order_amount}
            ],
            "complaint_media_list": [{"media_type": "USER_COMPLAINT_IMAGE", "media_url": [media_url(m) for m in c.images]}]
            if c.images else [],
            "complaint_full_refunded": c.full_refunded,
            "incoming_user_response": c.incoming_user_response,
            "problem_description": PROBLEM_TYPES[c.problem_type],
            "user_complaint_times": c.times,
            "problem_type": c.problem_type,
            "user_tag_list": list(c.user_tags),
            "in_platform_service": False,
            "need_immediate_service": False,
        }
        if c.problem_type == "REFUND":
            body["apply_refund_amount"] = c.amount  # "apply_refund_amount 申请退款金额" (fen)
        if c.phone:
            # "payer_phone ... 商户API证书对应的公钥加密后的BASE64字符串": encrypted for the MERCHANT,
            # who decrypts it with its own private key (not WeChat's key as for requests).
            body["payer_phone"] = encrypt(c.phone)
        if detail:
            body["payer_openid"] = c.openid
        return body

    @staticmethod
    def log_view(e: LogEntry, *, media_url) -> dict:
        urls = [media_url(m) for m in e.images]
        body = {"log_id": e.log_id, "operator": e.operator, "operate_time": ms_time(e.at),
                "operate_type": e.operate_type, "operate_details": e.details, "image_list": urls}
        if urls:
            media_type = "USER_COMPLAINT_IMAGE" if e.operator == USER else "OPERATION_IMAGE"
            body["complaint_media_list"] = {"media_type": media_type, "media_url": urls}
        return body

    @staticmethod
    def control_view(c: Complaint) -> dict:
        return {
            "complaint_id": c.complaint_id, "complaint_time": ms_time(c.created_at), "state": c.state,
            "out_trade_no": c.out_trade_no, "transaction_id": c.transaction_id, "amount": c.amount,
            "order_amount": c.order_amount, "problem_type": c.problem_type, "description": c.detail,
            "user_tags": list(c.user_tags), "phone": c.phone, "user_complaint_times": c.times,
            "incoming_user_response": c.incoming_user_response, "full_refunded": c.full_refunded,
            "responses": copy.deepcopy(c.responses), "refund_progress": copy.deepcopy(c.refund_progress),
            "completed": c.completed, "refunds": list(c.refunds), "entrusted_refund": c.entrusted_refund,
            "history": [{"operate_type": e.operate_type, "operator": e.operator, "operate_details": e.details,
                         "operate_time": ms_time(e.at)} for e in c.history],
        }


def _one(query: dict, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _date(query: dict, name: str) -> _dt.date:
    raw = _one(query, name)
    if raw is None or not _DATE.match(raw):
        raise _param(f"{name} is required, YYYY-MM-DD")
    try:
        return _dt.date.fromisoformat(raw)
    except ValueError:
        raise _param(f"{name} is not a date") from None


def _paging(query: dict, default_limit: int, max_limit: int) -> tuple[int, int]:
    def integer(name: str, default: int) -> int:
        raw = _one(query, name)
        if raw is None:
            return default
        if not re.fullmatch(r"\d+", raw):
            raise _param(f"{name} must be a non-negative integer")
        return int(raw)

    limit, offset = integer("limit", default_limit), integer("offset", 0)
    if not 1 <= limit <= max_limit:
        raise _param(f"limit 范围[1,{max_limit}]")
    return limit, offset


def _check_mchid(payload: dict, mchid: str) -> None:
    # "complainted_mchid 必填 string(64) 【被诉商户号】 投诉单对应的被诉商户号"
    if payload.get("complainted_mchid") != mchid:
        raise _param("complainted_mchid is required and must be the complained-about merchant")
