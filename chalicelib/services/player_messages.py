"""Telling players what happened to their refund: one-time subscription messages (订阅消息).

A refund change that uses a consent (``domain/subscriptions.py``) stores the message in its own
transaction and marks the consent used (``messages_for``, called by ``transitions.transition``).
The poll schedule sends what is pending (``send_due``) through the mini-program API
(``edges.miniprogram()``); a failed send stays pending and is tried again on the next run, up to
``max_attempts``; it never touches the refund, so it never blocks it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import config
from ..adapters import player_messages as store
from ..adapters import repository as repo
from ..domain import clock
from ..domain import subscriptions as subscription_rules
from ..domain.enums import RefundStatus
from ..log import get_logger
from . import edges

log = get_logger(__name__)
LABEL = store.LABEL
NO_CONSENT = 43101  # "user refuse to accept the msg": no consent left at WeChat; sending again cannot help
PAGE = "pages/refund/detail?refund_no={refund_no}"


def messages_for(refund, src: RefundStatus, dst: RefundStatus, *, at: str, amount: int,
                 note: str | None, offline: bool) -> tuple[dict | None, list]:
    """For a change of ``refund``: its consents after the change (None: unchanged) and the message
    items to put in the change's transaction."""
    templates = config.subscribe_settings().templates
    event = subscription_rules.event_of(src, dst, offline=offline)
    fired = subscription_rules.fired(refund.subscriptions, event, templates)
    if not fired:
        return None, []
    data = subscription_rules.message_data(event=event, refund_no=refund.refund_no, amount=amount,
                                           at_beijing=clock.parse(at).astimezone(clock.BEIJING).strftime(
                                               "%Y-%m-%d %H:%M"), note=note)
    consents = dict(refund.subscriptions)
    items = []
    for tid in fired:
        consents[tid] = subscription_rules.USED
        items.append(store.put(refund_no=refund.refund_no, user_id=refund.user_id, template_id=tid, event=event,
                               data=data, page=PAGE.format(refund_no=refund.refund_no), now=at))
    return consents, items


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    given_up: int = 0

    def to_dict(self) -> dict:
        return {"sent": self.sent, "retried": self.retried, "given_up": self.given_up}


def send_due(limit: int = 50) -> SendReport:
    """Send the pending messages (oldest first per shard)."""
    report = SendReport()
    max_attempts = config.subscribe_settings().max_attempts
    pending = store.due(limit)
    users = repo.get_users(m.user_id for m in pending) if pending else {}
    for message in pending:
        now = clock.iso(clock.now())
        user = users.get(message.user_id)
        if user is None or not user.openid:
            store.finish(message, result="no_openid", now=now)
            report.given_up += 1
            continue
        try:
            result = edges.miniprogram().send(openid=user.openid, template_id=message.template_id, data=message.data,
                                              page=message.page)
            code, error = result.errcode, f"{result.errcode} {result.errmsg}"
        except Exception as exc:  # noqa: BLE001 - unreachable: tried again on the next run
            result, code, error = None, -1, type(exc).__name__
        if code == 0:
            store.finish(message, result="sent", now=now, msgid=result.msgid)
            report.sent += 1
        elif code == NO_CONSENT or (message.attempts or 0) + 1 >= max_attempts:
            store.finish(message, result="no_consent" if code == NO_CONSENT else "gave_up", now=now, error=error)
            report.given_up += 1
            log.warning("subscription message given up", extra={"refund_no": message.refund_no, "error": error})
        else:
            store.failed(message, error=error)
            report.retried += 1
    return report
