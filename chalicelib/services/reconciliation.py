"""Reconciliation (对账): our orders and refunds against WeChat Pay's trade bill of one day.

A run downloads the day's bill (verified by its SHA1 before anything is recorded), reads our
refunds that succeeded that day and our payments recorded that day from the sparse
``by_success_day`` and ``by_paid_day`` indexes (Queries of 1 MB pages over the day's shards,
kept as compact tuples; a line found there costs no further read), then streams the bill line
by line. Lines it cannot match from the index are read in batches of up to 100 keys
with one BatchGetItem (orders by ``out_trade_no``, only their status and amount; refunds by
``out_refund_no``); a small thread pool (``RECON_READERS``) keeps a few batches in flight,
their results taken in bill order. Each line is classed by
``chalicelib/domain/reconciliation.py``; each discrepancy is stored with the run and opens a
manual task of type 对账差异 whose id is deterministic, so rerunning a date opens no second
task. A refund the bill says succeeded while we still await WeChat goes through
``transitions.apply_outcome`` like a notification would.

Our successes and payments the bill lacks are checked against the adjacent day's bill when
they lie near midnight; when that bill is not out yet they are held back (``deferred``) and the daily run
reconciles that day again once it is.

Continuation: a run works until its time budget is nearly spent, then stores a checkpoint in
the run record (lines done and the partial figures) and, when a continuation queue is
configured (``RECON_QUEUE_URL``), sends itself a message; the next invocation downloads the
bill again, checks it is the same file (hash), skips the lines done and goes on. Without a
queue (the local stack) the next scheduled run resumes any run whose lease has lapsed.

Settings: ``config.recon_settings()``. The reports, lists and CSV files of the runs are
``services/recon_reports.py``.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from .. import config
from ..adapters import outbox
from ..adapters import reconciliations as store
from ..adapters import repository as repo
from ..adapters.models import ReconRun
from ..domain import reconciliation as recon_rules
from ..domain import clock
from ..domain import events
from ..domain import tasks as task_rules
from ..domain.enums import OrderStatus, ReconClass, ReconStatus, TaskType
from ..domain.errors import BillRefused, ErrorCode, OutcomeMismatch, UpstreamUnavailable, conflict
from ..domain.reconciliation import Figures, Finding
from ..domain.tasks import Task
from ..domain.tradebill import BillFormatError, BillSummary
from . import edges
from ..log import get_logger, log_context
from .. import metrics
from .recon_reports import report, view

log = get_logger(__name__)
C = ReconClass
BATCH_KEYS = store.BATCH_KEYS  # BatchGetItem's limit
CHECKPOINT_EVERY = 20_000  # lines between checkpoints while time remains


class Deadline:
    """Time left for this invocation: the Lambda context's, or a budget in seconds."""

    def __init__(self, seconds: float | None = None, context=None, margin: float = 15.0):
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            seconds = context.get_remaining_time_in_millis() / 1000.0 - margin
        self.ends = time.monotonic() + (seconds if seconds is not None else 600.0)

    def near(self) -> bool:
        return time.monotonic() >= self.ends


# ---------------------------------------------------------------- starting and resuming


def start(bill_date: str, *, actor: str, deadline: Deadline, gateway=None) -> dict:
    """Reconcile ``bill_date`` from the start (a new generation of its report).

    Raises ``BillRefused`` when the download fails its hash check (no result is recorded; the
    attempt is: ``store.record_refused``),
    ``UpstreamUnavailable`` when WeChat cannot be asked now, a 409 when a run of the date is in
    progress. Returns the report: done, not_ready, failed, or running (continued later)."""
    from ..adapters.wechat.gateway import get_gateway

    with log_context(bill_date=bill_date):
        gateway = gateway or edges.gateway()
        existing = store.get_run(bill_date)
        now = clock.now()
        if existing is not None and existing.status == ReconStatus.RUNNING.value and existing.lease_until \
                and existing.lease_until > clock.iso(now):
            raise conflict(ErrorCode.RECONCILIATION_RUNNING, "该日期的对账正在进行中，请稍后查看结果",
                           bill_date=bill_date)
        try:
            bill = _download(gateway, bill_date)
        except BillRefused as err:  # the attempt is listed; a finished report is kept
            store.record_refused(bill_date, existing, actor=actor, now=clock.iso(now), reason=err.message,
                                 code=(err.details or {}).get("wechat_code"))
            raise
        generation = (existing.generation if existing is not None else 0) + 1
        if bill is _NOT_READY:
            if existing is not None and existing.status == ReconStatus.DONE.value:
                return report(bill_date)  # a finished report is never replaced by "not ready"
            run = _new_run(bill_date, generation, actor, now, ReconStatus.NOT_READY)
            run.reason = "微信账单尚未生成（次日上午10点后可下载）"
            run.lease_until = None
            _claim(run, existing)
            metrics.emit_reconciliation(bill_date, ReconStatus.NOT_READY.value, Figures())
            log.info("reconciliation: the bill is not ready")
            return view(run)
        run = _new_run(bill_date, generation, actor, now, ReconStatus.RUNNING)
        run.hash_value = bill.hash_value if bill is not None else None
        try:
            _claim(run, existing)
            return _execute(run, bill, Figures(), 0, 0, deadline, gateway)
        finally:
            if bill is not None:
                bill.close()


