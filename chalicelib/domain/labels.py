"""What people read in place of machine words: the fields of a task's recorded detail (what
WeChat or the bill said) with their Chinese names and how each value is shown, and WeChat's
states and notification types by their Chinese names. Served to the console in its catalogue
(entrypoints/console.py), the one place these labels live. Plain Python, no I/O."""
from __future__ import annotations

# field -> (label, kind); kind: "fen" (an amount in fen, shown as 元), "time" (shown in Beijing
# time), "wechat" (a WeChat state or event type, shown by its Chinese name), "actor", "text".
DETAIL_FIELDS: dict[str, tuple[str, str]] = {
    "out_refund_no": ("商户退款单号", "text"),
    "refund_id": ("微信退款单号", "text"),
    "out_trade_no": ("商户订单号", "text"),
    "transaction_id": ("微信支付单号", "text"),
    "status": ("微信状态", "wechat"),
    "trade_state": ("微信交易状态", "wechat"),
    "event_type": ("通知类型", "wechat"),
    "refund": ("退款金额", "fen"),
    "total": ("订单金额", "fen"),
    "payer_refund": ("退至用户", "fen"),
    "payer_total": ("用户实付", "fen"),
    "amount": ("金额", "fen"),
    "ours_amount": ("本地金额", "fen"),
    "theirs_amount": ("微信金额", "fen"),
    "accepted_at": ("微信受理时间", "time"),
    "success_time": ("成功时间", "time"),
    "create_time": ("创建时间", "time"),
    "heard_by": ("获知途径", "actor"),
    "actor": ("获知途径", "actor"),
    "complaint_id": ("投诉单号", "text"),
    "appid": ("应用 ID（appid）", "text"),
    "mchid": ("商户号（mchid）", "text"),
    "bill_date": ("账单日期", "text"),
    "line_no": ("账单行号", "text"),
    "reason": ("原因", "text"),
}

# ``<name>_yuan`` beside ``<name>`` repeats it for people: the console shows the fen field as 元.
YUAN_SUFFIX = "_yuan"

# WeChat's words, by their meaning in /work/shared/wechatpay-v3.md: refund status "PROCESSING (in
# flight), SUCCESS (refunded), CLOSED (failed ...), ABNORMAL (bank card cancelled/frozen ...)";
# "refund events: REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED"; payment "trade_state: SUCCESS,
# REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR". A refund's SUCCESS and a payment's
# SUCCESS differ: the field says which (``status`` is a refund's, ``trade_state`` a payment's).
WECHAT_REFUND_STATES = {
    "SUCCESS": "退款成功", "PROCESSING": "退款处理中", "CLOSED": "退款关闭", "ABNORMAL": "退款异常",
}
WECHAT_TRADE_STATES = {
    "SUCCESS": "支付成功", "REFUND": "转入退款", "NOTPAY": "未支付", "CLOSED": "已关闭", "REVOKED": "已撤销",
    "USERPAYING": "用户支付中", "PAYERROR": "支付失败",
}
WECHAT_EVENTS = {
    "REFUND.SUCCESS": "退款成功通知", "REFUND.ABNORMAL": "退款异常通知", "REFUND.CLOSED": "退款关闭通知",
    "TRANSACTION.SUCCESS": "支付成功通知",
}

# who learned of something (``heard_by``, ``success_actor``, a history event's actor): the
# system's own actors; a person is shown as their role:id.
SYSTEM_ACTORS = {
    "wechat": "微信通知", "poller": "主动查询微信", "reconciliation": "对账", "system": "系统",
}


def catalogue() -> dict:
    """The labels above, as the console reads them."""
    return {"fields": {k: {"label": label, "kind": kind} for k, (label, kind) in DETAIL_FIELDS.items()},
            "wechat": {"status": WECHAT_REFUND_STATES, "trade_state": WECHAT_TRADE_STATES,
                       "event_type": WECHAT_EVENTS},
            "actors": SYSTEM_ACTORS}
