"""The project as the stack sees it: the Chalice app's functions, queues and tables for one
stage (read from the code and ``.chalice/config.json``), and the names of the resources made
for them. ``deploy/build_resources.py`` and ``deploy/monitoring.py`` build from it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Secrets, read at runtime from SSM Parameter Store (SecureString) through ``<NAME>_PARAM``
# (chalicelib.config.secret). Parameter names: /<app>/<stage>/<suffix>.
SECRETS = {
    "WECHAT_PRIVATE_KEY": "wechat/private-key",
    "WECHAT_APIV3_KEY": "wechat/apiv3-key",
    "WECHAT_PUBLIC_KEY": "wechat/public-key",
    # optional: WeChat Pay's platform certificates (PEM); left out, they are downloaded from WeChat
    "WECHAT_PLATFORM_CERTS": "wechat/platform-certificates",
    "ADMIN_JWT_SECRET": "jwt/admin-secret",
    "USER_JWT_SECRET": "jwt/user-secret",
    "CURSOR_SECRET": "api/cursor-secret",
    "MINIAPP_SECRET": "miniapp/app-secret",  # the mini-program's AppSecret: subscription messages' token
    "PHONE_HASH_SECRET": "api/phone-hash-secret",  # keys.phone_key: users' phone search key
}


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
    scheduled: bool = False  # invoked asynchronously by an EventBridge schedule
    every_minutes: int = 0  # a rate schedule's period

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
            fn.scheduled = True
            expr = source.schedule_expression
            minutes = {"MINUTES": 1, "HOURS": 60, "DAYS": 1440}.get(str(getattr(expr, "unit", "")).upper())
            if minutes:
                fn.every_minutes = int(expr.value) * minutes
                if source.name == "poll":
                    poll_minutes = fn.every_minutes
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
    return Project(app_name=app_name, stage=stage, api_stage=config.api_gateway_stage or "api", env=env,
                   functions=functions, routes=set(app.routes), poll_minutes=poll_minutes or 5,
                   tables=tables)


def table_logical_id(model) -> str:
    return cfn_name(model.Meta.base_name) + "Table"


def index_names(model) -> list[str]:
    schema = model._get_schema()
    return sorted(i["index_name"] for kind in ("global_secondary_indexes", "local_secondary_indexes")
                  for i in schema.get(kind) or [])


def queue_logical_id(project: Project, queue: str) -> str:
    base = queue[len(project.stage) + 1:] if queue.startswith(project.stage + "-") else queue
    return cfn_name(base) + "Queue"


def dlq_logical_id(project: Project, queue: str) -> str:
    return queue_logical_id(project, queue)[: -len("Queue")] + "DeadLetterQueue"


def failure_queue_name(project: Project, fn: Function) -> str:
    return f"{fn.name[len(project.app_name) + 1:]}-failures"  # prod-poll-failures


def failure_queue_logical_id(fn: Function) -> str:
    return f"{fn.logical_id}FailureQueue"
