"""How orders, refunds and tasks look to API clients: codes with Chinese labels,
fen with yuan text beside them. Pure functions over model instances."""
from __future__ import annotations

from ..domain import minors
from ..domain import refunds as refund_rules
from ..domain import staff as staff_rules
from ..domain.enums import (
    OfflineReason,
    OrderStatus,
    PrizeLevel,
    RefundOrigin,
    RefundStatus,
    RestorationStatus,
    ShippingStatus,
    SourceType,
    TaskStatus,
    TaskType,
    WinnerFlag,
)
from ..domain.money import fen_to_yuan


def money(body: dict, **amounts: int) -> dict:
    for name, fen in amounts.items():
        body[name] = fen
        body[f"{name}_yuan"] = fen_to_yuan(fen)
    return body


def user_view(user_id: str, user) -> dict:
    nickname = (user.nickname if user is not None else None) or None
    return {"user_id": user_id, "nickname": nickname, "display_name": nickname or user_id}


def _label(enum, value):
    try:
        return enum(value).label
    except ValueError:
        return None


def _order_head(order, user) -> dict:
    return {
        "order_no": order.order_no,
        "user": user_view(order.user_id, user),
        "status": order.status,
        "status_label": _label(OrderStatus, order.status),
        "source_type": order.source_type,
        "source_type_label": _label(SourceType, order.source_type),
        "created_at": order.created_at,
    }


def order_summary(order, user, now) -> dict:
    """An order in a list: its balances, the money in flight (``reserved_amount``, 退款中) and
    what can really be refunded now (``refundable_now``: 0 past WeChat's one-year limit or in a
    state that cannot be refunded, ``refund_blocked`` saying why)."""
    shipping = order.shipping
    actions = refund_rules.refund_actions(order, now)
    body = {
        **_order_head(order, user),
        "shipping_status": shipping.status if shipping else None,
        "shipping_status_label": _label(ShippingStatus, shipping.status) if shipping else None,
        "activity_name": order.activity_name,
        "refund_blocked": actions.why_not,
    }
    return money(body, actual_amount=order.actual_amount, refunded_amount=order.refunded_amount,
                 refundable_amount=order.refundable_amount, reserved_amount=max(0, order.reserved_amount or 0),
                 refundable_now=actions.max_refundable)


def order_detail(order, user, refunds: list, now, operator: staff_rules.Operator) -> dict:
    shipping = order.shipping
    restored_points = sum((r.restoration or {}).get("points", 0) for r in refunds
                          if r.restoration_status == RestorationStatus.DONE.value)
    detail = {
        "order": money({
            **_order_head(order, user),
            "updated_at": order.updated_at,
            "refund_count": order.refund_count,
        }, total_amount=order.total_amount, discount_amount=order.discount_amount,
            actual_amount=order.actual_amount, refunded_amount=order.refunded_amount,
            reserved_amount=order.reserved_amount, refundable_amount=order.refundable_amount,
            requested_amount=order.requested_amount),
        "activity": {"activity_id": order.activity_id, "activity_name": order.activity_name}
        if order.activity_id or order.activity_name else None,
        "payment": {
            "channel": "wechat",
            "channel_label": "微信支付",
            "out_trade_no": order.payment.out_trade_no,
            "transaction_id": order.payment.transaction_id,
            "paid_at": order.payment.paid_at,
        } if order.payment else None,
        "items": [
            money({"sku": it.sku, "name": it.name, "qty": it.qty}, unit_price=it.unit_price,
                  subtotal=it.unit_price * it.qty)
            for it in order.items or []
        ],
        "shipping": {
            "status": shipping.status,
            "status_label": _label(ShippingStatus, shipping.status),
            "carrier": shipping.carrier,
            "tracking_no": shipping.tracking_no,
            "shipped_at": shipping.shipped_at,
            "signed_at": shipping.signed_at,
            "cancelled": bool(shipping.cancelled),
            "exception_reason": shipping.exception_reason,
        } if shipping else None,
        "virtual": {
            "name": order.virtual.name,
            "is_consumed": bool(order.virtual.is_consumed),
            "is_consumed_label": "已履约" if order.virtual.is_consumed else "未履约",
            "revocable": bool(order.virtual.revocable),
            "revoked": bool(order.virtual.revoked),
            "revoked_at": order.virtual.revoked_at,
        } if order.virtual else None,
        "points": money({
            "points_used": order.points_used,
            "points_restored": restored_points,
            "coupon_id": order.coupon_id,
        }, points_amount=order.points_amount),
        "lottery": [
            {
                "draw_id": d.draw_id,
                "is_winner": d.is_winner,
                "is_winner_label": _label(WinnerFlag, d.is_winner),
                "level": d.level,
                "level_label": _label(PrizeLevel, d.level) if d.level is not None else None,
                "prize_name": d.prize_name,
                "inventory_id": d.inventory_id,
            }
            for d in order.lottery or []
        ] if order.source_type == SourceType.LOTTERY else None,
        "refunds": [refund_view(r, operator) for r in refunds],
        "refund_actions": refund_rules.refund_actions(order, now).to_dict(),
    }
    return detail


