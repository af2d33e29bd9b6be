"""The gateway's complaint calls (adapters/wechat/complaints.py) against the simulator, with the
real SDK: typed answers, WeChat's refusals as typed errors, and where WeChat differs from the
easy assumption (the phone encrypted for the merchant, REJECT not REJECTED, 400 for a missing
notify URL, total_count only on the first page)."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.adapters.wechat.complaints import Complaint, ComplaintEvent
from chalicelib.adapters.wechat.errors import InvalidNotification, NotFound, Rejected
from tests.wechat_fixtures import wait_until, wechat_sim, wechat_sim_session  # noqa: F401

CST = dt.timezone(dt.timedelta(hours=8))
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def today() -> str:
    return dt.datetime.now(CST).date().isoformat()


@pytest.fixture
def api(wechat_sim):
    return wechat_sim.gateway().complaints


def complain(wechat_sim, total=1000, amount=500, **kwargs) -> tuple[str, dict]:
    order = wechat_sim.paid_order(total)
    return wechat_sim.complaints.create(order["out_trade_no"], amount, **kwargs)["complaint_id"], order


def test_detail_is_typed_and_the_phone_opens_with_the_merchant_key(wechat_sim, api):
    complaint_id, order = complain(wechat_sim, total=2500, amount=1200, phone="13900139000",
                                   user_tags=["HIGH_RISK"], images=1, description="少发了一个")
    got = api.detail(complaint_id)
    assert isinstance(got, Complaint) and got.state == "PENDING" and got.detail == "少发了一个"
    assert (got.problem_type, got.apply_refund_amount, got.user_tags) == ("REFUND", 1200, ("HIGH_RISK",))
    assert got.order.out_trade_no == order["out_trade_no"] and got.order.amount == 2500
    assert got.payer_phone == "13900139000"  # encrypted for the merchant's key, opened with it
    assert "payer_phone" not in got.raw and len(got.media_urls) == 1
    with pytest.raises(NotFound):
        api.detail("2002000000000000000000000000")


def test_an_unreadable_phone_does_not_lose_the_complaint(wechat_sim, api, monkeypatch):
    complaint_id, _ = complain(wechat_sim, phone="13900139000")
    # as if WeChat had encrypted it with its own platform key (the easy assumption): unreadable
    monkeypatch.setattr(wechat_sim.sim.complaints, "_encrypt", lambda text: "bm90LWEtY2lwaGVydGV4dA==")
    got = api.detail(complaint_id)
    assert got.complaint_id == complaint_id and got.payer_phone is None


def test_list_pages_and_total_only_on_the_first(wechat_sim, api):
    order = wechat_sim.paid_order(10_000)
    made = [wechat_sim.complaints.create(order["out_trade_no"], 10 + i)["complaint_id"] for i in range(55)]
    first = api.list_page(begin_date=today(), end_date=today(), offset=0, limit=50)
    second = api.list_page(begin_date=today(), end_date=today(), offset=50, limit=50)
    assert first.total_count == 55 and second.total_count is None
    assert [c.complaint_id for c in first.items + second.items] == made
    with pytest.raises(ValueError):
        api.list_page(begin_date=today(), end_date=today(), limit=51)
    old = (dt.datetime.now(CST) - dt.timedelta(days=31)).date().isoformat()
    with pytest.raises(Rejected) as refused:
        api.list_page(begin_date=old, end_date=today())
    assert refused.value.code == "PARAM_ERROR"


def test_answers_reach_the_complaint_and_history_follows(wechat_sim, api):
    complaint_id, _ = complain(wechat_sim)
    media = api.upload_image(PNG, "proof1234.png")
    api.respond(complaint_id, "已为您补发", [media])
    api.reject_refund(complaint_id, reason="商品已拆封使用", media_ids=[media])
    sim = wechat_sim.complaints.get(complaint_id)
    assert sim["state"] == "PROCESSED" and sim["refund_progress"]["action"] == "REJECT"
    assert sim["responses"][0]["images"] == [media]
    history = api.history_from(complaint_id)
    assert [e.operate_type for e in history] == ["USER_CREATE_COMPLAINT", "MERCHANT_RESPONSE", "MERCHANT_REFUSE_RERUND"]
    assert api.history_from(complaint_id, 2)[0].operate_type == "MERCHANT_REFUSE_RERUND"
    with pytest.raises(Rejected) as refused:  # one decision only: WeChat refuses another
        api.approve_refund(complaint_id, launch_refund_day=0)
    assert refused.value.code == "INVALID_REQUEST" and refused.value.message


def test_approve_then_complete(wechat_sim, api):
    complaint_id, _ = complain(wechat_sim)
    api.approve_refund(complaint_id, launch_refund_day=0)
    assert wechat_sim.complaints.get(complaint_id)["refund_progress"]["action"] == "APPROVE"
    other, _ = complain(wechat_sim, problem_type="OTHERS")
    with pytest.raises(Rejected):
        api.approve_refund(other, launch_refund_day=0)  # only a refund request takes a decision
    api.complete(other)
    api.complete(other)  # again: 204, nothing changes
    assert api.detail(other).state == "PROCESSED"


def test_history_pages_past_300(wechat_sim, api):
    complaint_id, _ = complain(wechat_sim)
    for i in range(300):
        wechat_sim.complaints.user_response(complaint_id, f"留言{i}")
    entries = api.history_from(complaint_id)
    assert len(entries) == 301 and entries[-1].operate_details == "留言299"


def test_notify_url_is_registered_once(wechat_sim, api):
    assert api.notify_url() is None  # WeChat answers 400 RESOURCE_NOT_EXISTS, not 404
    url = wechat_sim.receiver.url("/complaint")
    assert api.register_notify_url(url) == "created"
    assert api.register_notify_url(url) == "unchanged"
    assert api.register_notify_url(url + "2") == "updated" and api.notify_url() == url + "2"


def test_notifications_are_verified_and_typed(wechat_sim, api):
    api.register_notify_url(wechat_sim.receiver.url("/complaint"))
    complaint_id, _ = complain(wechat_sim)
    (got,) = wechat_sim.receiver.wait_for(1, "/complaint")
    event = api.parse_notification(got.headers, got.body)
    assert event == ComplaintEvent(id=event.id, event_type="COMPLAINT.CREATE", complaint_id=complaint_id,
                                   action_type="CREATE_COMPLAINT", create_time=event.create_time)
    with pytest.raises(InvalidNotification):
        api.parse_notification(got.headers, got.body.replace(b"COMPLAINT.CREATE", b"COMPLAINT.STATE_CHANGE"))
    wechat_sim.complaints.expire(complaint_id, url=wechat_sim.receiver.url("/refund"))
    (refund_note,) = wechat_sim.receiver.wait_for(1, "/refund")
    with pytest.raises(InvalidNotification):  # a refund notification is not a complaint event
        api.parse_notification(refund_note.headers, refund_note.body)
    wait_until(lambda: len(wechat_sim.receiver.requests("/complaint")) == 2)
