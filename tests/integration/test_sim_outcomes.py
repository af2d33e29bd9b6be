"""Every outcome the simulator can produce, over real HTTP, through the real SDK (the gateway)
where the SDK has a method, and through hand-signed requests / the control API otherwise."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import time
import uuid

import pytest
import requests
from cryptography import x509

from chalicelib.adapters.wechat.errors import (BillNotFound, BillNotReady, InvalidNotification, NotFound,
                                               OutcomeUnknown, Rejected, RetryLater)
from chalicelib.adapters.wechat.gateway import WechatGateway
from chalicelib.domain.tradebill import BillLine
from tests.wechat_fixtures import wait_until, wechat_sim, wechat_sim_session  # noqa: F401
from wechatpay_sim.crypto import request_message, response_message, rsa_sign, rsa_verify
from wechatpay_sim.keys import generate_keyset, openssl_serial


def new_no(prefix: str = "R") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def control(handle, method: str, path: str, body: dict | None = None) -> requests.Response:
    return requests.request(method, handle.base_url + path, json=body, timeout=5)


def signed_get(handle, path: str, serial_header: str | None = None) -> requests.Response:
    ts, nonce = str(int(time.time())), uuid.uuid4().hex
    signature = rsa_sign(handle.keyset.merchant_private_key_pem and _merchant_key(handle),
                         request_message("GET", path, ts, nonce, b""))
    auth = (f'WECHATPAY2-SHA256-RSA2048 mchid="{handle.keyset.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{ts}",serial_no="{handle.keyset.merchant_serial}"')
    headers = {"Authorization": auth, "Accept": "application/json"}
    if serial_header:
        headers["Wechatpay-Serial"] = serial_header
    return requests.get(handle.base_url + path, headers=headers, timeout=5)


def _merchant_key(handle):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(handle.keyset.merchant_private_key_pem.encode(), None)


def verifies_with(resp: requests.Response, public_key) -> bool:
    message = response_message(resp.headers["Wechatpay-Timestamp"], resp.headers["Wechatpay-Nonce"], resp.content)
    return rsa_verify(public_key, message, resp.headers["Wechatpay-Signature"])


@pytest.fixture
def gw(wechat_sim):
    return wechat_sim.gateway()


def refund(gw, order, amount=300, no=None):
    return gw.create_refund(out_refund_no=no or new_no(), amount=amount, total=order["total"],
                            out_trade_no=order["out_trade_no"])


def parse(gw, received):
    return gw.parse_notification(received.headers, received.body)


# ---------------------------------------------------------------- 1. payment query


def test_payment_query_follows_the_ledger(wechat_sim, gw):
    no = new_no("T")
    control(wechat_sim, "POST", "/sim/transactions", {"total": 1000, "out_trade_no": no, "state": "NOTPAY"})
    pending = gw.query_payment(no)
    assert (pending.trade_state, pending.transaction_id, pending.success_time, pending.paid) == (
        "NOTPAY", None, None, False)
    assert pending.amount.total == 1000 and pending.appid == wechat_sim.keyset.appid

    with pytest.raises(NotFound):  # an unpaid order cannot be refunded
        refund(gw, {"out_trade_no": no, "total": 1000}, 100)
    paid = control(wechat_sim, "POST", f"/sim/transactions/{no}/pay", {}).json()["transaction"]
    result = gw.query_payment(no)
    assert (result.trade_state, result.transaction_id, result.paid) == ("SUCCESS", paid["transaction_id"], True)
    assert result.success_time and result.amount.payer_total == 1000 and result.mchid == wechat_sim.keyset.mchid

    refund(gw, {"out_trade_no": no, "total": 1000}, 100)
    assert gw.query_payment(no).trade_state == "REFUND"
    # by transaction id, through the SDK (its answer is verified by the SDK)
    status, text = gw._sdk().query(transaction_id=paid["transaction_id"])
    assert status == 200 and json.loads(text)["out_trade_no"] == no


def test_payment_query_closed_unknown_and_signed(wechat_sim, gw):
    no = new_no("T")
    wechat_sim.register_transaction(500, no, state="NOTPAY")
    wechat_sim.close_transaction(no)
    assert gw.query_payment(no).trade_state == "CLOSED"
    with pytest.raises(NotFound) as exc:
        gw.query_payment("NEVER" + no)
    assert (exc.value.code, exc.value.http_status) == ("ORDER_NOT_EXIST", 404)
    resp = signed_get(wechat_sim, f"/v3/pay/transactions/out-trade-no/{no}?mchid={wechat_sim.keyset.mchid}")
    assert resp.status_code == 200 and verifies_with(resp, _public(wechat_sim.keyset.platform_public_key_pem))
    other = signed_get(wechat_sim, f"/v3/pay/transactions/out-trade-no/{no}?mchid=1234567890")
    assert other.status_code == 400 and other.json()["code"] == "PARAM_ERROR"


def test_payment_query_scenarios(wechat_sim, gw):
    order = wechat_sim.paid_order(100)
    wechat_sim.push_scenario("SYSTEM_ERROR", op="query_payment")
    with pytest.raises(OutcomeUnknown):
        gw.query_payment(order["out_trade_no"])
    assert gw.query_payment(order["out_trade_no"]).trade_state == "SUCCESS"


def test_payment_query_asks_only_for_numbers_wechat_takes_and_signs_what_it_sends(wechat_sim, gw):
    """WeChat takes "|" in a merchant order number; requests sends it as %7C while the SDK signs the
    path it is given, so the gateway gives the SDK the path as sent. A number WeChat never takes
    (6-32 of [A-Za-z0-9_-|*]) is refused before any call: the queued fault is still waiting."""
    no = new_no("T|*-")
    wechat_sim.register_transaction(700, no)
    assert gw.query_payment(no).out_trade_no == no
    wechat_sim.push_scenario("SYSTEM_ERROR", op="query_payment")
    for bad in ("T1234", "T" * 33, "T12345@", "T 12345"):
        with pytest.raises(ValueError, match="6-32"):
            gw.query_payment(bad)
    assert [s["kind"] for s in wechat_sim.scenarios()["queue"]] == ["SYSTEM_ERROR"]


def _public(pem: str):
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem.encode())


# ---------------------------------------------------------------- 2. payments the merchant did not expect


def test_payment_of_any_order_is_notified(wechat_sim, gw):
    no = new_no("CANCELLED")  # an order the merchant has cancelled: WeChat does not know or care
    answer = control(wechat_sim, "POST", f"/sim/transactions/{no}/pay",
                     {"total": 990, "url": wechat_sim.receiver.url(wechat_sim.PAYMENT_PATH)}).json()
    assert answer["notification"]["ok"] is True
    [received] = wechat_sim.receiver.requests(wechat_sim.PAYMENT_PATH)
    event = parse(gw, received)
    assert event.event_type == "TRANSACTION.SUCCESS" and event.payment is not None
    p = event.payment
    assert (p.out_trade_no, p.trade_state, p.amount.total, p.transaction_id) == (
        no, "SUCCESS", 990, answer["transaction"]["transaction_id"])
    assert event.merchant_mismatches == () and event.resource["out_trade_no"] == no


def test_lost_payment_notification(wechat_sim, gw):
    no = new_no("T")
    wechat_sim.register_transaction(700, no, state="NOTPAY")
    wechat_sim.pay(no, url=wechat_sim.receiver.url(wechat_sim.PAYMENT_PATH), notify=False)
    assert gw.query_payment(no).trade_state == "SUCCESS"
    assert wechat_sim.receiver.requests() == [] and wechat_sim.notifications() == []


@pytest.mark.parametrize("override,field", [
    ({"total": 1}, None), ({"appid": "wx0000000000000000"}, "appid"), ({"mchid": "1230000109"}, "mchid"),
])
def test_payment_notification_with_wrong_amount_or_merchant(wechat_sim, gw, override, field):
    order = wechat_sim.paid_order(1000)
    url = wechat_sim.receiver.url(wechat_sim.PAYMENT_PATH)
    assert control(wechat_sim, "POST", f"/sim/transactions/{order['out_trade_no']}/notify",
                   {"url": url, **override}).json()["ok"]
    event = parse(gw, wechat_sim.receiver.requests()[0])
    if field is None:
        assert event.payment.amount.total == 1 and event.payment.amount.payer_total == 1
        assert gw.query_payment(order["out_trade_no"]).amount.total == 1000  # the truth
    else:
        assert event.merchant_mismatches == (field,) and getattr(event.payment, field) == override[field]


# ---------------------------------------------------------------- 4. abnormal refunds re-routed


def test_abnormal_refund_resolved_to_the_merchant_card(wechat_sim, gw):
    order = wechat_sim.paid_order(1000)
    wechat_sim.queue_outcome("ABNORMAL")
    created = refund(gw, order, 400)
    wait_until(lambda: gw.query_refund(created.out_refund_no).status == "ABNORMAL")
    gw.apply_abnormal_refund(refund_id=created.refund_id, out_refund_no=created.out_refund_no,
                             type="MERCHANT_BANK_CARD")
    done = wait_until(lambda: (r := gw.query_refund(created.out_refund_no)).status == "SUCCESS" and r)
    assert (done.channel, done.user_received_account, done.paid_to_merchant) == (
        "OTHER_BANKCARD", "商户结算银行账户", True)
    received = wechat_sim.receiver.wait_for(2, wechat_sim.REFUND_PATH)  # ABNORMAL, then SUCCESS
    note = parse(gw, received[-1])
    assert note.refund.status == "SUCCESS" and note.refund.paid_to_merchant and note.refund.channel is None


def test_abnormal_refund_resolved_to_the_users_card(wechat_sim, gw):
    order = wechat_sim.paid_order(1000)
    wechat_sim.queue_outcome("ABNORMAL")
    created = refund(gw, order, 400)
    wait_until(lambda: gw.query_refund(created.out_refund_no).status == "ABNORMAL")
    gw.apply_abnormal_refund(refund_id=created.refund_id, out_refund_no=created.out_refund_no,
                             type="USER_BANK_CARD", bank_type="ICBC_DEBIT", bank_account="6222000011112222",
                             real_name="张三")
    done = wait_until(lambda: (r := gw.query_refund(created.out_refund_no)).status == "SUCCESS" and r)
    assert done.channel == "OTHER_BANKCARD" and done.user_received_account.endswith("2222")
    assert not done.paid_to_merchant
    wechat_sim.receiver.wait_for(2, wechat_sim.REFUND_PATH)  # ABNORMAL, then SUCCESS
    assert "6222000011112222" not in json.dumps(done.raw)


# ---------------------------------------------------------------- 5. outcomes in the create answer


@pytest.mark.parametrize("kind,status", [("IMMEDIATE_SUCCESS", "SUCCESS"), ("IMMEDIATE_CLOSED", "CLOSED")])
def test_create_answers_a_final_status(wechat_sim, gw, kind, status):
    order = wechat_sim.paid_order(1000)
    wechat_sim.push_scenario(kind)
    created = refund(gw, order, 200)
    assert created.status == status
    assert (created.success_time is not None) == (status == "SUCCESS")
    wechat_sim.receiver.wait_for(1, wechat_sim.REFUND_PATH)
    events = [e for r in wechat_sim.receiver.requests(wechat_sim.REFUND_PATH)
              if (e := parse(gw, r)).refund.out_refund_no == created.out_refund_no]
    assert [e.event_type for e in events] == [f"REFUND.{status}"]
    assert wechat_sim.refund(created.out_refund_no)["history"][-1][0] == status


# ---------------------------------------------------------------- 6. coupons


def test_coupon_funded_order(wechat_sim, gw):
    order = wechat_sim.paid_order(1000, payer_total=800)
    paid = gw.query_payment(order["out_trade_no"])
    assert (paid.amount.total, paid.amount.payer_total) == (1000, 800)
    assert paid.raw["promotion_detail"][0]["amount"] == 200
    created = refund(gw, order, 500)
    assert (created.amount.refund, created.amount.payer_refund, created.amount.payer_total) == (500, 400, 800)
    assert created.payer_refund == 400 and created.amount.discount_refund == 100
    [received] = wechat_sim.receiver.wait_for(1, wechat_sim.REFUND_PATH)
    note = parse(gw, received).refund
    assert (note.amount_refund, note.amount.payer_refund, note.amount.payer_total) == (500, 400, 800)


# ---------------------------------------------------------------- 7. a refund this merchant never made


def test_notification_for_a_refund_never_made(wechat_sim, gw):
    order = wechat_sim.paid_order(1000)
    url = wechat_sim.receiver.url(wechat_sim.REFUND_PATH)
    answer = control(wechat_sim, "POST", "/sim/refunds/foreign",
                     {"out_trade_no": order["out_trade_no"], "amount": 250, "url": url}).json()
    assert answer["notification"]["ok"] and answer["refund"]["status"] == "SUCCESS"
    event = parse(gw, wechat_sim.receiver.requests()[0])
    assert event.refund.out_refund_no == answer["refund"]["out_refund_no"]
    assert (event.refund.status, event.refund.amount_refund, event.refund.out_trade_no) == (
        "SUCCESS", 250, order["out_trade_no"])
    # WeChat knows it: it counts against the order
    assert gw.query_refund(event.refund.out_refund_no).status == "SUCCESS"
    assert control(wechat_sim, "POST", "/sim/refunds/foreign",
                   {"out_trade_no": order["out_trade_no"], "amount": 751}).status_code == 400


# ---------------------------------------------------------------- 8. key modes


def test_each_answer_is_signed_in_the_mode_its_request_names(wechat_sim):
    wechat_sim.configure(key_mode="both")
    ks = wechat_sim.keyset
    order = wechat_sim.paid_order(100)
    path = f"/v3/pay/transactions/out-trade-no/{order['out_trade_no']}?mchid={ks.mchid}"
    cert_key = x509.load_pem_x509_certificate(ks.platform_cert_pem.encode()).public_key()
    pub = signed_get(wechat_sim, path, ks.public_key_id)
    assert pub.headers["Wechatpay-Serial"] == ks.public_key_id
    assert verifies_with(pub, _public(ks.platform_public_key_pem)) and not verifies_with(pub, cert_key)
    sdk_style = format(int(ks.platform_cert_serial, 16), "X")  # hex() drops a leading zero; still the same serial
    cert = signed_get(wechat_sim, path, sdk_style)
    assert cert.headers["Wechatpay-Serial"] == ks.platform_cert_serial and verifies_with(cert, cert_key)
    assert signed_get(wechat_sim, path).headers["Wechatpay-Serial"] == ks.platform_cert_serial  # no serial
    wechat_sim.configure(key_mode="public_key")
    assert signed_get(wechat_sim, path).headers["Wechatpay-Serial"] == ks.public_key_id


def test_notifications_in_either_key_mode(wechat_sim, tmp_path):
    wechat_sim.configure(key_mode="both")
    order = wechat_sim.paid_order(1000)
    public_key = wechat_sim.gateway(cert_dir=str(tmp_path / "certs"))  # the public key configured
    cert_only = WechatGateway(wechat_sim.certificate_mode_settings(str(tmp_path / "certs-only")))
    created = refund(public_key, order, 100)
    wechat_sim.receiver.wait_for(1, wechat_sim.REFUND_PATH)
    url = wechat_sim.receiver.url("/again")
    for mode in ("certificate", "public_key"):
        assert wechat_sim.redeliver(created.out_refund_no, url, key_mode=mode) == 200
    by_cert, by_key = wechat_sim.receiver.requests("/again")
    assert by_cert.headers["Wechatpay-Serial"] == wechat_sim.keyset.platform_cert_serial
    assert by_key.headers["Wechatpay-Serial"] == wechat_sim.keyset.public_key_id
    for received in (by_cert, by_key):  # a switch period: both are accepted with the public key configured
        assert parse(public_key, received).refund.out_refund_no == created.out_refund_no
    assert (tmp_path / "certs" / f"{wechat_sim.keyset.platform_cert_serial}.pem").exists()  # kept
    assert parse(public_key, by_cert).id == parse(cert_only, by_cert).id
    with pytest.raises(InvalidNotification):  # certificate mode knows no public key
        parse(cert_only, by_key)


def test_a_certificate_wechat_does_not_list_is_refused_and_asked_for_once_a_minute(wechat_sim, tmp_path):
    """A public-key merchant (WeChat lists no certificate for it) refuses a certificate-signed
    notification; made-up serials ask WeChat's list again at most once a refresh interval."""
    wechat_sim.configure(key_mode="both")
    order = wechat_sim.paid_order(1000)
    gw = wechat_sim.gateway(cert_dir=str(tmp_path / "certs"))
    created = refund(gw, order, 100)
    wechat_sim.receiver.wait_for(1, wechat_sim.REFUND_PATH)
    url = wechat_sim.receiver.url("/again")
    assert wechat_sim.redeliver(created.out_refund_no, url, key_mode="certificate") == 200
    [by_cert] = wechat_sim.receiver.requests("/again")
    wechat_sim.configure(key_mode="public_key")  # the list WeChat serves is empty now
    for _ in range(3):
        with pytest.raises(InvalidNotification) as exc:
            parse(gw, by_cert)
        assert exc.value.code == "BAD_SIGNATURE"
    assert wechat_sim.certificate_calls() == 1
    forged = dict(by_cert.headers, **{"Wechatpay-Serial": "7E57"})
    with pytest.raises(InvalidNotification):
        gw.parse_notification(forged, by_cert.body)
    assert wechat_sim.certificate_calls() == 1  # within the interval: not asked again


