"""What an operator does with a consumer complaint (投诉): reply (text and up to 4 images, uploaded
through WeChat's image API), refund (through the refund engine, then WeChat's refund decision
APPROVE), reject (the decision REJECT with a reason and evidence images) and complete.

Each action is checked by the domain (``domain/complaints.decide``), recorded before it reaches
WeChat under an id derived from the request (a retry finds it: images are not uploaded twice and
WeChat is not asked twice for what it did), and afterwards the complaint is read again from
WeChat, so its state there is what is recorded. WeChat's refusal is a 409 WECHAT_REJECTED with
WeChat's code and words; an unknown outcome a 503 that a retry resolves.

The refund goes through ``services/refunds.create_admin_refund`` (limits, four-eyes,
idempotency) under a key derived from the complaint, so a retry never refunds twice. When it
needs a second person's approval WeChat is told APPROVE only once it is approved (the sweep's
follow-up, ``complaint_sync.follow_up``): WeChat takes one decision and never another."""
from __future__ import annotations

from typing import Callable

from ..adapters import complaint_store as store
from ..adapters import repository as repo
from ..domain import clock
from ..domain import complaints as rules
from ..domain import staff as staff_rules
from ..domain.complaints import Image
from ..domain.enums import ComplaintAction as A, ComplaintRefundProgress as Progress, RefundStatus
from ..domain.errors import ComplaintNotFound, DomainError, ErrorCode, OrderNotFound, UpstreamUnavailable, conflict
from ..log import get_logger, log_context
from . import complaint_sync as sync
from . import edges, refunds

log = get_logger(__name__)
UNKNOWN = "微信暂时无法受理，结果未知：请稍后重试（重试不会重复操作）"
LAUNCH_REFUND_DAY = 0  # "launch_refund_day ... 0代表当天": the refund is sent the moment WeChat is told


def get(complaint_id: str):
    if not isinstance(complaint_id, str) or not rules.COMPLAINT_ID_RE.match(complaint_id):
        raise ComplaintNotFound("投诉单不存在")
    complaint = store.get(complaint_id)
    if complaint is None:
        raise ComplaintNotFound("投诉单不存在")
    return complaint


def wechat_refusal(err) -> DomainError:
    """409 WECHAT_REJECTED in WeChat's own words (``details.wechat_code``, ``wechat_message``)."""
    return conflict(ErrorCode.WECHAT_REJECTED, f"微信拒绝了该操作：{err.message or err.code}",
                    wechat_code=err.code, wechat_message=err.message)


# ---------------------------------------------------------------- the action record


def _begin(complaint, action: A, actor: str, request: dict, images: list[Image]):
    """The action's record (new, or the one a retry finds), or None when it was done before. A
    new or refused action is checked by the domain; a pending one (cut short) goes on."""
    cid = complaint.complaint_id
    aid = rules.action_id(cid, action, {**request, "images": [i.sha256 for i in images]})
    record = store.get_action(cid, aid)
    if record is not None and record.status == "done":
        return aid, None
    if record is None or record.status == "refused":
        rules.decide(complaint, action, staff_rules.role_of(actor)).check()
    now = clock.iso(clock.now())
    try:
        if record is None:
            repo.write([store.action_begin(store.ActionStart(cid, aid, action.value, actor, request, now))])
        elif record.status == "refused":
            repo.write([store.action_retry(cid, aid, actor=actor, at=now)])
    except repo.WriteConflict:
        pass  # the same request is being made at this moment: it goes on from the record
    record = store.get_action(cid, aid)
    return aid, (record if record.status != "done" else None)


def _end(complaint_id: str, aid: str, status: str, result: dict) -> None:
    try:
        repo.write([store.action_update(complaint_id, aid, {"status": status, "result": result,
                                                            "updated_at": clock.iso(clock.now())})])
    except repo.WriteConflict:
        pass  # a racing retry ended it


