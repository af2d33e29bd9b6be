"""Generate the CloudFormation that Chalice does not, from the code itself.

Chalice generates the functions, the API, the schedule and the SQS event source
mapping. Everything else the service needs in AWS is derived here from the code,
so code and infrastructure cannot drift:

* one DynamoDB table per pynamodb model (``chalicelib.adapters.models``): key schema,
  GSIs and their projections, TTL (``models.TTL_ATTRIBUTES``), point-in-time recovery
  on the tables that hold money, PAY_PER_REQUEST billing;
* the SQS queue (and its dead-letter queue) of every ``@app.on_sqs_message`` handler,
  with a visibility timeout of 6x that function's Lambda timeout;
* the functions' physical names, log groups, environment (queue URL from its Ref,
  WeChat Pay settings from template Parameters, secrets as SSM parameter names);
* the CloudWatch alarms (dead-letter queue depth, refunds stuck, poller errors/silence);
* the IAM policy, written to ``.chalice/policy-<stage>.json``: Chalice embeds that file
  in every function's role, and its ARNs use ``Fn::Sub`` so they name the exact tables,
  indexes, queues, parameters and log groups of the stack's account and region.

Usage::

    python -m deploy.build_resources --stage prod          # write both files
    python -m deploy.build_resources --stage prod --check  # fail if the policy file is stale
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "deploy" / "out"

# Tables whose loss would lose money or entitlements: point-in-time recovery on.
# users is included because it holds the points balance that refunds restore.
MONEY_TABLES = frozenset({
    "orders", "payment_refunds", "user_points_ledger", "user_coupons", "user_inventory",
    "manual_tasks", "users",
})

# SQS: how often a message is tried before it moves to the dead-letter queue, and the
# visibility timeout as a multiple of the consuming function's timeout (AWS's advice).
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT_FACTOR = 6
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the maximum; longer than the source queue's

# DynamoDB actions the code performs at runtime (pynamodb calls are invisible to Chalice's
# policy generator). Transactions are authorized per item: TransactWriteItems needs the
# Put/Update/ConditionCheck actions, TransactGetItems needs GetItem. Nothing deletes or
# scans, and BatchWriteItem is only used to seed local data.
DYNAMODB_ITEM_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
]
DYNAMODB_INDEX_ACTIONS = ["dynamodb:Query"]  # every Query goes through a GSI
SQS_SEND_ACTIONS = ["sqs:GetQueueUrl", "sqs:SendMessage"]
# What the Lambda event source mapping does with the function's role.
SQS_CONSUME_ACTIONS = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]

# Secrets, read at runtime from SSM Parameter Store (SecureString) through ``<NAME>_PARAM``
# (chalicelib.config.secret). Parameter names: /<app>/<stage>/<suffix>.
SECRETS = {
    "WECHAT_PRIVATE_KEY": "wechat/private-key",
    "WECHAT_APIV3_KEY": "wechat/apiv3-key",
    "WECHAT_PUBLIC_KEY": "wechat/public-key",
    "ADMIN_JWT_SECRET": "jwt/admin-secret",
    "USER_JWT_SECRET": "jwt/user-secret",
}

# Non-secret WeChat Pay settings: template Parameters -> environment variables.
WECHAT_PARAMETERS = {
    "WechatMchId": ("WECHAT_MCHID", {
        "Description": "WeChat Pay merchant id (mchid)", "AllowedPattern": "^[0-9]+$"}),
    "WechatAppId": ("WECHAT_APPID", {
        "Description": "AppID bound to the merchant", "AllowedPattern": "^wx[0-9A-Za-z]+$"}),
    "WechatCertSerialNo": ("WECHAT_CERT_SERIAL_NO", {
        "Description": "Serial number of the merchant API certificate",
        "AllowedPattern": "^[0-9A-Fa-f]+$"}),
    "WechatPublicKeyId": ("WECHAT_PUBLIC_KEY_ID", {
        "Description": "WeChat Pay public key id (PUB_KEY_ID_...); empty for platform-certificate mode",
        "Default": "", "AllowedPattern": "^(PUB_KEY_ID_[0-9A-Za-z_]+)?$"}),
}
NOTIFY_ROUTES = {  # env var -> route the app must serve
    "WECHAT_REFUND_NOTIFY_URL": "/api/pay/wechat/notify/refund",
    "WECHAT_PAYMENT_NOTIFY_URL": "/api/pay/wechat/notify/payment",
}

METRICS_NAMESPACE = "GachaRefunds"  # chalicelib.metrics
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653]


def cfn_name(name: str) -> str:
    from chalice.utils import to_cfn_resource_name

    return to_cfn_resource_name(name)


def sub(text: str) -> dict:
    return {"Fn::Sub": text}


ARN = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"


@dataclass
class Function:
    handler: str  # Chalice's name for it: "api_handler", "restore", "poll"
    logical_id: str  # the resource chalice package generates
    role_id: str
    name: str  # physical name set through the merge template
    timeout: int
    queue: str | None = None  # the SQS queue it consumes, if any

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"

    @property
    def log_group_id(self) -> str:
        return f"{self.logical_id}LogGroup"


@dataclass
class Project:
    app_name: str
    stage: str
    api_stage: str
    env: dict
    functions: list[Function]
    routes: set[str]
    poll_minutes: int
    tables: list = field(default_factory=list)  # [(model, table name)]

    @property
    def ssm_prefix(self) -> str:
        return f"/{self.app_name}/{self.stage}/"

    def secret_param(self, secret: str) -> str:
        return self.ssm_prefix + SECRETS[secret]

    def queues(self) -> list[str]:
        return sorted({f.queue for f in self.functions if f.queue})


def load_project(stage: str) -> Project:
    """Read the Chalice config and app for ``stage`` (this sets the stage's env vars in
    this process, as Lambda would: run it in its own process)."""
    from chalice.app import ScheduledEventConfig, SQSEventConfig
    from chalice.cli.factory import CLIFactory

    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-east-1")
    factory = CLIFactory(str(ROOT), environ=os.environ)
    if stage not in (factory.load_project_config().get("stages") or {}):
        raise SystemExit(f"stage {stage!r} is not defined in .chalice/config.json")
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = config.chalice_app
    env = dict(config.environment_variables)
    app_name = config.app_name

    def timeout(handler: str) -> int:
        return int(config.scope(stage, handler).lambda_timeout or 60)

    functions: list[Function] = []
    if app.routes:
        functions.append(Function("api_handler", "APIHandler", cfn_name("api_handler_role"),
                                  f"{app_name}-{stage}", timeout("api_handler")))
    poll_minutes = 0
    for source in app.event_sources:
        fn = Function(source.name, cfn_name(source.name), cfn_name(source.name + "_role"),
                      f"{app_name}-{stage}-{source.name}", timeout(source.name))
        if isinstance(source, SQSEventConfig):
            if not source.queue:
                raise SystemExit(f"{source.name}: queues given by ARN are not created by this stack")
            fn.queue = source.queue
        elif isinstance(source, ScheduledEventConfig):
            expr = source.schedule_expression
            minutes = {"MINUTES": 1, "HOURS": 60, "DAYS": 1440}.get(str(getattr(expr, "unit", "")).upper())
            if minutes:
                poll_minutes = max(poll_minutes, int(expr.value) * minutes)
        else:
            raise SystemExit(f"{source.name}: {type(source).__name__} is not handled by deploy/build_resources.py")
        functions.append(fn)
    for pure in app.pure_lambda_functions:
        functions.append(Function(pure.name, cfn_name(pure.name), cfn_name(pure.name + "_role"),
                                  f"{app_name}-{stage}-{pure.name}", timeout(pure.name)))

    from chalicelib.adapters import models

    prefix = env.get("TABLE_PREFIX", f"{stage}-")
    if prefix != f"{stage}-":
        raise SystemExit(f"TABLE_PREFIX for stage {stage} must be {stage}-, not {prefix!r}")
    tables = [(m, f"{prefix}{m.Meta.base_name}") for m in models.ALL_MODELS]
    unknown = MONEY_TABLES - {m.Meta.base_name for m in models.ALL_MODELS}
    if unknown:
        raise SystemExit(f"MONEY_TABLES names tables no model declares: {sorted(unknown)}")
    return Project(app_name=app_name, stage=stage, api_stage=config.api_gateway_stage or "api", env=env,
                   functions=functions, routes=set(app.routes), poll_minutes=poll_minutes or 5,
                   tables=tables)


# ---------------------------------------------------------------- DynamoDB


def table_logical_id(model) -> str:
    return cfn_name(model.Meta.base_name) + "Table"


def _key_schema(keys: list[dict]) -> list[dict]:
    """HASH first, then RANGE (CloudFormation requires the order; pynamodb does not keep it)."""
    ordered = sorted(keys, key=lambda k: 0 if k["KeyType"] == "HASH" else 1)
    return [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in ordered]


def _projection(projection: dict) -> dict:
    out = {"ProjectionType": projection["ProjectionType"]}
    if projection.get("NonKeyAttributes"):
        out["NonKeyAttributes"] = sorted(projection["NonKeyAttributes"])
    return out


def table_resource(project: Project, model, name: str) -> dict:
    from chalicelib.adapters import models

    schema = model._get_schema()  # what create_table() sends, so local and AWS tables agree
    props: dict = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": sorted(
            ({"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
             for a in schema["attribute_definitions"]), key=lambda a: a["AttributeName"]),
        "KeySchema": _key_schema(schema["key_schema"]),
    }
    for kind, cfn_key in (("global_secondary_indexes", "GlobalSecondaryIndexes"),
                          ("local_secondary_indexes", "LocalSecondaryIndexes")):
        indexes = sorted(schema.get(kind) or [], key=lambda i: i["index_name"])
        if indexes:
            props[cfn_key] = [{"IndexName": i["index_name"], "KeySchema": _key_schema(i["key_schema"]),
                               "Projection": _projection(i["projection"])} for i in indexes]
    ttl = models.TTL_ATTRIBUTES.get(model)
    if ttl:
        props["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    if model.Meta.base_name in MONEY_TABLES:
        props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    props["Tags"] = [{"Key": "app", "Value": project.app_name}, {"Key": "stage", "Value": project.stage}]
    return {
        "Type": "AWS::DynamoDB::Table",
        # Data outlives the stack: deleting or replacing the stack keeps the table, except
        # when the very first creation fails (then nothing is worth keeping).
        "DeletionPolicy": "RetainExceptOnCreate",
        "UpdateReplacePolicy": "Retain",
        "Properties": props,
    }


def index_names(model) -> list[str]:
    schema = model._get_schema()
    return sorted(i["index_name"] for kind in ("global_secondary_indexes", "local_secondary_indexes")
                  for i in schema.get(kind) or [])


# ---------------------------------------------------------------- SQS


def queue_logical_id(project: Project, queue: str) -> str:
    base = queue[len(project.stage) + 1:] if queue.startswith(project.stage + "-") else queue
    return cfn_name(base) + "Queue"


def dlq_logical_id(project: Project, queue: str) -> str:
    return queue_logical_id(project, queue)[: -len("Queue")] + "DeadLetterQueue"


def queue_resources(project: Project, queue: str) -> dict:
    consumers = [f for f in project.functions if f.queue == queue]
    visibility = VISIBILITY_TIMEOUT_FACTOR * max(f.timeout for f in consumers)
    tags = [{"Key": "app", "Value": project.app_name}, {"Key": "stage", "Value": project.stage}]
    return {
        dlq_logical_id(project, queue): {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": f"{queue}-dlq",
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
                "Tags": tags,
            },
        },
        queue_logical_id(project, queue): {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue,
                "VisibilityTimeout": visibility,
                "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq_logical_id(project, queue), "Arn"]},
                    "maxReceiveCount": MAX_RECEIVE_COUNT,
                },
                "Tags": tags,
            },
        },
    }


def restore_queue(project: Project) -> str:
    """The queue the code publishes to (RESTORE_QUEUE_NAME) must be one a handler consumes."""
    name = project.env.get("RESTORE_QUEUE_NAME")
    if name not in project.queues():
        raise SystemExit(f"RESTORE_QUEUE_NAME={name!r} is not consumed by any @app.on_sqs_message handler "
                         f"(queues: {project.queues()})")
    return name


# ---------------------------------------------------------------- IAM


def policy_document(project: Project) -> dict:
    tables, indexes = [], []
    for model, name in project.tables:
        tables.append(sub(ARN % ("dynamodb", f"table/{name}")))
        indexes += [sub(ARN % ("dynamodb", f"table/{name}/index/{i}")) for i in index_names(model)]
    send = [sub(ARN % ("sqs", restore_queue(project)))]
    consume = [sub(ARN % ("sqs", q)) for q in project.queues()]
    params = [sub(ARN % ("ssm", "parameter" + project.secret_param(s))) for s in sorted(SECRETS)]
    logs = [sub(ARN % ("logs", f"log-group:{f.log_group}:*")) for f in project.functions]
    statements = [
        {"Sid": "DynamoDBItems", "Effect": "Allow", "Action": DYNAMODB_ITEM_ACTIONS, "Resource": tables},
        {"Sid": "DynamoDBIndexQueries", "Effect": "Allow", "Action": DYNAMODB_INDEX_ACTIONS, "Resource": indexes},
        {"Sid": "RestoreQueueSend", "Effect": "Allow", "Action": SQS_SEND_ACTIONS, "Resource": send},
        {"Sid": "RestoreQueueConsume", "Effect": "Allow", "Action": SQS_CONSUME_ACTIONS, "Resource": consume},
        {"Sid": "SecretsRead", "Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": params},
        {
            # SecureString decryption, only through SSM and only for these parameters. With the
            # default aws/ssm key the key policy already allows it; a customer managed key needs it.
            "Sid": "SecretsDecrypt", "Effect": "Allow", "Action": ["kms:Decrypt"],
            "Resource": sub(ARN % ("kms", "key/*")),
            "Condition": {"StringEquals": {
                "kms:ViaService": sub("ssm.${AWS::Region}.amazonaws.com"),
                "kms:EncryptionContext:PARAMETER_ARN": params,
            }},
        },
        {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": logs},
    ]
    return {"Version": "2012-10-17", "Statement": statements}


# ---------------------------------------------------------------- functions and alarms


def function_environment(project: Project) -> dict:
    env: dict = {"RESTORE_QUEUE_URL": {"Ref": queue_logical_id(project, restore_queue(project))}}
    for param, (var, _) in WECHAT_PARAMETERS.items():
        env[var] = {"Ref": param}
    for var, route in NOTIFY_ROUTES.items():
        if route not in project.routes:
            raise SystemExit(f"{var}: the app serves no route {route}")
        env[var] = sub("${NotifyBaseUrl}" + route)
    for secret in sorted(SECRETS):
        env[f"{secret}_PARAM"] = project.secret_param(secret)
    return env


def _alarm(project: Project, description: str, metric: dict, **props) -> dict:
    actions = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmName": f"{project.app_name}-{project.stage}-{props.pop('suffix')}",
        "AlarmDescription": description, **metric, **props,
        "AlarmActions": actions, "OKActions": actions,
    }}


def _metric(project: Project, name: str, statistic: str) -> dict:
    return {"Namespace": METRICS_NAMESPACE, "MetricName": name, "Statistic": statistic,
            "Dimensions": [{"Name": "Stage", "Value": project.stage}]}


def alarms(project: Project) -> dict:
    out = {}
    for queue in project.queues():
        dlq = dlq_logical_id(project, queue)
        out[f"{dlq}Alarm"] = _alarm(
            project, f"Messages in {queue}-dlq: restorations failed {MAX_RECEIVE_COUNT} times; "
                     "inspect, fix, then redrive them to the source queue.",
            {"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Statistic": "Maximum",
             "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]},
            suffix=f"{queue[len(project.stage) + 1:]}-dlq-not-empty", Period=300, EvaluationPeriods=1,
            Threshold=0, ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    out["StuckAbnormalAlarm"] = _alarm(
        project, "Refunds WeChat reports ABNORMAL (e.g. the card or account cannot receive the money): "
                 "they need a person (WeChat Pay merchant platform, then the admin console).",
        _metric(project, "StuckAbnormal", "Maximum"), suffix="refunds-abnormal",
        Period=3600, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching")
    out["StuckProcessingAlarm"] = _alarm(
        project, "Many refunds stay PROCESSING at WeChat after being queried for an hour.",
        _metric(project, "StuckProcessing", "Maximum"), suffix="refunds-stuck-processing",
        Period=900, EvaluationPeriods=4, Threshold={"Ref": "StuckProcessingThreshold"},
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")
    out["PollErrorsAlarm"] = _alarm(
        project, "The poller keeps failing to query WeChat Pay (network, credentials or rate limits).",
        _metric(project, "PollErrors", "Sum"), suffix="poll-errors",
        Period=600, EvaluationPeriods=3, DatapointsToAlarm=2, Threshold={"Ref": "PollErrorsThreshold"},
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")
    silent = max(900, project.poll_minutes * 60 * 5)
    out["PollerSilentAlarm"] = _alarm(
        project, "The scheduled poller reported nothing: it is failing or not running, so overdue "
                 "refunds are not reconciled.",
        _metric(project, "PollDue", "SampleCount"), suffix="poller-silent",
        Period=silent, EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching")
    return out


def parameters() -> dict:
    params = {name: {"Type": "String", **spec} for name, (_, spec) in WECHAT_PARAMETERS.items()}
    params["NotifyBaseUrl"] = {
        "Type": "String",
        "Description": "Public https base URL of the API stage, without a trailing slash, e.g. "
                       "https://<api-id>.execute-api.<region>.amazonaws.com/api (see the ApiNotifyBaseUrl "
                       "output) or a custom domain. WeChat Pay notifications are sent to "
                       + " and ".join(f"<base>{r}" for r in NOTIFY_ROUTES.values()),
        "AllowedPattern": "^https://[^\\s?#]+[^/\\s?#]$",
    }
    params["AlarmTopicArn"] = {"Type": "String", "Default": "",
                               "Description": "SNS topic for alarm notifications (empty: alarms only)"}
    params["LogRetentionDays"] = {"Type": "Number", "Default": 180, "AllowedValues": LOG_RETENTION_DAYS,
                                  "Description": "Retention of the functions' log groups"}
    params["StuckProcessingThreshold"] = {"Type": "Number", "Default": 10, "MinValue": 1,
                                          "Description": "Refunds still PROCESSING after a query, per poll"}
    params["PollErrorsThreshold"] = {"Type": "Number", "Default": 5, "MinValue": 1,
                                     "Description": "Poll errors per 10 minutes"}
    return params


# ---------------------------------------------------------------- API Gateway's own answers


def gateway_responses(project: Project) -> dict:
    """What API Gateway answers itself (no route, body too large, throttled, Lambda failed) in the
    service's error contract: ``{"code", "message"}`` JSON, the codes of
    ``chalicelib.entrypoints.contract``. A path (or a method) the API does not have is
    MISSING_AUTHENTICATION_TOKEN to API Gateway: answered 404 NOT_FOUND."""
    from chalicelib.entrypoints.contract import ERRORS

    def body(code: str, message: str) -> str:
        return json.dumps({"code": code, "message": message}, ensure_ascii=False)

    answers = {  # response type -> status (None: API Gateway's own status is kept)
        "MISSING_AUTHENTICATION_TOKEN": 404, "RESOURCE_NOT_FOUND": 404, "REQUEST_TOO_LARGE": 413,
        "UNSUPPORTED_MEDIA_TYPE": 415, "THROTTLED": 429, "QUOTA_EXCEEDED": 429,
        "BAD_REQUEST_BODY": 400, "BAD_REQUEST_PARAMETERS": 400, "INTEGRATION_TIMEOUT": 504,
        "INTEGRATION_FAILURE": 502, "DEFAULT_4XX": None, "DEFAULT_5XX": None,
    }
    out = {}
    for kind, status in answers.items():
        code, message = ERRORS[status] if status else (("INTERNAL_ERROR", ERRORS[500][1]) if kind == "DEFAULT_5XX"
                                                       else ("REQUEST_REJECTED", "请求被拒绝"))
        out[kind] = {
            "responseParameters": {"gatewayresponse.header.Cache-Control": "'no-store'"},
            "responseTemplates": {"application/json": body(code, message)},
            **({"statusCode": str(status)} if status else {}),
        }
    # in the API's own definition (which Chalice generates and the merge template extends), not
    # as separate resources that would drift from it
    return {"RestAPI": {"Properties": {"DefinitionBody": {"x-amazon-apigateway-gateway-responses": out}}}}


def build(project: Project) -> tuple[dict, dict]:
    """Return (merge template, IAM policy document)."""
    resources: dict = {}
    for model, name in project.tables:
        resources[table_logical_id(model)] = table_resource(project, model, name)
    for queue in project.queues():
        resources.update(queue_resources(project, queue))
    env = function_environment(project)
    for fn in project.functions:
        resources[fn.log_group_id] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": fn.log_group, "RetentionInDays": {"Ref": "LogRetentionDays"}},
        }
        resources[fn.logical_id] = {
            "DependsOn": [fn.log_group_id],
            "Properties": {"FunctionName": fn.name, "Environment": {"Variables": env}},
        }
        if fn.queue:
            # Chalice names the queue in the event source mapping, so nothing orders the
            # mapping after the queue. The RESTORE_QUEUE_URL Ref does today, but the
            # DependsOn states it and outlives a change of environment; cfn-lint's W3005
            # ("already enforced by a Ref") is expected here.
            resources[fn.logical_id]["DependsOn"].append(queue_logical_id(project, fn.queue))
            resources[fn.logical_id]["Metadata"] = {"cfn-lint": {"config": {"ignore_checks": ["W3005"]}}}
    resources.update(alarms(project))
    resources.update(gateway_responses(project))

    outputs = {
        "ApiNotifyBaseUrl": {
            "Description": "Give this as NotifyBaseUrl unless a custom domain fronts the API",
            "Value": sub("https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/" + project.api_stage),
        },
        "RefundNotifyUrl": {"Description": "Where WeChat Pay sends refund notifications",
                            "Value": sub("${NotifyBaseUrl}" + NOTIFY_ROUTES["WECHAT_REFUND_NOTIFY_URL"])},
        "PaymentNotifyUrl": {"Description": "Where WeChat Pay sends payment notifications",
                             "Value": sub("${NotifyBaseUrl}" + NOTIFY_ROUTES["WECHAT_PAYMENT_NOTIFY_URL"])},
    }
    for queue in project.queues():
        q, d = queue_logical_id(project, queue), dlq_logical_id(project, queue)
        outputs[f"{q}Url"] = {"Value": {"Ref": q}}
        outputs[f"{d}Url"] = {"Value": {"Ref": d}}
    template = {
        "Parameters": parameters(),
        "Conditions": {"HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}},
        "Resources": resources,
        "Outputs": outputs,
    }
    return template, policy_document(project)


def dump(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE") or "prod")
    parser.add_argument("--out", type=Path, help="merge template (default deploy/out/resources-<stage>.json)")
    parser.add_argument("--policy", type=Path, help="policy file (default .chalice/policy-<stage>.json)")
    parser.add_argument("--check", action="store_true", help="only check that the policy file is up to date")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    project = load_project(args.stage)
    template, policy = build(project)
    policy_path = args.policy or ROOT / ".chalice" / f"policy-{args.stage}.json"
    if args.check:
        current = policy_path.read_text(encoding="utf-8") if policy_path.exists() else ""
        if current != dump(policy):
            print(f"{policy_path} is stale: run python -m deploy.build_resources --stage {args.stage}",
                  file=sys.stderr)
            return 1
        return 0
    out = args.out or OUT_DIR / f"resources-{args.stage}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(template), encoding="utf-8")
    policy_path.write_text(dump(policy), encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} and "
          f"{policy_path.relative_to(ROOT) if policy_path.is_relative_to(ROOT) else policy_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
