"""Domain events: what the shop's other systems (CRM, inventory, finance) are told, one event
per change, each with a versioned schema (docs/events.md). Plain Python: the outbox
(``adapters/outbox.py``) stores them in the transaction of the change and the relay
(``services/events.py``) publishes them to EventBridge.

An event is keyed by its ``stream`` (what it is about) and ``seq`` (its place in that stream), so
a repeat of the same change is the same event: a refund's changes are the stream
``refund#<refund_no>``, numbered by their place in the refund's history (the creation is 0).
"""
from __future__ import annotations

from dataclasses import dataclass

from .enums import RefundStatus

SCHEMA_VERSION = 1
SOURCE = "gacha.refunds"
REFUND_STATUS_CHANGED = "RefundStatusChanged"
RESTORATION_DONE = "RefundRestorationDone"
RECONCILIATION_FINISHED = "ReconciliationFinished"
DETAIL_TYPES = (REFUND_STATUS_CHANGED, RESTORATION_DONE, RECONCILIATION_FINISHED)


@dataclass(frozen=True)
class Event:
    stream: str
    seq: int
    detail_type: str
    detail: dict

    @property
    def event_id(self) -> str:
        return f"{self.stream}#{self.seq}"


def _by(actor: str | None) -> str:
    """Who made the change, as other systems may know it: a player, staff, or the system."""
    from .staff import is_player, subject_of

    if is_player(actor):
        return "player"
    return "staff" if subject_of(actor) else "system"


def refund_stream(refund_no: str) -> str:
    return f"refund#{refund_no}"


def refund_status_changed(*, refund_no: str, order_no: str, user_id: str, origin: str, seq: int,
                          from_status: str | None, to_status: str, amount: int, requested_amount: int,
                          at: str, actor: str | None) -> Event:
    """A refund was created (``from_status`` None) or moved to ``to_status``; ``seq`` is the
    change's place in the refund's history."""
    stream = refund_stream(refund_no)
    return Event(stream, seq, REFUND_STATUS_CHANGED, {
        "schema_version": SCHEMA_VERSION, "event_id": f"{stream}#{seq}", "seq": seq,
        "refund_no": refund_no, "order_no": order_no, "user_id": user_id, "origin": origin,
        "from_status": from_status, "to_status": to_status, "to_status_label": RefundStatus(to_status).label,
        "amount": amount, "requested_amount": requested_amount, "at": at, "by": _by(actor)})


def restoration_done(*, refund_no: str, order_no: str, user_id: str, outcome: dict, at: str) -> Event:
    """What a successful refund put back (points, coupon, inventory, fulfilment) is done; once per refund."""
    stream = f"restoration#{refund_no}"
    return Event(stream, 0, RESTORATION_DONE, {
        "schema_version": SCHEMA_VERSION, "event_id": f"{stream}#0", "seq": 0,
        "refund_no": refund_no, "order_no": order_no, "user_id": user_id, "at": at,
        "points": int(outcome.get("points") or 0),
        "coupon_restored": (outcome.get("coupon") or {}).get("coupon_id") if (outcome.get("coupon") or {}).get(
            "restore") else None,
        "revoked_inventory": list(outcome.get("revoke_inventory") or []),
        "revoked_virtual": bool(outcome.get("revoke_virtual")), "cancelled_shipment": bool(outcome.get("cancel_shipment")),
        "manual_tasks": len(outcome.get("manual_tasks") or [])})


def reconciliation_finished(*, bill_date: str, generation: int, status: str, figures: dict, at: str) -> Event:
    """A reconciliation run of ``bill_date`` ended (each run of a date is its own ``generation``):
    ``seq`` is ``2 * generation``, plus one when it is done, so a run that failed and was then
    finished tells both, and a repeat of either is the same event."""
    stream = f"reconciliation#{bill_date}"
    seq = 2 * generation + (1 if status == "done" else 0)
    return Event(stream, seq, RECONCILIATION_FINISHED, {
        "schema_version": SCHEMA_VERSION, "event_id": f"{stream}#{seq}", "seq": seq,
        "bill_date": bill_date, "generation": generation, "status": status, "at": at, "figures": figures})


def publish_order(events: list) -> list:
    """The order to publish stored events in: oldest first, and within one stream by ``seq``
    (whatever the writers' clocks said), so a stream is never published out of order."""
    ordered = sorted(events, key=lambda e: (e.created_at, e.stream, e.seq))
    by_stream: dict[str, list] = {}
    for e in ordered:
        by_stream.setdefault(e.stream, []).append(e)
    for items in by_stream.values():
        items.sort(key=lambda e: e.seq)
    taken = {s: iter(items) for s, items in by_stream.items()}
    return [next(taken[e.stream]) for e in ordered]
