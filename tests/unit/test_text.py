"""Free-text rules (chalicelib/domain/text.py) and the reason parser built on them."""
from __future__ import annotations

import csv
import io
import unicodedata

import pytest

from chalicelib.domain import text
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.refunds import MAX_WECHAT_REASON_BYTES, parse_reason
from chalicelib.entrypoints.http import json_depth


def _refused(fn, *args, **kwargs) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        fn(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("value", ["\u200b", "\ufeff", " \u3000\u00a0\u2003", "\u2060\u180e\u00ad", "\u3164\u115f",
                                   "\u2800", "\u0301\u034f", "\u200d\ufe0f", "", "   "])
def test_invisible_text_counts_as_missing(value):
    assert text.is_blank(value)
    err = _refused(parse_reason, value, required=True)
    assert err.details == {"field": "reason"} and err.message == "原因（reason）不能为空（没有可见的字符）"
    assert parse_reason(value, required=False, field_name="note") == ""


@pytest.mark.parametrize("value", ["a", "质量问题", "👍", "\u200bx", "e\u0301", "\U0001F3F4\U000E0067\U000E0062\U000E007F"])
def test_visible_text_is_not_blank(value):
    assert not text.is_blank(value)


@pytest.mark.parametrize("char,what", [
    ("\x00", "U+0000"), ("\x07", "U+0007"), ("\x1b", "U+001B"), ("\r", "U+000D"), ("\n", "U+000A"),
    ("\t", "U+0009"), ("\x7f", "U+007F"), ("\x85", "U+0085"), ("\u2028", "U+2028"), ("\u2029", "U+2029"),
    ("\u202e", "U+202E"), ("\u2066", "U+2066"), ("\ufffe", "U+FFFE"), ("\ufdd0", "U+FDD0"),
    ("\ud800", "代理项"), ("\udfff", "代理项"),
])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_control_characters_and_invalid_unicode_are_refused_naming_the_field(char, what, where):
    value = {"start": char + "退款", "middle": "退" + char + "款", "end": "退款" + char}[where]
    err = _refused(parse_reason, value, required=False, field_name="note")
    assert err.details == {"field": "note"} and err.message.startswith("备注（note）含有不允许的") and what in err.message
    assert text.forbidden_char(value) is not None


def test_text_is_nfc_normalised_and_trimmed_of_invisible_ends():
    decomposed = "e\u0301\u0063\u0327"  # é ç, decomposed
    assert parse_reason(f"\ufeff \u200b{decomposed}\u3000\u200b", required=True) == unicodedata.normalize("NFC",
                                                                                                      decomposed)
    assert parse_reason("a\u200db", required=True) == "a\u200db"  # inside: left alone (emoji sequences)
    flag = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
    assert parse_reason(f" {flag} ", required=True) == flag  # the tag characters ending a flag stay
    assert parse_reason("ที่", required=True) == "ที่"  # trailing combining marks belong to the letter


def test_wechat_reason_is_limited_in_utf8_bytes():
    assert MAX_WECHAT_REASON_BYTES == 80
    ok = "长" * 26 + "ab"  # 80 bytes
    assert parse_reason(ok, required=True) == ok
    err = _refused(parse_reason, "长" * 27, required=True)  # 81 bytes, 27 characters
    assert err.details == {"field": "reason", "max_bytes": 80, "bytes": 81}
    assert err.message == "原因（reason）最多 80 字节（约 26 个汉字），这是微信接受的上限"
    assert parse_reason("x" * 80, required=True) == "x" * 80
    _refused(parse_reason, "x" * 81, required=True)
    # counted after normalising: 26 decomposed é (52 characters, 78 bytes) become 26 (52 bytes)
    assert parse_reason("e\u0301" * 26, required=True) == "é" * 26


def test_reasons_kept_here_may_be_longer_in_characters():
    long = "长" * 200
    assert parse_reason(long, required=True, sent_to_wechat=False) == long
    assert parse_reason(long, required=False, field_name="note") == long
    err = _refused(parse_reason, long + "长", required=False, field_name="note")
    assert err.details == {"field": "note", "max_chars": 200}


@pytest.mark.parametrize("raw", [1, 1.5, True, ["x"], {"a": "b"}])
def test_non_strings_are_refused(raw):
    assert _refused(parse_reason, raw, required=False).message == "原因（reason）必须是文本（字符串）"


@pytest.mark.parametrize("cell,expected", [
    ("=1+1", "'=1+1"), ("+86 138", "'+86 138"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("  =HYPERLINK(\"x\")", "'  =HYPERLINK(\"x\")"),
    ("\u200b=1", "'\u200b=1"), ("＝1+1", "'＝1+1"), ("\u3000-1", "'\u3000-1"),
    ("退货入库", "退货入库"), ("a=1", "a=1"), ("'=1", "'=1"), ("", ""), (None, None), (5, 5),
])
def test_csv_cells_that_could_start_a_formula_are_neutralised(cell, expected):
    assert text.neutralise_csv_cell(cell) == expected


def test_a_neutralised_row_reads_back_as_text():
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL).writerow([text.neutralise_csv_cell(c) for c in ["=cmd|' /C calc'!A0",
                                                                                            "a,\"b\"", "ok"]])
    assert out.getvalue() == '"\'=cmd|\' /C calc\'!A0","a,""b""","ok"\r\n'
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'=cmd|' /C calc'!A0", 'a,"b"', "ok"]


@pytest.mark.parametrize("raw,depth", [
    (b"{}", 1), (b'{"a": [1, {"b": 2}]}', 3), (b'{"a": "[[[[{{{{"}', 1), (b'{"a": "\\"[[["}', 1),
    (b"[" * 1000, 1000), (b"1", 0), (b'{"a": "unterminated [[[', 4),
])
def test_json_depth_is_counted_without_parsing(raw, depth):
    assert json_depth(raw) == depth


from hypothesis import given, settings, strategies as st  # noqa: E402

ANY_TEXT = st.text(alphabet=st.sampled_from("\ud800\x00\x1b\n\u200b\ufeff\u3000\u0301\u202e e长")
                   | st.characters(exclude_categories=()), max_size=120)  # surrogates too


@settings(max_examples=400, deadline=None)
@given(raw=ANY_TEXT, required=st.booleans(), wechat=st.booleans())
def test_any_text_is_either_refused_or_clean(raw, required, wechat):
    try:
        value = parse_reason(raw, required=required, sent_to_wechat=wechat)
    except ValidationError as err:
        assert err.details["field"] == "reason"
        return
    assert text.forbidden_char(value) is None
    assert value == unicodedata.normalize("NFC", value) and value == text.trim(value)
    value.encode("utf-8")  # never a lone surrogate (this would raise)
    assert len(value) <= 200 and (not wechat or len(value.encode()) <= MAX_WECHAT_REASON_BYTES)
    assert (value == "") == text.is_blank(value) and (value or not required)
