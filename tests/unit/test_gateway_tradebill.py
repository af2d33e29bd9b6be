"""Trade bill parsing (chalicelib.domain.tradebill): pure functions, no I/O."""
from __future__ import annotations

import pytest

from chalicelib.domain.tradebill import (
    BillFormatError,
    BillLine,
    BillSummary,
    check_totals,
    clean,
    fee_to_millifen,
    iter_bill,
    yuan_to_fen,
)

HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
          "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
          "手续费,费率,订单金额,申请退款金额,费率备注")
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
PAYMENT = ("`2021-01-28 17:07:11,`wx81be3101902f7cb2,`1601959334,`0,`,`4200000925202101284997714292,"
           "`S20210128170702357723,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`SUCCESS,`OTHERS,`CNY,`12.34,`0.66,`0,`0,"
           "`0.00,`0.00,`,`,`for testing,`cipher code,`0.07404,`0.60%,`13.00,`0.00,`")
REFUND = ("`2021-01-29 09:00:00,`wx81be3101902f7cb2,`1601959334,`0,`,`4200000925202101284997714292,"
          "`S20210128170702357723,`ofyak5qR_1wYsC99CsWA6R9MJazA,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
          "`50300807092021020105990201735,`R20210129A,`4.75,`0.00,`ORIGINAL,`SUCCESS,`for testing,`,"
          "`-0.02850,`0.60%,`0.00,`5.00,`")
SUMMARY = "`2,`12.34,`4.75,`0.00,`0.04554,`13.00,`5.00"


def bill(*rows: str, newline: str = "\r\n") -> list[str]:
    return [row + newline for row in rows]


@pytest.mark.parametrize("text,fen", [
    ("0.01", 1), ("`12.34", 1234), ("7", 700), ("1.5", 150), ("-3.50", -350), ("0.00", 0),
    ("` 100.10 ", 10010), ("19999999.99", 1999999999), ("1.230", 123),
])
def test_yuan_to_fen_is_exact(text, fen):
    assert yuan_to_fen(text) == fen
    assert isinstance(yuan_to_fen(text), int)


@pytest.mark.parametrize("text", ["", "abc", "1.234", "1,00", "1e3", "0x10", "1.2.3", "--1", "１.00"])
def test_malformed_amounts_are_refused(text):
    with pytest.raises(ValueError):
        yuan_to_fen(text)


def test_fees_have_five_decimals():
    assert fee_to_millifen("`0.07404") == 7404
    assert fee_to_millifen("-0.02850") == -2850
    assert fee_to_millifen("0.00000") == 0


def test_clean_strips_the_backtick():
    assert clean("`4200000925") == "4200000925" and clean("  `x ") == "x" and clean("plain") == "plain"


def test_a_bill_streams_lines_then_the_summary():
    rows = list(iter_bill(bill(HEADER, PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY)))
    payment, refund, summary = rows
    assert isinstance(payment, BillLine) and not payment.is_refund
    assert (payment.out_trade_no, payment.transaction_id, payment.trade_state) == (
        "S20210128170702357723", "4200000925202101284997714292", "SUCCESS")
    assert (payment.settlement_total, payment.coupon, payment.total, payment.fee) == (1234, 66, 1300, 7404)
    assert payment.out_refund_no == "" and payment.refund_id == "" and payment.bill_day == "2021-01-28"
    assert isinstance(refund, BillLine) and refund.is_refund
    assert (refund.out_refund_no, refund.refund_status, refund.refund, refund.refund_requested) == (
        "R20210129A", "SUCCESS", 475, 500)
    assert refund.fee == -2850 and refund.trade_state == "REFUND"
    assert summary == BillSummary(line_no=5, count=2, settlement_total=1234, refund_total=475,
                                  recharge_coupon_refund_total=0, fee_total=4554, order_total=1300,
                                  refund_requested_total=500)
    assert check_totals([payment, refund], summary) == []
    assert not hasattr(payment, "openid")  # personal data is not carried


def test_bom_lf_line_ends_and_moved_columns_are_fine():
    cols = HEADER.split(",")
    cells = PAYMENT.split(",")
    order = list(range(len(cols)))
    order[5], order[6] = order[6], order[5]  # swap 微信订单号 and 商户订单号
    header = "\ufeff" + ",".join(cols[i] for i in order)
    row = ",".join(cells[i] for i in order)
    line, summary = iter_bill(bill(header, row, SUMMARY_HEADER, "`1,`12.34,`0.00,`0.00,`0.07404,`13.00,`0.00",
                                   newline="\n"))
    assert line.out_trade_no == "S20210128170702357723" and line.transaction_id.startswith("42000")
    assert check_totals([line], summary) == []


