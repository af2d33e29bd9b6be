"""WeChat Pay's trade bill (交易账单, ``bill_type=ALL``): parsing, pure and streaming.

The file is CSV: a header row, one line per payment or refund with every value
prefixed by a backtick (so spreadsheets keep long numbers as text), amounts in
yuan with two decimals (fees with five), then a summary header row (总交易单数,
应结订单总金额, ...) and one summary row. Columns are found by their Chinese
names, so an added or moved column does not shift the others.

Amounts are converted to integer fen (fees to thousandths of a fen) by exact
decimal string arithmetic: never through floats. ``iter_bill`` reads one line at
a time and holds nothing but the current line.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

BOM = "\ufeff"
SUMMARY_FIRST_COLUMN = "总交易单数"
# column name -> attribute of BillLine
COLUMNS = {
    "交易时间": "trade_time",
    "公众账号ID": "appid",
    "商户号": "mchid",
    "特约商户号": "sub_mchid",
    "微信订单号": "transaction_id",
    "商户订单号": "out_trade_no",
    "交易类型": "trade_type",
    "交易状态": "trade_state",
    "货币种类": "currency",
    "应结订单金额": "settlement_total",
    "代金券金额": "coupon",
    "微信退款单号": "refund_id",
    "商户退款单号": "out_refund_no",
    "退款金额": "refund",
    "充值券退款金额": "recharge_coupon_refund",
    "退款类型": "refund_type",
    "退款状态": "refund_status",
    "商品名称": "description",
    "手续费": "fee",
    "费率": "fee_rate",
    "订单金额": "total",
    "申请退款金额": "refund_requested",
}
REQUIRED = ("交易时间", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "商户退款单号",
            "退款金额", "退款状态", "订单金额", "申请退款金额")
AMOUNT_COLUMNS = ("settlement_total", "coupon", "refund", "recharge_coupon_refund", "total", "refund_requested")
SUMMARY_COLUMNS = {
    "总交易单数": "count",
    "应结订单总金额": "settlement_total",
    "退款总金额": "refund_total",
    "充值券退款总金额": "recharge_coupon_refund_total",
    "手续费总金额": "fee_total",
    "订单总金额": "order_total",
    "申请退款总金额": "refund_requested_total",
}
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


def _index(header: list[str], names: Iterable[str], line_no: int) -> dict[str, int]:
    cells = [clean(c).lstrip(BOM) for c in header]
    missing = [name for name in names if name not in cells]
    if missing:
        raise BillFormatError(f"header lacks {', '.join(missing)}", line_no)
    return {name: cells.index(name) for name in cells if name}


def _cell(row: list[str], index: dict[str, int], name: str) -> str:
    i = index.get(name)
    return clean(row[i]) if i is not None and i < len(row) else ""


_FIELDS = tuple(f for f in BillLine.__dataclass_fields__ if f != "line_no")  # BillLine's order
_KIND = {attr: 2 if attr in AMOUNT_COLUMNS else 3 if attr == "fee" else
         1 if attr in ("refund_id", "out_refund_no", "sub_mchid") else 0 for attr in _FIELDS}


def _plan(index: dict[str, int]) -> tuple[tuple[int | None, int], ...]:
    """Per BillLine field (in order): its column in this file's header, and how it is read
    (0 text, 1 number-or-empty, 2 yuan -> fen, 3 fee -> thousandths of a fen)."""
    by_attr = {attr: index.get(name) for name, attr in COLUMNS.items()}
    return tuple((by_attr[attr], _KIND[attr]) for attr in _FIELDS)


def _line(row: list[str], plan: tuple[tuple[int | None, int], ...], line_no: int) -> BillLine:
    """One detail line; the same result as reading each column with ``clean`` and the amounts
    with ``yuan_to_fen`` / ``fee_to_millifen``, with the common shapes read directly."""
    values: list = [line_no]
    size = len(row)
    try:
        for i, kind in plan:
            cell = row[i].strip() if i is not None and i < size else ""
            if cell[:1] == "`":
                cell = cell[1:].strip()
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
    return line


def _summary(row: list[str], index: dict[str, int], line_no: int) -> BillSummary:
    values: dict = {"line_no": line_no}
    try:
        for name, attr in SUMMARY_COLUMNS.items():
            text = _cell(row, index, name) or "0"
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

    Raises ``BillFormatError`` for a missing header, a malformed amount, a summary
    header without its row, or detail lines after the summary.
    """
    index: dict[str, int] | None = None
    plan: tuple = ()
    summary_index: dict[str, int] | None = None
    summary_seen = False
    for line_no, row in enumerate(csv.reader(lines), start=1):
        if not row or not row[0].strip() and all(not c.strip() for c in row):
            continue
        first = clean(row[0]).lstrip(BOM)
        if index is None:
            index = _index(row, REQUIRED, line_no)
            plan = _plan(index)
        elif first == SUMMARY_FIRST_COLUMN:
            summary_index = _index(row, SUMMARY_COLUMNS, line_no)
        elif summary_index is not None:
            if summary_seen:
                raise BillFormatError("more than one summary row", line_no)
            summary_seen = True
            yield _summary(row, summary_index, line_no)
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
