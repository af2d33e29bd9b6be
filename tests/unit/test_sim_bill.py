"""The simulator's trade bill (wechatpay_sim/bill.py, bill_api.py) on a clock of its own: which
day lists a refund and with which status, other apps of the merchant number, the old format,
when a bill is ready, expired download URLs. Read back with the service's parser."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.domain.tradebill import BillLine, BillSummary, check_totals, iter_bill
from wechatpay_sim import bill
from wechatpay_sim.bill_api import BillDesk
from wechatpay_sim.state import ApiError, Store

MCHID, APPID = "1900000109", "wxd678efh567hg6787"
CST = dt.timezone(dt.timedelta(hours=8))
D, NEXT = "2026-01-05", "2026-01-06"


def at(day: str, clock: str) -> float:
    return dt.datetime.fromisoformat(f"{day}T{clock}+08:00").timestamp()


class Clock:
    def __init__(self, moment: float):
        self.now = moment

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(at(D, "09:00:00"))


@pytest.fixture
def store(clock) -> Store:
    s = Store(MCHID, clock=clock, refund_interval_seconds=0)
    s.register_transaction("T1", 1000, paid_at=at(D, "08:00:00"))
    return s


def accept(store: Store, clock: Clock, when: float, no: str, amount: int = 100, order: str = "T1") -> None:
    clock.now = when
    total = store.transaction(order)["total"]
    store.create_refund({"out_refund_no": no, "out_trade_no": order, "amount": {"refund": amount, "total": total}})


def lines_of(store: Store, day: str, **kwargs) -> tuple[list[BillLine], BillSummary]:
    transactions, refunds = store.ledger()
    body, count = bill.build(day, "ALL", transactions, refunds, appid=APPID, mchid=MCHID, **kwargs)
    *lines, summary = iter_bill(body.decode().splitlines(keepends=True))
    assert len(lines) == count and check_totals(lines, summary) == []
    return lines, summary


def refund_lines(store: Store, day: str) -> dict[str, BillLine]:
    return {line.out_refund_no: line for line in lines_of(store, day)[0] if line.is_refund}


# ---------------------------------------------------------------- the day and the status of a refund


def test_a_refund_settled_the_day_it_was_accepted_is_billed_that_day_at_its_acceptance(store, clock):
    accept(store, clock, at(D, "10:00:00"), "R1")
    store.settle("R1", "SUCCESS", at=at(D, "10:01:30"))
    [line] = refund_lines(store, D).values()
    assert (line.refund_status, line.trade_state, line.refund_requested) == ("SUCCESS", "REFUND", 100)
    assert line.trade_time == f"{D} 10:00:00"  # 发起退款成功时间, not 退款成功时间 (10:01:30)


def test_a_refund_accepted_before_midnight_and_settled_after_it_stays_processing_on_its_day_only(store, clock):
    """The easy assumption (billed when it succeeded, as SUCCESS) is what WeChat does not do."""
    accept(store, clock, at(D, "23:59:00"), "R1")
    store.settle("R1", "SUCCESS", at=at(NEXT, "00:01:00"))
    assert store.query_refund("R1").status == "SUCCESS"  # the query tells the final state
    [line] = refund_lines(store, D).values()
    assert (line.refund_status, line.trade_time) == ("PROCESSING", f"{D} 23:59:00")
    store.register_transaction("T2", 500, paid_at=at(NEXT, "12:00:00"))  # so the next day has a bill
    assert refund_lines(store, NEXT) == {}


@pytest.mark.parametrize("outcome", ["CLOSED", "ABNORMAL"])
def test_refunds_that_failed_the_same_day_are_billed_with_that_status(store, clock, outcome):
    accept(store, clock, at(D, "11:00:00"), "R1")
    store.settle("R1", outcome, at=at(D, "15:00:00"))
    assert refund_lines(store, D)["R1"].refund_status == outcome


def test_an_abnormal_refund_paid_out_days_later_keeps_its_first_line(store, clock):
    accept(store, clock, at(D, "11:00:00"), "R1")
    refund = store.settle("R1", "ABNORMAL", at=at(D, "11:05:00"))
    clock.now = at("2026-01-08", "09:00:00")
    store.apply_abnormal(refund.refund_id, {"out_refund_no": "R1"}, account="商户结算银行账户", channel="OTHER_BANKCARD")
    store.settle("R1", "SUCCESS")
    assert refund_lines(store, D)["R1"].refund_status == "ABNORMAL"
    store.register_transaction("T3", 500, paid_at=at("2026-01-08", "12:00:00"))
    assert refund_lines(store, "2026-01-08") == {}


def test_refunds_are_listed_in_the_order_they_were_accepted(store, clock):
    store.register_transaction("T2", 1000, paid_at=at(D, "08:00:00"))
    accept(store, clock, at(D, "12:00:00"), "LATER", order="T2")
    accept(store, clock, at(D, "09:30:00"), "EARLIER")
    assert [no for no in refund_lines(store, D)] == ["EARLIER", "LATER"]


def test_settling_before_the_acceptance_is_refused(store, clock):
    accept(store, clock, at(D, "10:00:00"), "R1")
    with pytest.raises(ApiError) as err:
        store.settle("R1", "SUCCESS", at=at(D, "09:59:59"))
    assert err.value.code == "PARAM_ERROR" and store.query_refund("R1").status == "PROCESSING"


def test_refunds_registered_without_a_history_count_as_settled_when_they_succeeded(store, clock):
    accept(store, clock, at(D, "23:00:00"), "R1")
    store.settle("R1", "SUCCESS", at=at(NEXT, "01:00:00"))
    refund = store.get("R1")
    refund.history = []  # as register_ledger puts refunds in (benchmarks)
    assert refund.status_at(at(NEXT, "00:00:00")) == "PROCESSING"
    assert refund.status_at(at(NEXT, "02:00:00")) == "SUCCESS"


# ---------------------------------------------------------------- what else the bill holds


def test_lines_of_another_app_on_the_same_merchant_number_carry_its_appid(store, clock):
    store.register_transaction("OTHER1", 800, paid_at=at(D, "09:10:00"), appid="wx0ther0app0000001")
    accept(store, clock, at(D, "13:00:00"), "RO1", amount=300, order="OTHER1")
    accept(store, clock, at(D, "13:05:00"), "R1")
    by_no = {(line.out_trade_no, line.out_refund_no): line for line in lines_of(store, D)[0]}
    assert by_no[("OTHER1", "")].appid == by_no[("OTHER1", "RO1")].appid == "wx0ther0app0000001"
    assert by_no[("T1", "")].appid == by_no[("T1", "R1")].appid == APPID
    assert store.query_transaction(APPID, out_trade_no="OTHER1")["appid"] == "wx0ther0app0000001"
    with pytest.raises(ApiError):  # the same order number cannot change its app
        store.register_transaction("OTHER1", 800, appid="wx0ther0app0000002")


def test_a_comma_in_the_goods_description_survives_the_round_trip(store, clock):
    store.register_transaction("T2", 600, paid_at=at(D, "09:00:00"), description="盲盒,双只装")
    line = next(line for line in lines_of(store, D)[0] if line.out_trade_no == "T2")
    assert (line.description, line.total, line.fee_rate) == ("盲盒,双只装", 600, "0.60%")


def test_the_old_format_reads_back_as_the_current_one_does(store, clock):
    """Same ledger, both formats: the parser gives the same amounts (a coupon order and a refund
    of it), the old file has the old header and summary."""
    store.register_transaction("C1", 2000, paid_at=at(D, "09:00:00"), payer_total=1500)
    accept(store, clock, at(D, "14:00:00"), "R1", amount=400, order="C1")
    store.settle("R1", "SUCCESS", at=at(D, "14:00:05"))
    transactions, refunds = store.ledger()
    body, _ = bill.build(D, "ALL", transactions, refunds, appid=APPID, mchid=MCHID, fmt=bill.LEGACY)
    text = body.decode()
    assert text.startswith(",".join(bill.LEGACY_HEADER) + "\r\n")
    assert "\r\n总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额\r\n`3," in text
    old, old_summary = lines_of(store, D, fmt=bill.LEGACY)
    new, new_summary = lines_of(store, D)
    pick = lambda ls: [(x.out_trade_no, x.out_refund_no, x.total, x.coupon, x.refund_requested,  # noqa: E731
                        x.refund_status, x.trade_time, x.appid) for x in ls]
    assert pick(old) == pick(new)
    [old_refund] = [x for x in old if x.is_refund]
    assert (old_refund.refund, old_refund.recharge_coupon_refund) == (400, 100)  # 企业红包退款金额: the coupon's share
    assert (old_summary.count, old_summary.refund_requested_total, old_summary.order_total) == (
        new_summary.count, new_summary.refund_requested_total, new_summary.order_total)


# ---------------------------------------------------------------- when a bill is out, and its URL


@pytest.fixture
def desk(store) -> BillDesk:
    return BillDesk(store, APPID, MCHID, lambda: "http://sim")


def ask(desk: BillDesk, day: str, **kwargs) -> dict:
    return desk.trade_bill({"bill_date": [day]}, **kwargs)


def token(answer: dict) -> dict:
    return {"token": [answer["download_url"].split("token=")[1]]}


def test_todays_bill_is_not_out_and_yesterdays_only_from_ten(store, clock, desk):
    assert desk.ready_hour == 10  # the default, as WeChat
    clock.now = at(D, "23:00:00")
    with pytest.raises(ApiError) as err:
        ask(desk, D)
    assert (err.value.status, err.value.code, err.value.message) == (400, "STATEMENT_CREATING", "账单生成中")
    clock.now = at(NEXT, "09:59:59")
    with pytest.raises(ApiError):
        ask(desk, D)
    clock.now = at(NEXT, "10:00:00")
    assert desk.download(token(ask(desk, D))).startswith("交易时间,".encode())
    store.register_transaction("T2", 500, paid_at=at(NEXT, "09:30:00"))
    with pytest.raises(ApiError):
        ask(desk, NEXT)  # today
    desk.set_ready_hour(None)  # what tests that reconcile today set: the day so far
    assert b"`T2," in desk.download(token(ask(desk, NEXT)))

def test_a_day_without_trades_has_no_bill_once_it_is_out(store, clock, desk):
    clock.now = at("2026-01-09", "12:00:00")
    with pytest.raises(ApiError) as err:
        ask(desk, "2026-01-07")
    assert (err.value.code, err.value.message) == ("NO_STATEMENT_EXIST", "请求的账单文件不存在")
    with pytest.raises(ApiError) as err:
        ask(desk, "2026-01-09")  # today: not generated yet, whatever it will hold
    assert err.value.code == "STATEMENT_CREATING"


def test_an_expired_url_answers_until_a_new_one_is_asked_for(store, clock, desk):
    clock.now = at(NEXT, "11:00:00")
    stale = ask(desk, D, expired=True)
    for _ in range(2):
        with pytest.raises(ApiError) as err:
            desk.download(token(stale))
        assert (err.value.status, err.value.code, err.value.message) == (
            400, "INVALID_REQUEST", "下载链接过期,请重新请求文件下载")
    fresh = ask(desk, D)
    assert fresh["hash_value"] == stale["hash_value"] and desk.download(token(fresh))
    with pytest.raises(ApiError):
        desk.download(token(fresh), expired=True)  # once ...
    assert desk.download(token(fresh))  # ... then the same URL serves again


@pytest.mark.parametrize("setting,value", [("hour", 24), ("hour", "10"), ("hour", True), ("format", "v2")])
def test_bad_settings_are_refused(desk, setting, value):
    with pytest.raises(ApiError) as err:
        desk.set_ready_hour(value) if setting == "hour" else desk.set_format(value)
    assert err.value.code == "PARAM_ERROR"