def test_a_new_certificate_is_found_once_the_refresh_interval_has_passed(wechat_sim, tmp_path):
    """WeChat starts signing with a certificate it did not list a moment ago (a rotation): the
    serial is looked up again once the interval since the last ask has passed, not before."""
    from chalicelib.adapters.wechat.keys import CERT_REFRESH_SECONDS, PlatformCertificates

    now = [1000.0]
    store = PlatformCertificates(wechat_sim.settings_with(cert_dir=str(tmp_path)), clock=lambda: now[0])
    serial = wechat_sim.keyset.platform_cert_serial
    assert store.find(serial) is None and store.find(serial) is None
    assert wechat_sim.certificate_calls() == 1
    wechat_sim.configure(key_mode="both")  # now listed
    now[0] += CERT_REFRESH_SECONDS - 1
    assert store.find(serial) is None and wechat_sim.certificate_calls() == 1
    now[0] += 1
    assert store.find(serial).serial_number == int(serial, 16) and wechat_sim.certificate_calls() == 2
    assert store.find(format(int(serial, 16), "x")) is not None  # the same number, however it is written
    assert store.find("PUB_KEY_ID_0001") is None and wechat_sim.certificate_calls() == 2  # not a serial


def test_alternating_notification_key_mode(wechat_sim):
    wechat_sim.configure(key_mode="both", notify_key_mode="alternate", notification_copies=1)
    gw = wechat_sim.gateway()
    order = wechat_sim.paid_order(1000)
    for amount in (100, 100):
        refund(gw, order, amount)
    received = wechat_sim.receiver.wait_for(2, wechat_sim.REFUND_PATH)
    serials = {r.headers["Wechatpay-Serial"] for r in received}
    assert serials == {wechat_sim.keyset.public_key_id, wechat_sim.keyset.platform_cert_serial}


