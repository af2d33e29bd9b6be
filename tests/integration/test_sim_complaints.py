"""The simulator's consumer complaints (消费者投诉2.0), driven by the real wechatpayv3 SDK."""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import uuid

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.wechat_fixtures import wait_until, wechat_sim, wechat_sim_session  # noqa: F401
from wechatpay_sim.crypto import rsa_oaep_decrypt

CST = dt.timezone(dt.timedelta(hours=8))
COMPLAINT_PATH = "/complaint-notify"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def sdk(wechat_sim):
    return wechat_sim.sdk_client()


def today() -> str:
    """Complaints are listed by their Beijing date (the SDK's default begin_date is the host's)."""
    return dt.datetime.now(CST).date().isoformat()


def ok(answer) -> dict:
    status, text = answer
    assert 200 <= status < 300, text
    return json.loads(text) if text else {}


def error(answer, status: int, code: str) -> str:
    got, text = answer
    assert got == status and json.loads(text)["code"] == code, text
    return json.loads(text)["message"]


def image_file(tmp_path, data: bytes = PNG, name: str = "proof.png") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def register(wechat_sim, sdk) -> str:
    url = wechat_sim.receiver.url(COMPLAINT_PATH)
    assert ok(sdk.complaint_notification_create(url)) == {"mchid": wechat_sim.keyset.mchid, "url": url}
    return url


def complain(wechat_sim, total=1000, amount=500, **kwargs) -> tuple[str, dict]:
    order = wechat_sim.paid_order(total, **{k: kwargs.pop(k) for k in ("openid",) if k in kwargs})
    return wechat_sim.complaints.create(order["out_trade_no"], amount, **kwargs)["complaint_id"], order


def actions(wechat_sim, sdk) -> list[tuple[str, str]]:
    """(event_type, action_type) of every complaint notification received, decrypted by the SDK."""
    out = []
    for got in wechat_sim.receiver.requests(COMPLAINT_PATH):
        note = sdk.callback(got.headers, got.body)
        out.append((note["event_type"], note["resource"]["action_type"]))
    return out


def operate_types(sdk, complaint_id) -> list[str]:
    return [e["operate_type"] for e in ok(sdk.complaint_history_query(complaint_id))["data"]]


# ---------------------------------------------------------------- notify URL


def test_notify_url_create_query_update_delete(wechat_sim, sdk):
    # "400 RESOURCE_NOT_EXISTS 查询的通知回调不存在": a 400, not a 404
    error(sdk.complaint_notification_query(), 400, "RESOURCE_NOT_EXISTS")
    error(sdk.complaint_notification_update("https://shop.example/n"), 400, "RESOURCE_NOT_EXISTS")
    url = register(wechat_sim, sdk)
    assert ok(sdk.complaint_notification_query())["url"] == url
    error(sdk.complaint_notification_create("https://shop.example/other"), 400, "INVALID_REQUEST")
    assert ok(sdk.complaint_notification_update("https://shop.example/n2")) == {
        "mchid": wechat_sim.keyset.mchid, "url": "https://shop.example/n2"}
    assert sdk.complaint_notification_delete() == (204, b"")
    error(sdk.complaint_notification_query(), 400, "RESOURCE_NOT_EXISTS")
    error(sdk.complaint_notification_delete(), 400, "RESOURCE_NOT_EXISTS")
    error(sdk.complaint_notification_create("ftp://shop.example/n"), 400, "PARAM_ERROR")


# ---------------------------------------------------------------- list and detail


def test_list_pages_past_a_full_page(wechat_sim, sdk):
    order = wechat_sim.paid_order(10_000)
    made = [wechat_sim.complaints.create(order["out_trade_no"], 100 + i)["complaint_id"] for i in range(60)]
    first = ok(sdk.complaint_list_query(begin_date=today(), end_date=today(), limit=50, offset=0))
    assert (first["limit"], first["offset"], first["total_count"], len(first["data"])) == (50, 0, 60, 50)
    second = ok(sdk.complaint_list_query(begin_date=today(), end_date=today(), limit=50, offset=50))
    assert len(second["data"]) == 10
    assert "total_count" not in second  # "投诉总条数,当offset=0时返回"
    assert [c["complaint_id"] for c in first["data"] + second["data"]] == made
    past = ok(sdk.complaint_list_query(begin_date=today(), end_date=today(), limit=50, offset=60))
    assert past["data"] == []
    default = ok(sdk.complaint_list_query(begin_date=today(), end_date=today()))
    assert len(default["data"]) == 10 and default["total_count"] == 60  # the SDK's default limit
    error(sdk.complaint_list_query(begin_date=today(), end_date=today(), limit=51), 400, "PARAM_ERROR")
    error(sdk.complaint_list_query(begin_date=today(), end_date=today(), limit=0), 400, "PARAM_ERROR")


