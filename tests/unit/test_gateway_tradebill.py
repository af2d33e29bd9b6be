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
