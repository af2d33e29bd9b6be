"""DynamoDB access for reconciliation: run records (with their lease and checkpoint), the
discrepancies of a run, and the index of refunds by success day. Writes are conditional on
the run's generation, so a superseded worker cannot overwrite a newer run."""
from __future__ import annotations

import random
import time
from typing import Iterator, NamedTuple


from . import keys, models
from . import pages
from . import repository as repo
from .models import Order, ReconDiscrepancy, ReconRun, Refund

RUN_SK = "RUN"
BATCH_KEYS = 100  # BatchGetItem's limit
_RETRIES = 8


def get_run(bill_date: str) -> ReconRun | None:
    found = repo.batch_get([(ReconRun, (bill_date, RUN_SK))])
    return found.get((ReconRun, (bill_date, RUN_SK)))


def runs(bill_dates: list[str]) -> dict[str, ReconRun]:
    """The run records of ``bill_dates`` (at most 100 a call: one BatchGetItem)."""
    out: dict[str, ReconRun] = {}
    for start in range(0, len(bill_dates), 100):
        found = repo.batch_get([(ReconRun, (d, RUN_SK)) for d in bill_dates[start:start + 100]])
        out.update({key[0]: run for (_model, key), run in found.items()})
    return out


def new_run(bill_date: str, generation: int, *, status: str, actor: str, now: str, lease_until: str | None,
            figures: dict) -> ReconRun:
    """A run record about to be claimed with ``put_run`` (not yet written)."""
    return ReconRun(bill_date, "RUN", status=status, generation=generation, started_by=actor, started_at=now,
                    lease_until=lease_until, figures=figures, checkpoint={"offset": 0}, updated_at=now)


def put_run(run: ReconRun, *, expected_generation: int | None) -> bool:
    """Write a run record whole: a new date (``expected_generation`` None), or the next
    generation of a date whose record is still at ``expected_generation``."""
    models.bind()
    if expected_generation is None:
        condition = ReconRun.bill_date.does_not_exist()
    else:
        condition = ReconRun.generation == expected_generation
    return repo.put(run, condition)


def record_refused(bill_date: str, existing: ReconRun | None, *, actor: str, now: str, reason: str,
                   code: str | None) -> None:
    """An attempt whose bill was refused (its SHA1 check failed) leaves a trace: a finished report
    is kept and only notes the attempt (``refused``); otherwise the date's record becomes a failed
    run of the next generation carrying the reason. Never a result from the refused bill."""
    refused = {"at": now, "by": actor, "reason": reason, "code": code}
    if existing is not None and existing.status == "done":
        update_run(bill_date, existing.generation, {"refused": refused, "updated_at": now}, status="done")
        return
    run = new_run(bill_date, (existing.generation if existing is not None else 0) + 1, status="failed", actor=actor,
                  now=now, lease_until=None, figures={})
    run.reason, run.finished_at, run.refused, run.checkpoint = reason, now, refused, None
    put_run(run, expected_generation=existing.generation if existing is not None else None)


def update_run(bill_date: str, generation: int, fields: dict, *, lease_free_before: str | None = None,
               status: str | None = None) -> bool:
    """Set ``fields`` (None removes) on the run if it is still ``generation`` (and ``status``;
    and, with ``lease_free_before``, nobody holds a lease beyond that time)."""
    actions = [getattr(ReconRun, k).set(v) if v is not None else getattr(ReconRun, k).remove()
               for k, v in fields.items()]
    condition = ReconRun.generation == generation
    if status is not None:
        condition = condition & (ReconRun.status == status)
    if lease_free_before is not None:
        condition = condition & (ReconRun.lease_until.does_not_exist() | (ReconRun.lease_until <= lease_free_before))
    return repo.update(ReconRun(bill_date, RUN_SK), actions, condition)


def run_finished(bill_date: str, generation: int, fields: dict):
    """``update_run`` as a transaction item (label ``run``), for a run's end and its domain event."""
    actions = [getattr(ReconRun, k).set(v) if v is not None else getattr(ReconRun, k).remove()
               for k, v in fields.items()]
    return repo.TxItem("run", "update", ReconRun(bill_date, RUN_SK), ReconRun.generation == generation, actions)


def put_discrepancy(bill_date: str, generation: int, finding, *, task_id: str, found_at: str) -> None:
    """Record a run's discrepancy (``finding``: the domain's Finding); a repeat of the same run
    overwrites the same item."""
    models.bind()
    ReconDiscrepancy(
        bill_date, discrepancy_sk(generation, finding.cls.value, finding.subject), generation=generation,
        cls=finding.cls.value, kind=finding.kind, order_no=finding.order_no, refund_no=finding.refund_no,
        ours_amount=finding.ours_amount, theirs_amount=finding.theirs_amount, ours_status=finding.ours_status,
        theirs_status=finding.theirs_status, line_no=finding.line_no, note=finding.note, task_id=task_id,
        found_at=found_at).save()


def earlier_discrepancy_tasks(bill_date: str, generation: int) -> set[str]:
    """The task ids of the discrepancies earlier runs of ``bill_date`` found (one Query of the
    date's partition, only the task ids)."""
    models.bind()
    found = set()
    for item in ReconDiscrepancy.query(bill_date, ReconDiscrepancy.sk.between("D#", f"D#{generation:06d}#"),
                                       attributes_to_get=["task_id", "sk"]):
        if not item.sk.startswith(f"D#{generation:06d}#") and item.task_id:
            found.add(item.task_id)
    return found


def discrepancy_sk(generation: int, cls: str, subject: str) -> str:
    return f"D#{generation:06d}#{cls}#{subject}"


_DISCREPANCY_KEYS = frozenset({"bill_date", "sk"})


