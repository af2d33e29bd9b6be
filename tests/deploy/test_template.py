"""The packaged CloudFormation stack: built once per session exactly as ``make package``
does (offline, no AWS credentials), linted, and checked against what the code declares:
models -> tables/keys/GSIs/TTL/PITR, SQS handler -> queue + DLQ, settings -> environment,
runtime calls -> IAM policy."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pynamodb.attributes import Attribute

from chalicelib.adapters import models

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STAGE = "prod"
# The tables that hold money or entitlements (point-in-time recovery required).
MONEY_TABLES = {"orders", "payment_refunds", "user_points_ledger", "user_coupons", "user_inventory",
                "manual_tasks"}
SAMPLE_PARAMETERS = {
    "WechatMchId": "1900000109",
    "WechatAppId": "wxd678efh567hg6787",
    "WechatCertSerialNo": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "WechatPublicKeyId": "PUB_KEY_ID_0114232134912410000000000000",
    "NotifyBaseUrl": "https://pay.example.com/api",
}
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "ap-east-1", "AWS::AccountId": "123456789012",
          "AWS::URLSuffix": "amazonaws.com"}
SECRET_NAMES = ["WECHAT_PRIVATE_KEY", "WECHAT_APIV3_KEY", "WECHAT_PUBLIC_KEY", "ADMIN_JWT_SECRET",
                "USER_JWT_SECRET"]


@pytest.fixture(scope="session")
def template(built):
    return built["template"]


def _resources(template, type_):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def _functions(template):
    return _resources(template, "AWS::Serverless::Function")


def _resolve(value, template, params=SAMPLE_PARAMETERS):
    """Enough of CloudFormation's intrinsics for environment values."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        ref = value["Ref"]
        if ref in PSEUDO:
            return PSEUDO[ref]
        if ref in template.get("Parameters", {}):
            return params.get(ref, template["Parameters"][ref].get("Default"))
        resource = template["Resources"][ref]
        if resource["Type"] == "AWS::Events::EventBus":  # Ref: the bus's name
            return resource["Properties"]["Name"]
        assert resource["Type"] == "AWS::SQS::Queue", f"unexpected Ref to {ref}"
        return f"https://sqs.ap-east-1.amazonaws.com/123456789012/{resource['Properties']['QueueName']}"
    if "Fn::Sub" in value:
        return re.sub(r"\$\{([^}]+)\}", lambda m: _resolve({"Ref": m.group(1)}, template, params), value["Fn::Sub"])
    raise AssertionError(f"unexpected intrinsic {value}")


def _strings(resource_list):
    for r in resource_list if isinstance(resource_list, list) else [resource_list]:
        yield r["Fn::Sub"] if isinstance(r, dict) else r


# ---------------------------------------------------------------- build and lint


