"""pynamodb models: one per table. Table names come from configuration (stage prefix),
bound lazily by ``bind()`` on first use, never at import time."""
from __future__ import annotations

import threading

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from .. import config
from .keys import item_keys, nickname_key

# ---------------------------------------------------------------- orders


class Payment(MapAttribute):
    out_trade_no = UnicodeAttribute()
    transaction_id = UnicodeAttribute(null=True)
    paid_at = UnicodeAttribute(null=True)


class Shipping(MapAttribute):
    status = NumberAttribute()
    carrier = UnicodeAttribute(null=True)
    tracking_no = UnicodeAttribute(null=True)
    shipped_at = UnicodeAttribute(null=True)
    signed_at = UnicodeAttribute(null=True)
    cancelled = BooleanAttribute(default=False)
    exception_reason = UnicodeAttribute(null=True)


class Virtual(MapAttribute):
    name = UnicodeAttribute(null=True)
    is_consumed = BooleanAttribute(default=False)
    revocable = BooleanAttribute(default=False)
    revoked = BooleanAttribute(default=False)
    revoked_at = UnicodeAttribute(null=True)
    revoked_by_refund = UnicodeAttribute(null=True)


class Item(MapAttribute):
    sku = UnicodeAttribute(null=True)
    name = UnicodeAttribute()
    qty = NumberAttribute()
    unit_price = NumberAttribute()


class Draw(MapAttribute):
    draw_id = UnicodeAttribute()
    is_winner = NumberAttribute()
    level = NumberAttribute(null=True)
    prize_name = UnicodeAttribute(null=True)
    inventory_id = UnicodeAttribute(null=True)
    drawn_at = UnicodeAttribute(null=True)  # when the draw was made (the order's payment when not recorded)