def resume(bill_date: str, generation: int, *, deadline: Deadline, gateway=None) -> dict | None:
    """Continue a run from its checkpoint, if it is still that generation and nobody holds it.
    Returns the report, or None when there is nothing to continue (a repeat message)."""
    from ..adapters.wechat.gateway import get_gateway

    with log_context(bill_date=bill_date):
        run = store.get_run(bill_date)
        if run is None or run.generation != generation or run.status != ReconStatus.RUNNING.value:
            return None
        now = clock.now()
        lease = _lease_until(now)
        if not store.update_run(bill_date, generation, {"lease_until": lease}, lease_free_before=clock.iso(now),
                                status=ReconStatus.RUNNING.value):
            log.info("reconciliation: another worker holds the run")
            return None
        run.lease_until = lease
        gateway = gateway or edges.gateway()
        try:
            bill = _download(gateway, bill_date)
        except BillRefused as err:
            return _fail(run, f"续跑时账单校验失败：{err.message}")
        if bill is _NOT_READY or (bill.hash_value if bill is not None else None) != run.hash_value:
            if bill not in (None, _NOT_READY):
                bill.close()
            return _fail(run, "续跑时微信账单与首次下载的不一致，请重新对账")
        checkpoint = run.checkpoint or {}
        try:
            return _execute(run, bill, Figures.from_dict(checkpoint.get("figures")), int(checkpoint.get("offset", 0)),
                            int(checkpoint.get("active_ms", 0)), deadline, gateway)
        finally:
            if bill is not None:
                bill.close()


def run_daily(context=None, now: datetime | None = None) -> list[dict]:
    """The schedule: from the day's first attempt (02:00-02:30 UTC, after WeChat's bill of the
    previous Beijing day is generated "次日9点") every 30 minutes. Each time it
    - resumes a run whose worker stopped (its lease lapsed);
    - reconciles the previous day when it has no run yet, and asks again for every recent day whose
      bill was not out (STATEMENT_CREATING: "retry, e.g. every 30 min"), until the bill or
      NO_STATEMENT_EXIST comes;
    - reconciles the day before again once, when it held back refunds or payments near midnight;
    - past ``RECON_OVERDUE_HOUR`` (Beijing), counts the previous day as overdue (an alarm) while it
      is still unreconciled."""
    now = now or clock.now()
    deadline = Deadline(context=context)
    out = []
    yesterday = recon_rules.previous_day(now)
    before = recon_rules.adjacent(yesterday, -1)
    known = store.runs(recon_rules.dates(now)[:14])
    for bill_date, run in sorted(known.items()):
        if run.status == ReconStatus.RUNNING.value and (run.lease_until or "") <= clock.iso(now) and not deadline.near():
            resumed = resume(bill_date, run.generation, deadline=deadline)
            if resumed is not None:
                out.append(resumed)
    wanted = [day for day, run in sorted(known.items()) if run.status == ReconStatus.NOT_READY.value
              and day != recon_rules.today(now)]
    if yesterday not in known:
        wanted.append(yesterday)
    prior = known.get(before)
    if prior is not None and prior.status == ReconStatus.DONE.value and (prior.figures or {}).get("deferred") \
            and (prior.finished_at or "") < clock.iso(now.replace(hour=0, minute=0, second=0, microsecond=0)):
        wanted.append(before)
    for bill_date in sorted(set(wanted)):
        if deadline.near():
            break
        try:
            out.append(start(bill_date, actor="schedule", deadline=deadline))
        except (BillRefused, UpstreamUnavailable) as err:
            log.error("scheduled reconciliation could not run", extra={"bill_date": bill_date, "code": err.code.value})
            metrics.emit_reconciliation(bill_date, ReconStatus.FAILED.value, Figures())
            out.append({"bill_date": bill_date, "status": ReconStatus.FAILED.value, "reason": err.message})
        except Exception as err:  # noqa: BLE001 - a 409 (running elsewhere) and the like: logged, next day goes on
            log.warning("scheduled reconciliation skipped", extra={"bill_date": bill_date, "error": str(err)})
    latest = {r["bill_date"]: r.get("status") for r in out}
    status = latest.get(yesterday) or (known[yesterday].status if yesterday in known else None)
    if recon_rules.overdue(yesterday, status, now, config.recon_settings().overdue_hour):
        log.error("reconciliation overdue: the day is still unreconciled", extra={"bill_date": yesterday,
                                                                                 "status": status})
        metrics.count(metrics.RECON_OVERDUE)
    return out


