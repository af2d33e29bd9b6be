"""DynamoDB access for reconciliation: run records (with their lease and checkpoint), the
discrepancies of a run, and the index of refunds by success day. Writes are conditional on
the run's generation, so a superseded worker cannot overwrite a newer run."""
from __future__ import annotations

from typing import Iterator

from pynamodb.exceptions import PutError

from . import models
from . import repository as repo
from .models import ReconDiscrepancy, ReconRun, Refund

RUN_SK = "RUN"


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


def put_run(run: ReconRun, *, expected_generation: int | None) -> bool:
    """Write a run record whole: a new date (``expected_generation`` None), or the next
    generation of a date whose record is still at ``expected_generation``."""
    models.bind()
    if expected_generation is None:
        condition = ReconRun.bill_date.does_not_exist()
    else:
        condition = ReconRun.generation == expected_generation
    try:
        run.save(condition=condition)
        return True
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise


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


def put_discrepancy(item: ReconDiscrepancy) -> None:
    """Record a discrepancy (a repeat of the same run overwrites the same item)."""
    models.bind()
    item.save()


def discrepancy_sk(generation: int, cls: str, subject: str) -> str:
    return f"D#{generation:06d}#{cls}#{subject}"


def discrepancies(bill_date: str, generation: int, *, limit: int, cursor: str | None) -> repo.Page:
    """One page of a run's discrepancies, by class then number (a Query on the date's partition)."""
    models.bind()
    start = repo.decode_cursor(cursor, frozenset({"bill_date", "sk"}))
    result = ReconDiscrepancy.query(bill_date, ReconDiscrepancy.sk.startswith(f"D#{generation:06d}#"),
                                    limit=limit, last_evaluated_key=start, page_size=limit)
    items = list(result)
    return repo.Page(items, repo.encode_cursor(result.last_evaluated_key) if len(items) == limit else None)


def successes_on(day: str) -> Iterator[Refund]:
    """Refunds that succeeded on ``day`` (Beijing), from the sparse by_success_day index: only the
    projected attributes (refund_no, amount, order_no, success_time, success_actor) are set."""
    models.bind()
    return iter(Refund.by_success_day.query(day, page_size=1000))
