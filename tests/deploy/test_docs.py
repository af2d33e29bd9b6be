"""docs/deploy.md describes the stack the code generates: every function, table, queue and alarm
it lists is in the packaged template and the reverse, each alarm's runbook is a section of the
page, and its recipe for a new stage builds."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, STAGE, _offline_env

DOC = ROOT / "docs" / "deploy.md"
PREFIX = f"gacha-refunds-{STAGE}-"


def _section(heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of its level or above."""
    text = DOC.read_text(encoding="utf-8")
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(r"\n#{1,%d} " % len(level), text[start + 1:])]
    return text[start: start + 1 + ends[0]] if ends else text[start:]


def _first_column(heading: str) -> list[str]:
    """The backticked names in the first column of the table under ``heading``."""
    return re.findall(r"^\| `([^`]+)` \|", _section(heading), re.M)


def _resources(template, type_) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def test_the_listed_functions_are_the_templates(template):
    assert sorted(_first_column("#### Functions")) == sorted(_resources(template, "AWS::Serverless::Function"))


def test_the_listed_tables_are_the_templates(template):
    tables = {t["Properties"]["TableName"] for t in _resources(template, "AWS::DynamoDB::Table").values()}
    assert sorted(f"{STAGE}-{t}" for t in _first_column("#### Tables")) == sorted(tables)


def test_the_listed_queues_are_the_templates(template):
    queues = {q["Properties"]["QueueName"] for q in _resources(template, "AWS::SQS::Queue").values()}
    assert sorted(q.replace("<stage>", STAGE) for q in _first_column("#### Queues")) == sorted(queues)


def _alarm_rows() -> dict[str, str]:
    """Alarm name pattern -> its runbook anchor, from the page's alarm table."""
    rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| \[[^\]]+\]\(#([a-z0-9-]+)\) \|$", _section("## Alarms"), re.M)
    return dict(rows)


def _expand(pattern: str, template) -> list[str]:
    """A documented name with ``<function>`` or ``<table>`` stands for one alarm of each."""
    handlers = [f["Properties"]["Handler"].split(".", 1)[1] for f in
                _resources(template, "AWS::Serverless::Function").values()]
    values = {"<function>": ["api-handler" if h == "app" else h.replace("_", "-") for h in handlers],
              "<table>": [t["Properties"]["TableName"][len(STAGE) + 1:].replace("_", "-")
                          for t in _resources(template, "AWS::DynamoDB::Table").values()]}
    for placeholder, names in values.items():
        if placeholder in pattern:
            return [pattern.replace(placeholder, n) for n in names]
    return [pattern]


def test_the_listed_alarms_are_the_templates_each_with_its_runbook(template):
    alarms = {a["Properties"]["AlarmName"][len(PREFIX):]: a["Properties"]["AlarmDescription"]
              for a in _resources(template, "AWS::CloudWatch::Alarm").values()}
    documented = {name: anchor for pattern, anchor in _alarm_rows().items() for name in _expand(pattern, template)}
    assert sorted(documented) == sorted(alarms)
    for name, anchor in documented.items():
        assert alarms[name].endswith(f"Runbook: docs/deploy.md#{anchor}"), name


def test_every_runbook_is_a_section_of_the_page():
    from deploy.monitoring import RUNBOOKS, slug

    text = DOC.read_text(encoding="utf-8")
    headings = re.findall(r"^### (.+)$", _section("## Alarms"), re.M)
    assert sorted(RUNBOOKS.values()) == sorted(headings)
    assert {slug(h) for h in headings} == set(_alarm_rows().values())
    for anchor in re.findall(r"\]\(#([a-z0-9-]+)\)", text):  # every link of the page lands on a heading
        assert anchor in {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}, anchor


def test_the_slug_is_the_renderers():
    from deploy.monitoring import slug

    assert slug("API 5XX answers") == "api-5xx-answers"
    assert slug("IAM: least privilege, one policy per function") == "iam-least-privilege-one-policy-per-function"
    assert slug("1. Store the secrets (once per stage, and on rotation)") == \
        "1-store-the-secrets-once-per-stage-and-on-rotation"


@pytest.fixture
def template(built):
    return built["template"]


def test_the_new_stage_recipe_builds(tmp_path):
    """The page's stage entry, added to a copy of the project, builds the stage's template and
    its six policy files (a missing queue name or policy file fails the build)."""
    block = re.search(r"<!-- stage-config: (\w+)[^>]*-->\s*```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block, "docs/deploy.md has no stage-config block"
    stage, entry = block.group(1), json.loads("{" + block.group(2) + "}")
    for name in ("app.py", "chalicelib", "deploy", ".chalice"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, tmp_path / name, **({"ignore": shutil.ignore_patterns("__pycache__", "deployments")}
                                             if (ROOT / name).is_dir() else {}))
    config_path = tmp_path / ".chalice" / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["stages"].update(entry)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "deploy.build_resources", "--stage", stage,
                           "--out", str(tmp_path / "resources.json")], cwd=tmp_path, env=_offline_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = sorted(p.name for p in (tmp_path / ".chalice").glob(f"policy-{stage}-*.json"))
    assert written == sorted(f"policy-{stage}-{f}.json" for f in
                             ("api_handler", "restore", "poll", "reconcile", "reconcile_continue",
                              "complaints_sweep"))
    resources = json.loads((tmp_path / "resources.json").read_text(encoding="utf-8"))["Resources"]
    queues = {r["Properties"]["QueueName"] for r in resources.values() if r.get("Type") == "AWS::SQS::Queue"}
    assert {f"{stage}-refund-restore", f"{stage}-reconciliation"} <= queues