def test_totals_that_do_not_add_up_are_named():
    payment, summary = iter_bill(bill(HEADER, PAYMENT, SUMMARY_HEADER, "`1,`12.35,`0.00,`0.00,`0.07404,`13.00,`0.00"))
    assert check_totals([payment], summary) == ["settlement_total"]


@pytest.mark.parametrize("rows,message", [
    ([], "no header"),
    (["交易时间,商户订单号"], "header lacks"),
    ([HEADER, PAYMENT], "no summary row"),
    ([HEADER, PAYMENT, SUMMARY_HEADER], "no summary row"),
    ([HEADER, PAYMENT.replace("`12.34", "`12.3x"), SUMMARY_HEADER, SUMMARY], "line 2"),
    ([HEADER, PAYMENT, SUMMARY_HEADER, SUMMARY, SUMMARY], "more than one summary"),
    ([HEADER, PAYMENT, SUMMARY_HEADER, SUMMARY.replace("`2,", "`two,")], "summary"),
])
def test_malformed_bills_are_refused(rows, message):
    with pytest.raises(BillFormatError, match=message):
        list(iter_bill(bill(*rows)))


def test_parsing_is_lazy():
    def lines():
        yield HEADER + "\r\n"
        yield PAYMENT + "\r\n"
        raise AssertionError("read past the first line")

    first = next(iter_bill(lines()))
    assert first.out_trade_no == "S20210128170702357723"


# ---------------------------------------------------------------- values as WeChat writes them

def _with(row: str, column: str, value: str) -> str:
    """``row`` (a PAYMENT/REFUND-shaped line) with ``column`` of HEADER set to ``value``."""
    cells = row.split(",`")
    cells[HEADER.split(",").index(column)] = value if column != "交易时间" else "`" + value
    return ",`".join(cells)


def test_a_comma_inside_a_value_stays_in_its_field():
    """商品名称 / 商户数据包 are the merchant's text: WeChat does not quote them, so only a comma
    followed by a backtick separates two values (a plain CSV reader would shift every column
    after the comma and read 商户数据包 as 手续费)."""
    row = _with(_with(PAYMENT, "商品名称", "盲盒,限定款 \"星空\""), "商户数据包", "a=1,b=2,")
    line, summary = iter_bill(bill(HEADER, row, SUMMARY_HEADER, "`1,`12.34,`0.00,`0.00,`0.07404,`13.00,`0.00"))
    assert line.description == '盲盒,限定款 "星空"'
    assert (line.settlement_total, line.fee, line.fee_rate, line.total) == (1234, 7404, "0.60%", 1300)
    assert check_totals([line], summary) == []


def test_an_empty_value_and_a_backtick_inside_a_value():
    row = _with(PAYMENT, "商品名称", "it`s")  # a backtick not after a comma is part of the value
    [line, _] = iter_bill(bill(HEADER, row, SUMMARY_HEADER, SUMMARY))
    assert line.description == "it`s" and line.refund_id == "" and line.sub_mchid == ""


@pytest.mark.parametrize("rows,message", [
    ([HEADER, PAYMENT.rsplit(",`", 1)[0], SUMMARY_HEADER, SUMMARY], "26 values for 27 columns"),
    ([HEADER, PAYMENT + ",`extra", SUMMARY_HEADER, SUMMARY], "28 values for 27 columns"),
    ([HEADER, PAYMENT.replace("`", ""), SUMMARY_HEADER, SUMMARY], "must start with `"),
    ([HEADER, PAYMENT, SUMMARY_HEADER, SUMMARY.rsplit(",`", 1)[0]], "summary: 6 values for 7 columns"),
    ([HEADER, PAYMENT, "总交易单数,应结订单总金额", SUMMARY], "summary header lacks 退款总金额"),
    ([HEADER, PAYMENT, "总交易单数,合计", SUMMARY], "summary header lacks 应结订单总金额"),
    ([HEADER.replace("应结订单金额", "结算金额"), PAYMENT], "not a trade bill header"),
    ([HEADER.replace("申请退款金额", "退款申请额"), PAYMENT], "header lacks 申请退款金额"),
])
def test_rows_that_do_not_fit_their_header_are_refused(rows, message):
    with pytest.raises(BillFormatError, match=message) as exc:
        list(iter_bill(bill(*rows)))
    assert exc.value.line is not None  # the report names the line


