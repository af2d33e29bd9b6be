"""Reconciliation (对账) rules: how a trade-bill line compares with our order or refund, the
figures of a run, the dates that may be reconciled, and the crossing-midnight rule. Pure
Python: the service feeds it records and bill lines, it answers classes and figures.

Our side, in brief: a payment line (交易状态 SUCCESS) is matched by ``out_trade_no`` (our order
number) against the order, comparing 订单金额 with the order's ``actual_amount``; a refund line
(交易状态 REFUND) by ``out_refund_no`` against the refund, comparing 申请退款金额 (the whole
refund, coupon share included) with the refund's ``amount``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from . import clock
from .enums import OrderStatus, ReconClass, ReconStatus, RefundStatus
from .refunds import AWAITING_WECHAT, WECHAT_STATUS
from .errors import invalid

HISTORY_DAYS = 90  # WeChat serves about three months of bills
ACTOR = "reconciliation"
C = ReconClass
S = RefundStatus

# what a refund line's 退款状态 says, as our statuses; and ours still waiting for WeChat
WECHAT_REFUND_STATUS = WECHAT_STATUS
AWAITING = AWAITING_WECHAT
PAID_STATUSES = frozenset({OrderStatus.PAID.value, OrderStatus.REFUNDED.value})
DISCREPANCIES = tuple(c for c in ReconClass if c is not C.MATCHED)  # every class but 一致


# ---------------------------------------------------------------- days


def bill_time_iso(trade_time: str) -> str:
    """A bill's 交易时间 (Beijing, ``YYYY-MM-DD HH:MM:SS``) as RFC 3339, as WeChat's APIs write it."""
    return trade_time.replace(" ", "T") + "+08:00"


def previous_day(now: datetime) -> str:
    """The Beijing date before ``now``'s: what the daily run reconciles."""
    return (clock.beijing_date(now) - timedelta(days=1)).isoformat()


def today(now: datetime) -> str:
    """Today in Beijing: its bill is not out before tomorrow morning."""
    return clock.beijing_day(now)


def overdue(bill_date: str, status: str | None, now: datetime, overdue_hour: int) -> bool:
    """A day is overdue when it is still not reconciled (no run, its bill not out, a failed or a
    stuck run) past ``overdue_hour`` (Beijing) of the next day or later."""
    if status == ReconStatus.DONE.value:
        return False
    due = datetime.combine(date.fromisoformat(bill_date) + timedelta(days=1), time(overdue_hour), clock.BEIJING)
    return now >= due


def parse_bill_date(raw: object, now: datetime) -> str:
    """A date that may be reconciled: ``YYYY-MM-DD``, from today back ``HISTORY_DAYS`` (Beijing)."""
    day = clock.calendar_day(raw)
    if day is None:
        raise invalid("bill_date", "必须是日期 YYYY-MM-DD")
    first, last = window(now)
    if not first <= day <= last:
        raise invalid("bill_date", f"必须在 {first} 至 {last} 之间（微信只保留约三个月的账单）")
    return raw


def window(now: datetime) -> tuple[date, date]:
    last = clock.beijing_date(now)
    return last - timedelta(days=HISTORY_DAYS), last