class OrdersByUser(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class OrdersByStatus(GlobalSecondaryIndex):
    """Orders of one status, newest first; ``status_key`` is the status, sharded."""

    class Meta:
        index_name = "by_status_key"
        projection = AllProjection()

    status_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class OrdersByTime(GlobalSecondaryIndex):
    """All orders newest first (the unfiltered admin list); ``list_pk`` is "ORDER", sharded."""

    class Meta:
        index_name = "by_time"
        projection = AllProjection()

    list_pk = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class OrdersAwaitingPayment(GlobalSecondaryIndex):
    """Sparse: pending orders whose payment is checked with WeChat when no notification came
    (``pay_check`` = "pending" until paid, cancelled or past checking). Its size is the pending
    backlog, never the order history."""

    class Meta:
        index_name = "awaiting_payment"
        projection = KeysOnlyProjection()

    pay_check = UnicodeAttribute(hash_key=True)
    pay_check_due_at = UnicodeAttribute(range_key=True)


class OrdersByPaidDay(GlobalSecondaryIndex):
    """Sparse: orders whose payment we recorded, by the Beijing day WeChat says it was paid
    (``paid_day_key``, sharded), so a reconciliation reads one day's payments with Queries
    (never a Scan) and finds payments we hold that WeChat's bill lacks. Carries what the
    comparison needs, so a payment on the bill costs no further read."""

    class Meta:
        index_name = "by_paid_day"
        projection = IncludeProjection(["status", "actual_amount", "payment"])

    paid_day_key = UnicodeAttribute(hash_key=True)
    order_no = UnicodeAttribute(range_key=True)


class OrdersByTransaction(GlobalSecondaryIndex):
    """Sparse: paid orders by WeChat's payment number (``transaction_key``: keys.transaction_key),
    the search box's lookup of a 微信支付单号."""

    class Meta:
        index_name = "by_transaction"
        projection = KeysOnlyProjection()

    transaction_key = UnicodeAttribute(hash_key=True)


class Order(Model):
    class Meta:
        table_name = "orders"
        base_name = "orders"

    order_no = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    status = NumberAttribute()
    source_type = NumberAttribute()
    total_amount = NumberAttribute()
    discount_amount = NumberAttribute(default=0)
    actual_amount = NumberAttribute()
    points_used = NumberAttribute(default=0)
    points_amount = NumberAttribute(default=0)
    coupon_id = UnicodeAttribute(null=True)
    activity_id = UnicodeAttribute(null=True)
    activity_name = UnicodeAttribute(null=True)
    items = ListAttribute(of=Item, default=list)
    payment = Payment(null=True)
    shipping = Shipping(null=True)
    virtual = Virtual(null=True)
    lottery = ListAttribute(of=Draw, null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)
    list_pk = UnicodeAttribute(null=True)  # keys.shard_key("ORDER", order_no, "list"), set on creation
    status_key = UnicodeAttribute(null=True)  # keys.shard_key(status, order_no, "status"), moved with status
    # refund balances (fen); see domain.refunds for the invariant
    refundable_amount = NumberAttribute(default=0)
    reserved_amount = NumberAttribute(default=0)
    refunded_amount = NumberAttribute(default=0)
    requested_amount = NumberAttribute(default=0)
    applicable_amount = NumberAttribute(default=0)
    refund_count = NumberAttribute(default=0)
    open_application = UnicodeAttribute(null=True)  # the player's open application, if any
    # a payment that arrived after the order was cancelled: refundable, nothing to restore
    paid_after_cancel = BooleanAttribute(null=True)
    refund_hold = UnicodeAttribute(null=True)  # why no refund may be made (a person must look first)
    # set by whoever creates a pending order: when to ask WeChat about its payment
    pay_check = UnicodeAttribute(null=True)
    pay_check_due_at = UnicodeAttribute(null=True)
    pay_check_attempts = NumberAttribute(null=True)
    paid_day_key = UnicodeAttribute(null=True)  # keys.order_keys(), set with the payment: the by_paid_day index
    transaction_key = UnicodeAttribute(null=True)  # keys.order_keys(), set with the payment: the by_transaction index

    by_user = OrdersByUser()
    by_status = OrdersByStatus()
    by_time = OrdersByTime()
    awaiting_payment = OrdersAwaitingPayment()
    by_paid_day = OrdersByPaidDay()
    by_transaction = OrdersByTransaction()

    def __init__(self, hash_key=None, range_key=None, _user_instantiated=True, **attributes):
        super().__init__(hash_key, range_key, _user_instantiated, **attributes)
        if _user_instantiated and hash_key is not None and attributes:  # a new order, not a key stub
            payment = ({"paid_at": self.payment.paid_at, "transaction_id": self.payment.transaction_id}
                       if self.payment is not None else None)
            for name, value in item_keys("orders", {"order_no": hash_key, "status": self.status,
                                                    "payment": payment}).items():
                setattr(self, name, getattr(self, name) or value)


class UsersByNickname(GlobalSecondaryIndex):
    """Sparse: users by their nickname as the search compares it (``nickname_key``)."""

    class Meta:
        index_name = "by_nickname"
        projection = KeysOnlyProjection()

    nickname_key = UnicodeAttribute(hash_key=True)


class UsersByPhone(GlobalSecondaryIndex):
    """Sparse: users by the keyed hash of their mobile number (``phone_hash``: keys.phone_key);
    the table holds no phone number."""

    class Meta:
        index_name = "by_phone"
        projection = KeysOnlyProjection()

    phone_hash = UnicodeAttribute(hash_key=True)


class User(Model):
    """The shop's player record. Its writer sets ``phone_hash`` with ``keys.phone_key(phone)``;
    ``nickname_key`` follows from the nickname when the item is built."""

    class Meta:
        table_name = "users"
        base_name = "users"

    user_id = UnicodeAttribute(hash_key=True)
    nickname = UnicodeAttribute(null=True)
    openid = UnicodeAttribute(null=True)  # the player's openid in the mini-program (subscription messages)
    points_balance = NumberAttribute(default=0)
    created_at = UnicodeAttribute(null=True)
    nickname_key = UnicodeAttribute(null=True)
    phone_hash = UnicodeAttribute(null=True)

    by_nickname = UsersByNickname()
    by_phone = UsersByPhone()

    def __init__(self, hash_key=None, range_key=None, _user_instantiated=True, **attributes):
        super().__init__(hash_key, range_key, _user_instantiated, **attributes)
        if _user_instantiated and hash_key is not None and attributes:
            self.nickname_key = self.nickname_key or nickname_key(self.nickname)


# ---------------------------------------------------------------- restoration targets


class PointsEntry(Model):
    class Meta:
        table_name = "user_points_ledger"
        base_name = "user_points_ledger"

    user_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)  # deterministic: "refund_restore#<refund_no>"
    action = UnicodeAttribute()  # order_spend | refund_restore | ...
    points = NumberAttribute()
    order_no = UnicodeAttribute(null=True)
    refund_no = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()


