"""Measure what a cold start pays to import app.py from a deployment package, with and
without the compiled bytecode that deploy/add_bytecode.py adds.

Each run is a fresh interpreter that neither reads site-packages (-S) nor writes
bytecode (-B, as on Lambda's read-only code directory), importing ``app`` from the
unzipped package with the stage's environment. Prints the median of ``--runs``.

Usage: python -m deploy.measure_coldstart out/prod/deployment.zip [--runs 15]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PROBE = ("import time, sys; t = time.perf_counter(); import app; "
          "d = time.perf_counter() - t; "
          "heavy = [m for m in ('boto3', 'botocore', 'pynamodb', 'wechatpayv3', 'requests', 'cryptography') "
          "if m in sys.modules]; print(d * 1000, ','.join(heavy))")


def _extract(zip_path: Path, dest: Path, with_pyc: bool) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            if with_pyc or not name.endswith(".pyc"):
                zf.extract(name, dest)


def _median_ms(code_dir: Path, env: dict, runs: int) -> tuple[float, str]:
    samples, heavy = [], ""
    for i in range(runs + 1):
        out = subprocess.run([sys.executable, "-S", "-B", "-c", _PROBE], cwd=code_dir, env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        if i:  # the first run warms the page cache
            samples.append(float(out[0]))
        heavy = out[1] if len(out) > 1 else ""
    return statistics.median(samples), heavy


def measure(zip_path: Path, stage: str = "prod", runs: int = 15) -> dict:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "ap-east-1", "AWS_REGION": "ap-east-1",
           **config["stages"][stage].get("environment_variables", {})}
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, with_pyc in (("without .pyc", False), ("with .pyc", True)):
            code_dir = Path(tmp) / label.replace(" ", "_")
            _extract(zip_path, code_dir, with_pyc)
            result[label] = _median_ms(code_dir, env, runs)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="import time of app from a deployment zip")
    parser.add_argument("zip", type=Path)
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    for label, (ms, heavy) in measure(args.zip, args.stage, args.runs).items():
        print(f"import app {label}: median {ms:.0f} ms over {args.runs} runs (loaded: {heavy or 'nothing heavy'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
