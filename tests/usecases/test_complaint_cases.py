"""The 投诉 desk in-process (no HTTP): GIVEN the demo shop and a complaint made at WeChat (the
simulator), WHEN the notification, the sweep or an operator's action runs on the edges passed
in, THEN our copy, the refund engine and WeChat's complaint agree."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.adapters import complaint_store as store
from chalicelib.adapters import repository as repo
from chalicelib.domain import clock
from chalicelib.domain.complaints import Image
from chalicelib.domain.errors import DomainError
from chalicelib.services import complaint_sync as sync
from chalicelib.services import complaint_views, complaints, edges, notifications, staff

SUPPORT, FINANCE, OTHER = "support:amy", "finance:fay", "admin:ops-2"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


def complain(case, n: int = 2, amount: int = 500, **kwargs) -> tuple[str, object]:
    order = case.order(n)
    return case.sim.complaints.create(order.order_no, amount, **kwargs)["complaint_id"], order


def notification(case, complaint_id: str, action: str):
    """WeChat's COMPLAINT.* notification about ``complaint_id`` (verified like the route does)."""
    gateway = edges.gateway()

    def about(path, headers, body):
        if path != "/complaint":
            return False
        event = gateway.parse_notification(headers, body)
        return event.resource["complaint_id"] == complaint_id and event.resource["action_type"] == action

    path, headers, body = case.inbox.wait(about)
    return gateway.parse_notification(headers, body)


@pytest.fixture
def registered(case):
    """The notify URL registered the way the sweep does it."""
    assert sync.register_notify_url() == "created"
    return case


def test_a_notification_brings_the_complaint_once(registered):
    case = registered
    complaint_id, order = complain(case, phone="13800138000", user_tags=["HIGH_RISK"])
    event = notification(case, complaint_id, "CREATE_COMPLAINT")
    assert sync.handle_notification(event) == "CREATE_COMPLAINT: PENDING"
    assert sync.handle_notification(event) == "duplicate"
    c = store.get(complaint_id)
    assert (c.order_no, c.user_id, c.order_known, c.state) == (order.order_no, order.user_id, True, "PENDING")
    assert c.payer_phone == "13800138000" and c.user_tags == ["HIGH_RISK"] and c.history_count == 1
    assert c.due_kind == "reply" and c.due_at == c.reply_due_at
    assert clock.parse(c.resolve_due_at) - clock.parse(c.complaint_time) == timedelta(hours=72)
    view = complaint_views.complaint_detail(complaint_id, staff.operator(SUPPORT))
    assert view["payer_phone"] == "138****8000" and view["payer_phone_masked"]
    assert complaint_views.complaint_detail(complaint_id, staff.operator(FINANCE))["payer_phone"] == "13800138000"
    assert [e["operate_type_label"] for e in view["history"]] == ["用户提交投诉"]


def test_the_sweep_finds_what_no_notification_told_and_then_reads_one_page(case):
    case.sim.configure(drop_complaint_notifications=True)
    made = [complain(case, n, amount=100)[0] for n in (2, 11, 13)]
    first = sync.sweep()
    assert (first.new, first.pages, first.complete) == (3, 1, True)
    assert set(store.get_many(made)) == set(made)
    again = sync.sweep()
    assert (again.pages, again.new, again.updated) == (1, 0, 0)
    case.sim.complaints.user_response(made[0], "怎么还没处理？")  # WeChat's state changes, nobody is told
    complain(case, 14, amount=100)
    third = sync.sweep()
    assert (third.new, third.updated) == (1, 1)
    assert store.get(made[0]).incoming_user_response is True


def test_reply_with_images_reaches_wechat_once(case):
    complaint_id, _ = complain(case)
    sync.ingest(complaint_id)
    image = Image(PNG, "png")
    done = complaints.reply(actor=SUPPORT, complaint_id=complaint_id, content="已为您补发", images=[image])
    assert done.state == "PROCESSING" and done.first_reply_at and done.due_kind == "resolve"
    again = complaints.reply(actor=SUPPORT, complaint_id=complaint_id, content="已为您补发", images=[image])
    assert again.state == "PROCESSING"
    sim = case.sim.complaints.get(complaint_id)
    assert len(sim["responses"]) == 1 and len(sim["responses"][0]["images"]) == 1  # once, image and all
    [record] = store.actions_of(complaint_id)
    assert record.status == "done" and record.result["wechat_state"] == "PROCESSING"


