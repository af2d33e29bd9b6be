"""Codes and their Chinese labels: the single source the API and console read."""
from __future__ import annotations

from enum import Enum, IntEnum


class LabelledIntEnum(IntEnum):
    """An integer code with a Chinese label, e.g. ``OrderStatus.PAID.label == "已支付"``."""

    label: str

    def __new__(cls, value: int, label: str):
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    @classmethod
    def labels(cls) -> dict[int, str]:
        return {m.value: m.label for m in cls}


class OrderStatus(LabelledIntEnum):
    PENDING = (1, "待支付")
    PAID = (2, "已支付")
    CANCELLED = (3, "已取消")
    REFUNDED = (4, "已退款")


class SourceType(LabelledIntEnum):
    MALL = (1, "商城直购")
    LOTTERY = (2, "抽奖票据")
    OTHER = (3, "其他")


class ShippingStatus(LabelledIntEnum):
    PENDING = (1, "待发货")
    SHIPPED = (2, "已发货")
    SIGNED = (3, "已签收")
    EXCEPTION = (4, "异常")


class WinnerFlag(LabelledIntEnum):
    NO = (0, "否")
    YES = (1, "是")


class PrizeLevel(LabelledIntEnum):
    S = (1, "S")
    A = (2, "A")
    B = (3, "B")


class LabelledStrEnum(str, Enum):
    label: str

    def __new__(cls, value: str, label: str):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    @classmethod
    def labels(cls) -> dict[str, str]:
        return {m.value: m.label for m in cls}


class RefundStatus(LabelledStrEnum):
    PENDING_REVIEW = ("pending_review", "待审核")
    REJECTED = ("rejected", "已拒绝")
    SUBMITTED = ("submitted", "已提交")
    PROCESSING = ("processing", "退款中")
    SUCCESS = ("success", "退款成功")
    CLOSED = ("closed", "已关闭")
    ABNORMAL = ("abnormal", "退款异常")
    OFFLINE_PENDING = ("offline_pending", "待线下退款")  # reserved; to be paid outside WeChat
    FAILED = ("failed", "退款失败")


class RefundOrigin(LabelledStrEnum):
    ADMIN = ("admin", "后台发起")
    USER = ("user", "用户申请")
    EXTERNAL = ("external", "微信侧退款")  # made without us (merchant platform, WeChat itself): booked here


class CouponStatus(LabelledStrEnum):
    UNUSED = ("unused", "未使用")
    USED = ("used", "已使用")
    RESTORED = ("restored", "已退回")


class InventoryStatus(LabelledStrEnum):
    HELD = ("held", "持有中")
    CONSUMED = ("consumed", "已消耗")
    REVOKED = ("revoked", "已撤销")


class RestorationStatus(LabelledStrEnum):
    NOT_NEEDED = ("not_needed", "无需还原")
    PENDING = ("pending", "待还原")
    DONE = ("done", "已还原")


class TaskType(LabelledStrEnum):
    RETURN_TO_WAREHOUSE = ("return_to_warehouse", "退货入库")
    VIRTUAL_NOT_REVOCABLE = ("virtual_not_revocable", "虚拟履约无法撤销")
    INVENTORY_NOT_REVOCABLE = ("inventory_not_revocable", "抽奖资产无法撤销")
    REFUND_ABNORMAL = ("refund_abnormal", "退款异常")
    ACCOUNT_ABNORMAL = ("account_abnormal", "用户账户异常")
    OUTCOME_CONFLICT = ("outcome_conflict", "微信结果与本地状态冲突")
    POLL_FAILING = ("poll_failing", "退款查询持续失败")
    OFFLINE_PAYOUT = ("offline_payout", "待线下退款")
    PAID_AFTER_CANCEL = ("paid_after_cancel", "已取消订单收到付款")
    PAYMENT_MISMATCH = ("payment_mismatch", "支付通知与订单不符")
    UNKNOWN_REFUND = ("unknown_refund", "未知退款单的微信通知")
    RECON_DISCREPANCY = ("recon_discrepancy", "对账差异")
    EXTERNAL_REFUND = ("external_refund", "微信侧退款待确认")  # money WeChat refunded without us, booked
    EXTERNAL_REFUND_EXCESS = ("external_refund_excess", "微信侧退款超出可退余额")
    REFUND_REFUSED = ("refund_refused", "退款被微信拒绝")  # a resubmission nobody watched was refused
    COMPLAINT_OVERDUE = ("complaint_overdue", "投诉处理超时")


