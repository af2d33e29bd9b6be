"""Staff writes and reads: the operator's daily allowance and the activity log.

``charge`` is one conditional update of the person's item for the day (label ``"allowance"``):
DynamoDB cannot add inside a condition, so the domain computes the room (``limit - amount``) and
the condition is ``used <= room``; ``used`` then grows by ``amount`` in the same write. It is
written on its own, before the refund's transaction, not inside it: concurrent single-item
writes of one item queue at its partition (1 000 a second), while two transactions holding
one item at once conflict, which serialised one person's refunds at one transaction at a time.
The ones that would pass the limit fail their condition. ``give_back`` returns a charge whose
refund did not go out (its transaction failed, or WeChat refused it).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from pynamodb.exceptions import DoesNotExist

from . import models
from . import pages
from . import repository as repo
from .models import OperatorDay, StaffActivity

LABEL = "allowance"
ACTIVITY_LABEL = "activity"
KEEP_COUNTERS_DAYS = 40  # the daily counters expire (TTL) this long after their day


def charge(operator: str, day: str, amount: int, *, room: int, now: str) -> repo.TxItem:
    """Use ``amount`` of ``operator``'s allowance for Beijing ``day``, if what is used stays at
    most ``room`` before it (= the daily limit - amount; the caller refuses room < 0)."""
    expires = datetime.combine(date.fromisoformat(day) + timedelta(days=KEEP_COUNTERS_DAYS), datetime.min.time(),
                               timezone.utc)
    actions = [OperatorDay.used.add(amount), OperatorDay.refunds.add(1), OperatorDay.updated_at.set(now),
               OperatorDay.expires_at.set(int(expires.timestamp()))]
    condition = OperatorDay.used.does_not_exist() | (OperatorDay.used <= room)
    return repo.TxItem(LABEL, "update", OperatorDay(operator, day), condition, actions)


def give_back(operator: str, day: str, amount: int, *, now: str) -> repo.TxItem:
    """Return ``amount`` to ``operator``'s allowance of ``day`` (unconditional: it was charged)."""
    actions = [OperatorDay.used.add(-amount), OperatorDay.refunds.add(-1), OperatorDay.updated_at.set(now)]
    return repo.TxItem(LABEL, "update", OperatorDay(operator, day), None, actions)


def used_on(operator: str, day: str) -> int:
    """What ``operator`` has used of the allowance of ``day`` (0 when nothing yet)."""
    models.bind()
    try:
        return int(OperatorDay.get(operator, day, consistent_read=True).used or 0)
    except DoesNotExist:
        return 0


def activity(*, operator: str, actor: str, action: str, at: str, refund_no: str, order_no: str, amount: int,
             status: str, origin: str | None, detail: str | None) -> repo.TxItem:
    """One line of the operator's activity log, put in the transaction of the change it records
    (the key is unique per refund, action and instant, so a retried transaction writes it once)."""
    item = StaffActivity(f"{refund_no}#{action}#{at}", operator=operator, sort_key=f"{at}#{refund_no}#{action}",
                         at=at, actor=actor, action=action,
                         refund_no=refund_no, order_no=order_no, amount=amount, status=status, origin=origin,
                         detail=detail)
    return repo.TxItem(ACTIVITY_LABEL, "put", item, None)


def list_activity(operator: str, *, start: str, end: str, limit: int, cursor: str | None) -> pages.Page:
    """The operator's activity from ``start`` (inclusive) to ``end`` (exclusive), ISO UTC times,
    oldest first: one Query on the operator's partition of ``by_operator``, paged with signed cursors."""
    models.bind()
    return pages.page(StaffActivity, StaffActivity.by_operator, operator, newest_first=False, limit=limit, cursor=cursor,
                      range_key_condition=StaffActivity.sort_key.between(start, end))
