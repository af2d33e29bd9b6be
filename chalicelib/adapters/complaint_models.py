"""pynamodb models of the consumer complaints (投诉): the complaint as WeChat last described it, its
negotiation history, our actions on it and the sweep's watermark. Bound with every other table by
``models.bind()`` (they are in ``models.ALL_MODELS``); index keys come from ``keys.complaint_keys``."""
from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, JSONAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection

from pynamodb.models import Model


class ComplaintsOpenByDue(GlobalSecondaryIndex):
    """Sparse: complaints WeChat has not marked processed, by their current deadline (``open_key``
    "open", sharded): the 投诉 queue, and the deadline checks of the sweep."""

    class Meta:
        index_name = "open_by_due"
        projection = AllProjection()

    open_key = UnicodeAttribute(hash_key=True)
    due_at = UnicodeAttribute(range_key=True)


class ComplaintsByState(GlobalSecondaryIndex):
    """Complaints of one state, newest first (``state_key``: the state, sharded)."""

    class Meta:
        index_name = "by_state_key"
        projection = AllProjection()

    state_key = UnicodeAttribute(hash_key=True)
    complaint_time = UnicodeAttribute(range_key=True)


class ComplaintsByOrder(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_order"
        projection = AllProjection()

    order_no = UnicodeAttribute(hash_key=True)
    complaint_time = UnicodeAttribute(range_key=True)


class ComplaintsByUser(GlobalSecondaryIndex):
    """A player's complaints (the player is the order's user)."""

    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    complaint_time = UnicodeAttribute(range_key=True)


class ComplaintsFollowUp(GlobalSecondaryIndex):
    """Sparse: complaints whose refund decision waits on the refund engine (an approval under
    review, a refund on its way): the sweep looks at these, never at the history."""

    class Meta:
        index_name = "followup"
        projection = KeysOnlyProjection()

    followup = UnicodeAttribute(hash_key=True)
    complaint_id = UnicodeAttribute(range_key=True)


class Complaint(Model):
    """A consumer complaint as WeChat last described it, linked to our order and player, with its
    deadlines and our refund decision. Its negotiation history and our actions are in
    ``complaint_history``. Index keys come from ``keys.complaint_keys``."""

    class Meta:
        table_name = "complaints"
        base_name = "complaints"

    complaint_id = UnicodeAttribute(hash_key=True)
    complaint_time = UnicodeAttribute()  # UTC, from WeChat's complaint_time
    state = UnicodeAttribute()  # ComplaintState: WeChat's complaint_state
    order_no = UnicodeAttribute(null=True)  # WeChat's out_trade_no (our order number)
    transaction_id = UnicodeAttribute(null=True)
    order_amount = NumberAttribute(null=True)  # the order's total as WeChat knows it, fen
    order_known = BooleanAttribute(default=False)  # the order is in our books
    user_id = UnicodeAttribute(null=True)  # the order's player
    payer_openid = UnicodeAttribute(null=True)
    payer_phone = UnicodeAttribute(null=True)  # decrypted; shown whole only with complaints.view_phone
    problem_type = UnicodeAttribute(null=True)
    problem_description = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    apply_refund_amount = NumberAttribute(null=True)  # fen
    user_complaint_times = NumberAttribute(null=True)
    user_tags = ListAttribute(of=UnicodeAttribute, null=True)
    full_refunded = BooleanAttribute(default=False)
    incoming_user_response = BooleanAttribute(default=False)
    media_urls = ListAttribute(of=UnicodeAttribute, null=True)
    reply_due_at = UnicodeAttribute()
    resolve_due_at = UnicodeAttribute()
    first_reply_at = UnicodeAttribute(null=True)  # the first MERCHANT_RESPONSE in the history
    processed_at = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)  # the deadline it works against now (open ones only)
    due_kind = UnicodeAttribute(null=True)  # reply | resolve
    history_count = NumberAttribute(default=0)  # negotiation history entries stored
    last_action = UnicodeAttribute(null=True)  # WeChat's action_type of the last notification
    # the refund decision (domain/complaints.py) and the refund it is carried out with
    refund_action = UnicodeAttribute(null=True)  # APPROVE | REJECT, as told to WeChat
    refund_progress = UnicodeAttribute(null=True)  # ComplaintRefundProgress
    refund_no = UnicodeAttribute(null=True)
    refund_amount = NumberAttribute(null=True)
    refund_attempt = NumberAttribute(default=0)  # a refund that failed makes room for another
    reject_reason = UnicodeAttribute(null=True)
    entrusted_refund_no = UnicodeAttribute(null=True)  # WeChat's own refund (overdue), booked here
    overdue_task = UnicodeAttribute(null=True)  # the 投诉处理超时 task opened for it
    synced_at = UnicodeAttribute(null=True)  # when WeChat's detail was last read
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    state_key = UnicodeAttribute(null=True)
    open_key = UnicodeAttribute(null=True)
    followup = UnicodeAttribute(null=True)

    open_by_due = ComplaintsOpenByDue()
    by_state = ComplaintsByState()
    by_order = ComplaintsByOrder()
    by_user = ComplaintsByUser()
    followups = ComplaintsFollowUp()


class ComplaintLog(Model):
    """One negotiation history entry of a complaint, as WeChat lists it (``sk`` "H#<index>":
    WeChat's history only grows, so an entry's index is its place)."""

    class Meta:
        table_name = "complaint_history"
        base_name = "complaint_history"

    complaint_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    log_id = UnicodeAttribute()
    operator = UnicodeAttribute(null=True)
    operate_time = UnicodeAttribute()
    operate_type = UnicodeAttribute()
    operate_details = UnicodeAttribute(null=True)
    image_urls = ListAttribute(of=UnicodeAttribute, null=True)


class ComplaintActionRecord(Model):
    """One operator action on a complaint (``sk`` "A#<action id>": the id is derived from the
    request, so a retry finds it): what was asked, the images uploaded for it, what WeChat said
    and the complaint's state at WeChat afterwards."""

    class Meta:
        table_name = "complaint_history"
        base_name = "complaint_history"

    complaint_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    action = UnicodeAttribute()  # ComplaintAction
    actor = UnicodeAttribute()
    status = UnicodeAttribute()  # pending | done | refused
    request = JSONAttribute(null=True)  # content, reason, amount (no image bytes)
    media_ids = JSONAttribute(null=True)  # image sha256 -> WeChat media_id, once uploaded
    result = JSONAttribute(null=True)  # wechat_state after, refund_no, WeChat's refusal
    at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)


class ComplaintSweepMark(Model):
    """The sweep's watermark (``complaint_id`` "#sweep"): the list window last read whole and
    how many complaints WeChat counted in it, and the notify URL last registered."""

    class Meta:
        table_name = "complaint_history"
        base_name = "complaint_history"

    complaint_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    begin_date = UnicodeAttribute(null=True)
    end_date = UnicodeAttribute(null=True)
    total_count = NumberAttribute(null=True)
    notify_url = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
