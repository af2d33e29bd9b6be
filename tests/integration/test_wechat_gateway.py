"""The WeChat Pay gateway against the local simulator, over real HTTP with the real SDK."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from chalicelib.adapters.wechat.errors import (
    BadSignature,
    ConfigurationError,
    UserAccountAbnormal,
    GatewayMisconfigured,
    InsufficientFunds,
    InvalidNotification,
    NotFound,
    OutcomeUnknown,
    Rejected,
)
from chalicelib.adapters.wechat.gateway import WechatGateway, get_gateway, reset_gateway, truncate_utf8
from chalicelib.adapters.wechat.keys import build_client
from chalicelib.adapters.wechat.notifications import NOTIFICATION_HEADERS
from tests.wechat_fixtures import free_port, throwaway_private_key_pem, wait_until, wechat_sim, wechat_sim_session  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def new_no(prefix: str = "R") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


@pytest.fixture
def gw(wechat_sim):
    return wechat_sim.gateway()


@pytest.fixture
def order(wechat_sim):
    return wechat_sim.paid_order(1000)


def refund(gw, order, amount=300, no=None, **kw):
    return gw.create_refund(
        out_refund_no=no or new_no(), amount=amount, total=order["total"], out_trade_no=order["out_trade_no"], **kw
    )


# ---------------------------------------------------------------- happy paths


def test_refund_is_processing_then_success_on_query(wechat_sim, gw, order):
    created = refund(gw, order, 300)
    assert created.status == "PROCESSING"
    assert (created.amount_refund, created.amount_total) == (300, 1000)
    assert isinstance(created.amount_refund, int) and isinstance(created.amount_total, int)
    assert created.out_trade_no == order["out_trade_no"]
    assert created.transaction_id == order["transaction_id"]
    assert created.refund_id and created.create_time and created.success_time is None

    done = wait_until(lambda: (r := gw.query_refund(created.out_refund_no)).status == "SUCCESS" and r)
    assert done.refund_id == created.refund_id
    assert done.success_time and done.user_received_account == "支付用户零钱"
    assert done.raw["channel"] == "ORIGINAL"


def test_refund_by_transaction_id_and_explicit_refund_notify_url(wechat_sim, gw, order):
    created = gw.create_refund(
        out_refund_no=new_no(), amount=100, total=1000,
        transaction_id=order["transaction_id"], out_trade_no=order["out_trade_no"],
    )
    stored = wechat_sim.refund(created.out_refund_no)
    assert stored["notify_url"] == wechat_sim.settings.refund_notify_url
    assert stored["notify_url"] != wechat_sim.settings.payment_notify_url


def test_same_out_refund_no_refunds_once(wechat_sim, gw, order):
    no = new_no()
    first = refund(gw, order, 300, no)
    second = refund(gw, order, 300, no)
    assert first.refund_id == second.refund_id
    assert wechat_sim.create_calls(no) == 2
    assert len(wechat_sim.refunds()) == 1


def test_reason_is_cut_to_80_bytes_on_a_character_boundary(wechat_sim, gw, order):
    reason = "盲盒重复" * 10  # 120 bytes
    created = refund(gw, order, 100, reason=reason)
    stored = wechat_sim.refund(created.out_refund_no)["reason"]
    assert len(stored.encode()) <= 80 and reason.startswith(stored) and len(stored) == 26


def test_truncate_utf8():
    assert truncate_utf8("abc") == "abc"
    assert truncate_utf8("a" * 81) == "a" * 80
    assert truncate_utf8("a" + "退" * 30) == "a" + "退" * 26  # 79 bytes, not a broken 80th
    assert len(truncate_utf8("😀" * 30).encode()) == 80


def test_client_is_built_lazily_once_with_timeout_and_base_url(wechat_sim, monkeypatch, order):
    built = []

    def counting(settings):
        built.append(1)
        time.sleep(0.05)  # widen the race window
        return build_client(settings)

    monkeypatch.setattr("chalicelib.adapters.wechat.gateway.build_client", counting)
    gw = wechat_sim.gateway(timeout_seconds=2.5)
    assert gw._client is None
    errors = []

    def query():
        try:
            gw.query_refund("NOPE")
        except NotFound:
            pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=query) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(built) == 1
    assert gw._client._core._timeout == 2.5
    assert gw._client._core._gate_way == wechat_sim.base_url


def test_import_does_not_load_the_sdk():
    code = (
        "import importlib, pkgutil, sys, chalicelib.adapters.wechat as w\n"
        "names = [m.name for m in pkgutil.iter_modules(w.__path__)]\n"
        "assert {'errors', 'results', 'gateway', 'notifications', 'bills', 'keys'} <= set(names), names\n"
        "for name in names:\n"
        "    importlib.import_module(f'{w.__name__}.{name}')\n"
        "bad = [m for m in ('wechatpayv3', 'requests', 'cryptography') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_app_does_not_load_the_sdk_at_import():
    code = "import sys, app\nassert 'wechatpayv3' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_get_gateway_reads_config_and_caches(wechat_sim, monkeypatch, order):
    for name, value in wechat_sim.env().items():
        monkeypatch.setenv(name, value)
    reset_gateway()
    gw = get_gateway()
    assert get_gateway() is gw
    assert gw.settings.apiv3_key == wechat_sim.keyset.apiv3_key  # read from a file, verbatim
    assert refund(gw, order, 100).status == "PROCESSING"
    reset_gateway()
    assert get_gateway() is not gw


def test_platform_certificate_mode(wechat_sim, order, tmp_path):
    wechat_sim.sim.configure(key_mode="certificate")
    cert_dir = tmp_path / "certs"
    gw = WechatGateway(wechat_sim.certificate_mode_settings(str(cert_dir)))
    created = refund(gw, order, 100)
    assert created.status == "PROCESSING"
    assert (cert_dir / f"{wechat_sim.keyset.platform_cert_serial}.pem").exists()
    # a second client loads the certificate from disk
    gw2 = WechatGateway(wechat_sim.certificate_mode_settings(str(cert_dir)))
    assert gw2.query_refund(created.out_refund_no).refund_id == created.refund_id


# ---------------------------------------------------------------- outcome unknown


def test_system_error_is_outcome_unknown(wechat_sim, gw, order):
    wechat_sim.push_scenario("SYSTEM_ERROR")
    no = new_no()
    with pytest.raises(OutcomeUnknown) as exc:
        refund(gw, order, 100, no)
    err = exc.value
    assert (err.code, err.http_status, err.outcome_known, err.frequency_limited) == ("SYSTEM_ERROR", 500, False, False)
    assert wechat_sim.refund(no) is None
    assert refund(gw, order, 100, no).status == "PROCESSING"  # retry with the same number


def test_frequency_limited_is_outcome_unknown(wechat_sim, gw, order):
    wechat_sim.push_scenario("FREQUENCY_LIMITED")
    with pytest.raises(OutcomeUnknown) as exc:
        refund(gw, order)
    assert exc.value.frequency_limited and exc.value.http_status == 429 and exc.value.code == "FREQUENCY_LIMITED"


def test_timeout_is_outcome_unknown_and_the_refund_exists(wechat_sim, order):
    gw = wechat_sim.gateway(timeout_seconds=0.3)
    wechat_sim.push_scenario("SLOW", seconds=1.5)
    no = new_no()
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown) as exc:
        refund(gw, order, 200, no)
    assert time.monotonic() - started < 1.2
    assert exc.value.code == "TIMEOUT" and exc.value.http_status is None
    # like real life, WeChat created it anyway: resubmitting the same number refunds once
    assert gw.query_refund(no).amount_refund == 200
    again = refund(gw, order, 200, no)
    assert again.out_refund_no == no and len(wechat_sim.refunds()) == 1


def test_connection_refused_is_outcome_unknown(wechat_sim, order):
    gw = wechat_sim.gateway(base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(OutcomeUnknown) as exc:
        refund(gw, order)
    assert exc.value.code == "CONNECTION_ERROR" and not exc.value.outcome_known


def test_accepted_then_system_error(wechat_sim, gw, order):
    wechat_sim.push_scenario("ACCEPT_THEN_ERROR")
    no = new_no()
    with pytest.raises(OutcomeUnknown):
        refund(gw, order, 100, no)
    assert gw.query_refund(no).status in ("PROCESSING", "SUCCESS")


def test_lost_request_then_query_not_found_then_resubmit(wechat_sim, gw, order):
    wechat_sim.push_scenario("LOSE_REQUEST")
    no = new_no()
    with pytest.raises(OutcomeUnknown):
        refund(gw, order, 100, no)
    with pytest.raises(NotFound):
        gw.query_refund(no)
    assert refund(gw, order, 100, no).status == "PROCESSING"


def test_bad_response_signature(wechat_sim, gw, order):
    wechat_sim.push_scenario("BAD_RESPONSE_SIGNATURE")
    no = new_no()
    with pytest.raises(BadSignature) as exc:
        refund(gw, order, 100, no)
    assert exc.value.outcome_known is False and exc.value.code == "BAD_SIGNATURE"
    assert wechat_sim.refund(no) is not None  # the outcome really was unknown to us


def test_missing_signature_type_header(wechat_sim, gw, order):
    wechat_sim.push_scenario("MISSING_SIGNATURE_TYPE", op="query")
    created = refund(gw, order, 100)
    with pytest.raises(BadSignature) as exc:
        gw.query_refund(created.out_refund_no)
    assert exc.value.code == "MISSING_SIGNATURE_TYPE"


def test_misconfigured_private_key(wechat_sim):
    gw = wechat_sim.gateway(private_key="not a key")
    with pytest.raises(GatewayMisconfigured) as exc:
        gw.query_refund("R1")
    assert exc.value.outcome_known is False


# ---------------------------------------------------------------- rejected


def test_not_enough_is_insufficient_funds(wechat_sim, gw, order):
    wechat_sim.push_scenario("NOT_ENOUGH")
    with pytest.raises(InsufficientFunds) as exc:
        refund(gw, order)
    err = exc.value
    assert isinstance(err, Rejected) and err.outcome_known and (err.code, err.http_status) == ("NOT_ENOUGH", 403)


@pytest.mark.parametrize("kind,status", [("PARAM_ERROR", 400)])
def test_terminal_rejections(wechat_sim, gw, order, kind, status):
    wechat_sim.push_scenario(kind)
    with pytest.raises(Rejected) as exc:
        refund(gw, order)
    err = exc.value
    assert type(err) is Rejected and (err.code, err.http_status, err.outcome_known) == (kind, status, True)


def test_user_account_abnormal_is_its_own_rejection(wechat_sim, gw, order):
    wechat_sim.push_scenario("USER_ACCOUNT_ABNORMAL")
    with pytest.raises(UserAccountAbnormal) as exc:
        refund(gw, order)
    err = exc.value
    assert isinstance(err, Rejected) and err.outcome_known
    assert (err.code, err.http_status) == ("USER_ACCOUNT_ABNORMAL", 403) and "退款请求失败" in err.message
    assert wechat_sim.refunds() == []  # WeChat made nothing


@pytest.mark.parametrize("kind,status", [("SIGN_ERROR", 401), ("MCH_NOT_EXISTS", 404), ("NO_AUTH", 403)])
@pytest.mark.parametrize("op", ["create", "query"])
def test_configuration_failures_are_configuration_errors(wechat_sim, gw, order, kind, status, op):
    created = refund(gw, order) if op == "query" else None
    wechat_sim.push_scenario(kind, op=op)
    with pytest.raises(ConfigurationError) as exc:
        gw.query_refund(created.out_refund_no) if created else refund(gw, order)
    err = exc.value
    assert not isinstance(err, (Rejected, OutcomeUnknown)) and err.outcome_known
    assert (err.code, err.http_status) == (kind, status)
    assert len(wechat_sim.refunds()) == (1 if created else 0)


def test_query_unknown_is_not_found(gw):
    with pytest.raises(NotFound) as exc:
        gw.query_refund("NEVER_SEEN")
    assert (exc.value.code, exc.value.http_status) == ("RESOURCE_NOT_EXISTS", 404)


def test_unknown_order_is_not_found(wechat_sim, gw):
    with pytest.raises(NotFound):
        gw.create_refund(out_refund_no=new_no(), amount=1, total=1, out_trade_no="NO_SUCH_ORDER")


def test_wrong_merchant_key_is_sign_error(wechat_sim, order):
    gw = wechat_sim.gateway(private_key=throwaway_private_key_pem())
    with pytest.raises(ConfigurationError) as exc:
        refund(gw, order)
    assert (exc.value.code, exc.value.http_status) == ("SIGN_ERROR", 401)


def test_over_refund_is_rejected(wechat_sim, gw, order):
    refund(gw, order, 700)
    with pytest.raises(Rejected) as exc:
        refund(gw, order, 301)
    assert exc.value.code == "INVALID_REQUEST" and "exceeds" in exc.value.message
    assert refund(gw, order, 300).status == "PROCESSING"  # exactly the rest is fine


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(out_refund_no="R|1", amount=1, total=10, out_trade_no="T100001"),
        dict(out_refund_no="", amount=1, total=10, out_trade_no="T100001"),
        dict(out_refund_no="R1", amount=1.0, total=10, out_trade_no="T100001"),
        dict(out_refund_no="R1", amount=True, total=10, out_trade_no="T100001"),
        dict(out_refund_no="R1", amount=0, total=10, out_trade_no="T100001"),
        dict(out_refund_no="R1", amount=11, total=10, out_trade_no="T100001"),
        dict(out_refund_no="R1", amount=1, total=10),
        dict(out_refund_no="R1", amount=1, total=10, out_trade_no="T1"),  # WeChat takes 6-32 characters
        dict(out_refund_no="R1", amount=1, total=10, out_trade_no="T10000@"),
    ],
)
def test_bad_arguments_fail_before_any_call(wechat_sim, gw, kwargs):
    with pytest.raises(ValueError):
        gw.create_refund(**kwargs)
    assert wechat_sim.create_calls() == 0


# ---------------------------------------------------------------- abnormal refunds


def test_abnormal_refund_to_user_bank_card(wechat_sim, gw, order):
    wechat_sim.queue_outcome("ABNORMAL")
    created = refund(gw, order, 500)
    wechat_sim.complete(created.out_refund_no)
    assert gw.query_refund(created.out_refund_no).status == "ABNORMAL"

    applied = gw.apply_abnormal_refund(
        refund_id=created.refund_id, out_refund_no=created.out_refund_no, type="USER_BANK_CARD",
        bank_type="ICBC_DEBIT", bank_account="6222020200112345678", real_name="张三",
    )
    assert applied.status == "PROCESSING"
    done = wait_until(lambda: (r := gw.query_refund(created.out_refund_no)).status == "SUCCESS" and r)
    assert done.user_received_account.endswith("5678") and done.amount_refund == 500


def test_abnormal_refund_to_merchant_account_and_wrong_state(wechat_sim, gw, order):
    created = refund(gw, order, 100)
    with pytest.raises(Rejected) as exc:  # still PROCESSING
        gw.apply_abnormal_refund(refund_id=created.refund_id, out_refund_no=created.out_refund_no,
                                 type="MERCHANT_BANK_CARD")
    assert exc.value.code == "INVALID_REQUEST"
    wechat_sim.complete(created.out_refund_no, "ABNORMAL")
    applied = gw.apply_abnormal_refund(refund_id=created.refund_id, out_refund_no=created.out_refund_no,
                                       type="MERCHANT_BANK_CARD")
    assert applied.status == "PROCESSING"
    with pytest.raises(ValueError):
        gw.apply_abnormal_refund(refund_id=created.refund_id, out_refund_no=created.out_refund_no,
                                 type="USER_BANK_CARD")


# ---------------------------------------------------------------- notifications


def _refund_notification(wechat_sim, gw, order, amount=300):
    created = refund(gw, order, amount)
    [got] = wechat_sim.receiver.wait_for(1, path=wechat_sim.REFUND_PATH)
    return created, got


def test_parse_refund_notification(wechat_sim, gw, order):
    created, got = _refund_notification(wechat_sim, gw, order)
    event = gw.parse_notification(got.lower_headers, got.body)
    assert event.event_type == "REFUND.SUCCESS" and event.resource_type == "encrypt-resource"
    assert event.id and event.create_time and event.summary
    assert event.resource["refund_status"] == "SUCCESS"
    assert event.resource["amount"] == {"total": 1000, "refund": 300, "payer_total": 1000, "payer_refund": 300}
    result = event.refund_result()
    assert (result.refund_id, result.status, result.amount_refund) == (created.refund_id, "SUCCESS", 300)
    # canonical-case and case-insensitive mappings work too
    from chalice.app import CaseInsensitiveMapping

    assert gw.parse_notification(got.headers, got.body).id == event.id
    assert gw.parse_notification(CaseInsensitiveMapping(got.headers), got.body).id == event.id


@pytest.mark.parametrize("outcome", ["CLOSED", "ABNORMAL"])
def test_parse_closed_and_abnormal_notifications(wechat_sim, gw, order, outcome):
    wechat_sim.queue_outcome(outcome)
    _, got = _refund_notification(wechat_sim, gw, order)
    event = gw.parse_notification(got.headers, got.body)
    assert event.event_type == f"REFUND.{outcome}" and event.refund_result().status == outcome


def test_parse_payment_notification(wechat_sim, gw, order):
    assert wechat_sim.notify_payment(order["out_trade_no"], wechat_sim.receiver.url(wechat_sim.PAYMENT_PATH)) == 200
    [got] = wechat_sim.receiver.requests(wechat_sim.PAYMENT_PATH)
    event = gw.parse_notification(got.headers, got.body)
    assert event.event_type == "TRANSACTION.SUCCESS" and not event.is_refund
    res = event.resource
    assert (res["out_trade_no"], res["transaction_id"], res["trade_state"]) == (
        order["out_trade_no"], order["transaction_id"], "SUCCESS")
    assert res["amount"]["total"] == 1000 and res["payer"]["openid"] == order["openid"]
    with pytest.raises(InvalidNotification):
        event.refund_result()


def _refused(gw, headers, body, code, **kw):
    with pytest.raises(InvalidNotification) as exc:
        gw.parse_notification(headers, body, **kw)
    assert exc.value.code == code, exc.value
    return exc.value


def test_forged_notification_is_refused(wechat_sim, gw, order):
    created, _ = _refund_notification(wechat_sim, gw, order)
    wechat_sim.send_bad_signature_notification(created.out_refund_no)
    forged = wechat_sim.receiver.wait_for(2, path=wechat_sim.REFUND_PATH)[-1]
    _refused(gw, forged.headers, forged.body, "BAD_SIGNATURE")


def test_tampered_body_is_refused(wechat_sim, gw, order):
    _, got = _refund_notification(wechat_sim, gw, order)
    envelope = json.loads(got.body)
    envelope["summary"] = "退款成功!"
    _refused(gw, got.headers, json.dumps(envelope, ensure_ascii=False).encode(), "BAD_SIGNATURE")
    # even a re-serialisation of the same JSON breaks the signature: raw bytes are needed
    _refused(gw, got.headers, json.dumps(json.loads(got.body)).encode(), "BAD_SIGNATURE")


def test_wrong_apiv3_key_cannot_decrypt(wechat_sim, order):
    gw = wechat_sim.gateway()
    _, got = _refund_notification(wechat_sim, gw, order)
    other = wechat_sim.gateway(apiv3_key="x" * 32)
    _refused(other, got.headers, got.body, "BAD_SIGNATURE")


def test_stale_and_future_timestamps_are_refused(wechat_sim, gw, order):
    created, got = _refund_notification(wechat_sim, gw, order)
    ts = int(got.lower_headers["wechatpay-timestamp"])
    _refused(gw, got.headers, got.body, "STALE_TIMESTAMP", now=ts + 301)
    _refused(gw, got.headers, got.body, "FUTURE_TIMESTAMP", now=ts - 301)
    assert gw.parse_notification(got.headers, got.body, now=ts + 299).id
    # a validly signed one from the simulator, 10 minutes old
    wechat_sim.send_stale_notification(created.out_refund_no, age_seconds=600)
    stale = wechat_sim.receiver.wait_for(2, path=wechat_sim.REFUND_PATH)[-1]
    _refused(gw, stale.headers, stale.body, "STALE_TIMESTAMP")


def test_signtest_probe_is_refused(wechat_sim, gw):
    wechat_sim.send_probe(wechat_sim.receiver.url("/probe"))
    [probe] = wechat_sim.receiver.wait_for(1, path="/probe")
    _refused(gw, probe.headers, probe.body, "SIGNTEST_PROBE")


@pytest.mark.parametrize("header", NOTIFICATION_HEADERS)
def test_missing_header_is_refused(wechat_sim, gw, order, header):
    _, got = _refund_notification(wechat_sim, gw, order)
    headers = {k: v for k, v in got.lower_headers.items() if k != header}
    _refused(gw, headers, got.body, "MISSING_HEADER")


def test_unknown_serial_and_undecodable_body_are_refused(wechat_sim, gw, order):
    _, got = _refund_notification(wechat_sim, gw, order)
    _refused(gw, {**got.lower_headers, "wechatpay-serial": "PUB_KEY_ID_0000"}, got.body, "BAD_SIGNATURE")
    _refused(gw, got.lower_headers, b"\xff\xfe", "MALFORMED")
    _refused(gw, {**got.lower_headers, "wechatpay-timestamp": "soon"}, got.body, "MALFORMED")


def test_duplicate_notifications_are_identical(wechat_sim, gw, order):
    created, got = _refund_notification(wechat_sim, gw, order)
    assert wechat_sim.redeliver(created.out_refund_no) == 200
    dup = wechat_sim.receiver.wait_for(2, path=wechat_sim.REFUND_PATH)[-1]
    assert gw.parse_notification(dup.headers, dup.body).id == gw.parse_notification(got.headers, got.body).id