def test_span_of_more_than_30_days_is_refused(wechat_sim, sdk):
    now = dt.datetime.now(CST)
    old_id, _ = complain(wechat_sim, at=(now - dt.timedelta(days=40)).timestamp())
    new_id, _ = complain(wechat_sim)
    begin = (now - dt.timedelta(days=31)).date().isoformat()
    error(sdk.complaint_list_query(begin_date=begin, end_date=today()), 400, "PARAM_ERROR")
    thirty = (now - dt.timedelta(days=30)).date().isoformat()
    assert [c["complaint_id"] for c in ok(sdk.complaint_list_query(begin_date=thirty, end_date=today()))["data"]] == [new_id]
    forty = (now - dt.timedelta(days=40)).date().isoformat()
    listed = ok(sdk.complaint_list_query(begin_date=forty, end_date=forty))
    assert [c["complaint_id"] for c in listed["data"]] == [old_id]
    error(sdk.complaint_list_query(begin_date=today(), end_date=forty), 400, "PARAM_ERROR")
    error(sdk.complaint_list_query(begin_date="2024/01/01", end_date=today()), 400, "PARAM_ERROR")


def test_detail_fields_and_phone_for_the_merchant_key_only(wechat_sim, sdk):
    openid = "o" + uuid.uuid4().hex
    first_id, _ = complain(wechat_sim, openid=openid, phone="13800138000", user_tags=["HIGH_RISK"],
                           description="盲盒少发了一个")
    complaint_id, order = complain(wechat_sim, total=2500, amount=1200, openid=openid, phone="13900139000",
                                   user_tags=["TRUSTED", "HIGH_RISK"], images=2)
    d = ok(sdk.complaint_detail_query(complaint_id))
    assert d["complaint_id"] == complaint_id and d["complaint_state"] == "PENDING"
    assert d["complainted_mchid"] == wechat_sim.keyset.mchid and d["payer_openid"] == openid
    assert d["complaint_order_info"] == [{"transaction_id": order["transaction_id"],
                                          "out_trade_no": order["out_trade_no"], "amount": 2500}]
    assert (d["problem_type"], d["apply_refund_amount"], d["problem_description"]) == ("REFUND", 1200, "申请退款")
    assert d["user_tag_list"] == ["TRUSTED", "HIGH_RISK"] and d["user_complaint_times"] == 2
    assert d["complaint_full_refunded"] is False and d["incoming_user_response"] is False
    assert dt.datetime.fromisoformat(d["complaint_time"]).utcoffset() == dt.timedelta(hours=8)
    assert "." in d["complaint_time"]  # WeChat writes milliseconds: 2015-05-20T13:29:35.120+08:00
    # encrypted for the merchant's API key: its private key opens it, WeChat's platform key does not
    assert d["payer_phone"] != "13900139000" and sdk.decrypt(d["payer_phone"]) == "13900139000"
    platform = load_pem_private_key(wechat_sim.keyset.platform_private_key_pem.encode(), None)
    with pytest.raises(ValueError):
        rsa_oaep_decrypt(platform, d["payer_phone"])
    media = d["complaint_media_list"][0]
    assert media["media_type"] == "USER_COMPLAINT_IMAGE" and len(media["media_url"]) == 2
    status, data = sdk.complaint_image_download(media["media_url"][0])
    assert status == 200 and data.startswith(b"\x89PNG")
    first = ok(sdk.complaint_detail_query(first_id))
    assert first["complaint_detail"] == "盲盒少发了一个" and first["user_complaint_times"] == 1


def test_complaints_without_refund_or_phone(wechat_sim, sdk):
    complaint_id, _ = complain(wechat_sim, problem_type="SERVICE_NOT_WORK")
    d = ok(sdk.complaint_detail_query(complaint_id))
    assert d["problem_type"] == "SERVICE_NOT_WORK" and d["problem_description"] == "服务未生效"
    assert "apply_refund_amount" not in d and "payer_phone" not in d and d["complaint_media_list"] == []
    error(sdk.complaint_detail_query("2002000000000000000000000000"), 404, "RESOURCE_NOT_EXISTS")


