"""WeChat Pay's trade bill (交易账单, ``bill_type=ALL``): parsing, pure and streaming.

The file is a header row, one line per payment or refund, then a summary header row
(总交易单数, ...) and one summary row. WeChat's 交易账单详细说明 (pay.weixin.qq.com/docs/merchant/
products/bill-download/format-trade.html): "文件内每个字段都使用英文逗号(,)间隔。明细数据和汇总数据每个
字段前会增加1个(`)字符". The values are not quoted, so a data row is split where a comma is
followed by a backtick: a comma inside 商品名称 or 商户数据包 stays in its field. Columns are
found by their Chinese names, so an added or moved column does not shift the others.

Two header formats exist. The same page: "少部分商户目前的账单格式停留在历史早期版本，具体表现为：
没有应结算订单金额字段(对应的是早期账单中的总金额字段)，没有代金券金额字段(对应的是早期账单中的企业红包金额
字段)". That old format (real files: ``...,货币种类,总金额,企业红包金额,微信退款单号,商户退款单号,退款金额,
企业红包退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率`` and the summary ``总交易单数,总交易额,
总退款金额,总企业红包退款金额,手续费总金额``) has no 订单金额 / 申请退款金额 either: a merchant on it
has no 免充值 coupon (enabling one moves it to the current format), so nothing is held back from
settlement and 总金额 is both the settled and the order amount, 退款金额 both the settled and the
requested refund. ``BillLine`` and ``BillSummary`` read the same for both formats.

Amounts are converted to integer fen (fees to thousandths of a fen) by exact
decimal string arithmetic: never through floats. ``iter_bill`` reads one line at
a time and holds nothing but the current line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from .trade_numbers import billable_out_trade_no

BOM = "\ufeff"
SUMMARY_FIRST_COLUMN = "总交易单数"
CURRENT, LEGACY = "current", "legacy"  # the two header formats (module docstring)
# BillLine attribute -> the column it is read from, per format
LINE_SOURCES = {
    CURRENT: {
        "trade_time": "交易时间", "appid": "公众账号ID", "mchid": "商户号", "sub_mchid": "特约商户号",
        "transaction_id": "微信订单号", "out_trade_no": "商户订单号", "trade_type": "交易类型",
        "trade_state": "交易状态", "currency": "货币种类", "settlement_total": "应结订单金额",
        "coupon": "代金券金额", "refund_id": "微信退款单号", "out_refund_no": "商户退款单号",
        "refund": "退款金额", "recharge_coupon_refund": "充值券退款金额", "refund_type": "退款类型",
        "refund_status": "退款状态", "description": "商品名称", "fee": "手续费", "fee_rate": "费率",
        "total": "订单金额", "refund_requested": "申请退款金额",
    },
}
LINE_SOURCES[LEGACY] = {
    **LINE_SOURCES[CURRENT], "sub_mchid": "子商户号", "settlement_total": "总金额", "total": "总金额",
    "coupon": "企业红包金额", "recharge_coupon_refund": "企业红包退款金额", "refund_requested": "退款金额",
}
# the column that tells the formats apart, and the columns each must have
FORMAT_MARK = {CURRENT: "应结订单金额", LEGACY: "总金额"}
REQUIRED = {
    CURRENT: ("交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "商户退款单号",
              "退款金额", "退款状态", "订单金额", "申请退款金额"),
    LEGACY: ("交易时间", "微信订单号", "商户订单号", "交易状态", "总金额", "企业红包金额", "微信退款单号",
             "商户退款单号", "退款金额", "退款状态"),
}
AMOUNT_COLUMNS = ("settlement_total", "coupon", "refund", "recharge_coupon_refund", "total", "refund_requested")
# BillSummary attribute -> the column it is read from, per format
SUMMARY_SOURCES = {
    CURRENT: {"count": "总交易单数", "settlement_total": "应结订单总金额", "refund_total": "退款总金额",
              "recharge_coupon_refund_total": "充值券退款总金额", "fee_total": "手续费总金额",
              "order_total": "订单总金额", "refund_requested_total": "申请退款总金额"},
    LEGACY: {"count": "总交易单数", "settlement_total": "总交易额", "refund_total": "总退款金额",
             "recharge_coupon_refund_total": "总企业红包退款金额", "fee_total": "手续费总金额",
             "order_total": "总交易额", "refund_requested_total": "总退款金额"},
}
SUMMARY_MARK = {CURRENT: "应结订单总金额", LEGACY: "总交易额"}
_DECIMAL = re.compile(r"^(-)?([0-9]+)(?:\.([0-9]+))?$")  # ASCII digits only
# how WeChat writes amounts: exactly two decimals (fees: five); parsed by dropping the point
_FEN = re.compile(r"-?[0-9]+\.[0-9]{2}").fullmatch
_MILLIFEN = re.compile(r"-?[0-9]+\.[0-9]{5}").fullmatch
_EMPTY_NUMBERS = ("", "0")  # how the bill writes "no refund" in the number columns


class BillFormatError(ValueError):
    """The file is not a trade bill as WeChat writes it. ``line`` is 1-based."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


