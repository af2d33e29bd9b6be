"""What a use case talks to besides its tables: WeChat Pay, the clock and the queues.

The entry points run use cases on the production edges (the lazily built WeChat Pay gateway,
the system clock, SQS). A caller may pass others for the span of a block with ``use(edges)``:
the use-case tests run create, approve, notification, restoration, poll and reconciliation
in-process against the local DynamoDB endpoint with the simulator's gateway, a clock of their
choosing and a publisher that records what would have been queued. Services ask ``gateway()``,
``publisher()`` and ``clock.now()``; none of them builds an edge.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator, Protocol

from ..domain import clock


class Publisher(Protocol):
    def publish_restore(self, refund_no: str, order_no: str) -> bool: ...

    def publish_reconciliation(self, bill_date: str, generation: int) -> bool: ...


def _production_gateway() -> Any:
    from ..adapters.wechat.gateway import get_gateway

    return get_gateway()


def _production_publisher() -> Publisher:
    from ..adapters import queue

    return queue


def _production_miniprogram() -> Any:
    from ..adapters import miniprogram

    return miniprogram


@dataclass(frozen=True)
class Edges:
    gateway: Callable[[], Any] = _production_gateway
    clock: Callable[[], datetime] = clock.system_now
    publisher: Callable[[], Publisher] = _production_publisher
    miniprogram: Callable[[], Any] = _production_miniprogram  # subscription messages (adapters/miniprogram.py)


PRODUCTION = Edges()
_current: ContextVar[Edges] = ContextVar("edges", default=PRODUCTION)


@contextmanager
def use(edges: Edges) -> Iterator[Edges]:
    """Run the block's use cases on ``edges`` (this thread or task only)."""
    token = _current.set(edges)
    try:
        with clock.use(edges.clock):
            yield edges
    finally:
        _current.reset(token)


def gateway() -> Any:
    """The WeChat Pay gateway in use."""
    return _current.get().gateway()


def publisher() -> Publisher:
    """Where work for the queues goes (restoration, a reconciliation's continuation)."""
    return _current.get().publisher()


def miniprogram() -> Any:
    """The mini-program server API in use (access token, subscription messages)."""
    return _current.get().miniprogram()


@dataclass
class RecordingPublisher:
    """A publisher that keeps what it was given, for a caller that delivers it itself."""

    restores: list = field(default_factory=list)
    reconciliations: list = field(default_factory=list)

    def publish_restore(self, refund_no: str, order_no: str) -> bool:
        self.restores.append((refund_no, order_no))
        return True

    def publish_reconciliation(self, bill_date: str, generation: int) -> bool:
        self.reconciliations.append((bill_date, generation))
        return True