def discrepancies(bill_date: str, generation: int, *, limit: int, cursor: str | None) -> pages.Page:
    """One page of a run's discrepancies, by class then number (a Query on the date's partition).
    The cursor is signed for this date and generation: another day's, another run's or another
    list's is refused (400) before DynamoDB is asked."""
    models.bind()
    prefix = f"D#{generation:06d}#"
    scope = f"{ReconDiscrepancy.__name__}|{bill_date}|{prefix}|asc"
    start = pages.decode_cursor(cursor, scope, _DISCREPANCY_KEYS)
    result = ReconDiscrepancy.query(bill_date, ReconDiscrepancy.sk.startswith(prefix),
                                    limit=limit, last_evaluated_key=start, page_size=limit)
    items = list(result)
    return pages.Page(items, pages.encode_cursor(result.last_evaluated_key, scope) if len(items) == limit else None)


class Accepted(NamedTuple):
    """A refund WeChat accepted on the day, as the by_accepted_day index projects it."""

    refund_no: str
    amount: int
    order_no: str
    status: str
    accepted_at: str | None


class OrderBrief(NamedTuple):
    """What a payment line is compared with: the order's status and paid amount, and whether
    its payment arrived after it was cancelled (recorded, to be refunded)."""

    status: int
    actual_amount: int
    paid_after_cancel: bool = False


class Paid(NamedTuple):
    """An order whose payment we recorded on the day, as the by_paid_day index projects it."""

    order_no: str
    status: int
    actual_amount: int
    paid_at: str | None


def _day_index(model, index, key_attr: str, day: str, names: tuple[str, ...]) -> Iterator[dict]:
    """Every item of ``index`` on ``day`` (each of its shards in turn): Query pages of up to
    1 MB, only the attributes ``names``, raw."""
    models.bind()
    client = repo.connection().client
    aliases = {f"#a{i}": name for i, name in enumerate(names)}
    for key in keys.shard_keys(day, "day"):
        request = {"TableName": model.Meta.table_name, "IndexName": index.Meta.index_name,
                   "KeyConditionExpression": "#k = :k", "ExpressionAttributeNames": {"#k": key_attr, **aliases},
                   "ExpressionAttributeValues": {":k": {"S": key}}, "ProjectionExpression": ", ".join(aliases)}
        while True:
            page = client.query(**request)
            yield from page.get("Items", ())
            start = page.get("LastEvaluatedKey")
            if not start:
                break
            request["ExclusiveStartKey"] = start


def accepted_on(day: str) -> Iterator[Accepted]:
    """Refunds WeChat accepted on ``day`` (Beijing), from the sparse by_accepted_day index, as
    plain tuples: the refunds the day's bill lists."""
    statuses: dict[str, str] = {}
    for item in _day_index(Refund, Refund.by_accepted_day, "accepted_day_key", day,
                           ("refund_no", "amount", "order_no", "status", "accepted_at")):
        status = item["status"]["S"]
        yield Accepted(item["refund_no"]["S"], int(item["amount"]["N"]), item["order_no"]["S"],
                       statuses.setdefault(status, status), item.get("accepted_at", {}).get("S"))


def payments_on(day: str) -> Iterator[Paid]:
    """Orders whose payment we recorded on ``day`` (Beijing), from the sparse by_paid_day
    index, as plain tuples."""
    for item in _day_index(Order, Order.by_paid_day, "paid_day_key", day,
                           ("order_no", "status", "actual_amount", "payment")):
        paid_at = item.get("payment", {}).get("M", {}).get("paid_at", {}).get("S")
        yield Paid(item["order_no"]["S"], int(item["status"]["N"]), int(item["actual_amount"]["N"]), paid_at)


def records_for_lines(order_nos: list[str], refund_nos: list[str]) -> tuple[dict[str, OrderBrief], dict[str, Refund]]:
    """Our side of up to 100 bill lines in one BatchGetItem (more only for unprocessed keys):
    orders by number, only status and paid amount (a projection); refunds whole (a refund the bill
    settles goes through the normal transition, which needs the record). Safe to call from
    several threads at once."""
    if len(order_nos) + len(refund_nos) > BATCH_KEYS:
        raise ValueError(f"at most {BATCH_KEYS} keys a call")
    models.bind()
    request: dict[str, dict] = {}
    if order_nos:
        request[Order.Meta.table_name] = {
            "Keys": [{"order_no": {"S": no}} for no in dict.fromkeys(order_nos)],
            "ProjectionExpression": "#no, #st, #amt, #pac",
            "ExpressionAttributeNames": {"#no": "order_no", "#st": "status", "#amt": "actual_amount",
                                         "#pac": "paid_after_cancel"}}
    if refund_nos:
        request[Refund.Meta.table_name] = {"Keys": [{"refund_no": {"S": no}} for no in dict.fromkeys(refund_nos)]}
    orders: dict[str, OrderBrief] = {}
    refunds: dict[str, Refund] = {}
    client = repo.connection().client
    for attempt in range(_RETRIES):
        if not request:
            return orders, refunds
        resp = client.batch_get_item(RequestItems=request)
        responses = resp.get("Responses", {})
        for raw in responses.get(Order.Meta.table_name, ()):
            orders[raw["order_no"]["S"]] = OrderBrief(int(raw["status"]["N"]), int(raw["actual_amount"]["N"]),
                                                      bool(raw.get("paid_after_cancel", {}).get("BOOL")))
        for raw in responses.get(Refund.Meta.table_name, ()):
            refund = Refund.from_raw_data(raw)
            refunds[refund.refund_no] = refund
        request = resp.get("UnprocessedKeys") or {}
        if request:
            time.sleep(min(0.2, 0.005 * (2 ** attempt)) * (0.5 + random.random()))
    if request:
        raise RuntimeError("BatchGetItem left keys unprocessed")
    return orders, refunds
