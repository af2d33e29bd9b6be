"""Minors' claims (domain/minors.py) apart from ordinary refunds: one status's claims, newest
first, over the sharded by-status index with the claim type as its filter."""
from __future__ import annotations

from . import keys, models, pages
from .models import Refund
from .pages import Page


def minor_claims(status: str, *, limit: int, cursor: str | None) -> Page:
    models.bind()
    return pages.fanout_page(Refund, Refund.by_status, keys.shard_keys(status, "status"), "created_at",
                             newest_first=True, limit=limit, cursor=cursor,
                             filter_condition=Refund.application_type == "minor")