def continue_from_message(body: str, context=None) -> dict | None:
    """The continuation queue's message: ``{"bill_date", "generation"}``."""
    data = json.loads(body)
    return resume(data["bill_date"], int(data["generation"]), deadline=Deadline(context=context))


# ---------------------------------------------------------------- the bill

_NOT_READY = object()


def _download(gateway, bill_date: str):
    """The verified bill, ``None`` when WeChat has none for the day (no trade, no refund), or
    ``_NOT_READY``. Raises BillRefused / UpstreamUnavailable."""
    from ..adapters.wechat.errors import BillHashMismatch, BillNotFound, BillNotReady, Rejected, WechatError

    try:
        return gateway.download_trade_bill(bill_date)
    except BillNotReady:
        return _NOT_READY
    except BillNotFound:
        return None
    except BillHashMismatch as exc:
        log.error("reconciliation refused the bill: hash mismatch", extra={"code": exc.code})
        metrics.emit_reconciliation(bill_date, ReconStatus.FAILED.value, Figures())
        raise BillRefused("微信账单的 SHA1 与下载内容不一致，已拒绝，未采用其中任何数据",
                          details={"wechat_code": exc.code}) from None
    except Rejected as exc:
        if exc.code == "INVALID_REQUEST":  # a date WeChat does not serve (yet): a future day
            return _NOT_READY
        raise UpstreamUnavailable(f"微信拒绝了账单请求：{exc.code}", details={"wechat_code": exc.code}) from None
    except WechatError as exc:
        raise UpstreamUnavailable("暂时无法从微信获取账单，请稍后重试", details={"wechat_code": exc.code}) from None


def _adjacent_lines(gateway, bill_date: str, wanted: set[tuple[str, str]]):
    """Which of ``wanted`` (("refund", out_refund_no) or ("payment", out_trade_no)) the bill
    of ``bill_date`` lists; None when that bill is not out yet."""
    try:
        bill = _download(gateway, bill_date)
    except (BillRefused, UpstreamUnavailable):
        return None
    if bill is _NOT_READY:
        return None
    if bill is None:
        return set()
    found = set()
    with bill:
        for item in bill:
            if isinstance(item, BillSummary):
                continue
            if item.is_refund:
                key = ("refund", item.out_refund_no)
                if key in wanted:  # billed there, with whatever status it had when accepted
                    found.add(key)
            elif ("payment", item.out_trade_no) in wanted:
                found.add(("payment", item.out_trade_no))
    return found


# ---------------------------------------------------------------- one run


def _lease_until(now: datetime) -> str:
    """How long the worker that writes this holds the run."""
    return clock.iso(now + timedelta(seconds=config.recon_settings().lease_seconds))


def _new_run(bill_date: str, generation: int, actor: str, now: datetime, status: ReconStatus) -> ReconRun:
    return store.new_run(bill_date, generation, status=status.value, actor=actor, now=clock.iso(now),
                         lease_until=_lease_until(now), figures=Figures().to_dict())


