"""The console's nav counts: refunds waiting for review and open tasks. Each is a COUNT Query
over the status index's shards (``keys.shard_keys``): its cost follows the backlog, never the
history, and no item is returned."""
from __future__ import annotations

from ..domain.enums import RefundStatus, TaskStatus
from . import keys, models
from .models import ManualTask, Refund


def backlog() -> dict[str, int]:
    models.bind()
    review = sum(Refund.by_status.count(k) for k in keys.shard_keys(RefundStatus.PENDING_REVIEW.value, "status"))
    tasks = sum(ManualTask.by_status.count(k) for k in keys.shard_keys(TaskStatus.OPEN.value, "status"))
    return {"pending_review": review, "open_tasks": tasks}