class AbnormalRefundType(LabelledStrEnum):
    """Where an abnormal refund is sent again (WeChat's apply-abnormal-refund ``type``)."""

    USER_BANK_CARD = ("USER_BANK_CARD", "用户银行卡")
    MERCHANT_BANK_CARD = ("MERCHANT_BANK_CARD", "商户银行卡")


class OfflineReason(LabelledStrEnum):
    """Why a refund must be paid to the player outside WeChat."""

    USER_ACCOUNT_ABNORMAL = ("USER_ACCOUNT_ABNORMAL", "用户微信账户异常，微信无法退款")
    MERCHANT_BANK_CARD = ("MERCHANT_BANK_CARD", "异常退款已退至商户银行卡")
    WINDOW_EXPIRED = ("WINDOW_EXPIRED", "已超过支付后一年，微信不再受理退款")


class PayoutChannel(LabelledStrEnum):
    """How an operator paid a refund outside WeChat."""

    BANK_TRANSFER = ("bank_transfer", "银行转账")
    ALIPAY = ("alipay", "支付宝")
    WECHAT_TRANSFER = ("wechat_transfer", "微信转账")
    CASH = ("cash", "现金")
    OTHER = ("other", "其他")


class TaskStatus(LabelledStrEnum):
    OPEN = ("open", "待处理")
    DONE = ("done", "已处理")


class ReconClass(LabelledStrEnum):
    """How one line of WeChat's trade bill (or one of our records) compares with the other side."""

    MATCHED = ("matched", "一致")
    MISSING_HERE = ("missing_here", "本地无记录")  # WeChat moved money we have no record of
    MISSING_AT_WECHAT = ("missing_at_wechat", "微信无记录")  # we say success, the bill does not
    AMOUNT_MISMATCH = ("amount_mismatch", "金额不一致")
    STATUS_MISMATCH = ("status_mismatch", "状态不一致")
    EXTERNAL_REFUND = ("external_refund", "微信侧退款")  # a refund made without us, booked against its order


class ReconStatus(LabelledStrEnum):
    RUNNING = ("running", "对账中")
    DONE = ("done", "已完成")
    FAILED = ("failed", "失败")
    NOT_READY = ("not_ready", "账单未出")


class StaffRole(LabelledStrEnum):
    """Who an operator is, carried in the staff token's ``role`` claim (domain/staff.py: what each may do)."""

    SUPPORT = ("support", "客服")
    FINANCE = ("finance", "财务")
    ADMIN = ("admin", "管理员")


class Permission(LabelledStrEnum):
    """One action an operator may be allowed; every admin route needs exactly one (domain/staff.py)."""

    ORDERS_VIEW = ("orders.view", "查看订单与退款")
    REFUNDS_PREVIEW = ("refunds.preview", "退款预览")
    REFUNDS_CREATE = ("refunds.create", "发起退款（单笔限额内直接退款）")
    APPLICATIONS_REVIEW = ("applications.review", "审批或拒绝用户退款申请")
    REFUNDS_APPROVE = ("refunds.approve", "审批需审批的后台退款")
    REFUNDS_RESOLVE = ("refunds.resolve", "处理异常退款、登记或取消线下退款")
    TASKS_COMPLETE = ("tasks.complete", "处理人工任务")
    RECONCILE_RUN = ("reconcile.run", "运行对账")
    DATA_EXPORT = ("data.export", "导出 CSV")
    ACTIVITY_VIEW = ("activity.view", "查看操作员操作记录")
    COMPLAINTS_VIEW = ("complaints.view", "查看消费者投诉")
    COMPLAINTS_HANDLE = ("complaints.handle", "处理消费者投诉（回复、退款、驳回、完结）")
    COMPLAINTS_VIEW_PHONE = ("complaints.view_phone", "查看投诉人手机号")