def _claim(run: ReconRun, existing: ReconRun | None) -> None:
    if not store.put_run(run, expected_generation=existing.generation if existing is not None else None):
        raise conflict(ErrorCode.RECONCILIATION_RUNNING, "该日期的对账刚被另一处启动，请稍后查看结果",
                       bill_date=run.bill_date)


class _Run:
    """The state of one invocation working on one run."""

    def __init__(self, run: ReconRun, figures: Figures, gateway):
        self.run, self.figures, self.gateway = run, figures, gateway
        self.bill_date, self.generation = run.bill_date, run.generation
        self.appid = config.wechat_settings().appid
        self.expected: dict[str, store.Accepted] = {}  # refund_no -> WeChat accepted it on the day
        self.expected_payments: dict[str, tuple] = {}  # order_no -> (status, actual_amount, paid_at)
        self.indexed_amount = self.indexed_count = 0
        self.indexed_payments = self.indexed_payment_count = 0
        self.found_tasks: set[str] = set()  # the tasks of this run's discrepancies

    # ---- our side
    def load_index(self) -> None:
        """Our refunds WeChat accepted and our payments recorded on the day (the day indexes)."""
        for r in store.accepted_on(self.bill_date):
            self.expected[r.refund_no] = r
            self.indexed_amount += r.amount
            self.indexed_count += 1
        for p in store.payments_on(self.bill_date):
            self.expected_payments[p.order_no] = (p.status, p.actual_amount, p.paid_at)
            if p.status in recon_rules.PAID_STATUSES or p.status == OrderStatus.CANCELLED.value:
                self.indexed_payments += p.actual_amount
                self.indexed_payment_count += 1

    def consume(self, line) -> None:
        """A line an earlier invocation classed: only its index entry is taken."""
        if line.is_refund:
            self.expected.pop(line.out_refund_no, None)
        else:
            self.expected_payments.pop(line.out_trade_no, None)

    @staticmethod
    def read(pending: list) -> tuple[dict, dict]:
        """Our records for a batch of lines (runs in a reader thread)."""
        order_nos = [line.out_trade_no for line in pending if not line.is_refund]
        refund_nos = [line.out_refund_no for line in pending if line.is_refund]
        return store.records_for_lines(order_nos, refund_nos)

    # ---- lines
    def foreign(self, line) -> bool:
        """A line of another app paid through the same merchant number (the bill covers them
        all): counted per appid in the report, compared with nothing, no task."""
        if not line.appid or line.appid == self.appid:
            return False
        entry = self.figures.other_apps.setdefault(line.appid, {"lines": 0, "payments": 0, "refunds": 0})
        entry["lines"] += 1
        entry["refunds" if line.is_refund else "payments"] += line.refund_requested if line.is_refund else line.total
        return True

    def known(self, line) -> bool:
        """Class a line from the day indexes alone, if they have its refund or payment."""
        if not line.is_refund:
            paid = self.expected_payments.pop(line.out_trade_no, None)
            if paid is None:
                return False
            status, amount, _paid_at = paid
            brief = store.OrderBrief(status, amount, paid_after_cancel=status == OrderStatus.CANCELLED.value)
            self.decide(line, recon_rules.compare_payment(line, brief))
            return True
        entry = self.expected.pop(line.out_refund_no, None)
        if entry is None:
            return False
        self.decide(line, recon_rules.compare_refund(line, entry))
        return True

    def flush(self, pending: list, found: tuple[dict, dict]) -> None:
        """Class a batch of lines with our records read for them (``read``)."""
        orders, refunds = found
        for line in pending:
            if line.is_refund:
                refund = refunds.get(line.out_refund_no)
                if refund is not None:  # on the bill: WeChat accepted it that day
                    self.figures.ours["refunds"] += refund.amount
                    self.figures.ours["refund_count"] += 1
                self.decide(line, recon_rules.compare_refund(line, refund))
            else:
                order = orders.get(line.out_trade_no)
                finding = recon_rules.compare_payment(line, order)
                if finding.cls == C.MATCHED:
                    self.figures.ours["payments"] += order.actual_amount
                    self.figures.ours["payment_count"] += 1
                self.decide(line, finding)

    def decide(self, line, finding: Finding) -> None:
        """What the line needs beyond the comparison: WeChat's final word (a query) where the
        bill cannot give it, and a refund made without us booked against its order."""
        if finding.cls == C.MISSING_HERE and finding.kind == "refund":
            finding = self.book_external(line, finding)
        elif finding.query and finding.kind == "refund":
            finding = self.settle_from_query(line, finding)
        elif finding.query:
            finding = self.book_payment(line, finding)
        self.record(finding)

    def _query(self, what: str, ask):
        from ..adapters.wechat.errors import WechatError

        try:
            return ask()
        except WechatError as err:
            log.warning("reconciliation could not ask WeChat", extra={"what": what, "code": err.code})
            return None

    def settle_from_query(self, line, finding: Finding) -> Finding:
        """The bill shows a final status for a refund we still await: the refund query says
        what it is (and where the money went: the merchant-card rule holds), applied like a
        notification. The line itself matched: WeChat accepted the refund that day."""
        from . import transitions
        from .outcomes import outcome_from_result

        result = self._query(line.out_refund_no, lambda: self.gateway.query_refund(line.out_refund_no))
        refund = repo.get_refund(line.out_refund_no) if result is not None else None
        if refund is None:
            return finding
        try:
            after = transitions.apply_outcome(refund, outcome_from_result(result, f"对账 {self.bill_date}：微信退款查询"),
                                              actor=recon_rules.ACTOR)
        except (OutcomeMismatch, transitions.StaleState) as err:
            return replace(finding, cls=C.STATUS_MISMATCH, note=f"微信退款查询为{result.status}，本地未能更新（"
                           f"{type(err).__name__}）：请人工核对")
        if after.status != finding.ours_status:
            self.figures.applied += 1
        return replace(finding, ours_status=after.status)

    def book_external(self, line, finding: Finding) -> Finding:
        """A refund on the bill that we never made: booked against its order (services/external.py)."""
        from . import external

        result = self._query(line.out_refund_no, lambda: self.gateway.query_refund(line.out_refund_no))
        if result is None:
            return finding
        booking = external.book_external_refund(result, actor=recon_rules.ACTOR)
        if booking.held:
            return recon_rules.external_refund(line, line.out_refund_no, None, held=True)
        if booking.refund is None:
            return finding  # its order is not ours: the discrepancy's task tells a person
        self.figures.ours["refunds"] += booking.refund.amount
        self.figures.ours["refund_count"] += 1
        return recon_rules.external_refund(line, booking.refund.refund_no, booking.refund.status)

    def book_payment(self, line, finding: Finding) -> Finding:
        """The bill shows a payment our order does not have (its notification was lost): the
        payment query says what was paid, booked as a notified one would be (a cancelled order's
        is recorded for a refund, with its one task)."""
        from . import payments

        result = self._query(line.out_trade_no, lambda: self.gateway.query_payment(line.out_trade_no))
        if result is None or not result.paid:
            return finding
        outcome = payments.apply_payment(result, actor=recon_rules.ACTOR)
        if outcome not in ("paid", "paid_after_cancel", "noop"):
            return finding  # recorded for a person by the payment rules (another amount, another merchant)
        self.figures.applied += 1
        self.figures.ours["payments"] += finding.ours_amount or 0
        self.figures.ours["payment_count"] += 1
        return replace(finding, cls=C.MATCHED, query=False,
                       note="付款通知丢失：对账时经支付查询补记" + ("（订单已取消，待退款）" if outcome == "paid_after_cancel" else ""))

    def record(self, finding: Finding) -> None:
        self.figures.add(finding)
        if finding.cls == C.MATCHED:
            return
        now = clock.iso(clock.now())
        if finding.cls == C.EXTERNAL_REFUND:  # its own task was opened when it was booked (or held)
            held = finding.ours_status is None
            tid = task_rules.task_id(TaskType.EXTERNAL_REFUND_EXCESS if held else TaskType.EXTERNAL_REFUND,
                                     finding.refund_no)
        else:
            task = Task(TaskType.RECON_DISCREPANCY, f"{self.bill_date}.{finding.cls.value}", part=finding.subject,
                        order_no=finding.order_no, refund_no=finding.refund_no,
                        action=f"对账 {self.bill_date}：{finding.cls.label}。{finding.note or ''}")
            repo.write([repo.open_task(task, now=now, by=recon_rules.ACTOR)])
            tid = task.task_id
        self.found_tasks.add(tid)
        store.put_discrepancy(self.bill_date, self.generation, finding, task_id=tid, found_at=now)
        log.warning("reconciliation discrepancy", extra={"bill_date": self.bill_date, "class": finding.cls.value,
                                                         "order_no": finding.order_no, "refund_no": finding.refund_no})

    def close_resolved(self) -> int:
        """A rerun closes the tasks of discrepancies earlier runs of the date found and this one
        does not (saying so); returns how many."""
        closed = 0
        now = clock.iso(clock.now())
        for tid in sorted(store.earlier_discrepancy_tasks(self.bill_date, self.generation) - self.found_tasks):
            if tid.startswith(f"{TaskType.RECON_DISCREPANCY.value}.") and repo.finish_task(
                    tid, by=recon_rules.ACTOR, now=now,
                    note=f"第 {self.generation} 次对账 {self.bill_date} 未再发现该差异，已自动关闭"):
                closed += 1
        return closed

    # ---- our refunds and payments the bill lacks
    def settle_missing(self) -> None:
        """What the day indexes hold and no line named: matched on the adjacent day's bill
        when it lies near midnight and WeChat billed it there, held back (``deferred``) when
        that bill is not out yet, else missing at WeChat."""
        left = [("payment", no, amount, no, paid_at, status)
                for no, (status, amount, paid_at) in self.expected_payments.items()]
        left += [("refund", no, r.amount, r.order_no, r.accepted_at, r.status) for no, r in self.expected.items()]
        self.expected.clear()
        self.expected_payments.clear()
        if not left:
            return
        minutes = config.recon_settings().midnight_minutes
        near = {(kind, no): recon_rules.near_midnight(when, self.bill_date, minutes) for kind, no, _a, _o, when, _s in left}
        early = {key for key, (first, _last) in near.items() if first}
        late = {key for key, (_first, last) in near.items() if last}
        found_before = _adjacent_lines(self.gateway, recon_rules.adjacent(self.bill_date, -1), early) if early else None
        found_after = _adjacent_lines(self.gateway, recon_rules.adjacent(self.bill_date, 1), late) if late else None
        for kind, no, amount, order_no, when, status in sorted(left, key=lambda entry: entry[:2]):
            key = (kind, no)
            if (key in early and found_before and key in found_before) or (key in late and found_after
                                                                          and key in found_after):
                self.figures.matched_adjacent += 1
                self.record(Finding(C.MATCHED, kind=kind, order_no=order_no, refund_no=no if kind == "refund" else None,
                                    ours_amount=amount, theirs_amount=amount, note="微信在相邻日账单中记录"))
            elif (key in early and found_before is None) or (key in late and found_after is None):
                self.figures.deferred += 1  # the adjacent bill is not out yet: decided by a later run
            elif kind == "refund":
                self.record(recon_rules.missing_at_wechat(no, order_no, amount, when, status))
            else:
                self.record(recon_rules.payment_missing_at_wechat(no, amount, status, when))

    # ---- the record
    def checkpoint(self, offset: int, active_ms: int) -> None:
        now = clock.now()
        store.update_run(self.bill_date, self.generation, {
            "checkpoint": {"offset": offset, "figures": self.figures.to_dict(), "active_ms": active_ms},
            "lease_until": _lease_until(now), "updated_at": clock.iso(now)},
            status=ReconStatus.RUNNING.value)


