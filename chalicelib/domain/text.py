"""Free text from people (reasons, notes, names): what counts as text, as blank, as too long,
and how a text cell is written to a spreadsheet safely. Plain Python, no I/O.

The rules, applied at the edge before anything is stored or sent to WeChat:

- Text must be valid Unicode: a lone UTF-16 surrogate (``"\\ud800"`` in JSON) is refused.
- Control characters are refused, not removed: C0/C1 controls (NUL, BEL, ESC, tab, CR, LF, DEL ...),
  the line and paragraph separators (U+2028/U+2029), the bidirectional embedding, override and
  isolate controls (U+202A-U+202E, U+2066-U+2069: they make text read differently from what is
  stored) and Unicode noncharacters. Removing them would store something the sender never typed.
- Text is NFC-normalised, and whitespace and invisible format characters (zero-width space, BOM,
  soft hyphen, ...) are trimmed at both ends.
- Text made only of whitespace and invisible characters (``"\\u200b"``, ``"\\u3000"``, a Hangul
  filler, a braille blank, lone combining marks) counts as missing.
- Limits are in characters (code points, after normalising) and, where a receiver counts bytes
  (WeChat's refund reason: 80 bytes), in UTF-8 bytes.
"""
from __future__ import annotations

import unicodedata

from .errors import invalid

# Letters and symbols that render as nothing (they are not whitespace or format characters).
FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f")
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible characters trimmed at the ends of a text. Tag characters (U+E0020-U+E007F) end
# some emoji flag sequences, so they are left alone.
_TRIMMED_CATEGORIES = frozenset({"Cf", "Zs"})
_BLANK_CATEGORIES = frozenset({"Cf", "Zs", "Mn", "Me"})


def _is_noncharacter(cp: int) -> bool:
    return 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE


def forbidden_char(value: str) -> str | None:
    """Why ``value`` is not acceptable text (its first offending character), or None."""
    if value.isascii() and value.isprintable():
        return None  # printable ASCII holds none of them (a base64 image is megabytes of it)
    for ch in value:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF:
            return "无效的 Unicode（孤立的代理项）"
        cat = unicodedata.category(ch)
        if cat == "Cc":
            return f"控制字符（U+{cp:04X}）"
        if cat in ("Zl", "Zp"):
            return f"行或段落分隔符（U+{cp:04X}）"
        if ch in BIDI_CONTROLS:
            return f"双向控制字符（U+{cp:04X}）"
        if _is_noncharacter(cp):
            return f"Unicode 非字符（U+{cp:04X}）"
    return None


def check_text(value: str, field: str) -> str:
    """``value`` unchanged, or ValidationError naming ``field`` and the offending character."""
    problem = forbidden_char(value)
    if problem is not None:
        raise invalid(field, f"含有不允许的{problem}")
    return value


def _invisible(ch: str, categories: frozenset[str]) -> bool:
    return ch.isspace() or ch in FILLERS or (unicodedata.category(ch) in categories
                                             and not 0xE0000 <= ord(ch) <= 0xE007F)


def is_blank(value: str) -> bool:
    """True when ``value`` has nothing a person would see: empty, whitespace, invisible
    format characters, fillers, or combining marks with nothing to combine with."""
    return all(ch.isspace() or ch in FILLERS or unicodedata.category(ch) in _BLANK_CATEGORIES for ch in value)


def trim(value: str) -> str:
    """``value`` without whitespace and invisible format characters at either end."""
    start, end = 0, len(value)
    while start < end and _invisible(value[start], _TRIMMED_CATEGORIES):
        start += 1
    while end > start and _invisible(value[end - 1], _TRIMMED_CATEGORIES):
        end -= 1
    return value[start:end]


def utf8_len(value: str) -> int:
    return len(value.encode("utf-8"))


def clean_text(raw: object, *, field: str, required: bool, max_chars: int | None = None,
               max_bytes: int | None = None, bytes_hint: str | None = None) -> str:
    """The text to store for ``field``: checked, NFC-normalised and trimmed; ``""`` when absent
    and optional. Missing (None, or blank as defined above) and required is a ValidationError;
    so are a non-string, a forbidden character and a text over ``max_chars`` characters or
    ``max_bytes`` UTF-8 bytes (``bytes_hint`` words the byte limit for a person, after the field's name)."""
    if raw is None:
        if required:
            raise invalid(field, "不能为空")
        return ""
    if not isinstance(raw, str):
        raise invalid(field, "必须是文本（字符串）")
    check_text(raw, field)
    value = trim(unicodedata.normalize("NFC", raw))
    if is_blank(value):
        if required:
            raise invalid(field, "不能为空（没有可见的字符）")
        return ""
    if max_chars is not None and len(value) > max_chars:
        raise invalid(field, f"最多 {max_chars} 个字符", max_chars=max_chars)
    if max_bytes is not None and utf8_len(value) > max_bytes:
        raise invalid(field, bytes_hint or f"最多 {max_bytes} 字节（UTF-8）", max_bytes=max_bytes,
                      bytes=utf8_len(value))
    return value


# ---------------------------------------------------------------- spreadsheets

# A cell starting with one of these is read as a formula by Excel, WPS or LibreOffice (OWASP
# "CSV Injection"); the full-width forms are converted by some CJK spreadsheet settings.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def neutralise_csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string whose first character (or first one
    after leading whitespace and invisible characters) could start a formula gets a leading
    single quote. Write the row with every cell quoted (``csv.QUOTE_ALL``). Non-strings are
    returned unchanged."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in FORMULA_TRIGGERS or trim(value)[:1] in FORMULA_TRIGGERS:
        return "'" + value
    return value