def dates(now: datetime) -> list[str]:
    """Every date that may be reconciled, newest first."""
    first, last = window(now)
    return [(last - timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def near_midnight(success_time: str | None, bill_date: str, minutes: int) -> tuple[bool, bool]:
    """Whether a success at ``success_time`` lies within ``minutes`` after the start (first) or
    before the end (second) of ``bill_date``: WeChat may bill it under the adjacent day."""
    if not success_time or minutes <= 0:
        return False, False
    moment = clock.parse(success_time)
    if moment is None:
        return False, False
    start = datetime.combine(date.fromisoformat(bill_date), time(0), clock.BEIJING)
    end = start + timedelta(days=1)
    margin = timedelta(minutes=minutes)
    return start <= moment < start + margin, end - margin <= moment < end


def adjacent(bill_date: str, days: int) -> str:
    return (date.fromisoformat(bill_date) + timedelta(days=days)).isoformat()


# ---------------------------------------------------------------- one comparison


@dataclass(frozen=True)
class Finding:
    """What one comparison found."""

    cls: ReconClass
    kind: str  # payment | refund
    order_no: str
    refund_no: str | None = None
    ours_amount: int | None = None
    theirs_amount: int | None = None
    ours_status: str | None = None
    theirs_status: str | None = None
    line_no: int | None = None
    note: str | None = None
    query: bool = False  # the final state is WeChat's to tell: the service asks (refund or payment query)

    @property
    def subject(self) -> str:
        return self.refund_no or self.order_no

    @property
    def amount(self) -> int:
        """The money a discrepancy is about (for the per-class sums): the larger side."""
        return max(abs(self.ours_amount or 0), abs(self.theirs_amount or 0))


def compare_payment(line, order) -> Finding:
    """A payment line (交易状态 SUCCESS) against our order (None: we have none). A payment that
    arrived after the order was cancelled, and was recorded so, is known money: it matches.
    ``query``: the bill shows a payment our order does not have yet; WeChat's payment query
    tells the service what to book (a lost notification, on a pending or a cancelled order)."""
    base = dict(kind="payment", order_no=line.out_trade_no, theirs_amount=line.total,
                theirs_status=line.trade_state, line_no=line.line_no)
    if order is None:
        return Finding(C.MISSING_HERE, note="微信有支付记录，本地无此订单", **base)
    status = OrderStatus(order.status)
    ours = dict(ours_amount=order.actual_amount, ours_status=status.label)
    if order.actual_amount != line.total:
        return Finding(C.AMOUNT_MISMATCH, note="订单金额不一致", **base, **ours)
    if order.status in PAID_STATUSES:
        return Finding(C.MATCHED, **base, **ours)
    if status == OrderStatus.CANCELLED and getattr(order, "paid_after_cancel", False):
        return Finding(C.MATCHED, note="订单取消后收到的付款，已记录待退款", **base, **ours)
    if status in (OrderStatus.PENDING, OrderStatus.CANCELLED):
        return Finding(C.STATUS_MISMATCH, note=f"微信显示已支付，本地订单为{status.label}", query=True, **base, **ours)
    return Finding(C.STATUS_MISMATCH, note=f"微信显示已支付，本地订单为{status.label}", **base, **ours)


# 退款状态 on a refund line is the status the refund had when WeChat billed it, on the day it
# accepted the refund: "当天发起退款成功的退款单，退款发起成功就会出账，出账后退款状态不会更新"
# (shared/wechatpay-v3.md). A line says the refund was accepted; its final state is the query's.
UNSETTLED_HERE = frozenset({S.PENDING_REVIEW, S.REJECTED, S.FAILED})  # no money left through WeChat, say we


def compare_refund(line, refund) -> Finding:
    """A refund line against our refund (a record, or the day index's projection with
    ``amount``, ``status``, ``order_no``; None: we have none). The line belongs to the day
    WeChat accepted the refund; a PROCESSING line is an accepted refund, not a mismatch.
    ``query``: the line shows a final status our refund is still waiting for: the refund
    query gives its final state (and where the money went), never the bill alone."""
    theirs = WECHAT_REFUND_STATUS.get(line.refund_status)
    base = dict(kind="refund", order_no=line.out_trade_no, refund_no=line.out_refund_no,
                theirs_amount=line.refund_requested, theirs_status=line.refund_status or line.trade_state,
                line_no=line.line_no)
    if refund is None:
        return Finding(C.MISSING_HERE, note="微信有退款记录，本地无此退款单", **base)
    ours_status = S(refund.status)
    ours = dict(ours_amount=refund.amount, ours_status=ours_status.value, order_no=refund.order_no)
    base.pop("order_no")
    if refund.amount != line.refund_requested:
        return Finding(C.AMOUNT_MISMATCH, note="退款金额不一致", **base, **ours)
    if ours_status in UNSETTLED_HERE:
        return Finding(C.STATUS_MISMATCH, note=f"微信已受理该退款，本地为{ours_status.label}：请核对资金，勿重复退款",
                       **base, **ours)
    if theirs == S.SUCCESS and ours_status == S.CLOSED:
        return Finding(C.STATUS_MISMATCH, note="微信退款成功，本地为已关闭：请核对资金，勿重复退款", **base, **ours)
    if theirs == S.CLOSED and ours_status == S.SUCCESS:
        return Finding(C.STATUS_MISMATCH, note="本地退款成功，微信受理当日已关闭：请核对资金", **base, **ours)
    if theirs in (S.SUCCESS, S.CLOSED) and ours_status in AWAITING:
        return Finding(C.MATCHED, note=f"微信受理当日为{line.refund_status}，以退款查询结果为准", query=True,
                       **base, **ours)
    return Finding(C.MATCHED, **base, **ours)


def missing_at_wechat(refund_no: str, order_no: str, amount: int, accepted_at: str | None, status: str) -> Finding:
    return Finding(C.MISSING_AT_WECHAT, kind="refund", order_no=order_no, refund_no=refund_no, ours_amount=amount,
                   ours_status=status, note=f"微信于 {accepted_at or '时间未知'} 受理该退款，当日账单却无此退款：请核对")


def external_refund(line, refund_no: str, status: str | None, *, held: bool = False) -> Finding:
    """A refund line for a refund made without us, now booked against its order (``held``: it
    was more than the order could still refund; the order is on hold instead)."""
    note = ("非本系统发起的退款，超过订单可退余额：订单已暂停退款，待人工核对" if held
            else "非本系统发起的退款（商户平台或微信侧），已记入订单，待人工确认")
    return Finding(C.EXTERNAL_REFUND, kind="refund", order_no=line.out_trade_no, refund_no=refund_no,
                   theirs_amount=line.refund_requested, ours_amount=None if held else line.refund_requested,
                   ours_status=status, theirs_status=line.refund_status, line_no=line.line_no, note=note)


def payment_missing_at_wechat(order_no: str, amount: int, status: int, paid_at: str | None) -> Finding:
    return Finding(C.MISSING_AT_WECHAT, kind="payment", order_no=order_no, ours_amount=amount,
                   ours_status=OrderStatus(status).label,
                   note=f"本地已记录支付（{paid_at or '时间未知'}），微信账单无此支付")


# ---------------------------------------------------------------- figures of a run


def _zero_classes() -> dict:
    return {c.value: {"count": 0, "amount": 0} for c in ReconClass}


@dataclass
class Figures:
    """Counts and sums of a run, JSON-serialisable for the report and the checkpoint."""

    lines_read: int = 0
    payment_lines: int = 0
    refund_lines: int = 0
    classes: dict = field(default_factory=_zero_classes)
    # ours: what our books say for the day's bill (payments recorded, refunds WeChat accepted that day)
    ours: dict = field(default_factory=lambda: {"payments": 0, "payment_count": 0, "refunds": 0, "refund_count": 0})
    theirs: dict = field(default_factory=lambda: {"payments": 0, "payment_count": 0, "refunds": 0, "refund_count": 0})
    summary: dict | None = None  # the bill's summary row
    bill_consistent: bool | None = None  # the lines add up to the summary row
    totals_match: bool | None = None  # our totals equal the bill's
    applied: int = 0  # refunds the bill settled through the normal transition
    matched_adjacent: int = 0  # successes WeChat billed on the day before or after
    deferred: int = 0  # refunds and payments near midnight whose adjacent bill was not out yet
    resolved: int = 0  # tasks of an earlier run's discrepancies this run no longer found (closed)
    other_apps: dict = field(default_factory=dict)  # appid -> lines, payments, refunds of other apps

    def add(self, finding: Finding) -> None:
        entry = self.classes[finding.cls.value]
        entry["count"] += 1
        entry["amount"] += finding.amount

    def count_line(self, line) -> None:
        """A detail line read from the bill (their side)."""
        self.lines_read += 1
        if line.is_refund:
            self.refund_lines += 1
            self.theirs["refunds"] += line.refund_requested
            self.theirs["refund_count"] += 1
        else:
            self.payment_lines += 1
            self.theirs["payments"] += line.total
            self.theirs["payment_count"] += 1

    @property
    def matched(self) -> int:
        return self.classes[C.MATCHED.value]["count"]

    @property
    def discrepancies(self) -> int:
        return sum(self.classes[c.value]["count"] for c in DISCREPANCIES)

    def to_dict(self) -> dict:
        return {"lines_read": self.lines_read, "payment_lines": self.payment_lines,
                "refund_lines": self.refund_lines, "matched": self.matched, "discrepancies": self.discrepancies,
                "classes": self.classes, "ours": self.ours, "theirs": self.theirs, "summary": self.summary,
                "bill_consistent": self.bill_consistent, "totals_match": self.totals_match, "applied": self.applied,
                "matched_adjacent": self.matched_adjacent, "deferred": self.deferred, "resolved": self.resolved,
                "other_apps": self.other_apps}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Figures":
        f = cls()
        if not data:
            return f
        f.other_apps = {appid: dict(entry) for appid, entry in (data.get("other_apps") or {}).items()}
        for name in ("lines_read", "payment_lines", "refund_lines", "applied", "matched_adjacent", "deferred",
                     "resolved"):
            setattr(f, name, int(data.get(name) or 0))
        for name in ("ours", "theirs"):
            getattr(f, name).update(data.get(name) or {})
        for key, value in (data.get("classes") or {}).items():
            if key in f.classes:
                f.classes[key] = {"count": int(value.get("count", 0)), "amount": int(value.get("amount", 0))}
        f.summary, f.bill_consistent, f.totals_match = data.get("summary"), data.get("bill_consistent"), \
            data.get("totals_match")
        return f

    def close(self, summary) -> None:
        """The bill's summary row: does it add up, and do our totals equal the bill's?"""
        if summary is not None:
            self.summary = {"count": summary.count, "settlement_total": summary.settlement_total,
                            "refund_total": summary.refund_total, "order_total": summary.order_total,
                            "refund_requested_total": summary.refund_requested_total,
                            "fee_total": summary.fee_total}
            self.bill_consistent = (summary.count == self.lines_read
                                    and summary.order_total == self.theirs["payments"]
                                    and summary.refund_requested_total == self.theirs["refunds"])
        else:  # WeChat has no bill: no line, no money moved
            self.bill_consistent = True
        self.totals_match = (self.ours["payments"] == self.theirs["payments"]
                             and self.ours["refunds"] == self.theirs["refunds"])
