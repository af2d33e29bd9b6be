"""The read side of consumer complaints (投诉): the queue by deadline with filters, and one
complaint with what a person needs to answer it: its order, the player's other complaints and
refunds, the negotiation history, our actions, and the order's draw records as evidence. Labels
in Chinese, fen with yuan beside, times in UTC ISO (the console shows Beijing time)."""
from __future__ import annotations

from datetime import timedelta

from .. import config
from ..adapters import complaint_store as store
from ..adapters import repository as repo
from ..domain import clock
from ..domain import complaints as rules
from ..domain import staff as staff_rules
from ..domain.enums import (ComplaintAction, ComplaintProblem, ComplaintRefundProgress, ComplaintState,
                            ComplaintUserTag, InventoryStatus, Permission, PrizeLevel, StaffRole)
from ..domain.errors import invalid
from . import views
from .complaints import get

DEADLINE_FILTERS = ("overdue", "near")
OTHER_COMPLAINTS = 20
OTHER_ORDERS = 20


def _label(enum, value):
    try:
        return enum(value).label
    except ValueError:
        return value


def summary(c, now, role: StaffRole) -> dict:
    """A complaint in the queue: state, deadline and time left, risk tags, what is asked."""
    s = config.complaint_settings()
    due = clock.parse(c.due_at)
    left = rules.time_left_seconds(due, now)
    risk = rules.risk(due, now, s.near_hours)
    body = {
        "complaint_id": c.complaint_id,
        "complaint_time": c.complaint_time,
        "state": c.state,
        "state_label": _label(ComplaintState, c.state),
        "problem_type": c.problem_type,
        "problem_type_label": _label(ComplaintProblem, c.problem_type) if c.problem_type else None,
        "detail": c.detail,
        "order_no": c.order_no,
        "order_known": bool(c.order_known),
        "user_id": c.user_id,
        "user_tags": [{"code": t, "label": _label(ComplaintUserTag, t)} for t in c.user_tags or []],
        "user_complaint_times": c.user_complaint_times,
        "incoming_user_response": bool(c.incoming_user_response),
        "deadline": {
            "kind": c.due_kind,
            "kind_label": {"reply": "首次回复", "resolve": "处理完成"}.get(c.due_kind),
            "due_at": c.due_at,
            "reply_due_at": c.reply_due_at,
            "resolve_due_at": c.resolve_due_at,
            "seconds_left": left,
            "time_left": rules.time_left_text(left),
            "risk": risk.value,
            "risk_label": risk.label,
        },
        "refund_progress": c.refund_progress,
        "refund_progress_label": _label(ComplaintRefundProgress, c.refund_progress) if c.refund_progress else None,
        "refund_no": c.refund_no,
        "updated_at": c.updated_at,
    }
    if c.apply_refund_amount is not None:
        views.money(body, apply_refund_amount=int(c.apply_refund_amount))
    else:
        body.update(apply_refund_amount=None, apply_refund_amount_yuan=None)
    return body


def list_complaints(*, state: str | None, deadline: str | None, order_no: str | None, limit: int,
                    cursor: str | None, role: StaffRole) -> dict:
    """The queue (open complaints, the nearest deadline first), narrowed by ``state``, by
    ``deadline`` (``overdue``: past it; ``near``: within the near window or past it), or the
    complaints of one order (newest first). Cursors are signed for the list they page."""
    now = clock.now()
    if state is not None and state not in ComplaintState.labels():
        raise invalid("state", f"必须是以下之一：{'、'.join(ComplaintState.labels())}")
    if deadline is not None and deadline not in DEADLINE_FILTERS:
        raise invalid("deadline", f"必须是以下之一：{'、'.join(DEADLINE_FILTERS)}")
    if order_no:
        page = store.of_order(order_no, limit=limit, cursor=cursor, state=state)
    elif state == ComplaintState.PROCESSED.value:
        if deadline:
            raise invalid("deadline", "已处理的投诉没有时限")
        page = store.of_state(state, limit=limit, cursor=cursor)
    else:
        page = store.queue(limit=limit, cursor=cursor, state=state)
        if deadline:
            # the queue is in deadline order: the complaints within the cut-off are its head
            hours = 0 if deadline == "overdue" else config.complaint_settings().near_hours
            cutoff = clock.iso(now + timedelta(hours=hours))
            kept = [c for c in page.items if c.due_at <= cutoff]
            page = type(page)(kept, page.next_cursor if len(kept) == len(page.items) else None)
    return {"items": [summary(c, now, role) for c in page.items], "next_cursor": page.next_cursor}


