"""Count AWS calls made in this process with botocore event hooks.

Every pynamodb model has its own botocore client (``Model._get_connection().connection.client``),
transactions go through ``repository.connection().client`` and the restoration queue through
``queue._client_and_url()``. ``attach()`` registers a ``before-call`` hook (one per API call,
retries excluded) and an ``after-call`` hook (items read) on each of them; the local API server
runs in this process, so its handlers are counted too. ``hook(client)`` counts another client
(e.g. a benchmark's own), and ``sequence`` lists the DynamoDB calls in order, each with the
tables it names (``describe``).
"""
from __future__ import annotations

import threading
from collections import Counter


class CallCounter:
    def __init__(self):
        self._lock = threading.Lock()
        self._hooked: set[int] = set()
        self.calls: Counter = Counter()
        self.sequence: list[str] = []
        self._prefix: str | None = None  # the stage's table prefix, read on first use
        self.items_read = 0

    # ------------------------------------------------------------ hooks
    def _before(self, event_name: str, **_kw) -> None:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self.calls[f"{service}.{operation}"] += 1

    def _params(self, event_name: str, params=None, **_kw) -> None:
        if self._prefix is None:
            from chalicelib.config import settings

            self._prefix = settings().table_prefix
        entry = describe(event_name.rsplit(".", 1)[-1], params or {}, self._prefix)
        with self._lock:
            self.sequence.append(entry)

    def _after(self, event_name: str, parsed=None, **_kw) -> None:
        if not event_name.startswith("after-call.dynamodb") or not isinstance(parsed, dict):
            return
        n = 0
        if "Item" in parsed:
            n = 1
        elif "Items" in parsed:
            n = len(parsed["Items"])
        elif "Responses" in parsed:  # TransactGetItems (list) / BatchGetItem (table -> list)
            r = parsed["Responses"]
            n = sum(1 for x in r if x.get("Item")) if isinstance(r, list) else sum(len(v) for v in r.values())
        with self._lock:
            self.items_read += n

    def hook(self, client) -> None:
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        client.meta.events.register("before-call.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)
        client.meta.events.register("provide-client-params.dynamodb", self._params)

    def attach(self) -> "CallCounter":
        """Hook every client the service uses now (idempotent; call again after a re-bind)."""
        from chalicelib.adapters import models, queue
        from chalicelib.adapters import repository as repo

        models.bind()
        for model in models.ALL_MODELS:
            self.hook(model._get_connection().connection.client)
        self.hook(repo.connection().client)
        self.hook(queue._client_and_url()[0])
        return self

    # ------------------------------------------------------------ reading
    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.sequence.clear()
            self.items_read = 0

    def dynamodb(self) -> int:
        return sum(v for k, v in self.calls.items() if k.startswith("dynamodb."))

    def sqs_sends(self) -> int:
        return self.calls.get("sqs.SendMessage", 0) + self.calls.get("sqs.SendMessageBatch", 0)

    def breakdown(self) -> str:
        return ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(self.calls.items())
                         if k.startswith("dynamodb."))


def describe(operation: str, params: dict, prefix: str = "") -> str:
    """One DynamoDB call as ``Operation table``, or ``Operation(Put table, Update table, ...)``
    for a transaction (its items in the order sent); table names without ``prefix``."""

    def table(name: str) -> str:
        return name.removeprefix(prefix)

    if "TransactItems" in params:
        items = [f"{kind} {table(body['TableName'])}" for item in params["TransactItems"] for kind, body in item.items()]
        return f"{operation}({', '.join(items)})"
    if "RequestItems" in params:
        return f"{operation}({', '.join(table(t) for t in params['RequestItems'])})"
    return f"{operation} {table(params.get('TableName', '?'))}"
