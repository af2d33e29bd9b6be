"""What tells a person that something is wrong, and where to look.

* an SNS topic every alarm notifies (with an e-mail subscription when ``AlarmEmail`` is given),
  or a topic the operator already has (``AlarmTopicArn``): an alarm always reaches someone;
* alarms on each function's errors and throttles, the API's 5XX answers and p99 latency, the
  age of the oldest message on every queue (dead-letter and failure queues too), every table's
  throttled requests, and the service's own metrics (refunds stuck or abnormal, the poller, the
  reconciliation, WeChat configuration errors, payments that cannot be applied, refunds made
  without us, consumer complaints near or past their deadline and the complaint sweep);
* every alarm's description names its runbook: a section of docs/deploy.md (``RUNBOOKS``);
* the API stage: throttling, access logs in their own log group, X-Ray tracing (and tracing
  on every function).
"""
from __future__ import annotations

import json
import re

from chalicelib import metrics as emitted

from .project import Function, Project, dlq_logical_id, failure_queue_logical_id, failure_queue_name, \
    index_names, queue_logical_id, sub, table_logical_id

RUNBOOK_DOC = "docs/deploy.md"
# runbook -> the heading of its section in docs/deploy.md ("### <heading>")
RUNBOOKS = {
    "function-errors": "Function errors",
    "function-throttles": "Function throttles",
    "api-5xx": "API 5XX answers",
    "api-latency": "API latency",
    "queue-backlog": "Queue backlog",
    "dead-letters": "Dead letters",
    "failed-runs": "Failed scheduled runs",
    "table-throttles": "DynamoDB throttling",
    "refunds-abnormal": "Refunds abnormal",
    "refunds-stuck": "Refunds stuck processing",
    "poll-errors": "Poll errors",
    "poller-silent": "Poller silent",
    "wechat-config": "WeChat configuration errors",
    "offline-refunds": "Offline refunds",
    "payment-anomalies": "Payment anomalies",
    "recon-discrepancies": "Reconciliation discrepancies",
    "recon-failed": "Reconciliation failed",
    "recon-silent": "Reconciliation silent",
    "recon-overdue": "Reconciliation overdue",
    "external-refunds": "Refunds made without us",
    "complaints-deadline": "Complaints near or past their deadline",
    "complaint-sweep-errors": "Complaint sweep errors",
    "complaint-sweep-silent": "Complaint sweep silent",
}
FIVE_MINUTES = 300
# The oldest message a queue may hold before someone is told (seconds). Restorations drain in
# seconds; a reconciliation's continuation is taken at once; a dead letter or a failed run has its
# own not-empty alarm, and this one says it has waited a day (a DLQ keeps messages 14 days).
QUEUE_AGE_SECONDS = {"source": 15 * 60, "dlq": 24 * 3600, "failures": 24 * 3600}
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "extendedRequestId": "$context.extendedRequestId",
    "ip": "$context.identity.sourceIp", "requestTime": "$context.requestTimeEpoch",
    "method": "$context.httpMethod", "resource": "$context.resourcePath", "status": "$context.status",
    "responseLength": "$context.responseLength", "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integrationLatency", "error": "$context.error.responseType",
    "xrayTraceId": "$context.xrayTraceId",
}, separators=(",", ":"))
# What Lambda needs to send a function's traces (these actions take no resource).
TRACING_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook(key: str) -> str:
    return f"{RUNBOOK_DOC}#{slug(RUNBOOKS[key])}"


def api_name(project: Project) -> str:
    return f"{project.app_name}-{project.stage}"


def alarm_name(project: Project, suffix: str) -> str:
    return f"{project.app_name}-{project.stage}-{suffix}"


def function_key(fn: Function) -> str:
    return fn.handler.replace("_", "-")


