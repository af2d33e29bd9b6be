"""The ``wechatpayv3`` SDK is imported by the WeChat package alone, and there only inside
functions: nothing else in the service depends on it, and importing the package (or the app)
does not load it on a cold start."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib" / "adapters" / "wechat"
SERVICE = [ROOT / "app.py", *(ROOT / name for name in ("chalicelib", "devstack", "bench", "deploy"))]


def _sources():
    for place in SERVICE:
        yield from ([place] if place.is_file() else sorted(place.rglob("*.py")))


def _sdk_imports(tree: ast.AST):
    """(node, inside a function) for each import of the SDK."""
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            names = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                names = [child.module or ""]
            if any(name == "wechatpayv3" or name.startswith("wechatpayv3.") for name in names):
                yield child, in_function
            yield from walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    yield from walk(tree, False)


def test_only_the_wechat_package_imports_the_sdk_and_only_lazily():
    inside, outside, eager = [], [], []
    for path in _sources():
        for node, in_function in _sdk_imports(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if PACKAGE not in path.parents:
                outside.append(where)
            elif not in_function:
                eager.append(where)
            else:
                inside.append(where)
    assert not outside, f"only {PACKAGE.relative_to(ROOT)} may import wechatpayv3: {outside}"
    assert not eager, f"import wechatpayv3 inside the function that needs it: {eager}"
    assert inside  # the scan sees the package's own (lazy) imports
