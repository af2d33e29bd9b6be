"""Package the service as one CloudFormation (SAM) template plus its code: ``make package``.

Steps, each printed as it runs:

1. ``deploy/build_resources.py``: tables, queues, alarms, parameters and the function
   settings derived from the code -> ``deploy/out/resources-<stage>.json``; the IAM
   policies -> ``.chalice/policy-<stage>-<function>.json``, one per function;
2. ``chalice package --stage <stage> --pkg-format cloudformation --merge-template
   deploy/out/resources-<stage>.json <out>`` -> ``<out>/sam.json`` and ``<out>/deployment.zip``,
   run on a copy of the project in ``build/chalice/<stage>/`` whose ``requirements.txt`` is
   ``requirements.lock``: the bundle holds exactly the locked packages, checked against their
   hashes (Chalice only reads a file of that name);
3. a check that every merged resource is complete (a merge into a resource Chalice did
   not generate would leave it without a Type);
4. ``deploy/add_bytecode.py``: compiled bytecode into the zip (faster cold starts);
5. ``cfn-lint <out>/sam.json`` (``--no-lint`` skips it).

Works offline from AWS: no credentials needed (chalice downloads the Lambda wheels of
requirements.lock from PyPI on the first run and caches them in build/chalice/<stage>/.chalice/).
The Lambda runtime is the packaging Python's version (Chalice's rule): run it with Python 3.13.

Usage: python -m deploy.package --stage prod [--out out/prod] [--no-lint]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_REGION = "ap-east-1"


def _run(cmd: list[str], env: dict | None = None) -> None:
    shown = [os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in cmd]
    print("+ " + shlex.join(shown), flush=True)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


def stage_project(stage: str) -> Path:
    """A copy of what Chalice packages, with the lock as its requirements.txt. The directory
    is kept between runs so Chalice's cache of downloaded wheels (``.chalice/deployments``)
    survives; the code and config are copied afresh every time."""
    staged = ROOT / "build" / "chalice" / stage
    (staged / ".chalice").mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "chalicelib", "vendor"):
        target = staged / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, target)
    for old in (staged / ".chalice").glob("*.json"):
        old.unlink()
    for config in (ROOT / ".chalice").glob("*.json"):
        shutil.copy2(config, staged / ".chalice" / config.name)
    shutil.copy2(ROOT / "requirements.lock", staged / "requirements.txt")
    return staged


def check_merged(template_path: Path) -> None:
    template = json.loads(template_path.read_text(encoding="utf-8"))
    incomplete = [k for k, v in template["Resources"].items() if "Type" not in v]
    if incomplete:
        raise SystemExit(f"merged into resources chalice did not generate: {incomplete} "
                         "(did a handler get renamed? see deploy/build_resources.py)")


def package(stage: str, out: Path, lint: bool = True) -> Path:
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)  # chalice needs one; nothing calls AWS
    resources = ROOT / "deploy" / "out" / f"resources-{stage}.json"
    _run([sys.executable, "-m", "deploy.build_resources", "--stage", stage, "--out", str(resources)], env)
    _run([sys.executable, "-m", "deploy.lock", "--check"], env)
    staged = stage_project(stage)
    _run([str(BIN / "chalice"), "--project-dir", str(staged), "package", "--stage", stage,
          "--pkg-format", "cloudformation", "--merge-template", str(resources), str(out)], env)
    template = out / "sam.json"
    check_merged(template)
    runtime = next(r["Properties"]["Runtime"] for r in json.loads(template.read_text())["Resources"].values()
                   if r["Type"] == "AWS::Serverless::Function")
    _run([sys.executable, "-m", "deploy.add_bytecode", str(out / "deployment.zip"), "--runtime", runtime], env)
    if lint:
        _run([str(BIN / "cfn-lint"), str(template), "--regions", env["AWS_DEFAULT_REGION"]], env)
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the CloudFormation package of a stage")
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", type=Path, help="output directory (default out/<stage>)")
    parser.add_argument("--no-lint", action="store_true")
    args = parser.parse_args(argv)
    out = (args.out or ROOT / "out" / args.stage).resolve()
    try:
        template = package(args.stage, out, lint=not args.no_lint)
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    print(f"packaged {os.path.relpath(template, ROOT)} and {os.path.relpath(out / 'deployment.zip', ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
