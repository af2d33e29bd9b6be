"""What staff type into the one search box, and what it may be: an order number, WeChat's
payment number (transaction_id), a refund number (ours or WeChat's), a player id, a nickname
or a phone number. Plain Python, no I/O.

Matching is exact after normalising, never a prefix or a substring (a number is looked up by
key, not scanned for):

- NFKC first, so full-width digits and letters typed on a Chinese keyboard ("４２００")
  equal their ASCII forms; then whitespace and invisible characters trimmed at both ends.
- Numbers are letters, digits, "_" and "-": matched case-insensitively (the variants as typed,
  upper and lower case are each looked up by key).
- A nickname is compared casefolded.
- A phone number is 11 digits starting with 1 (mainland China), spaces and dashes and a
  leading +86 / 0086 / 86 ignored; only its keyed hash is ever looked up or stored
  (``adapters.keys.phone_key``), never the number.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import invalid
from .text import forbidden_char

MAX_QUERY = 64
_NUMBER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_MOBILE = re.compile(r"^1\d{10}$")


@dataclass(frozen=True)
class SearchQuery:
    text: str  # normalised as typed
    numbers: tuple[str, ...]  # key variants when the text can be a number, else ()
    nickname: str  # the casefolded text, compared with users' nickname keys
    phone: str | None  # the normalised mobile number, when the text is one


def _trimmed(value: str) -> str:
    start, end = 0, len(value)
    while start < end and unicodedata.category(value[start]) in ("Cf", "Zs", "Cc"):
        start += 1
    while end > start and unicodedata.category(value[end - 1]) in ("Cf", "Zs", "Cc"):
        end -= 1
    return value[start:end]


def normalise(value: str) -> str:
    """NFKC, trimmed: the form every search key is compared in."""
    return _trimmed(unicodedata.normalize("NFKC", value)).strip()


def nickname_key(nickname: str | None) -> str | None:
    """A nickname as the search compares it (None when blank)."""
    if not nickname:
        return None
    key = normalise(nickname).casefold()
    return key or None


def mobile(value: str | None) -> str | None:
    """A mainland mobile number in its plain 11-digit form, or None when ``value`` is not one."""
    if not value:
        return None
    digits = _PHONE_SEPARATORS.sub("", normalise(value))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix):]
            break
    return digits if _MOBILE.fullmatch(digits) else None


def parse(raw) -> SearchQuery:
    """The query ``q`` as the search uses it; 400 VALIDATION_ERROR when missing, too long or not text."""
    if not isinstance(raw, str):
        raise invalid("q", "必须是文本")
    text = normalise(raw)
    if not text:
        raise invalid("q", "不能为空：请输入订单号、微信支付单号、退款单号、玩家 ID、昵称或手机号")
    if len(text) > MAX_QUERY:
        raise invalid("q", f"最多 {MAX_QUERY} 个字符")
    if forbidden_char(text):
        raise invalid("q", "包含不可见的控制字符")
    numbers: tuple[str, ...] = ()
    if _NUMBER.fullmatch(text):
        numbers = tuple(dict.fromkeys((text, text.upper(), text.lower())))
    return SearchQuery(text=text, numbers=numbers, nickname=text.casefold(), phone=mobile(text))