@pytest.mark.parametrize("number,ok", [
    ("S20210128170702357723", True), ("a|b*c-d_e", True),
    ("12345", True),  # API v2 had no minimum length: another app's old order on the same merchant number
    ("A" * 33, False), ("S2021 0128", False), ("订单123456", False), ("ab@cdef", False), ("S1;DROP", False),
])
def test_a_line_whose_merchant_order_number_no_api_version_takes_is_refused(number, ok):
    row = _with(PAYMENT, "商户订单号", number)
    rows = bill(HEADER, row, SUMMARY_HEADER, SUMMARY)
    if ok:
        assert next(iter_bill(rows)).out_trade_no == number
        return
    with pytest.raises(BillFormatError, match="line 2: 商户订单号 .* is not a merchant order number"):
        list(iter_bill(rows))


def test_a_damaged_file_only_ever_raises_bill_format_error():
    """Cut the file anywhere inside a line: the run reports a format error, never crashes."""
    text = "".join(bill(HEADER, PAYMENT, REFUND, SUMMARY_HEADER, SUMMARY))
    for cut in range(0, len(text), 7):
        damaged = text[:cut] + text[cut + 5:]
        try:
            list(iter_bill(damaged.splitlines(keepends=True)))
        except BillFormatError:
            pass


# ---------------------------------------------------------------- the old format

OLD_HEADER = ("交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
              "总金额,企业红包金额,微信退款单号,商户退款单号,退款金额,企业红包退款金额,退款类型,退款状态,商品名称,商户数据包,"
              "手续费,费率")
OLD_SUMMARY_HEADER = "总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额"
OLD_PAYMENT = ("`2018-09-17 10:19:25,`wx81be3101902f7cb2,`1601959334,`0,`WEB,`4200000159201809170000000001,"
               "`S20180917101925,`ofyak5qR_1wYsC99CsWA6R9MJazA,`JSAPI,`SUCCESS,`CFT,`CNY,`20.00,`2.00,`0,`0,"
               "`0.00,`0.00,`,`,`盲盒,两只装,`店铺A,`0.12000,`0.60%")
OLD_REFUND = ("`2018-09-17 18:12:37,`wx81be3101902f7cb2,`1601959334,`0,`WEB,`4200000159201809170000000001,"
              "`S20180917101925,`ofyak5qR_1wYsC99CsWA6R9MJazA,`JSAPI,`REFUND,`CFT,`CNY,`0.00,`0.00,"
              "`50000307862018091706030153581,`R20180917A,`5.00,`0.50,`ORIGINAL,`PROCESSING,`盲盒,两只装,`,"
              "`-0.03000,`0.60%")
OLD_SUMMARY = "`2,`20.00,`5.00,`0.50,`0.09000"


def test_the_old_format_reads_like_the_current_one():
    """总金额 stands for 应结订单金额 and 订单金额, 企业红包金额 for 代金券金额, 退款金额 for the
    requested refund too, 企业红包退款金额 for 充值券退款金额; 子商户号 for 特约商户号."""
    payment, refund, summary = iter_bill(bill("\ufeff" + OLD_HEADER, OLD_PAYMENT, OLD_REFUND, OLD_SUMMARY_HEADER,
                                              OLD_SUMMARY))
    assert (payment.settlement_total, payment.total, payment.coupon, payment.fee) == (2000, 2000, 200, 12000)
    assert (payment.description, payment.sub_mchid, payment.trade_state) == ("盲盒,两只装", "", "SUCCESS")
    assert refund.is_refund and (refund.out_refund_no, refund.refund_status) == ("R20180917A", "PROCESSING")
    assert (refund.refund, refund.refund_requested, refund.recharge_coupon_refund) == (500, 500, 50)
    assert (refund.total, refund.settlement_total) == (0, 0)
    assert summary == BillSummary(line_no=5, count=2, settlement_total=2000, refund_total=500,
                                  recharge_coupon_refund_total=50, fee_total=9000, order_total=2000,
                                  refund_requested_total=500)
    assert check_totals([payment, refund], summary) == []


def test_an_old_header_missing_a_column_is_named():
    with pytest.raises(BillFormatError, match=r"line 1: header lacks 企业红包金额 \(old format\)"):
        list(iter_bill(bill(OLD_HEADER.replace(",企业红包金额", ""), OLD_PAYMENT)))