class UserCoupon(Model):
    class Meta:
        table_name = "user_coupons"
        base_name = "user_coupons"

    user_id = UnicodeAttribute(hash_key=True)
    coupon_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute(null=True)
    value = NumberAttribute(default=0)
    status = UnicodeAttribute()  # unused | used | restored
    order_no = UnicodeAttribute(null=True)
    restored_by_refund = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


class InventoryItem(Model):
    class Meta:
        table_name = "user_inventory"
        base_name = "user_inventory"

    user_id = UnicodeAttribute(hash_key=True)
    item_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute(null=True)
    order_no = UnicodeAttribute(null=True)
    status = UnicodeAttribute()  # held | consumed | revoked
    revocable = BooleanAttribute(default=True)
    revoked_by_refund = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


# ---------------------------------------------------------------- refunds


class RefundEvent(MapAttribute):
    at = UnicodeAttribute()
    actor = UnicodeAttribute()
    from_status = UnicodeAttribute(null=True)
    to_status = UnicodeAttribute()
    detail = UnicodeAttribute(null=True)


class RefundsByOrder(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_order"
        projection = AllProjection()

    order_no = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RefundsByUser(GlobalSecondaryIndex):
    """A player's refunds and applications, newest first (the player app's list)."""

    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RefundsByStatus(GlobalSecondaryIndex):
    """Refunds of one status (the review queue, lists); ``status_key`` is the status, sharded."""

    class Meta:
        index_name = "by_status_key"
        projection = AllProjection()

    status_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RefundsPendingWork(GlobalSecondaryIndex):
    """Sparse: only refunds with work left (``poll#n`` while WeChat's outcome is awaited,
    ``restore`` while restoration is pending). Its size is the backlog, not history."""

    class Meta:
        index_name = "pending_work"
        projection = KeysOnlyProjection()

    work = UnicodeAttribute(hash_key=True)
    work_due_at = UnicodeAttribute(range_key=True)


class RefundsBySuccessDay(GlobalSecondaryIndex):
    """Sparse: refunds that succeeded, by the Beijing day they succeeded (``success_day_key``,
    sharded). Reconciliation reads ``by_accepted_day`` instead (WeChat bills a refund on the day it
    accepted it); this index is kept for one release because CloudFormation adds or drops one GSI
    per table update: drop it in the release after ``by_accepted_day`` is deployed."""

    class Meta:
        index_name = "by_success_day"
        projection = IncludeProjection(["amount", "order_no", "success_time", "success_actor"])

    success_day_key = UnicodeAttribute(hash_key=True)
    refund_no = UnicodeAttribute(range_key=True)


class RefundsByAcceptedDay(GlobalSecondaryIndex):
    """Sparse: refunds WeChat accepted, by the Beijing day it accepted them (``accepted_day_key``,
    sharded): the day WeChat's trade bill lists a refund on, with the status it had then
    ("当天发起退款成功的退款单，退款发起成功就会出账，出账后退款状态不会更新"). Carries what the comparison
    needs, so a refund that is on the bill costs no further read."""

    class Meta:
        index_name = "by_accepted_day"
        projection = IncludeProjection(["amount", "order_no", "status", "accepted_at"])

    accepted_day_key = UnicodeAttribute(hash_key=True)
    refund_no = UnicodeAttribute(range_key=True)


class RefundsByWechatId(GlobalSecondaryIndex):
    """Sparse: refunds WeChat accepted, by WeChat's refund number (``wechat_refund_id`` as
    WeChat sent it: digits, so the search's case variants find it)."""

    class Meta:
        index_name = "by_wechat_refund_id"
        projection = KeysOnlyProjection()

    wechat_refund_id = UnicodeAttribute(hash_key=True)


class Refund(Model):
    class Meta:
        table_name = "payment_refunds"
        base_name = "payment_refunds"

    refund_no = UnicodeAttribute(hash_key=True)
    order_no = UnicodeAttribute()
    user_id = UnicodeAttribute()
    channel = UnicodeAttribute(default="wechat")
    origin = UnicodeAttribute()  # admin | user
    amount = NumberAttribute()  # what will be / was refunded
    # fen: the payer's cash share as WeChat says (amount.payer_refund); the rest went back to a coupon
    payer_refund = NumberAttribute(null=True)
    requested_amount = NumberAttribute()  # what was asked (approval may lower it)
    reason = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    created_by = UnicodeAttribute()
    reviewer = UnicodeAttribute(null=True)
    reject_reason = UnicodeAttribute(null=True)
    requires_manual_review = BooleanAttribute(default=False)
    review_reasons = ListAttribute(of=UnicodeAttribute, null=True)
    out_trade_no = UnicodeAttribute(null=True)
    transaction_id = UnicodeAttribute(null=True)
    order_total = NumberAttribute()  # WeChat's amount.total
    wechat_refund_id = UnicodeAttribute(null=True)
    user_received_account = UnicodeAttribute(null=True)
    success_time = UnicodeAttribute(null=True)
    # keys.shard_key(Beijing date of success_time, refund_no, "day"): the by_success_day index
    success_day_key = UnicodeAttribute(null=True)
    success_actor = UnicodeAttribute(null=True)  # who learned of the success (wechat, poller, reconciliation)
    accepted_at = UnicodeAttribute(null=True)  # when WeChat accepted it (the Refund object's create_time)
    complaint_id = UnicodeAttribute(null=True)  # the consumer complaint it answers, if any
    subscriptions = JSONAttribute(null=True)  # {template id: granted | used}: the player's one-time consents
    application_type = UnicodeAttribute(null=True)  # "minor": a guardian's claim (domain/minors.py); else ordinary
    guardian = JSONAttribute(null=True)  # a minor's claim: {statement, relationship, evidence}
    first_review = JSONAttribute(null=True)  # a minor's claim: {by, at} of its first review (four-eyes)
    accepted_day_key = UnicodeAttribute(null=True)  # keys.day_key(accepted_at): the by_accepted_day index
    failure_code = UnicodeAttribute(null=True)
    failure_message = UnicodeAttribute(null=True)
    offline_reason = UnicodeAttribute(null=True)  # OfflineReason: to be paid outside WeChat
    offline_payout = JSONAttribute(null=True)  # {channel, reference, paid_at, recorded_by, recorded_at, note}
    idempotency_key = UnicodeAttribute(null=True)
    fingerprint = UnicodeAttribute(null=True)
    # whose daily allowance sending it used: {"person", "day", "amount"}; given back if WeChat refuses it
    allowance_charged = JSONAttribute(null=True)
    raw = JSONAttribute(null=True)  # last WeChat payload (decrypted resource / response body)
    cumulative_refunded = NumberAttribute(null=True)  # order's refunded total once this succeeded
    restoration_status = UnicodeAttribute(null=True)
    restoration = JSONAttribute(null=True)
    poll_attempts = NumberAttribute(default=0)  # checks since the last status change
    poll_failures = NumberAttribute(default=0)  # checks in a row that failed (error, mismatch)
    work = UnicodeAttribute(null=True)
    work_due_at = UnicodeAttribute(null=True)
    events = ListAttribute(of=RefundEvent, default=list)  # capped: domain.refunds.MAX_EVENTS_ON_REFUND
    events_dropped = NumberAttribute(null=True)  # events left out of a long history (they are in the logs)
    # the ids of its open tasks bound to its money (domain/tasks.py): closed when the money settles
    open_tasks = UnicodeSetAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()

    status_key = UnicodeAttribute(null=True)  # keys.shard_key(status, refund_no, "status"), moved with status

    by_order = RefundsByOrder()
    by_user = RefundsByUser()
    by_status = RefundsByStatus()
    pending_work = RefundsPendingWork()
    by_success_day = RefundsBySuccessDay()
    by_accepted_day = RefundsByAcceptedDay()
    by_wechat_refund_id = RefundsByWechatId()


class NotifyReceipt(Model):
    """One item per processed WeChat notification id (dedupe); expires through TTL."""

    class Meta:
        table_name = "notify_receipts"
        base_name = "notify_receipts"

    notify_id = UnicodeAttribute(hash_key=True)
    event_type = UnicodeAttribute()
    subject = UnicodeAttribute(null=True)  # refund_no / out_trade_no
    received_at = UnicodeAttribute()
    expires_at = NumberAttribute()  # epoch seconds, the table's TTL attribute


class TasksByStatus(GlobalSecondaryIndex):
    """Tasks open or done, newest first; ``status_key`` is the status, sharded."""

    class Meta:
        index_name = "by_status_key"
        projection = AllProjection()

    status_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class TaskEntry(MapAttribute):
    """One line of a task's history: opened, reopened, done, closed by the money settling."""

    at = UnicodeAttribute()
    what = UnicodeAttribute()  # opened | done | reopened | settled
    by = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)


