"""投诉: what the complaint sweep costs. N complaints nobody was told about (notifications dropped)
are ingested by one sweep: its WeChat calls (list pages, details, history pages) and DynamoDB
calls per complaint must not grow with N; then a sweep with nothing new must read one list page.
WeChat calls are counted on the gateway the sweep uses (``services/edges.py``)."""
from __future__ import annotations

import time
from collections import Counter


class CountingComplaints:
    """The gateway's complaint calls, counted by name."""

    def __init__(self, api, counts: Counter):
        self._api, self._counts = api, counts

    def __getattr__(self, name):
        target = getattr(self._api, name)
        if not callable(target) or name.startswith("_") or name == "history_from":
            return target

        def counted(*args, **kwargs):
            self._counts[name] += 1
            return target(*args, **kwargs)

        return counted

    def history_from(self, complaint_id, start=0):
        from chalicelib.adapters.wechat.complaints import ComplaintApi

        return ComplaintApi.history_from(self, complaint_id, start)  # each page it reads is counted


class CountingGateway:
    def __init__(self, gateway, counts: Counter):
        self._gateway, self._counts = gateway, counts

    @property
    def complaints(self):
        return CountingComplaints(self._gateway.complaints, self._counts)

    def __getattr__(self, name):
        return getattr(self._gateway, name)


def _line(name: str, value, note: str = "") -> None:
    print(f"  {name:<46} {value!s:>12}  {note}", flush=True)


def _sweep_once(w, counter, n: int) -> dict:
    from chalicelib.adapters.wechat.gateway import get_gateway
    from chalicelib.services import complaint_sync, edges

    w.reset()
    w.sim.configure(drop_complaint_notifications=True)
    orders = w.paid_orders()
    for i in range(n):
        w.sim.complaints.create(orders[i % len(orders)].order_no, 1 + i % 50)
    counts: Counter = Counter()
    gateway = CountingGateway(get_gateway(), counts)
    counter.attach()
    with edges.use(edges.Edges(gateway=lambda: gateway)):
        counter.reset()
        started = time.perf_counter()
        report = complaint_sync.sweep()
        seconds = time.perf_counter() - started
        first = {"wechat": dict(counts), "dynamodb": counter.dynamodb(), "seconds": seconds, "new": report.new,
                 "pages": report.pages}
        counts.clear()
        counter.reset()
        again = complaint_sync.sweep()
        second = {"wechat": dict(counts), "dynamodb": counter.dynamodb(), "pages": again.pages, "new": again.new}
    return {"first": first, "again": second}


def complaints(w, counter, sizes=(100, 1000)) -> dict:
    print("Complaints: one sweep ingesting N complaints no notification told of, then a sweep with nothing new "
          "(targets: calls per complaint independent of N; nothing new = one list page)")
    out = {}
    for n in sizes:
        r = _sweep_once(w, counter, n)
        first, again = r["first"], r["again"]
        wechat = sum(first["wechat"].values())
        _line(f"{n} complaints: WeChat calls", wechat,
              f"{wechat / n:.2f} per complaint [{', '.join(f'{k} {v}' for k, v in sorted(first['wechat'].items()))}]")
        _line(f"{n} complaints: DynamoDB calls", first["dynamodb"],
              f"{first['dynamodb'] / n:.2f} per complaint; {first['new']} new in {first['seconds']:.1f} s")
        _line("  then a sweep with nothing new: list pages", again["pages"],
              ("ok" if again["pages"] == 1 else "NOT one page")
              + f" [{', '.join(f'{k} {v}' for k, v in sorted(again['wechat'].items()))}; DynamoDB {again['dynamodb']}]")
        out[n] = r
    small, large = (out[sizes[0]]["first"], out[sizes[-1]]["first"])
    ratio = (sum(large["wechat"].values()) / sizes[-1]) / (sum(small["wechat"].values()) / sizes[0])
    _line("WeChat calls per complaint, large / small", f"{ratio:.2f}", "ok" if ratio <= 1.1 else "GROWS with N")
    return out
