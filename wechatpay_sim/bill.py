"""The trade bill (交易账单) of one day, built from the simulator's ledger.

Format, as WeChat serves ``bill_type=ALL``: a header row, one line per payment
and per refund with every value prefixed by a backtick (so spreadsheets keep
long numbers as text), amounts in yuan with two decimals (fees with five), then
a summary header and one summary row. Lines end with CRLF. Times are Beijing
time. Which day bills what, from WeChat's 交易账单详细说明 (pay.weixin.qq.com/docs/
merchant/products/bill-download/format-trade.html), "明细内容包含":

* "(1)当天支付成功的订单": a payment on the day it was paid;
* "(2)当天发起退款成功的退款单，退款发起成功就会出账，出账后退款状态不会更新如果需要获取最新退款
  状态，请使用查询单笔退款API查询": a refund on the day it was accepted (create_time), whatever
  became of it later, and on no other day. Its 交易时间 is "指该笔交易的支付成功时间或发起退款成功
  时间(注:不是退款成功时间)".

Its 退款状态 is the status at the day's cut (``Refund.status_at`` the next midnight): the
product introduction (pay.weixin.qq.com/docs/partner/products/bill-download/introduction/
fund-bill.html) says "交易账单 | 以交易的支付成功时间或商户退款受理成功时间判断" and "账单的生成实际
上是在日切点后，对前一个周期待出账数据的一个数据快照 ... 一旦生成了账单，数据后续的变化不会再反映到账单
文件中". A refund accepted and settled the same day shows SUCCESS (or CLOSED, ABNORMAL); one
accepted at 23:59 and settled at 00:01 shows PROCESSING, on that day's bill only.

Coupons are modelled as merchant-funded (免充值): the settlement amount
(应结订单金额) is what the payer paid, the coupon shows under 代金券金额, and a
refund's 退款金额 is the payer's share while 申请退款金额 is the whole refund.

The old format (``LEGACY``) some merchants still get ("少部分商户目前的账单格式停留在历史早期版本，
具体表现为：没有应结算订单金额字段(对应的是早期账单中的总金额字段)，没有代金券金额字段(对应的是早期账单中的
企业红包金额字段)", same page), with the header and summary real old files show: its 总金额 is
the order amount, 企业红包金额 the coupon, 退款金额 the whole refund and 企业红包退款金额 the coupon's
share of it.

Faults (``check_fault``) change the bill as served so that each discrepancy a
reconciliation must find can be produced on purpose.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Iterable

from .records import Refund, Transaction
from .state import ApiError

CST = _dt.timezone(_dt.timedelta(hours=8))
HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
).split(",")
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额".split(",")
LEGACY_HEADER = (
    "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "总金额,企业红包金额,微信退款单号,商户退款单号,退款金额,企业红包退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率"
).split(",")
LEGACY_SUMMARY_HEADER = "总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额".split(",")
CURRENT, LEGACY = "current", "legacy"
BILL_FORMATS = (CURRENT, LEGACY)
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
FEE_RATE_PER_MILLE = 6  # 0.60%
FAULT_KINDS = ("DROP_LINE", "CHANGE_AMOUNT", "EXTRA_REFUND", "FLIP_STATUS", "NOT_READY", "HASH_MISMATCH")
_COL = {name: i for i, name in enumerate(HEADER)}


def yuan(fen: int) -> str:
    """Integer fen as yuan with two decimals, exactly (no floats)."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(fen), 100)
    return f"{sign}{q}.{r:02d}"


def fee_yuan(millifen: int) -> str:
    """A fee in thousandths of a fen as yuan with five decimals."""
    sign = "-" if millifen < 0 else ""
    q, r = divmod(abs(millifen), 100_000)
    return f"{sign}{q}.{r:05d}"


def beijing_time(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, CST).strftime("%Y-%m-%d %H:%M:%S")


def day_bounds(bill_date: str) -> tuple[float, float]:
    """The first second of a Beijing day and of the next (epoch seconds): the day's cut."""
    start = _dt.datetime.combine(_dt.date.fromisoformat(bill_date), _dt.time(0), CST)
    return start.timestamp(), (start + _dt.timedelta(days=1)).timestamp()