def test_certificates_are_listed_only_for_certificate_merchants(wechat_sim):
    assert json.loads(wechat_sim.gateway()._sdk()._core.request("/v3/certificates")[1])["data"] == []
    wechat_sim.configure(key_mode="both")
    [cert] = json.loads(wechat_sim.gateway()._sdk()._core.request("/v3/certificates")[1])["data"]
    assert cert["serial_no"] == wechat_sim.keyset.platform_cert_serial


# ---------------------------------------------------------------- 9. one minute between refunds of one order


def test_two_refunds_of_one_order_need_a_minute(wechat_sim, gw):
    wechat_sim.configure(refund_interval_seconds=3600)
    order = wechat_sim.paid_order(1000)
    first = refund(gw, order, 100)
    with pytest.raises(RetryLater) as exc:
        refund(gw, order, 100)
    err = exc.value
    assert (err.code, err.http_status, err.retry_after_seconds) == ("FREQUENCY_LIMITED", 429, 60)
    assert isinstance(err, OutcomeUnknown) and err.frequency_limited
    assert refund(gw, order, 100, first.out_refund_no).refund_id == first.refund_id  # a retry is no new refund
    assert refund(gw, wechat_sim.paid_order(1000), 100).status == "PROCESSING"  # other orders are free
    wechat_sim.configure(refund_interval_seconds=0)
    assert refund(gw, order, 100).status == "PROCESSING"
    assert len([r for r in wechat_sim.refunds() if r["out_trade_no"] == order["out_trade_no"]]) == 2


