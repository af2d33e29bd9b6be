"""Putting back what an order gave once its refund succeeded: points, coupon, lottery
inventory, virtual fulfilment, shipment, and tasks for what a person must do.

Runs from the SQS worker. At most three DynamoDB calls: the refund and its order (one
transactional read), the coupon and inventory the plan may touch (one batch read, only
when there are any), and one transaction that writes everything with the done marker.
Redelivery, or two workers at once, restore once: the marker's condition cancels the
second transaction whole."""
from __future__ import annotations

from ..adapters import outbox
from ..adapters import repository as repo
from ..domain import refunds as refund_rules
from ..domain import tasks as task_rules
from ..domain.enums import CouponStatus, RefundStatus, RestorationStatus
from ..log import get_logger, log_context
from ..domain import clock
from ..domain import events

log = get_logger(__name__)
MAX_RACE_RETRIES = 5


def inventory_of(order) -> list:
    """The lottery inventory an order's draws gave (for a preview's plan)."""
    ids = [d.inventory_id for d in (order.lottery or []) if d.inventory_id]
    return repo.restoration_targets(order.user_id, None, ids)[1] if ids else []


def restore(refund_no: str, order_no: str | None = None) -> dict:
    """Apply the restoration plan of a successful refund. Returns its outcome.

    ``order_no`` (from the queue message) lets the refund and its order be read together."""
    for _attempt in range(MAX_RACE_RETRIES):
        if order_no:
            order, refund = repo.get_order_and_refund(order_no, refund_no)
        else:
            order, refund = None, repo.get_refund(refund_no)
        if refund is None:
            log.error("restoration for an unknown refund", extra={"refund_no": refund_no})
            return {"result": "unknown_refund"}
        with log_context(refund_no=refund_no, order_no=refund.order_no):
            if refund.status != RefundStatus.SUCCESS.value:
                log.warning("restoration skipped: refund is not successful", extra={"status": refund.status})
                return {"result": "not_success"}
            if refund.restoration_status == RestorationStatus.DONE.value:
                return {"result": "already_done", **(refund.restoration or {})}
            if order is None or order.order_no != refund.order_no:
                order_no = refund.order_no  # the message named no (or another) order: read both again
                continue
            outcome = _apply(refund, order)
            if outcome is not None:
                log.info("restoration done", extra={"points": outcome["points"],
                                                    "tasks": len(outcome["manual_tasks"])})
                return {"result": "done", **outcome}
    raise RuntimeError(f"restoration of {refund_no} kept losing races")


def _apply(refund, order) -> dict | None:
    """Plan from what was read and commit it in one transaction; None when a condition failed
    (another worker finished first, or the coupon, inventory or shipment changed meanwhile)."""
    draws = [d.inventory_id for d in (order.lottery or []) if d.inventory_id]
    cumulative_before = (refund.cumulative_refunded or refund.amount) - refund.amount
    full = cumulative_before + refund.amount >= order.actual_amount
    coupon_id = order.coupon_id if refund_rules.coupon_restores(order, full) else None
    wanted = draws if full else []
    coupon, inventory = repo.restoration_targets(order.user_id, coupon_id, wanted) if (coupon_id or wanted) \
        else (None, [])
    plan = refund_rules.restoration_plan(order, refund.amount, cumulative_before, inventory)
    now = clock.iso(clock.now())
    applied: list[str] = []
    if plan.points:
        applied.append(f"退还积分 {plan.points}")
    restore_coupon = None
    if plan.restore_coupon:
        if coupon is not None and coupon.status == CouponStatus.USED.value:
            restore_coupon = plan.coupon_id
            applied.append(f"优惠券 {plan.coupon_id} 已退回")
        else:
            applied.append(f"优惠券 {plan.coupon_id} 不是已使用状态，未改动")
    applied.extend(f"抽奖资产 {item_id} 已撤销" for item_id in plan.revoke_inventory)
    if plan.revoke_virtual:
        applied.append("虚拟履约已撤销")
    if plan.cancel_shipment:
        applied.append("发货已取消")
    if plan.mark_shipping_exception:
        applied.append("发货状态标记为异常")
    tasks = [task_rules.for_refund(refund, spec.type, spec.action, part=spec.subject) for spec in plan.manual_tasks]
    outcome = plan.to_dict()
    outcome["applied"] = applied
    outcome["restored_at"] = now
    try:
        repo.write(repo.restoration_items(
            refund_no=refund.refund_no, user_id=order.user_id, order_no=order.order_no, points=plan.points,
            coupon_id=restore_coupon, revoke_inventory=plan.revoke_inventory,
            revoke_virtual=plan.revoke_virtual, cancel_shipment=plan.cancel_shipment,
            shipping_exception=f"退款 {refund.refund_no}：待退货入库" if plan.mark_shipping_exception else None,
            tasks=tasks, outcome=outcome, now=now) + [outbox.put(events.restoration_done(
                refund_no=refund.refund_no, order_no=order.order_no, user_id=order.user_id, outcome=outcome, at=now),
                now=now)])
    except repo.WriteConflict as c:
        log.info("restoration raced; reading again", extra={"failed": sorted(c.reasons)})
        return None
    return outcome
