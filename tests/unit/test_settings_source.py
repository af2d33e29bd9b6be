"""Every setting is read in chalicelib/config.py: no other module of the service (nor app.py)
reads the environment, so each setting has one name, one default and one parser."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path("chalicelib/config.py")
ENV_NAMES = {"environ", "environb", "getenv", "getenvb"}
# Reads that move into config.py with the WeChat adapter's split (WECHAT_TIMEOUT_SECONDS,
# WECHAT_BILL_TIMEOUT_SECONDS). An entry that no longer matches a read fails the test: remove it.
def _sources() -> list[Path]:
    files = sorted(p.relative_to(ROOT) for p in (ROOT / "chalicelib").rglob("*.py"))
    return [p for p in files if p != CONFIG] + [Path("app.py")]


def _variable(node: ast.AST, parents: dict) -> str | None:
    """The variable a read names, when it is a literal: ``os.environ.get("X")``, ``os.environ["X"]``,
    ``os.getenv("X")``."""
    parent = parents.get(node)
    if isinstance(parent, ast.Attribute) and isinstance(parents.get(parent), ast.Call):
        parent = parents[parent]  # os.environ.get(...)
    if isinstance(parent, ast.Call) and parent.args and isinstance(parent.args[0], ast.Constant):
        return parent.args[0].value
    if isinstance(parent, ast.Subscript) and isinstance(parent.slice, ast.Constant):
        return parent.slice.value
    return None


def env_reads(source: str) -> list[tuple[int, str | None]]:
    """(line, variable) of each way ``source`` reaches the environment through ``os``."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [(node.lineno, None) for alias in node.names if alias.name in ENV_NAMES | {"*"}]
        elif isinstance(node, ast.Attribute) and node.attr in ENV_NAMES and isinstance(node.value, ast.Name) \
                and node.value.id == "os":
            found.append((node.lineno, _variable(node, parents)))
    return sorted(found, key=lambda read: read[0])


def test_only_config_reads_the_environment():
    stray = [f"{path}:{line} reads {name or 'the environment'}"
             for path in _sources() for line, name in env_reads((ROOT / path).read_text(encoding="utf-8"))]
    assert stray == [], "read settings in chalicelib/config.py: " + "; ".join(stray)


@pytest.mark.parametrize("source", [
    'import os\nx = os.environ.get("A")',
    'import os\nx = os.environ["A"]',
    'import os\nx = os.getenv("A", "1")',
    'import os\nx = dict(os.environ)',
    'from os import environ\nx = environ.get("A")',
    'from os import getenv',
])
def test_every_way_of_reading_is_seen(source):
    assert env_reads(source)


def test_the_variable_read_is_named():
    assert env_reads('import os\na = os.environ.get("A")\nb = os.environ["B"]\nc = os.getenv("C")') == \
        [(2, "A"), (3, "B"), (4, "C")]
    assert env_reads("import os\npath = os.path.join('a', 'b')") == []
