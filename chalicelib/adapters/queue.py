"""SQS publisher: restoration work, and a reconciliation run's continuation. The restoration
queue's URL comes from config (a Ref in CloudFormation) or is looked up once by name; the
client is built on first use."""
from __future__ import annotations

import json
import threading

from .. import config
from ..log import get_logger

log = get_logger(__name__)
_lock = threading.Lock()
_state: dict = {}


def _client_and_url():
    s = config.settings()
    endpoint = config.aws_endpoint("sqs")
    key = (s.region, endpoint, s.restore_queue_url, s.restore_queue_name)
    with _lock:
        if _state.get("key") != key:
            import boto3

            client = boto3.client("sqs", region_name=s.region, endpoint_url=endpoint)
            url = s.restore_queue_url or client.get_queue_url(QueueName=s.restore_queue_name)["QueueUrl"]
            _state.update(key=key, client=client, url=url)
        return _state["client"], _state["url"]


def publish_restore(refund_no: str, order_no: str) -> bool:
    """Ask the restoration worker to process ``refund_no``. Never raises: a refund that
    could not be enqueued keeps its durable 'restoration pending' marker and the
    sweeper enqueues it again."""
    try:
        client, url = _client_and_url()
        client.send_message(QueueUrl=url, MessageBody=json.dumps({"refund_no": refund_no, "order_no": order_no}))
        return True
    except Exception as exc:  # noqa: BLE001 - any failure leaves the marker for the sweeper
        log.warning("restore enqueue failed; the sweeper will retry",
                    extra={"refund_no": refund_no, "order_no": order_no, "error": type(exc).__name__})
        return False


def publish_reconciliation(bill_date: str, generation: int) -> bool:
    """Ask for a reconciliation run to go on in another invocation (its continuation queue).
    False when there is no such queue or the message could not be sent: the run keeps its
    checkpoint and lease, and the schedule resumes it once the lease lapses."""
    url = config.recon_settings().queue_url
    if not url:
        return False
    try:
        client, _ = _client_and_url()
        client.send_message(QueueUrl=url, MessageBody=json.dumps({"bill_date": bill_date, "generation": generation}))
        return True
    except Exception as exc:  # noqa: BLE001 - the schedule resumes the run
        log.warning("reconciliation continuation not sent", extra={"bill_date": bill_date,
                                                                   "error": type(exc).__name__})
        return False