def _perform(complaint, action: A, actor: str, request: dict, images: list[Image],
             call: Callable, after: dict | None = None):
    """Upload the images (once), make the WeChat ``call`` with their media ids, record ``after``
    on the complaint, read the complaint again from WeChat and end the record with its state."""
    from ..adapters.wechat.errors import Rejected, WechatError

    cid = complaint.complaint_id
    with log_context(complaint_id=cid, action=action.value):
        aid, record = _begin(complaint, action, actor, request, images)
        if record is None:
            return complaint
        media = dict(record.media_ids or {})
        api = edges.gateway().complaints
        try:
            for image in images:
                if image.sha256 not in media:
                    media[image.sha256] = api.upload_image(image.data, image.filename)
                    repo.write([store.action_update(cid, aid, {"media_ids": media})])
            call(api, [media[i.sha256] for i in images])
        except Rejected as err:
            log.warning("wechat refused a complaint action", extra={"code": err.code})
            _end(cid, aid, "refused", {"wechat_code": err.code, "wechat_message": err.message})
            raise wechat_refusal(err) from None
        except WechatError as err:
            log.warning("complaint action outcome unknown", extra={"code": err.code})
            raise UpstreamUnavailable(UNKNOWN) from None
        if after:
            repo.write([store.change(cid, {**after, "updated_at": clock.iso(clock.now())})])
        fresh = sync.ingest(cid)
        _end(cid, aid, "done", {"wechat_state": fresh.state, "media_ids": list(media.values()) or None})
        log.info("complaint action done", extra={"wechat_state": fresh.state})
        return fresh


# ---------------------------------------------------------------- reply, reject, complete


def reply(*, actor: str, complaint_id: str, content: str, images: list[Image]):
    """回复用户: the text (at most 200 characters) and up to 4 images."""
    complaint = get(complaint_id)
    return _perform(complaint, A.REPLY, actor, {"content": content}, images,
                    lambda api, media: api.respond(complaint_id, content, media))


def reject(*, actor: str, complaint_id: str, reason: str, images: list[Image]):
    """Refuse the refund the player asks for (REJECT, with the reason and evidence images)."""
    complaint = get(complaint_id)
    return _perform(complaint, A.REJECT, actor, {"reason": reason}, images,
                    lambda api, media: api.reject_refund(complaint_id, reason=reason, media_ids=media),
                    after={"refund_action": "REJECT", "refund_progress": Progress.REJECTED.value,
                           "reject_reason": reason, "followup": False})


def complete(*, actor: str, complaint_id: str):
    """Tell WeChat the complaint is handled (反馈处理完成)."""
    complaint = get(complaint_id)
    return _perform(complaint, A.COMPLETE, actor, {}, [], lambda api, media: api.complete(complaint_id))


# ---------------------------------------------------------------- refund