def test_the_rule_is_on_by_default():
    from wechatpay_sim import Simulator

    from tests.wechat_fixtures import shared_keyset

    sim = Simulator(shared_keyset())  # not started: settings only
    assert sim.settings()["refund_interval_seconds"] == 60


# ---------------------------------------------------------------- 10. certificate serials


@pytest.mark.parametrize("number,text", [(0xABC, "0ABC"), (0x0A1B, "0A1B"), (0x1A2B, "1A2B"), (0xFF, "FF")])
def test_serials_are_written_as_openssl_writes_them(number, text):
    assert openssl_serial(number) == text


def test_generated_serial_matches_the_certificate(tmp_path):
    ks = generate_keyset(tmp_path / "k")
    cert = x509.load_pem_x509_certificate(ks.platform_cert_pem.encode())
    assert ks.platform_cert_serial == openssl_serial(cert.serial_number)
    assert len(ks.platform_cert_serial) % 2 == 0 and ks.platform_cert_serial == ks.platform_cert_serial.upper()
    assert ks.platform_cert_private_key_pem != ks.platform_private_key_pem  # two key modes, two keys
    assert ks.is_cert_serial(ks.platform_cert_serial.lstrip("0")) and not ks.is_cert_serial("PUB_KEY_ID_1")


# ---------------------------------------------------------------- 11. the trade bill as WeChat bills it

