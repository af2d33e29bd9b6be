"""EventBridge: the domain events' bus. ``put_events`` sends up to 10 entries in one PutEvents
call and says which were accepted; the client is built on first use."""
from __future__ import annotations

import json
import threading

from .. import config

MAX_ENTRIES = 10  # PutEvents takes at most 10 entries a call
_lock = threading.Lock()
_state: dict = {}


def _client():
    s = config.settings()
    key = (s.region, config.aws_endpoint("events"))
    with _lock:
        if _state.get("key") != key:
            import boto3

            _state.update(key=key, client=boto3.client("events", region_name=s.region, endpoint_url=key[1]))
        return _state["client"]


def put_events(entries: list[dict]) -> list[bool]:
    """Send ``entries`` (``source``, ``detail_type``, ``detail``, ``time``) to the bus; for each,
    whether EventBridge accepted it (an entry with an ErrorCode was not). Raises when the call
    itself failed (then none was accepted)."""
    assert len(entries) <= MAX_ENTRIES
    bus = config.event_settings().bus_name
    answer = _client().put_events(Entries=[{
        "Source": e["source"], "DetailType": e["detail_type"], "EventBusName": bus,
        "Detail": json.dumps(e["detail"], ensure_ascii=False, sort_keys=True), "Resources": [],
    } for e in entries])
    results = answer.get("Entries") or []
    return [bool(i < len(results) and results[i].get("EventId") and not results[i].get("ErrorCode"))
            for i in range(len(entries))]
