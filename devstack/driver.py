"""Local stand-in for the Lambda event sources `chalice local` does not run: it long-polls
the restoration queue and the reconciliation's continuation queue and invokes their SQS
handlers with real SQS-shaped events (deleting a message only when the handler returned),
calls the poll schedule on a timer, the daily reconciliation at its cron time (UTC), and the
complaint sweep at once (it registers the complaint notify URL) and then on its own timer."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

log = logging.getLogger("devstack.driver")


class LambdaContext:
    def __init__(self, name: str, timeout_s: int = 30):
        self.function_name = name
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(message: dict, queue_arn: str, region: str) -> dict:
    """The event Lambda's SQS integration builds from one received message."""
    return {"Records": [{
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }]}


def schedule_event(region: str) -> dict:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": [], "detail": {}}


RECON_TIMEOUT_SECONDS = 900  # the reconciliation functions' Lambda timeout (deploy/build_resources.py)
COMPLAINT_SWEEP_TIMEOUT_SECONDS = 300  # the complaint sweep's (.chalice/config.json)


def _values(field, limit: int) -> list[int]:
    """The values of one cron field as EventBridge reads them: ``N``, ``A-B``, ``N/S`` or ``A-B/S``."""
    text = str(field)
    spec, _, step = text.partition("/")
    first, _, last = spec.partition("-")
    start = int(first)
    end = int(last) if last else (limit - 1 if step else start)
    return list(range(start, end + 1, int(step) if step else 1))


def next_daily(now: datetime, cron) -> datetime:
    """The next time after ``now`` a daily cron (``cron.hours`` and ``cron.minutes``, UTC, each a
    value, a range or a step) fires."""
    now = now.astimezone(timezone.utc)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for offset in (0, 1):
        for hour in _values(cron.hours, 24):
            for minute in _values(cron.minutes, 60):
                at = day + timedelta(days=offset, hours=hour, minutes=minute)
                if at > now:
                    return at
    raise ValueError(f"cron {cron.minutes} {cron.hours} never fires")  # pragma: no cover


class Driver:
    def __init__(self, handlers, sqs, queue_url: str, queue_arn: str, region: str, poll_interval: float,
                 recon_queue: tuple[str, str] | None = None, daily=None, complaint_interval: float | None = None):
        """``handlers`` is the app module: its ``restore`` (SQS) and ``poll`` (schedule) Lambda
        handlers, and with ``recon_queue`` (url, arn) and ``daily`` (the app's ``RECON_CRON``)
        its ``reconcile_continue`` (SQS) and ``reconcile`` (schedule) handlers."""
        self.app, self.sqs, self.queue_url, self.queue_arn, self.region = handlers, sqs, queue_url, queue_arn, region
        self.poll_interval = poll_interval
        self.recon_queue, self.daily = recon_queue, daily
        self.complaint_interval = complaint_interval  # the complaint sweep's timer (None: not driven)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.processed = 0
        self.failed = 0

    def start(self) -> "Driver":
        loops = [(self._sqs_loop, "sqs-driver"), (self._timer_loop, "poll-timer")]
        if self.recon_queue:
            loops.append((self._recon_loop, "recon-driver"))
        if self.daily is not None:
            loops.append((self._daily_loop, "recon-daily"))
        if self.complaint_interval:
            loops.append((self._complaint_loop, "complaint-sweep"))
        for target, name in loops:
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def _sqs_loop(self) -> None:
        self._consume(self.queue_url, self.deliver)

    def _consume(self, url: str, deliver) -> None:
        """Long-poll ``url`` one message at a time (as an event source with batch size 1) until stopped."""
        while not self._stop.is_set():
            try:
                resp = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                                                AttributeNames=["All"], MessageAttributeNames=["All"])
            except Exception:  # noqa: BLE001 - endpoint going away at shutdown
                if self._stop.wait(0.5):
                    return
                continue
            for message in resp.get("Messages", []):
                deliver(message)

    def deliver(self, message: dict) -> bool:
        try:
            self.app.restore(sqs_event(message, self.queue_arn, self.region), LambdaContext("restore"))
        except Exception:  # noqa: BLE001 - like Lambda: the message becomes visible again, then goes to the DLQ
            self.failed += 1
            log.warning("restore handler failed; message left for redelivery", exc_info=True)
            return False
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.processed += 1
        return True

    def tick(self):
        return self.app.poll(schedule_event(self.region), LambdaContext("poll"))

    # ---- reconciliation
    def deliver_reconciliation(self, message: dict) -> bool:
        """One continuation message to ``reconcile_continue``; deleted when the handler returned."""
        url, arn = self.recon_queue
        try:
            self.app.reconcile_continue(sqs_event(message, arn, self.region),
                                        LambdaContext("reconcile_continue", RECON_TIMEOUT_SECONDS))
        except Exception:  # noqa: BLE001 - like Lambda: visible again after the timeout, then the DLQ
            log.warning("reconciliation continuation failed; message left for redelivery", exc_info=True)
            return False
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return True

    def reconcile_daily(self):
        return self.app.reconcile(schedule_event(self.region), LambdaContext("reconcile", RECON_TIMEOUT_SECONDS))

    def _recon_loop(self) -> None:
        self._consume(self.recon_queue[0], self.deliver_reconciliation)

    def _daily_loop(self) -> None:
        while True:
            now = datetime.now(timezone.utc)
            if self._stop.wait((next_daily(now, self.daily) - now).total_seconds()):
                return
            try:
                self.reconcile_daily()
            except Exception:  # noqa: BLE001 - tomorrow's run goes on; the run records its own failure
                log.exception("daily reconciliation failed")

    def sweep_complaints(self):
        return self.app.complaints_sweep(schedule_event(self.region),
                                         LambdaContext("complaints_sweep", COMPLAINT_SWEEP_TIMEOUT_SECONDS))

    def _complaint_loop(self) -> None:
        while True:
            try:
                self.sweep_complaints()
            except Exception:  # noqa: BLE001 - keep sweeping; the sweep counts its own errors
                log.exception("complaint sweep failed")
            if self._stop.wait(self.complaint_interval):
                return

    def _timer_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - keep ticking
                log.exception("poll handler failed")