CST = dt.timezone(dt.timedelta(hours=8))


def beijing(days: int = 0, clock: str | None = None) -> dt.datetime:
    """Today (Beijing) shifted by ``days``, at ``clock`` (HH:MM:SS) or now."""
    now = dt.datetime.now(CST) + dt.timedelta(days=days)
    return dt.datetime.fromisoformat(f"{now:%Y-%m-%d}T{clock}+08:00") if clock else now


def bill_lines(gw, day: str):
    with gw.download_trade_bill(day) as bill:
        return [item for item in bill if isinstance(item, BillLine)]


def test_todays_bill_is_not_out_by_default(wechat_sim, gw):
    refund(gw, wechat_sim.paid_order(1000))
    with pytest.raises(BillNotReady) as exc:
        gw.download_trade_bill(f"{beijing():%Y-%m-%d}")
    assert (exc.value.code, exc.value.http_status) == ("STATEMENT_CREATING", 400)
    assert wechat_sim.sim.settings()["bill_ready_hour"] == 10
    wechat_sim.configure(bill_ready_hour=None)
    assert len(bill_lines(gw, f"{beijing():%Y-%m-%d}")) == 2  # the day so far: the payment, the refund


def test_a_refund_settled_the_next_day_is_billed_processing_on_its_acceptance_day_only(wechat_sim, gw):
    """Accepted at 23:59:00 yesterday, settled at 00:01:00 today through the control API: the
    query and the notification say SUCCESS; yesterday's bill says PROCESSING, today's has no line."""
    from wechatpay_sim.records import Refund, Transaction

    wechat_sim.configure(bill_ready_hour=None)
    accepted, settled = beijing(-1, "23:59:00"), beijing(0, "00:01:00")
    no, trade = new_no(), new_no("T")
    wechat_sim.store.register_ledger(  # the API accepts refunds now only: this one is put in as accepted then
        [Transaction(out_trade_no=trade, transaction_id="4200" + "0" * 24, total=1000,
                     paid_at=accepted.timestamp() - 3600, openid="o1", payer_total=1000)],
        [Refund(refund_id="5030" + "1" * 25, out_refund_no=no, transaction_id="4200" + "0" * 24, out_trade_no=trade,
                refund=400, total=1000, reason=None, notify_url=wechat_sim.receiver.url(wechat_sim.REFUND_PATH),
                created_at=accepted.timestamp(), payer_total=1000)])
    answer = control(wechat_sim, "POST", f"/sim/refunds/{no}/complete",
                     {"outcome": "SUCCESS", "at": settled.isoformat()})
    assert answer.status_code == 200 and answer.json()["refund"]["success_time"] == settled.isoformat()
    assert gw.query_refund(no).status == "SUCCESS"
    [note] = wechat_sim.receiver.wait_for(1, wechat_sim.REFUND_PATH)
    assert parse(gw, note).refund.success_time == settled.isoformat()
    [line] = [x for x in bill_lines(gw, f"{accepted:%Y-%m-%d}") if x.is_refund]
    assert (line.out_refund_no, line.refund_status, line.trade_time) == (no, "PROCESSING", f"{accepted:%Y-%m-%d} 23:59:00")
    wechat_sim.paid_order(500)  # so today has a bill
    assert [x for x in bill_lines(gw, f"{settled:%Y-%m-%d}") if x.is_refund] == []


