"""The WeChat Pay simulator itself: authentication, signing, business rules, notifications, control API."""
from __future__ import annotations

import functools
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from chalicelib.adapters.wechat.errors import NotFound, Rejected
from tests.wechat_fixtures import free_port, wait_until, wechat_sim, wechat_sim_session  # noqa: F401
from wechatpay_sim import generate_keyset, load_keyset
from wechatpay_sim.crypto import request_message, response_message, rsa_sign, rsa_verify
from wechatpay_sim.keys import APIV3_KEY_FILE, MERCHANT_PRIVATE_KEY_FILE

ROOT = Path(__file__).resolve().parents[2]
REFUNDS = "/v3/refund/domestic/refunds"


def new_no() -> str:
    return "R" + uuid.uuid4().hex[:20]


@functools.lru_cache(maxsize=8)
def _private_key(pem: str):
    return load_pem_private_key(pem.encode(), None)


def signed(handle, method: str, path: str, body: bytes = b"", *, key_pem=None, mchid=None, serial=None,
           timestamp=None, headers=None) -> requests.Response:
    """A hand-made merchant request, so each part of the Authorization can be broken."""
    key = _private_key(key_pem or handle.keyset.merchant_private_key_pem)
    ts, nonce = str(int(timestamp or time.time())), uuid.uuid4().hex
    signature = rsa_sign(key, request_message(method, path, ts, nonce, body))
    auth = (f'WECHATPAY2-SHA256-RSA2048 mchid="{mchid or handle.keyset.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{ts}",serial_no="{serial or handle.keyset.merchant_serial}"')
    h = {"Authorization": auth, "Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    return requests.request(method, handle.base_url + path, data=body, headers=h, timeout=5)


def create_body(order, no=None, amount=100, **extra) -> bytes:
    payload = {"out_refund_no": no or new_no(), "out_trade_no": order["out_trade_no"],
               "amount": {"refund": amount, "total": order["total"], "currency": "CNY"}, **extra}
    return json.dumps(payload).encode()


def control(handle, method, path, body=None):
    return requests.request(method, handle.base_url + path, json=body, timeout=5)


# ---------------------------------------------------------------- authentication and signing


def test_signed_request_gets_a_signed_answer(wechat_sim):
    order = wechat_sim.paid_order(1000)
    resp = signed(wechat_sim, "POST", REFUNDS, create_body(order))
    assert resp.status_code == 200
    h = resp.headers
    assert h["Content-Type"].startswith("application/json") and h["Request-ID"]
    assert h["Wechatpay-Serial"] == wechat_sim.keyset.public_key_id
    assert h["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    platform = load_pem_public_key(wechat_sim.keyset.platform_public_key_pem.encode())
    message = response_message(h["Wechatpay-Timestamp"], h["Wechatpay-Nonce"], resp.content)
    assert rsa_verify(platform, message, h["Wechatpay-Signature"])
    assert resp.json()["status"] == "PROCESSING"


@pytest.mark.parametrize(
    "breakage",
    [
        dict(key_pem="other"),
        dict(mchid="1900000000"),
        dict(serial="ABCDEF"),
        dict(timestamp=time.time() - 600),
    ],
)
def test_bad_authorization_is_sign_error(wechat_sim, breakage):
    if breakage.get("key_pem") == "other":
        from tests.wechat_fixtures import throwaway_private_key_pem

        breakage = dict(key_pem=throwaway_private_key_pem())
    resp = signed(wechat_sim, "GET", f"{REFUNDS}/X1", **breakage)
    assert resp.status_code == 401 and resp.json()["code"] == "SIGN_ERROR"


def test_unsigned_and_tampered_requests_are_sign_errors(wechat_sim):
    order = wechat_sim.paid_order(1000)
    assert requests.get(wechat_sim.base_url + f"{REFUNDS}/X1", timeout=5).status_code == 401
    # signature over one body, another body sent
    key = _private_key(wechat_sim.keyset.merchant_private_key_pem)
    ts, nonce = str(int(time.time())), "N1"
    sig = rsa_sign(key, request_message("POST", REFUNDS, ts, nonce, create_body(order, amount=1)))
    auth = (f'WECHATPAY2-SHA256-RSA2048 mchid="{wechat_sim.keyset.mchid}",nonce_str="{nonce}",signature="{sig}",'
            f'timestamp="{ts}",serial_no="{wechat_sim.keyset.merchant_serial}"')
    resp = requests.post(wechat_sim.base_url + REFUNDS, data=create_body(order, amount=999),
                         headers={"Authorization": auth}, timeout=5)
    assert resp.status_code == 401 and wechat_sim.refunds() == []


# ---------------------------------------------------------------- business rules


def test_same_number_with_other_amount_is_invalid(wechat_sim):
    order = wechat_sim.paid_order(1000)
    no = new_no()
    assert signed(wechat_sim, "POST", REFUNDS, create_body(order, no, 100)).status_code == 200
    resp = signed(wechat_sim, "POST", REFUNDS, create_body(order, no, 200))
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_REQUEST"


def test_validation_errors(wechat_sim):
    order = wechat_sim.paid_order(1000)
    cases = [
        create_body(order, amount=0),
        create_body(order, amount=1001),
        create_body(order, reason="x" * 81),
        create_body(order, notify_url="http://example.com/n?x=1"),
        json.dumps({"out_refund_no": "A", "amount": {"refund": 1, "total": 999}, "out_trade_no": order["out_trade_no"]}).encode(),
        b"not json",
    ]
    for body in cases:
        resp = signed(wechat_sim, "POST", REFUNDS, body)
        assert resp.status_code == 400 and resp.json()["code"] == "PARAM_ERROR", body


def test_refund_window_is_365_days(wechat_sim):
    gw = wechat_sim.gateway()
    old = wechat_sim.paid_order(1000, paid_at=time.time() - 366 * 86400)
    with pytest.raises(Rejected) as exc:
        gw.create_refund(out_refund_no=new_no(), amount=1, total=1000, out_trade_no=old["out_trade_no"])
    assert exc.value.code == "INVALID_REQUEST"
    recent = wechat_sim.paid_order(1000, paid_at=time.time() - 364 * 86400)
    assert gw.create_refund(out_refund_no=new_no(), amount=1, total=1000, out_trade_no=recent["out_trade_no"])


def test_at_most_50_refunds_per_order(wechat_sim):
    wechat_sim.sim.configure(outcome_delay=60)  # keep them quiet
    order = wechat_sim.paid_order(100)
    for i in range(50):
        assert signed(wechat_sim, "POST", REFUNDS, create_body(order, f"P{i}", 1)).status_code == 200
    resp = signed(wechat_sim, "POST", REFUNDS, create_body(order, "P50", 1))
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_REQUEST"


def test_closed_refunds_free_their_amount(wechat_sim):
    gw = wechat_sim.gateway()
    order = wechat_sim.paid_order(500)
    wechat_sim.queue_outcome("CLOSED")
    first = gw.create_refund(out_refund_no=new_no(), amount=500, total=500, out_trade_no=order["out_trade_no"])
    with pytest.raises(Rejected):
        gw.create_refund(out_refund_no=new_no(), amount=1, total=500, out_trade_no=order["out_trade_no"])
    assert wechat_sim.complete(first.out_refund_no)["status"] == "CLOSED"
    assert gw.query_refund(first.out_refund_no).status == "CLOSED"
    again = gw.create_refund(out_refund_no=new_no(), amount=500, total=500, out_trade_no=order["out_trade_no"])
    assert again.status == "PROCESSING"


def test_default_outcome_setting_and_complete_is_one_time(wechat_sim):
    gw = wechat_sim.gateway()
    order = wechat_sim.paid_order(500)
    wechat_sim.sim.configure(default_outcome="ABNORMAL")
    created = gw.create_refund(out_refund_no=new_no(), amount=10, total=500, out_trade_no=order["out_trade_no"])
    wait_until(lambda: gw.query_refund(created.out_refund_no).status == "ABNORMAL")
    assert wechat_sim.complete(created.out_refund_no, "SUCCESS") is None  # no longer PROCESSING


def test_abnormal_refund_needs_wechatpay_serial_with_encrypted_fields(wechat_sim):
    gw = wechat_sim.gateway()
    order = wechat_sim.paid_order(500)
    wechat_sim.queue_outcome("ABNORMAL")
    created = gw.create_refund(out_refund_no=new_no(), amount=10, total=500, out_trade_no=order["out_trade_no"])
    wechat_sim.complete(created.out_refund_no)
    body = json.dumps({"out_refund_no": created.out_refund_no, "type": "USER_BANK_CARD", "bank_type": "ICBC_DEBIT",
                       "bank_account": "bm90IGVuY3J5cHRlZA==", "real_name": "bm90"}).encode()
    path = f"{REFUNDS}/{created.refund_id}/apply-abnormal-refund"
    resp = signed(wechat_sim, "POST", path, body)
    assert resp.status_code == 400 and "Wechatpay-Serial" in resp.json()["message"]
    resp = signed(wechat_sim, "POST", path, body, headers={"Wechatpay-Serial": wechat_sim.keyset.public_key_id})
    assert resp.status_code == 400 and "decrypt" in resp.json()["message"]


def test_unknown_endpoint_and_order(wechat_sim):
    assert signed(wechat_sim, "GET", "/v3/marketing/favor/stocks").status_code == 404
    unknown = signed(wechat_sim, "GET", f"/v3/pay/transactions/id/1?mchid={wechat_sim.keyset.mchid}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "ORDER_NOT_EXIST"
    with pytest.raises(NotFound):
        wechat_sim.gateway().create_refund(out_refund_no=new_no(), amount=1, total=1, transaction_id="4200000")


# ---------------------------------------------------------------- notifications


def _refund_now(handle, amount=100, total=1000):
    order = handle.paid_order(total)
    created = handle.gateway().create_refund(out_refund_no=new_no(), amount=amount, total=total,
                                             out_trade_no=order["out_trade_no"])
    return created


def test_notifications_are_retried_until_acknowledged(wechat_sim):
    wechat_sim.receiver.respond_with(500, 503)
    created = _refund_now(wechat_sim)
    got = wechat_sim.receiver.wait_for(3)
    assert len({json.loads(r.body)["id"] for r in got}) == 1

    def logged():  # an attempt is logged once the receiver's answer is back: wait for the third
        found = [d for d in wechat_sim.notifications() if d["out_refund_no"] == created.out_refund_no]
        return found if len(found) >= 3 else None

    attempts = wait_until(logged)
    assert [(d["attempt"], d["result"]) for d in attempts] == [(1, 500), (2, 503), (3, 200)]


def test_notifications_give_up_after_the_schedule(wechat_sim):
    wechat_sim.receiver.default_status = 500
    wechat_sim.sim.configure(notify_retry_schedule=[0.05, 0.05])
    _refund_now(wechat_sim)
    wechat_sim.receiver.wait_for(3)
    time.sleep(0.4)
    assert len(wechat_sim.receiver.requests()) == 3


def test_dropped_and_duplicated_notifications(wechat_sim):
    wechat_sim.sim.configure(drop_notifications=True)
    dropped = _refund_now(wechat_sim)
    wait_until(lambda: any(d["result"] == "dropped" for d in wechat_sim.notifications()))
    assert wechat_sim.receiver.requests() == []
    assert wechat_sim.refund(dropped.out_refund_no)["status"] == "SUCCESS"

    wechat_sim.sim.configure(drop_notifications=False, notification_copies=3)
    _refund_now(wechat_sim)
    got = wechat_sim.receiver.wait_for(3)
    assert len({json.loads(r.body)["id"] for r in got}) == 1


def test_notification_content(wechat_sim):
    created = _refund_now(wechat_sim, 250, 1000)
    [got] = wechat_sim.receiver.wait_for(1)
    envelope = json.loads(got.body)
    assert envelope["resource_type"] == "encrypt-resource" and envelope["event_type"] == "REFUND.SUCCESS"
    assert envelope["create_time"].endswith("+08:00")
    res = envelope["resource"]
    assert (res["original_type"], res["algorithm"], res["associated_data"], len(res["nonce"])) == (
        "refund", "AEAD_AES_256_GCM", "refund", 12)
    event = wechat_sim.gateway().parse_notification(got.headers, got.body)
    assert set(event.resource) >= {"mchid", "transaction_id", "out_trade_no", "refund_id", "out_refund_no",
                                   "refund_status", "success_time", "user_received_account", "amount"}
    assert event.resource["out_refund_no"] == created.out_refund_no


# ---------------------------------------------------------------- control API over HTTP


def test_control_api(wechat_sim):
    health = control(wechat_sim, "GET", "/sim/health").json()
    assert health["ok"] and health["mchid"] == wechat_sim.keyset.mchid
    txn = control(wechat_sim, "POST", "/sim/transactions", {"out_trade_no": "T100000", "total": 800}).json()
    assert txn["total"] == 800 and txn["transaction_id"]
    assert control(wechat_sim, "GET", "/sim/transactions").json()["transactions"][0]["out_trade_no"] == "T100000"

    assert control(wechat_sim, "POST", "/sim/scenarios", {"kind": "SYSTEM_ERROR", "count": 2}).status_code == 200
    assert len(control(wechat_sim, "GET", "/sim/scenarios").json()["queue"]) == 2
    assert control(wechat_sim, "DELETE", "/sim/scenarios").json()["queue"] == []
    assert control(wechat_sim, "POST", "/sim/scenarios", {"kind": "NOPE"}).status_code == 400
    assert control(wechat_sim, "POST", "/sim/outcomes", {"outcome": "CLOSED"}).json()["next_outcomes"] == ["CLOSED"]
    assert control(wechat_sim, "POST", "/sim/settings", {"outcome_delay": 60}).json()["outcome_delay"] == 60
    assert control(wechat_sim, "POST", "/sim/settings", {"nope": 1}).status_code == 400

    gw = wechat_sim.gateway()
    gw.create_refund(out_refund_no="RC1", amount=100, total=800, out_trade_no="T100000")
    gw.create_refund(out_refund_no="RC1", amount=100, total=800, out_trade_no="T100000")
    listing = control(wechat_sim, "GET", "/sim/refunds").json()
    assert listing["create_calls_total"] == 2 and listing["refund_count"] == 1
    assert listing["refunds"][0]["create_calls"] == 2
    assert control(wechat_sim, "GET", "/sim/refunds/RC1").json()["status"] == "PROCESSING"
    assert control(wechat_sim, "GET", "/sim/refunds/NOPE").status_code == 404

    done = control(wechat_sim, "POST", "/sim/refunds/RC1/complete", {}).json()["refund"]
    assert done["status"] == "CLOSED"  # the queued outcome
    wechat_sim.receiver.wait_for(1)
    url = wechat_sim.receiver.url("/other")
    for action, body in [("redeliver", {"url": url}), ("notify-stale", {"url": url, "age_seconds": 900}),
                         ("notify-bad-signature", {"url": url})]:
        assert control(wechat_sim, "POST", f"/sim/refunds/RC1/{action}", body).json() == {"result": 200, "ok": True}
    assert control(wechat_sim, "POST", "/sim/notify-probe", {"url": url}).json()["ok"]
    assert control(wechat_sim, "POST", "/sim/transactions/T100000/notify", {"url": url}).json()["ok"]
    assert len(wechat_sim.receiver.requests("/other")) == 5
    kinds = {d["kind"] for d in control(wechat_sim, "GET", "/sim/notifications").json()["deliveries"]}
    assert kinds >= {"notify", "redeliver", "stale", "bad_signature", "probe", "payment"}

    assert control(wechat_sim, "POST", "/sim/reset").json() == {"ok": True}
    assert control(wechat_sim, "GET", "/sim/refunds").json()["refund_count"] == 0
    assert control(wechat_sim, "GET", "/sim/settings").json()["outcome_delay"] == wechat_sim.sim._defaults["outcome_delay"]


def test_redeliver_before_any_outcome_is_a_conflict(wechat_sim):
    wechat_sim.sim.configure(outcome_delay=60)
    created = _refund_now(wechat_sim)
    resp = control(wechat_sim, "POST", f"/sim/refunds/{created.out_refund_no}/redeliver", {})
    assert resp.status_code == 409


# ---------------------------------------------------------------- keys and standalone run


def test_keyset_is_generated_once_and_files_are_usable(tmp_path):
    first = generate_keyset(tmp_path / "k")
    second = generate_keyset(tmp_path / "k")
    assert first == load_keyset(tmp_path / "k") and first.apiv3_key == second.apiv3_key
    assert len(first.apiv3_key) == 32 and first.apiv3_key.isalnum()
    assert (tmp_path / "k" / APIV3_KEY_FILE).read_text() == first.apiv3_key  # no trailing newline
    mode = stat.S_IMODE(os.stat(tmp_path / "k" / MERCHANT_PRIVATE_KEY_FILE).st_mode)
    assert mode == 0o600
    assert first.public_key_id.startswith("PUB_KEY_ID_") and first.public_key_id[11:].isdigit()
    assert first.appid.startswith("wx") and len(first.appid) == 18
    assert len(first.merchant_serial) == 40
    assert first.merchant_private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert set(first.env()) >= {"WECHAT_MCHID", "WECHAT_PRIVATE_KEY_FILE", "WECHAT_PUBLIC_KEY_ID"}


def test_runs_standalone(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wechatpay_sim", "--keys", str(tmp_path / "keys"), "--port", str(port),
         "--outcome-delay", "0.1"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def healthy():
            try:
                return requests.get(f"http://127.0.0.1:{port}/sim/health", timeout=1).json()
            except requests.RequestException:
                return None

        health = wait_until(healthy, timeout=10, interval=0.05)
        assert health["public_key_id"] == load_keyset(tmp_path / "keys").public_key_id
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
    out = subprocess.run(
        [sys.executable, "-m", "wechatpay_sim", "--keys", str(tmp_path / "keys"), "--port", "8123", "--print-env"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert "WECHAT_BASE_URL=http://127.0.0.1:8123" in out and "WECHAT_PUBLIC_KEY_FILE=" in out
