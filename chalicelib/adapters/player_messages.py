"""Players' subscription messages waiting to be sent: one item per consent used, put in the
transaction of the refund change it tells of (so a message exists only for a change that
happened, and the consent is marked used in the same write). The sparse ``pending`` index
(sharded) is what is left to send; the poll schedule sends it (``services/player_messages.py``).
"""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from . import keys

LABEL = "player_message"
PENDING = "pending"


class PendingMessages(GlobalSecondaryIndex):
    class Meta:
        index_name = "pending"
        projection = AllProjection()

    pending = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class PlayerMessage(Model):
    class Meta:
        table_name = "player_messages"
        base_name = "player_messages"

    message_id = UnicodeAttribute(hash_key=True)  # <refund_no>#<template id>: one per consent
    refund_no = UnicodeAttribute()
    user_id = UnicodeAttribute()
    template_id = UnicodeAttribute()
    event = UnicodeAttribute()
    page = UnicodeAttribute(null=True)
    data = JSONAttribute()
    created_at = UnicodeAttribute()
    pending = UnicodeAttribute(null=True)  # keys.shard_key(PENDING, message_id, "outbox") until sent or given up
    attempts = NumberAttribute(default=0)
    result = UnicodeAttribute(null=True)  # sent | no_consent | no_openid | gave_up
    last_error = UnicodeAttribute(null=True)
    msgid = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)

    pending_index = PendingMessages()


def put(*, refund_no: str, user_id: str, template_id: str, event: str, data: dict, page: str | None, now: str):
    from .repository import TxItem

    message_id = f"{refund_no}#{template_id}"
    item = PlayerMessage(message_id, refund_no=refund_no, user_id=user_id, template_id=template_id, event=event,
                         page=page, data=data, created_at=now, attempts=0,
                         pending=keys.shard_key(PENDING, message_id, "outbox"))
    return TxItem(LABEL, "put", item, PlayerMessage.message_id.does_not_exist())


def due(limit: int) -> list[PlayerMessage]:
    from . import models, pages

    models.bind()
    return pages.fanout_due(PlayerMessage.pending_index, keys.shard_keys(PENDING, "outbox"), None, limit,
                            "created_at")


def finish(message: PlayerMessage, *, result: str, now: str, msgid: str | None = None,
           error: str | None = None) -> bool:
    """Sent or given up: out of the pending index. Only while still pending (idempotent)."""
    from . import repository as repo

    actions = [PlayerMessage.pending.remove(), PlayerMessage.result.set(result), PlayerMessage.finished_at.set(now)]
    if msgid is not None:
        actions.append(PlayerMessage.msgid.set(msgid))
    if error is not None:
        actions.append(PlayerMessage.last_error.set(error[:500]))
    return repo.update(message, actions, PlayerMessage.pending.exists())


def failed(message: PlayerMessage, *, error: str) -> bool:
    from . import repository as repo

    return repo.update(message, [PlayerMessage.attempts.add(1), PlayerMessage.last_error.set(error[:500])],
                       PlayerMessage.pending.exists())