# ---------------------------------------------------------------- the merchant's replies


def test_response_moves_pending_to_processing(wechat_sim, sdk, tmp_path):
    register(wechat_sim, sdk)
    complaint_id, _ = complain(wechat_sim)
    media_id = ok(sdk.complaint_image_upload(image_file(tmp_path)))["media_id"]
    assert sdk.complaint_response(complaint_id, "已联系您，今天补发", response_images=[media_id],
                                  jump_url="https://shop.example/o/1", jump_url_text="查看订单") == (204, b"")
    assert ok(sdk.complaint_detail_query(complaint_id))["complaint_state"] == "PROCESSING"
    last = ok(sdk.complaint_history_query(complaint_id))["data"][-1]
    assert (last["operate_type"], last["operator"], last["operate_details"]) == ("MERCHANT_RESPONSE", "商户", "已联系您，今天补发")
    assert last["complaint_media_list"]["media_type"] == "OPERATION_IMAGE" and len(last["image_list"]) == 1
    wechat_sim.receiver.wait_for(2, COMPLAINT_PATH)
    assert actions(wechat_sim, sdk) == [("COMPLAINT.CREATE", "CREATE_COMPLAINT"),
                                        ("COMPLAINT.STATE_CHANGE", "MERCHANT_RESPONSE")]
    control = wechat_sim.complaints.get(complaint_id)
    assert control["responses"][0]["images"] == [media_id]


def test_response_rules(wechat_sim, sdk, tmp_path):
    complaint_id, _ = complain(wechat_sim)
    media_id = ok(sdk.complaint_image_upload(image_file(tmp_path)))["media_id"]
    bad = [
        dict(response_content="长" * 501),  # "限制500个字符以内"
        dict(response_content="好", response_images=[media_id] * 5),  # "最多上传4张图片凭证"
        dict(response_content="好", response_images=["not-uploaded"]),
        dict(response_content="好", jump_url="https://shop.example/o/1"),  # "二者缺一不可"
        dict(response_content="好", jump_url="http://shop.example/o/1", jump_url_text="查看"),  # "HTTPS格式"
        dict(response_content="好", jump_url="https://shop.example/o/1", jump_url_text="查看订单详情页面快去吧"),
    ]
    for kwargs in bad:
        error(sdk.complaint_response(complaint_id, **kwargs), 400, "PARAM_ERROR")
    assert ok(sdk.complaint_detail_query(complaint_id))["complaint_state"] == "PENDING"
    assert sdk.complaint_response(complaint_id, "长" * 500) == (204, b"")
    # complainted_mchid is required (the SDK always sends it)
    path = f"/v3/merchant-service/complaints-v2/{complaint_id}/response"
    from wechatpayv3.type import RequestType

    error(sdk._core.request(path, method=RequestType.POST, data={"response_content": "好"}), 400, "PARAM_ERROR")
    error(sdk.complaint_response("2002000000000000000000000000", "好"), 404, "RESOURCE_NOT_EXISTS")


def test_user_message_is_pending_until_answered(wechat_sim, sdk):
    complaint_id, _ = complain(wechat_sim)
    wechat_sim.complaints.user_response(complaint_id, "什么时候退款？")
    assert ok(sdk.complaint_detail_query(complaint_id))["incoming_user_response"] is True
    sdk.complaint_response(complaint_id, "今天")
    assert ok(sdk.complaint_detail_query(complaint_id))["incoming_user_response"] is False
    assert operate_types(sdk, complaint_id) == ["USER_CREATE_COMPLAINT", "USER_RESPONSE", "MERCHANT_RESPONSE"]


def test_history_pages_past_its_default_page(wechat_sim, sdk):
    complaint_id, _ = complain(wechat_sim)
    for i in range(100):
        wechat_sim.complaints.user_response(complaint_id, f"留言{i}")
    first = ok(sdk.complaint_history_query(complaint_id))  # default limit 100
    assert (first["limit"], first["total_count"], len(first["data"])) == (100, 101, 100)
    second = ok(sdk.complaint_history_query(complaint_id, offset=100))
    assert [e["operate_details"] for e in second["data"]] == ["留言99"] and "total_count" not in second
    assert len({e["log_id"] for e in first["data"] + second["data"]}) == 101
    small = ok(sdk.complaint_history_query(complaint_id, limit=7, offset=7))
    assert [e["operate_details"] for e in small["data"]] == [f"留言{i}" for i in range(6, 13)]
    path = f"/v3/merchant-service/complaints-v2/{complaint_id}/negotiation-historys?limit=301&offset=0"
    error(sdk._core.request(path), 400, "PARAM_ERROR")  # the SDK itself turns 301 into 100


