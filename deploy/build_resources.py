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
* the alarms, the topic they notify, the API stage's throttling, access logs and tracing
  (``deploy/monitoring.py``);
* operational settings: the restoration consumer's maximum concurrency, retention of the
  tables and queues that hold money state, a failure queue (and its alarm) for the scheduled
  functions' asynchronous invocations, and no extra API stage;
* one IAM policy per function, written to ``.chalice/policy-<stage>-<function>.json`` from
  what that function's code calls (``FUNCTION_ACCESS`` in ``deploy/access.py``): Chalice embeds
  each file in that function's role only (``lambda_functions.<function>.iam_policy_file`` in
  ``.chalice/config.json``), and its ARNs use ``Fn::Sub`` so they name the exact tables,
  indexes, queues, parameters and log groups of the stack's account and region.

Usage::

    python -m deploy.build_resources --stage prod          # write the template and the policies
    python -m deploy.build_resources --stage prod --check  # fail if a policy file is stale
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import monitoring
from .access import FUNCTION_ACCESS, Access
from .project import (ARN, ROOT, SECRETS, Function, Project, dlq_logical_id, failure_queue_logical_id,
                      failure_queue_name, index_names, load_project, queue_logical_id, sub, table_logical_id)

OUT_DIR = ROOT / "deploy" / "out"

# Tables whose loss would lose money or entitlements: point-in-time recovery on.
# users is included because it holds the points balance that refunds restore; staff_directory
# because it says who is one person (four-eyes, allowances).
MONEY_TABLES = frozenset({
    "orders", "payment_refunds", "user_points_ledger", "user_coupons", "user_inventory",
    "manual_tasks", "users", "staff_activity", "reconciliations", "operator_daily_totals", "staff_directory",
    "offline_payouts", "complaints", "complaint_history",  # complaints hold refund decisions and their refunds
})

# Data outlives the stack: deleting the stack, or an update that would replace the resource,
# keeps every table and the restoration queues (refunds whose points, coupons and items are
# still to be put back). Only a resource whose very first creation is being rolled back is
# deleted: it was created empty a moment before.
RETAIN = {"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"}

# SQS: how often a message is tried before it moves to the dead-letter queue, and the
# visibility timeout as a multiple of the consuming function's timeout (AWS's advice).
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT_FACTOR = 6
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the maximum; longer than the source queue's

# DynamoDB actions the code performs at runtime (pynamodb calls are invisible to Chalice's
# policy generator). Transactions are authorized per item: TransactWriteItems needs the
# Put/Update/ConditionCheck action of each item, TransactGetItems needs GetItem. Nothing
# deletes or scans, and BatchWriteItem is only used to seed local data.
DYNAMODB_INDEX_ACTIONS = ["dynamodb:Query"]  # every Query of a table's items goes through a GSI
# The queue URLs come from the environment (a Ref in the template): sending needs no lookup.
SQS_SEND_ACTIONS = ["sqs:SendMessage"]
# What the Lambda event source mapping does with the function's role.
SQS_CONSUME_ACTIONS = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]



# The restoration consumer's concurrency cap (the SQS event source's MaximumConcurrency), see
# docs/deploy.md "Concurrency": one restoration makes at most ~10 DynamoDB writes, so 5 workers
# stay far below a table partition's 1 000 writes/s and take 5 of the account's concurrent
# executions, leaving the API and the poller the rest. Not a reservation: it cannot make a
# small account's deploy fail, and excess messages wait in the queue instead of being
# throttled into the dead-letter queue.
RESTORE_MAX_CONCURRENCY = 5
# Scheduled functions are invoked asynchronously. A failed run is not retried (the next run
# comes POLL_EVERY_MINUTES later and does the same work); its event goes to a failure queue.
SCHEDULE_RETRY_ATTEMPTS = 0
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600

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
# The mini-program's subscription message templates (config.subscribe_settings).
WECHAT_PARAMETERS["SubscribeTemplates"] = ("SUBSCRIBE_TEMPLATES", {
    "Description": "Subscription message templates: <template id>=review|refunded, comma separated (empty: none)",
    "Default": "", "AllowedPattern": "^([A-Za-z0-9_-]+=(review|refunded)(,[A-Za-z0-9_-]+=(review|refunded))*)?$"})
NOTIFY_ROUTES = {  # env var -> route the app must serve
    "WECHAT_REFUND_NOTIFY_URL": "/api/pay/wechat/notify/refund",
    "WECHAT_PAYMENT_NOTIFY_URL": "/api/pay/wechat/notify/payment",
    "WECHAT_COMPLAINT_NOTIFY_URL": "/api/pay/wechat/notify/complaint",  # registered with WeChat by the sweep
}

LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653]


# ---------------------------------------------------------------- DynamoDB


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
        **RETAIN,
        "Properties": props,
    }


