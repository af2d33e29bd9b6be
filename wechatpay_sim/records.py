"""The simulator's ledger records: a payment (``Transaction``) and a refund (``Refund``), and
how each is written in WeChat's answers and notifications."""
from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field

from .crypto import rfc3339

OUTCOMES = ("SUCCESS", "CLOSED", "ABNORMAL")
WALLET_ACCOUNT = "支付用户零钱"
# trade_state of the payment query API
TRADE_STATES = ("SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR")
TRADE_STATE_DESC = {
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "NOTPAY": "未支付",
    "CLOSED": "已关闭",
    "REVOKED": "已撤销（付款码支付）",
    "USERPAYING": "用户支付中（付款码支付）",
    "PAYERROR": "支付失败(其他原因，如银行返回失败)",
}


@dataclass
class Transaction:
    out_trade_no: str
    transaction_id: str  # "" until paid
    total: int
    paid_at: float | None
    openid: str
    payer_total: int  # < total when a (merchant-funded) coupon paid part of it
    state: str = "SUCCESS"  # SUCCESS | NOTPAY | CLOSED ... (REFUND is derived)
    description: str = "盲盒商品"
    # The app the order was placed through; None: the merchant's own (the simulator's appid).
    # One merchant number can serve several apps: "对账单是以商户号纬度来生成的，如一个商户号与多个
    # appid有绑定关系 ... 对账单中的appid取自交易时候提交的appid" (下载交易账单, pay.weixin.qq.com/wiki/
    # doc/api/wxpay/ch/pay/NativePay/chapter8_6.shtml).
    appid: str | None = None

    @property
    def coupon(self) -> int:
        return self.total - self.payer_total

    def to_dict(self) -> dict:
        return asdict(self)

    def payment_resource(self, appid: str, mchid: str, trade_state: str | None = None) -> dict:
        """The Transaction object of the query API and of TRANSACTION.SUCCESS."""
        state = trade_state or self.state
        body: dict = {
            "appid": self.appid or appid,
            "mchid": mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": state,
            "trade_state_desc": TRADE_STATE_DESC.get(state, state),
            "attach": "",
            "payer": {"openid": self.openid},
            "amount": {"total": self.total, "currency": "CNY"},
        }
        if self.transaction_id:
            body["transaction_id"] = self.transaction_id
            body["bank_type"] = "OTHERS"
            body["amount"].update(payer_total=self.payer_total, payer_currency="CNY")
        if self.paid_at is not None:
            body["success_time"] = rfc3339(self.paid_at)
        if self.coupon and self.transaction_id:
            body["promotion_detail"] = [{
                "coupon_id": "1" + self.transaction_id[-9:],
                "name": "商户代金券",
                "scope": "GLOBAL",
                "type": "DISCOUNT",  # 免充值: funded by the merchant, not settled to it
                "amount": self.coupon,
                "wechatpay_contribute": 0,
                "merchant_contribute": self.coupon,
                "other_contribute": 0,
                "currency": "CNY",
            }]
        return body


@dataclass
class Refund:
    refund_id: str
    out_refund_no: str
    transaction_id: str
    out_trade_no: str
    refund: int
    total: int
    reason: str | None
    notify_url: str | None
    created_at: float
    payer_total: int = 0  # what the payer paid of total (total - coupon)
    status: str = "PROCESSING"
    success_at: float | None = None
    user_received_account: str = WALLET_ACCOUNT
    channel: str = "ORIGINAL"
    funds_account: str = "AVAILABLE"
    version: int = 0  # bumped on each status change; stale outcome timers compare it
    pending_outcome: str = "SUCCESS"  # what the running PROCESSING phase ends in
    pending_account: str | None = None  # account once an abnormal refund is re-routed
    pending_channel: str | None = None
    create_calls: int = 0
    query_calls: int = 0
    abnormal_applications: int = 0
    history: list = field(default_factory=list)

    def status_at(self, moment: float) -> str:
        """The status this refund had just before ``moment`` (epoch seconds, after its acceptance):
        the last change recorded before it. Refunds put into the ledger without a history
        (``register_ledger``) count as settled at ``success_at``, or at acceptance without one."""
        if not self.history:
            settled = self.success_at if self.success_at is not None else self.created_at
            return self.status if settled < moment else "PROCESSING"
        status = "PROCESSING"
        for entry_status, when in self.history:  # rfc3339 seconds: truncation never crosses a second
            if _dt.datetime.fromisoformat(when).timestamp() >= moment:
                break
            status = entry_status
        return status

    @property
    def discount_refund(self) -> int:
        """The coupon's share of this refund (WeChat refunds coupons pro rata)."""
        payer_total = self.payer_total or self.total
        return (self.total - payer_total) * self.refund // self.total

    @property
    def payer_refund(self) -> int:
        return self.refund - self.discount_refund

    def amount(self) -> dict:
        return {
            "total": self.total,
            "refund": self.refund,
            "payer_total": self.payer_total or self.total,
            "payer_refund": self.payer_refund,
            "settlement_total": self.payer_total or self.total,
            "settlement_refund": self.payer_refund,
            "discount_refund": self.discount_refund,
            "currency": "CNY",
            "from": [],
        }

    def to_api(self) -> dict:
        """The Refund object of the create / query / abnormal-refund answers."""
        body = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "channel": self.channel,
            "user_received_account": self.user_received_account,
            "create_time": rfc3339(self.created_at),
            "status": self.status,
            "funds_account": self.funds_account,
            "amount": self.amount(),
            "promotion_detail": [],
        }
        if self.success_at is not None:
            body["success_time"] = rfc3339(self.success_at)
        return body

    def to_resource(self, mchid: str) -> dict:
        """The decrypted resource of a REFUND.* notification."""
        body = {
            "mchid": mchid,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "refund_status": self.status,
            "user_received_account": self.user_received_account,
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "payer_total": self.payer_total or self.total,
                "payer_refund": self.payer_refund,
            },
        }
        if self.success_at is not None:
            body["success_time"] = rfc3339(self.success_at)
        return body

    def to_control(self) -> dict:
        body = self.to_api()
        body.update(
            create_calls=self.create_calls,
            query_calls=self.query_calls,
            abnormal_applications=self.abnormal_applications,
            notify_url=self.notify_url,
            reason=self.reason,
            history=list(self.history),
        )
        return body