# ---------------------------------------------------------------- images


def test_image_upload_checks_the_digest_and_download_returns_it(wechat_sim, sdk, tmp_path):
    from wechatpayv3.type import RequestType

    media_id = ok(sdk.complaint_image_upload(image_file(tmp_path)))["media_id"]
    status, data = sdk.complaint_image_download(f"{wechat_sim.base_url}/v3/merchant-service/images/{media_id}")
    assert status == 200 and data == PNG
    # the SDK's own multipart, signed over the meta, with a digest of other bytes
    meta = json.dumps({"filename": "proof.png", "sha256": hashlib.sha256(b"other").hexdigest()})
    answer = sdk._core.request("/v3/merchant-service/images/upload", method=RequestType.POST, data={"meta": meta},
                               sign_data=meta, files=[("file", ("proof.png", PNG, "image/png"))])
    error(answer, 400, "PARAM_ERROR")
    # the SDK accepts .jpeg; WeChat: "filename ... 必须以JPG、BMP、PNG为后缀"
    error(sdk.complaint_image_upload(image_file(tmp_path, name="proof.jpeg")), 400, "PARAM_ERROR")
    # "文件大小不能超过2M"
    error(sdk.complaint_image_upload(image_file(tmp_path, b"\xff" * (2 * 1024 * 1024 + 1), "big.jpg")),
          400, "INVALID_REQUEST")
    status, _ = sdk.complaint_image_download(f"{wechat_sim.base_url}/v3/merchant-service/images/nothing")
    assert status == 404
    unsigned = requests.post(wechat_sim.base_url + "/v3/merchant-service/images/upload",
                             files={"meta": (None, meta), "file": ("a.png", PNG)}, timeout=5)
    assert unsigned.status_code == 401


# ---------------------------------------------------------------- refund decisions


def test_reject_completes_the_complaint(wechat_sim, sdk, tmp_path):
    register(wechat_sim, sdk)
    complaint_id, _ = complain(wechat_sim)
    media_id = ok(sdk.complaint_image_upload(image_file(tmp_path)))["media_id"]
    error(sdk.complaint_update_refund(complaint_id, "REJECTED", reject_reason="x"), 400, "PARAM_ERROR")
    error(sdk.complaint_update_refund(complaint_id, "REJECT"), 400, "PARAM_ERROR")  # a reason is needed
    assert sdk.complaint_update_refund(complaint_id, "REJECT", reject_reason="商品已拆封",
                                       reject_media_list=[media_id], remark="已电话沟通") == (204, b"")
    assert ok(sdk.complaint_detail_query(complaint_id))["complaint_state"] == "PROCESSED"
    # the history spells it MERCHANT_REFUSE_RERUND, the notification MERCHANT_REJECT_REFUND
    assert operate_types(sdk, complaint_id)[-1] == "MERCHANT_REFUSE_RERUND"
    wechat_sim.receiver.wait_for(2, COMPLAINT_PATH)
    assert actions(wechat_sim, sdk)[-1] == ("COMPLAINT.STATE_CHANGE", "MERCHANT_REJECT_REFUND")
    # the same decision again changes nothing; another one is refused
    assert sdk.complaint_update_refund(complaint_id, "REJECT", reject_reason="商品已拆封",
                                       reject_media_list=[media_id], remark="已电话沟通") == (204, b"")
    error(sdk.complaint_update_refund(complaint_id, "APPROVE", launch_refund_day=1), 400, "INVALID_REQUEST")
    progress = wechat_sim.complaints.get(complaint_id)["refund_progress"]
    assert progress["action"] == "REJECT" and progress["reject_media_list"] == [media_id]
    assert operate_types(sdk, complaint_id).count("MERCHANT_REFUSE_RERUND") == 1


