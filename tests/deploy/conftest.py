"""The packaged stack, built once per session exactly as ``make package`` does (offline, no
AWS credentials), for every test of this directory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGE = "prod"


def _offline_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("STAGE", "TABLE_PREFIX", "RESTORE_QUEUE_NAME")}
    env.update(AWS_DEFAULT_REGION="ap-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / STAGE
    env = _offline_env()
    check = subprocess.run([sys.executable, "-m", "deploy.build_resources", "--stage", STAGE, "--check"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    proc = subprocess.run([sys.executable, "-m", "deploy.package", "--stage", STAGE, "--out", str(out),
                           "--no-lint"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"out": out, "policy_check": check,
            "template": json.loads((out / "sam.json").read_text(encoding="utf-8"))}


