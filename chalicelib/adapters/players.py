"""What a player reads of their own: their refunds and applications, newest first, over the
refunds table's ``by_user`` index (paged like every list, ``adapters/pages.py``)."""
from __future__ import annotations

from . import models, pages
from .models import Refund
from .pages import Page


def refunds_of_user(user_id: str, *, limit: int, cursor: str | None) -> Page:
    models.bind()
    return pages.page(Refund, Refund.by_user, user_id, newest_first=True, limit=limit, cursor=cursor)