def parameters() -> dict:
    return {
        "AlarmEmail": {"Type": "String", "Default": "", "AllowedPattern": "^([^@\\s]+@[^@\\s]+\\.[^@\\s]+)?$",
                       "Description": "E-mail address subscribed to the stack's alarm topic (it must confirm "
                                      "the subscription); empty: subscribe someone later"},
        "AlarmTopicArn": {"Type": "String", "Default": "",
                          "AllowedPattern": "^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+)?$",
                          "Description": "An existing SNS topic for the alarms instead of the stack's own "
                                         "(empty: the stack creates one)"},
        "ApiThrottleRateLimit": {"Type": "Number", "Default": 200, "MinValue": 1,
                                 "Description": "Requests per second the API stage accepts (steady)"},
        "ApiThrottleBurstLimit": {"Type": "Number", "Default": 400, "MinValue": 1,
                                  "Description": "Requests the API stage accepts in a burst"},
        "ApiLatencyP99Ms": {"Type": "Number", "Default": 5000, "MinValue": 100,
                            "Description": "p99 API latency that alarms (WeChat waits 5 s for a notification)"},
        "Api5xxThreshold": {"Type": "Number", "Default": 5, "MinValue": 1,
                            "Description": "API 5XX answers per 5 minutes that alarm"},
        "ApiGatewayCloudWatchRoleArn": {
            "Type": "String", "Default": "",
            "Description": "The account's API Gateway CloudWatch Logs role (aws apigateway get-account), "
                           "needed for access logs; empty: the stack creates one and sets it"},
    }


def conditions() -> dict:
    given = {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    return {
        "HasAlarmTopicArn": given,
        "CreateAlarmTopic": {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]},
        "SubscribeAlarmEmail": {"Fn::And": [{"Condition": "CreateAlarmTopic"},
                                            {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}]},
        "CreateApiGatewayRole": {"Fn::Equals": [{"Ref": "ApiGatewayCloudWatchRoleArn"}, ""]},
    }


def alarm_topic() -> dict:
    """The topic alarms notify: the given one, else the stack's own."""
    return {"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}


def _alarm(project: Project, suffix: str, key: str, what: str, metric: dict, **props) -> dict:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmName": alarm_name(project, suffix),
        "AlarmDescription": f"{what} Runbook: {runbook(key)}",
        **metric, **props,
        "AlarmActions": [alarm_topic()], "OKActions": [alarm_topic()],
        "TreatMissingData": props.get("TreatMissingData", "notBreaching"),
    }}


def _ours(project: Project, name: str, statistic: str) -> dict:
    """A metric the service emits (chalicelib/metrics.py, EMF)."""
    return {"Namespace": emitted.NAMESPACE, "MetricName": name, "Statistic": statistic,
            "Dimensions": [{"Name": "Stage", "Value": project.stage}]}


def _queue_metric(queue_id: str, name: str) -> dict:
    return {"Namespace": "AWS/SQS", "MetricName": name, "Statistic": "Maximum",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]}


def _above(threshold, periods: int = 1, period: int = FIVE_MINUTES, **more) -> dict:
    """At ``threshold`` or above, in ``periods`` periods."""
    return {"Period": period, "EvaluationPeriods": periods, "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", **more}


def _any(period: int = FIVE_MINUTES) -> dict:
    """Any at all in one period."""
    return {"Period": period, "EvaluationPeriods": 1, "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold"}


def function_alarms(project: Project) -> dict:
    out = {}
    for fn in project.functions:
        key = function_key(fn)
        for metric, runbook_key, what in (
                ("Errors", "function-errors", f"{fn.name} failed (an unhandled error or a timeout)."),
                ("Throttles", "function-throttles", f"{fn.name} was throttled (no concurrency left).")):
            out[f"{fn.logical_id}Lambda{metric}Alarm"] = _alarm(
                project, f"{key}-lambda-{metric.lower()}", runbook_key, what,
                {"Namespace": "AWS/Lambda", "MetricName": metric, "Statistic": "Sum",
                 "Dimensions": [{"Name": "FunctionName", "Value": fn.name}]}, **_any())
    return out