class ManualTask(Model):
    class Meta:
        table_name = "manual_tasks"
        base_name = "manual_tasks"

    task_id = UnicodeAttribute(hash_key=True)  # domain/tasks.task_id: "<cause>.<subject>[.<part>]"
    type = UnicodeAttribute()
    order_no = UnicodeAttribute()
    refund_no = UnicodeAttribute(null=True)
    user_id = UnicodeAttribute(null=True)
    action = UnicodeAttribute()
    status = UnicodeAttribute(default="open")
    note = UnicodeAttribute(null=True)
    done_by = UnicodeAttribute(null=True)
    done_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    detail = JSONAttribute(null=True)  # what the task is about, e.g. the payment WeChat reported
    status_key = UnicodeAttribute(null=True)  # keys.shard_key(status, task_id, "status")
    history = ListAttribute(of=TaskEntry, null=True)

    by_status = TasksByStatus()

    def __init__(self, hash_key=None, range_key=None, _user_instantiated=True, **attributes):
        super().__init__(hash_key, range_key, _user_instantiated, **attributes)
        if _user_instantiated and hash_key is not None and attributes:  # a new task, not a key stub
            self.status_key = item_keys("manual_tasks", {"task_id": hash_key, "status": self.status})["status_key"]


# ---------------------------------------------------------------- staff