def _history(c) -> list[dict]:
    return [{"log_id": e.log_id, "operator": e.operator, "operate_time": e.operate_time,
             "operate_type": e.operate_type, "operate_type_label": rules.OPERATE_TYPES.get(e.operate_type,
                                                                                          e.operate_type),
             "operate_details": e.operate_details, "image_urls": list(e.image_urls or [])}
            for e in store.history_of(c.complaint_id)]


def _actions_done(c) -> list[dict]:
    return [{"action": a.action, "action_label": _label(ComplaintAction, a.action), "actor": a.actor,
             "status": a.status, "status_label": {"pending": "处理中", "done": "已完成", "refused": "微信已拒绝"}.get(a.status),
             "request": a.request, "result": a.result, "at": a.at, "updated_at": a.updated_at}
            for a in store.actions_of(c.complaint_id)]


def evidence(order) -> dict | None:
    """What the order gave the player, for a reply or a refusal to cite: each draw (its result
    and prize level, when drawn), the prizes' state in the player's inventory, what was shipped
    and when, and a virtual good's fulfilment."""
    if order is None:
        return None
    draws = order.lottery or []
    inventory_ids = [d.inventory_id for d in draws if d.inventory_id]
    _, held = repo.restoration_targets(order.user_id, None, inventory_ids) if inventory_ids else (None, [])
    by_id = {i.item_id: i for i in held}
    paid_at = order.payment.paid_at if order.payment else None
    detail = views.order_detail(order, None, [], clock.now(), staff_rules.Operator("admin:evidence", 0))
    return {
        "draws": [{
            "draw_id": d.draw_id,
            "drawn_at": d.drawn_at or paid_at,
            "drawn_at_source": "draw" if d.drawn_at else "payment",
            "is_winner": bool(d.is_winner),
            "result_label": "中奖" if d.is_winner else "未中奖",
            "level": d.level,
            "level_label": _label(PrizeLevel, d.level) if d.level is not None else None,
            "prize_name": d.prize_name,
            "inventory_id": d.inventory_id,
            "inventory_status": by_id[d.inventory_id].status if d.inventory_id in by_id else None,
            "inventory_status_label": _label(InventoryStatus, by_id[d.inventory_id].status)
            if d.inventory_id in by_id else None,
        } for d in draws],
        "items": detail["items"],
        "shipping": detail["shipping"],
        "virtual": detail["virtual"],
        "paid_at": paid_at,
    }


def complaint_detail(complaint_id: str, operator: staff_rules.Operator, *, complaint=None) -> dict:
    """One complaint as staff see it (the phone whole only with complaints.view_phone)."""
    c = complaint or get(complaint_id)
    role = operator.role
    now = clock.now()
    body = summary(c, now, role)
    order = repo.get_order(c.order_no) if c.order_known and c.order_no else None
    user = repo.get_user(order.user_id) if order else None
    refunds = repo.refunds_of_order(order.order_no) if order else []
    others = [summary(o, now, role) for o in (store.of_user(c.user_id, limit=OTHER_COMPLAINTS) if c.user_id else [])
              if o.complaint_id != c.complaint_id]
    orders = repo.list_orders(status=None, source_type=None, user_id=c.user_id, limit=OTHER_ORDERS,
                              cursor=None).items if c.user_id else []
    phone_ok = staff_rules.has(role, Permission.COMPLAINTS_VIEW_PHONE)
    body.update({
        "problem_description": c.problem_description,
        "transaction_id": c.transaction_id,
        "order_amount": c.order_amount,
        "full_refunded": bool(c.full_refunded),
        "media_urls": list(c.media_urls or []),
        "payer_phone": c.payer_phone if phone_ok else rules.mask_phone(c.payer_phone),
        "payer_phone_masked": not phone_ok and bool(c.payer_phone),
        "first_reply_at": c.first_reply_at,
        "processed_at": c.processed_at,
        "refund_action": c.refund_action,
        "reject_reason": c.reject_reason,
        "entrusted_refund_no": c.entrusted_refund_no,
        "overdue_task": c.overdue_task,
        "synced_at": c.synced_at,
        "order": views.order_summary(order, user, clock.now()) if order else None,
        "user": views.user_view(c.user_id, user) if c.user_id else None,
        "refunds": [{**views.refund_view(r, operator, with_events=False), "user": views.user_view(r.user_id, user)}
                    for r in refunds],
        "other_complaints": others,
        "player_orders": [views.order_summary(o, user, clock.now()) for o in orders if o.order_no != c.order_no
                          and (o.refunded_amount or o.reserved_amount)],
        "history": _history(c),
        "actions_log": _actions_done(c),
        "evidence": evidence(order),
        "actions": rules.actions(c, role),
    })
    return body
