"""Demo data for the local stack: every order status, source type and shipping state,
users with and without nicknames, points, coupons, lottery inventory."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from chalicelib.adapters import models
from chalicelib.adapters.models import (
    Draw, InventoryItem, Item, Order, Payment, PointsEntry, Shipping, User, UserCoupon, Virtual,
)
from chalicelib.domain.enums import OrderStatus, ShippingStatus, SourceType
from chalicelib.adapters import keys
from chalicelib.services.payments import pay_check_due
from chalicelib.domain import clock


@dataclass(frozen=True)
class PaidTransaction:
    out_trade_no: str
    transaction_id: str
    total: int
    paid_at: datetime


USERS = [("u1001", "小明"), ("u1002", None), ("u1003", "阿紫"), ("u1004", ""), ("u1005", "盲盒收藏家")]
# demo mobile numbers: only their keyed hash is written (keys.phone_key), as the shop's user writer does
PHONES = {"u1001": "13800138001", "u1003": "13900139003", "u1005": "13700137005"}


def _order(n: int, *, user: str, status: OrderStatus, source: SourceType, items, discount=0, points_used=0,
           coupon=None, shipping=None, virtual=None, lottery=None, activity=("ACT-2611", "双十一盲盒狂欢"),
           paid_days_ago: float = 2.0, now: datetime) -> Order:
    total = sum(q * p for _, q, p in items)
    points_amount = points_used // 10  # the shop values 1000 points at 1 yuan (100 fen)
    actual = total - discount - points_amount
    created = now - timedelta(days=paid_days_ago, minutes=5 + n)
    order_no = f"GB{created:%Y%m%d}{n:04d}"
    paid = status in (OrderStatus.PAID, OrderStatus.REFUNDED)
    o = Order(
        order_no, user_id=user, status=status.value, source_type=source.value, total_amount=total,
        discount_amount=discount, actual_amount=actual, points_used=points_used, points_amount=points_amount,
        coupon_id=coupon, activity_id=activity[0] if activity else None, activity_name=activity[1] if activity else None,
        items=[Item(sku=f"SKU-{i}", name=name, qty=q, unit_price=p) for i, (name, q, p) in enumerate(items, 1)],
        payment=Payment(out_trade_no=order_no,
                        transaction_id=f"42000{n:05d}{created:%Y%m%d%H%M%S}" if paid else None,
                        paid_at=clock.iso(created + timedelta(minutes=1)) if paid else None),
        shipping=shipping, virtual=virtual, lottery=lottery, created_at=clock.iso(created), updated_at=clock.iso(created),
        refundable_amount=actual if status == OrderStatus.PAID else 0,
        applicable_amount=actual if status == OrderStatus.PAID else 0,
        refunded_amount=actual if status == OrderStatus.REFUNDED else 0,
    )
    return o


def build(now: datetime | None = None):
    """Return (users, orders, coupons, inventory, ledger) for the demo shop."""
    now = now or datetime.now(timezone.utc)
    P, S = OrderStatus, SourceType
    ship = lambda st, **kw: Shipping(status=st.value, carrier=kw.get("carrier"), tracking_no=kw.get("tracking_no"),  # noqa: E731
                                     shipped_at=kw.get("shipped_at"), signed_at=kw.get("signed_at"), cancelled=False)
    shipped_at = clock.iso(now - timedelta(days=1))
    orders = [
        _order(1, user="u1001", status=P.PAID, source=S.MALL, items=[("星空系列盲盒", 2, 5900)], discount=1000,
               points_used=5000, coupon="CP-1001-A", shipping=ship(ShippingStatus.PENDING), now=now),
        _order(2, user="u1002", status=P.PAID, source=S.MALL, items=[("森林精灵盲盒", 1, 6900)],
               shipping=ship(ShippingStatus.SHIPPED, carrier="顺丰速运", tracking_no="SF1234567890",
                             shipped_at=shipped_at), now=now),
        _order(3, user="u1003", status=P.PAID, source=S.MALL, items=[("限定隐藏款", 1, 19900)],
               shipping=ship(ShippingStatus.SIGNED, carrier="中通快递", tracking_no="ZT9876543210",
                             shipped_at=shipped_at, signed_at=clock.iso(now - timedelta(hours=3))), now=now),
        _order(4, user="u1001", status=P.PAID, source=S.OTHER, items=[("会员月卡（虚拟）", 1, 3000)],
               virtual=Virtual(name="会员月卡", is_consumed=True, revocable=True, revoked=False), activity=None, now=now),
        _order(5, user="u1004", status=P.PAID, source=S.OTHER, items=[("游戏点券（虚拟）", 1, 1990)],
               virtual=Virtual(name="游戏点券", is_consumed=True, revocable=False, revoked=False), activity=None, now=now),
        _order(6, user="u1005", status=P.PAID, source=S.LOTTERY, items=[("抽奖券", 3, 990)],
               lottery=[Draw(draw_id="D6-1", is_winner=1, level=1, prize_name="隐藏款·月影", inventory_id="INV-6-1"),
                        Draw(draw_id="D6-2", is_winner=1, level=3, prize_name="普通款·星辰", inventory_id="INV-6-2"),
                        Draw(draw_id="D6-3", is_winner=0, level=None, prize_name=None, inventory_id=None)],
               now=now),
        _order(7, user="u1002", status=P.PENDING, source=S.MALL, items=[("樱花系列盲盒", 1, 4900)],
               shipping=ship(ShippingStatus.PENDING), paid_days_ago=0.01, now=now),
        _order(8, user="u1003", status=P.CANCELLED, source=S.MALL, items=[("海洋系列盲盒", 1, 5900)], now=now),
        _order(9, user="u1001", status=P.REFUNDED, source=S.MALL, items=[("复古系列盲盒", 1, 3900)],
               shipping=ship(ShippingStatus.PENDING), now=now),
        _order(10, user="u1002", status=P.PAID, source=S.LOTTERY, items=[("抽奖券", 10, 990)], points_used=2000,
               lottery=[Draw(draw_id="D10-1", is_winner=1, level=2, prize_name="稀有款·极光", inventory_id="INV-10-1"),
                        Draw(draw_id="D10-2", is_winner=0)], now=now),
        _order(11, user="u1005", status=P.PAID, source=S.MALL, items=[("盲盒整盒（12只）", 1, 70800)],
               discount=5000, points_used=10000, coupon="CP-1005-B", shipping=ship(ShippingStatus.PENDING), now=now),
        _order(12, user="u1004", status=P.PAID, source=S.MALL, items=[("旧款盲盒", 1, 2900)],
               shipping=ship(ShippingStatus.SIGNED, signed_at=clock.iso(now - timedelta(days=390))), paid_days_ago=400,
               now=now),
    ]
    # more paid orders so lists have pages
    for n in range(13, 41):
        user = USERS[n % len(USERS)][0]
        orders.append(_order(n, user=user, status=P.PAID, source=S.MALL,
                             items=[(f"日常系列盲盒 #{n}", 1 + n % 3, 2900 + 100 * (n % 7))],
                             shipping=ship(ShippingStatus.PENDING), paid_days_ago=3 + n / 10, now=now))
    users = [User(uid, nickname=nick, openid=f"oSIM-{uid}", points_balance=20000,
                  created_at=clock.iso(now - timedelta(days=90)), phone_hash=keys.phone_key(PHONES.get(uid)))
             for uid, nick in USERS]
    coupons = [
        UserCoupon("u1001", "CP-1001-A", name="满100减10", value=1000, status="used", order_no=orders[0].order_no),
        UserCoupon("u1005", "CP-1005-B", name="整盒立减50", value=5000, status="used", order_no=orders[10].order_no),
    ]
    inventory = [
        InventoryItem("u1005", "INV-6-1", name="隐藏款·月影", order_no=orders[5].order_no, status="held", revocable=True),
        InventoryItem("u1005", "INV-6-2", name="普通款·星辰", order_no=orders[5].order_no, status="consumed",
                      revocable=True),
        InventoryItem("u1002", "INV-10-1", name="稀有款·极光", order_no=orders[9].order_no, status="held",
                      revocable=False),
    ]
    ledger = [PointsEntry(o.user_id, f"order_spend#{o.order_no}", action="order_spend", points=-o.points_used,
                          order_no=o.order_no, created_at=o.created_at) for o in orders if o.points_used]
    return users, orders, coupons, inventory, ledger


# seeded order n -> its order number, from the last seeding in this process (tests, benchmarks)
SEEDED_ORDERS: dict[int, str] = {}


def order_no(n: int) -> str:
    """The order number of seeded order ``n`` (1-based, as in ``build``)."""
    return SEEDED_ORDERS[n]


def seed(now: datetime | None = None) -> list[PaidTransaction]:
    """Write the demo data; return the paid transactions the WeChat simulator must know."""
    models.bind()
    users, orders, coupons, inventory, ledger = build(now)
    for o in orders:  # the shop's order writer puts pending orders in the payment-check index
        if o.status == OrderStatus.PENDING.value:
            # the demo's pending order expects its notification: ask WeChat only if none came
            o.pay_check = keys.pay_check_key(o.order_no)
            o.pay_check_due_at = max(pay_check_due(o.created_at), clock.iso(datetime.now(timezone.utc) + timedelta(minutes=30)))
    SEEDED_ORDERS.clear()
    SEEDED_ORDERS.update({int(o.order_no[-4:]): o.order_no for o in orders})
    for group in (users, orders, coupons, inventory, ledger):
        with type(group[0]).batch_write() as batch:
            for item in group:
                batch.save(item)
    paid = [PaidTransaction(o.payment.out_trade_no, o.payment.transaction_id, o.actual_amount,
                            datetime.fromisoformat(o.payment.paid_at.replace("Z", "+00:00")))
            for o in orders if o.payment and o.payment.transaction_id]
    # pending orders: the player has paid at WeChat and its notification is on its way
    now = now or datetime.now(timezone.utc)
    paid += [PaidTransaction(o.payment.out_trade_no, f"42009{o.order_no[-6:]}{now:%Y%m%d%H%M%S}", o.actual_amount, now)
             for o in orders if o.status == OrderStatus.PENDING.value]
    return paid
