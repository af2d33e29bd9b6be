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
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from .. import config
from ..adapters import reconciliations as store
from ..adapters import repository as repo
from ..adapters.models import ReconDiscrepancy, ReconRun, Refund
from ..domain import reconciliation as recon_rules
from ..domain import clock
from ..domain.enums import ReconClass, ReconStatus, RefundStatus, TaskType
from ..domain.errors import BillRefused, ErrorCode, OutcomeMismatch, UpstreamUnavailable, conflict
from ..domain.reconciliation import Figures, Finding
from ..domain.refunds import Outcome
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

    Raises ``BillRefused`` (nothing recorded) when the download fails its hash check,
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
        bill = _download(gateway, bill_date)
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
    """The scheduled run: the previous Beijing day; the day before again when it held back
    successes near midnight (its next day's bill is out now); and any run whose worker
    stopped (lease lapsed) is resumed."""
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
    wanted = [yesterday]
    prior = known.get(before)
    if prior is not None and prior.status == ReconStatus.DONE.value and (prior.figures or {}).get("deferred"):
        wanted.append(before)
    for bill_date in wanted:
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
        raise BillRefused("微信账单的 SHA1 与下载内容不一致，已拒绝，未记录任何结果",
                          details={"wechat_code": exc.code}) from None
    except Rejected as exc:
        if exc.code == "INVALID_REQUEST":  # a date WeChat does not serve (yet): a future day
            return _NOT_READY
        raise UpstreamUnavailable(f"微信拒绝了账单请求：{exc.code}", details={"wechat_code": exc.code}) from None
    except WechatError as exc:
        raise UpstreamUnavailable("暂时无法从微信获取账单，请稍后重试", details={"wechat_code": exc.code}) from None


def _adjacent_lines(gateway, bill_date: str, wanted: set[tuple[str, str]]):
    """Which of ``wanted`` (("refund", out_refund_no) or ("payment", out_trade_no)) the bill
    of ``bill_date`` has as a successful refund or payment; None when that bill is not out yet."""
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
                if key in wanted and item.refund_status == "SUCCESS":
                    found.add(key)
            elif ("payment", item.out_trade_no) in wanted:
                found.add(("payment", item.out_trade_no))
    return found


# ---------------------------------------------------------------- one run


def _lease_until(now: datetime) -> str:
    """How long the worker that writes this holds the run."""
    return clock.iso(now + timedelta(seconds=config.recon_settings().lease_seconds))


def _new_run(bill_date: str, generation: int, actor: str, now: datetime, status: ReconStatus) -> ReconRun:
    return ReconRun(bill_date, "RUN", status=status.value, generation=generation, started_by=actor,
                    started_at=clock.iso(now), lease_until=_lease_until(now), figures=Figures().to_dict(),
                    checkpoint={"offset": 0}, updated_at=clock.iso(now))


def _claim(run: ReconRun, existing: ReconRun | None) -> None:
    if not store.put_run(run, expected_generation=existing.generation if existing is not None else None):
        raise conflict(ErrorCode.RECONCILIATION_RUNNING, "该日期的对账刚被另一处启动，请稍后查看结果",
                       bill_date=run.bill_date)