def check_fault(fault: object) -> dict:
    """Validate a bill fault switch; returns a clean copy."""
    if not isinstance(fault, dict) or fault.get("kind") not in FAULT_KINDS:
        raise ApiError(400, "PARAM_ERROR", f"kind must be one of {', '.join(FAULT_KINDS)}")
    kind = fault["kind"]
    out = {"kind": kind}
    for name in ("bill_date", "out_trade_no", "out_refund_no", "status", "transaction_id"):
        if fault.get(name) is not None:
            if not isinstance(fault[name], str) or not fault[name]:
                raise ApiError(400, "PARAM_ERROR", f"{name} must be a non-empty string")
            out[name] = fault[name]
    if fault.get("amount") is not None:
        amount = fault["amount"]
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise ApiError(400, "PARAM_ERROR", "amount must be a non-negative integer (fen)")
        out["amount"] = amount
    if "bill_date" in out:
        try:
            _dt.date.fromisoformat(out["bill_date"])
        except ValueError:
            raise ApiError(400, "PARAM_ERROR", "bill_date must be YYYY-MM-DD") from None
    if kind in ("DROP_LINE", "CHANGE_AMOUNT") and not ("out_trade_no" in out or "out_refund_no" in out):
        raise ApiError(400, "PARAM_ERROR", f"{kind} needs out_trade_no (payment line) or out_refund_no (refund line)")
    if kind == "CHANGE_AMOUNT" and "amount" not in out:
        raise ApiError(400, "PARAM_ERROR", "CHANGE_AMOUNT needs amount (fen)")
    if kind == "FLIP_STATUS" and not ("out_refund_no" in out and "status" in out):
        raise ApiError(400, "PARAM_ERROR", "FLIP_STATUS needs out_refund_no and status")
    if kind == "EXTRA_REFUND" and not ("out_trade_no" in out and "amount" in out and "bill_date" in out):
        raise ApiError(400, "PARAM_ERROR", "EXTRA_REFUND needs bill_date, out_trade_no and amount (fen)")
    if kind in ("NOT_READY", "HASH_MISMATCH") and "bill_date" not in out:
        raise ApiError(400, "PARAM_ERROR", f"{kind} needs bill_date")
    return out


def _fee(settled_fen: int) -> int:
    """Handling fee in thousandths of a fen (0.60% of the settled amount)."""
    return settled_fen * FEE_RATE_PER_MILLE


def _payment_line(t: Transaction, appid: str, mchid: str) -> dict:
    return {
        "交易时间": beijing_time(t.paid_at or 0), "公众账号ID": t.appid or appid, "商户号": mchid, "特约商户号": "0",
        "设备号": "", "微信订单号": t.transaction_id, "商户订单号": t.out_trade_no, "用户标识": t.openid,
        "交易类型": "JSAPI", "交易状态": "SUCCESS", "付款银行": "OTHERS", "货币种类": "CNY",
        "应结订单金额": t.payer_total, "代金券金额": t.coupon, "微信退款单号": "0", "商户退款单号": "0",
        "退款金额": 0, "充值券退款金额": 0, "退款类型": "", "退款状态": "", "商品名称": t.description,
        "商户数据包": "", "手续费": _fee(t.payer_total), "费率": "0.60%", "订单金额": t.total,
        "申请退款金额": 0, "费率备注": "",
    }


def _refund_line(r: Refund, t: Transaction | None, appid: str, mchid: str, status: str) -> dict:
    """A refund as billed on the day it was accepted: 交易时间 its create_time, 退款状态 ``status``."""
    return {
        "交易时间": beijing_time(r.created_at), "公众账号ID": (t.appid if t else None) or appid, "商户号": mchid,
        "特约商户号": "0", "设备号": "", "微信订单号": r.transaction_id, "商户订单号": r.out_trade_no,
        "用户标识": t.openid if t else "", "交易类型": "JSAPI", "交易状态": "REFUND", "付款银行": "OTHERS",
        "货币种类": "CNY", "应结订单金额": 0, "代金券金额": 0, "微信退款单号": r.refund_id,
        "商户退款单号": r.out_refund_no, "退款金额": r.payer_refund, "充值券退款金额": 0,
        "退款类型": "ORIGINAL", "退款状态": status, "商品名称": t.description if t else "",
        "商户数据包": "", "手续费": -_fee(r.payer_refund), "费率": "0.60%", "订单金额": 0,
        "申请退款金额": r.refund, "费率备注": "",
    }


def _matches(fault: dict, line: dict) -> bool:
    if "out_refund_no" in fault:
        return line["交易状态"] == "REFUND" and line["商户退款单号"] == fault["out_refund_no"]
    return line["交易状态"] != "REFUND" and line["商户订单号"] == fault.get("out_trade_no")


