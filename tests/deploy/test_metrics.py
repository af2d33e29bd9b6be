"""chalicelib.metrics: one CloudWatch Embedded Metric Format line per poll or reconciliation run."""
from __future__ import annotations

import io
import json

from chalicelib import metrics
from chalicelib.domain.enums import ReconClass
from chalicelib.domain.reconciliation import Figures, Finding
from chalicelib.services.poller import PollReport


def test_emits_one_emf_line_with_every_metric(monkeypatch):
    monkeypatch.setenv("STAGE", "prod")
    out = io.StringIO()
    report = PollReport(due=4, changed=1, unchanged=2, errors=1, stuck={"processing": 2})
    metrics.emit_metrics(report, swept=3, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "GachaRefunds" and directive["Dimensions"] == [["Stage"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"PollDue", "PollErrors", "StuckProcessing", "StuckAbnormal", "RestoreSwept"} <= names
    assert all(name in doc for name in names)  # every declared metric has its value
    assert doc["Stage"] == "prod"
    assert (doc["PollDue"], doc["PollErrors"], doc["StuckProcessing"], doc["StuckAbnormal"]) == (4, 1, 2, 0)
    assert isinstance(doc["_aws"]["Timestamp"], int)


def test_accepts_the_report_dict_and_never_raises():
    out = io.StringIO()
    assert metrics.emit_metrics({"due": 0}, stream=out)["PollDue"] == 0
    assert metrics.emit_metrics(object(), stream=out) is None



def test_the_discrepancy_alarm_watches_the_sum_of_every_discrepancy_class(built):
    """tests/unit/test_one_source.py: every class but 一致 counts in ReconDiscrepancies."""
    alarms = [a["Properties"] for a in built["template"]["Resources"].values() if a["Type"] == "AWS::CloudWatch::Alarm"]
    [alarm] = [a for a in alarms if a.get("MetricName") == "ReconDiscrepancies"]
    assert alarm["Namespace"] == metrics.NAMESPACE and alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    figures = Figures()
    for cls in ReconClass:
        figures.add(Finding(cls, kind="refund", order_no="GB1", refund_no="RF1", ours_amount=500))
    doc = metrics.emit_reconciliation("2026-05-01", "done", figures, stream=io.StringIO())
    assert doc["ReconDiscrepancies"] == len(ReconClass) - 1 == figures.discrepancies
