"""The trade bill: the simulator builds it from its ledger, the gateway fetches, verifies and
streams it (real SDK, real HTTP)."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import time
import uuid

import pytest
import requests

from chalicelib.adapters.wechat.errors import (
    BillHashMismatch,
    BillNotFound,
    BillNotReady,
    GatewayMisconfigured,
    Rejected,
)
from chalicelib.domain.tradebill import BillLine, BillSummary, check_totals
from tests.wechat_fixtures import wechat_sim, wechat_sim_session  # noqa: F401

CST = dt.timezone(dt.timedelta(hours=8))


def new_no(prefix: str = "R") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def beijing_day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, CST).strftime("%Y-%m-%d")


@pytest.fixture
def gw(wechat_sim):
    return wechat_sim.gateway()


@pytest.fixture
def ledger(wechat_sim, gw):
    """Two payments made yesterday (Beijing), one with a coupon, and two refunds accepted (and
    settled at once) today. Returns the two bill dates and the records. Bills are served at once
    (today's so far): WeChat's are out from about 10:00 the next day."""
    wechat_sim.configure(bill_ready_hour=None)
    yesterday_noon = dt.datetime.combine(dt.datetime.now(CST).date() - dt.timedelta(days=1), dt.time(12), CST)
    plain = wechat_sim.paid_order(1000, paid_at=yesterday_noon.timestamp())
    coupon = wechat_sim.paid_order(2000, paid_at=yesterday_noon.timestamp() + 60, payer_total=1500)
    refunds = []
    for order, amount in ((plain, 300), (coupon, 1000)):
        wechat_sim.push_scenario("IMMEDIATE_SUCCESS")
        refunds.append(gw.create_refund(out_refund_no=new_no(), amount=amount, total=order["total"],
                                        out_trade_no=order["out_trade_no"]))
    refund_day = refunds[0].create_time[:10]  # Beijing (+08:00), as WeChat writes it
    assert refunds[1].create_time[:10] == refund_day
    return {"pay_day": beijing_day(yesterday_noon.timestamp()), "refund_day": refund_day,
            "plain": plain, "coupon": coupon, "refunds": refunds}


def read(bill) -> tuple[list[BillLine], BillSummary]:
    with bill:
        *lines, summary = list(bill)
    assert isinstance(summary, BillSummary) and all(isinstance(line, BillLine) for line in lines)
    assert check_totals(lines, summary) == []
    return lines, summary


def test_payments_are_billed_on_their_day(wechat_sim, gw, ledger):
    lines, summary = read(gw.download_trade_bill(ledger["pay_day"]))
    by_no = {line.out_trade_no: line for line in lines}
    if ledger["pay_day"] != ledger["refund_day"]:
        assert all(not line.is_refund for line in lines)
    plain, coupon = by_no[ledger["plain"]["out_trade_no"]], by_no[ledger["coupon"]["out_trade_no"]]
    assert (plain.trade_state, plain.total, plain.settlement_total, plain.coupon) == ("SUCCESS", 1000, 1000, 0)
    assert (coupon.total, coupon.settlement_total, coupon.coupon) == (2000, 1500, 500)
    assert plain.transaction_id == ledger["plain"]["transaction_id"]
    assert (plain.appid, plain.mchid) == (wechat_sim.keyset.appid, wechat_sim.keyset.mchid)
    assert plain.trade_time.startswith(ledger["pay_day"] + " 12:00:")
    assert plain.fee == 6000  # 0.60% of 10.00 yuan = 0.06000 yuan, in thousandths of a fen
    assert summary.order_total >= 3000 and summary.count == len(lines)


def test_refunds_are_billed_on_the_day_they_were_accepted(wechat_sim, gw, ledger):
    lines, summary = read(gw.download_trade_bill(ledger["refund_day"], bill_type="REFUND"))
    plain_r, coupon_r = ledger["refunds"]
    got = {line.out_refund_no: line for line in lines}
    assert set(got) == {plain_r.out_refund_no, coupon_r.out_refund_no}
    a, b = got[plain_r.out_refund_no], got[coupon_r.out_refund_no]
    assert (a.trade_state, a.refund_status, a.refund, a.refund_requested, a.refund_id) == (
        "REFUND", "SUCCESS", 300, 300, plain_r.refund_id)
    assert a.trade_time == plain_r.create_time[:19].replace("T", " ")  # 发起退款成功时间
    assert (b.refund, b.refund_requested) == (750, 1000)  # the payer's share of a coupon order
    assert summary.refund_requested_total == 1300 and summary.refund_total == 1050


def test_the_download_is_unsigned_needs_our_signature_and_its_hash_covers_the_bill(wechat_sim, gw, ledger):
    client = gw._sdk()
    status, text = client.trade_bill(bill_date=ledger["pay_day"])  # signed answer, verified by the SDK
    meta = json.loads(text)
    assert status == 200 and meta["hash_type"] == "SHA1"
    assert requests.get(meta["download_url"], timeout=5).status_code == 401  # no Authorization
    status, data = client.download_bill(meta["download_url"])  # the SDK's signed GET
    assert status == 200 and isinstance(data, bytes) and data[:2] == b"\x1f\x8b"
    bill = gzip.decompress(data)
    assert hashlib.sha1(bill).hexdigest() == meta["hash_value"] != hashlib.sha1(data).hexdigest()
    text = bill.decode("utf-8")
    assert text.startswith("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,")
    assert "\r\n总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n`" in text
    assert f",`{ledger['plain']['out_trade_no']}," in text and ",`10.00," in text
    raw = requests.get(meta["download_url"], headers={"Authorization": _authorization(wechat_sim, meta)}, timeout=5)
    assert raw.status_code == 200 and "Wechatpay-Signature" not in raw.headers
    assert gw.download_trade_bill(ledger["pay_day"]).hash_value == hashlib.sha1(bill).hexdigest()


def _authorization(handle, meta) -> str:
    from urllib.parse import urlsplit

    from wechatpayv3.utils import build_authorization, load_private_key

    url = urlsplit(meta["download_url"])
    return build_authorization(f"{url.path}?{url.query}", "GET", handle.keyset.mchid, handle.keyset.merchant_serial,
                               load_private_key(handle.keyset.merchant_private_key_pem))


@pytest.mark.parametrize("kind", ["DROP_LINE", "CHANGE_AMOUNT", "EXTRA_REFUND", "FLIP_STATUS"])
def test_injected_discrepancies(wechat_sim, gw, ledger, kind):
    day, target = ledger["refund_day"], ledger["refunds"][0]
    fault = {
        "DROP_LINE": {"out_refund_no": target.out_refund_no},
        "CHANGE_AMOUNT": {"out_refund_no": target.out_refund_no, "amount": 299},
        "EXTRA_REFUND": {"out_trade_no": ledger["plain"]["out_trade_no"], "amount": 111,
                         "out_refund_no": "NEVERMADE1"},
        "FLIP_STATUS": {"out_refund_no": target.out_refund_no, "status": "PROCESSING"},
    }[kind]
    answer = requests.post(wechat_sim.base_url + "/sim/bill-faults", json={"kind": kind, "bill_date": day, **fault},
                           timeout=5)
    assert answer.status_code == 200, answer.text
    lines, _ = read(gw.download_trade_bill(day))  # the summary follows the lines as served
    refunds = {line.out_refund_no: line for line in lines if line.is_refund}
    if kind == "DROP_LINE":
        assert target.out_refund_no not in refunds and ledger["refunds"][1].out_refund_no in refunds
    elif kind == "CHANGE_AMOUNT":
        assert refunds[target.out_refund_no].refund_requested == 299
    elif kind == "EXTRA_REFUND":
        extra = refunds["NEVERMADE1"]
        assert (extra.refund_requested, extra.out_trade_no, extra.refund_status) == (
            111, ledger["plain"]["out_trade_no"], "SUCCESS")
    else:
        assert refunds[target.out_refund_no].refund_status == "PROCESSING"
    requests.delete(wechat_sim.base_url + "/sim/bill-faults", timeout=5)
    lines, _ = read(gw.download_trade_bill(day))
    assert {line.out_refund_no for line in lines if line.is_refund} == {r.out_refund_no for r in ledger["refunds"]}


def test_a_bill_not_ready_yet(wechat_sim, gw, ledger):
    wechat_sim.add_bill_fault(kind="NOT_READY", bill_date=ledger["pay_day"])
    with pytest.raises(BillNotReady) as exc:
        gw.download_trade_bill(ledger["pay_day"])
    assert (exc.value.code, exc.value.http_status) == ("STATEMENT_CREATING", 400)
    assert read(gw.download_trade_bill(ledger["refund_day"]))[0]  # other days are served
    wechat_sim.clear_bill_faults()
    wechat_sim.configure(bill_ready_hour=10)  # the default: a day's bill is ready the next day from 10:00
    with pytest.raises(BillNotReady):
        gw.download_trade_bill(beijing_day(time.time()))


def test_a_day_without_trades_has_no_bill(wechat_sim, gw):
    with pytest.raises(BillNotFound) as exc:
        gw.download_trade_bill((dt.datetime.now(CST).date() - dt.timedelta(days=3)).isoformat())
    assert (exc.value.code, exc.value.http_status) == ("NO_STATEMENT_EXIST", 400)


def test_a_hash_mismatch_is_refused_and_nothing_is_returned(wechat_sim, gw, ledger):
    wechat_sim.add_bill_fault(kind="HASH_MISMATCH", bill_date=ledger["pay_day"])
    with pytest.raises(BillHashMismatch) as exc:
        gw.download_trade_bill(ledger["pay_day"])
    assert exc.value.code == "HASH_MISMATCH"


@pytest.mark.parametrize("raw", ["0", "-1", "a minute"])
def test_an_unusable_bill_timeout_holds_the_download_as_a_configuration_problem(wechat_sim, gw, ledger,
                                                                                monkeypatch, raw):
    monkeypatch.setenv("WECHAT_BILL_TIMEOUT_SECONDS", raw)
    with pytest.raises(GatewayMisconfigured) as exc:
        gw.download_trade_bill(ledger["pay_day"])
    assert exc.value.code == "CONFIG_ERROR" and "WECHAT_BILL_TIMEOUT_SECONDS" in exc.value.message
    monkeypatch.setenv("WECHAT_BILL_TIMEOUT_SECONDS", "30")
    assert read(gw.download_trade_bill(ledger["pay_day"]))[0]


def test_dates_outside_the_window(wechat_sim, gw):
    today = dt.datetime.now(CST).date()
    for day, code in (((today - dt.timedelta(days=120)).isoformat(), "INVALID_REQUEST"),
                      ((today + dt.timedelta(days=2)).isoformat(), "INVALID_REQUEST")):
        with pytest.raises(Rejected) as exc:
            gw.download_trade_bill(day)
        assert exc.value.code == code
    for bad in ("2024-1-1", "yesterday", "２０２４-01-01"):
        with pytest.raises(ValueError):
            gw.download_trade_bill(bad)
    with pytest.raises(ValueError):
        gw.download_trade_bill(today.isoformat(), bill_type="ODD")
