"""The refund list (退款查询): refunds of one order, or every refund, newest first, filtered by
status, operator (``created_by``), the day they were asked and amount.

One order's refunds are one partition of ``by_order``. Otherwise the ``by_status`` index is read:
one status is its shards, "every status" is every status's shards (72 partitions), merged by
``created_at`` with a boundary cursor (``pages.merged_page``: one resume key per partition would
not fit a cursor); a day range is the index's range-key condition, the operator and the amounts a
filter. No Scan, no new index."""
from __future__ import annotations

from dataclasses import dataclass

from ..domain.enums import RefundStatus, StaffRole
from . import keys, models, pages
from .models import Refund
from .pages import Page


@dataclass(frozen=True)
class RefundFilter:
    status: str | None = None
    order_no: str | None = None
    created_by: str | None = None  # the person (subject): a refund they created under any staff role
    created_from: str | None = None  # stored-time text (UTC), inclusive
    created_to: str | None = None  # stored-time text (UTC), inclusive
    min_amount: int | None = None
    max_amount: int | None = None


def _filter(f: RefundFilter, *, with_status: bool):
    out = None
    conds = []
    if with_status and f.status:
        conds.append(Refund.status == f.status)
    if f.created_by is not None:
        conds.append(Refund.created_by.is_in(*(f"{role.value}:{f.created_by}" for role in StaffRole)))
    if f.min_amount is not None:
        conds.append(Refund.amount >= f.min_amount)
    if f.max_amount is not None:
        conds.append(Refund.amount <= f.max_amount)
    for c in conds:
        out = c if out is None else out & c
    return out


def list_refunds(f: RefundFilter, *, oldest_first: bool, limit: int, cursor: str | None) -> Page:
    models.bind()
    bounds = None
    if f.created_from is not None or f.created_to is not None:
        bounds = (f.created_from or " ", f.created_to or "\uffff")
    if f.order_no is not None:
        created = Refund.created_at.between(*bounds) if bounds else None
        return pages.page(Refund, Refund.by_order, f.order_no, newest_first=not oldest_first, limit=limit,
                          cursor=cursor, filter_condition=_filter(f, with_status=True), range_key_condition=created)
    statuses = [f.status] if f.status else [s.value for s in RefundStatus]
    hash_keys = [k for status in statuses for k in keys.shard_keys(status, "status")]
    return pages.merged_page(Refund, Refund.by_status, hash_keys, "created_at", newest_first=not oldest_first,
                             limit=limit, cursor=cursor, filter_condition=_filter(f, with_status=False), bounds=bounds)