@pytest.mark.parametrize("refunded_by", ["refund_api", "merchant_platform"])
def test_approve_completes_when_the_merchants_refund_arrives(wechat_sim, sdk, refunded_by):
    register(wechat_sim, sdk)
    complaint_id, order = complain(wechat_sim, total=1000, amount=400)
    error(sdk.complaint_update_refund(complaint_id, "APPROVE"), 400, "PARAM_ERROR")  # launch_refund_day needed
    assert sdk.complaint_update_refund(complaint_id, "APPROVE", launch_refund_day=0) == (204, b"")
    assert ok(sdk.complaint_detail_query(complaint_id))["complaint_state"] == "PROCESSING"
    if refunded_by == "refund_api":
        ok(sdk.refund(out_refund_no="R" + uuid.uuid4().hex[:20], out_trade_no=order["out_trade_no"],
                      amount={"refund": 400, "total": 1000, "currency": "CNY"},
                      notify_url=wechat_sim.receiver.url("/refund-notify")))
    else:  # by hand on the merchant platform: money arrives all the same
        wechat_sim.foreign_refund(order["out_trade_no"], 400)
    wait_until(lambda: ok(sdk.complaint_detail_query(complaint_id))["complaint_state"] == "PROCESSED")
    assert operate_types(sdk, complaint_id)[-3:] == [
        "MERCHANT_APPROVE_REFUND", "COMPLAINT_PARTIAL_REFUNDED_SYSTEM_MESSAGE", "COMPLAINT_REFUND_RECEIVED_SYSTEM_MESSAGE"]
    wechat_sim.receiver.wait_for(3, COMPLAINT_PATH)
    assert [a for _, a in actions(wechat_sim, sdk)] == ["CREATE_COMPLAINT", "MERCHANT_APPROVE_REFUND", "REFUND_SUCCESS"]


def test_refund_decisions_only_for_refund_complaints(wechat_sim, sdk):
    complaint_id, _ = complain(wechat_sim, problem_type="OTHERS")
    error(sdk.complaint_update_refund(complaint_id, "APPROVE", launch_refund_day=1), 400, "INVALID_REQUEST")


def test_complete_is_done_once(wechat_sim, sdk):
    register(wechat_sim, sdk)
    complaint_id, _ = complain(wechat_sim)
    assert sdk.complaint_complete(complaint_id) == (204, b"")
    assert ok(sdk.complaint_detail_query(complaint_id))["complaint_state"] == "PROCESSED"
    assert wechat_sim.complaints.get(complaint_id)["completed"] is True
    assert sdk.complaint_complete(complaint_id) == (204, b"")
    wechat_sim.receiver.wait_for(2, COMPLAINT_PATH)
    assert [a for _, a in actions(wechat_sim, sdk)] == ["CREATE_COMPLAINT", "MERCHANT_CONFIRM_COMPLETE"]
    assert operate_types(sdk, complaint_id).count("MERCHANT_CONFIRM_COMPLETE") == 1


# ---------------------------------------------------------------- notifications


def test_notifications_are_signed_encrypted_and_retried(wechat_sim, sdk):
    register(wechat_sim, sdk)
    wechat_sim.receiver.respond_with(500)
    complaint_id, order = complain(wechat_sim)
    first, second = wechat_sim.receiver.wait_for(2, COMPLAINT_PATH)
    assert first.body == second.body  # the same notification, again
    note = sdk.callback(second.headers, second.body)
    assert note["event_type"] == "COMPLAINT.CREATE" and note["resource_type"] == "encrypt-resource"
    assert note["resource"] == {"complaint_id": complaint_id, "action_type": "CREATE_COMPLAINT"}
    assert json.loads(second.body)["resource"]["original_type"] == "complaint"
    tampered = second.body.replace(b"COMPLAINT.CREATE", b"COMPLAINT.STATE_CHANGE")
    assert sdk.callback(second.headers, tampered) is None
    log = wait_until(lambda: [d for d in wechat_sim.notifications()
                              if d["complaint_id"] == complaint_id and d["result"] == 200] and
                     [d for d in wechat_sim.notifications() if d["complaint_id"] == complaint_id])
    assert [(d["attempt"], d["result"], d["out_trade_no"]) for d in log] == [
        (1, 500, order["out_trade_no"]), (2, 200, order["out_trade_no"])]