def refund(*, actor: str, complaint_id: str, amount: int, reason: str):
    """Refund ``amount`` for the complaint through the refund engine and tell WeChat APPROVE.

    Steps, each safe to repeat (a retry of the same request goes on where it stopped):
    the complaint takes the refund's number (derived from the complaint, so two requests cannot
    make two refunds); a refund within the operator's limits is approved at WeChat first (the
    documented order: "传入'同意退款'后,需要额外调退款接口发起原路退款"), then made; one that needs a
    second person's approval is made (under review) and WeChat is told once it is approved."""
    from ..adapters.wechat.errors import Rejected, WechatError

    complaint = get(complaint_id)
    cid = complaint.complaint_id
    attempt = int(complaint.refund_attempt or 0)
    key = f"complaint-{cid}-{attempt}"
    refund_no = refunds.make_refund_no(actor, key)
    with log_context(complaint_id=cid, refund_no=refund_no):
        # the refund's number is the operator's (the engine's idempotency key is per operator): so is the action
        request = {"amount": amount, "reason": reason, "attempt": attempt, "operator": actor}
        aid, record = _begin(complaint, A.REFUND, actor, request, [])
        if record is None:
            return complaint
        if complaint.refund_no != refund_no:
            if not complaint.order_known or not complaint.order_no:
                raise OrderNotFound("投诉的订单不在本系统中，不能在此退款")
            plan = refunds.preview(order_no=complaint.order_no, amount=amount, actor=actor)
            review = plan["requires_approval"]
            if not review and not plan["allowance"]["fits"]:
                # over the operator's daily total: the engine refuses it before writing anything
                refunds.create_admin_refund(actor=actor, order_no=complaint.order_no, amount=amount, reason=reason,
                                            idempotency_key=key)
            fields = {"refund_no": refund_no, "refund_amount": amount, "updated_at": clock.iso(clock.now())}
            if review:
                fields["refund_progress"] = Progress.AWAITING_REVIEW.value
            try:
                repo.write([store.change(cid, fields, refund_no=None, refund_attempt=attempt)])
            except repo.WriteConflict:
                rules.decide(store.get(cid), A.REFUND, staff_rules.role_of(actor)).check()
                raise conflict(ErrorCode.INVALID_COMPLAINT_STATE, "投诉刚刚被他人处理，请刷新后重试") from None
            complaint = store.get(cid)
        review = complaint.refund_progress == Progress.AWAITING_REVIEW.value
        if not review and complaint.refund_action != "APPROVE":
            try:
                edges.gateway().complaints.approve_refund(cid, launch_refund_day=LAUNCH_REFUND_DAY)
            except Rejected as err:
                _write_release(complaint)
                _end(cid, aid, "refused", {"wechat_code": err.code, "wechat_message": err.message})
                raise wechat_refusal(err) from None
            except WechatError:
                raise UpstreamUnavailable(UNKNOWN) from None  # the claim stays: a retry goes on from here
            repo.write([store.change(cid, {"refund_action": "APPROVE", "refund_progress": Progress.APPROVED.value},
                                     refund_no=refund_no)])
        try:
            created = refunds.create_admin_refund(actor=actor, order_no=complaint.order_no, amount=amount,
                                                  reason=reason, idempotency_key=key)
        except DomainError:
            _write_release(store.get(cid))
            raise
        made = created.refund
        repo.write([store.link_refund(made.refund_no, cid)])
        made.complaint_id = cid
        gone = RefundStatus(made.status) in sync.GONE
        repo.write([store.change(cid, sync.release(store.get(cid), bump=True) if gone else {"followup": True},
                                 refund_no=refund_no)])
        fresh = sync.ingest(cid)
        _end(cid, aid, "done", {"wechat_state": fresh.state, "refund_no": made.refund_no, "refund_status": made.status})
        log.info("complaint refund made", extra={"status": made.status, "review": review})
        return fresh


def _write_release(complaint) -> None:
    """Let go of a refund that was never made (WeChat or the engine refused it first)."""
    try:
        repo.write([store.change(complaint.complaint_id, sync.release(complaint), refund_no=complaint.refund_no)])
    except repo.WriteConflict:
        pass


def tell_wechat_approved(complaint, *, actor: str) -> None:
    """A complaint's refund that waited for a second person's approval is on its way: WeChat is
    told APPROVE now (a refusal is recorded, the refund goes on: the money is the player's)."""
    from ..adapters.wechat.errors import Rejected, WechatError

    fields = {"refund_progress": Progress.APPROVED.value, "updated_at": clock.iso(clock.now())}
    try:
        edges.gateway().complaints.approve_refund(complaint.complaint_id, launch_refund_day=LAUNCH_REFUND_DAY)
        fields["refund_action"] = "APPROVE"
    except Rejected as err:
        log.error("wechat refused the refund decision of an approved complaint refund",
                  extra={"code": err.code, "actor": actor})
    except WechatError as err:
        log.warning("complaint approval outcome unknown; the next sweep asks again", extra={"code": err.code})
        return
    try:
        repo.write([store.change(complaint.complaint_id, fields, refund_no=complaint.refund_no)])
    except repo.WriteConflict:
        pass
