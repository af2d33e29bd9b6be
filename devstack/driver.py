"""Local stand-in for the Lambda event sources `chalice local` does not run: it long-polls
the restoration queue and invokes the SQS handler with real SQS-shaped events (deleting a
message only when the handler returned), and calls the schedule handler on a timer."""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from datetime import datetime, timezone

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


class Driver:
    def __init__(self, handlers, sqs, queue_url: str, queue_arn: str, region: str, poll_interval: float):
        """``handlers`` is the app module: its ``restore`` (SQS) and ``poll`` (schedule) Lambda handlers."""
        self.app, self.sqs, self.queue_url, self.queue_arn, self.region = handlers, sqs, queue_url, queue_arn, region
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.processed = 0
        self.failed = 0

    def start(self) -> "Driver":
        for target, name in ((self._sqs_loop, "sqs-driver"), (self._timer_loop, "poll-timer")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def _sqs_loop(self) -> None:
        while not self._stop.is_set():
            try:
                resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                                                AttributeNames=["All"], MessageAttributeNames=["All"])
            except Exception:  # noqa: BLE001 - endpoint going away at shutdown
                if self._stop.wait(0.5):
                    return
                continue
            for message in resp.get("Messages", []):
                self.deliver(message)

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

    def _timer_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - keep ticking
                log.exception("poll handler failed")
