"""Putting back what an order gave once its refund succeeded: points, coupon, lottery
inventory, virtual fulfilment, shipment. Runs from the SQS worker; every write is keyed
by refund_no or conditional, so redelivery or two racing workers restore once."""
from __future__ import annotations

from ..adapters import repository as repo
from ..adapters import models
from ..adapters.models import InventoryItem, ManualTask, Order, PointsEntry, Refund, User, UserCoupon
from ..domain import refunds as rules
from ..domain.enums import CouponStatus, InventoryStatus, RefundStatus, RestorationStatus, ShippingStatus
from ..domain.refunds import iso, now_utc
from ..log import get_logger, log_context

log = get_logger(__name__)


def inventory_of(order) -> list:
    ids = [d.inventory_id for d in (order.lottery or []) if d.inventory_id]
    if not ids:
        return []
    models.bind()
    found = {i.item_id: i for i in InventoryItem.batch_get([(order.user_id, i) for i in ids])}
    return [found[i] for i in ids if i in found]


def restore(refund_no: str) -> dict:
    """Apply the restoration plan of a successful refund. Returns its outcome."""
    refund = repo.get_refund(refund_no)
    if refund is None:
        log.error("restoration for an unknown refund", extra={"refund_no": refund_no})
        return {"result": "unknown_refund"}
    with log_context(refund_no=refund_no, order_no=refund.order_no):
        if refund.status != RefundStatus.SUCCESS.value:
            log.warning("restoration skipped: refund is not successful", extra={"status": refund.status})
            return {"result": "not_success"}
        if refund.restoration_status == RestorationStatus.DONE.value:
            return {"result": "already_done", **(refund.restoration or {})}
        order = repo.get_order(refund.order_no)
        inventory = inventory_of(order)
        cumulative_before = (refund.cumulative_refunded or refund.amount) - refund.amount
        plan = rules.restoration_plan(order, refund.amount, cumulative_before, inventory)
        now = iso(now_utc())
        applied = []
        if plan.points:
            _restore_points(refund, plan.points, now)
            applied.append(f"退还积分 {plan.points}")
        if plan.restore_coupon:
            repo.update(UserCoupon(order.user_id, plan.coupon_id),
                        [UserCoupon.status.set(CouponStatus.UNUSED.value),
                         UserCoupon.restored_by_refund.set(refund_no), UserCoupon.updated_at.set(now)],
                        UserCoupon.status == CouponStatus.USED.value)
            applied.append(f"优惠券 {plan.coupon_id} 已退回")
        for item_id in plan.revoke_inventory:
            repo.update(InventoryItem(order.user_id, item_id),
                        [InventoryItem.status.set(InventoryStatus.REVOKED.value),
                         InventoryItem.revoked_by_refund.set(refund_no), InventoryItem.updated_at.set(now)],
                        InventoryItem.status == InventoryStatus.HELD.value)
            applied.append(f"抽奖资产 {item_id} 已撤销")
        if plan.revoke_virtual:
            repo.update(order, [Order.virtual.revoked.set(True), Order.virtual.revoked_at.set(now),
                                Order.virtual.revoked_by_refund.set(refund_no), Order.updated_at.set(now)],
                        Order.virtual.revoked == False)  # noqa: E712 - a DynamoDB condition, not a bool test
            applied.append("虚拟履约已撤销")
        if plan.cancel_shipment:
            repo.update(order, [Order.shipping.cancelled.set(True), Order.updated_at.set(now)],
                        Order.shipping.status == ShippingStatus.PENDING.value)
            applied.append("发货已取消")
        if plan.mark_shipping_exception:
            repo.update(order, [Order.shipping.status.set(ShippingStatus.EXCEPTION.value),
                                Order.shipping.exception_reason.set(f"退款 {refund_no}：待退货入库"),
                                Order.updated_at.set(now)],
                        Order.shipping.status.is_in(ShippingStatus.SHIPPED.value, ShippingStatus.SIGNED.value))
            applied.append("发货状态标记为异常")
        for spec in plan.manual_tasks:
            task = ManualTask(spec.task_id(refund_no), type=spec.type.value, order_no=order.order_no,
                              refund_no=refund_no, user_id=order.user_id, action=spec.action, status="open",
                              created_at=now)
            repo.put_if_absent(task, ManualTask.task_id)
        outcome = plan.to_dict()
        outcome["applied"] = applied
        outcome["restored_at"] = now
        finished = repo.update(refund, [Refund.restoration_status.set(RestorationStatus.DONE.value),
                                        Refund.restoration.set(outcome), Refund.work.remove(),
                                        Refund.work_due_at.remove(), Refund.updated_at.set(now)],
                               Refund.restoration_status == RestorationStatus.PENDING.value)
        log.info("restoration done" if finished else "restoration already recorded by another worker",
                 extra={"points": plan.points, "tasks": len(plan.manual_tasks)})
        return {"result": "done" if finished else "already_done", **outcome}


def _restore_points(refund: Refund, points: int, now: str) -> None:
    """Ledger entry keyed by refund_no and the balance credit, in one transaction."""
    entry = PointsEntry(refund.user_id, f"refund_restore#{refund.refund_no}", action="refund_restore",
                        points=points, order_no=refund.order_no, refund_no=refund.refund_no, created_at=now)
    try:
        repo.transact([
            repo.TxItem("entry", "put", entry, PointsEntry.entry_id.does_not_exist()),
            repo.TxItem("user", "update", User(refund.user_id), None, [User.points_balance.add(points)]),
        ])
    except repo.WriteConflict as c:
        if not c.failed("entry"):
            raise