def test_dropped_complaint_notifications_leave_the_complaint_to_a_sweep(wechat_sim, sdk):
    register(wechat_sim, sdk)
    wechat_sim.configure(drop_complaint_notifications=True)
    assert wechat_sim.sim.settings()["drop_notifications"] is False  # refund results still flow
    complaint_id, _ = complain(wechat_sim)
    log = [d for d in wechat_sim.notifications() if d["complaint_id"] == complaint_id]
    assert [(d["event_type"], d["result"]) for d in log] == [("COMPLAINT.CREATE", "dropped")]
    assert wechat_sim.receiver.requests(COMPLAINT_PATH) == []
    listed = ok(sdk.complaint_list_query(begin_date=today(), end_date=today(), limit=50))
    assert [c["complaint_id"] for c in listed["data"]] == [complaint_id]
    wechat_sim.configure(drop_complaint_notifications=False)
    sdk.complaint_complete(complaint_id)
    wechat_sim.receiver.wait_for(1, COMPLAINT_PATH)
    assert [a for _, a in actions(wechat_sim, sdk)] == ["MERCHANT_CONFIRM_COMPLETE"]


# ---------------------------------------------------------------- the deadline passes


def test_expire_refunds_the_payer_without_the_merchant(wechat_sim, sdk):
    register(wechat_sim, sdk)
    complaint_id, order = complain(wechat_sim, total=1000, amount=300)
    result = wechat_sim.complaints.expire(complaint_id, url=wechat_sim.receiver.url("/refund-notify"))
    refund = result["refund"]
    assert refund["status"] == "SUCCESS" and refund["amount"]["refund"] == 300
    assert refund["create_calls"] == 0  # not made through the merchant's refund API
    # the merchant sees it: the refund query, the order's state, its REFUND.SUCCESS and the bill
    assert ok(sdk.query_refund(refund["out_refund_no"]))["status"] == "SUCCESS"
    paid = ok(sdk.query(out_trade_no=order["out_trade_no"]))
    assert paid["trade_state"] == "REFUND"
    (got,) = wechat_sim.receiver.wait_for(1, "/refund-notify")
    note = sdk.callback(got.headers, got.body)
    assert note["event_type"] == "REFUND.SUCCESS" and note["resource"]["out_refund_no"] == refund["out_refund_no"]
    assert note["resource"]["amount"]["refund"] == 300
    wechat_sim.configure(bill_ready_hour=None)  # today's bill so far
    bill = ok(sdk.trade_bill(today(), bill_type="REFUND"))
    status, data = sdk.download_bill(bill["download_url"])
    assert status == 200 and refund["out_refund_no"].encode() in gzip.decompress(data)
    # the complaint: done, WeChat's own refund in its history, a STATE_CHANGE to the merchant
    d = ok(sdk.complaint_detail_query(complaint_id))
    assert d["complaint_state"] == "PROCESSED" and d["complaint_full_refunded"] is False
    assert operate_types(sdk, complaint_id)[-2:] == [
        "COMPLAINT_ENTRUSTED_REFUND_SYSTEM_MESSAGE", "COMPLAINT_PARTIAL_REFUNDED_SYSTEM_MESSAGE"]
    wechat_sim.receiver.wait_for(2, COMPLAINT_PATH)
    assert actions(wechat_sim, sdk)[-1] == ("COMPLAINT.STATE_CHANGE", "REFUND_SUCCESS")
    assert wechat_sim.complaints.get(complaint_id)["entrusted_refund"] == refund["out_refund_no"]
    # once: a done complaint does not expire again, and nothing more is refunded
    with pytest.raises(Exception) as exc:
        wechat_sim.complaints.expire(complaint_id)
    assert getattr(exc.value, "status", None) == 409
    assert wechat_sim.sim.store.refunded_total(order["transaction_id"]) == 300


def test_expire_logs_its_refund_once_and_completes_an_approved_sibling(wechat_sim, sdk):
    complaint_id, order = complain(wechat_sim, total=1000, amount=300)
    sibling = wechat_sim.complaints.create(order["out_trade_no"], 200)["complaint_id"]
    sdk.complaint_update_refund(sibling, "APPROVE", launch_refund_day=1)
    wechat_sim.complaints.expire(complaint_id)
    assert operate_types(sdk, complaint_id)[1:] == [
        "COMPLAINT_ENTRUSTED_REFUND_SYSTEM_MESSAGE", "COMPLAINT_PARTIAL_REFUNDED_SYSTEM_MESSAGE"]
    assert ok(sdk.complaint_detail_query(sibling))["complaint_state"] == "PROCESSED"
    assert operate_types(sdk, sibling)[-1] == "COMPLAINT_REFUND_RECEIVED_SYSTEM_MESSAGE"


