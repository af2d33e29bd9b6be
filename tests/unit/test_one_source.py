"""Each constant has one source. The OpenAPI document names enums (``x-enum``) instead of
copying their values, the refund-number pattern is the domain's, the metric names the
template alarms on are the ones the code emits, each reconciliation class has its metric,
and the README's permission table is the domain's."""
import io
import json
import re
from pathlib import Path

import pytest

from chalicelib import metrics
from chalicelib.domain import enums
from chalicelib.domain.enums import ReconClass
from chalicelib.domain.reconciliation import Figures, Finding
from chalicelib.domain.refunds import REFUND_NO_RE
from chalicelib.domain.staff import PERMISSIONS
from chalicelib.entrypoints import docs

ROOT = Path(__file__).resolve().parents[2]
RAW = json.loads((ROOT / "chalicelib" / "openapi.json").read_text(encoding="utf-8"))


def _walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_the_committed_document_copies_no_domain_enum():
    values = {tuple(sorted(map(str, v))) for v in docs.enum_values().values()}
    for path, node in _walk(RAW):
        if "enum" in node:
            listed = tuple(sorted(str(v) for v in node["enum"] if v is not None))
            assert listed not in values, f"{path} copies a domain enum: name it with x-enum instead"


def test_every_named_enum_is_filled_from_the_domain():
    served = docs.document()
    named = [(p, n) for p, n in _walk(served) if "x-enum" in n]
    assert len(named) > 30
    for path, node in named:
        expected = docs.enum_values()[node["x-enum"]]
        assert [v for v in node["enum"] if v is not None] == expected, path
        assert (None in node["enum"]) == bool(node.get("nullable")), path
    refund_status = served["components"]["schemas"]["Refund"]["properties"]["status"]["enum"]
    assert "offline_pending" in refund_status


def test_refund_number_patterns_are_the_domains():
    patterns = {n["pattern"] for _, n in _walk(RAW) if n.get("pattern") and "refund_no" in json.dumps(n)
                or (n.get("type") == "string" and n.get("pattern", "").startswith("^[A-Za-z0-9_-]"))}
    assert patterns == {REFUND_NO_RE.pattern}


def test_the_catalogue_serves_every_label():
    cat = enums.catalogue()
    assert cat["RefundStatus"]["offline_pending"] == "待线下退款"
    assert cat["OrderStatus"]["2"] == "已支付" and cat["PayoutChannel"]["bank_transfer"] == "银行转账"
    assert all(re.fullmatch(r"[A-Za-z]+", name) for name in cat)


@pytest.mark.parametrize("cls", list(ReconClass))
def test_every_reconciliation_class_has_its_metric_and_each_discrepancy_counts(cls):
    """One finding of each class: a discrepancy (every class but 一致) has its own metric and
    counts in ReconDiscrepancies, the metric the stack's discrepancy alarm watches
    (tests/deploy/test_metrics.py)."""
    figures = Figures()
    figures.add(Finding(cls, kind="refund", order_no="GB1", refund_no="RF1", ours_amount=500))
    doc = metrics.emit_reconciliation("2026-05-01", "done", figures, stream=io.StringIO())
    counted = {name for name, value in doc.items() if name.startswith("Recon") and value == 1}
    discrepancy = cls is not ReconClass.MATCHED
    assert doc["ReconDiscrepancies"] == figures.discrepancies == int(discrepancy)
    if discrepancy:
        [own] = counted - {"ReconDiscrepancies"}
        assert own.lower() == "recon" + cls.value.replace("_", "") and own in metrics.all_metrics()
    else:
        assert counted == {"ReconMatched"}


def _readme_table(heading: str) -> list[list[str]]:
    """The first Markdown table under ``heading`` in the README, as rows of cells (header first)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1]
    lines = section[section.index("\n|") + 1:].splitlines()
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in
            lines[:next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))]]
    return [rows[0]] + rows[2:]  # without the alignment row


def test_the_readme_permission_table_is_the_domains():
    header, *rows = _readme_table("### Staff roles")
    roles = {i: enums.StaffRole(cell.split()[0]) for i, cell in enumerate(header) if cell.split()[0] in
             enums.StaffRole.labels()}
    assert sorted(roles.values()) == sorted(enums.StaffRole)
    for i, role in roles.items():
        assert header[i] == f"{role.value} {role.label}"
    ticks = {}
    for row in rows:
        permission = enums.Permission(row[0].strip("`"))
        assert permission not in ticks, f"{permission.value} is listed twice"
        marks = {row[i] for i in roles}
        assert marks <= {"✓", "–"}, f"{permission.value}: a tick is ✓ or –, got {marks}"
        ticks[permission] = {role for i, role in roles.items() if row[i] == "✓"}
    assert set(ticks) == set(enums.Permission), "the README lists every permission once"
    for permission, allowed in ticks.items():
        assert allowed == {role for role in enums.StaffRole if permission in PERMISSIONS[role]}, permission.value
def test_the_console_words_no_server_error():
    """The console shows the server's ``message``; its API module words only what fails on its own
    side (no network, no answer, an answer that is not the API's), never a server error code."""
    from chalicelib.domain.errors import ErrorCode

    api = (ROOT / "chalicelib" / "console" / "js" / "api.js").read_text(encoding="utf-8")
    assert [c.value for c in ErrorCode if re.search(rf"\b{c.value}\b", api)] == []
