"""domain/search.py: what the search box's text may be, normalised."""
import pytest

from chalicelib.domain import search as search_rules
from chalicelib.domain.errors import ValidationError


def test_numbers_are_nfkc_trimmed_and_tried_in_each_case():
    q = search_rules.parse("\u3000ｒｆ２０２６ab\u200b ")
    assert q.text == "rf2026ab" and q.numbers == ("rf2026ab", "RF2026AB")
    assert search_rules.parse("4200001").numbers == ("4200001",)


def test_text_that_cannot_be_a_number_is_only_a_nickname():
    q = search_rules.parse(" 盲盒 Collector ")
    assert (q.numbers, q.nickname, q.phone) == ((), "盲盒 collector", None)


@pytest.mark.parametrize("typed", ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000", "8613800138000",
                                   "１３８００１３８０００", "(138)00138000"])
def test_mobile_numbers_in_their_usual_spellings(typed):
    assert search_rules.mobile(typed) == "13800138000"


@pytest.mark.parametrize("typed", ["23800138000", "1380013800", "138001380001", "86138", "", None, "phone"])
def test_what_is_not_a_mobile_number(typed):
    assert search_rules.mobile(typed) is None


@pytest.mark.parametrize("raw", [None, 12, "", " \u200b ", "a" * 65, "a\x07b"])
def test_refused(raw):
    with pytest.raises(ValidationError) as e:
        search_rules.parse(raw)
    assert e.value.details["field"] == "q"


def test_keys_match_what_the_search_compares():
    from chalicelib.adapters import keys

    assert keys.nickname_key(" Ｍｉｎｇ ") == keys.nickname_key("ming") == "ming"
    assert keys.nickname_key("  ") is None
    assert keys.transaction_key(" ４２００ ") == "4200"
    one = keys.phone_key("+86 138-0013-8000")
    assert one == keys.phone_key("13800138000") and len(one) == 64 and "13800138000" not in one
    assert keys.phone_key("12345") is None
