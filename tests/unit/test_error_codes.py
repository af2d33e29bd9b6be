"""One list of error codes: the enum, the HTTP statuses chosen for them, the README's table and
the OpenAPI document say the same thing."""
import json
import re
from pathlib import Path

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
