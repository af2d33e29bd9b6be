"""What each function's code calls: ``FUNCTION_ACCESS``, from which ``deploy/build_resources.py``
writes one IAM policy per function. ``tests/deploy/test_policy_calls.py`` runs every function and
fails on a call its policy does not allow and on a grant none of its runs used."""
from __future__ import annotations

from dataclasses import dataclass

from .project import SECRETS

GET, BATCH_GET, PUT, UPDATE, QUERY = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                                      "dynamodb:UpdateItem", "dynamodb:Query")


@dataclass(frozen=True)
class Access:
    """What one function's code calls. ``tables``: table base name -> DynamoDB item actions
    (QUERY: a Query of the table's own key); ``indexes``: "<table base name>/<index>" it
    queries; ``send_restore``: it publishes to the restoration queue; ``secrets``: the SECRETS
    it reads from SSM. Consuming a queue comes from the ``@app.on_sqs_message`` handler itself."""

    tables: dict
    indexes: tuple = ()
    send_restore: bool = False
    secrets: tuple = ()
    send_recon: bool = False  # it hands an unfinished reconciliation to its queue
    put_events: bool = False  # it publishes the outbox's domain events to the stack's bus


# what a function that talks to WeChat Pay reads: the merchant key material and WeChat's keys
# (the platform certificates are optional: left out, they are downloaded from WeChat)
WECHAT_SECRETS = ("WECHAT_APIV3_KEY", "WECHAT_PLATFORM_CERTS", "WECHAT_PRIVATE_KEY", "WECHAT_PUBLIC_KEY")