def api_alarms(project: Project) -> dict:
    dims = [{"Name": "ApiName", "Value": api_name(project)}, {"Name": "Stage", "Value": project.api_stage}]
    return {
        "Api5xxAlarm": _alarm(
            project, "api-5xx", "api-5xx", "The API answered 5XX (its function failed, timed out or was throttled).",
            {"Namespace": "AWS/ApiGateway", "MetricName": "5XXError", "Statistic": "Sum", "Dimensions": dims},
            **_above({"Ref": "Api5xxThreshold"})),
        "ApiLatencyAlarm": _alarm(
            project, "api-latency-p99", "api-latency",
            "The API's p99 latency is above its threshold (WeChat retries a notification not answered in 5 s).",
            {"Namespace": "AWS/ApiGateway", "MetricName": "Latency", "ExtendedStatistic": "p99", "Dimensions": dims},
            **_above({"Ref": "ApiLatencyP99Ms"}, periods=3, DatapointsToAlarm=2)),
    }


def _held(project: Project, queue_id: str, short: str, key: str, what: str, aged: str, age: int) -> dict:
    """A queue of what failed (dead letters, failed scheduled runs): alarmed as soon as it holds
    anything, and again when its oldest message has waited ``age`` seconds."""
    return {
        f"{queue_id}Alarm": _alarm(project, f"{short}-not-empty", key, what,
                                   _queue_metric(queue_id, "ApproximateNumberOfMessagesVisible"), **_any()),
        f"{queue_id}AgeAlarm": _alarm(project, f"{short}-oldest-message", key, aged,
                                      _queue_metric(queue_id, "ApproximateAgeOfOldestMessage"), **_above(age)),
    }


def queue_alarms(project: Project) -> dict:
    """Every queue's oldest message; dead letters and failed scheduled runs also when not empty."""
    out = {}
    for queue in project.queues():
        short = queue[len(project.stage) + 1:]
        consumer = ", ".join(f.name for f in project.functions if f.queue == queue)
        source = queue_logical_id(project, queue)
        out[f"{source}AgeAlarm"] = _alarm(
            project, f"{short}-oldest-message", "queue-backlog",
            f"Messages wait on {queue}: {consumer} is not taking them (failing, throttled or stopped).",
            _queue_metric(source, "ApproximateAgeOfOldestMessage"),
            **_above(QUEUE_AGE_SECONDS["source"], periods=2))
        out.update(_held(project, dlq_logical_id(project, queue), f"{short}-dlq", "dead-letters",
                         f"Messages in {queue}-dlq: {consumer} failed on them 5 times.",
                         f"A message has waited a day in {queue}-dlq (it is lost after 14).",
                         QUEUE_AGE_SECONDS["dlq"]))
    for fn in project.functions:
        if fn.scheduled:
            name = failure_queue_name(project, fn)
            out.update(_held(project, failure_queue_logical_id(fn), name[len(project.stage) + 1:], "failed-runs",
                             f"A scheduled run of {fn.name} failed (error or timeout): its event is in {name}.",
                             f"A failed scheduled run of {fn.name} has waited a day in {name} (it is lost after 14).",
                             QUEUE_AGE_SECONDS["failures"]))
    return out


