"""The deploy and rollback commands of docs/deploy.md (and the README's copy), run as written
with the AWS CLI against the local AWS endpoint (moto): ``cloudformation package`` uploads the
code to its S3, ``cloudformation deploy`` uploads the template and creates a change set through
CloudFormation's API. moto cannot run the SAM transform, so the change set is created but not
executed (``--no-execute-changeset`` is added to each deploy). A command the CLI refuses, such as
deploying the >51 200-byte template inline, fails here."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from devstack.aws import LocalAws

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "gacha-artifacts"
VALUES = {  # the values docs/deploy.md asks a person to set; they pass the template's own checks
    "STAGE": "prod", "BUCKET": BUCKET, "RELEASE": "v1.0.0", "PREVIOUS": "v1.0.0",
    "MCH_ID": "1900000109", "APP_ID": "wxd678efh567hg6787", "CERT_SERIAL": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "PUB_KEY_ID": "PUB_KEY_ID_0114232134912410000000000000", "NOTIFY_BASE_URL": "https://pay.example.com/api",
    "ALARM_EMAIL": "oncall@shop.example",
}
INLINE_LIMIT = 51_200


def documented(path: Path, name: str) -> str:
    """The ```sh block right after ``<!-- commands: NAME ...-->`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r"<!-- commands: " + re.escape(name) + r"\b[^>]*-->\s*```sh\n(.*?)```", text, re.S)
    assert m, f"{path.name} has no '<!-- commands: {name} -->' block"
    return m.group(1)


def without_continuations(block: str) -> list[str]:
    return [c.strip() for c in re.sub(r"\\\n\s*", " ", block).splitlines()
            if c.strip() and not c.strip().startswith("#")]


def dry_run(block: str) -> str:
    """Each ``cloudformation deploy`` only creates its change set (moto cannot transform SAM)."""
    return "\n".join(c + " --no-execute-changeset" if c.startswith("aws cloudformation deploy") else c
                     for c in without_continuations(block))


@pytest.fixture(scope="module")
def endpoint():
    server = LocalAws()
    server.start()
    _, port = server.get_host_and_port()
    # "localhost", not 127.0.0.1: moto's CloudFormation finds the bucket of a TemplateURL in its
    # path only for that host name
    yield f"http://localhost:{port}"
    server.stop()


@pytest.fixture(scope="module")
def workdir(built, endpoint, tmp_path_factory):
    work = tmp_path_factory.mktemp("deploy")
    (work / "out" / "prod").mkdir(parents=True)
    for name in ("sam.json", "deployment.zip"):
        shutil.copy2(built["out"] / name, work / "out" / "prod" / name)
    return work


def _env(endpoint: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(VALUES, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="ap-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return env


def run(script: str, cwd: Path, endpoint: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=_env(endpoint),
                          capture_output=True, text=True, timeout=600)


def _client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="ap-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_readme_shows_the_same_deploy_commands_as_the_guide():
    assert documented(ROOT / "README.md", "deploy") == documented(ROOT / "docs" / "deploy.md", "deploy")


@pytest.fixture(scope="module")
def deployed(workdir, endpoint):
    _client("s3", endpoint).create_bucket(Bucket=BUCKET,
                                          CreateBucketConfiguration={"LocationConstraint": "ap-east-1"})
    proc = run(dry_run(documented(ROOT / "docs" / "deploy.md", "deploy")), workdir, endpoint)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_documented_deploy_packages_to_s3_and_reaches_cloudformation(deployed, workdir, endpoint, built):
    packaged = (workdir / "out" / "prod" / "packaged.yaml").read_text(encoding="utf-8")
    assert len(packaged.encode()) > INLINE_LIMIT  # why the template has to go through S3
    s3 = _client("s3", endpoint)
    keys = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    code_uri = re.search(r"CodeUri: (s3://\S+)", packaged).group(1)
    assert code_uri.startswith(f"s3://{BUCKET}/gacha-refunds/prod/")
    assert keys[code_uri.split("/", 3)[3]] == (built["out"] / "deployment.zip").stat().st_size
    assert "gacha-refunds/prod/releases/v1.0.0/packaged.yaml" in keys
    assert any(k.endswith(".template") for k in keys)  # deploy uploaded the template itself

    cfn = _client("cloudformation", endpoint)
    [summary] = cfn.list_change_sets(StackName="gacha-refunds-prod")["Summaries"]
    change_set = cfn.describe_change_set(StackName="gacha-refunds-prod", ChangeSetName=summary["ChangeSetName"])
    added = {c["ResourceChange"]["LogicalResourceId"] for c in change_set["Changes"]}
    assert added == set(built["template"]["Resources"])
    params = {p["ParameterKey"]: p["ParameterValue"] for p in change_set["Parameters"]}
    assert params["WechatMchId"] == VALUES["MCH_ID"] and params["NotifyBaseUrl"] == VALUES["NOTIFY_BASE_URL"]
    assert params["AlarmEmail"] == VALUES["ALARM_EMAIL"]  # the alarms reach someone from the first deploy


def test_documented_rollback_redeploys_the_kept_release(deployed, workdir, endpoint):
    proc = run(dry_run(documented(ROOT / "docs" / "deploy.md", "rollback")), workdir, endpoint)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (workdir / "out" / "prod" / "rollback.yaml").read_bytes() == \
        (workdir / "out" / "prod" / "packaged.yaml").read_bytes()
    summaries = _client("cloudformation", endpoint).list_change_sets(StackName="gacha-refunds-prod")["Summaries"]
    assert len(summaries) == 2


def test_the_cli_refuses_the_inline_deploy_the_docs_used_to_show(deployed, workdir, endpoint):
    """Without --s3-bucket, the CLI's own check stops the deploy: the test would catch that doc."""
    commands = without_continuations(documented(ROOT / "docs" / "deploy.md", "deploy"))
    deploy = next(c for c in commands if c.startswith("aws cloudformation deploy"))
    inline = re.sub(r" --s3-(bucket|prefix) \S+", "", deploy) + " --no-execute-changeset"
    proc = run(inline, workdir, endpoint)
    assert proc.returncode != 0
    assert "51,200 bytes" in proc.stderr and "--s3-bucket" in proc.stderr


def test_packaged_template_passes_cloudformation_validation(deployed, workdir, endpoint):
    """ValidateTemplate on the local endpoint lints the template (moto runs cfn-lint); a broken
    copy is refused, so the check is real."""
    key = "gacha-refunds/prod/releases/v1.0.0/packaged.yaml"
    proc = run(f"aws cloudformation validate-template --template-url {endpoint}/{BUCKET}/{key}", workdir, endpoint)
    assert proc.returncode == 0, proc.stderr
    s3 = _client("s3", endpoint)
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert "Type: AWS::SQS::Queue\n" in body
    s3.put_object(Bucket=BUCKET, Key="broken.yaml", Body=body.replace("Type: AWS::SQS::Queue\n", "Type: AWS::SQS::Qeue\n"))
    proc = run(f"aws cloudformation validate-template --template-url {endpoint}/{BUCKET}/broken.yaml", workdir, endpoint)
    assert proc.returncode != 0 and "ValidationError" in proc.stderr