# ---------------------------------------------------------------- SQS


def queue_resources(project: Project, queue: str) -> dict:
    consumers = [f for f in project.functions if f.queue == queue]
    visibility = VISIBILITY_TIMEOUT_FACTOR * max(f.timeout for f in consumers)
    tags = [{"Key": "app", "Value": project.app_name}, {"Key": "stage", "Value": project.stage}]
    return {
        dlq_logical_id(project, queue): {
            "Type": "AWS::SQS::Queue",
            **RETAIN,
            "Properties": {
                "QueueName": f"{queue}-dlq",
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
                "Tags": tags,
            },
        },
        queue_logical_id(project, queue): {
            "Type": "AWS::SQS::Queue",
            **RETAIN,
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


def recon_queue(project: Project) -> str:
    """The queue an unfinished reconciliation continues through (RECON_QUEUE_NAME)."""
    name = project.env.get("RECON_QUEUE_NAME")
    if name not in project.queues():
        raise SystemExit(f"RECON_QUEUE_NAME={name!r} is not consumed by any @app.on_sqs_message handler "
                         f"(queues: {project.queues()})")
    return name


# ---------------------------------------------------------------- EventBridge


EVENT_BUS_ID = "RefundEventBus"


def event_bus_name(project: Project) -> str:
    """The domain events' bus (EVENT_BUS_NAME; ``config.event_settings`` defaults to the same)."""
    return f"{project.stage}-refund-events"


def event_bus_resource(project: Project) -> dict:
    return {"Type": "AWS::Events::EventBus", "Properties": {
        "Name": event_bus_name(project),
        "Tags": [{"Key": "app", "Value": project.app_name}, {"Key": "stage", "Value": project.stage}]}}


# ---------------------------------------------------------------- IAM


def policy_file(stage: str, fn: Function) -> str:
    """The policy file of ``fn``, relative to .chalice/ (as config.json names it)."""
    return f"policy-{stage}-{fn.handler}.json"


def access_of(fn: Function) -> Access:
    try:
        return FUNCTION_ACCESS[fn.handler]
    except KeyError:
        raise SystemExit(f"{fn.handler}: no entry in FUNCTION_ACCESS (deploy/access.py): "
                         "declare the tables, indexes, queues and secrets its code uses") from None


def policy_document(project: Project, fn: Function) -> dict:
    """The inline policy of ``fn``'s role: only what its code calls (FUNCTION_ACCESS), on the
    named resources of this stack."""
    access = access_of(fn)
    by_name = {model.Meta.base_name: (model, name) for model, name in project.tables}
    unknown = [t for t in access.tables if t not in by_name]
    unknown += [i for i in access.indexes if (i.split("/")[0] not in by_name
                or i.split("/", 1)[1] not in index_names(by_name[i.split("/")[0]][0]))]
    unknown += [s for s in access.secrets if s not in SECRETS]
    if unknown:
        raise SystemExit(f"{fn.handler}: FUNCTION_ACCESS names what the code does not declare: {unknown}")

    statements = []
    grants: dict[tuple, list] = {}  # the same actions on several tables: one statement
    for base, (model, name) in by_name.items():
        actions = access.tables.get(base)
        if actions:
            grants.setdefault(tuple(sorted(actions)), []).append(sub(ARN % ("dynamodb", f"table/{name}")))
    for n, (actions, tables) in enumerate(sorted(grants.items(), key=lambda g: (-len(g[0]), g[0]))):
        statements.append({"Sid": "DynamoDBItems" + (str(n + 1) if len(grants) > 1 else ""),
                           "Effect": "Allow", "Action": list(actions), "Resource": tables})
    indexes = [sub(ARN % ("dynamodb", f"table/{name}/index/{i}")) for base, (model, name) in by_name.items()
               for i in index_names(model) if f"{base}/{i}" in access.indexes]
    if indexes:
        statements.append({"Sid": "DynamoDBIndexQueries", "Effect": "Allow", "Action": DYNAMODB_INDEX_ACTIONS,
                           "Resource": indexes})
    if access.send_restore:
        statements.append({"Sid": "RestoreQueueSend", "Effect": "Allow", "Action": SQS_SEND_ACTIONS,
                           "Resource": [sub(ARN % ("sqs", restore_queue(project)))]})
    if access.send_recon:
        statements.append({"Sid": "ReconQueueSend", "Effect": "Allow", "Action": SQS_SEND_ACTIONS,
                           "Resource": [sub(ARN % ("sqs", recon_queue(project)))]})
    if access.put_events:
        statements.append({"Sid": "EventBusPut", "Effect": "Allow", "Action": ["events:PutEvents"],
                           "Resource": [sub(ARN % ("events", f"event-bus/{event_bus_name(project)}"))]})
    if fn.queue:
        statements.append({"Sid": "QueueConsume", "Effect": "Allow", "Action": SQS_CONSUME_ACTIONS,
                           "Resource": [sub(ARN % ("sqs", fn.queue))]})
    if fn.scheduled:  # Lambda sends a failed asynchronous invocation with the function's role
        statements.append({"Sid": "FailureQueueSend", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                           "Resource": [sub(ARN % ("sqs", failure_queue_name(project, fn)))]})
    params = [sub(ARN % ("ssm", "parameter" + project.secret_param(s))) for s in sorted(access.secrets)]
    if params:
        statements.append({"Sid": "SecretsRead", "Effect": "Allow", "Action": ["ssm:GetParameter"],
                           "Resource": params})
        statements.append({
            # SecureString decryption, only through SSM and only for these parameters. With the
            # default aws/ssm key the key policy already allows it; a customer managed key needs it.
            "Sid": "SecretsDecrypt", "Effect": "Allow", "Action": ["kms:Decrypt"],
            "Resource": sub(ARN % ("kms", "key/*")),
            "Condition": {"StringEquals": {
                "kms:ViaService": sub("ssm.${AWS::Region}.amazonaws.com"),
                "kms:EncryptionContext:PARAMETER_ARN": params,
            }},
        })
    statements.append({"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                       "Resource": [sub(ARN % ("logs", f"log-group:{fn.log_group}:*"))]})
    statements.append(monitoring.tracing_statement())  # Lambda sends the function's traces
    return {"Version": "2012-10-17", "Statement": statements}


def policy_documents(project: Project) -> dict[str, dict]:
    """Policy file name (in .chalice/) -> document, one per function."""
    return {policy_file(project.stage, fn): policy_document(project, fn) for fn in project.functions}


def check_policy_config(project: Project) -> None:
    """.chalice/config.json must give every function of the stage its own policy file."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    functions = config["stages"][project.stage].get("lambda_functions") or {}
    wrong = {fn.handler: policy_file(project.stage, fn) for fn in project.functions
             if (functions.get(fn.handler) or {}).get("iam_policy_file") != policy_file(project.stage, fn)}
    if wrong:
        raise SystemExit(f".chalice/config.json, stage {project.stage}: set lambda_functions.<name>.iam_policy_file "
                         f"to {wrong}")


# ---------------------------------------------------------------- functions and alarms


def function_environment(project: Project) -> dict:
    env: dict = {"RESTORE_QUEUE_URL": {"Ref": queue_logical_id(project, restore_queue(project))},
                 "RECON_QUEUE_URL": {"Ref": queue_logical_id(project, recon_queue(project))},
                 "EVENT_BUS_NAME": {"Ref": EVENT_BUS_ID}}
    for param, (var, _) in WECHAT_PARAMETERS.items():
        env[var] = {"Ref": param}
    for var, route in NOTIFY_ROUTES.items():
        if route not in project.routes:
            raise SystemExit(f"{var}: the app serves no route {route}")
        env[var] = sub("${NotifyBaseUrl}" + route)
    for secret in sorted(SECRETS):
        env[f"{secret}_PARAM"] = project.secret_param(secret)
    return env


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
    params["LogRetentionDays"] = {"Type": "Number", "Default": 180, "AllowedValues": LOG_RETENTION_DAYS,
                                  "Description": "Retention of the functions' log groups"}
    params["StuckProcessingThreshold"] = {"Type": "Number", "Default": 10, "MinValue": 1,
                                          "Description": "Refunds still PROCESSING after a query, per poll"}
    params["PollErrorsThreshold"] = {"Type": "Number", "Default": 5, "MinValue": 1,
                                     "Description": "Poll errors per 10 minutes"}
    params.update(monitoring.parameters())
    return params


def operational_resources(project: Project) -> dict:
    """Concurrency, failure handling of asynchronous invocations, and the API's stages."""
    out: dict = {
        # SAM adds a stage named "Stage" beside the configured one unless OpenApiVersion is
        # set; "2.0" is what Chalice's Swagger definition is.
        "RestAPI": {"Properties": {"OpenApiVersion": "2.0"}},
    }
    for fn in project.functions:
        if fn.queue:
            out[fn.logical_id] = {"Properties": {"Events": {f"{fn.logical_id}SqsEventSource": {"Properties": {
                "ScalingConfig": {"MaximumConcurrency": RESTORE_MAX_CONCURRENCY}}}}}}
        if fn.scheduled:
            queue_id = failure_queue_logical_id(fn)
            out[queue_id] = {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": failure_queue_name(project, fn),
                    "MessageRetentionPeriod": FAILURE_RETENTION_SECONDS,
                    "SqsManagedSseEnabled": True,
                    "Tags": [{"Key": "app", "Value": project.app_name}, {"Key": "stage", "Value": project.stage}],
                },
            }
            out[fn.logical_id] = {"Properties": {"EventInvokeConfig": {
                "MaximumRetryAttempts": SCHEDULE_RETRY_ATTEMPTS,
                "DestinationConfig": {"OnFailure": {"Type": "SQS",
                                                    "Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
            }}}
    return out


def _merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


# ---------------------------------------------------------------- API Gateway's own answers


def gateway_responses(project: Project) -> dict:
    """What API Gateway answers itself (no route, body too large, throttled, Lambda failed) in the
    service's error contract: ``{"code", "message"}`` JSON, the codes of
    ``chalicelib.entrypoints.contract``. A path (or a method) the API does not have is
    MISSING_AUTHENTICATION_TOKEN to API Gateway: answered 404 NOT_FOUND."""
    from chalicelib.domain.errors import ErrorCode
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
                                                       else (ErrorCode.REQUEST_REJECTED.value, "请求被拒绝"))
        out[kind] = {
            "responseParameters": {"gatewayresponse.header.Cache-Control": "'no-store'"},
            "responseTemplates": {"application/json": body(code, message)},
            **({"statusCode": str(status)} if status else {}),
        }
    # in the API's own definition (which Chalice generates and the merge template extends), not
    # as separate resources that would drift from it
    return {"RestAPI": {"Properties": {"DefinitionBody": {"x-amazon-apigateway-gateway-responses": out}}}}


def build(project: Project) -> tuple[dict, dict]:
    """Return (merge template, {policy file name: IAM policy document})."""
    unknown = MONEY_TABLES - {model.Meta.base_name for model, _ in project.tables}
    if unknown:
        raise SystemExit(f"MONEY_TABLES names tables no model declares: {sorted(unknown)}")
    resources: dict = {}
    for model, name in project.tables:
        resources[table_logical_id(model)] = table_resource(project, model, name)
    for queue in project.queues():
        resources.update(queue_resources(project, queue))
    resources[EVENT_BUS_ID] = event_bus_resource(project)
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
    _merge(resources, operational_resources(project))
    _merge(resources, monitoring.resources(project))
    _merge(resources, gateway_responses(project))

    outputs = {
        "ApiNotifyBaseUrl": {
            "Description": "Give this as NotifyBaseUrl unless a custom domain fronts the API",
            "Value": sub("https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/" + project.api_stage),
        },
        "RefundNotifyUrl": {"Description": "Where WeChat Pay sends refund notifications",
                            "Value": sub("${NotifyBaseUrl}" + NOTIFY_ROUTES["WECHAT_REFUND_NOTIFY_URL"])},
        "PaymentNotifyUrl": {"Description": "Where WeChat Pay sends payment notifications",
                             "Value": sub("${NotifyBaseUrl}" + NOTIFY_ROUTES["WECHAT_PAYMENT_NOTIFY_URL"])},
        "ComplaintNotifyUrl": {"Description": "Where WeChat Pay sends complaint notifications (registered by the "
                                              "complaint sweep)",
                               "Value": sub("${NotifyBaseUrl}" + NOTIFY_ROUTES["WECHAT_COMPLAINT_NOTIFY_URL"])},
    }
    outputs.update(monitoring.outputs())
    for queue in project.queues():
        q, d = queue_logical_id(project, queue), dlq_logical_id(project, queue)
        outputs[f"{q}Url"] = {"Value": {"Ref": q}}
        outputs[f"{d}Url"] = {"Value": {"Ref": d}}
    template = {
        "Parameters": parameters(),
        "Conditions": monitoring.conditions(),
        "Resources": resources,
        "Outputs": outputs,
    }
    check_policy_config(project)
    return template, policy_documents(project)


def dump(data: dict) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE") or "prod")
    parser.add_argument("--out", type=Path, help="merge template (default deploy/out/resources-<stage>.json)")
    parser.add_argument("--policy-dir", type=Path, help="where the policy files go (default .chalice/)")
    parser.add_argument("--check", action="store_true", help="only check that the policy files are up to date")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    project = load_project(args.stage)
    template, policies = build(project)
    policy_dir = args.policy_dir or ROOT / ".chalice"
    if args.check:
        stale = [name for name, doc in policies.items()
                 if not (policy_dir / name).exists() or (policy_dir / name).read_text(encoding="utf-8") != dump(doc)]
        for name in stale:
            print(f"{policy_dir / name} is stale: run python -m deploy.build_resources --stage {args.stage}",
                  file=sys.stderr)
        return 1 if stale else 0
    out = args.out or OUT_DIR / f"resources-{args.stage}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(template), encoding="utf-8")
    for name, doc in policies.items():
        (policy_dir / name).write_text(dump(doc), encoding="utf-8")

    def shown(path: Path) -> str:
        return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    print(f"wrote {shown(out)} and " + ", ".join(shown(policy_dir / n) for n in policies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