def clean(cell: str) -> str:
    """A cell without its leading backtick and surrounding blanks."""
    cell = cell.strip()
    return cell[1:].strip() if cell.startswith("`") else cell


def parse_decimal(text: str, places: int) -> int:
    """``"12.34"`` -> 1234 for places=2; exact, no floats. Digits beyond ``places`` must be zeros."""
    match = _DECIMAL.match(clean(text))
    if not match:
        raise ValueError(f"not a decimal amount: {text!r}")
    sign, whole, frac = match.group(1), match.group(2), match.group(3) or ""
    if len(frac) > places:
        if frac[places:].strip("0"):
            raise ValueError(f"more than {places} decimals: {text!r}")
        frac = frac[:places]
    value = int(whole) * 10**places + int(frac.ljust(places, "0") or "0")
    return -value if sign else value


def yuan_to_fen(text: str) -> int:
    """Yuan with at most two decimals -> integer fen (``"0.01"`` -> 1, ``"-3.5"`` -> -350)."""
    return parse_decimal(text, 2)


def fee_to_millifen(text: str) -> int:
    """A fee (yuan, up to five decimals) -> thousandths of a fen."""
    return parse_decimal(text, 5)


@dataclass(frozen=True)
class BillLine:
    """One payment or refund line. Amounts in fen, ``fee`` in thousandths of a fen."""

    line_no: int
    trade_time: str  # Beijing time, "YYYY-MM-DD HH:MM:SS"
    appid: str
    mchid: str
    sub_mchid: str
    transaction_id: str
    out_trade_no: str
    trade_type: str
    trade_state: str  # SUCCESS for a payment line, REFUND for a refund line (REVOKED ...)
    currency: str
    settlement_total: int  # 应结订单金额
    coupon: int  # 代金券金额
    refund_id: str  # "" on a payment line
    out_refund_no: str
    refund: int  # 退款金额 (settlement refund: the payer's share)
    recharge_coupon_refund: int
    refund_type: str
    refund_status: str  # SUCCESS / PROCESSING / ... on a refund line
    description: str
    fee: int
    fee_rate: str
    total: int  # 订单金额
    refund_requested: int  # 申请退款金额

    @property
    def is_refund(self) -> bool:
        return bool(self.out_refund_no)

    @property
    def bill_day(self) -> str:
        return self.trade_time[:10]


@dataclass(frozen=True)
class BillSummary:
    """The summary row. Amounts in fen, ``fee_total`` in thousandths of a fen."""

    line_no: int
    count: int
    settlement_total: int
    refund_total: int
    recharge_coupon_refund_total: int
    fee_total: int
    order_total: int
    refund_requested_total: int


def split_row(text: str) -> list[str]:
    """The values of one row as WeChat writes it: a header row is split at its commas; a data
    row (its values each prefixed with a backtick) where a comma is followed by a backtick, so
    a value may itself hold commas. Values come without their backtick, blanks kept."""
    text = text.rstrip("\r\n")
    if text[:1] == BOM:
        text = text[1:]
    if text[:1] == "`":
        return text[1:].split(",`")
    return text.split(",")


def _format(names: list[str], marks: dict[str, str]) -> str | None:
    for fmt, mark in marks.items():
        if mark in names:
            return fmt
    return None


def _index(cells: list[str], line_no: int) -> tuple[dict[str, int], str]:
    """The detail header: column name -> position, and which format it is."""
    names = [c.strip() for c in cells]
    fmt = _format(names, FORMAT_MARK)
    if fmt is None:
        raise BillFormatError(f"header lacks {FORMAT_MARK[CURRENT]} (or {FORMAT_MARK[LEGACY]} of the old format): "
                              "not a trade bill header", line_no)
    missing = [name for name in REQUIRED[fmt] if name not in names]
    if missing:
        raise BillFormatError(f"header lacks {', '.join(missing)}"
                              f"{' (old format)' if fmt == LEGACY else ''}", line_no)
    return {name: i for i, name in enumerate(names) if name}, fmt


def _summary_index(cells: list[str], line_no: int) -> tuple[dict[str, int], str]:
    names = [c.strip() for c in cells]
    fmt = _format(names, SUMMARY_MARK)
    if fmt is None:
        raise BillFormatError(f"summary header lacks {SUMMARY_MARK[CURRENT]} (or {SUMMARY_MARK[LEGACY]})", line_no)
    missing = [name for name in SUMMARY_SOURCES[fmt].values() if name not in names]
    if missing:
        raise BillFormatError(f"summary header lacks {', '.join(missing)}", line_no)
    return {name: i for i, name in enumerate(names) if name}, fmt


