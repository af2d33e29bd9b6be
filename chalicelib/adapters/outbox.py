"""The outbox: domain events (``domain/events.py``) stored in the DynamoDB transaction of the
change they describe, then published by the relay (``services/events.py``).

One item per event, keyed ``(stream, seq)``: the put is conditional on the key being new, so a
repeat of the same change cannot store the event twice (and a transaction carrying it fails
whole, labelled ``outbox``). Until it is published an item carries ``unsent`` (sharded by its
stream, so one stream is one partition): the sparse ``unsent`` index is the backlog, not the
history. Published items stay, with ``sent_at``, as the record of what was told.
"""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from ..domain.events import Event
from . import keys

LABEL = "outbox"
UNSENT = "unsent"


class UnsentEvents(GlobalSecondaryIndex):
    """Sparse: events not yet published, oldest first per shard."""

    class Meta:
        index_name = "unsent"
        projection = AllProjection()

    unsent = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class OutboxEvent(Model):
    class Meta:
        table_name = "event_outbox"
        base_name = "event_outbox"

    stream = UnicodeAttribute(hash_key=True)  # what it is about: refund#<refund_no>, ...
    seq = NumberAttribute(range_key=True)  # its place in the stream
    event_id = UnicodeAttribute()
    detail_type = UnicodeAttribute()
    detail = JSONAttribute()
    created_at = UnicodeAttribute()
    unsent = UnicodeAttribute(null=True)  # keys.shard_key(UNSENT, stream, "outbox") until published
    sent_at = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)  # publish attempts that failed

    unsent_index = UnsentEvents()


def put(event: Event, *, now: str):
    """The outbox item of ``event``, for the transaction of the change it describes."""
    from .repository import TxItem

    item = OutboxEvent(event.stream, event.seq, event_id=event.event_id, detail_type=event.detail_type,
                       detail=event.detail, created_at=now, unsent=keys.shard_key(UNSENT, event.stream, "outbox"),
                       attempts=0)
    return TxItem(LABEL, "put", item, OutboxEvent.stream.does_not_exist())


def unsent(limit: int) -> list[OutboxEvent]:
    """Up to ``limit`` unpublished events per shard, oldest first (the relay orders them)."""
    from . import models, pages

    models.bind()
    return pages.fanout_due(OutboxEvent.unsent_index, keys.shard_keys(UNSENT, "outbox"), None, limit, "created_at")


def mark_sent(event: OutboxEvent, *, now: str) -> bool:
    """Published: out of the backlog. Idempotent."""
    from . import repository as repo

    return repo.update(event, [OutboxEvent.unsent.remove(), OutboxEvent.sent_at.set(now)],
                       OutboxEvent.stream.exists())


def mark_failed(event: OutboxEvent) -> bool:
    from . import repository as repo

    return repo.update(event, [OutboxEvent.attempts.add(1)], OutboxEvent.unsent.exists())
