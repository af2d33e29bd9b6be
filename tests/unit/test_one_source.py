"""Each constant has one source. The OpenAPI document names enums (``x-enum``) instead of
copying their values, the refund-number pattern is the domain's, and the metric names the
template alarms on are the ones the code emits."""
import json
import re
from pathlib import Path

from chalicelib.domain import enums
from chalicelib.domain.refunds import REFUND_NO_RE
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


def test_the_console_words_no_server_error():
    """The console shows the server's ``message``; its API module words only what fails on its own
    side (no network, no answer, an answer that is not the API's), never a server error code."""
    from chalicelib.domain.errors import ErrorCode

    api = (ROOT / "chalicelib" / "console" / "js" / "api.js").read_text(encoding="utf-8")
    assert [c.value for c in ErrorCode if re.search(rf"\b{c.value}\b", api)] == []
