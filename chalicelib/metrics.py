"""CloudWatch metrics through the Embedded Metric Format: one JSON line on stdout, which
Lambda ships to CloudWatch Logs and CloudWatch turns into metrics. No API call, no
extra IAM permission, no latency. The stack's alarms (deploy/build_resources.py) read
these metrics: namespace ``GachaRefunds``, dimension ``Stage``."""
from __future__ import annotations

import json
import sys
import time

from .domain.reconciliation import DISCREPANCIES

NAMESPACE = "GachaRefunds"

# PollReport field -> metric name
_REPORT_METRICS = {
    "due": "PollDue",
    "changed": "PollChanged",
    "unchanged": "PollUnchanged",
    "resubmitted": "PollResubmitted",
    "errors": "PollErrors",
    "deferred": "PollDeferred",
}
# refund status still reported by WeChat after a query -> metric name
_STUCK_METRICS = {
    "submitted": "StuckSubmitted",
    "processing": "StuckProcessing",
    "abnormal": "StuckAbnormal",
}


_PAYMENT_METRICS = {"due": "PaymentChecksDue", "paid": "PaymentsFoundByQuery", "errors": "PaymentCheckErrors"}


def emit_metrics(report, swept: int | None = None, *, payments=None, stream=None) -> dict | None:
    """Emit one poll run's figures (a ``PollReport`` or its ``to_dict()``).

    Every metric is written on every run, zeros included, so an alarm can tell "nothing
    stuck" from "the poller did not run". Never raises: metrics must not fail the poll.
    """
    try:
        data = report.to_dict() if hasattr(report, "to_dict") else dict(report)
        stuck = data.get("stuck") or {}
        values = {metric: int(data.get(field) or 0) for field, metric in _REPORT_METRICS.items()}
        values.update({metric: int(stuck.get(status) or 0) for status, metric in _STUCK_METRICS.items()})
        if swept is not None:
            values["RestoreSwept"] = int(swept)
        if payments is not None:
            checked = payments.to_dict()
            values.update({metric: int(checked.get(f) or 0) for f, metric in _PAYMENT_METRICS.items()})
        return emit(values, stream=stream)
    except Exception:  # noqa: BLE001 - observability must never break the work it observes
        return None


# events counted where they happen (any function), each with an alarm in the template
WECHAT_CONFIG_ERRORS = "WechatConfigErrors"  # WeChat refused our signature, merchant id or rights
OFFLINE_REFUNDS = "OfflineRefundsOpened"  # a refund must be paid outside WeChat
PAYMENT_ANOMALIES = "PaymentAnomalies"  # a payment we cannot apply (cancelled order, mismatch)
RECON_OVERDUE = "ReconOverdue"  # a day is still unreconciled past its hour (its bill is late, or runs fail)
EXTERNAL_REFUNDS = "ExternalRefundsBooked"  # WeChat refunded without us (merchant platform, WeChat itself)
EVENT_METRICS = (WECHAT_CONFIG_ERRORS, OFFLINE_REFUNDS, PAYMENT_ANOMALIES, RECON_OVERDUE, EXTERNAL_REFUNDS)


# a complaint sweep's report field -> metric name (services/complaint_sync.py)
_COMPLAINT_METRICS = {
    "pages": "ComplaintListPages",
    "new": "ComplaintsNew",
    "updated": "ComplaintsUpdated",
    "followed_up": "ComplaintFollowUps",
    "open_near": "ComplaintsNearDeadline",
    "overdue": "ComplaintsOverdue",
    "tasks_opened": "ComplaintOverdueTasks",
    "errors": "ComplaintSweepErrors",
}


def emit_complaint_sweep(report: dict, *, stream=None) -> dict | None:
    """Emit one complaint sweep's figures, zeros included (an alarm tells "none near a deadline"
    from "the sweep did not run"). Never raises."""
    try:
        return emit({metric: int(report.get(f) or 0) for f, metric in _COMPLAINT_METRICS.items()}, stream=stream)
    except Exception:  # noqa: BLE001 - observability must never break the work it observes
        return None


def all_metrics() -> frozenset[str]:
    """Every metric name this code emits (the template's alarms may use only these)."""
    return frozenset([*_REPORT_METRICS.values(), *_STUCK_METRICS.values(), *_PAYMENT_METRICS.values(),
                      *_COMPLAINT_METRICS.values(),
                      "RestoreSwept", *EVENT_METRICS, *_RECON_METRICS.values(), "ReconLines", "ReconMatched",
                      "ReconDiscrepancies", "ReconFailed", "ReconNotReady", "ReconDeferred", "ReconDurationMs"])


def count(name: str, n: int = 1, *, stream=None) -> dict | None:
    """Count one event of ``name`` (one of ``EVENT_METRICS``)."""
    return emit({name: int(n)}, stream=stream)


def emit(values: dict[str, int], *, units: dict[str, str] | None = None, extra: dict | None = None,
         stream=None) -> dict | None:
    """One EMF line with ``values`` (metric name -> value; Count unless ``units`` says otherwise)
    and ``extra`` properties that are not metrics. Never raises."""
    try:
        from .config import stage

        doc = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Stage"]],
                    "Metrics": [{"Name": name, "Unit": (units or {}).get(name, "Count")} for name in values],
                }],
            },
            "Stage": stage(),
            **(extra or {}),
            **values,
        }
        print(json.dumps(doc, separators=(",", ":")), file=stream or sys.stdout, flush=True)
        return doc
    except Exception:  # noqa: BLE001 - observability must never break the work it observes
        return None



def _recon_metric(cls) -> str:
    """``missing_at_wechat`` -> ``ReconMissingAtWechat``."""
    return "Recon" + "".join(word.capitalize() for word in cls.value.split("_"))


# discrepancy class -> metric name: every class but 一致, so a new class is counted (and alarmed) too
_RECON_METRICS = {cls.value: _recon_metric(cls) for cls in DISCREPANCIES}


def emit_reconciliation(bill_date: str, status: str, figures, *, duration_ms: int | None = None,
                        stream=None) -> dict | None:
    """Emit one reconciliation run's figures (a ``Figures``): lines, matched, each discrepancy
    class, their total (``ReconDiscrepancies``, what the alarm watches), ``ReconFailed`` (1 when
    the run failed or its bill was refused) and the duration. Every metric on every run, zeros
    included. Never raises."""
    try:
        data = figures.to_dict() if hasattr(figures, "to_dict") else dict(figures)
        classes = data.get("classes") or {}
        values = {"ReconLines": int(data.get("lines_read") or 0), "ReconMatched": int(data.get("matched") or 0)}
        values.update({metric: int((classes.get(cls) or {}).get("count") or 0) for cls, metric in _RECON_METRICS.items()})
        values["ReconDiscrepancies"] = sum(values[m] for m in _RECON_METRICS.values())
        values["ReconFailed"] = 1 if status == "failed" else 0
        values["ReconNotReady"] = 1 if status == "not_ready" else 0
        values["ReconDeferred"] = int(data.get("deferred") or 0)
        units = {}
        if duration_ms is not None:
            values["ReconDurationMs"] = int(duration_ms)
            units["ReconDurationMs"] = "Milliseconds"
        return emit(values, units=units, stream=stream, extra={"BillDate": bill_date})
    except Exception:  # noqa: BLE001 - observability must never break the work it observes
        return None