"""One-time subscription messages (订阅消息): which consent a refund's change uses, and what the
message says. Plain Python: the configured templates come in as arguments
(``config.subscribe_settings().templates``: template id -> kind).

When a player applies, the mini-app asks them to subscribe (``wx.requestSubscribeMessage``) and
sends what it answered, ``{template_id: "accept" | "reject" | "ban" | "filter"}`` (plus its
``errMsg``). Each "accept" allows one message of that template (WeChat counts them); the
refund records each as a consent, and each consent is used by the first change its template's
kind tells of: one message per consent.
"""
from __future__ import annotations

from .enums import RefundStatus
from .errors import invalid
from .money import fen_to_yuan

CHOICES = ("accept", "reject", "ban", "filter")
# what each kind of template tells: the changes (events) that use its consent
KINDS = {"review": ("approved", "rejected"), "refunded": ("refunded", "paid_offline")}
EVENT_LABELS = {"approved": "退款申请已通过", "rejected": "退款申请未通过", "refunded": "退款已到账",
                "paid_offline": "退款已线下支付"}
GRANTED, USED = "granted", "used"
MAX_TEMPLATES = 10


def parse(raw, templates: dict) -> dict | None:
    """The consents in an apply body's ``subscriptions`` (``{template id: "granted"}`` for each
    "accept"), None when there are none. Refused (400): not an object, an unknown template id, or
    an answer other than WeChat's four."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) > MAX_TEMPLATES + 1:
        raise invalid("subscriptions", "必须是 wx.requestSubscribeMessage 返回的对象")
    consents = {}
    for tid, answer in raw.items():
        if tid == "errMsg":
            continue
        if tid not in templates:
            raise invalid("subscriptions", f"未配置的订阅消息模板：{tid[:64]}")
        if answer not in CHOICES:
            raise invalid("subscriptions", "模板的结果必须是 accept、reject、ban 或 filter")
        if answer == "accept":
            consents[tid] = GRANTED
    return consents or None


def event_of(src: RefundStatus, dst: RefundStatus, *, offline: bool) -> str | None:
    """What a change tells the player: approved, rejected (a review's or their own withdrawal),
    refunded, paid_offline; None for anything else."""
    if src == RefundStatus.PENDING_REVIEW and dst == RefundStatus.SUBMITTED:
        return "approved"
    if dst == RefundStatus.REJECTED:
        return "rejected"
    if dst == RefundStatus.SUCCESS and src != RefundStatus.SUCCESS:
        return "paid_offline" if offline else "refunded"
    return None


def fired(consents: dict | None, event: str | None, templates: dict) -> list[str]:
    """The template ids whose (unused) consent ``event`` uses."""
    if not consents or event is None:
        return []
    return sorted(tid for tid, state in consents.items()
                  if state == GRANTED and event in KINDS.get(templates.get(tid, ""), ()))


def message_data(*, event: str, refund_no: str, amount: int, at_beijing: str, note: str | None) -> dict:
    """The template's fields (the templates are set up in the mini-program's console with these
    keys): thing1 status, amount2 amount, character_string3 refund number, time4 time, thing5 note.
    A ``thing`` takes at most 20 characters."""
    return {"thing1": {"value": EVENT_LABELS[event]}, "amount2": {"value": f"{fen_to_yuan(amount)}元"},
            "character_string3": {"value": refund_no[:32]}, "time4": {"value": at_beijing},
            "thing5": {"value": (note or EVENT_LABELS[event])[:20]}}


def templates_view(templates: dict) -> list[dict]:
    """GET /api/app/subscription-templates: each configured template and the events it tells of."""
    return [{"template_id": tid, "kind": kind, "events": list(KINDS.get(kind, ())),
             "event_labels": [EVENT_LABELS[e] for e in KINDS.get(kind, ())]} for tid, kind in sorted(templates.items())]