def _execute(run: ReconRun, bill, figures: Figures, offset: int, active_ms: int, deadline: Deadline,
             gateway) -> dict:
    started = time.monotonic()
    work = _Run(run, figures, gateway)

    def elapsed_ms() -> int:
        return active_ms + int((time.monotonic() - started) * 1000)

    width = config.recon_settings().readers
    reading = ThreadPoolExecutor(width, thread_name_prefix="recon-read")
    inflight: deque = deque()  # (lines, future of their records), oldest first

    def take_oldest() -> None:
        lines, future = inflight.popleft()
        work.flush(lines, future.result())

    def drain() -> None:
        while inflight:
            take_oldest()

    try:
        work.load_index()
        summary, n, pending = None, 0, []
        last_checkpoint = offset
        for item in (bill if bill is not None else ()):
            if isinstance(item, BillSummary):
                summary = item
                continue
            n += 1
            if n <= offset:  # done by an earlier invocation: only its index entry is consumed
                if item.appid == work.appid or not item.appid:
                    work.consume(item)
                continue
            if work.foreign(item):
                continue
            figures.count_line(item)
            if not work.known(item):
                pending.append(item)
            if len(pending) >= BATCH_KEYS:
                inflight.append((pending, reading.submit(work.read, pending)))
                pending = []
                while len(inflight) > width:
                    take_oldest()
                if deadline.near():
                    drain()
                    work.checkpoint(n, elapsed_ms())
                    return _continue_later(run)
                if n - last_checkpoint >= CHECKPOINT_EVERY:
                    drain()  # every line up to n is classed before n is stored
                    work.checkpoint(n, elapsed_ms())
                    last_checkpoint = n
        drain()
        if pending:
            work.flush(pending, work.read(pending))
        work.settle_missing()
        figures.resolved = work.close_resolved()
        figures.ours["refunds"] += work.indexed_amount
        figures.ours["refund_count"] += work.indexed_count
        figures.ours["payments"] += work.indexed_payments
        figures.ours["payment_count"] += work.indexed_payment_count
        figures.close(summary)
    except BillFormatError as exc:
        return _fail(run, f"账单格式错误：{exc}", figures)
    except Exception as exc:
        log.exception("reconciliation failed")
        _fail(run, f"对账中断：{type(exc).__name__}（可重新对账）", figures)
        raise
    finally:
        for _lines, future in inflight:
            future.cancel()
        reading.shutdown(wait=True)
    now = clock.now()
    done = {"status": ReconStatus.DONE.value, "figures": figures.to_dict(), "finished_at": clock.iso(now),
            "duration_ms": elapsed_ms(), "checkpoint": None, "lease_until": None, "reason": None,
            "updated_at": clock.iso(now)}
    _finish(run, done)
    for k, v in done.items():
        setattr(run, k, v)
    metrics.emit_reconciliation(run.bill_date, ReconStatus.DONE.value, figures, duration_ms=done["duration_ms"])
    log.info("reconciliation done", extra={"lines": figures.lines_read, "matched": figures.matched,
                                           "discrepancies": figures.discrepancies, "ms": done["duration_ms"]})
    return view(run)


