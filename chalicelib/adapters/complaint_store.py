"""DynamoDB access for consumer complaints (投诉): the complaint items (``complaints``), their
negotiation history, our actions and the sweep's watermark (``complaint_history``). Named
operations return ``repository.TxItem``s that services combine with ``repository.write``;
index keys come from ``keys.complaint_keys``. No service builds a condition."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pynamodb.exceptions import DoesNotExist

from ..domain.enums import ComplaintState
from . import keys, models, pages
from . import repository as repo
from .models import Complaint, ComplaintActionRecord, ComplaintLog, ComplaintSweepMark, NotifyReceipt

SWEEP_ID, SWEEP_SK = "#sweep", "mark"
LOG_PREFIX, ACTION_PREFIX = "H#", "A#"
TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
BATCH_KEYS = 100  # BatchGetItem's limit


def log_sk(index: int) -> str:
    return f"{LOG_PREFIX}{index:06d}"


# ---------------------------------------------------------------- reads


def get(complaint_id: str) -> Complaint | None:
    models.bind()
    try:
        return Complaint.get(complaint_id, consistent_read=True)
    except DoesNotExist:
        return None


def get_many(complaint_ids: Iterable[str]) -> dict[str, Complaint]:
    """The stored complaints among ``complaint_ids``: one BatchGetItem per 100."""
    ids = sorted(set(complaint_ids))
    out: dict[str, Complaint] = {}
    for start in range(0, len(ids), BATCH_KEYS):
        found = repo.batch_get([(Complaint, (i,)) for i in ids[start:start + BATCH_KEYS]])
        out.update({item.complaint_id: item for item in found.values()})
    return out


def history_of(complaint_id: str) -> list[ComplaintLog]:
    """The stored negotiation history, oldest first (one Query per 1 MB)."""
    models.bind()
    return list(ComplaintLog.query(complaint_id, ComplaintLog.sk.startswith(LOG_PREFIX)))


def actions_of(complaint_id: str) -> list[ComplaintActionRecord]:
    models.bind()
    return sorted(ComplaintActionRecord.query(complaint_id, ComplaintActionRecord.sk.startswith(ACTION_PREFIX)),
                  key=lambda a: a.at)


def get_action(complaint_id: str, action_id: str) -> ComplaintActionRecord | None:
    models.bind()
    try:
        return ComplaintActionRecord.get(complaint_id, ACTION_PREFIX + action_id, consistent_read=True)
    except DoesNotExist:
        return None


def receipt_seen(notify_id: str) -> bool:
    """Whether a notification id was processed before (``notify_receipts``)."""
    models.bind()
    try:
        NotifyReceipt.get(notify_id)
        return True
    except DoesNotExist:
        return False


# ---------------------------------------------------------------- lists


def queue(*, limit: int, cursor: str | None, state: str | None = None) -> pages.Page:
    """Open complaints, the nearest deadline first (one Query per shard of the open index)."""
    models.bind()
    filt = (Complaint.state == state) if state else None
    return pages.fanout_page(Complaint, Complaint.open_by_due, keys.shard_keys(keys.OPEN_COMPLAINT, "complaint"),
                             "due_at", newest_first=False, limit=limit, cursor=cursor, filter_condition=filt)


def of_state(state: str, *, limit: int, cursor: str | None) -> pages.Page:
    """Complaints of ``state``, newest first."""
    models.bind()
    return pages.fanout_page(Complaint, Complaint.by_state, keys.shard_keys(state, "complaint"), "complaint_time",
                             newest_first=True, limit=limit, cursor=cursor)


def of_order(order_no: str, *, limit: int, cursor: str | None, state: str | None = None) -> pages.Page:
    models.bind()
    filt = (Complaint.state == state) if state else None
    return pages.page(Complaint, Complaint.by_order, order_no, newest_first=True, limit=limit, cursor=cursor,
                      filter_condition=filt)


def of_user(user_id: str, *, limit: int) -> list[Complaint]:
    """A player's latest complaints (one Query)."""
    models.bind()
    return list(Complaint.by_user.query(user_id, scan_index_forward=False, limit=limit))


def due_before(moment: str, limit: int) -> list[Complaint]:
    """Open complaints whose deadline is at or before ``moment``, nearest first: one Query per
    shard of the sparse open index (the cost follows the open backlog, not the history)."""
    models.bind()
    return pages.fanout_due(Complaint.open_by_due, keys.shard_keys(keys.OPEN_COMPLAINT, "complaint"),
                            Complaint.due_at <= moment, limit, "due_at")


def followups(limit: int) -> list[str]:
    """Ids of complaints whose refund decision waits on the refund engine."""
    models.bind()
    found: list[str] = []
    for hash_key in keys.shard_keys(keys.FOLLOWUP, "complaint"):
        found.extend(c.complaint_id for c in Complaint.followups.query(hash_key, limit=limit))
    return found[:limit]


# ---------------------------------------------------------------- writes


def _actions(complaint_id: str, fields: dict) -> list:
    """Update actions for ``fields`` and the index keys they imply (None removes an attribute)."""
    values = {**fields, **keys.complaint_keys(complaint_id, fields)}
    return [getattr(Complaint, k).set(v) if v is not None else getattr(Complaint, k).remove()
            for k, v in values.items()]


