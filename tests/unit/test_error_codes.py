"""One list of error codes: the enum, the HTTP statuses chosen for them, the README's table and
the OpenAPI document say the same thing; the messages are Chinese."""
import json
import re
from datetime import date
from pathlib import Path

import pytest

from chalicelib.domain.errors import ErrorCode
from chalicelib.entrypoints.errors import HTTP_STATUS

ROOT = Path(__file__).resolve().parents[2]


def _readme_table() -> dict[str, int]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Errors", 1)[1].split("\n### ", 1)[0]
    return {code: int(status) for code, status in re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", section, re.M)}


def test_every_code_has_exactly_one_http_status():
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert all(400 <= s <= 599 for s in HTTP_STATUS.values())


def test_readme_table_lists_every_code_with_its_status():
    assert _readme_table() == {code.value: status for code, status in HTTP_STATUS.items()}


def test_openapi_error_schema_enumerates_the_codes():
    from chalicelib.entrypoints import docs

    raw = json.loads((ROOT / "chalicelib" / "openapi.json").read_text(encoding="utf-8"))
    assert raw["components"]["schemas"]["Error"]["properties"]["code"] == {
        **raw["components"]["schemas"]["Error"]["properties"]["code"], "x-enum": "ErrorCode"}
    documented = docs.document()["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
    assert set(documented) == {c.value for c in ErrorCode} | {"FAIL"}  # FAIL: WeChat's notify protocol
    assert len(documented) == len(set(documented))


def test_codes_compare_equal_to_their_text():
    assert ErrorCode.OUTCOME_MISMATCH == "OUTCOME_MISMATCH" and str(ErrorCode.FORBIDDEN) == "FORBIDDEN"


CJK = re.compile(r"[\u4e00-\u9fff]")


def test_the_messages_people_see_are_chinese():
    """The console and the mini-app show the server's message as it is: refusals of the request,
    the token and the framework are worded in Chinese."""
    from datetime import date, datetime, timezone

    from chalicelib.adapters import auth
    from chalicelib.domain import reconciliation, refunds, staff
    from chalicelib.domain.errors import DomainError
    from chalicelib.entrypoints import contract, http

    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    failures = {
        "amount type": lambda: refunds.parse_amount("1"),
        "amount zero": lambda: refunds.parse_amount(0),
        "amount huge": lambda: refunds.parse_amount(10**13),
        "reason missing": lambda: refunds.parse_reason(None, required=True),
        "reason control": lambda: refunds.parse_reason("退\x00款", required=False),
        "reason bytes": lambda: refunds.parse_reason("长" * 27, required=True),
        "refund_no": lambda: refunds.validate_refund_no("a b"),
        "day": lambda: staff.parse_day("2026-13-01", "from", date(2026, 12, 4)),
        "range": lambda: staff.day_range(date(2026, 1, 2), date(2026, 1, 1)),
        "bill date": lambda: reconciliation.parse_bill_date("2020-01-01", now),
        "unknown field": lambda: http.only_fields({"x": 1}, set()),
        "choice": lambda: http.format_param({"format": "xml"}),
        "no token": lambda: auth.verify(None, "staff"),
        "malformed token": lambda: auth.verify("Bearer x", "staff"),
        "player token on a staff route": lambda: auth.verify(f"Bearer {auth.issue('user', 'u1001')}", "staff"),
    }
    for name, fail in failures.items():
        with pytest.raises(DomainError) as err:
            fail()
        assert CJK.search(err.value.message), (name, err.value.message)
    assert all(CJK.search(message) for _, message in contract.ERRORS.values())
