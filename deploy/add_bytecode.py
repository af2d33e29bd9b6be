"""Add compiled bytecode to a Chalice deployment package.

Lambda's code directory is read-only, so Python cannot cache the bytecode it compiles
on import: without .pyc files in the zip every cold start compiles app.py, chalicelib
and every library it imports again (see docs/deploy.md for the figures).

The .pyc files use unchecked-hash invalidation: they are valid whatever the files'
timestamps after extraction, and the zip is rebuilt with its sources whenever they
change. They must be compiled by the same Python minor version as the Lambda runtime.

Usage: python -m deploy.add_bytecode out/prod/deployment.zip [--runtime python3.13]
"""
from __future__ import annotations

import argparse
import compileall
import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # like chalice: identical inputs give identical zips


def runtime_of_this_python() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def add_bytecode(zip_path: Path, runtime: str | None = None) -> int:
    """Compile every .py of ``zip_path`` into fresh .pyc files; returns how many.

    Any .pyc already in the zip is dropped first: Chalice copies ``chalicelib/`` whole, so a
    developer's ``__pycache__`` (stale, or from another Python) would otherwise ride along.
    Running it twice gives the same zip."""
    if runtime and runtime != runtime_of_this_python():
        raise SystemExit(f"the Lambda runtime is {runtime} but this is {runtime_of_this_python()}: "
                         "bytecode would not be used")
    zip_path = Path(zip_path)
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = Path(tmp) / "rebuilt.zip"
        src_dir = Path(tmp) / "src"
        with zipfile.ZipFile(zip_path) as zf, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out:
            for info in zf.infolist():
                if info.filename.endswith(".pyc"):
                    continue
                data = zf.read(info)
                out.writestr(info, data)
                if info.filename.endswith(".py"):
                    target = src_dir / info.filename
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
            compileall.compile_dir(src_dir, quiet=2, workers=0,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            compiled = sorted(src_dir.rglob("*.pyc"))
            for pyc in compiled:
                info = zipfile.ZipInfo(pyc.relative_to(src_dir).as_posix(), date_time=_FIXED_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                out.writestr(info, pyc.read_bytes())
        shutil.move(str(rebuilt), zip_path)
    return len(compiled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Add .pyc files to a Lambda deployment zip")
    parser.add_argument("zip", type=Path)
    parser.add_argument("--runtime", help="the functions' Runtime, e.g. python3.13 (checked against this Python)")
    args = parser.parse_args(argv)
    count = add_bytecode(args.zip, args.runtime)
    print(f"added {count} compiled modules to {args.zip}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