def snapshot(complaint_id: str, fields: dict, *, stored_history: int | None) -> repo.TxItem:
    """Write what WeChat says about a complaint (and what follows from it), if no one else has
    since the item was read: a new complaint (``stored_history`` None) only if it is not stored
    yet, a stored one only while it still holds ``stored_history`` history entries."""
    if stored_history is None:
        condition = Complaint.complaint_id.does_not_exist()
    else:
        condition = Complaint.history_count == stored_history
    return repo.TxItem("complaint", "update", Complaint(complaint_id), condition, _actions(complaint_id, fields))


def change(complaint_id: str, fields: dict, *, refund_no: str | None = "", refund_attempt: int | None = None,
           refund_action: str | None = "") -> repo.TxItem:
    """Set ``fields`` on a stored complaint, on the refund decision as read: ``refund_no`` and
    ``refund_action`` (None: not set; "" : whatever it is) and ``refund_attempt``."""
    condition = Complaint.complaint_id.exists()
    if refund_no is None:
        condition &= Complaint.refund_no.does_not_exist()
    elif refund_no:
        condition &= Complaint.refund_no == refund_no
    if refund_action is None:
        condition &= Complaint.refund_action.does_not_exist()
    elif refund_action:
        condition &= Complaint.refund_action == refund_action
    if refund_attempt is not None:
        same = Complaint.refund_attempt == refund_attempt
        condition &= (same | Complaint.refund_attempt.does_not_exist()) if refund_attempt == 0 else same
    return repo.TxItem("complaint", "update", Complaint(complaint_id), condition, _actions(complaint_id, fields))


def log_entries(complaint_id: str, start: int, entries: Iterable[dict]) -> list[repo.TxItem]:
    """Puts of history entries from index ``start`` on. An entry's index is its place in WeChat's
    history, so writing one again writes the same item (a retry is harmless)."""
    return [repo.TxItem(f"log:{start + i}", "put", ComplaintLog(complaint_id, log_sk(start + i), **entry))
            for i, entry in enumerate(entries)]


def write_chunked(items: list[repo.TxItem], last: list[repo.TxItem]) -> None:
    """Commit ``items`` (idempotent puts) in transactions of at most 100, then ``last`` (the
    conditional complaint write, with what is left) as one: a history of any length is stored,
    and the complaint item moves only once its history is."""
    room = TRANSACTION_ITEMS - len(last)
    head, tail = items[:max(0, len(items) - room)], items[max(0, len(items) - room):]
    for start in range(0, len(head), TRANSACTION_ITEMS):
        repo.write(head[start:start + TRANSACTION_ITEMS])
    repo.write([*tail, *last])


@dataclass(frozen=True)
class ActionStart:
    complaint_id: str
    action_id: str
    action: str
    actor: str
    request: dict
    at: str


def action_begin(start: ActionStart) -> repo.TxItem:
    """Record an action before it reaches WeChat (pending); fails when the same action exists."""
    item = ComplaintActionRecord(start.complaint_id, ACTION_PREFIX + start.action_id, action=start.action,
                                 actor=start.actor, status="pending", request=start.request, at=start.at)
    return repo.TxItem("action", "put", item, ComplaintActionRecord.sk.does_not_exist())


def action_update(complaint_id: str, action_id: str, fields: dict, *, status: str = "pending") -> repo.TxItem:
    """Set ``fields`` on a pending action (its images once uploaded, its end)."""
    record = ComplaintActionRecord(complaint_id, ACTION_PREFIX + action_id)
    actions = [getattr(ComplaintActionRecord, k).set(v) for k, v in fields.items() if v is not None]
    return repo.TxItem("action", "update", record, ComplaintActionRecord.status == status, actions)


def action_retry(complaint_id: str, action_id: str, *, actor: str, at: str) -> repo.TxItem:
    """A refused action asked again: pending once more (WeChat may take it now)."""
    record = ComplaintActionRecord(complaint_id, ACTION_PREFIX + action_id)
    return repo.TxItem("action", "update", record, ComplaintActionRecord.status == "refused",
                       [ComplaintActionRecord.status.set("pending"), ComplaintActionRecord.actor.set(actor),
                        ComplaintActionRecord.updated_at.set(at)])


# ---------------------------------------------------------------- the sweep's watermark


def sweep_mark() -> ComplaintSweepMark | None:
    models.bind()
    try:
        return ComplaintSweepMark.get(SWEEP_ID, SWEEP_SK, consistent_read=True)
    except DoesNotExist:
        return None


def put_sweep_mark(**fields) -> None:
    """Remember the window read whole and WeChat's count in it (or the notify URL registered)."""
    models.bind()
    record = ComplaintSweepMark(SWEEP_ID, SWEEP_SK)
    repo.update(record, [getattr(ComplaintSweepMark, k).set(v) if v is not None else
                         getattr(ComplaintSweepMark, k).remove() for k, v in fields.items()])


def is_open(complaint: Complaint) -> bool:
    return complaint.state != ComplaintState.PROCESSED.value


def link_refund(refund_no: str, complaint_id: str) -> repo.TxItem:
    """Mark a refund as the one a complaint's refund decision is carried out with."""
    from .models import Refund

    return repo.TxItem("refund_link", "update", Refund(refund_no), Refund.refund_no.exists(),
                       [Refund.complaint_id.set(complaint_id)])