def test_expire_of_the_whole_order_is_a_full_refund(wechat_sim, sdk):
    complaint_id, order = complain(wechat_sim, total=800, amount=800)
    refund = wechat_sim.complaints.expire(complaint_id)["refund"]
    assert refund["amount"]["refund"] == 800
    d = ok(sdk.complaint_detail_query(complaint_id))
    assert d["complaint_full_refunded"] is True
    assert operate_types(sdk, complaint_id)[-1] == "COMPLAINT_FULL_REFUNDED_SYSTEM_MESSAGE"


def test_expire_beyond_what_is_left_refunds_nothing(wechat_sim, sdk):
    complaint_id, order = complain(wechat_sim, total=500, amount=500)
    wechat_sim.foreign_refund(order["out_trade_no"], 300)
    with pytest.raises(Exception) as exc:
        wechat_sim.complaints.expire(complaint_id)
    assert getattr(exc.value, "code", None) == "INVALID_REQUEST"
    assert ok(sdk.complaint_detail_query(complaint_id))["complaint_state"] == "PENDING"
    assert wechat_sim.complaints.expire(complaint_id, amount=200)["refund"]["amount"]["refund"] == 200


# ---------------------------------------------------------------- control API and scenarios


def test_control_api_over_http(wechat_sim):
    base = wechat_sim.base_url
    order = wechat_sim.paid_order(1000)
    made = requests.post(f"{base}/sim/complaints", json={
        "out_trade_no": order["out_trade_no"], "amount": 600, "problem_type": "REFUND",
        "description": "没收到货", "user_tags": ["TRUSTED"], "phone": "13700137000"}, timeout=5)
    assert made.status_code == 200
    complaint_id = made.json()["complaint_id"]
    one = requests.get(f"{base}/sim/complaints/{complaint_id}", timeout=5).json()
    assert (one["state"], one["amount"], one["phone"], one["completed"], one["refund_progress"]) == (
        "PENDING", 600, "13700137000", False, None)
    assert [c["complaint_id"] for c in requests.get(f"{base}/sim/complaints", timeout=5).json()["complaints"]] == [
        complaint_id]
    expired = requests.post(f"{base}/sim/complaints/{complaint_id}/expire", json={}, timeout=5).json()
    assert expired["complaint"]["state"] == "PROCESSED" and expired["refund"]["status"] == "SUCCESS"
    assert "notification" not in expired  # no refund notify URL known
    again = requests.post(f"{base}/sim/complaints/{complaint_id}/expire", json={}, timeout=5)
    assert again.status_code == 409
    for body, status in [({"out_trade_no": "NOPE", "amount": 1}, 404),
                         ({"out_trade_no": order["out_trade_no"], "amount": 1001}, 400),
                         ({"out_trade_no": order["out_trade_no"], "amount": 1, "problem_type": "X"}, 400),
                         ({"out_trade_no": order["out_trade_no"], "amount": 1, "user_tags": ["VIP"]}, 400),
                         ({"amount": 1}, 400)]:
        resp = requests.post(f"{base}/sim/complaints", json=body, timeout=5)
        assert resp.status_code == status and resp.json()["code"], body
    assert requests.get(f"{base}/sim/complaints/nothing", timeout=5).status_code == 404
    settings = requests.post(f"{base}/sim/settings", json={"drop_complaint_notifications": True}, timeout=5).json()
    assert settings["drop_complaint_notifications"] is True
    unpaid = wechat_sim.paid_order(100, state="NOTPAY")
    resp = requests.post(f"{base}/sim/complaints", json={"out_trade_no": unpaid["out_trade_no"], "amount": 1}, timeout=5)
    assert resp.status_code == 409


def test_scenarios_apply_to_complaint_calls(wechat_sim, sdk):
    complaint_id, _ = complain(wechat_sim)
    wechat_sim.push_scenario("SYSTEM_ERROR", op="complaint")
    error(sdk.complaint_detail_query(complaint_id), 500, "SYSTEM_ERROR")
    assert ok(sdk.complaint_detail_query(complaint_id))["complaint_id"] == complaint_id


def test_reset_forgets_complaints_and_the_notify_url(wechat_sim, sdk):
    register(wechat_sim, sdk)
    complain(wechat_sim)
    wechat_sim.sim.reset()
    assert wechat_sim.complaints.list() == []
    error(sdk.complaint_notification_query(), 400, "RESOURCE_NOT_EXISTS")