def test_a_refund_goes_through_the_engine_and_wechat_is_told_approve(case):
    complaint_id, order = complain(case, n=2, amount=500)
    sync.ingest(complaint_id)
    done = complaints.refund(actor=SUPPORT, complaint_id=complaint_id, amount=500, reason="投诉退款")
    refund = repo.get_refund(done.refund_no)
    assert refund.amount == 500 and refund.complaint_id == complaint_id and refund.order_no == order.order_no
    # approved, or already refunded when WeChat's money arrived before the complaint was read again
    assert done.refund_action == "APPROVE" and done.refund_progress in ("approved", "refunded")
    assert case.sim.complaints.get(complaint_id)["refund_progress"]["launch_refund_day"] == 0
    retry = complaints.refund(actor=SUPPORT, complaint_id=complaint_id, amount=500, reason="投诉退款")
    assert retry.refund_no == done.refund_no and len(repo.refunds_of_order(order.order_no)) == 1
    with pytest.raises(DomainError) as other:
        complaints.refund(actor=OTHER, complaint_id=complaint_id, amount=500, reason="投诉退款")
    assert other.value.code == "INVALID_COMPLAINT_STATE"
    notifications.handle_refund_event(case.notification_for(done.refund_no))  # the money arrives
    assert repo.get_refund(done.refund_no).status == "success"
    settled = sync.follow_up(store.get(complaint_id))
    assert settled.refund_progress == "refunded" and not settled.followup
    case.check_invariants(order.order_no)


def test_a_refund_above_the_limit_waits_for_approval_before_wechat_hears(case):
    complaint_id, order = complain(case, n=11, amount=30000)  # 300 yuan: above support's 200
    sync.ingest(complaint_id)
    done = complaints.refund(actor=SUPPORT, complaint_id=complaint_id, amount=30000, reason="投诉退款")
    assert done.refund_progress == "awaiting_review" and done.followup
    assert case.sim.complaints.get(complaint_id)["refund_progress"] is None  # WeChat not told yet
    sync.follow_up(store.get(complaint_id))
    assert case.sim.complaints.get(complaint_id)["refund_progress"] is None
    from chalicelib.services import refunds

    refunds.approve(actor=OTHER, refund_no=done.refund_no, amount=None)
    after = sync.follow_up(store.get(complaint_id))
    assert after.refund_action == "APPROVE" and after.refund_progress == "approved"
    assert case.sim.complaints.get(complaint_id)["refund_progress"]["action"] == "APPROVE"


def test_reject_is_refused_by_wechat_after_an_approval_and_says_why(case):
    complaint_id, _ = complain(case, n=13, amount=200)
    sync.ingest(complaint_id)
    edges.gateway().complaints.approve_refund(complaint_id, launch_refund_day=2)  # decided elsewhere
    with pytest.raises(DomainError) as refused:
        complaints.reject(actor=SUPPORT, complaint_id=complaint_id, reason="已拆封", images=[])
    assert refused.value.code == "WECHAT_REJECTED" and refused.value.details["wechat_code"] == "INVALID_REQUEST"
    c = store.get(complaint_id)
    assert c.refund_action is None and c.refund_progress is None  # nothing half-done here
    [record] = store.actions_of(complaint_id)
    assert record.status == "refused" and record.result["wechat_code"] == "INVALID_REQUEST"


def test_reject_and_complete(case):
    complaint_id, _ = complain(case, n=13, amount=200)
    sync.ingest(complaint_id)
    done = complaints.reject(actor=SUPPORT, complaint_id=complaint_id, reason="商品已拆封使用",
                             images=[Image(PNG, "png")])
    assert done.state == "PROCESSED" and done.refund_progress == "rejected" and not done.open_key
    assert case.sim.complaints.get(complaint_id)["refund_progress"]["action"] == "REJECT"
    other, _ = complain(case, n=14, amount=100, problem_type="OTHERS")
    sync.ingest(other)
    assert complaints.complete(actor=SUPPORT, complaint_id=other).state == "PROCESSED"
    with pytest.raises(DomainError) as late:
        complaints.reply(actor=SUPPORT, complaint_id=other, content="还有问题吗", images=[])
    assert late.value.code == "INVALID_COMPLAINT_STATE"


def test_deadlines_open_one_task_and_processing_closes_it(case):
    complaint_id, order = complain(case, n=15, amount=100)
    sync.ingest(complaint_id)
    later = clock.now() + timedelta(hours=25)  # past the first-reply deadline
    with edges.use(edges.Edges(clock=lambda: later, publisher=lambda: case.published)):
        report = sync.SweepReport()
        sync.check_deadlines(report)
        sync.check_deadlines(report)
    assert (report.overdue, report.tasks_opened) == (2, 1)
    task = repo.get_task(f"complaint_overdue.{complaint_id}.reply")
    assert task.status == "open" and task.order_no == order.order_no
    complaints.complete(actor=SUPPORT, complaint_id=complaint_id)
    assert repo.get_task(task.task_id).status == "done" and store.get(complaint_id).overdue_task is None