# Read from chalicelib/ (keys: Chalice's function names), exactly what each function's code
# uses: tests/deploy/test_policy_calls.py runs every function against the local AWS endpoint and
# fails on a call its policy does not allow and on a grant none of its runs used. Change it with
# the code it describes.
FUNCTION_ACCESS = {
    # The API is internet-facing and also serves WeChat's unauthenticated callbacks, so it holds
    # only what its routes do: it reads orders, players, refunds and tasks through their indexes;
    # creates and moves refunds and order balances (refunds, approvals, withdrawals, minors'
    # claims, offline payouts with their reference claimed once, WeChat's notifications, each
    # deduplicated by a receipt), storing each change's domain event and the player's messages
    # with it; opens, closes and reopens tasks; reads who a staff identity is (the staff
    # directory); counts the person's allowance and writes their activity; searches orders,
    # refunds and players through their sparse indexes; reads a lottery order's inventory for a
    # refund's preview; keeps the 投诉 desk (complaints told by notification, their history and
    # our actions, replies, refunds, rejections). It never writes what restoration puts back
    # (points, coupons, inventory): a success only queues a restoration. The reconciliation routes
    # run a date inside the request for up to RECON_API_BUDGET_SECONDS (reading the day's orders
    # and refunds in batches, storing the run and its discrepancies), then hand the rest to the
    # reconciliation queue. WeChat calls need the merchant key material, tokens the two JWT
    # secrets, list cursors their secret, the phone search its key; messages go from poll.
    "api_handler": Access(tables={
        "orders": [GET, BATCH_GET, UPDATE],
        "users": [GET, BATCH_GET],
        "user_inventory": [BATCH_GET],
        "payment_refunds": [GET, BATCH_GET, PUT, UPDATE],
        "notify_receipts": [GET, PUT],
        "manual_tasks": [GET, UPDATE],
        "reconciliations": [BATCH_GET, PUT, UPDATE, QUERY],
        "operator_daily_totals": [GET, UPDATE],
        "staff_activity": [PUT],
        "staff_directory": [GET],
        "offline_payouts": [PUT],
        "event_outbox": [PUT],
        "player_messages": [PUT],
        "complaints": [GET, UPDATE],
        "complaint_history": [GET, PUT, UPDATE, QUERY],
    }, indexes=("orders/by_user", "orders/by_status_key", "orders/by_time", "orders/by_paid_day",
                "orders/by_transaction", "users/by_nickname", "users/by_phone",
                "payment_refunds/by_order", "payment_refunds/by_status_key", "payment_refunds/by_accepted_day",
                "payment_refunds/by_user", "payment_refunds/by_wechat_refund_id",
                "manual_tasks/by_status_key", "staff_activity/by_operator",
                "complaints/by_order", "complaints/by_user", "complaints/open_by_due"),
        send_restore=True, send_recon=True, secrets=tuple(sorted(set(SECRETS) - {"MINIAPP_SECRET"}))),
    # services/restoration.py: read the refund and its order (one transactional read), the coupon
    # and lottery inventory (one batch read), then one transaction: points ledger entry and
    # balance, coupon, inventory, virtual goods and shipment flags on the order, manual tasks and
    # the done marker. No index, no WeChat, no tokens; the queue is consumed through the event
    # source mapping.
    # The restoration's domain event goes in its transaction (event_outbox).
    "restore": Access(tables={
        "event_outbox": [PUT],
        "payment_refunds": [GET, UPDATE],
        "orders": [GET, UPDATE],
        "user_points_ledger": [PUT],
        "users": [UPDATE],
        "user_coupons": [BATCH_GET, UPDATE],
        "user_inventory": [BATCH_GET, UPDATE],
        "manual_tasks": [UPDATE],
    }),
    # services/poller.py: poll and sweep read the pending_work index, query WeChat (merchant key
    # material, no tokens), apply outcomes like a notification (refund + order balances in one
    # transaction, tasks), resubmit (a resubmission WeChat refuses gives the sender's allowance
    # back), and enqueue overdue restorations. services/payments.py:
    # pending orders from the awaiting_payment index are queried at WeChat and booked (order
    # update, tasks for payments that cannot be applied). services/events.py: the relay reads the
    # outbox's unsent index, publishes to the bus and marks what was accepted (every refund
    # change stores its event in the change's transaction).
    "poll": Access(tables={
        "payment_refunds": [GET, UPDATE],
        "orders": [GET, UPDATE],
        "manual_tasks": [UPDATE],
        "operator_daily_totals": [UPDATE],
        "event_outbox": [PUT, UPDATE],
        # services/player_messages.py: the players' pending subscription messages (put with a
        # refund's change, sent and marked here) and the players' openids
        "player_messages": [PUT, UPDATE],
        "users": [BATCH_GET],
    }, indexes=("orders/awaiting_payment", "payment_refunds/pending_work", "event_outbox/unsent",
                "player_messages/pending"),
        send_restore=True, put_events=True,
        secrets=WECHAT_SECRETS + ("MINIAPP_SECRET",)),
    # services/reconciliation.py (the daily run and its continuation): download the trade bill
    # (merchant key material), read the run records, our orders and refunds in batches, the
    # refunds WeChat accepted and the payments recorded that day (by_accepted_day, by_paid_day),
    # ask WeChat's refund and payment queries for what the bill cannot settle, book refunds made
    # without us (a refund put, the order's balance), store the run and its discrepancies, open
    # 对账差异 tasks, settle refunds the bill shows successful (the order read, refund + order
    # balances with the change's event and messages, then a restoration message), and hand an
    # unfinished run to the reconciliation queue.
    "reconcile": (RECONCILE := Access(tables={
        "reconciliations": [BATCH_GET, PUT, UPDATE, QUERY],
        "payment_refunds": [BATCH_GET, GET, PUT, UPDATE],
        "orders": [BATCH_GET, GET, UPDATE],
        "manual_tasks": [UPDATE],
        "event_outbox": [PUT],
        "player_messages": [PUT],
    }, indexes=("payment_refunds/by_accepted_day", "orders/by_paid_day"),
        send_restore=True, send_recon=True, secrets=WECHAT_SECRETS)),
    "reconcile_continue": RECONCILE,
    # services/complaint_sync.py (投诉): list complaints at WeChat (merchant key material), read which
    # are stored (one batch read a page), store a complaint (its item, its history entries, the
    # notification-free way: no receipt) with its order's player, follow up refund decisions (the
    # refund read, the complaint updated, WeChat told APPROVE), open and settle 投诉处理超时 tasks,
    # keep the watermark; open complaints by deadline and the follow-ups are sparse indexes.
    "complaints_sweep": Access(tables={
        "complaints": [BATCH_GET, GET, UPDATE],
        "complaint_history": [GET, PUT, UPDATE],
        "orders": [GET],
        "payment_refunds": [GET],
        "manual_tasks": [UPDATE],
    }, indexes=("complaints/open_by_due", "complaints/followup"),
        secrets=WECHAT_SECRETS),
}