_FIELDS = tuple(f for f in BillLine.__dataclass_fields__ if f != "line_no")  # BillLine's order
_KIND = {attr: 2 if attr in AMOUNT_COLUMNS else 3 if attr == "fee" else
         1 if attr in ("refund_id", "out_refund_no", "sub_mchid") else 0 for attr in _FIELDS}


def _plan(index: dict[str, int], fmt: str) -> tuple[tuple[int | None, int], ...]:
    """Per BillLine field (in order): its column in this file's header, and how it is read
    (0 text, 1 number-or-empty, 2 yuan -> fen, 3 fee -> thousandths of a fen)."""
    sources = LINE_SOURCES[fmt]
    return tuple((index.get(sources[attr]), _KIND[attr]) for attr in _FIELDS)


def _line(row: list[str], plan: tuple[tuple[int | None, int], ...], line_no: int) -> BillLine:
    """One detail line; the same result as reading each value with ``clean`` and the amounts
    with ``yuan_to_fen`` / ``fee_to_millifen``, with the common shapes read directly."""
    values: list = [line_no]
    try:
        for i, kind in plan:
            cell = row[i].strip() if i is not None else ""
            if kind == 0:
                values.append(cell)
            elif kind == 1:
                values.append("" if cell in _EMPTY_NUMBERS else cell)
            elif kind == 2:
                values.append(int(cell.replace(".", "")) if _FEN(cell) else yuan_to_fen(cell or "0"))
            else:
                values.append(int(cell.replace(".", "")) if _MILLIFEN(cell) else fee_to_millifen(cell or "0"))
    except ValueError as exc:
        raise BillFormatError(str(exc), line_no) from None
    line = BillLine(*values)
    if not line.out_trade_no or not line.trade_time:
        raise BillFormatError("商户订单号 or 交易时间 is empty", line_no)
    if not billable_out_trade_no(line.out_trade_no):  # a number no API version takes: not WeChat's file
        raise BillFormatError(f"商户订单号 {line.out_trade_no[:40]!r} is not a merchant order number "
                              "(1-32 of [A-Za-z0-9_-|*])", line_no)
    return line


def _summary(row: list[str], index: dict[str, int], fmt: str, line_no: int) -> BillSummary:
    values: dict = {"line_no": line_no}
    try:
        for attr, name in SUMMARY_SOURCES[fmt].items():
            text = row[index[name]].strip() or "0"
            if attr == "count":
                values[attr] = int(text)
            elif attr == "fee_total":
                values[attr] = fee_to_millifen(text)
            else:
                values[attr] = yuan_to_fen(text)
    except ValueError as exc:
        raise BillFormatError(f"summary: {exc}", line_no) from None
    return BillSummary(**values)


def iter_bill(lines: Iterable[str]) -> Iterator[BillLine | BillSummary]:
    """Yield every detail line, then the summary, of a trade bill given as text lines.

    Raises ``BillFormatError`` (and nothing else) for a header of neither format, a row
    whose values do not match its header (a value cut or run together), a malformed amount,
    a summary header without its row, or detail lines after the summary.
    """
    index: dict[str, int] | None = None
    plan: tuple = ()
    width = summary_width = 0
    summary_index: dict[str, int] | None = None
    summary_fmt = CURRENT
    summary_seen = False
    for line_no, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        row = split_row(text)
        if index is None:
            index, fmt = _index(row, line_no)
            plan, width = _plan(index, fmt), len(row)
        elif row[0].strip() == SUMMARY_FIRST_COLUMN:
            summary_index, summary_fmt = _summary_index(row, line_no)
            summary_width = len(row)
        elif text[:1] != "`":
            raise BillFormatError("a data row must start with ` (each value is prefixed with it)", line_no)
        elif summary_index is not None:
            if summary_seen:
                raise BillFormatError("more than one summary row", line_no)
            if len(row) != summary_width:
                raise BillFormatError(f"summary: {len(row)} values for {summary_width} columns", line_no)
            summary_seen = True
            yield _summary(row, summary_index, summary_fmt, line_no)
        elif len(row) != width:
            raise BillFormatError(f"{len(row)} values for {width} columns", line_no)
        else:
            yield _line(row, plan, line_no)
    if index is None:
        raise BillFormatError("empty bill: no header")
    if not summary_seen:
        raise BillFormatError("no summary row (truncated file?)")


def check_totals(lines: Iterable[BillLine], summary: BillSummary) -> list[str]:
    """Names of the summary totals that the detail lines do not add up to (empty: consistent)."""
    count = settlement = refund = recharge = fee = total = requested = 0
    for line in lines:
        count += 1
        settlement += line.settlement_total
        refund += line.refund
        recharge += line.recharge_coupon_refund
        fee += line.fee
        total += line.total
        requested += line.refund_requested
    got = {"count": count, "settlement_total": settlement, "refund_total": refund,
           "recharge_coupon_refund_total": recharge, "fee_total": fee, "order_total": total,
           "refund_requested_total": requested}
    return [name for name, value in got.items() if getattr(summary, name) != value]