def _finish(run: ReconRun, fields: dict) -> None:
    """Store the run's end with its domain event (ReconciliationFinished) in one transaction. A
    run that already ended and was told (its generation finishing again) is only updated."""
    told = outbox.put(events.reconciliation_finished(
        bill_date=run.bill_date, generation=int(run.generation), status=fields["status"],
        figures=fields.get("figures") or {}, at=fields["updated_at"]), now=fields["updated_at"])
    try:
        repo.write([store.run_finished(run.bill_date, run.generation, fields), told])
    except repo.WriteConflict as c:
        if not c.failed(outbox.LABEL) or c.failed("run"):
            raise
        store.update_run(run.bill_date, run.generation, fields)


def _continue_later(run: ReconRun) -> dict:
    """Out of time: the checkpoint is stored; ask for a continuation (or leave it to the schedule)."""
    if edges.publisher().publish_reconciliation(run.bill_date, run.generation):
        # the next invocation takes the run at once: give up this lease
        store.update_run(run.bill_date, run.generation, {"lease_until": None}, status=ReconStatus.RUNNING.value)
    log.info("reconciliation continues in another invocation", extra={"bill_date": run.bill_date})
    return report(run.bill_date)


def _fail(run: ReconRun, reason: str, figures: Figures | None = None) -> dict:
    now = clock.now()
    fields = {"status": ReconStatus.FAILED.value, "reason": reason, "lease_until": None, "finished_at": clock.iso(now),
              "updated_at": clock.iso(now)}
    if figures is not None:
        fields["figures"] = figures.to_dict()
    _finish(run, fields)
    for k, v in fields.items():
        setattr(run, k, v)
    metrics.emit_reconciliation(run.bill_date, ReconStatus.FAILED.value, figures or Figures())
    log.error("reconciliation failed", extra={"bill_date": run.bill_date, "reason": reason})
    return view(run)
