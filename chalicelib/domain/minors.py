"""Minors' refunds (未成年人消费): a guardian reclaims what a minor spent without consent.

Under the Supreme People's Court's 2020 guidance a guardian may reclaim spending a minor made
without consent that does not fit their age; the 2023 blind-box guideline forbids sales to
under-8s and requires guardian consent from 8 up. Such a claim is an application of its own
type: it carries the guardian's statement, their relationship to the minor and evidence images;
it asks for the whole order (opened boxes and consumed goods included: restoration then marks
what cannot come back with its tasks); it is reviewed in its own queue by two different people
(a first review, then a second person's approval); and it is reported apart from ordinary
refunds (it is no signal of a player abusing refunds).

Plain Python: no I/O.
"""
from __future__ import annotations

from .errors import FourEyesRequired, invalid
from . import text

TYPE = "minor"
TYPE_LABEL = "未成年人消费"
RELATIONSHIPS = {"father": "父亲", "mother": "母亲", "guardian": "其他监护人"}
MAX_STATEMENT_CHARS = 500
MAX_EVIDENCE = 9
MAX_EVIDENCE_CHARS = 512


def parse_claim(raw) -> dict:
    """The guardian's claim from an apply body's ``guardian``: ``statement`` (text), ``relationship``
    (father | mother | guardian) and ``evidence`` (1 to 9 image URLs or media ids). 400 otherwise."""
    if not isinstance(raw, dict) or set(raw) - {"statement", "relationship", "evidence"}:
        raise invalid("guardian", "必须包含 statement、relationship、evidence")
    statement = text.clean_text(raw.get("statement"), field="guardian.statement", max_chars=MAX_STATEMENT_CHARS,
                                required=True)
    relationship = raw.get("relationship")
    if relationship not in RELATIONSHIPS:
        raise invalid("guardian.relationship", "必须是 father（父亲）、mother（母亲）或 guardian（其他监护人）")
    evidence = raw.get("evidence")
    if not isinstance(evidence, list) or not 1 <= len(evidence) <= MAX_EVIDENCE or not all(
            isinstance(e, str) and 0 < len(e) <= MAX_EVIDENCE_CHARS and e.isprintable() and not e.isspace()
            for e in evidence):
        raise invalid("guardian.evidence", f"必须是 1 到 {MAX_EVIDENCE} 张证明材料图片（URL 或 media_id）")
    return {"statement": statement, "relationship": relationship, "relationship_label": RELATIONSHIPS[relationship],
            "evidence": list(evidence)}


def is_claim(refund) -> bool:
    return getattr(refund, "application_type", None) == TYPE


def second_review_refusal(refund, actor: str, same_person) -> FourEyesRequired | None:
    """A minor's claim is approved by a second person: never the one who made its first review."""
    if not is_claim(refund):
        return None
    first = (getattr(refund, "first_review", None) or {}).get("by")
    if first is not None and (same_person(first, actor) or first == actor):
        return FourEyesRequired("未成年人消费退款需由另一人复核：初审人不能复核通过", details={"first_reviewer": first})
    return None