def test_cfn_lint_reports_nothing(built):
    proc = subprocess.run([str(BIN / "cfn-lint"), str(built["out"] / "sam.json"), "--regions", "ap-east-1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def transformed(built):
    """What CloudFormation does server-side: expand AWS::Serverless::* into plain resources."""
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ArnGenerator, "BOTO_SESSION_REGION_NAME", "ap-east-1")
        mp.setenv("AWS_DEFAULT_REGION", "ap-east-1")
        template = json.loads(json.dumps(built["template"]))
        for fn in _functions(template).values():  # `aws cloudformation package` puts the zip in S3
            fn["Properties"]["CodeUri"] = "s3://artifacts/gacha-refunds/deployment.zip"
        return transform(template, dict(SAMPLE_PARAMETERS), NoManagedPolicies())


def test_sam_transform_succeeds_and_its_output_is_lint_clean(transformed, tmp_path):
    out = transformed
    resources = out["Resources"]
    mappings = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 2  # restoration and the reconciliation's continuation
    mapping = next(m for m in mappings if m["Properties"]["FunctionName"]["Ref"] == "Restore")
    assert mapping["Properties"]["BatchSize"] == 1
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] >= 2
    stages = [r["Properties"]["StageName"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert stages == ["api"]  # no stray "Stage" stage
    invoke = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert len(invoke) == 3  # the scheduled functions: poll, the daily reconciliation, the complaint sweep
    assert all(i["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] for i in invoke)
    restore = resources[mapping["Properties"]["FunctionName"]["Ref"]]
    assert "RefundRestoreQueue" in restore["DependsOn"]
    rules = sorted(r["Properties"]["ScheduleExpression"] for r in resources.values() if r["Type"] == "AWS::Events::Rule")
    assert rules[0].startswith("cron(") and rules[1].startswith("rate(")
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(out), encoding="utf-8")
    proc = subprocess.run([str(BIN / "cfn-lint"), str(path), "--regions", "ap-east-1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_committed_policy_files_are_up_to_date(built):
    check = built["policy_check"]
    assert check.returncode == 0, check.stderr


def test_runtime_is_python_3_13_and_matches_the_packaging_python(template):
    runtimes = {f["Properties"]["Runtime"] for f in _functions(template).values()}
    assert runtimes == {"python3.13"}
    assert runtimes == {f"python{sys.version_info.major}.{sys.version_info.minor}"}


def test_bundle_holds_exactly_the_locked_packages(built):
    from deploy import lock

    locked = {n: e.version for n, e in lock.parse_lock("requirements.lock").items()}
    with zipfile.ZipFile(built["out"] / "deployment.zip") as zf:
        bundled = {}
        for name in zf.namelist():
            m = re.fullmatch(r"([^/]+)-([^-/]+)\.dist-info/METADATA", name)
            if m:
                bundled[lock.normalize(m.group(1))] = m.group(2)
    assert bundled == locked


def test_package_holds_bytecode_and_no_secrets(built):
    with zipfile.ZipFile(built["out"] / "deployment.zip") as zf:
        names = set(zf.namelist())
    assert "app.py" in names
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    assert any(n.startswith(f"__pycache__/app.{tag}") and n.endswith(".pyc") for n in names)
    assert any(n.startswith("chalicelib/__pycache__/config.") for n in names)
    assert not [n for n in names if (n.endswith((".pem", ".key")) and not n.endswith("/cacert.pem"))
                or n.startswith((".devstack", "tests/", "deploy/", "wechatpay_sim/", "devstack/"))]
    text = (built["out"] / "sam.json").read_text(encoding="utf-8")
    assert "PRIVATE KEY" not in text


# ---------------------------------------------------------------- DynamoDB


def _model_keys(attrs) -> list[dict]:
    keys = [{"AttributeName": a.attr_name, "KeyType": "HASH"} for a in attrs if a.is_hash_key]
    keys += [{"AttributeName": a.attr_name, "KeyType": "RANGE"} for a in attrs if a.is_range_key]
    return keys


def _index_attrs(index) -> list[Attribute]:
    return [v for cls in type(index).__mro__ for v in vars(cls).values() if isinstance(v, Attribute)]


@pytest.mark.parametrize("model", models.ALL_MODELS, ids=lambda m: m.Meta.base_name)
def test_every_model_has_its_table(template, model):
    tables = {t["Properties"]["TableName"]: t for t in _resources(template, "AWS::DynamoDB::Table").values()}
    table = tables[f"{STAGE}-{model.Meta.base_name}"]
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == _model_keys(model.get_attributes().values())
    declared = {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]}

    expected_indexes = {}
    for name, index in model._indexes.items():
        attrs = _index_attrs(index)
        projection = {"ProjectionType": index.Meta.projection.projection_type}
        if getattr(index.Meta.projection, "non_key_attributes", None):
            projection["NonKeyAttributes"] = sorted(index.Meta.projection.non_key_attributes)
        expected_indexes[name] = {"IndexName": name, "KeySchema": _model_keys(attrs), "Projection": projection}
        for a in attrs:
            assert declared[a.attr_name] == a.attr_type, f"{name}.{a.attr_name}"
    got = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
    assert got == expected_indexes
    for a in model.get_attributes().values():
        if a.is_hash_key or a.is_range_key:
            assert declared[a.attr_name] == a.attr_type
    # only key attributes may be declared
    key_names = {k["AttributeName"] for k in props["KeySchema"]}
    key_names |= {k["AttributeName"] for i in got.values() for k in i["KeySchema"]}
    assert set(declared) == key_names

    ttl = models.TTL_ATTRIBUTES.get(model)
    if ttl:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props
    if model.Meta.base_name in MONEY_TABLES:
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] in ("Retain", "RetainExceptOnCreate")
    assert table["UpdateReplacePolicy"] == "Retain"


def test_no_table_without_a_model(template):
    names = {t["Properties"]["TableName"] for t in _resources(template, "AWS::DynamoDB::Table").values()}
    assert names == {f"{STAGE}-{m.Meta.base_name}" for m in models.ALL_MODELS}


# ---------------------------------------------------------------- SQS, schedule, functions


def test_restore_queue_has_a_dead_letter_queue_and_long_visibility(template):
    queues = {q["Properties"]["QueueName"]: (k, q) for k, q in _resources(template, "AWS::SQS::Queue").items()}
    fn_id, fn = next((k, f) for k, f in _functions(template).items() if f["Properties"]["Handler"] == "app.restore")
    event = next(iter(fn["Properties"]["Events"].values()))
    assert event["Type"] == "SQS" and event["Properties"]["BatchSize"] == 1
    queue_name = _resolve(event["Properties"]["Queue"], template).rsplit(":", 1)[1]
    assert queue_name == f"{STAGE}-refund-restore"
    queue_id, queue = queues[queue_name]
    props = queue["Properties"]
    assert props["VisibilityTimeout"] >= 6 * fn["Properties"]["Timeout"]
    redrive = props["RedrivePolicy"]
    assert 3 <= redrive["maxReceiveCount"] <= 5
    dlq_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert template["Resources"][dlq_id]["Type"] == "AWS::SQS::Queue"
    assert queue_id in fn["DependsOn"]
    alarms = _resources(template, "AWS::CloudWatch::Alarm").values()
    assert any(a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
               and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq_id, "QueueName"]}
               for a in alarms)


def test_poll_runs_on_a_schedule_and_its_metrics_are_alarmed(template):
    poll = next(f for f in _functions(template).values() if f["Properties"]["Handler"] == "app.poll")
    assert [e["Type"] for e in poll["Properties"]["Events"].values()] == ["Schedule"]
    from chalicelib import metrics as emitted

    alarmed = {a["Properties"]["MetricName"] for a in _resources(template, "AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("Namespace") == emitted.NAMESPACE}
    assert {"StuckProcessing", "StuckAbnormal", "PollErrors", "PollDue", *emitted.EVENT_METRICS} <= alarmed
    assert alarmed <= emitted.all_metrics()  # an alarm on a name the code never emits would never fire


@pytest.mark.parametrize("handler", ["app.app", "app.restore", "app.poll"])
def test_functions_get_every_setting_the_code_reads(template, handler, monkeypatch):
    from chalicelib import config

    fn = next(f for f in _functions(template).values() if f["Properties"]["Handler"] == handler)
    env = {k: _resolve(v, template) for k, v in fn["Properties"]["Environment"]["Variables"].items()}
    for name, value in SAMPLE_PARAMETERS.items():  # the samples satisfy the template's own checks
        pattern = template["Parameters"][name].get("AllowedPattern")
        assert pattern is None or re.fullmatch(pattern, value), name
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", "ap-east-1")  # set by Lambda itself
    fetched = []
    monkeypatch.setattr(config, "_ssm_get", lambda name, missing_ok=False: fetched.append(name) or f"value-of-{name}")

    s = config.settings()
    assert s.stage == STAGE and s.table_prefix == f"{STAGE}-"
    assert s.restore_queue_url.endswith("/" + s.restore_queue_name)
    assert config.recon_settings().queue_url.endswith(f"/{STAGE}-reconciliation")  # a run out of time continues
    w = config.wechat_settings()
    assert w.refund_notify_url == "https://pay.example.com/api/api/pay/wechat/notify/refund"
    assert w.payment_notify_url == "https://pay.example.com/api/api/pay/wechat/notify/payment"
    for name in SECRET_NAMES:
        config.secret(name)
    assert sorted(set(fetched)) == sorted(f"/gacha-refunds/{STAGE}/" + p for p in
                                          ["wechat/private-key", "wechat/apiv3-key", "wechat/public-key",
                                           "wechat/platform-certificates", "jwt/admin-secret", "jwt/user-secret"])
    assert not set(SECRET_NAMES) & set(env), "secret values must not be in the template"


# ---------------------------------------------------------------- IAM


HANDLERS = {"app.app": "api_handler", "app.restore": "restore", "app.poll": "poll", "app.reconcile": "reconcile",
            "app.reconcile_continue": "reconcile_continue", "app.complaints_sweep": "complaints_sweep"}
ARN_PREFIX = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"
QUEUE_ARN = ARN_PREFIX % "sqs" + f"{STAGE}-refund-restore"
TABLE_ARN = ARN_PREFIX % "dynamodb" + "table/"
PARAM_ARN = ARN_PREFIX % "ssm" + f"parameter/gacha-refunds/{STAGE}/"
WECHAT_PARAMS = {PARAM_ARN + p for p in ("wechat/private-key", "wechat/apiv3-key", "wechat/public-key",
                                         "wechat/platform-certificates")}
JWT_PARAMS = {PARAM_ARN + p for p in ("jwt/admin-secret", "jwt/user-secret")}
CURSOR_PARAMS = {PARAM_ARN + "api/cursor-secret"}
PHONE_PARAMS = {PARAM_ARN + "api/phone-hash-secret"}  # the search's keyed phone hash (keys.phone_key)


def _function(template, handler):
    return next(f for f in _functions(template).values() if f["Properties"]["Handler"] == handler)


def _role_policy(template, handler) -> dict:
    role = template["Resources"][_function(template, handler)["Properties"]["Role"]["Fn::GetAtt"][0]]
    [policy] = role["Properties"]["Policies"]
    return policy["PolicyDocument"]


def _allowed(doc) -> dict[str, set[str]]:
    allowed: dict[str, set[str]] = {}
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        for action in actions:
            allowed.setdefault(action, set()).update(_strings(st["Resource"]))
    return allowed


def _tables_with(allowed, action) -> set[str]:
    return {a[len(TABLE_ARN):] for a in allowed.get(action, set())}


def test_every_function_has_its_own_role(template):
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in _functions(template).values()]
    assert len(roles) == len(set(roles)) == len(HANDLERS)
    # the other role is API Gateway's, for its access logs (one per account and region)
    assert set(roles) == set(_resources(template, "AWS::IAM::Role")) - {"ApiGatewayCloudWatchRole"}
    assert sorted(f["Properties"]["Handler"] for f in _functions(template).values()) == sorted(HANDLERS)


@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_each_role_carries_its_committed_policy_and_is_least_privilege(template, handler):
    committed = json.loads((ROOT / ".chalice" / f"policy-{STAGE}-{HANDLERS[handler]}.json").read_text("utf-8"))
    doc = _role_policy(template, handler)
    assert doc == committed  # and the builder regenerates exactly the committed file (policy check)
    for st in doc["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert not any("*" in a for a in actions), (handler, actions)
        for arn in _strings(st["Resource"]):
            if any(a.split(":")[0] in ("dynamodb", "sqs", "ssm", "logs") for a in actions):
                assert "*" not in arn.replace(":*", ""), (handler, st.get("Sid"), arn)
    allowed = _allowed(doc)
    assert not {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(allowed)
    assert "cloudwatch:PutMetricData" not in allowed  # metrics go through logs (EMF)
    name = _function(template, handler)["Properties"]["FunctionName"]
    assert allowed["logs:PutLogEvents"] == allowed["logs:CreateLogStream"] == {
        ARN_PREFIX % "logs" + f"log-group:/aws/lambda/{name}:*"}
    if "ssm:GetParameter" in allowed:
        decrypt = next(st for st in doc["Statement"] if st["Action"] == ["kms:Decrypt"])
        assert "kms:ViaService" in decrypt["Condition"]["StringEquals"]
        assert set(_strings(decrypt["Condition"]["StringEquals"]["kms:EncryptionContext:PARAMETER_ARN"])) \
            == allowed["ssm:GetParameter"]
    else:
        assert "kms:Decrypt" not in allowed


RESTORATION_TABLES = {f"{STAGE}-{t}" for t in ("users", "user_points_ledger", "user_coupons", "user_inventory")}


def test_api_role_writes_no_restoration_table_sends_but_never_consumes(template):
    """The API is internet-facing and serves WeChat's unauthenticated callbacks: it may not put
    back points, coupons or prizes (only restoration does), nor read the work queues' indexes."""
    allowed = _allowed(_role_policy(template, "app.app"))
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"):
        assert not _tables_with(allowed, action) & RESTORATION_TABLES, action
    assert f"{TABLE_ARN}{STAGE}-orders/index/by_time" in allowed["dynamodb:Query"]
    assert not {f"{TABLE_ARN}{STAGE}-payment_refunds/index/pending_work",
                f"{TABLE_ARN}{STAGE}-orders/index/awaiting_payment"} & allowed["dynamodb:Query"]
    # restorations, and a reconciliation run from the console that needs more than one request
    assert allowed["sqs:SendMessage"] == {QUEUE_ARN, ARN_PREFIX % "sqs" + f"{STAGE}-reconciliation"}
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl"} & set(allowed)
    assert allowed["ssm:GetParameter"] == WECHAT_PARAMS | JWT_PARAMS | CURSOR_PARAMS | PHONE_PARAMS


@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_no_role_holds_a_condition_check_nothing_makes(template, handler):
    assert "dynamodb:ConditionCheckItem" not in _allowed(_role_policy(template, handler))


def test_restore_role_consumes_the_queue_and_touches_only_what_restoration_writes(template):
    allowed = _allowed(_role_policy(template, "app.restore"))
    assert {a for a in allowed if a.startswith("sqs:")} == {"sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                            "sqs:GetQueueAttributes"}
    assert allowed["sqs:ReceiveMessage"] == {QUEUE_ARN}
    assert "ssm:GetParameter" not in allowed  # no merchant key, no JWT secret
    assert "dynamodb:Query" not in allowed
    # the points ledger entry, and the restoration's domain event in the outbox (same transaction)
    assert _tables_with(allowed, "dynamodb:PutItem") == {f"{STAGE}-user_points_ledger", f"{STAGE}-event_outbox"}
    assert f"{STAGE}-manual_tasks" in _tables_with(allowed, "dynamodb:UpdateItem")  # tasks are opened by upsert
    assert _tables_with(allowed, "dynamodb:BatchGetItem") == {f"{STAGE}-user_inventory", f"{STAGE}-user_coupons"}
    assert _tables_with(allowed, "dynamodb:GetItem") == {f"{STAGE}-payment_refunds", f"{STAGE}-orders"}
    touched = set().union(*(_tables_with(allowed, a) for a in allowed if a.startswith("dynamodb:")))
    assert f"{STAGE}-notify_receipts" not in touched


def test_poll_role_queries_only_the_work_indexes_and_reads_only_the_wechat_secrets(template):
    allowed = _allowed(_role_policy(template, "app.poll"))
    assert allowed["dynamodb:Query"] == {f"{TABLE_ARN}{STAGE}-payment_refunds/index/pending_work",
                                         f"{TABLE_ARN}{STAGE}-orders/index/awaiting_payment",
                                         f"{TABLE_ARN}{STAGE}-event_outbox/index/unsent",  # the events relay
                                         f"{TABLE_ARN}{STAGE}-player_messages/index/pending"}  # players' messages
    # and the mini-program's AppSecret: the subscription messages' access token
    assert allowed["ssm:GetParameter"] == WECHAT_PARAMS | {PARAM_ARN + "miniapp/app-secret"}
    assert allowed["sqs:SendMessage"] == {QUEUE_ARN, ARN_PREFIX % "sqs" + f"{STAGE}-poll-failures"}
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & set(allowed)
    assert _tables_with(allowed, "dynamodb:BatchGetItem") == {f"{STAGE}-users"}  # the openids of messages' players


# ---------------------------------------------------------------- operational settings


def test_restore_consumer_concurrency_is_capped(template):
    from deploy.build_resources import RESTORE_MAX_CONCURRENCY

    event = next(iter(_function(template, "app.restore")["Properties"]["Events"].values()))
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": RESTORE_MAX_CONCURRENCY}
    assert 2 <= RESTORE_MAX_CONCURRENCY <= 10  # SQS's minimum; far below a partition's write limit


def test_money_queues_and_tables_are_retained(template):
    for key, res in template["Resources"].items():
        if res["Type"] == "AWS::DynamoDB::Table" or (
                res["Type"] == "AWS::SQS::Queue" and "refund-restore" in res["Properties"]["QueueName"]):
            assert res.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate"), key
            assert res.get("UpdateReplacePolicy") == "Retain", key


def test_failed_scheduled_runs_go_to_an_alarmed_failure_queue(template):
    poll = _function(template, "app.poll")
    config = poll["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 0
    queue_id = config["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert config["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert template["Resources"][queue_id]["Properties"]["QueueName"] == f"{STAGE}-poll-failures"
    alarms = _resources(template, "AWS::CloudWatch::Alarm").values()
    assert any(a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}
               and a["Properties"]["ComparisonOperator"] == "GreaterThanThreshold" for a in alarms)


def test_reconcile_roles_read_the_bill_and_our_books_but_no_tokens(template):
    for handler in ("app.reconcile", "app.reconcile_continue"):
        allowed = _allowed(_role_policy(template, handler))
        assert allowed["ssm:GetParameter"] == WECHAT_PARAMS  # the bill is a signed download; no JWT
        assert allowed["dynamodb:Query"] == {f"{TABLE_ARN}{STAGE}-payment_refunds/index/by_accepted_day",
                                             f"{TABLE_ARN}{STAGE}-orders/index/by_paid_day",
                                             f"{TABLE_ARN}{STAGE}-reconciliations"}
        assert ARN_PREFIX % "sqs" + f"{STAGE}-reconciliation" in allowed["sqs:SendMessage"]
        assert QUEUE_ARN in allowed["sqs:SendMessage"]  # a refund the bill settles is restored as usual
        assert not {"dynamodb:DeleteItem", "dynamodb:Scan"} & set(allowed)
        fn = _function(template, handler)["Properties"]
        assert fn["Timeout"] == 900


# ---------------------------------------------------------------- alarms that reach someone


def _alarms(template) -> dict:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in _resources(template, "AWS::CloudWatch::Alarm").values()}


def _condition(template, name: str, params: dict) -> bool:
    """A template condition's value for ``params`` (Equals, Not, And, Or, Condition)."""
    def value(node):
        if isinstance(node, dict) and "Ref" in node:
            return params.get(node["Ref"], template["Parameters"][node["Ref"]].get("Default"))
        return node

    def holds(node) -> bool:
        (fn, args), = node.items()
        if fn == "Condition":
            return holds(template["Conditions"][args])
        if fn == "Fn::Equals":
            return value(args[0]) == value(args[1])
        if fn == "Fn::Not":
            return not holds(args[0])
        if fn == "Fn::And":
            return all(holds(a) for a in args)
        if fn == "Fn::Or":
            return any(holds(a) for a in args)
        raise AssertionError(f"unexpected condition {node}")

    return holds(template["Conditions"][name])


def _notified(template, action, params: dict) -> str:
    """The topic an alarm action resolves to for ``params``: a topic ARN, or the resource made."""
    if "Fn::If" in action:
        cond, yes, no = action["Fn::If"]
        return _notified(template, yes if _condition(template, cond, params) else no, params)
    ref = action["Ref"]
    if ref in template["Parameters"]:
        return params[ref]
    resource = template["Resources"][ref]
    assert resource["Type"] == "AWS::SNS::Topic" and _condition(template, resource["Condition"], params)
    return ref


@pytest.mark.parametrize("params", [{"AlarmEmail": "oncall@shop.example"}, {"AlarmEmail": ""},
                                    {"AlarmTopicArn": "arn:aws:sns:ap-east-1:123456789012:ops"}],
                         ids=["email", "topic-only", "given-topic"])
def test_every_alarm_notifies_a_topic_that_exists(template, params):
    """On a fresh stack every alarm (and its end) reaches a topic: the stack's own, subscribed to
    AlarmEmail when given, or the topic the operator named."""
    for name, alarm in _alarms(template).items():
        assert alarm["AlarmActions"] == alarm["OKActions"] and len(alarm["AlarmActions"]) == 1, name
        target = _notified(template, alarm["AlarmActions"][0], params)
        assert target == params.get("AlarmTopicArn", "AlarmTopic"), name
    subscription = template["Resources"]["AlarmTopicEmail"]
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert _condition(template, subscription["Condition"], params) == bool(params.get("AlarmEmail"))
    assert re.fullmatch(template["Parameters"]["AlarmEmail"]["AllowedPattern"], params.get("AlarmEmail", ""))


def test_alarm_names_are_unique(template):
    names = [a["Properties"]["AlarmName"] for a in _resources(template, "AWS::CloudWatch::Alarm").values()]
    assert len(names) == len(set(names))


def test_every_function_alarms_on_its_errors_and_throttles(template):
    alarms = _alarms(template).values()
    for fn in _functions(template).values():
        name = fn["Properties"]["FunctionName"]
        watched = {a["MetricName"] for a in alarms if a.get("Namespace") == "AWS/Lambda"
                   and a["Dimensions"] == [{"Name": "FunctionName", "Value": name}]}
        assert watched == {"Errors", "Throttles"}, name
        assert fn["Properties"]["Tracing"] == "Active"


def test_the_api_alarms_on_5xx_and_latency(template):
    api = template["Resources"]["RestAPI"]["Properties"]
    dims = [{"Name": "ApiName", "Value": api["Name"]}, {"Name": "Stage", "Value": api["StageName"]}]
    alarms = {a["MetricName"]: a for a in _alarms(template).values() if a.get("Namespace") == "AWS/ApiGateway"}
    assert set(alarms) == {"5XXError", "Latency"}
    assert all(a["Dimensions"] == dims for a in alarms.values())
    assert alarms["Latency"]["ExtendedStatistic"] == "p99" and alarms["Latency"]["Threshold"] == {"Ref": "ApiLatencyP99Ms"}


def test_every_queue_alarms_on_its_oldest_message(template):
    """Source queues, dead-letter queues and the scheduled functions' failure queues alike."""
    aged = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in _alarms(template).values()
            if a.get("MetricName") == "ApproximateAgeOfOldestMessage"}
    queues = set(_resources(template, "AWS::SQS::Queue"))
    assert len(queues) == 7 and aged == queues


def test_every_table_and_index_alarms_on_throttling(template):
    alarms = [a for a in _alarms(template).values() if "Metrics" in a]
    for table in _resources(template, "AWS::DynamoDB::Table").values():
        props = table["Properties"]
        [alarm] = [a for a in alarms if any(m.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [{}])[0]
                                            .get("Value") == props["TableName"] for m in a["Metrics"])]
        stats = [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
        assert {(s["MetricName"], len(s["Dimensions"])) for s in stats} >= {("ReadThrottleEvents", 1),
                                                                          ("WriteThrottleEvents", 1)}
        indexed = {s["Dimensions"][1]["Value"] for s in stats if len(s["Dimensions"]) == 2}
        assert indexed == {i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])}
        [expression] = [m for m in alarm["Metrics"] if "Expression" in m]
        assert expression["ReturnData"] and all(m["Id"] in expression["Expression"]
                                                for m in alarm["Metrics"] if "MetricStat" in m)


def test_every_alarm_names_its_runbook(template):
    for name, alarm in _alarms(template).items():
        assert re.search(r"Runbook: docs/deploy\.md#[a-z0-9-]+$", alarm["AlarmDescription"]), name


def test_the_api_stage_throttles_logs_access_and_traces(transformed):
    resources = transformed["Resources"]
    [stage] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    [method] = stage["MethodSettings"]
    assert (method["ResourcePath"], method["HttpMethod"]) == ("/*", "*")
    assert method["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert method["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    assert stage["TracingEnabled"] is True
    log_group = stage["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
    assert resources[log_group]["Type"] == "AWS::Logs::LogGroup"
    fields = json.loads(stage["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "latencyMs"} <= set(fields) and "$context.requestId" in fields.values()
    [account] = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Account"]
    assert account["DeletionPolicy"] == "Retain"  # an account-wide setting other APIs may rely on
    [rest_api] = [k for k, r in resources.items() if r["Type"] == "AWS::ApiGateway::RestApi"]
    assert "ApiGatewayAccount" in resources[rest_api]["DependsOn"]


@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_each_function_may_send_its_traces(template, handler):
    [tracing] = [st for st in _role_policy(template, handler)["Statement"] if st["Sid"] == "Tracing"]
    assert tracing["Action"] == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


def test_the_event_bus_is_in_the_stack_and_only_the_relay_puts_on_it(template):
    """The domain events' bus: the functions are told its name, the poll function (the relay) may
    put events on it and no other function may."""
    bus = template["Resources"]["RefundEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus" and bus["Properties"]["Name"] == f"{STAGE}-refund-events"
    for name in ("api_handler", "restore", "poll", "reconcile"):
        doc = json.loads((ROOT / ".chalice" / f"policy-{STAGE}-{name}.json").read_text(encoding="utf-8"))
        puts = [st for st in doc["Statement"] if "events:PutEvents" in st["Action"]]
        if name == "poll":
            assert [r["Fn::Sub"] for st in puts for r in st["Resource"]] == [
                f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:event-bus/{STAGE}-refund-events"]
        else:
            assert puts == []


def test_complaint_sweep_role_reads_wechat_and_touches_only_the_complaint_tables_and_tasks(template):
    allowed = _allowed(_role_policy(template, "app.complaints_sweep"))
    assert allowed["ssm:GetParameter"] == WECHAT_PARAMS  # no tokens
    assert allowed["dynamodb:Query"] == {f"{TABLE_ARN}{STAGE}-complaints/index/open_by_due",
                                         f"{TABLE_ARN}{STAGE}-complaints/index/followup"}
    assert _tables_with(allowed, "dynamodb:PutItem") == {f"{STAGE}-complaint_history"}
    assert _tables_with(allowed, "dynamodb:UpdateItem") == {f"{STAGE}-complaints", f"{STAGE}-complaint_history",
                                                            f"{STAGE}-manual_tasks"}
    assert _tables_with(allowed, "dynamodb:GetItem") >= {f"{STAGE}-orders", f"{STAGE}-payment_refunds"}
    assert not {a for a in allowed if a.startswith("sqs:") and a != "sqs:SendMessage"}
    assert allowed["sqs:SendMessage"] == {ARN_PREFIX % "sqs" + f"{STAGE}-complaints_sweep-failures"}
    sweep = _function(template, "app.complaints_sweep")
    assert [e["Type"] for e in sweep["Properties"]["Events"].values()] == ["Schedule"]
    alarmed = {a["Properties"].get("MetricName") for a in _resources(template, "AWS::CloudWatch::Alarm").values()}
    assert {"ComplaintsOverdue", "ComplaintsNearDeadline", "ComplaintSweepErrors", "ComplaintListPages"} <= alarmed
    outputs = template["Outputs"]
    assert outputs["ComplaintNotifyUrl"]["Value"]["Fn::Sub"].endswith("/api/pay/wechat/notify/complaint")