class _Run:
    """The state of one invocation working on one run."""

    def __init__(self, run: ReconRun, figures: Figures, gateway):
        self.run, self.figures, self.gateway = run, figures, gateway
        self.bill_date, self.generation = run.bill_date, run.generation
        self.expected: dict[str, tuple] = {}  # refund_no -> (amount, order_no, success_time, success_actor)
        self.expected_payments: dict[str, tuple] = {}  # order_no -> (status, actual_amount, paid_at)
        self.indexed_amount = self.indexed_count = 0
        self.indexed_payments = self.indexed_payment_count = 0

    # ---- our side
    def load_index(self) -> None:
        """Our refunds that succeeded and our payments recorded on the day (the two day indexes)."""
        for r in store.successes_on(self.bill_date):
            self.expected[r.refund_no] = (r.amount, r.order_no, r.success_time, r.success_actor)
            self.indexed_amount += r.amount
            self.indexed_count += 1
        for p in store.payments_on(self.bill_date):
            self.expected_payments[p.order_no] = (p.status, p.actual_amount, p.paid_at)
            if p.status in recon_rules.PAID_STATUSES:
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
    def known(self, line) -> bool:
        """Class a line from the day indexes alone, if they have its refund or payment."""
        if not line.is_refund:
            paid = self.expected_payments.pop(line.out_trade_no, None)
            if paid is None:
                return False
            status, amount, _paid_at = paid
            self.record(recon_rules.compare_payment(line, store.OrderBrief(status, amount)))
            return True
        entry = self.expected.pop(line.out_refund_no, None)
        if entry is None:
            return False
        amount, order_no, _time, actor = entry
        self.record(recon_rules.compare_known_success(line, amount, order_no, actor))
        return True

    def flush(self, pending: list, found: tuple[dict, dict]) -> None:
        """Class a batch of lines with our records read for them (``read``)."""
        orders, refunds = found
        for line in pending:
            if line.is_refund:
                refund = refunds.get(line.out_refund_no)
                finding = recon_rules.compare_refund(line, refund)
                if finding.apply_success:
                    finding = self.apply_success(line, refund, finding)
                if refund is not None and refund.status == RefundStatus.SUCCESS.value:
                    self.figures.ours["refunds"] += refund.amount
                    self.figures.ours["refund_count"] += 1
            else:
                order = orders.get(line.out_trade_no)
                finding = recon_rules.compare_payment(line, order)
                if order is not None and order.status in recon_rules.PAID_STATUSES:
                    self.figures.ours["payments"] += order.actual_amount
                    self.figures.ours["payment_count"] += 1
            self.record(finding)

    def apply_success(self, line, refund: Refund, finding: Finding) -> Finding:
        """The bill says SUCCESS for a refund we still await: the normal transition records it."""
        from . import transitions

        outcome = Outcome(status=RefundStatus.SUCCESS, wechat_refund_id=line.refund_id or None,
                          success_time=recon_rules.bill_time_iso(line.trade_time), amount=line.refund_requested,
                          detail=f"对账单 {self.bill_date}：微信退款成功")
        try:
            transitions.apply_outcome(refund, outcome, actor=recon_rules.ACTOR)
        except (OutcomeMismatch, transitions.StaleState) as err:
            log.warning("reconciliation could not apply the bill's success",
                        extra={"refund_no": refund.refund_no, "error": type(err).__name__})
            return Finding(**{**finding.__dict__, "apply_success": False,
                              "note": "微信退款成功，本地未能更新状态：请人工核对"})
        self.figures.applied += 1
        return finding

    def record(self, finding: Finding) -> None:
        self.figures.add(finding)
        if finding.cls == C.MATCHED:
            return
        now = clock.iso(clock.now())
        task = Task(TaskType.RECON_DISCREPANCY, f"{self.bill_date}.{finding.cls.value}", part=finding.subject,
                    order_no=finding.order_no, refund_no=finding.refund_no,
                    action=f"对账 {self.bill_date}：{finding.cls.label}。{finding.note or ''}")
        repo.write([repo.open_task(task, now=now, by=recon_rules.ACTOR)])
        tid = task.task_id
        store.put_discrepancy(ReconDiscrepancy(
            self.bill_date, store.discrepancy_sk(self.generation, finding.cls.value, finding.subject),
            generation=self.generation, cls=finding.cls.value, kind=finding.kind, order_no=finding.order_no,
            refund_no=finding.refund_no, ours_amount=finding.ours_amount, theirs_amount=finding.theirs_amount,
            ours_status=finding.ours_status, theirs_status=finding.theirs_status, line_no=finding.line_no,
            note=finding.note, task_id=tid, found_at=now))
        log.warning("reconciliation discrepancy", extra={"bill_date": self.bill_date, "class": finding.cls.value,
                                                         "order_no": finding.order_no, "refund_no": finding.refund_no})

    # ---- our successes and payments the bill lacks
    def settle_missing(self) -> None:
        """What the day indexes hold and no line named: matched on the adjacent day's bill
        when it lies near midnight and WeChat billed it there, held back (``deferred``) when
        that bill is not out yet, else missing at WeChat."""
        left = [("payment", no, amount, no, paid_at, status)
                for no, (status, amount, paid_at) in self.expected_payments.items()]
        left += [("refund", no, amount, order_no, when, None)
                 for no, (amount, order_no, when, _actor) in self.expected.items()]
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
                self.record(recon_rules.missing_at_wechat(no, order_no, amount, when))
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
                work.consume(item)
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
    store.update_run(run.bill_date, run.generation, done)
    for k, v in done.items():
        setattr(run, k, v)
    metrics.emit_reconciliation(run.bill_date, ReconStatus.DONE.value, figures, duration_ms=done["duration_ms"])
    log.info("reconciliation done", extra={"lines": figures.lines_read, "matched": figures.matched,
                                           "discrepancies": figures.discrepancies, "ms": done["duration_ms"]})
    return view(run)


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
    store.update_run(run.bill_date, run.generation, fields)
    for k, v in fields.items():
        setattr(run, k, v)
    metrics.emit_reconciliation(run.bill_date, ReconStatus.FAILED.value, figures or Figures())
    log.error("reconciliation failed", extra={"bill_date": run.bill_date, "reason": reason})
    return view(run)
