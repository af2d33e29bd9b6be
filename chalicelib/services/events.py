"""The relay: publishes the outbox's events to EventBridge, oldest first and, within one stream
(one refund), in order. Runs from the poll schedule (``entrypoints/workers.poll_and_sweep``).

An event is marked sent only after EventBridge accepted it, so none is lost; a crash between
the two sends it again with the same ``event_id`` (at-least-once: consumers drop repeats by
``event_id``). When an event of a stream is not accepted, the stream's later events wait for the
next run, so a refund's events never overtake each other.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import config
from ..adapters import bus, outbox
from ..domain import clock
from ..domain import events as event_rules
from ..log import get_logger

log = get_logger(__name__)


@dataclass
class RelayReport:
    published: int = 0
    failed: int = 0
    held: int = 0  # later events of a stream whose earlier event failed: they wait for the next run

    def to_dict(self) -> dict:
        return {"published": self.published, "failed": self.failed, "held": self.held}


def _next_call(queue: list, blocked: set) -> tuple[list, list, int]:
    """One PutEvents call's events: at most one per stream (so a failed event is never overtaken
    by its successor sent beside it), none of a blocked stream; and what is left for later."""
    chunk, rest, seen, held = [], [], set(), 0
    for e in queue:
        if e.stream in blocked:
            held += 1
        elif e.stream in seen or len(chunk) == bus.MAX_ENTRIES:
            rest.append(e)
            seen.add(e.stream)
        else:
            chunk.append(e)
            seen.add(e.stream)
    return chunk, rest, held


def relay(limit: int | None = None) -> RelayReport:
    """Publish what the outbox holds (up to ``limit`` events per shard)."""
    report = RelayReport()
    queue = event_rules.publish_order(outbox.unsent(limit or config.event_settings().relay_batch))
    blocked: set[str] = set()
    while queue:
        chunk, queue, held = _next_call(queue, blocked)
        report.held += held
        if not chunk:
            break
        try:
            accepted = bus.put_events([{"source": event_rules.SOURCE, "detail_type": e.detail_type,
                                        "detail": e.detail} for e in chunk])
        except Exception:  # noqa: BLE001 - the bus is unreachable: everything waits for the next run
            log.exception("publishing domain events failed; they stay in the outbox")
            accepted = [False] * len(chunk)
        now = clock.iso(clock.now())
        for event, ok in zip(chunk, accepted):
            if ok:
                outbox.mark_sent(event, now=now)
                report.published += 1
            else:
                outbox.mark_failed(event)
                blocked.add(event.stream)
                report.failed += 1
    if report.failed:
        log.warning("domain events not published; retried on the next run", extra=report.to_dict())
    return report