def _apply_faults(lines: list[dict], faults: Iterable[dict], bill_date: str, appid: str, mchid: str,
                  transactions: dict[str, Transaction]) -> list[dict]:
    for fault in faults:
        if fault.get("bill_date", bill_date) != bill_date:
            continue
        kind = fault["kind"]
        if kind == "DROP_LINE":
            lines = [line for line in lines if not _matches(fault, line)]
        elif kind == "CHANGE_AMOUNT":
            for line in lines:
                if _matches(fault, line):
                    if line["交易状态"] == "REFUND":
                        line["退款金额"] = line["申请退款金额"] = fault["amount"]
                    else:
                        line["应结订单金额"] = line["订单金额"] = fault["amount"]
        elif kind == "FLIP_STATUS":
            for line in lines:
                if _matches(fault, line):
                    line["退款状态"] = fault["status"]
        elif kind == "EXTRA_REFUND":
            t = transactions.get(fault["out_trade_no"])
            extra = Refund(
                refund_id=fault.get("refund_id", "50300" + fault["out_trade_no"][-8:].rjust(24, "0")),
                out_refund_no=fault.get("out_refund_no", "EXTRA" + fault["out_trade_no"][-20:]),
                transaction_id=t.transaction_id if t else fault.get("transaction_id", "4200000000000000000000000000"),
                out_trade_no=fault["out_trade_no"],
                refund=fault["amount"],
                total=t.total if t else fault["amount"],
                reason=None,
                notify_url=None,
                created_at=_dt.datetime.fromisoformat(bill_date + "T12:00:00+08:00").timestamp(),
                payer_total=t.payer_total if t else 0,
                status="SUCCESS",
            )
            lines.append(_refund_line(extra, t, appid, mchid, "SUCCESS"))
    return lines


def _legacy(line: dict) -> dict:
    """A line in the old format's columns (module docstring)."""
    return {**line, "子商户号": line["特约商户号"], "总金额": line["订单金额"], "企业红包金额": line["代金券金额"],
            "退款金额": line["申请退款金额"], "企业红包退款金额": line["申请退款金额"] - line["退款金额"]}


def render(lines: list[dict], fmt: str = CURRENT) -> bytes:
    """The CSV text of ``lines`` (values as built above, in the current format's columns) in
    format ``fmt``, with its summary rows."""
    header, summary_header = (LEGACY_HEADER, LEGACY_SUMMARY_HEADER) if fmt == LEGACY else (HEADER, SUMMARY_HEADER)
    if fmt == LEGACY:
        lines = [_legacy(line) for line in lines]
        summed = ("总金额", "退款金额", "企业红包退款金额", "手续费")
    else:
        summed = ("应结订单金额", "退款金额", "充值券退款金额", "手续费", "订单金额", "申请退款金额")
    out = [",".join(header)]
    totals = dict.fromkeys(summed, 0)
    for line in lines:
        for name in summed:
            totals[name] += line[name]
        cells = []
        for name in header:
            value = line[name]
            if name == "手续费":
                value = fee_yuan(value)
            elif isinstance(value, int):
                value = yuan(value)
            cells.append("`" + str(value))
        out.append(",".join(cells))
    out.append(",".join(summary_header))
    out.append(",".join("`" + v for v in (
        str(len(lines)), *(fee_yuan(totals[name]) if name == "手续费" else yuan(totals[name]) for name in summed))))
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


def build(
    bill_date: str,
    bill_type: str,
    transactions: list[Transaction],
    refunds: list[Refund],
    *,
    appid: str,
    mchid: str,
    faults: Iterable[dict] = (),
    fmt: str = CURRENT,
) -> tuple[bytes, int]:
    """The bill of ``bill_date`` (Beijing) as bytes, and how many detail lines it has: the
    payments made that day, and the refunds accepted that day with their status at its cut."""
    start, cut = day_bounds(bill_date)
    by_no = {t.out_trade_no: t for t in transactions}
    lines: list[dict] = []
    if bill_type in ("ALL", "SUCCESS"):
        paid = [t for t in transactions if t.paid_at is not None and t.transaction_id and start <= t.paid_at < cut]
        lines += [_payment_line(t, appid, mchid) for t in sorted(paid, key=lambda t: t.paid_at or 0)]
    if bill_type in ("ALL", "REFUND"):
        accepted = sorted((r for r in refunds if start <= r.created_at < cut), key=lambda r: r.created_at)
        lines += [_refund_line(r, by_no.get(r.out_trade_no), appid, mchid, r.status_at(cut)) for r in accepted]
    lines = _apply_faults(lines, faults, bill_date, appid, mchid, by_no)
    return render(lines, fmt), len(lines)


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