class ApprovalRule(LabelledStrEnum):
    """Why a refund needs a second person's approval, and who that may be."""

    ORDER_FULFILLED = ("order_fulfilled", "货已签收或虚拟商品已履约")
    PLAYER_APPLICATION = ("player_application", "用户申请的退款")
    ABOVE_ROLE_LIMIT = ("above_role_limit", "金额超过发起人角色的单笔限额")
    FINANCE_THRESHOLD = ("finance_threshold", "金额超过财务审批线，只有财务或管理员可以审批")


class StaffAction(LabelledStrEnum):
    """What an operator did to a refund, as the activity log records it."""

    CREATED = ("created", "发起退款")
    APPROVED = ("approved", "审批通过")
    REJECTED = ("rejected", "审批拒绝")
    WITHDRAWN = ("withdrawn", "发起人撤回")
    OFFLINE_PAID = ("offline_paid", "登记线下退款")
    OFFLINE_CANCELLED = ("offline_cancelled", "取消线下退款")


class ComplaintState(LabelledStrEnum):
    """A consumer complaint's state at WeChat Pay (投诉2.0 ``complaint_state``)."""

    PENDING = ("PENDING", "待处理")
    PROCESSING = ("PROCESSING", "处理中")
    PROCESSED = ("PROCESSED", "已处理")


class ComplaintProblem(LabelledStrEnum):
    """What the player complains about (``problem_type``)."""

    REFUND = ("REFUND", "申请退款")
    SERVICE_NOT_WORK = ("SERVICE_NOT_WORK", "服务未生效")
    OTHERS = ("OTHERS", "其他")


class ComplaintUserTag(LabelledStrEnum):
    """WeChat's tags of the complaining player (``user_tag_list``)."""

    TRUSTED = ("TRUSTED", "可信用户")
    HIGH_RISK = ("HIGH_RISK", "高风险投诉")


class ComplaintRefundProgress(LabelledStrEnum):
    """Where a complaint's refund decision stands on our side."""

    AWAITING_REVIEW = ("awaiting_review", "退款待审批")
    APPROVED = ("approved", "已同意退款")
    REFUNDED = ("refunded", "退款已到账")
    REJECTED = ("rejected", "已拒绝退款")
    ENTRUSTED = ("entrusted", "微信已受托退款")


class ComplaintRisk(LabelledStrEnum):
    """How close a complaint is to its deadline."""

    ON_TIME = ("on_time", "正常")
    NEAR = ("near", "即将超时")
    OVERDUE = ("overdue", "已超时")
    DONE = ("done", "已处理")


class ComplaintAction(LabelledStrEnum):
    """What an operator does with a complaint (each a WeChat call)."""

    REPLY = ("reply", "回复用户")
    REFUND = ("refund", "同意退款")
    REJECT = ("reject", "拒绝退款")
    COMPLETE = ("complete", "处理完成")


WECHAT_CHANNEL = "wechat"


def refund_channels() -> list[str]:
    """Where a refund's money went: WeChat Pay, or a channel an operator paid it through."""
    return [WECHAT_CHANNEL, *PayoutChannel.labels()]


def catalogue() -> dict[str, dict]:
    """Every labelled enum: code -> label, by name. The API documents and serves these; the console
    reads its labels and choices from here rather than keeping a copy."""
    return {cls.__name__: {str(k): v for k, v in cls.labels().items()} for cls in (
        OrderStatus, SourceType, ShippingStatus, WinnerFlag, PrizeLevel, RefundStatus, RefundOrigin, CouponStatus,
        InventoryStatus, RestorationStatus, TaskType, AbnormalRefundType, OfflineReason, PayoutChannel, TaskStatus,
        ReconClass, ReconStatus, StaffRole, Permission, ApprovalRule, StaffAction, ComplaintState, ComplaintProblem,
        ComplaintUserTag, ComplaintRefundProgress, ComplaintRisk, ComplaintAction)}