def test_settling_at_a_time_is_checked(wechat_sim, gw):
    created = refund(gw, wechat_sim.paid_order(1000))
    for at in ("yesterday", "2026-01-02T00:01:00", beijing(-1, "00:00:00").isoformat()):
        answer = control(wechat_sim, "POST", f"/sim/refunds/{created.out_refund_no}/complete", {"at": at})
        assert answer.status_code == 400 and answer.json()["code"] == "PARAM_ERROR", at
    tomorrow = beijing(1, "00:01:00")
    wechat_sim.configure(bill_ready_hour=None)
    done = control(wechat_sim, "POST", f"/sim/refunds/{created.out_refund_no}/complete", {"at": tomorrow.timestamp()})
    assert done.json()["refund"]["status"] == "SUCCESS"
    [line] = [x for x in bill_lines(gw, f"{beijing():%Y-%m-%d}") if x.is_refund]
    assert line.refund_status == "PROCESSING"  # today's bill: it succeeds after today's cut


def test_another_app_of_the_merchant_number_has_its_own_lines(wechat_sim, gw):
    wechat_sim.configure(bill_ready_hour=None)
    theirs = control(wechat_sim, "POST", "/sim/transactions",
                     {"total": 900, "out_trade_no": new_no("T"), "appid": "wx0ther0app0000001"}).json()
    ours = wechat_sim.paid_order(1000)
    refund(gw, theirs, 200)  # refunds go through the same merchant number
    lines = bill_lines(gw, f"{beijing():%Y-%m-%d}")
    apps = {(x.out_trade_no, x.is_refund): x.appid for x in lines}
    assert apps == {(theirs["out_trade_no"], False): "wx0ther0app0000001",
                    (theirs["out_trade_no"], True): "wx0ther0app0000001",
                    (ours["out_trade_no"], False): wechat_sim.keyset.appid}
    assert gw.query_payment(theirs["out_trade_no"]).appid == "wx0ther0app0000001"


