"""Typed WeChat answers and the error mapping of the gateway (no network)."""
from __future__ import annotations

import json

import pytest

from chalicelib.adapters.wechat.errors import (
    BillNotFound,
    BillNotReady,
    ConfigurationError,
    GatewayMisconfigured,
    NotFound,
    OutcomeUnknown,
    Rejected,
    RetryLater,
    UserAccountAbnormal,
    error_from_response,
)
from chalicelib.adapters.wechat.results import PaymentResult, RefundResult
from chalicelib.domain.trade_numbers import billable_out_trade_no, valid_out_trade_no


def refund(**over):
    body = {"refund_id": "503", "out_refund_no": "R1", "status": "SUCCESS", "success_time": "2026-01-01T10:00:00+08:00",
            "amount": {"total": 1000, "refund": 500, "payer_total": 800, "payer_refund": 400}}
    body.update(over)
    return RefundResult.from_wechat(body)


@pytest.mark.parametrize("account,merchant", [
    ("商户结算银行账户", True), ("商户基本账户", True), ("支付用户零钱", False), ("招商银行信用卡0403", False), (None, False),
])
def test_paid_to_merchant(account, merchant):
    assert refund(user_received_account=account).paid_to_merchant is merchant


def test_refund_amounts_are_typed():
    r = refund(channel="ORIGINAL")
    assert (r.amount.refund, r.amount.payer_refund, r.payer_refund, r.channel) == (500, 400, 400, "ORIGINAL")
    assert refund(amount={"total": 10, "refund": 5}).payer_refund == 5  # absent: the whole refund
    for bad in ({"total": 10, "refund": "5"}, {"total": 10, "refund": 5, "payer_refund": 1.5}, None,
                {"total": 10, "refund": 5, "payer_refund": 6}, {"total": 10, "refund": 5, "payer_refund": -1}):
        with pytest.raises(ValueError):
            refund(amount=bad)
    with pytest.raises(ValueError):
        refund(channel=3)


def test_payment_result_validation():
    paid = {"appid": "wx1", "mchid": "19", "out_trade_no": "T123456", "transaction_id": "42", "trade_state": "SUCCESS",
            "success_time": "2026-01-01T10:00:00+08:00", "amount": {"total": 100, "payer_total": 90}}
    p = PaymentResult.from_wechat(paid)
    assert p.paid and (p.amount.total, p.amount.payer_total) == (100, 90)
    assert p.mismatches(appid="wx1", mchid="19") == () and p.mismatches(appid="wx2", mchid="20") == ("appid", "mchid")
    for over in ({"trade_state": "WHATEVER"}, {"amount": {"total": "100"}}, {"transaction_id": None},
                 {"out_trade_no": ""}):
        with pytest.raises(ValueError):
            PaymentResult.from_wechat({**paid, **over})
    pending = PaymentResult.from_wechat({"out_trade_no": "T123456", "trade_state": "NOTPAY", "amount": {"total": 100}})
    assert not pending.paid and pending.transaction_id is None and pending.amount.payer_total is None


@pytest.mark.parametrize("no,ok", [("T12345", True), ("A" * 32, True), ("T1234", False), ("A" * 33, False),
                                   ("ab-c_d|e*f", True), ("ab@cdef", False), ("订单123456", False), (123456, False)])
def test_out_trade_no_rule(no, ok):
    assert valid_out_trade_no(no) is ok
    assert billable_out_trade_no(no) is (ok or no == "T1234")  # API v2 numbers (on bills) had no minimum


@pytest.mark.parametrize("no", ["T1234", "ab@cdef", "A" * 33, "订单123456"])
def test_an_answer_or_notification_naming_a_number_wechat_never_takes_is_refused(no):
    with pytest.raises(ValueError, match="out_trade_no"):
        refund(out_trade_no=no)
    with pytest.raises(ValueError, match="out_trade_no"):
        PaymentResult.from_wechat({"out_trade_no": no, "trade_state": "NOTPAY", "amount": {"total": 100}})
    assert refund(out_trade_no="T12345").out_trade_no == "T12345"


@pytest.mark.parametrize("status,code,cls", [
    (429, "FREQUENCY_LIMITED", RetryLater), (401, "SIGN_ERROR", ConfigurationError),
    (404, "MCH_NOT_EXISTS", ConfigurationError), (403, "NO_AUTH", ConfigurationError),
    (403, "USER_ACCOUNT_ABNORMAL", UserAccountAbnormal), (404, "ORDER_NOT_EXIST", NotFound),
    (400, "STATEMENT_CREATING", BillNotReady), (400, "NO_STATEMENT_EXIST", BillNotFound),
    (500, "SYSTEM_ERROR", OutcomeUnknown), (400, "INVALID_REQUEST", Rejected),
])
def test_error_mapping(status, code, cls):
    err = error_from_response("op", status, json.dumps({"code": code, "message": "m"}))
    assert type(err) is cls and (err.code, err.http_status) == (code, status)


def test_class_relations_keep_old_callers_working():
    assert issubclass(RetryLater, OutcomeUnknown) and issubclass(UserAccountAbnormal, Rejected)
    assert issubclass(GatewayMisconfigured, OutcomeUnknown) and issubclass(GatewayMisconfigured, ConfigurationError)
    assert not issubclass(ConfigurationError, (Rejected, OutcomeUnknown))
    assert GatewayMisconfigured("X").outcome_known is False and ConfigurationError("X").outcome_known is True