def player_refund_view(refund) -> dict:
    """A refund as its player sees it."""
    body = {
        "refund_no": refund.refund_no,
        "order_no": refund.order_no,
        "status": refund.status,
        "status_label": _label(RefundStatus, refund.status),
        "reason": refund.reason,
        "reject_reason": refund.reject_reason,
        "created_at": refund.created_at,
        "updated_at": refund.updated_at,
        "success_time": refund.success_time,
    }
    return money(body, amount=refund.amount, requested_amount=refund.requested_amount)


SPLIT_FIELDS = ("payer_refund", "payer_refund_yuan", "coupon_refund", "coupon_refund_yuan")


def refund_split(refund) -> dict:
    """How a refund's amount went back: ``payer_refund`` in cash to the payer and ``coupon_refund``
    (the rest) to the coupon that paid part of the order, as WeChat told it (amount.payer_refund);
    all None while it has not (or for no refund)."""
    payer = getattr(refund, "payer_refund", None)
    if payer is None:
        return dict.fromkeys(SPLIT_FIELDS)
    return money({}, payer_refund=int(payer), coupon_refund=int(refund.amount) - int(payer))
def _by_whom(actor: str | None) -> str:
    if staff_rules.is_player(actor):
        return "player"
    return "staff" if staff_rules.subject_of(actor) else "system"


def player_refund_history(refund) -> dict:
    """A refund in the player's list: the player's view, the cash and coupon parts where known,
    and its timeline (each change with its status label and who made it: player, staff, system)."""
    body = player_refund_view(refund)
    body["origin"] = refund.origin
    body.update(refund_split(refund))
    body["can_withdraw"] = staff_rules.review_actions(
        refund, staff_rules.Operator(refund.created_by, 0)).withdraw.allowed \
        if staff_rules.is_player(refund.created_by) else False
    body["timeline"] = [{"at": e.at, "status": e.to_status, "status_label": _label(RefundStatus, e.to_status),
                         "from_status": e.from_status, "by": _by_whom(e.actor)} for e in refund.events or []]
    return body


def claim_view(refund) -> dict | None:
    """A minor's claim (domain/minors.py) as staff see it; None for an ordinary refund."""
    if not minors.is_claim(refund):
        return None
    return {"type": minors.TYPE, "type_label": minors.TYPE_LABEL, "guardian": refund.guardian,
            "first_review": refund.first_review}


def refund_view(refund, operator: staff_rules.Operator, *, with_events: bool = True) -> dict:
    """A refund as staff see it, with what ``operator`` (the signed-in person) may do with it
    (``actions``: ``domain.staff.review_actions``)."""
    body = player_refund_view(refund)
    body.update({
        "user_id": refund.user_id,
        "channel": refund.channel,
        "origin": refund.origin,
        "origin_label": _label(RefundOrigin, refund.origin),
        "created_by": refund.created_by,
        "reviewer": refund.reviewer,
        "requires_manual_review": bool(refund.requires_manual_review),
        "review_reasons": list(refund.review_reasons or []),
        "wechat_refund_id": refund.wechat_refund_id,
        "user_received_account": refund.user_received_account,
        **refund_split(refund),
        "failure_code": refund.failure_code,
        "failure_message": refund.failure_message,
        "restoration_status": refund.restoration_status,
        "restoration_status_label": _label(RestorationStatus, refund.restoration_status)
        if refund.restoration_status else None,
        "restoration": refund.restoration,
        "offline_reason": refund.offline_reason,
        "offline_reason_label": _label(OfflineReason, refund.offline_reason) if refund.offline_reason else None,
        "offline_payout": refund.offline_payout,
        "actions": staff_rules.review_actions(refund, operator).to_dict(),
        **refund_split(refund),
    })
    if with_events:
        body["events_dropped"] = refund.events_dropped or 0
        body["events"] = [
            {
                "at": e.at,
                "actor": e.actor,
                "from": e.from_status,
                "from_label": _label(RefundStatus, e.from_status) if e.from_status else None,
                "to": e.to_status,
                "to_label": _label(RefundStatus, e.to_status),
                "detail": e.detail,
            }
            for e in refund.events or []
        ]
    return body


def task_view(task) -> dict:
    return {
        "task_id": task.task_id,
        "type": task.type,
        "type_label": _label(TaskType, task.type),
        "order_no": task.order_no,
        "refund_no": task.refund_no,
        "user_id": task.user_id,
        "action": task.action,
        "status": task.status,
        "status_label": _label(TaskStatus, task.status),
        "note": task.note,
        "done_by": task.done_by,
        "done_at": task.done_at,
        "created_at": task.created_at,
        "detail": task.detail,
    }