def table_alarms(project: Project) -> dict:
    """Throttled reads or writes on a table or on any of its indexes (a GSI that cannot keep up
    throttles the table's writes)."""
    out = {}
    for model, name in project.tables:
        def stat(metric_id: str, metric: str, index: str | None = None) -> dict:
            dims = [{"Name": "TableName", "Value": name}]
            if index:
                dims.append({"Name": "GlobalSecondaryIndexName", "Value": index})
            return {"Id": metric_id, "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": "AWS/DynamoDB", "MetricName": metric, "Dimensions": dims},
                "Period": FIVE_MINUTES, "Stat": "Sum"}}

        metrics = [stat("reads", "ReadThrottleEvents"), stat("writes", "WriteThrottleEvents")]
        metrics += [stat(f"index{n}", "WriteThrottleEvents", index) for n, index in enumerate(index_names(model))]
        ids = ",".join(m["Id"] for m in metrics)
        metrics.append({"Id": "throttled", "Label": f"{name} throttled requests", "ReturnData": True,
                        "Expression": f"SUM([{ids}])"})
        base = model.Meta.base_name
        out[f"{table_logical_id(model)}ThrottleAlarm"] = _alarm(
            project, f"{base.replace('_', '-')}-throttled", "table-throttles",
            f"DynamoDB throttled requests on {name} (a hot partition, or a burst past on-demand capacity).",
            {"Metrics": metrics}, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold")
    return out


def service_alarms(project: Project) -> dict:
    """The service's own metrics (chalicelib/metrics.py)."""
    out = {
        "StuckAbnormalAlarm": _alarm(
            project, "refunds-abnormal", "refunds-abnormal",
            "Refunds WeChat reports ABNORMAL (the card or account cannot receive the money): they need a person.",
            _ours(project, "StuckAbnormal", "Maximum"), **_any(3600)),
        "StuckProcessingAlarm": _alarm(
            project, "refunds-stuck-processing", "refunds-stuck",
            "Many refunds stay PROCESSING at WeChat after being queried for an hour.",
            _ours(project, "StuckProcessing", "Maximum"), **_above({"Ref": "StuckProcessingThreshold"},
                                                                   periods=4, period=900)),
        "PollErrorsAlarm": _alarm(
            project, "poll-errors", "poll-errors",
            "The poller keeps failing to query WeChat Pay (network, credentials or rate limits).",
            _ours(project, "PollErrors", "Sum"), **_above({"Ref": "PollErrorsThreshold"}, periods=3, period=600,
                                                         DatapointsToAlarm=2)),
        "ReconDiscrepanciesAlarm": _alarm(
            project, "recon-discrepancies", "recon-discrepancies",
            "The reconciliation found discrepancies between our books and WeChat Pay's bill.",
            _ours(project, "ReconDiscrepancies", "Sum"), **_any(86400)),
        "ReconFailedAlarm": _alarm(
            project, "recon-failed", "recon-failed",
            "A reconciliation run failed (bill refused, hash mismatch, or an error).",
            _ours(project, "ReconFailed", "Sum"), **_any(3600)),
        "ReconSilentAlarm": _alarm(
            project, "recon-silent", "recon-silent",
            "No reconciliation ran for a day: the daily schedule is failing or not running.",
            _ours(project, "ReconLines", "SampleCount"), Period=86400, EvaluationPeriods=1, Threshold=1,
            ComparisonOperator="LessThanThreshold", TreatMissingData="breaching"),
        "PollerSilentAlarm": _alarm(
            project, "poller-silent", "poller-silent",
            "The scheduled poller reported nothing: it is failing or not running, so overdue refunds wait.",
            _ours(project, "PollDue", "SampleCount"), Period=max(900, project.poll_minutes * 60 * 5),
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold", TreatMissingData="breaching"),
    }
    for name, key, what in (
            (emitted.WECHAT_CONFIG_ERRORS, "wechat-config",
             "WeChat Pay refused our signature, merchant id or permissions: refunds are held (amount reserved)."),
            (emitted.OFFLINE_REFUNDS, "offline-refunds",
             "A refund must be paid outside WeChat (the player's account cannot receive, or WeChat returned "
             "it to the merchant's card)."),
            (emitted.PAYMENT_ANOMALIES, "payment-anomalies",
             "A payment could not be applied (cancelled or unknown order, amount or merchant mismatch, a "
             "second payment)."),
            (emitted.RECON_OVERDUE, "recon-overdue",
             "A day is still unreconciled past RECON_OVERDUE_HOUR (Beijing): WeChat's bill is late or the runs "
             "fail. The schedule keeps asking every 30 minutes."),
            (emitted.EXTERNAL_REFUNDS, "external-refunds",
             "WeChat refunded money we did not send (merchant platform, or WeChat itself after an overdue "
             "complaint): it is booked against its order; confirm the 微信侧退款待确认 task.")):
        out[f"{name}Alarm"] = _alarm(project, re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower(), key, what,
                                     _ours(project, name, "Sum"), **_any())
    return out


def complaint_alarms(project: Project) -> dict:
    """投诉: complaints near or past WeChat's deadlines (past 72 h WeChat may refund the player from
    the merchant's money), a failing sweep, and a sweep that stopped running."""
    sweep = next((f for f in project.functions if f.handler == "complaints_sweep"), None)
    if sweep is None:
        return {}
    period = max(FIVE_MINUTES, sweep.every_minutes * 60)
    out = {}
    for name, metric, what in (
            ("ComplaintsOverdueAlarm", "ComplaintsOverdue",
             "Consumer complaints past their first-reply (24 h) or resolution (72 h) deadline: see the 投诉 page "
             "and the 投诉处理超时 tasks; WeChat may refund the player from the merchant's money."),
            ("ComplaintsNearDeadlineAlarm", "ComplaintsNearDeadline",
             "Consumer complaints close to their deadline: answer them on the 投诉 page.")):
        out[name] = _alarm(project, re.sub(r"(?<!^)(?=[A-Z])", "-", metric).lower(), "complaints-deadline", what,
                           _ours(project, metric, "Maximum"), **_any(period))
    out["ComplaintSweepErrorsAlarm"] = _alarm(
        project, "complaint-sweep-errors", "complaint-sweep-errors",
        "The complaint sweep keeps failing (WeChat Pay unreachable, credentials, or a complaint it cannot "
        "store): complaints may go unseen.",
        _ours(project, "ComplaintSweepErrors", "Sum"), **_above(1, periods=3, period=period, DatapointsToAlarm=2))
    out["ComplaintSweepSilentAlarm"] = _alarm(
        project, "complaint-sweep-silent", "complaint-sweep-silent",
        "The complaint sweep reported nothing: it is failing or not running, so complaints whose notification "
        "was lost are not seen and deadlines are not watched.",
        _ours(project, "ComplaintListPages", "SampleCount"), Period=max(900, sweep.every_minutes * 60 * 5),
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold", TreatMissingData="breaching")
    return out


def alarms(project: Project) -> dict:
    out: dict = {}
    for group in (function_alarms, api_alarms, queue_alarms, table_alarms, service_alarms, complaint_alarms):
        made = group(project)
        clash = sorted(set(made) & set(out))
        if clash:
            raise SystemExit(f"alarm resources named twice: {clash}")
        out.update(made)
    return out


def resources(project: Project) -> dict:
    """The topic, the alarms, the API stage's settings and the functions' tracing (merged into
    the resources Chalice generates)."""
    tags = [{"Key": "app", "Value": project.app_name}, {"Key": "stage", "Value": project.stage}]
    out: dict = {
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Condition": "CreateAlarmTopic", "Properties": {
            "TopicName": alarm_name(project, "alarms"), "DisplayName": f"{project.app_name} {project.stage}",
            "Tags": tags}},
        "AlarmTopicEmail": {"Type": "AWS::SNS::Subscription", "Condition": "SubscribeAlarmEmail", "Properties": {
            "TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}},
        "ApiAccessLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": f"/aws/apigateway/{api_name(project)}/access",
            "RetentionInDays": {"Ref": "LogRetentionDays"}}},
        # API Gateway writes access logs with the account's CloudWatch role (one per account and
        # region). Kept when the stack goes: other APIs of the account may log through it.
        "ApiGatewayCloudWatchRole": {
            "Type": "AWS::IAM::Role", "Condition": "CreateApiGatewayRole",
            "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]},
                "ManagedPolicyArns": [sub("arn:${AWS::Partition}:iam::aws:policy/service-role/"
                                          "AmazonAPIGatewayPushToCloudWatchLogs")]}},
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": {"CloudWatchRoleArn": {"Fn::If": [
                "CreateApiGatewayRole", {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]},
                {"Ref": "ApiGatewayCloudWatchRoleArn"}]}}},
        "RestAPI": {"DependsOn": ["ApiGatewayAccount"], "Properties": {
            "Name": api_name(project),
            "TracingEnabled": True,
            "MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*",
                                "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
                                "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"}}],
            "AccessLogSetting": {"DestinationArn": {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]},
                                 "Format": ACCESS_LOG_FORMAT}}},
    }
    for fn in project.functions:
        out[fn.logical_id] = {"Properties": {"Tracing": "Active"}}
    out.update(alarms(project))
    return out


def outputs() -> dict:
    return {"AlarmTopic": {"Description": "The SNS topic every alarm notifies: subscribe people to it",
                           "Value": alarm_topic()}}


def tracing_statement() -> dict:
    return {"Sid": "Tracing", "Effect": "Allow", "Action": TRACING_ACTIONS, "Resource": "*"}