class PayoutReference(Model):
    """One bank or payment reference recorded for an offline payout: a reference is unique per
    channel, so one transfer can never be booked as the payout of two refunds."""

    class Meta:
        table_name = "offline_payouts"
        base_name = "offline_payouts"

    reference_key = UnicodeAttribute(hash_key=True)  # "<channel>#<reference, normalised>"
    refund_no = UnicodeAttribute()
    recorded_by = UnicodeAttribute()
    recorded_at = UnicodeAttribute()


from .recon_models import ReconDiscrepancy, ReconRun  # noqa: E402 - the reconciliation's models live with it
from .staff_models import (ActivityByOperator, OperatorDay, StaffActivity, StaffIdentity,  # noqa: E402 - and the staff's
                           StaffPerson)
from .complaint_models import (Complaint, ComplaintActionRecord, ComplaintLog,  # noqa: E402 - the complaints'
                               ComplaintSweepMark)  # models live with the complaints
from .outbox import OutboxEvent  # noqa: E402 - the outbox's model lives with the outbox
from .player_messages import PlayerMessage  # noqa: E402 - and the players' messages with theirs

ALL_MODELS: tuple[type[Model], ...] = (
    Order, User, PointsEntry, UserCoupon, InventoryItem, Refund, NotifyReceipt, ManualTask, ReconRun,
    ReconDiscrepancy, OperatorDay, StaffActivity, StaffIdentity, StaffPerson, PayoutReference, OutboxEvent,
    PlayerMessage, Complaint, ComplaintLog, ComplaintActionRecord, ComplaintSweepMark,
)
TTL_ATTRIBUTES = {NotifyReceipt: "expires_at", OperatorDay: "expires_at"}

_bound: tuple | None = None
_bind_lock = threading.Lock()


def bind(force: bool = False) -> None:
    """Point every model at the configured tables and region (cheap after the first call).

    Re-binds when the configuration changed (tests switch endpoints between runs).
    """
    global _bound

    s = config.settings()
    key = (s.table_prefix, s.region, config.aws_endpoint("dynamodb"))
    if _bound == key and not force:
        return
    with _bind_lock:
        if _bound == key and not force:
            return
        for model in ALL_MODELS:
            model.Meta.table_name = s.tables.name(model.Meta.base_name)
            model.Meta.region = s.region
            model.Meta.host = key[2]
            model._connection = None
        _bound = key


def create_tables(wait: bool = True) -> None:
    """Create every table (local stack and tests; in AWS CloudFormation creates them)."""
    bind()
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=wait)