@pytest.mark.parametrize("op", ["bill", "download"])
def test_an_expired_download_url(wechat_sim, gw, op):
    wechat_sim.configure(bill_ready_hour=None)
    wechat_sim.paid_order(1000)
    day = f"{beijing():%Y-%m-%d}"
    wechat_sim.push_scenario("EXPIRED_URL", op=op)
    status, text = gw._sdk().trade_bill(bill_date=day)
    status, data = gw._sdk().download_bill(json.loads(text)["download_url"])
    assert status == 400 and json.loads(data)["code"] == "INVALID_REQUEST"  # the link WeChat handed out expired
    wechat_sim.push_scenario("EXPIRED_URL", op=op)
    assert len(bill_lines(gw, day)) == 1  # the gateway asks for a new link ("5min内有效") and the download works
    bad = control(wechat_sim, "POST", "/sim/scenarios", {"kind": "EXPIRED_URL"})  # op create: means nothing
    assert bad.status_code == 400 and bad.json()["code"] == "PARAM_ERROR"


def test_the_old_bill_format(wechat_sim, gw):
    wechat_sim.configure(bill_ready_hour=None, bill_format="legacy")
    order = wechat_sim.paid_order(2000, payer_total=1500)
    created = refund(gw, order, 400)
    wechat_sim.complete(created.out_refund_no, "SUCCESS")
    status, text = gw._sdk().trade_bill(bill_date=f"{beijing():%Y-%m-%d}")
    status, data = gw._sdk().download_bill(json.loads(text)["download_url"])
    assert gzip.decompress(data).decode().startswith("交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
                                    "交易状态,付款银行,货币种类,总金额,企业红包金额,")
    payment, line = bill_lines(gw, f"{beijing():%Y-%m-%d}")
    assert (payment.total, payment.coupon, line.refund_requested, line.refund_status) == (2000, 500, 400, "SUCCESS")
    assert control(wechat_sim, "POST", "/sim/settings", {"bill_format": "v1"}).status_code == 400


def test_a_day_without_trades(wechat_sim, gw):
    with pytest.raises(BillNotFound) as exc:
        gw.download_trade_bill(f"{beijing(-5):%Y-%m-%d}")
    assert (exc.value.code, exc.value.message, exc.value.http_status) == ("NO_STATEMENT_EXIST", "请求的账单文件不存在", 400)
